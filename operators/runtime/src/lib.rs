//! `k3r operators`: the controllers that run inside the cluster, from the
//! k3r-operators Deployment. Every operator has the same shape: a module
//! with `run(client, handle, config)` that loops forever, reporting each
//! pass through its [`status::OperatorHandle`] (liveness, readiness,
//! metrics). Only the replica holding the lease runs them.

pub mod deploy;
pub mod dynamic;
pub mod events;
pub mod helm;
pub mod http;
pub mod leader;
pub mod nodehosts;
pub mod status;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use kube::Client;

use crate::leader::{Elector, LeaseConfig};
use crate::status::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
}

/// The lease the replicas of k3r-operators compete for.
pub const LEASE_NAME: &str = "k3r-operators";

pub struct RunConfig {
    pub manifests_dir: PathBuf,
    pub disabled: Vec<String>,
    /// This replica's name in the lease (the pod name).
    pub identity: String,
    pub namespace: String,
    /// Where /healthz, /readyz and /metrics are served.
    pub listen: SocketAddr,
}

/// Serves the probes, waits for leadership, then runs every operator until
/// `shutdown` completes (the lease is then released) or leadership is lost
/// (an error: the process exits and its replacement stands by).
pub async fn run(
    client: Client,
    config: RunConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let status = Status::new();
    let (bound, _server) = http::serve(config.listen, status.clone()).await?;
    tracing::info!(listen = %bound, "probes and metrics served");
    let mut elector = Elector::new(
        client.clone(),
        LeaseConfig::new(LEASE_NAME, &config.namespace, &config.identity),
    );
    let mut shutdown = std::pin::pin!(shutdown);
    tokio::select! {
        result = elector.acquire() => result?,
        _ = &mut shutdown => return Ok(()),
    }
    status.set_leader(true);
    let deploy_config = deploy::DeployConfig {
        manifests_dir: config.manifests_dir,
        disabled: config.disabled,
    };
    let operators = async {
        tokio::try_join!(
            deploy::run(client.clone(), status.operator("deploy"), deploy_config),
            nodehosts::run(client.clone(), status.operator("nodehosts")),
            helm::run(client.clone(), status.operator("helm")),
        )
    };
    let result = tokio::select! {
        result = operators => result.map(|_| ()),
        lost = elector.hold() => Err(lost),
        _ = &mut shutdown => Ok(()),
    };
    status.set_leader(false);
    if result.is_ok() {
        elector.release().await;
    }
    result
}
