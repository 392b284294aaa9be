//! What the HelmChart controller decides without touching a cluster:
//! the values a release gets (k3s's precedence), `spec.set` paths, which
//! chart version a repository index offers, and the hash that tells
//! whether anything changed, OCI references and registry auth, timeouts.

pub mod duration;
pub mod oci;
pub mod policy;
pub mod repo;
pub mod set;
pub mod values;
