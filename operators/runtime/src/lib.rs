//! `k3r operators`: the controllers that run inside the cluster, from the
//! k3r-operators Deployment. Each operator has the same shape: a loop that
//! reconciles, with its own module.

pub mod deploy;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
}
