//! Slows password guessing at `/token`. Wrong passwords are counted per
//! client address (an IPv6 /64 as one) and per user name; past a few, the
//! address's (or user's) token requests are answered 429 with a Retry-After
//! and no password check, for a lockout that doubles with each further wrong
//! password. The table is bounded, and says when a lockout begins so the log
//! gets a line per burst rather than one per guess.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong passwords from one address before its lockouts begin.
const FREE_PER_ADDRESS: u32 = 5;
/// Wrong passwords for one user (from anywhere) before its lockouts begin:
/// more, since anyone can spend them.
const FREE_PER_USER: u32 = 10;
const FIRST_LOCKOUT: Duration = Duration::from_secs(1);
const MAX_LOCKOUT: Duration = Duration::from_secs(300);
/// A counter with no wrong password for this long starts again from zero.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Counters kept at most (the least recently failed go first).
const MAX_ENTRIES: usize = 10_000;
/// User names are the client's to choose: only this much of one is kept.
const MAX_USER_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Address(IpAddr),
    User(String),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Address(ip) => write!(f, "address {ip}"),
            Key::User(user) => write!(f, "user {user:?}"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    locked_until: Option<Instant>,
    last_failure: Instant,
}

/// A lockout that has just begun: what the log says once per burst.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    pub key: Key,
    pub failures: u32,
    pub duration: Duration,
}

#[derive(Default)]
pub struct Guessing {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Guessing {
    /// How long `peer` (or `user`) must still wait; `None` when a password may be checked.
    pub fn wait(&self, peer: IpAddr, user: &str, now: Instant) -> Option<Duration> {
        let entries = self.entries.lock().ok()?;
        keys(peer, user)
            .iter()
            .filter_map(|k| entries.get(k)?.locked_until)
            .filter_map(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
            .max()
    }

    /// Counts a wrong password. Returns whether it is the first of a burst
    /// from `peer`, and the lockouts it begins.
    pub fn failed(&self, peer: IpAddr, user: &str, now: Instant) -> (bool, Vec<Lockout>) {
        let Ok(mut entries) = self.entries.lock() else {
            return (false, Vec::new());
        };
        let mut first = false;
        let mut begun = Vec::new();
        for (key, free) in keys(peer, user)
            .into_iter()
            .zip([FREE_PER_ADDRESS, FREE_PER_USER])
        {
            if !entries.contains_key(&key) && entries.len() >= MAX_ENTRIES {
                make_room(&mut entries, now);
            }
            let entry = entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                locked_until: None,
                last_failure: now,
            });
            if now.saturating_duration_since(entry.last_failure) > FORGET_AFTER {
                entry.failures = 0;
                entry.locked_until = None;
            }
            entry.failures = entry.failures.saturating_add(1);
            entry.last_failure = now;
            if matches!(key, Key::Address(_)) && entry.failures == 1 {
                first = true;
            }
            if let Some(over) = entry.failures.checked_sub(free).filter(|n| *n > 0) {
                let duration = lockout(over);
                entry.locked_until = now.checked_add(duration);
                begun.push(Lockout {
                    key,
                    failures: entry.failures,
                    duration,
                });
            }
        }
        (first, begun)
    }

