//! Fan-out of committed changes to watchers. Publishing and subscribing
//! happen under one lock, so a subscriber knows exactly which revision its
//! stream starts after.

use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::types::{Change, Revisions};

/// Changes committed together, in (revision, sub) order, covering every
/// revision in `first..=last`.
#[derive(Debug)]
pub struct Batch {
    pub first: i64,
    pub last: i64,
    pub changes: Vec<Change>,
}

pub struct Hub {
    revisions: Mutex<Revisions>,
    sender: broadcast::Sender<Arc<Batch>>,
}

impl Hub {
    pub fn new(revisions: Revisions, capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self {
            revisions: Mutex::new(revisions),
            sender,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Revisions> {
        self.revisions.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn revisions(&self) -> Revisions {
        *self.lock()
    }

    /// Subscribes; the receiver yields every batch after the returned
    /// revisions' `current`.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<Batch>>, Revisions) {
        let revs = self.lock();
        (self.sender.subscribe(), *revs)
    }

    pub fn publish(&self, batch: Batch) {
        let mut revs = self.lock();
        revs.current = revs.current.max(batch.last);
        // No receivers is fine: nobody is watching.
        let _ = self.sender.send(Arc::new(batch));
    }

    pub fn set_compacted(&self, revision: i64) {
        let mut revs = self.lock();
        revs.compacted = revs.compacted.max(revision);
    }
}
