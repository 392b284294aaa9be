use std::pin::Pin;

use futures::Stream;
use k3r_etcd_proto::etcdserverpb::auth_server::Auth;
use k3r_etcd_proto::etcdserverpb::maintenance_server::Maintenance;
use k3r_etcd_proto::etcdserverpb::{
    AlarmRequest, AlarmResponse, AuthDisableRequest, AuthDisableResponse, AuthEnableRequest,
    AuthEnableResponse, AuthStatusRequest, AuthStatusResponse, AuthenticateRequest,
    AuthenticateResponse, DefragmentRequest, DefragmentResponse, DowngradeRequest,
    DowngradeResponse, HashKvRequest, HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest,
    MoveLeaderResponse, SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
};
use tonic::{Request, Response, Status};

use super::{MEMBER_ID, RAFT_TERM, header};
use crate::store::Store;

/// The etcd version we report. kube-apiserver enables watch progress
/// requests and consistent reads from cache only for etcd >= 3.4.31/3.5.13,
/// and our semantics match 3.6.
pub const EMULATED_ETCD_VERSION: &str = "3.6.5";

fn unimplemented(what: &str) -> Status {
    Status::unimplemented(format!("k3r datastore does not implement {what}"))
}

pub struct MaintenanceService {
    store: Store,
}

impl MaintenanceService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(
        &self,
        request: Request<AlarmRequest>,
    ) -> Result<Response<AlarmResponse>, Status> {
        // No alarms are ever raised; GET and DEACTIVATE are no-ops.
        if request.get_ref().action == 1 {
            return Err(unimplemented("raising alarms"));
        }
        Ok(Response::new(AlarmResponse {
            header: header(self.store.revisions().current),
            alarms: Vec::new(),
        }))
    }

    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let (size, in_use) = self.store.size().await?;
        let revision = self.store.revisions().current;
        Ok(Response::new(StatusResponse {
            header: header(revision),
            version: EMULATED_ETCD_VERSION.to_string(),
            db_size: size,
            leader: MEMBER_ID,
            raft_index: revision as u64,
            raft_term: RAFT_TERM,
            raft_applied_index: revision as u64,
            errors: Vec::new(),
            db_size_in_use: in_use,
            is_learner: false,
            storage_version: "3.6.0".to_string(),
            db_size_quota: 0,
        }))
    }

    async fn defragment(
        &self,
        _: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        // Space is reclaimed after every compaction; nothing else to do.
        Ok(Response::new(DefragmentResponse {
            header: header(self.store.revisions().current),
        }))
    }

    async fn hash(&self, _: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        Err(unimplemented("Hash"))
    }

    async fn hash_kv(&self, _: Request<HashKvRequest>) -> Result<Response<HashKvResponse>, Status> {
        Err(unimplemented("HashKV"))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        _: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        Err(unimplemented("Snapshot; back up the database file instead"))
    }

    async fn move_leader(
        &self,
        _: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        Err(unimplemented("MoveLeader"))
    }

    async fn downgrade(
        &self,
        _: Request<DowngradeRequest>,
    ) -> Result<Response<DowngradeResponse>, Status> {
        Err(unimplemented("Downgrade"))
    }
}

pub struct AuthService;

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_enable(
        &self,
        _: Request<AuthEnableRequest>,
    ) -> Result<Response<AuthEnableResponse>, Status> {
        Err(unimplemented("authentication; use mTLS"))
    }

    async fn auth_disable(
        &self,
        _: Request<AuthDisableRequest>,
    ) -> Result<Response<AuthDisableResponse>, Status> {
        Ok(Response::new(AuthDisableResponse { header: header(0) }))
    }

    async fn auth_status(
        &self,
        _: Request<AuthStatusRequest>,
    ) -> Result<Response<AuthStatusResponse>, Status> {
        Ok(Response::new(AuthStatusResponse {
            header: header(0),
            enabled: false,
            auth_revision: 0,
        }))
    }

    async fn authenticate(
        &self,
        _: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        Err(unimplemented("authentication; use mTLS"))
    }
}
