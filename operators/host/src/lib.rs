//! `k3r operators`: the host of k3r's controllers. It only hosts: the
//! controllers live in their own crates, each a kube-runtime Controller in
//! k3r-reconciler's shape, and register here by mode ([`controllers`]).
//!
//! - **cluster** mode (the k3r-operators Deployment): one replica holds
//!   the `k3r-operators` Lease and runs the cluster-wide controllers;
//!   standbys wait.
//! - **node** mode (the k3r-node-operators DaemonSet): every node runs the
//!   controllers that program or describe that node, not leader-elected,
//!   told its node name by the downward API.
//!
//! Both serve /healthz (every controller loop still running), /readyz
//! (caches synced; a standby is ready) and /metrics.

pub mod http;
pub mod leader;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::FutureExt;
use futures::future::BoxFuture;
use k3r_reconciler::Runtime;
use kube::Client;
use prometheus_client::metrics::gauge::Gauge;

use crate::leader::{Elector, LeaseConfig};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot serve probes on {0}: {1}")]
    Listen(SocketAddr, #[source] std::io::Error),
    #[error("lost the {0} lease: {1}")]
    LeaseLost(String, String),
    #[error("controller {0} stopped")]
    ControllerStopped(&'static str),
}

/// The lease the replicas of k3r-operators compete for.
pub const LEASE_NAME: &str = "k3r-operators";

pub enum Mode {
    Cluster {
        manifests_dir: PathBuf,
        disabled: Vec<String>,
        /// This replica's name in the lease (the pod name).
        identity: String,
        /// Namespace of the lease.
        namespace: String,
        /// Where svclb DaemonSets go and the image they run.
        servicelb: k3r_servicelb::Config,
    },
    Node {
        node_name: String,
        /// Whether NetworkPolicies are enforced on this node (off with
        /// `--disable-network-policy`, which also removes the rules).
        network_policy: bool,
    },
}

pub struct RunConfig {
    pub mode: Mode,
    /// Where /healthz, /readyz and /metrics are served.
    pub listen: SocketAddr,
    /// The reporting instance on Events (the pod name).
    pub instance: Option<String>,
}

type Controller = (&'static str, BoxFuture<'static, ()>);

/// The register: which controllers each mode runs.
pub fn controllers(runtime: &Runtime, mode: &Mode) -> Vec<Controller> {
    match mode {
        Mode::Cluster {
            manifests_dir,
            disabled,
            servicelb,
            ..
        } => {
            let mut controllers = vec![
                (
                    k3r_deploy::controller::NAME,
                    k3r_deploy::controller::run(
                        runtime.clone(),
                        k3r_deploy::controller::Config {
                            manifests_dir: manifests_dir.clone(),
                            disabled: disabled.clone(),
                        },
                    )
                    .boxed(),
                ),
                (
                    k3r_helm_controller::NAME,
                    k3r_helm_controller::run(runtime.clone()).boxed(),
                ),
                (
                    k3r_nodehosts::NAME,
                    k3r_nodehosts::run(runtime.clone()).boxed(),
                ),
                (
                    k3r_upgrade_controller::controller::NAME,
                    k3r_upgrade_controller::controller::run(runtime.clone()).boxed(),
                ),
            ];
            if disabled.iter().any(|d| d == "servicelb") {
                controllers.push((
                    "servicelb-removal",
                    k3r_servicelb::remove_all(runtime.clone(), servicelb.namespace.clone()).boxed(),
                ));
            } else {
                controllers.push((
                    k3r_servicelb::NAME,
                    k3r_servicelb::controller::run(runtime.clone(), servicelb.clone()).boxed(),
                ));
                controllers.push((
                    k3r_servicelb::GC_NAME,
                    k3r_servicelb::gc::run(runtime.clone(), servicelb.clone()).boxed(),
                ));
            }
            controllers
        }
        Mode::Node {
            node_name,
            network_policy,
        } => vec![
            (
                k3r_nodeinfo::NAME,
                k3r_nodeinfo::run(runtime.clone(), node_name.clone(), k3r_version::version())
                    .boxed(),
            ),
            if *network_policy {
                (
                    k3r_network_policy::NAME,
                    k3r_network_policy::controller::run(
                        runtime.clone(),
                        node_name.clone(),
                        k3r_network_policy::Kernel,
                    )
                    .boxed(),
                )
            } else {
                (
                    k3r_network_policy::REMOVAL_NAME,
                    k3r_network_policy::remove(k3r_network_policy::Kernel).boxed(),
                )
            },
        ],
    }
}

/// Runs every controller until one stops (an error: the pod restarts).
async fn run_all(controllers: Vec<Controller>) -> Error {
    let names: Vec<&'static str> = controllers.iter().map(|(name, _)| *name).collect();
    tracing::info!(controllers = ?names, "controllers starting");
    let (_, index, _) =
        futures::future::select_all(controllers.into_iter().map(|(_, run)| run)).await;
    Error::ControllerStopped(names[index])
}

/// Serves the probes, then runs the mode's controllers until `shutdown`
/// completes (in cluster mode, once this replica leads; the lease is
/// released on shutdown) or something fails.
pub async fn run(
    client: Client,
    config: RunConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let mut runtime = Runtime::new(client.clone());
    runtime.instance = config.instance.clone();
    // Cluster mode is ready as a standby; node mode has no standby.
    let leading = Arc::new(AtomicBool::new(false));
    let gauge = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
    let probes = http::Probes {
        health: runtime.health.clone(),
        metrics: runtime.metrics.clone(),
        standby: match config.mode {
            Mode::Cluster { .. } => Some(Arc::clone(&leading)),
            Mode::Node { .. } => None,
        },
    };
    let (bound, _server) = http::serve(config.listen, probes).await?;
    tracing::info!(listen = %bound, "probes and metrics served");
    let mut shutdown = std::pin::pin!(shutdown);
    match &config.mode {
        Mode::Node { node_name, .. } => {
            tracing::info!(node = %node_name, "per-node controllers starting");
            tokio::select! {
                err = run_all(controllers(&runtime, &config.mode)) => Err(err),
                _ = &mut shutdown => Ok(()),
            }
        }
        Mode::Cluster {
            identity,
            namespace,
            ..
        } => {
            runtime.metrics.register(
                "k3r_operators_leader",
                "1 while this replica holds the k3r-operators lease",
                gauge.clone(),
            );
            let mut elector =
                Elector::new(client, LeaseConfig::new(LEASE_NAME, namespace, identity));
            tokio::select! {
                result = elector.acquire() => result?,
                _ = &mut shutdown => return Ok(()),
            }
            leading.store(true, Ordering::SeqCst);
            gauge.set(1);
            let result = tokio::select! {
                err = run_all(controllers(&runtime, &config.mode)) => Err(err),
                lost = elector.hold() => Err(lost),
                _ = &mut shutdown => Ok(()),
            };
            leading.store(false, Ordering::SeqCst);
            gauge.set(0);
            if result.is_ok() {
                elector.release().await;
            }
            result
        }
    }
}
