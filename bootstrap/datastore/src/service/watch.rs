//! The Watch stream. One task per gRPC stream owns all its watchers and a
//! single subscription to the store's fan-out. `seen` is the revision up to
//! which every change has been dispatched to every watcher of the stream,
//! so progress responses at `seen` are always truthful. A stream that falls
//! behind the fan-out reads the missed revisions from the database instead,
//! so no watcher is ever dropped or sees an event twice.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use k3r_etcd_proto::etcdserverpb::watch_server::Watch;
use k3r_etcd_proto::etcdserverpb::{
    WatchCreateRequest, WatchRequest, WatchResponse, watch_create_request, watch_request,
};
use k3r_etcd_proto::mvccpb::Event;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::header;
use crate::error::Error;
use crate::store::Store;
use crate::store::hub::{Batch, Pending, Subscriber};
use crate::store::types::{Change, KeyRange};

/// Rows read per step when replaying history.
const REPLAY_CHUNK: i64 = 1000;
/// Soft limit of one watch response's size: clients cap what they decode
/// (4 MiB by default in gRPC).
const RESPONSE_BYTES: usize = 1 << 20;
/// Watch ID etcd uses for stream-wide progress responses.
const PROGRESS_ALL_ID: i64 = -1;

pub struct WatchService {
    store: Store,
    progress_interval: Duration,
}

