//! Upgrading k3r on a node, without a service manager:
//!
//! 1. the upgrade Job (`k3r upgrade-node`, [`job`]) checks the version
//!    policy ([`policy`]), swaps the binaries atomically keeping the
//!    previous ones ([`install`]), leaves a switch request ([`switch`]) and
//!    sends the node's k3r SIGUSR2;
//! 2. k3r stops its own processes (the pods stay), starts a watchdog from
//!    its old binary ([`watch`]) and runs the new binary in place;
//! 3. the watchdog waits for the new boot to be ready within the
//!    deadline; otherwise it puts the previous binaries back, records why
//!    ([`switch::Rollback`]), and brings the old k3r back;
//! 4. the Job reports the outcome: done, or failed with the rollback's
//!    reason (so the Plan stops there).

pub mod install;
pub mod job;
pub mod policy;
pub mod switch;
pub mod watch;
