//! `k3r killall` (k3s-killall.sh): every k3r process, then the node's
//! workloads, network devices, iptables chains and nftables table. Data is
//! kept.

use std::path::{Path, PathBuf};

use k3r_node::NodePaths;
use k3r_node::cleanup::{
    processes_matching, remove_iptables_chains, remove_nftables_table, stop_workloads,
};
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

/// The data dir a `k3r server` or `k3r agent` command line runs with.
fn data_dir_of(argv: &[String]) -> PathBuf {
    let mut args = argv.iter();
    while let Some(arg) = args.next() {
        if let Some(dir) = arg.strip_prefix("--data-dir=") {
            return PathBuf::from(dir);
        }
        if (arg == "--data-dir" || arg == "-d")
            && let Some(dir) = args.next()
        {
            return PathBuf::from(dir);
        }
    }
    PathBuf::from(DEFAULT_DATA_DIR)
}

const DEFAULT_DATA_DIR: &str = "/var/lib/k3r";

fn argv_of(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            c.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills the upstream components and containerd a k3r with data dir
/// `data_dir` started (not its pods: their shims stay), e.g. left behind
/// by a k3r that died during a switch.
pub fn stop_components(data_dir: &Path) {
    let trimmed = data_dir.display().to_string();
    let inside = format!("{}/", trimmed.trim_end_matches('/'));
    for pattern in ["k3r-kube ", "containerd --config"] {
        for pid in processes_matching(pattern) {
            if argv_of(pid).iter().any(|a| a.contains(&inside)) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// Kills the k3r node whose data dir is `data_dir` — its `k3r server` or
/// `k3r agent`, their components and containerd, and no other node's —
/// and cleans up after it (a server's node, or an agent's: the agent
/// records where it keeps run state).
pub fn killall(data_dir: &Path) {
    let trimmed = data_dir.display().to_string();
    let trimmed = trimmed.trim_end_matches('/');
    for pattern in ["k3r server", "k3r agent"] {
        for pid in processes_matching(pattern) {
            if data_dir_of(&argv_of(pid)) == Path::new(trimmed) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
    stop_components(data_dir);
    let (paths, cgroup_root) = k3r_node::scope::read(&data_dir.join("agent"))
        .unwrap_or_else(|| (server_node(data_dir), "/".to_string()));
    stop_workloads(&paths, data_dir, &cgroup_root);
    for device in ["cni0", "flannel.1"] {
        let _ = std::process::Command::new("ip")
            .args(["link", "delete", device])
            .output();
    }
    remove_iptables_chains(&k3r_node::programs::cleanup_search_path(data_dir));
    remove_nftables_table();
    k3r_node::record::remove_data_dir_in(Path::new(k3r_node::record::DIR), Path::new(trimmed));
    let _ = std::fs::remove_dir_all(&paths.run_dir);
    k3r_node::cgroups::remove_root(&cgroup_root);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split(' ').map(String::from).collect()
    }

    #[test]
    fn the_data_dir_is_read_from_the_command_line() {
        for (line, dir) in [
            ("k3r server --data-dir=/d/a", "/d/a"),
            ("k3r agent --server x --data-dir /d/b", "/d/b"),
            ("k3r agent -d /d/c", "/d/c"),
            ("k3r server --token t", DEFAULT_DATA_DIR),
        ] {
            assert_eq!(data_dir_of(&argv(line)), Path::new(dir), "{line}");
        }
    }
}
