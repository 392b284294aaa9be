//! Node networking done in Rust with rtnetlink: flannel's vxlan and
//! host-gw backends (compatible device, port, VNI and node annotations),
//! masquerading for traffic leaving the cluster, and the controller that
//! keeps them in step with the cluster's Nodes.

pub mod annotations;
pub mod host_gw;
pub mod masquerade;
pub mod node;
pub mod routes;
pub mod uplink;
pub mod vxlan;

pub use node::{Backend, NodeNetwork, NodeNetworkConfig};
pub use vxlan::{Peer, Vxlan, VxlanConfig};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("{0}")]
    Config(String),
    #[error("iptables: {0}")]
    Iptables(String),
    #[error("kubernetes API: {0}")]
    Api(String),
}
