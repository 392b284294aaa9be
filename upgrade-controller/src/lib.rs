//! The Plan controller (`upgrade.cattle.io/v1`), with system-upgrade-
//! controller's semantics so that SUC users' Plans, node labels and Job
//! names mean the same on k3r. So far the rules, pure and tested: the
//! latest hash, node selection and Job names ([`suc`]), channel
//! resolution ([`channel`]), the Job
//! ([`job`]), which pods a drain evicts ([`drain`]) and whether a Plan may
//! run ([`validate`]); the controller
//! itself (reconcile, cordon and eviction calls, status), k3r's upgrade
//! image and the health gate with rollback are to come (issue
//! "upgrade-controller").

pub mod channel;
pub mod controller;
pub mod down;
pub mod drain;
pub mod job;
pub mod jobs;
pub mod node_ops;
mod rollout;
pub mod suc;
pub mod validate;
pub mod window;
