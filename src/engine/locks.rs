//! Per-resource locks shared by every run in the process: two runs (an event and the timer, or two
//! deliveries of one event) never write the same connection at once, and the re-read inside the
//! lock sees the other's write. Across processes the re-read narrows the race to the write itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::model::ResourceId;

type Table = Mutex<HashMap<ResourceId, Arc<AsyncMutex<()>>>>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Holds the lock on one resource until dropped.
pub struct ResourceLock {
    _guard: OwnedMutexGuard<()>,
}

pub async fn lock(id: &ResourceId) -> ResourceLock {
    let mutex = {
        // A poisoned table only means another thread panicked while inserting; the map is still usable.
        let mut map = table()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget locks nobody holds, so the table stays small in a long-running host.
        map.retain(|_, m| Arc::strong_count(m) > 1);
        map.entry(id.clone()).or_default().clone()
    };
    ResourceLock {
        _guard: mutex.lock_owned().await,
    }
}
