use std::pin::Pin;

use futures::Stream;
use k3r_etcd_proto::etcdserverpb::lease_server::Lease;
use k3r_etcd_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use tonic::{Request, Response, Status, Streaming};

use super::header;
use crate::store::Store;

pub struct LeaseService {
    store: Store,
}

impl LeaseService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        request: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        let req = request.into_inner();
        let (id, ttl, revision) = self.store.lease_grant(req.id, req.ttl).await?;
        Ok(Response::new(LeaseGrantResponse {
            header: header(revision),
            id,
            ttl,
            error: String::new(),
        }))
    }

    async fn lease_revoke(
        &self,
        request: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        let revision = self.store.lease_revoke(request.into_inner().id).await?;
        Ok(Response::new(LeaseRevokeResponse {
            header: header(revision),
        }))
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut incoming = request.into_inner();
        let store = self.store.clone();
        let output = async_stream::try_stream! {
            while let Some(req) = incoming.message().await? {
                // etcd answers an unknown lease with TTL 0 rather than an error.
                let ttl = store.lease_keep_alive(req.id).unwrap_or(0);
                yield LeaseKeepAliveResponse { header: header(store.revisions().current), id: req.id, ttl };
            }
        };
        Ok(Response::new(Box::pin(output)))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let req = request.into_inner();
        let revision = self.store.revisions().current;
        let response = match self.store.lease_info(req.id) {
            Some(info) => LeaseTimeToLiveResponse {
                header: header(revision),
                id: req.id,
                ttl: info.remaining,
                granted_ttl: info.granted_ttl,
                keys: if req.keys { info.keys } else { Vec::new() },
            },
            None => LeaseTimeToLiveResponse {
                header: header(revision),
                id: req.id,
                ttl: -1,
                ..Default::default()
            },
        };
        Ok(Response::new(response))
    }

    async fn lease_leases(
        &self,
        _: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        let leases = self
            .store
            .lease_ids()
            .into_iter()
            .map(|id| LeaseStatus { id })
            .collect();
        Ok(Response::new(LeaseLeasesResponse {
            header: header(self.store.revisions().current),
            leases,
        }))
    }
}