impl WatchService {
    pub fn new(store: Store, progress_interval: Duration) -> Self {
        Self {
            store,
            progress_interval,
        }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (sender, receiver) = mpsc::channel(256);
        let stream = WatchStreamTask::new(self.store.clone(), sender, self.progress_interval);
        tokio::spawn(stream.run(request.into_inner()));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

struct Watcher {
    range: KeyRange,
    /// Next revision this watcher wants.
    next: i64,
    prev_kv: bool,
    no_put: bool,
    no_delete: bool,
    progress_notify: bool,
    last_sent: Instant,
}

impl Watcher {
    fn wants(&self, change: &Change) -> bool {
        let filtered = if change.row.is_delete() {
            self.no_delete
        } else {
            self.no_put
        };
        change.row.revision >= self.next && self.range.contains(&change.row.key) && !filtered
    }
}

struct WatchStreamTask {
    store: Store,
    subscriber: Arc<Subscriber>,
    out: mpsc::Sender<Result<WatchResponse, Status>>,
    watchers: BTreeMap<i64, Watcher>,
    next_id: i64,
    seen: i64,
    progress_interval: Duration,
}

/// The client went away; stop the stream.
struct Closed;

impl WatchStreamTask {
    fn new(
        store: Store,
        out: mpsc::Sender<Result<WatchResponse, Status>>,
        progress_interval: Duration,
    ) -> Self {
        let (subscriber, revisions) = store.hub().subscribe();
        Self {
            store,
            subscriber,
            out,
            watchers: BTreeMap::new(),
            next_id: 0,
            seen: revisions.current,
            progress_interval,
        }
    }

    async fn run(mut self, mut incoming: Streaming<WatchRequest>) {
        let subscriber = Arc::clone(&self.subscriber);
        let mut ticker =
            tokio::time::interval(self.progress_interval.max(Duration::from_millis(100)) / 2);
        let result: Result<(), Closed> = async {
            loop {
                tokio::select! {
                    request = incoming.message() => match request {
                        Ok(Some(request)) => self.handle(request).await?,
                        Ok(None) | Err(_) => return Err(Closed),
                    },
                    () = subscriber.woken() => {
                        let pending = self.subscriber.take();
                        self.dispatch_pending(pending).await?;
                    }
                    _ = ticker.tick() => {
                        // Uninteresting batches wake nobody: catch up on
                        // how far the stream is complete before reporting.
                        let pending = self.subscriber.take();
                        self.dispatch_pending(pending).await?;
                        self.notify_progress().await?;
                    }
                }
            }
        }
        .await;
        let _ = result;
        self.store
            .metrics()
            .watchers
            .dec_by(self.watchers.len() as i64);
    }

    async fn send(&self, response: WatchResponse) -> Result<(), Closed> {
        self.out.send(Ok(response)).await.map_err(|_| Closed)
    }

    async fn handle(&mut self, request: WatchRequest) -> Result<(), Closed> {
        match request.request_union {
            Some(watch_request::RequestUnion::CreateRequest(create)) => self.create(create).await,
            Some(watch_request::RequestUnion::CancelRequest(cancel)) => {
                if self.watchers.remove(&cancel.watch_id).is_some() {
                    self.store.metrics().watchers.dec();
                    let pending = self.subscriber.set_interest(self.interest(None));
                    self.dispatch_pending(pending).await?;
                    self.send(WatchResponse {
                        header: header(self.seen),
                        watch_id: cancel.watch_id,
                        canceled: true,
                        ..Default::default()
                    })
                    .await?;
                }
                Ok(())
            }
            Some(watch_request::RequestUnion::ProgressRequest(_)) => {
                // Dispatch whatever is already committed first, so the answer
                // is as fresh as it can truthfully be.
                let pending = self.subscriber.take();
                self.dispatch_pending(pending).await?;
                self.send(WatchResponse {
                    header: header(self.seen),
                    watch_id: PROGRESS_ALL_ID,
                    ..Default::default()
                })
                .await
            }
            None => Ok(()),
        }
    }

    async fn create(&mut self, create: WatchCreateRequest) -> Result<(), Closed> {
        let id = if create.watch_id != 0 {
            if self.watchers.contains_key(&create.watch_id) {
                return self
                    .send(WatchResponse {
                        header: header(self.seen),
                        watch_id: create.watch_id,
                        created: true,
                        canceled: true,
                        cancel_reason: "mvcc: duplicate watch ID provided on the WatchStream"
                            .into(),
                        ..Default::default()
                    })
                    .await;
            }
            create.watch_id
        } else {
            while self.watchers.contains_key(&self.next_id) {
                self.next_id += 1;
            }
            self.next_id += 1;
            self.next_id - 1
        };
        self.send(WatchResponse {
            header: header(self.seen),
            watch_id: id,
            created: true,
            ..Default::default()
        })
        .await?;
        let compacted = self.store.revisions().compacted;
        if create.start_revision > 0 && create.start_revision < compacted {
            return self.send_compacted(id, compacted).await;
        }
        // From here on batches touching the new range wake this stream;
        // earlier ones are replayed from history below, up to `seen`.
        let range = KeyRange::new(&create.key, &create.range_end);
        let pending = self
            .subscriber
            .set_interest(self.interest(Some(range.clone())));
        self.dispatch_pending(pending).await?;
        let filters = &create.filters;
        let mut watcher = Watcher {
            range,
            next: if create.start_revision > 0 {
                create.start_revision
            } else {
                self.seen + 1
            },
            prev_kv: create.prev_kv,
            no_put: filters.contains(&(watch_create_request::FilterType::Noput as i32)),
            no_delete: filters.contains(&(watch_create_request::FilterType::Nodelete as i32)),
            progress_notify: create.progress_notify,
            last_sent: Instant::now(),
        };
        // Replay history up to what the stream has already dispatched.
        while watcher.next <= self.seen {
            let changes = match self
                .store
                .changes(watcher.next, self.seen, REPLAY_CHUNK)
                .await
            {
                Ok(changes) => changes,
                Err(err) => return self.send_error(id, err).await,
            };
            let compacted = self.store.revisions().compacted;
            if watcher.next < compacted {
                return self.send_compacted(id, compacted).await;
            }
            let Some(last) = changes.last().map(|c| c.row.revision) else {
                watcher.next = self.seen + 1;
                break;
            };
            let events = changes
                .iter()
                .filter(|c| watcher.wants(c))
                .map(|c| c.to_event(watcher.prev_kv))
                .collect::<Vec<_>>();
            if !events.is_empty() {
                watcher.last_sent = Instant::now();
                self.send_events(id, events, last).await?;
            }
            watcher.next = last + 1;
        }
        self.watchers.insert(id, watcher);
        self.store.metrics().watchers.inc();
        Ok(())
    }

    async fn send_compacted(&self, id: i64, compacted: i64) -> Result<(), Closed> {
        self.send(WatchResponse {
            header: header(self.seen),
            watch_id: id,
            canceled: true,
            compact_revision: compacted,
            ..Default::default()
        })
        .await
    }

    async fn send_error(&self, id: i64, err: Error) -> Result<(), Closed> {
        tracing::warn!(watch_id = id, error = %err, "watch failed");
        self.send(WatchResponse {
            header: header(self.seen),
            watch_id: id,
            canceled: true,
            cancel_reason: err.to_string(),
            ..Default::default()
        })
        .await
    }

    /// Sends events in responses of at most about `RESPONSE_BYTES` each,
    /// split only between revisions (a revision's events stay together, as
    /// etcd keeps them): history replays can carry thousands of events.
    async fn send_events(&self, id: i64, events: Vec<Event>, revision: i64) -> Result<(), Closed> {
        self.store.metrics().events_sent.inc_by(events.len() as u64);
        for events in split_by_size(events, RESPONSE_BYTES) {
            self.send(WatchResponse {
                header: header(revision),
                watch_id: id,
                events,
                ..Default::default()
            })
            .await?;
        }
        Ok(())
    }

    /// Key ranges of the stream's watchers, plus `extra`.
    fn interest(&self, extra: Option<KeyRange>) -> Vec<KeyRange> {
        self.watchers
            .values()
            .map(|w| w.range.clone())
            .chain(extra)
            .collect()
    }

    async fn dispatch_pending(&mut self, pending: Pending) -> Result<(), Closed> {
        match pending {
            Pending::Batches { batches, upto } => {
                for batch in batches {
                    self.dispatch_batch(&batch).await?;
                }
                if upto > self.seen {
                    // Nothing in between concerns this stream's watchers.
                    self.dispatch(&[], upto).await?;
                }
                Ok(())
            }
            Pending::Lagged { upto } => self.catch_up(upto).await,
        }
    }

    async fn dispatch_batch(&mut self, batch: &Batch) -> Result<(), Closed> {
        if batch.last <= self.seen {
            return Ok(());
        }
        let fresh: Vec<&Change> = batch
            .changes
            .iter()
            .filter(|c| c.row.revision > self.seen)
            .collect();
        self.dispatch(&fresh, batch.last).await
    }

    async fn dispatch(&mut self, changes: &[&Change], upto: i64) -> Result<(), Closed> {
        let mut outgoing = Vec::new();
        for (id, watcher) in self.watchers.iter_mut() {
            let events: Vec<_> = changes
                .iter()
                .filter(|c| watcher.wants(c))
                .map(|c| c.to_event(watcher.prev_kv))
                .collect();
            watcher.next = watcher.next.max(upto + 1);
            if !events.is_empty() {
                watcher.last_sent = Instant::now();
                outgoing.push((*id, events));
            }
        }
        self.seen = upto;
        for (id, events) in outgoing {
            self.send_events(id, events, upto).await?;
        }
        Ok(())
    }

    /// The fan-out dropped batches for this stream: read them from the
    /// database instead, up to `target`.
    async fn catch_up(&mut self, target: i64) -> Result<(), Closed> {
        while self.seen < target {
            let compacted = self.store.revisions().compacted;
            if self.seen + 1 < compacted {
                // The history this stream still needs is gone.
                let ids: Vec<i64> = self.watchers.keys().copied().collect();
                for id in ids {
                    self.watchers.remove(&id);
                    self.store.metrics().watchers.dec();
                    self.send_compacted(id, compacted).await?;
                }
                self.seen = target;
                return Ok(());
            }
            let changes = match self
                .store
                .changes(self.seen + 1, target, REPLAY_CHUNK)
                .await
            {
                Ok(changes) => changes,
                Err(err) => {
                    tracing::warn!(error = %err, "watch catch-up failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(last) = changes.last().map(|c| c.row.revision) else {
                self.seen = target;
                break;
            };
            let refs: Vec<&Change> = changes.iter().collect();
            self.dispatch(&refs, last).await?;
        }
        Ok(())
    }

    async fn notify_progress(&mut self) -> Result<(), Closed> {
        let now = Instant::now();
        let due: Vec<i64> = self
            .watchers
            .iter()
            .filter(|(_, w)| {
                w.progress_notify && now.duration_since(w.last_sent) >= self.progress_interval
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(watcher) = self.watchers.get_mut(&id) {
                watcher.last_sent = now;
            }
            self.send(WatchResponse {
                header: header(self.seen),
                watch_id: id,
                ..Default::default()
            })
            .await?;
        }
        Ok(())
    }
}

fn event_bytes(event: &Event) -> usize {
    let kv = |kv: &Option<k3r_etcd_proto::mvccpb::KeyValue>| {
        kv.as_ref()
            .map_or(0, |kv| kv.key.len() + kv.value.len() + 32)
    };
    kv(&event.kv) + kv(&event.prev_kv)
}

fn event_revision(event: &Event) -> i64 {
    event.kv.as_ref().map_or(0, |kv| kv.mod_revision)
}

/// Splits `events` into groups of about `limit` bytes at revision changes.
fn split_by_size(events: Vec<Event>, limit: usize) -> Vec<Vec<Event>> {
    let mut groups = Vec::new();
    let mut group: Vec<Event> = Vec::new();
    let mut bytes = 0;
    for event in events {
        let starts_revision = group
            .last()
            .is_none_or(|last| event_revision(last) != event_revision(&event));
        if bytes >= limit && starts_revision {
            groups.push(std::mem::take(&mut group));
            bytes = 0;
        }
        bytes += event_bytes(&event);
        group.push(event);
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use k3r_etcd_proto::mvccpb::KeyValue;

    fn event(revision: i64, size: usize) -> Event {
        Event {
            kv: Some(KeyValue {
                key: b"k".to_vec(),
                value: vec![b'v'; size],
                mod_revision: revision,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn revisions(groups: &[Vec<Event>]) -> Vec<Vec<i64>> {
        groups
            .iter()
            .map(|g| g.iter().map(event_revision).collect())
            .collect()
    }

    #[test]
    fn large_replays_split_between_revisions_only() {
        let events = vec![
            event(1, 600),
            event(2, 600),
            event(2, 600),
            event(3, 10),
            event(4, 10),
        ];
        assert_eq!(
            revisions(&split_by_size(events, 1000)),
            vec![vec![1, 2, 2], vec![3, 4]]
        );
        assert_eq!(
            revisions(&split_by_size(vec![event(1, 10), event(2, 10)], 1000)),
            vec![vec![1, 2]]
        );
        assert!(split_by_size(Vec::new(), 1000).is_empty());
    }
}
