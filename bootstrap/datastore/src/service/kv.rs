use std::time::Instant;

use k3r_etcd_proto::etcdserverpb::kv_server::Kv;
use k3r_etcd_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse, response_op,
};
use tonic::{Request, Response, Status};

use super::header;
use crate::store::Store;

pub struct KvService {
    store: Store,
}

impl KvService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    fn observe(&self, method: &str, started: Instant) {
        self.store.metrics().observe_rpc(method, started.elapsed());
    }
}

/// Fills the headers of nested responses, as etcd does.
fn fill_headers(txn: &mut TxnResponse, revision: i64) {
    txn.header = header(revision);
    for op in &mut txn.responses {
        match &mut op.response {
            Some(response_op::Response::ResponseRange(r)) => r.header = header(revision),
            Some(response_op::Response::ResponsePut(r)) => r.header = header(revision),
            Some(response_op::Response::ResponseDeleteRange(r)) => r.header = header(revision),
            Some(response_op::Response::ResponseTxn(t)) => fill_headers(t, revision),
            None => {}
        }
    }
}

// The per-request spans are at debug level: at info, every RPC paid for a
// span's bookkeeping in the subscriber (1.5 % of the server's CPU samples).
#[tonic::async_trait]
impl Kv for KvService {
    #[tracing::instrument(level = "debug", name = "etcd.Range", skip_all)]
    async fn range(
        &self,
        request: Request<RangeRequest>,
    ) -> Result<Response<RangeResponse>, Status> {
        let started = Instant::now();
        let (mut response, revision) = self.store.range(request.into_inner()).await?;
        response.header = header(revision);
        self.observe("Range", started);
        Ok(Response::new(response))
    }

    #[tracing::instrument(level = "debug", name = "etcd.Put", skip_all)]
    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let started = Instant::now();
        let (mut response, revision) = self.store.put(request.into_inner()).await?;
        response.header = header(revision);
        self.observe("Put", started);
        Ok(Response::new(response))
    }

    #[tracing::instrument(level = "debug", name = "etcd.DeleteRange", skip_all)]
    async fn delete_range(
        &self,
        request: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        let started = Instant::now();
        let (mut response, revision) = self.store.delete_range(request.into_inner()).await?;
        response.header = header(revision);
        self.observe("DeleteRange", started);
        Ok(Response::new(response))
    }

    #[tracing::instrument(level = "debug", name = "etcd.Txn", skip_all)]
    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let started = Instant::now();
        let (mut response, revision) = self.store.txn(request.into_inner()).await?;
        fill_headers(&mut response, revision);
        self.observe("Txn", started);
        Ok(Response::new(response))
    }

    #[tracing::instrument(level = "debug", name = "etcd.Compact", skip_all)]
    async fn compact(
        &self,
        request: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        let started = Instant::now();
        let revision = self.store.compact(request.into_inner().revision).await?;
        self.observe("Compact", started);
        Ok(Response::new(CompactionResponse {
            header: header(revision),
        }))
    }
}
