//! Node networking done in Rust with rtnetlink: flannel's vxlan backend
//! (compatible device, port, VNI and node annotations), so pods on
//! different nodes reach each other.

pub mod annotations;
pub mod vxlan;

pub use vxlan::{Peer, Vxlan, VxlanConfig};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("netlink: {0}")]
    Netlink(String),
}
