//! The HelmChart/HelmChartConfig controller, whole: what it decides
//! without a cluster — the values a release gets (k3s's precedence),
//! `spec.set` paths, which chart version a repository index offers, the
//! configuration hash, OCI references and registry auth, timeouts, the
//! failurePolicy decision — and what it does with one: fetching charts,
//! rendering them with k3r-helm-render, applying and pruning through
//! k3r-apply, running hooks, storing releases as Helm does.

mod access;
mod apply;
mod capabilities;
pub mod duration;
mod hooks;
mod layers;
pub mod oci;
mod oci_pull;
mod operation;
pub mod policy;
pub mod reconcile;
pub mod repo;
pub mod set;
mod source;
mod store;
pub mod values;

use k3r_apply::Applier;
use k3r_crds::helmchart::HelmChartConfig;
use k3r_reconciler::{Runtime, Store};
use kube::runtime::events::Recorder;

pub use reconcile::{NAME, run};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Apply(#[from] k3r_apply::Error),
    /// An operation failed; its reason is the condition's.
    #[error("{}: {}", .0.reason, .0.message)]
    Failed(operation::Failure),
    #[error("{0}")]
    Other(String),
}

pub struct Context {
    client: kube::Client,
    applier: Applier,
    recorder: Recorder,
    configs: Store<HelmChartConfig>,
}

impl Context {
    pub fn new(runtime: &Runtime, recorder: Recorder, configs: Store<HelmChartConfig>) -> Self {
        Self {
            client: runtime.client.clone(),
            applier: Applier::new(runtime.client.clone()),
            recorder,
            configs,
        }
    }
}

#[cfg(test)]
mod tests;
