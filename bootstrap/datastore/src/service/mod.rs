//! tonic services implementing the etcd v3 API on top of the [`Store`].

mod cluster;
mod kv;
mod lease;
mod maintenance;
mod watch;

pub use cluster::ClusterService;
pub use kv::KvService;
pub use lease::LeaseService;
pub use maintenance::{AuthService, MaintenanceService};
pub use watch::WatchService;

use k3r_etcd_proto::etcdserverpb::ResponseHeader;

/// Identity of our single-member "cluster", stable across restarts.
pub const CLUSTER_ID: u64 = 0x6b33_725f_6b33_7201;
pub const MEMBER_ID: u64 = 0x6b33_725f_6d65_6d01;
const RAFT_TERM: u64 = 2;

pub fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        cluster_id: CLUSTER_ID,
        member_id: MEMBER_ID,
        revision,
        raft_term: RAFT_TERM,
    })
}
