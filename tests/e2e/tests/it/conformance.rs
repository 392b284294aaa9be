//! Upstream's conformance suite on the three-node cluster, through
//! `scripts/conformance --kubeconfig` (one implementation for users and
//! CI): the test images imported into every node's containerd, the specs
//! run by upstream's own e2e.test and ginkgo.
//! - `cluster::conformance`: CI's slice (tests/conformance-slice.txt);
//! - `conformance::multi_node` (ignored; `scripts/conformance
//!   --multi-node`): the whole suite, or the arguments that script got.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cluster::{k3r_binary, target_dir};
use crate::shared::Shared;

/// CI's slice, parallel then its [Serial] spec; fails naming each failed spec.
pub fn slice(shared: &mut Shared) {
    let report = target_dir().join("conformance-report-slice");
    run(shared, &["--slice".to_string()], &report);
}

/// The whole suite (or `K3R_CONFORMANCE_ARGS`, one argument per line).
pub fn multi_node(shared: &mut Shared) {
    let args: Vec<String> = std::env::var("K3R_CONFORMANCE_ARGS")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let report = target_dir().join("conformance-report-multi-node");
    run(shared, &args, &report);
}

fn run(shared: &mut Shared, args: &[String], report: &Path) {
    let agents = crate::agents::ensure_joined(shared).agent_dirs();
    let mut nodes: Vec<PathBuf> = vec![shared.data_dir.clone()];
    nodes.extend(agents.into_iter().map(|(_, dir)| dir));
    // The suite runs kubectl as `kubectl`: k3r's, by a link.
    let bin = tempfile::tempdir().expect("tempdir");
    let kubectl = bin.path().join("kubectl");
    std::os::unix::fs::symlink(k3r_binary(), &kubectl).expect("kubectl link");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/conformance");
    let mut command = Command::new("bash");
    command
        .arg(script)
        .arg("--kubeconfig")
        .arg(&shared.cluster.kubeconfig)
        .arg("--kubectl")
        .arg(&kubectl)
        .arg("--k3r")
        .arg(k3r_binary())
        .arg("--report-dir")
        .arg(report);
    for node in &nodes {
        command.arg("--import-into").arg(node);
    }
    // kubectl from the payload the server extracted.
    command.args(args).env("K3R_DATA_DIR", &shared.data_dir);
    let started = std::time::Instant::now();
    let status = command.status().expect("scripts/conformance");
    eprintln!(
        "E2E: conformance ({}) took {:.0} s; JUnit and logs in {}",
        if args.is_empty() {
            "the whole suite".to_string()
        } else {
            args.join(" ")
        },
        started.elapsed().as_secs_f64(),
        report.display()
    );
    assert!(
        status.success(),
        "scripts/conformance failed ({status}); its summary above names each failed spec"
    );
}
