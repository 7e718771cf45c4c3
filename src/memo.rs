//! What a replica remembers for speed, bounded: the versions of records it read
//! (`http::machinery::etag::RecordTags`), the access tokens it verified (`auth::tokens`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A map of at most `capacity` entries, kept as two generations of at most half of it each:
/// when the young one is full, the old one is dropped and the young one becomes old. What is
/// not read for a generation is forgotten; what is read joins the young generation again, so
/// an entry in use stays. No eviction order to maintain, and a lookup is one hash.
pub struct Generations<V> {
    half: usize,
    maps: Mutex<[HashMap<String, V>; 2]>,
}

impl<V: Clone> Generations<V> {
    /// Remembers at most `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            half: (capacity / 2).max(1),
            maps: Mutex::new([HashMap::new(), HashMap::new()]),
        }
    }

    fn lock(&self) -> MutexGuard<'_, [HashMap<String, V>; 2]> {
        // Plain values: maps left by a panicking thread are still consistent.
        self.maps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry under `key`, if remembered (it then joins the young generation).
    pub fn get(&self, key: &str) -> Option<V> {
        let mut maps = self.lock();
        let [young, old] = &mut *maps;
        if let Some(found) = young.get(key) {
            return Some(found.clone());
        }
        let found = old.remove(key)?;
        Self::insert(self.half, young, old, key.to_owned(), found.clone());
        Some(found)
    }

    /// Remembers `value` under `key`, replacing what was there.
    pub fn put(&self, key: String, value: V) {
        let mut maps = self.lock();
        let [young, old] = &mut *maps;
        old.remove(&key);
        Self::insert(self.half, young, old, key, value);
    }

    fn insert(
        half: usize,
        young: &mut HashMap<String, V>,
        old: &mut HashMap<String, V>,
        key: String,
        value: V,
    ) {
        if young.len() >= half && !young.contains_key(&key) {
            *old = std::mem::take(young);
        }
        young.insert(key, value);
    }

    /// How many entries it remembers (at most its capacity).
    pub fn len(&self) -> usize {
        let maps = self.lock();
        maps[0].len() + maps[1].len()
    }

    /// Whether it remembers none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::Generations;

    #[test]
    fn it_holds_at_most_its_capacity_and_keeps_what_is_read() {
        let memo = Generations::with_capacity(4);
        memo.put("hot".into(), 1);
        for i in 0..100 {
            memo.put(format!("cold {i}"), 1);
            assert_eq!(memo.get("hot"), Some(1), "after {i}");
            assert!(memo.len() <= 4, "{} remembered", memo.len());
        }
        assert_eq!(memo.get("cold 0"), None, "forgotten");
        memo.put("hot".into(), 2);
        assert_eq!(memo.get("hot"), Some(2), "replaced");
    }
}
