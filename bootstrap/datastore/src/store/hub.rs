//! Fan-out of committed changes to watch streams. A stream is woken only
//! by batches that touch a key range one of its watchers covers: the API
//! server opens one stream per resource type (dozens), and waking all of
//! them for every write cost more CPU than the write itself. A stream that
//! is not woken still knows how far it is complete (`published`), so its
//! progress notifications stay truthful.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::Notify;

use super::types::{Change, KeyRange, Revisions};

/// Changes committed together, in (revision, sub) order, covering every
/// revision in `first..=last`.
#[derive(Debug)]
pub struct Batch {
    pub first: i64,
    pub last: i64,
    pub changes: Vec<Change>,
}

pub struct Hub {
    state: Mutex<State>,
    publish_order: Mutex<()>,
    /// Batches a subscriber may have queued before it counts as lagging.
    capacity: usize,
}

struct State {
    revisions: Revisions,
    subscribers: Vec<Weak<Subscriber>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    pub fn new(revisions: Revisions, capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                revisions,
                subscribers: Vec::new(),
            }),
            publish_order: Mutex::new(()),
            capacity: capacity.max(1),
        }
    }

    pub fn revisions(&self) -> Revisions {
        lock(&self.state).revisions
    }

    /// A new subscriber with no interest yet, complete up to the returned
    /// revisions' `current`.
    pub fn subscribe(&self) -> (Arc<Subscriber>, Revisions) {
        let mut state = lock(&self.state);
        let subscriber = Arc::new(Subscriber {
            inner: Mutex::new(SubscriberState {
                interest: Vec::new(),
                queue: VecDeque::new(),
                published: state.revisions.current,
                lagged: false,
            }),
            wake: Notify::new(),
        });
        state.subscribers.push(Arc::downgrade(&subscriber));
        (subscriber, state.revisions)
    }

    /// Publishes the part of `batch` that is newer than what was already
    /// published (several publishers can race on a shared database).
    pub fn publish(&self, mut batch: Batch) {
        let mut state = lock(&self.state);
        if batch.last <= state.revisions.current {
            return;
        }
        let current = state.revisions.current;
        batch.changes.retain(|c| c.row.revision > current);
        batch.first = batch.first.max(current + 1);
        state.revisions.current = batch.last;
        let batch = Arc::new(batch);
        state.subscribers.retain(|weak| match weak.upgrade() {
            Some(subscriber) => {
                subscriber.offer(&batch, self.capacity);
                true
            }
            None => false,
        });
    }

    /// Serialises the publishers of a shared database (the writer and the
    /// remote-change poller), so that revisions are published without gaps.
    pub fn publishing(&self) -> MutexGuard<'_, ()> {
        lock(&self.publish_order)
    }

    pub fn set_compacted(&self, revision: i64) {
        let mut state = lock(&self.state);
        state.revisions.compacted = state.revisions.compacted.max(revision);
    }
}

/// One watch stream's view of the fan-out.
pub struct Subscriber {
    inner: Mutex<SubscriberState>,
    wake: Notify,
}

struct SubscriberState {
    /// Key ranges of the stream's watchers.
    interest: Vec<KeyRange>,
    /// Published batches touching `interest`, not yet taken.
    queue: VecDeque<Arc<Batch>>,
    /// Every batch up to this revision that touches `interest` is queued
    /// (or was taken).
    published: i64,
    /// The queue overflowed and was dropped: read the history instead.
    lagged: bool,
}

/// What a subscriber has to dispatch.
pub enum Pending {
    /// These batches, then the stream is complete up to `upto`.
    Batches { batches: Vec<Arc<Batch>>, upto: i64 },
    /// The stream fell behind: read revisions up to `upto` from the store.
    Lagged { upto: i64 },
}

impl Subscriber {
    fn offer(&self, batch: &Arc<Batch>, capacity: usize) {
        let mut state = lock(&self.inner);
        state.published = batch.last;
        let wanted = batch
            .changes
            .iter()
            .any(|c| state.interest.iter().any(|r| r.contains(&c.row.key)));
        if !wanted || state.lagged {
            return;
        }
        if state.queue.len() >= capacity {
            state.queue.clear();
            state.lagged = true;
        } else {
            state.queue.push_back(Arc::clone(batch));
        }
        drop(state);
        self.wake.notify_one();
    }

