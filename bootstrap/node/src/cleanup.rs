//! Leaving the host as a stopped node should: its pod processes,
//! containerd shims, mounts, pod network namespaces and IP allocations —
//! only this node's, so several nodes can share a machine — and, for
//! `k3r killall`, k3r's iptables chains.

use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::NodePaths;

fn pids_in_cgroup_tree(root: &Path, pids: &mut Vec<i32>) {
    if let Ok(procs) = std::fs::read_to_string(root.join("cgroup.procs")) {
        pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pids_in_cgroup_tree(&entry.path(), pids);
            }
        }
    }
}

/// Kills every process in the kubelet's pod cgroups below `cgroup_root`
/// ("/" for a node that has the machine to itself).
pub fn kill_pods(cgroup_root: &str) -> usize {
    let mut pids = Vec::new();
    let relative = Path::new(cgroup_root.trim_start_matches('/')).join("kubepods");
    for hierarchy in [
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup",
    ] {
        pids_in_cgroup_tree(&Path::new(hierarchy).join(&relative), &mut pids);
    }
    pids.sort_unstable();
    pids.dedup();
    for pid in &pids {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    pids.len()
}

/// Processes whose command line contains `needle`.
pub fn processes_matching(needle: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| *pid != std::process::id() as i32)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Kills the shims of the node's containerd (their command line names
/// its socket).
pub fn kill_shims(paths: &NodePaths) -> usize {
    let socket = paths.containerd_socket().display().to_string();
    let shims: Vec<i32> = processes_matching(&socket)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with("containerd-shim"))
        })
        .collect();
    for pid in &shims {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    shims.len()
}

/// Unmounts everything mounted below the given directories, deepest first.
pub fn unmount_under(dirs: &[PathBuf]) -> usize {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return 0;
    };
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| dirs.iter().any(|d| Path::new(p).starts_with(d)))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    let mut count = 0;
    for point in points {
        if nix::mount::umount2(point.as_str(), nix::mount::MntFlags::MNT_DETACH).is_ok() {
            count += 1;
        }
    }
    count
}

/// What a stopping node removes: its pods, shims, mounts under the data
/// dir and the run dir, pod network namespaces and IP allocations.
pub fn stop_workloads(paths: &NodePaths, data_dir: &Path, cgroup_root: &str) {
    let pods = kill_pods(cgroup_root);
    let shims = kill_shims(paths);
    // Give the kernel a moment to tear down killed processes' mounts.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mounts = unmount_under(&[data_dir.to_path_buf(), paths.run_dir.clone()]);
    let netns = remove_orphaned_pod_netns();
    let addresses = release_pod_addresses(&paths.cni_state_dir);
    tracing::info!(pods, shims, mounts, netns, addresses, "workloads stopped");
}

/// host-local's allocation files (one per pod IP) under `state_dir`.
pub fn allocated_pod_addresses(state_dir: &Path) -> Vec<PathBuf> {
    let Ok(networks) = std::fs::read_dir(state_dir) else {
        return Vec::new();
    };
    networks
        .filter_map(|n| n.ok())
        .filter_map(|network| std::fs::read_dir(network.path()).ok())
        .flat_map(|entries| entries.filter_map(|e| e.ok()))
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .parse::<std::net::IpAddr>()
                .is_ok()
        })
        .map(|entry| entry.path())
        .collect()
}

/// host-local IPAM keeps one file per allocated pod IP and only frees it
/// on CNI DEL, which pods killed at stop never get: without this, every
/// restart leaks the node's pod IPs until its range is exhausted. Every
/// pod of this node is gone by now, so every allocation is stale.
pub fn release_pod_addresses(state_dir: &Path) -> usize {
    allocated_pod_addresses(state_dir)
        .iter()
        .filter(|path| std::fs::remove_file(path).is_ok())
        .count()
}

/// Network namespaces the CNI plugins made for pods (`/run/netns/cni-*`,
/// bind mounts) outlive pods killed without the CRI. These are the ones no
/// process is in any more; ones still in use (another node's or runtime's
/// pods) are not listed.
pub fn orphaned_pod_netns() -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    let in_use: std::collections::BTreeSet<u64> = std::fs::read_dir("/proc")
        .map(|procs| {
            procs
                .filter_map(|p| p.ok())
                .filter_map(|p| std::fs::read_link(p.path().join("ns/net")).ok())
                .filter_map(|link| {
                    let text = link.to_string_lossy().into_owned();
                    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
                })
                .collect()
        })
        .unwrap_or_default();
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("cni-"))
        .filter(|e| std::fs::metadata(e.path()).is_ok_and(|m| !in_use.contains(&m.ino())))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Removes what `orphaned_pod_netns` lists.
pub fn remove_orphaned_pod_netns() -> usize {
    orphaned_pod_netns()
        .iter()
        .filter(|name| {
            std::process::Command::new("ip")
                .args(["netns", "delete", name])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .count()
}

/// Removes k3r's nftables table (the network policy's rules).
pub fn remove_nftables_table() {
    if let Err(err) = k3r_nftables::delete_table(k3r_nftables::K3R_TABLE) {
        tracing::warn!(error = %err, "cannot remove the nftables table inet k3r");
    }
}

/// Removes the iptables rules and chains of kube-proxy, the CNI plugins
/// and flannel, keeping everything else (iptables-save | grep -v | restore),
/// with every distinct iptables on `search_path` (the host's, whichever
/// backend it writes, and the bundled legacy one), as either may hold them.
pub fn remove_iptables_chains(search_path: &str) {
    for tool in ["iptables", "ip6tables"] {
        for save in distinct_programs(search_path, &format!("{tool}-save")) {
            let restore = save.with_file_name(format!("{tool}-restore"));
            remove_ours(&save, &restore);
        }
    }
}

/// Each `name` on `search_path` (or on k3r's PATH where that is empty), once
/// per program it resolves to.
fn distinct_programs(search_path: &str, name: &str) -> Vec<PathBuf> {
    let path = if search_path.is_empty() {
        crate::programs::host_path()
    } else {
        search_path.to_string()
    };
    let mut seen = Vec::new();
    let mut found = Vec::new();
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        let Ok(real) = std::fs::canonicalize(&candidate) else {
            continue;
        };
        if real.is_file() && !seen.contains(&real) {
            seen.push(real);
            found.push(candidate);
        }
    }
    found
}

fn remove_ours(save: &Path, restore: &Path) {
    let Ok(saved) = std::process::Command::new(save).output() else {
        return;
    };
    let text = String::from_utf8_lossy(&saved.stdout);
    let ours = |l: &str| {
        l.contains("KUBE-") || l.contains("CNI-") || l.contains("FLANNEL") || l.contains("K3R-")
    };
    let kept: String = text
        .lines()
        .filter(|l| !ours(l))
        .map(|l| format!("{l}\n"))
        .collect();
    if kept.len() == text.len() {
        return;
    }
    if let Ok(mut child) = std::process::Command::new(restore)
        .stdin(std::process::Stdio::piped())
        .spawn()
    {
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(kept.as_bytes());
        }
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_address_files_are_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let network = dir.path().join("cbr0");
        std::fs::create_dir_all(&network).expect("dir");
        for name in ["10.42.0.5", "10.42.0.6", "last_reserved_ip.0", "lock"] {
            std::fs::write(network.join(name), "x").expect("write");
        }
        assert_eq!(release_pod_addresses(dir.path()), 2);
        let left: Vec<String> = std::fs::read_dir(&network)
            .expect("read")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert_eq!(release_pod_addresses(&dir.path().join("missing")), 0);
    }
}
