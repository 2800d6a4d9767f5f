//! A table of in-memory copies bounded by bytes: what the hot set of tags
//! (`hot`) and of small blobs (`hot_blobs`) keep their entries in. Past the
//! budget, entries go until a quarter of it is free, so a full table does
//! not evict on every insert.

use std::sync::{Arc, Mutex};

/// What all entries of one table may hold together.
pub const BUDGET: usize = 8 * 1024 * 1024;

/// An entry's size in memory, with its key.
pub(super) trait Cost {
    fn cost(&self, key: &str) -> usize;
}

pub(super) struct Bounded<V> {
    inner: Mutex<Table<V>>,
}

struct Table<V> {
    entries: foldhash::HashMap<String, Arc<V>>,
    bytes: usize,
}

impl<V> Default for Bounded<V> {
    fn default() -> Self {
        Bounded {
            inner: Mutex::new(Table {
                entries: foldhash::HashMap::default(),
                bytes: 0,
            }),
        }
    }
}

impl<V> std::fmt::Debug for Bounded<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let table = self.inner.lock();
        let (entries, bytes) = table.map_or((0, 0), |t| (t.entries.len(), t.bytes));
        f.debug_struct("Bounded")
            .field("entries", &entries)
            .field("bytes", &bytes)
            .finish()
    }
}

impl<V: Cost> Bounded<V> {
    pub(super) fn get(&self, key: &str) -> Option<Arc<V>> {
        self.inner.lock().ok()?.entries.get(key).cloned()
    }

    pub(super) fn remove(&self, key: &str) {
        if let Ok(mut table) = self.inner.lock()
            && let Some(e) = table.entries.remove(key)
        {
            table.bytes = table.bytes.saturating_sub(e.cost(key));
        }
    }

    /// Keeps `value` under `key` (replacing what was there), unless it alone
    /// would take more than a quarter of the budget.
    pub(super) fn insert(&self, key: String, value: V) {
        let cost = value.cost(&key);
        if cost > BUDGET / 4 {
            return;
        }
        let Ok(mut table) = self.inner.lock() else {
            return;
        };
        if let Some(old) = table.entries.remove(&key) {
            table.bytes = table.bytes.saturating_sub(old.cost(&key));
        }
        if table.bytes.saturating_add(cost) > BUDGET {
            let target = (BUDGET - BUDGET / 4).saturating_sub(cost);
            let mut victims = Vec::new();
            let mut freed = 0usize;
            for (k, e) in &table.entries {
                if table.bytes.saturating_sub(freed) <= target {
                    break;
                }
                freed = freed.saturating_add(e.cost(k));
                victims.push(k.clone());
            }
            for k in victims {
                table.entries.remove(&k);
            }
            table.bytes = table.bytes.saturating_sub(freed);
        }
        table.bytes = table.bytes.saturating_add(cost);
        table.entries.insert(key, Arc::new(value));
    }

    /// Every entry, for tests that look inside.
    #[cfg(test)]
    pub(super) fn values(&self) -> Vec<Arc<V>> {
        self.inner
            .lock()
            .unwrap()
            .entries
            .values()
            .cloned()
            .collect()
    }

    /// The bytes the table counts it holds.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.inner.lock().map_or(0, |t| t.bytes)
    }

    /// How many entries it holds, and what they cost together.
    #[cfg(test)]
    pub(super) fn held(&self) -> (usize, usize) {
        let t = self.inner.lock().unwrap();
        let sum = t.entries.iter().map(|(k, v)| v.cost(k)).sum();
        (t.entries.len(), sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sized(usize);

    impl Cost for Sized {
        fn cost(&self, key: &str) -> usize {
            key.len() + self.0
        }
    }

    fn held(table: &Bounded<Sized>) -> (usize, usize, usize) {
        let (count, sum) = table.held();
        (count, table.bytes(), sum)
    }

    #[test]
    fn the_table_stays_within_its_budget_and_its_count_matches_what_it_holds() {
        let table = Bounded::default();
        for n in 0..1000 {
            table.insert(format!("{n:08}"), Sized(64 * 1024));
            let (_, bytes, sum) = held(&table);
            assert!(bytes <= BUDGET, "{bytes} after {n}");
            assert_eq!(bytes, sum);
        }
        let (count, _, _) = held(&table);
        // Evicting frees a quarter at once: between 3/4 and all of 128 entries.
        assert!((90..128).contains(&count), "{count} entries");
        // Replacing a key counts it once; removing it gives its bytes back.
        let key = format!("{:08}", 999);
        table.insert(key.clone(), Sized(10));
        let (_, bytes, sum) = held(&table);
        assert_eq!(bytes, sum);
        table.remove(&key);
        assert!(table.get(&key).is_none());
        let (_, bytes, sum) = held(&table);
        assert_eq!(bytes, sum);
    }

    #[test]
    fn an_entry_larger_than_a_quarter_of_the_budget_is_not_kept() {
        let table = Bounded::default();
        table.insert("huge".into(), Sized(BUDGET / 4));
        assert!(table.get("huge").is_none());
        table.insert("fits".into(), Sized(BUDGET / 4 - 4));
        assert!(table.get("fits").is_some());
    }
}
