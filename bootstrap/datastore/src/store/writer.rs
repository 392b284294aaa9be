//! The single writer. Requests queue on a channel; the writer thread takes
//! everything queued, evaluates it in one database transaction (each
//! request under its own savepoint) and commits once: one fsync for the
//! whole group. Revisions are assigned here, so they are gapless and
//! committed in order.

use std::collections::HashSet;
use std::sync::Arc;

use k3r_etcd_proto::etcdserverpb::{
    DeleteRangeRequest, RequestOp, TxnRequest, TxnResponse, request_op,
};
use tokio::sync::{mpsc, oneshot};

use super::hub::{Batch, Hub};
use super::lessor::Lessor;
use super::metrics::Metrics;
use super::remote;
use super::txn::{LeaseCheck, TxnEval, validate_txn};
use super::types::{Change, Revisions};
use crate::backend::{Reader, WriteTxn, Writer};
use crate::error::{Error, Result};

/// Largest number of requests committed together.
const MAX_BATCH: usize = 512;

pub enum WriteOp {
    Txn(TxnRequest),
    LeaseGrant {
        id: i64,
        ttl: i64,
    },
    LeaseRevoke {
        id: i64,
    },
    /// Removes superseded rows in `(after, upto]` and records `upto` as the
    /// compacted revision.
    CompactChunk {
        after: i64,
        upto: i64,
    },
    /// Gives free pages back and truncates the WAL (outside a transaction).
    Reclaim,
}

#[derive(Debug)]
pub enum WriteOutput {
    Txn(TxnResponse, i64),
    Lease { revision: i64 },
    Compacted { rows: u64, revision: i64 },
    Reclaimed,
}

pub struct Job {
    pub op: WriteOp,
    pub reply: oneshot::Sender<Result<WriteOutput>>,
}

enum Effect {
    Grant(i64, i64),
    Revoke(i64),
    Change(Change),
    Compacted(i64),
}

struct BatchLeases<'a> {
    lessor: &'a Lessor,
    granted: &'a HashSet<i64>,
    revoked: &'a HashSet<i64>,
}

impl LeaseCheck for BatchLeases<'_> {
    fn exists(&self, id: i64) -> bool {
        !self.revoked.contains(&id) && (self.granted.contains(&id) || self.lessor.exists(id))
    }
}

/// Starts the writer thread. `shared` is a reader for databases that other
/// processes write to as well: their changes are published before ours.
pub fn spawn(
    mut writer: Box<dyn Writer>,
    mut shared: Option<Box<dyn Reader>>,
    hub: Arc<Hub>,
    lessor: Arc<Lessor>,
    metrics: Arc<Metrics>,
) -> Result<mpsc::Sender<Job>> {
    let (sender, mut receiver) = mpsc::channel::<Job>(4096);
    std::thread::Builder::new()
        .name("k3r-datastore-writer".into())
        .spawn(move || {
            while let Some(first) = receiver.blocking_recv() {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match receiver.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                run_batch(
                    writer.as_mut(),
                    shared.as_mut(),
                    jobs,
                    &hub,
                    &lessor,
                    &metrics,
                );
            }
            tracing::debug!("datastore writer stopped");
        })?;
    Ok(sender)
}

fn run_batch(
    writer: &mut dyn Writer,
    shared: Option<&mut Box<dyn Reader>>,
    jobs: Vec<Job>,
    hub: &Hub,
    lessor: &Lessor,
    metrics: &Metrics,
) {
    let started = std::time::Instant::now();
    let (reclaims, jobs): (Vec<Job>, Vec<Job>) = jobs
        .into_iter()
        .partition(|j| matches!(j.op, WriteOp::Reclaim));
    let mut outputs: Vec<Result<WriteOutput>> = Vec::new();
    let mut effects: Vec<Effect> = Vec::new();
    let mut revisions = Revisions::default();
    let mut locked_at = 0;
    if !jobs.is_empty() {
        let result = writer.transaction(&mut |txn| {
            outputs.clear();
            effects.clear();
            revisions = txn.lock_revisions()?;
            locked_at = revisions.current;
            let mut granted = HashSet::new();
            let mut revoked = HashSet::new();
            for job in &jobs {
                txn.savepoint()?;
                let leases = BatchLeases {
                    lessor,
                    granted: &granted,
                    revoked: &revoked,
                };
                match apply(txn, &job.op, &mut revisions, &leases, lessor) {
                    Ok((output, job_effects)) => {
                        txn.release_savepoint()?;
                        for effect in &job_effects {
                            match effect {
                                Effect::Grant(id, _) => {
                                    granted.insert(*id);
                                    revoked.remove(id);
                                }
                                Effect::Revoke(id) => {
                                    revoked.insert(*id);
                                }
                                _ => {}
                            }
                        }
                        effects.extend(job_effects);
                        outputs.push(Ok(output));
                    }
                    Err(err) if err.is_request_error() => {
                        txn.rollback_to_savepoint()?;
                        outputs.push(Err(err));
                    }
                    Err(err) => return Err(err),
                }
            }
            txn.set_current_revision(revisions.current)?;
            Ok(())
        });
        metrics.observe_commit(jobs.len(), started.elapsed());
        match result {
            Ok(()) => {
                let _order = hub.publishing();
                if let Some(reader) = shared {
                    // Other processes committed up to `locked_at` before us.
                    if let Err(err) =
                        remote::publish_missing(reader.as_mut(), hub, lessor, locked_at)
                    {
                        tracing::warn!(error = %err, "reading other servers' changes failed");
                    }
                }
                publish(effects.drain(..), hub, lessor);
                for (job, output) in jobs.into_iter().zip(outputs.drain(..)) {
                    let _ = job.reply.send(output);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "datastore commit failed");
                let message = err.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(Error::Storage(message.clone())));
                }
            }
        }
    }
    for job in reclaims {
        let result = writer.reclaim().map(|()| WriteOutput::Reclaimed);
        let _ = job.reply.send(result);
    }
}

