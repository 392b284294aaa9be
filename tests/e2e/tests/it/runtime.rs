//! The runtime k3r brings: containerd 2, runc and the CNI plugins from
//! the payload it carries (extracted under `<data dir>/data`), not from
//! the host, and `k3r crictl` / `k3r ctr` / a `crictl` link talking to
//! the node's containerd without flags.

use std::path::Path;
use std::process::Command;

use crate::cluster::k3r_binary;
use crate::shared::Shared;

/// The executable of the process whose command line starts with `program`
/// and names `needle`.
fn exe_of(program: &str, needle: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let first = cmdline.split(' ').next().unwrap_or_default();
        if first.ends_with(program) && cmdline.contains(needle) {
            return std::fs::read_link(entry.path().join("exe")).ok();
        }
    }
    None
}

fn tool(data_dir: &Path, argv0: Option<&Path>, args: &[&str]) -> String {
    let mut command = match argv0 {
        Some(link) => Command::new(link),
        None => Command::new(k3r_binary()),
    };
    let out = command
        .args(args)
        .env("K3R_DATA_DIR", data_dir)
        .output()
        .expect("tool runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn bundled(shared: &mut Shared) {
    let data_dir = &shared.data_dir;
    let payloads = data_dir.join("data");
    let current = std::fs::canonicalize(payloads.join("current")).expect("data/current");
    assert!(current.starts_with(std::fs::canonicalize(&payloads).expect("data")));

    // containerd runs from the extracted payload, and is 2.x.
    let containerd = exe_of("containerd", &data_dir.display().to_string())
        .expect("the node's containerd process");
    assert_eq!(containerd, current.join("bin/containerd"));
    let node = shared.cluster.ok(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={.items[0].status.nodeInfo.containerRuntimeVersion}",
    ]);
    assert!(node.starts_with("containerd://2."), "{node}");
    // Its config names the bundled runc and CNI plugins.
    let config = std::fs::read_to_string(data_dir.join("agent/etc/containerd/config.toml"))
        .expect("containerd config");
    let bin = payloads
        .join(current.file_name().expect("hash"))
        .join("bin");
    for line in [
        format!("BinaryName = \"{}\"", bin.join("runc").display()),
        format!("bin_dirs = [\"{}\"]", bin.display()),
    ] {
        assert!(config.contains(&line), "{line} not in {config}");
    }

    // k3r crictl lists the node's containers; so does a link named crictl.
    let listed = tool(data_dir, None, &["crictl", "ps", "-o", "json"]);
    assert!(listed.contains("\"operators\""), "{listed}");
    let links = tempfile::tempdir().expect("links dir");
    let crictl = links.path().join("crictl");
    std::os::unix::fs::symlink(k3r_binary(), &crictl).expect("crictl link");
    let pods = tool(data_dir, Some(&crictl), &["pods", "-q"]);
    assert!(pods.lines().count() >= 2, "{pods}");
    // k3r ctr works in Kubernetes' namespace: the pause image is there.
    let images = tool(data_dir, None, &["ctr", "images", "ls", "-q"]);
    assert!(images.contains("registry.k8s.io/pause"), "{images}");
}
