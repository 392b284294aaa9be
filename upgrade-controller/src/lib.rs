//! The Plan controller (`upgrade.cattle.io/v1`), with system-upgrade-
//! controller's semantics so that SUC users' Plans, node labels and Job
//! names mean the same on k3r: the latest hash, node selection and Job
//! names ([`suc`]), channel resolution ([`channel`]), the Job ([`job`])
//! and reading it back ([`jobs`]), which pods a drain evicts ([`drain`]),
//! whether a Plan may run ([`validate`]) and when ([`window`]), nodes that
//! are down ([`down`]), cordon and drain through the API ([`node_ops`]),
//! SUC's prepare-then-drain order ([`gate`]), and the controller itself
//! ([`controller`], one pass per reconcile in `rollout`). Upgrading k3r
//! itself (the node's side: binaries, switch, health gate and rollback) is
//! `bootstrap/node-upgrade`.

pub mod channel;
pub mod controller;
pub mod down;
pub mod drain;
pub mod gate;
pub mod job;
pub mod jobs;
pub mod node_ops;
mod rollout;
pub mod suc;
pub mod validate;
pub mod window;
