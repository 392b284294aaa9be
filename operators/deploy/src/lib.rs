//! The deploy controller, k3s semantics (k3s-interfaces.md §6): every
//! file of the manifests directory is an Addon in kube-system named after
//! its basename; its objects are applied with server-side apply and those
//! a previous version of the file declared but this one does not are
//! pruned; `.skip` siblings freeze a file; `--disable` deletes the Addons
//! it names and everything they applied.
//!
//! [`scan`] is the directory's logic, [`controller`] the Addon controller
//! and the scanner that triggers it.

pub mod controller;
mod scan;

pub use scan::{ManifestFile, ScanError, checksum, is_disabled, scan};