/// Applies committed effects to memory: leases, then watchers.
fn publish(effects: impl Iterator<Item = Effect>, hub: &Hub, lessor: &Lessor) {
    let mut changes = Vec::new();
    for effect in effects {
        match effect {
            Effect::Grant(id, ttl) => lessor.grant(id, ttl),
            Effect::Revoke(id) => lessor.remove(id),
            Effect::Compacted(revision) => hub.set_compacted(revision),
            Effect::Change(change) => {
                if let Some(prev) = change.prev.as_ref().filter(|p| p.lease != 0) {
                    lessor.detach(prev.lease, &prev.key);
                }
                if !change.row.is_delete() && change.row.lease != 0 {
                    lessor.attach(change.row.lease, &change.row.key);
                }
                changes.push(change);
            }
        }
    }
    if let (Some(first), Some(last)) = (changes.first(), changes.last()) {
        let (first, last) = (first.row.revision, last.row.revision);
        hub.publish(Batch {
            first,
            last,
            changes,
        });
    }
}

fn apply(
    txn: &mut dyn WriteTxn,
    op: &WriteOp,
    revisions: &mut Revisions,
    leases: &BatchLeases<'_>,
    lessor: &Lessor,
) -> Result<(WriteOutput, Vec<Effect>)> {
    match op {
        WriteOp::Txn(request) => {
            validate_txn(request)?;
            let (response, changes) = evaluate(txn, request, revisions, leases)?;
            let effects = changes.into_iter().map(Effect::Change).collect();
            Ok((WriteOutput::Txn(response, revisions.current), effects))
        }
        WriteOp::LeaseGrant { id, ttl } => {
            if leases.exists(*id) {
                return Err(Error::LeaseExists);
            }
            txn.put_lease(*id, *ttl)?;
            Ok((
                WriteOutput::Lease {
                    revision: revisions.current,
                },
                vec![Effect::Grant(*id, *ttl)],
            ))
        }
        WriteOp::LeaseRevoke { id } => {
            if !leases.exists(*id) {
                return Err(Error::LeaseNotFound);
            }
            let mut keys = lessor.keys(*id);
            keys.sort();
            let mut request = TxnRequest::default();
            for key in keys {
                // Only keys that still carry this lease (a later put may
                // have moved them to another lease in this batch).
                if txn.get(&key)?.is_some_and(|row| row.lease == *id) {
                    request.success.push(RequestOp {
                        request: Some(request_op::Request::RequestDeleteRange(
                            DeleteRangeRequest {
                                key,
                                ..Default::default()
                            },
                        )),
                    });
                }
            }
            let (_, changes) = evaluate(txn, &request, revisions, leases)?;
            txn.delete_lease(*id)?;
            let mut effects: Vec<Effect> = changes.into_iter().map(Effect::Change).collect();
            effects.push(Effect::Revoke(*id));
            Ok((
                WriteOutput::Lease {
                    revision: revisions.current,
                },
                effects,
            ))
        }
        WriteOp::CompactChunk { after, upto } => {
            if *upto > revisions.current {
                return Err(Error::FutureRevision);
            }
            if *upto <= revisions.compacted {
                return Err(Error::Compacted {
                    compact_revision: revisions.compacted,
                });
            }
            let rows = txn.compact((*after).max(revisions.compacted), *upto)?;
            txn.set_compacted_revision(*upto)?;
            revisions.compacted = *upto;
            Ok((
                WriteOutput::Compacted {
                    rows,
                    revision: revisions.current,
                },
                vec![Effect::Compacted(*upto)],
            ))
        }
        WriteOp::Reclaim => Ok((WriteOutput::Reclaimed, Vec::new())),
    }
}

fn evaluate(
    txn: &mut dyn WriteTxn,
    request: &TxnRequest,
    revisions: &mut Revisions,
    leases: &BatchLeases<'_>,
) -> Result<(TxnResponse, Vec<Change>)> {
    let mut eval = TxnEval {
        txn,
        current: revisions.current,
        leases,
        changes: Vec::new(),
    };
    let response = eval.txn(request)?;
    let changes = eval.changes;
    if !changes.is_empty() {
        revisions.current += 1;
    }
    Ok((response, changes))
}
