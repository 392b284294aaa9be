//! The k3r agent role. `join` gets a node into a cluster the way k3s
//! agents do: the server's CA is checked against the token's hash before
//! any credential is sent, then the node's certificates and the cluster's
//! critical configuration are fetched from the supervisor. `loadbalancer`
//! is the local endpoint kubelet and kube-proxy use to reach any server;
//! `run` is the whole role: join, load balancer, then the node.

pub mod join;
pub mod loadbalancer;
pub mod run;
pub mod setup;
pub mod tunnel;

pub use join::{JoinError, Joiner, NodeIdentity};
pub use loadbalancer::LoadBalancer;
pub use run::{AgentConfig, AgentError, run};
pub use setup::{AgentSetup, Prepared, SetupError, prepare};
