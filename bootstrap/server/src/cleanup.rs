//! `k3r killall` (k3s-killall.sh): every k3r process, then the node's
//! workloads, network devices and iptables chains. Data is kept.

use std::path::Path;

use k3r_node::NodePaths;
use k3r_node::cleanup::{processes_matching, remove_iptables_chains, stop_workloads};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::layout::RUN_DIR;

/// The server's node: its paths and cgroup root.
pub fn server_node(data_dir: &Path) -> NodePaths {
    NodePaths::new(
        &data_dir.join("agent"),
        Path::new(RUN_DIR),
        Path::new(crate::CNI_STATE_DIR),
    )
}

/// Kills k3r's processes and cleans up after the node whose data dir is
/// `data_dir` (a server's, or an agent's: the agent records where it
/// keeps run state).
pub fn killall(data_dir: &Path) {
    for pattern in [
        "k3r server",
        "k3r agent",
        "k3r-kube ",
        "containerd --config",
    ] {
        for pid in processes_matching(pattern) {
            if std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(&data_dir.display().to_string())
                        || pattern != "containerd --config"
                })
                .unwrap_or(false)
            {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
    let (paths, cgroup_root) = k3r_node::scope::read(&data_dir.join("agent"))
        .unwrap_or_else(|| (server_node(data_dir), "/".to_string()));
    stop_workloads(&paths, data_dir, &cgroup_root);
    for device in ["cni0", "flannel.1"] {
        let _ = std::process::Command::new("ip")
            .args(["link", "delete", device])
            .output();
    }
    remove_iptables_chains();
    let _ = std::fs::remove_dir_all(&paths.run_dir);
    k3r_node::cgroups::remove_root(&cgroup_root);
}