    /// The right password: `peer`'s and `user`'s counters start again.
    pub fn succeeded(&self, peer: IpAddr, user: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            for key in keys(peer, user) {
                entries.remove(&key);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

/// The `over`th lockout (1, 2, ...): 1 s, 2 s, 4 s, ... up to `MAX_LOCKOUT`.
fn lockout(over: u32) -> Duration {
    let doublings = over.saturating_sub(1).min(16);
    FIRST_LOCKOUT
        .saturating_mul(1u32 << doublings)
        .min(MAX_LOCKOUT)
}

fn keys(peer: IpAddr, user: &str) -> [Key; 2] {
    let address = match peer.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    };
    [
        Key::Address(address),
        Key::User(user.chars().take(MAX_USER_CHARS).collect()),
    ]
}

/// Drops forgotten counters; when none are, the least recently failed.
fn make_room(entries: &mut HashMap<Key, Entry>, now: Instant) {
    entries.retain(|_, e| {
        now.saturating_duration_since(e.last_failure) <= FORGET_AFTER
            || e.locked_until.is_some_and(|u| u > now)
    });
    if entries.len() >= MAX_ENTRIES
        && let Some(oldest) = entries
            .iter()
            .min_by_key(|(_, e)| e.last_failure)
            .map(|(k, _)| k.clone())
    {
        entries.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_is_locked_out_after_a_few_failures_for_doubling_times() {
        let g = Guessing::default();
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        let (first, begun) = g.failed(a, "dpx", t0);
        assert!(first && begun.is_empty());
        for _ in 1..FREE_PER_ADDRESS {
            let (first, begun) = g.failed(a, "dpx", t0);
            assert!(!first && begun.is_empty());
            assert_eq!(g.wait(a, "dpx", t0), None);
        }
        let (_, begun) = g.failed(a, "dpx", t0);
        assert_eq!(
            begun,
            vec![Lockout {
                key: Key::Address(a),
                failures: FREE_PER_ADDRESS + 1,
                duration: FIRST_LOCKOUT
            }]
        );
        assert_eq!(g.wait(a, "dpx", t0), Some(FIRST_LOCKOUT));
        assert_eq!(
            g.wait(a, "other", t0),
            Some(FIRST_LOCKOUT),
            "any user from it"
        );
        assert_eq!(g.wait(ip("192.0.2.2"), "other", t0), None, "others are not");
        let t1 = t0 + FIRST_LOCKOUT;
        assert_eq!(g.wait(a, "dpx", t1), None);
        let (_, begun) = g.failed(a, "dpx", t1);
        assert_eq!(begun[0].duration, FIRST_LOCKOUT * 2);
        assert_eq!(lockout(100), MAX_LOCKOUT);
        g.succeeded(a, "dpx");
        assert_eq!(g.wait(a, "dpx", t1), None);
        assert_eq!(g.len(), 0);
    }

    #[test]
    fn a_user_guessed_at_from_many_addresses_is_locked_out_too() {
        let g = Guessing::default();
        let t0 = Instant::now();
        for i in 0..FREE_PER_USER {
            let (_, begun) = g.failed(ip(&format!("198.51.100.{i}")), "ci", t0);
            assert!(begun.is_empty());
        }
        let (_, begun) = g.failed(ip("203.0.113.9"), "ci", t0);
        assert_eq!(begun.len(), 1);
        assert_eq!(begun[0].key, Key::User("ci".into()));
        assert!(g.wait(ip("203.0.113.10"), "ci", t0).is_some());
        assert!(g.wait(ip("203.0.113.10"), "dpx", t0).is_none());
    }

    #[test]
    fn an_ipv6_64_counts_as_one_address_and_the_table_stays_bounded() {
        let g = Guessing::default();
        let t0 = Instant::now();
        for i in 0..=FREE_PER_ADDRESS {
            g.failed(ip(&format!("2001:db8::{i:x}")), &format!("u{i}"), t0);
        }
        assert!(g.wait(ip("2001:db8::ffff"), "x", t0).is_some());
        assert!(g.wait(ip("2001:db8:0:1::1"), "x", t0).is_none());
        for i in 0..(MAX_ENTRIES as u32 + 50) {
            let user = format!("user-{i}-{}", "x".repeat(200));
            g.failed(IpAddr::V4(std::net::Ipv4Addr::from(i)), &user, t0);
        }
        assert!(g.len() <= MAX_ENTRIES, "{}", g.len());
    }

    #[test]
    fn a_quiet_quarter_hour_forgets_the_count() {
        let g = Guessing::default();
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..FREE_PER_ADDRESS {
            g.failed(a, "dpx", t0);
        }
        // Exactly FORGET_AFTER later the count still stands: the next locks out.
        let (first, begun) = g.failed(a, "dpx", t0 + FORGET_AFTER);
        assert!(!first);
        assert_eq!(begun.len(), 1);
        let later = t0 + FORGET_AFTER * 2 + Duration::from_secs(1);
        let (first, begun) = g.failed(a, "dpx", later);
        assert!(first, "a new burst");
        assert!(begun.is_empty());
        assert_eq!(g.wait(a, "dpx", later), None);
    }

    #[test]
    fn long_user_names_count_by_their_first_characters() {
        let g = Guessing::default();
        let t0 = Instant::now();
        let base = "u".repeat(MAX_USER_CHARS);
        for i in 0..=FREE_PER_USER {
            g.failed(ip(&format!("198.51.100.{i}")), &format!("{base}{i}"), t0);
        }
        assert!(
            g.wait(ip("203.0.113.1"), &format!("{base}zzz"), t0)
                .is_some()
        );
        assert!(g.wait(ip("203.0.113.1"), &base[1..], t0).is_none());
    }

    fn entry(last_failure: Instant, locked_until: Option<Instant>) -> Entry {
        Entry {
            failures: 1,
            locked_until,
            last_failure,
        }
    }

    #[test]
    fn making_room_drops_forgotten_counters_unless_still_locked() {
        let t0 = Instant::now();
        let now = t0 + FORGET_AFTER + Duration::from_secs(1);
        let user = |s: &str| Key::User(s.into());
        let mut entries = HashMap::from([
            (user("forgotten"), entry(t0, None)),
            (user("forgotten-lock-ended"), entry(t0, Some(now))),
            (
                user("forgotten-but-locked"),
                entry(t0, Some(now + Duration::from_secs(1))),
            ),
            (user("just-remembered"), entry(now - FORGET_AFTER, None)),
            (user("recent"), entry(now, None)),
        ]);
        make_room(&mut entries, now);
        let mut kept: Vec<_> = entries.keys().map(|k| k.to_string()).collect();
        kept.sort();
        assert_eq!(
            kept,
            [
                "user \"forgotten-but-locked\"",
                "user \"just-remembered\"",
                "user \"recent\""
            ]
        );
    }

    #[test]
    fn a_full_table_of_remembered_counters_loses_its_oldest() {
        let t0 = Instant::now();
        let mut entries: HashMap<Key, Entry> = (0..MAX_ENTRIES)
            .map(|i| {
                let at = t0 + Duration::from_millis(1 + i as u64);
                (Key::User(format!("u{i}")), entry(at, None))
            })
            .collect();
        entries.insert(Key::User("u0".into()), entry(t0, None));
        let now = t0 + Duration::from_secs(60);
        make_room(&mut entries, now);
        assert_eq!(entries.len(), MAX_ENTRIES - 1);
        assert!(!entries.contains_key(&Key::User("u0".into())));
        // One short of full: nothing remembered goes.
        make_room(&mut entries, now);
        assert_eq!(entries.len(), MAX_ENTRIES - 1);
    }

    #[test]
    fn a_table_not_yet_full_keeps_forgotten_counters() {
        let g = Guessing::default();
        let t0 = Instant::now();
        g.failed(ip("192.0.2.1"), "a", t0);
        let later = t0 + FORGET_AFTER * 2;
        g.failed(ip("192.0.2.2"), "b", later);
        assert_eq!(g.len(), 4, "room is made only when the table is full");
    }

    #[test]
    fn a_count_is_remembered_for_a_quarter_hour() {
        let g = Guessing::default();
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..FREE_PER_ADDRESS {
            g.failed(a, "dpx", t0);
        }
        let (first, begun) = g.failed(a, "dpx", t0 + Duration::from_secs(15 * 60));
        assert!(!first);
        assert_eq!(begun.len(), 1, "the sixth wrong password locks out");
        let (first, _) = g.failed(a, "dpx", t0 + Duration::from_secs(30 * 60 + 1));
        assert!(first, "more than a quarter hour on: a new burst");
    }
    #[test]
    fn lockouts_double_from_a_second_to_five_minutes() {
        assert_eq!(lockout(1), Duration::from_secs(1));
        assert_eq!(lockout(2), Duration::from_secs(2));
        assert_eq!(lockout(4), Duration::from_secs(8));
        assert_eq!(lockout(9), Duration::from_secs(256));
        assert_eq!(lockout(10), MAX_LOCKOUT);
        assert_eq!(lockout(u32::MAX), MAX_LOCKOUT);
    }
}
