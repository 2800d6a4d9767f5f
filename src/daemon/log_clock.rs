//! The log lines' timestamps (`2026-12-05T04:24:01.108068Z`, as
//! tracing-subscriber's default clock writes them), with the date and time
//! of day formatted once a second per thread instead of once per line: a
//! busy `serve` logs a line per request, and formatting the calendar date
//! each time showed in its profile.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// The clock for `tracing_subscriber::fmt().with_timer(..)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogClock;

thread_local! {
    /// The second last formatted on this thread, and its text up to the
    /// seconds (`2026-12-05T04:24:01`).
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

impl FormatTime for LogClock {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write_stamp(SystemTime::now(), w)
    }
}

/// Writes `t` as RFC 3339 with microseconds, in UTC.
pub(super) fn write_stamp(t: SystemTime, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    let Ok(since) = t.duration_since(UNIX_EPOCH) else {
        // Before 1970: not worth a fast path.
        return write!(out, "{}", humantime::format_rfc3339_micros(t));
    };
    let secs = since.as_secs();
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != secs {
            let whole = UNIX_EPOCH + std::time::Duration::from_secs(secs);
            *text = humantime::format_rfc3339_seconds(whole).to_string();
            // "…:01Z" without its zone letter; the fraction and zone follow.
            text.pop();
            *second = secs;
        }
        out.write_str(text)?;
        write!(out, ".{:06}Z", since.subsec_micros())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn stamp(t: SystemTime) -> String {
        let mut s = String::new();
        write_stamp(t, &mut s).unwrap();
        s
    }

    #[test]
    fn stamps_match_rfc3339_with_microseconds_across_seconds() {
        let base = UNIX_EPOCH + Duration::from_secs(1_796_443_441);
        for offset_us in [0u64, 1, 999_999, 1_000_000, 1_000_001, 86_400_000_000] {
            let t = base + Duration::from_micros(offset_us);
            assert_eq!(
                stamp(t),
                humantime::format_rfc3339_micros(t).to_string(),
                "{offset_us}"
            );
        }
        // Back and forth between two seconds on one thread.
        let a = base + Duration::from_millis(1500);
        let b = base + Duration::from_millis(500);
        assert_eq!(stamp(a), humantime::format_rfc3339_micros(a).to_string());
        assert_eq!(stamp(b), humantime::format_rfc3339_micros(b).to_string());
        assert_eq!(stamp(b), "2026-12-05T04:04:01.500000Z");
    }
}