    /// Resolves when a batch this subscriber is interested in arrives (at
    /// once if one arrived since the last call).
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// Takes what is pending.
    pub fn take(&self) -> Pending {
        let mut state = lock(&self.inner);
        let upto = state.published;
        if std::mem::take(&mut state.lagged) {
            return Pending::Lagged { upto };
        }
        Pending::Batches {
            batches: state.queue.drain(..).collect(),
            upto,
        }
    }

    /// Replaces the interest; returns what was pending under the old one
    /// (to dispatch to the old watchers). Batches published afterwards are
    /// matched against the new interest.
    pub fn set_interest(&self, interest: Vec<KeyRange>) -> Pending {
        let mut state = lock(&self.inner);
        state.interest = interest;
        drop(state);
        self.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::types::LogRow;

    fn batch(revision: i64, key: &str) -> Batch {
        Batch {
            first: revision,
            last: revision,
            changes: vec![Change {
                row: LogRow {
                    revision,
                    sub: 0,
                    key: key.as_bytes().to_vec(),
                    create_revision: revision,
                    prev_revision: 0,
                    version: 1,
                    lease: 0,
                    value: Vec::new(),
                },
                prev: None,
            }],
        }
    }

    fn prefix(p: &str) -> KeyRange {
        let mut end = p.as_bytes().to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        KeyRange::new(p.as_bytes(), &end)
    }

    fn revisions(current: i64) -> Revisions {
        Revisions {
            current,
            ..Default::default()
        }
    }

    fn batches(pending: Pending) -> (Vec<i64>, i64) {
        match pending {
            Pending::Batches { batches, upto } => (batches.iter().map(|b| b.last).collect(), upto),
            Pending::Lagged { .. } => panic!("unexpected lag"),
        }
    }

    #[tokio::test]
    async fn only_interested_subscribers_are_woken_and_all_advance() {
        let hub = Hub::new(revisions(1), 16);
        let (pods, start) = hub.subscribe();
        let (maps, _) = hub.subscribe();
        assert_eq!(start.current, 1);
        let _ = pods.set_interest(vec![prefix("/pods/")]);
        let _ = maps.set_interest(vec![prefix("/maps/")]);
        hub.publish(batch(2, "/pods/a"));
        hub.publish(batch(3, "/pods/b"));
        // The pods stream is woken; the maps stream is not, yet is complete
        // up to revision 3 (nothing of its own happened).
        tokio::time::timeout(std::time::Duration::from_secs(1), pods.woken())
            .await
            .expect("pods woken");
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), maps.woken())
                .await
                .is_err(),
            "maps stream must not be woken"
        );
        assert_eq!(batches(pods.take()), (vec![2, 3], 3));
        assert_eq!(batches(maps.take()), (vec![], 3));
    }

    #[test]
    fn an_overflowing_queue_turns_into_lag_then_recovers() {
        let hub = Hub::new(revisions(1), 2);
        let (slow, _) = hub.subscribe();
        let _ = slow.set_interest(vec![prefix("/a/")]);
        for revision in 2..=5 {
            hub.publish(batch(revision, "/a/x"));
        }
        match slow.take() {
            Pending::Lagged { upto } => assert_eq!(upto, 5),
            Pending::Batches { .. } => panic!("the queue overflowed"),
        }
        hub.publish(batch(6, "/a/y"));
        assert_eq!(batches(slow.take()), (vec![6], 6));
    }

    #[test]
    fn a_wider_interest_applies_to_later_batches_only() {
        let hub = Hub::new(revisions(1), 16);
        let (stream, _) = hub.subscribe();
        let _ = stream.set_interest(vec![prefix("/a/")]);
        hub.publish(batch(2, "/a/1"));
        hub.publish(batch(3, "/b/1"));
        // What was pending under the old interest comes back; revision 3
        // (before the new range) is the caller's to replay from history.
        assert_eq!(
            batches(stream.set_interest(vec![prefix("/a/"), prefix("/b/")])),
            (vec![2], 3)
        );
        hub.publish(batch(4, "/b/2"));
        assert_eq!(batches(stream.take()), (vec![4], 4));
    }

    #[test]
    fn stale_and_overlapping_publishes_are_trimmed() {
        let hub = Hub::new(revisions(1), 16);
        let (stream, _) = hub.subscribe();
        let _ = stream.set_interest(vec![prefix("/a/")]);
        hub.publish(batch(2, "/a/1"));
        hub.publish(batch(2, "/a/1"));
        assert_eq!(batches(stream.take()), (vec![2], 2));
        assert_eq!(hub.revisions().current, 2);
    }
}
