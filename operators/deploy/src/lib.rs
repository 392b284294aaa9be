//! The logic of the deploy operator, independent of any cluster: which
//! files of the manifests directory count, what each one declares, and what
//! must be pruned when a file changes. k3s semantics (k3s-interfaces.md §6):
//! one Addon per file named after its basename, `.skip` siblings, `--disable`
//! by basename or parent directory, multi-document YAML and List kinds.

mod manifest;
mod scan;

pub use manifest::{ManifestError, ObjectRef, parse_manifest, prune_set, refs};
pub use scan::{ManifestFile, ScanError, checksum, is_disabled, scan};
