use k3r_etcd_proto::etcdserverpb::cluster_server::Cluster;
use k3r_etcd_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse,
};
use tonic::{Request, Response, Status};

use super::{MEMBER_ID, header};
use crate::store::Store;

/// A single-member cluster: membership changes belong to real etcd.
pub struct ClusterService {
    store: Store,
    client_urls: Vec<String>,
}

impl ClusterService {
    pub fn new(store: Store, client_urls: Vec<String>) -> Self {
        Self { store, client_urls }
    }
}

fn unsupported() -> Status {
    Status::unimplemented(
        "k3r datastore is a single member; use an etcd cluster for membership changes",
    )
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        _: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        Err(unsupported())
    }

    async fn member_remove(
        &self,
        _: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        Err(unsupported())
    }

    async fn member_update(
        &self,
        _: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        Err(unsupported())
    }

    async fn member_list(
        &self,
        _: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        let member = Member {
            id: MEMBER_ID,
            name: format!("k3r-{}", self.store.kind()),
            peer_ur_ls: Vec::new(),
            client_ur_ls: self.client_urls.clone(),
            is_learner: false,
        };
        Ok(Response::new(MemberListResponse {
            header: header(self.store.revisions().current),
            members: vec![member],
        }))
    }

    async fn member_promote(
        &self,
        _: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        Err(unsupported())
    }
}
