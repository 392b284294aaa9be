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
    publish_order: Mutex<()>,
    sender: broadcast::Sender<Arc<Batch>>,
}

impl Hub {
    pub fn new(revisions: Revisions, capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self {
            revisions: Mutex::new(revisions),
            publish_order: Mutex::new(()),
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

    /// Publishes the part of `batch` that is newer than what was already
    /// published (several publishers can race on a shared database).
    pub fn publish(&self, mut batch: Batch) {
        let mut revs = self.lock();
        if batch.last <= revs.current {
            return;
        }
        batch.changes.retain(|c| c.row.revision > revs.current);
        batch.first = batch.first.max(revs.current + 1);
        revs.current = batch.last;
        // No receivers is fine: nobody is watching.
        let _ = self.sender.send(Arc::new(batch));
    }

    /// Serialises the publishers of a shared database (the writer and the
    /// remote-change poller), so that revisions are published without gaps.
    pub fn publishing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.publish_order.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_compacted(&self, revision: i64) {
        let mut revs = self.lock();
        revs.compacted = revs.compacted.max(revision);
    }
}
