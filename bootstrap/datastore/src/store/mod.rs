//! The MVCC store: etcd semantics over a [`Backend`].

pub mod hub;
pub mod lessor;
pub mod metrics;
mod range;
mod readers;
mod remote;
mod txn;
pub mod types;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use k3r_etcd_proto::etcdserverpb::{
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
    RequestOp, TxnRequest, TxnResponse, request_op, response_op,
};
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};

use self::hub::Hub;
use self::lessor::{LeaseInfo, Lessor};
use self::metrics::Metrics;
use self::readers::ReaderPool;
use self::types::{Change, KeyRange, Revisions};
use self::writer::{Job, WriteOp, WriteOutput};
use crate::backend::Backend;
use crate::error::{Error, Result};

/// Tunables of the store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// How often automatic compaction runs; zero disables it.
    pub compaction_interval: Duration,
    /// Automatic compaction compacts everything older than the newest
    /// `compaction_retain` revisions…
    pub compaction_retain: i64,
    /// …and everything that was already history this long ago (etcd's
    /// periodic retention), so an idle database shrinks to its live data.
    pub compaction_retain_age: Duration,
    /// Revisions removed per compaction step, so writes interleave.
    pub compaction_batch: i64,
    /// Queue length of the watch fan-out, in commits.
    pub watch_buffer: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            compaction_interval: Duration::from_secs(60),
            compaction_retain: 1000,
            compaction_retain_age: Duration::from_secs(300),
            compaction_batch: 1000,
            watch_buffer: 1024,
        }
    }
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    kind: &'static str,
    readers: Arc<ReaderPool>,
    jobs: mpsc::Sender<Job>,
    hub: Arc<Hub>,
    lessor: Arc<Lessor>,
    metrics: Arc<Metrics>,
    config: StoreConfig,
    compaction: AsyncMutex<()>,
}

impl Store {
    /// Opens the store: creates the schema, restores revisions and leases,
    /// starts the writer thread and the background lease and compaction
    /// loops. Must be called inside a Tokio runtime.
    pub async fn open(backend: Arc<dyn Backend>, config: StoreConfig) -> Result<Self> {
        let kind = backend.kind();
        let init_backend = Arc::clone(&backend);
        tokio::task::spawn_blocking(move || init_backend.init())
            .await
            .map_err(|e| Error::Storage(e.to_string()))??;
        let readers = ReaderPool::new(Arc::clone(&backend));
        let (revisions, leases, leased_keys) = readers
            .read(|r| Ok((r.revisions()?, r.leases()?, r.leased_keys()?)))
            .await?;
        let lessor = Arc::new(Lessor::default());
        for (id, ttl) in leases {
            lessor.grant(id, ttl);
        }
        for (id, key) in leased_keys {
            lessor.attach(id, &key);
        }
        let hub = Arc::new(Hub::new(revisions, config.watch_buffer));
        let metrics = Arc::new(Metrics::new());
        let writer_backend = Arc::clone(&backend);
        let writer = tokio::task::spawn_blocking(move || writer_backend.writer())
            .await
            .map_err(|e| Error::Storage(e.to_string()))??;
        let shared_backend = Arc::clone(&backend);
        let shared = if kind == "sqlite" {
            None
        } else {
            Some(
                tokio::task::spawn_blocking(move || shared_backend.reader())
                    .await
                    .map_err(|e| Error::Storage(e.to_string()))??,
            )
        };
        let jobs = writer::spawn(
            writer,
            shared,
            Arc::clone(&hub),
            Arc::clone(&lessor),
            Arc::clone(&metrics),
        )?;
        let store = Store {
            inner: Arc::new(Inner {
                kind,
                readers,
                jobs,
                hub,
                lessor,
                metrics,
                config,
                compaction: AsyncMutex::new(()),
            }),
        };
        tracing::info!(
            backend = kind,
            revision = revisions.current,
            compacted = revisions.compacted,
            "datastore open"
        );
        store.spawn_background();
        if kind != "sqlite" {
            store.spawn_remote_poller(backend)?;
        }
        Ok(store)
    }

