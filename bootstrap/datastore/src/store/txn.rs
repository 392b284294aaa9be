//! Evaluation of etcd requests against one write transaction. Every write
//! request (Put, DeleteRange, Txn) is evaluated as a Txn; all rows it writes
//! share one new revision, as in etcd.

use std::collections::HashSet;

use k3r_etcd_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest,
    RangeResponse, RequestOp, ResponseOp, TxnRequest, TxnResponse, compare, request_op,
    response_op,
};
use k3r_etcd_proto::mvccpb::KeyValue;

use super::range::shape_range_response;
use super::types::{Change, KeyRange, LogRow};
use crate::backend::WriteTxn;
use crate::error::{Error, Result};

/// etcd's default `--max-txn-ops`.
pub const MAX_TXN_OPS: usize = 128;

/// Lease existence as the writer sees it, including this batch's grants.
pub trait LeaseCheck {
    fn exists(&self, id: i64) -> bool;
}

pub struct TxnEval<'a> {
    pub txn: &'a mut dyn WriteTxn,
    /// The revision before this request; rows are written at `current + 1`.
    pub current: i64,
    pub leases: &'a dyn LeaseCheck,
    pub changes: Vec<Change>,
}

impl TxnEval<'_> {
    fn new_revision(&self) -> i64 {
        self.current + 1
    }

    pub fn txn(&mut self, req: &TxnRequest) -> Result<TxnResponse> {
        let mut succeeded = true;
        for cmp in &req.compare {
            if !self.compare(cmp)? {
                succeeded = false;
                break;
            }
        }
        let ops = if succeeded {
            &req.success
        } else {
            &req.failure
        };
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            responses.push(self.op(op)?);
        }
        Ok(TxnResponse {
            header: None,
            succeeded,
            responses,
        })
    }

    fn op(&mut self, op: &RequestOp) -> Result<ResponseOp> {
        let response = match &op.request {
            Some(request_op::Request::RequestRange(r)) => {
                response_op::Response::ResponseRange(self.range(r)?)
            }
            Some(request_op::Request::RequestPut(p)) => {
                response_op::Response::ResponsePut(self.put(p)?)
            }
            Some(request_op::Request::RequestDeleteRange(d)) => {
                response_op::Response::ResponseDeleteRange(self.delete(d)?)
            }
            Some(request_op::Request::RequestTxn(t)) => {
                response_op::Response::ResponseTxn(self.txn(t)?)
            }
            None => return Err(Error::InvalidRequest("empty request op".into())),
        };
        Ok(ResponseOp {
            response: Some(response),
        })
    }

    fn compare(&mut self, cmp: &Compare) -> Result<bool> {
        let range = KeyRange::new(&cmp.key, &cmp.range_end);
        let rows = match range.end {
            super::types::RangeEnd::Single => self.txn.get(&cmp.key)?.into_iter().collect(),
            _ => self.txn.range(&range)?,
        };
        let target = compare::CompareTarget::try_from(cmp.target)
            .map_err(|_| Error::InvalidRequest(format!("unknown compare target {}", cmp.target)))?;
        if rows.is_empty() {
            // etcd: a value compare on a missing key always fails; other
            // targets compare against a zero KeyValue.
            if target == compare::CompareTarget::Value {
                return Ok(false);
            }
            return compare_kv(cmp, target, &KeyValue::default());
        }
        for row in rows {
            if !compare_kv(cmp, target, &row.to_kv())? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn range(&mut self, req: &RangeRequest) -> Result<RangeResponse> {
        if req.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if req.revision > 0 && req.revision < self.new_revision() - 1 {
            return Err(Error::Unsupported(
                "k3r datastore: ranges at past revisions inside a txn are not supported".into(),
            ));
        }
        let range = KeyRange::new(&req.key, &req.range_end);
        let rows = if range.is_empty() {
            Vec::new()
        } else {
            match range.end {
                super::types::RangeEnd::Single => self.txn.get(&req.key)?.into_iter().collect(),
                _ => self.txn.range(&range)?,
            }
        };
        let count = rows.len() as i64;
        Ok(shape_range_response(req, rows, count))
    }

    fn put(&mut self, req: &PutRequest) -> Result<PutResponse> {
        if req.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let prev = self.txn.get(&req.key)?;
        if (req.ignore_value || req.ignore_lease) && prev.is_none() {
            return Err(Error::KeyNotFound);
        }
        let value = match (&prev, req.ignore_value) {
            (Some(p), true) => p.value.clone(),
            _ => req.value.clone(),
        };
        let lease = match (&prev, req.ignore_lease) {
            (Some(p), true) => p.lease,
            _ => req.lease,
        };
        if lease != 0 && !self.leases.exists(lease) {
            return Err(Error::LeaseNotFound);
        }
        let revision = self.new_revision();
        let row = LogRow {
            revision,
            sub: self.changes.len() as i64,
            key: req.key.clone(),
            create_revision: prev.as_ref().map_or(revision, |p| p.create_revision),
            prev_revision: prev.as_ref().map_or(0, |p| p.revision),
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            lease,
            value,
        };
        self.txn.append(&row)?;
        let prev_kv = prev.map(|p| p.to_kv());
        self.changes.push(Change {
            row,
            prev: prev_kv.clone(),
        });
        Ok(PutResponse {
            header: None,
            prev_kv: if req.prev_kv { prev_kv } else { None },
        })
    }

    fn delete(&mut self, req: &DeleteRangeRequest) -> Result<DeleteRangeResponse> {
        if req.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let range = KeyRange::new(&req.key, &req.range_end);
        if range.is_empty() {
            return Ok(DeleteRangeResponse::default());
        }
        let rows = match range.end {
            super::types::RangeEnd::Single => self.txn.get(&req.key)?.into_iter().collect(),
            _ => self.txn.range(&range)?,
        };
        let revision = self.new_revision();
        let mut prev_kvs = Vec::new();
        for prev in &rows {
            let row = LogRow {
                revision,
                sub: self.changes.len() as i64,
                key: prev.key.clone(),
                create_revision: 0,
                prev_revision: prev.revision,
                version: 0,
                lease: 0,
                value: Vec::new(),
            };
            self.txn.append(&row)?;
            let prev_kv = prev.to_kv();
            if req.prev_kv {
                prev_kvs.push(prev_kv.clone());
            }
            self.changes.push(Change {
                row,
                prev: Some(prev_kv),
            });
        }
        Ok(DeleteRangeResponse {
            header: None,
            deleted: rows.len() as i64,
            prev_kvs,
        })
    }
}

fn compare_kv(cmp: &Compare, target: compare::CompareTarget, kv: &KeyValue) -> Result<bool> {
    use compare::TargetUnion;
    use std::cmp::Ordering;
    let ordering = match target {
        compare::CompareTarget::Value => {
            let want: &[u8] = match &cmp.target_union {
                Some(TargetUnion::Value(v)) => v,
                _ => &[],
            };
            kv.value.as_slice().cmp(want)
        }
        compare::CompareTarget::Create => kv.create_revision.cmp(&int_target(cmp)),
        compare::CompareTarget::Mod => kv.mod_revision.cmp(&int_target(cmp)),
        compare::CompareTarget::Version => kv.version.cmp(&int_target(cmp)),
        compare::CompareTarget::Lease => kv.lease.cmp(&int_target(cmp)),
    };
    let result = compare::CompareResult::try_from(cmp.result)
        .map_err(|_| Error::InvalidRequest(format!("unknown compare result {}", cmp.result)))?;
    Ok(match result {
        compare::CompareResult::Equal => ordering == Ordering::Equal,
        compare::CompareResult::NotEqual => ordering != Ordering::Equal,
        compare::CompareResult::Greater => ordering == Ordering::Greater,
        compare::CompareResult::Less => ordering == Ordering::Less,
    })
}

fn int_target(cmp: &Compare) -> i64 {
    use compare::TargetUnion;
    match cmp.target_union {
        Some(TargetUnion::Version(v))
        | Some(TargetUnion::CreateRevision(v))
        | Some(TargetUnion::ModRevision(v))
        | Some(TargetUnion::Lease(v)) => v,
        _ => 0,
    }
}

/// etcd's request checks that run before anything is applied: op counts
/// and keys written twice in one branch.
pub fn validate_txn(req: &TxnRequest) -> Result<()> {
    if req.compare.len() > MAX_TXN_OPS
        || req.success.len() > MAX_TXN_OPS
        || req.failure.len() > MAX_TXN_OPS
    {
        return Err(Error::TooManyOps);
    }
    for branch in [&req.success, &req.failure] {
        let mut puts = HashSet::new();
        let mut deletes = Vec::new();
        collect_writes(branch, &mut puts, &mut deletes)?;
        for key in &puts {
            if deletes.iter().any(|d: &KeyRange| d.contains(key)) {
                return Err(Error::DuplicateKey);
            }
        }
    }
    Ok(())
}

fn collect_writes(
    ops: &[RequestOp],
    puts: &mut HashSet<Vec<u8>>,
    deletes: &mut Vec<KeyRange>,
) -> Result<()> {
    for op in ops {
        match &op.request {
            Some(request_op::Request::RequestPut(p)) if !puts.insert(p.key.clone()) => {
                return Err(Error::DuplicateKey);
            }
            Some(request_op::Request::RequestDeleteRange(d)) => {
                deletes.push(KeyRange::new(&d.key, &d.range_end))
            }
            Some(request_op::Request::RequestTxn(t)) => {
                validate_txn(t)?;
                // A nested branch's writes join the enclosing branch's.
                for nested in [&t.success, &t.failure] {
                    let mut nested_puts = puts.clone();
                    let mut nested_deletes = deletes.clone();
                    collect_writes(nested, &mut nested_puts, &mut nested_deletes)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}
