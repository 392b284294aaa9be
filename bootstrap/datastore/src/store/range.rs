//! Shaping of Range responses: sorting, revision filters, limits, keys-only
//! and count-only, applied the way etcd applies them.

use k3r_etcd_proto::etcdserverpb::{RangeRequest, RangeResponse, range_request};

use super::types::LogRow;

/// True when the request needs every row in the range before limiting
/// (etcd reads everything when sorting or filtering).
pub fn needs_full_scan(req: &RangeRequest) -> bool {
    let by_key = req.sort_target == range_request::SortTarget::Key as i32;
    let sorted = if by_key {
        req.sort_order == range_request::SortOrder::Descend as i32
    } else {
        true
    };
    sorted
        || req.min_mod_revision > 0
        || req.max_mod_revision > 0
        || req.min_create_revision > 0
        || req.max_create_revision > 0
}

/// Builds the response from rows in key order; `count` is the number of
/// keys in the range.
pub fn shape_range_response(
    req: &RangeRequest,
    mut rows: Vec<LogRow>,
    count: i64,
) -> RangeResponse {
    if req.count_only {
        return RangeResponse {
            header: None,
            kvs: Vec::new(),
            more: false,
            count,
        };
    }
    rows.retain(|r| {
        (req.min_mod_revision == 0 || r.revision >= req.min_mod_revision)
            && (req.max_mod_revision == 0 || r.revision <= req.max_mod_revision)
            && (req.min_create_revision == 0 || r.create_revision >= req.min_create_revision)
            && (req.max_create_revision == 0 || r.create_revision <= req.max_create_revision)
    });
    let order = range_request::SortOrder::try_from(req.sort_order)
        .unwrap_or(range_request::SortOrder::None);
    // etcd: a sort target other than KEY with order NONE sorts ascending.
    let order = if order == range_request::SortOrder::None
        && req.sort_target != range_request::SortTarget::Key as i32
    {
        range_request::SortOrder::Ascend
    } else {
        order
    };
    if order != range_request::SortOrder::None {
        let target = range_request::SortTarget::try_from(req.sort_target)
            .unwrap_or(range_request::SortTarget::Key);
        rows.sort_by(|a, b| {
            let ord = match target {
                range_request::SortTarget::Key => a.key.cmp(&b.key),
                range_request::SortTarget::Version => a.version.cmp(&b.version),
                range_request::SortTarget::Create => a.create_revision.cmp(&b.create_revision),
                range_request::SortTarget::Mod => a.revision.cmp(&b.revision),
                range_request::SortTarget::Value => a.value.cmp(&b.value),
            };
            if order == range_request::SortOrder::Descend {
                ord.reverse()
            } else {
                ord
            }
        });
    }
    let mut more = false;
    if req.limit > 0 && rows.len() as i64 > req.limit {
        rows.truncate(req.limit as usize);
        more = true;
    }
    let kvs = rows
        .iter()
        .map(|r| {
            let mut kv = r.to_kv();
            if req.keys_only {
                kv.value.clear();
            }
            kv
        })
        .collect();
    RangeResponse {
        header: None,
        kvs,
        more,
        count,
    }
}