    pub fn kind(&self) -> &'static str {
        self.inner.kind
    }

    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn revisions(&self) -> Revisions {
        self.inner.hub.revisions()
    }

    async fn submit(&self, op: WriteOp) -> Result<WriteOutput> {
        let (reply, response) = oneshot::channel();
        self.inner
            .jobs
            .send(Job { op, reply })
            .await
            .map_err(|_| Error::ShuttingDown)?;
        response.await.map_err(|_| Error::ShuttingDown)?
    }

    pub async fn range(&self, req: RangeRequest) -> Result<(RangeResponse, i64)> {
        if req.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        self.inner
            .readers
            .read(move |reader| {
                let revs = reader.revisions()?;
                let revision = if req.revision <= 0 {
                    revs.current
                } else {
                    req.revision
                };
                if revision > revs.current {
                    return Err(Error::FutureRevision);
                }
                if revision < revs.compacted {
                    return Err(Error::Compacted {
                        compact_revision: revs.compacted,
                    });
                }
                let range = KeyRange::new(&req.key, &req.range_end);
                if range.is_empty() {
                    return Ok((RangeResponse::default(), revs.current));
                }
                if req.count_only {
                    let count = reader.count(&range, revision)?;
                    return Ok((
                        range::shape_range_response(&req, Vec::new(), count),
                        revs.current,
                    ));
                }
                let full = range::needs_full_scan(&req);
                let fetch = if full || req.limit <= 0 {
                    0
                } else {
                    req.limit + 1
                };
                let rows = reader.range(&range, revision, fetch)?;
                let count = if fetch > 0 && rows.len() as i64 >= fetch {
                    reader.count(&range, revision)?
                } else {
                    rows.len() as i64
                };
                Ok((range::shape_range_response(&req, rows, count), revs.current))
            })
            .await
    }

    pub async fn txn(&self, req: TxnRequest) -> Result<(TxnResponse, i64)> {
        match self.submit(WriteOp::Txn(req)).await? {
            WriteOutput::Txn(response, revision) => Ok((response, revision)),
            other => Err(Error::Storage(format!(
                "unexpected writer output {other:?}"
            ))),
        }
    }

    pub async fn put(&self, req: PutRequest) -> Result<(PutResponse, i64)> {
        let txn = TxnRequest {
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(req)),
            }],
            ..Default::default()
        };
        let (mut response, revision) = self.txn(txn).await?;
        match response.responses.pop().and_then(|r| r.response) {
            Some(response_op::Response::ResponsePut(put)) => Ok((put, revision)),
            _ => Err(Error::Storage("put produced no response".into())),
        }
    }

    pub async fn delete_range(
        &self,
        req: DeleteRangeRequest,
    ) -> Result<(DeleteRangeResponse, i64)> {
        if req.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let txn = TxnRequest {
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestDeleteRange(req)),
            }],
            ..Default::default()
        };
        let (mut response, revision) = self.txn(txn).await?;
        match response.responses.pop().and_then(|r| r.response) {
            Some(response_op::Response::ResponseDeleteRange(delete)) => Ok((delete, revision)),
            _ => Err(Error::Storage("delete produced no response".into())),
        }
    }

    /// Compacts the history up to `revision`, in steps so that writes go on
    /// meanwhile; returns once all steps are done.
    pub async fn compact(&self, revision: i64) -> Result<i64> {
        let _serial = self.inner.compaction.lock().await;
        let revs = self.revisions();
        if revision > revs.current {
            return Err(Error::FutureRevision);
        }
        if revision <= revs.compacted {
            return Err(Error::Compacted {
                compact_revision: revs.compacted,
            });
        }
        let step = self.inner.config.compaction_batch.max(1);
        let mut after = revs.compacted;
        let mut header_revision = revs.current;
        let mut rows_removed = 0;
        while after < revision {
            let upto = (after + step).min(revision);
            match self.submit(WriteOp::CompactChunk { after, upto }).await? {
                WriteOutput::Compacted { rows, revision } => {
                    rows_removed += rows;
                    header_revision = revision;
                }
                other => {
                    return Err(Error::Storage(format!(
                        "unexpected writer output {other:?}"
                    )));
                }
            }
            after = upto;
        }
        self.inner.metrics.compacted_rows.inc_by(rows_removed);
        self.inner.metrics.compactions.inc();
        if let Err(err) = self.submit(WriteOp::Reclaim).await {
            tracing::warn!(error = %err, "reclaiming space after compaction failed");
        }
        tracing::debug!(revision, rows_removed, "compacted");
        Ok(header_revision)
    }

    pub async fn lease_grant(&self, id: i64, ttl: i64) -> Result<(i64, i64, i64)> {
        if ttl > lessor::MAX_TTL {
            return Err(Error::LeaseTtlTooLarge);
        }
        let ttl = ttl.max(lessor::MIN_TTL);
        let id = if id == 0 {
            loop {
                let candidate = rand::random::<i64>() & i64::MAX;
                if candidate != 0 && !self.inner.lessor.exists(candidate) {
                    break candidate;
                }
            }
        } else {
            id
        };
        match self.submit(WriteOp::LeaseGrant { id, ttl }).await? {
            WriteOutput::Lease { revision } => Ok((id, ttl, revision)),
            other => Err(Error::Storage(format!(
                "unexpected writer output {other:?}"
            ))),
        }
    }

    pub async fn lease_revoke(&self, id: i64) -> Result<i64> {
        match self.submit(WriteOp::LeaseRevoke { id }).await? {
            WriteOutput::Lease { revision } => Ok(revision),
            other => Err(Error::Storage(format!(
                "unexpected writer output {other:?}"
            ))),
        }
    }

    pub fn lease_keep_alive(&self, id: i64) -> Result<i64> {
        self.inner.lessor.keep_alive(id).ok_or(Error::LeaseNotFound)
    }

    pub fn lease_info(&self, id: i64) -> Option<LeaseInfo> {
        self.inner.lessor.info(id)
    }

    pub fn lease_ids(&self) -> Vec<i64> {
        self.inner.lessor.ids()
    }

    /// Changes with `from <= revision <= to` in whole revisions, about
    /// `limit` at a time (see [`crate::backend::whole_revisions`]).
    pub async fn changes(&self, from: i64, to: i64, limit: i64) -> Result<Vec<Change>> {
        let rows = self
            .inner
            .readers
            .read(move |r| crate::backend::whole_revisions(r, from, to, limit))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(row, prev)| Change {
                row,
                prev: prev.map(|p| p.to_kv()),
            })
            .collect())
    }

    pub async fn size(&self) -> Result<(i64, i64)> {
        self.inner.readers.read(|r| r.size()).await
    }

    /// Other servers sharing the database commit without telling us: look
    /// for their revisions twice a second and publish them to our watchers.
    fn spawn_remote_poller(&self, backend: Arc<dyn Backend>) -> Result<()> {
        let weak = Arc::downgrade(&self.inner);
        std::thread::Builder::new()
            .name("k3r-datastore-poller".into())
            .spawn(move || {
                let mut reader: Option<Box<dyn crate::backend::Reader>> = None;
                loop {
                    std::thread::sleep(Duration::from_millis(500));
                    let Some(inner) = weak.upgrade() else { break };
                    if reader.is_none() {
                        match backend.reader() {
                            Ok(r) => reader = Some(r),
                            Err(err) => {
                                tracing::warn!(error = %err, "remote-change poller cannot connect");
                                continue;
                            }
                        }
                    }
                    let Some(conn) = reader.as_mut() else {
                        continue;
                    };
                    let polled = (|| -> Result<()> {
                        conn.begin()?;
                        let db = conn.revisions();
                        conn.end()?;
                        let db = db?;
                        if db.current > inner.hub.revisions().current {
                            let _order = inner.hub.publishing();
                            remote::publish_missing(
                                conn.as_mut(),
                                &inner.hub,
                                &inner.lessor,
                                db.current,
                            )?;
                        }
                        if db.compacted > inner.hub.revisions().compacted {
                            inner.hub.set_compacted(db.compacted);
                        }
                        Ok(())
                    })();
                    if let Err(err) = polled {
                        tracing::warn!(error = %err, "polling for other servers' changes failed");
                        // Reconnect next time.
                        reader = None;
                    }
                }
            })?;
        Ok(())
    }

    fn spawn_background(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let store = Store { inner };
                for id in store.inner.lessor.expired() {
                    match store.lease_revoke(id).await {
                        Ok(_) | Err(Error::LeaseNotFound) => {
                            tracing::debug!(lease = id, "lease expired")
                        }
                        Err(err) => {
                            tracing::warn!(lease = id, error = %err, "revoking expired lease failed")
                        }
                    }
                }
                store
                    .inner
                    .metrics
                    .current_revision
                    .set(store.revisions().current);
            }
        });
        let interval = self.inner.config.compaction_interval;
        if interval.is_zero() {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            let mut samples: std::collections::VecDeque<(std::time::Instant, i64)> =
                Default::default();
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let store = Store { inner };
                let revs = store.revisions();
                let now = std::time::Instant::now();
                samples.push_back((now, revs.current));
                // `aged` is the newest revision that was current before the
                // retention age; the sample it came from stays as reference.
                let mut aged = 0;
                if let Some(horizon) = now.checked_sub(store.inner.config.compaction_retain_age) {
                    while samples.len() > 1 && samples[1].0 <= horizon {
                        samples.pop_front();
                    }
                    if let Some(&(_, rev)) = samples.front().filter(|(at, _)| *at <= horizon) {
                        aged = rev;
                    }
                }
                let target = (revs.current - store.inner.config.compaction_retain).max(aged);
                if target > revs.compacted {
                    match store.compact(target).await {
                        Ok(_) | Err(Error::Compacted { .. }) => {}
                        Err(err) => tracing::warn!(error = %err, "automatic compaction failed"),
                    }
                }
                if let Ok((size, _)) = store.size().await {
                    store.inner.metrics.db_size_bytes.set(size);
                }
            }
        });
    }
}
