//! Event ids already processed, remembered for a while (Event Grid delivers at least once). Bounded
//! in size and time; an id is recorded only after its processing succeeded, so a redelivery after a
//! failure is processed again.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Dedupe {
    ttl: Duration,
    capacity: usize,
    done: Mutex<HashMap<String, Instant>>,
}

impl Dedupe {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            done: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        // A panic while holding the lock cannot leave the map inconsistent: keep using it.
        self.done.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True when `key` was processed successfully within the window.
    pub fn is_done(&self, key: &str) -> bool {
        let mut map = self.map();
        match map.get(key) {
            Some(at) if at.elapsed() < self.ttl => true,
            Some(_) => {
                map.remove(key);
                false
            }
            None => false,
        }
    }

    /// Records keys whose processing succeeded.
    pub fn mark_done<I: IntoIterator<Item = String>>(&self, keys: I) {
        let now = Instant::now();
        let mut map = self.map();
        for k in keys {
            map.insert(k, now);
        }
        if map.len() > self.capacity {
            let ttl = self.ttl;
            map.retain(|_, at| at.elapsed() < ttl);
        }
        if map.len() > self.capacity {
            // Still full of live ids: forget the oldest.
            let mut by_age: Vec<(String, Instant)> =
                map.iter().map(|(k, at)| (k.clone(), *at)).collect();
            by_age.sort_by_key(|(_, at)| *at);
            let excess = map.len() - self.capacity;
            for (k, _) in by_age.into_iter().take(excess) {
                map.remove(&k);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_within_the_window_and_forgets_after() {
        let d = Dedupe::new(Duration::from_millis(50), 10);
        assert!(!d.is_done("a"));
        d.mark_done(["a".to_string()]);
        assert!(d.is_done("a"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!d.is_done("a"));
        assert!(d.is_empty());
    }

    #[test]
    fn bounded_by_capacity_forgetting_the_oldest() {
        let d = Dedupe::new(Duration::from_secs(600), 3);
        for k in ["a", "b", "c", "d", "e"] {
            d.mark_done([k.to_string()]);
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(d.len(), 3);
        assert!(!d.is_done("a") && !d.is_done("b"));
        assert!(d.is_done("c") && d.is_done("e"));
    }
}
