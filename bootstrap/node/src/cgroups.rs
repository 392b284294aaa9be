//! A node's own cgroup root (kubelet's `--cgroup-root`), for nodes that
//! share a machine: kubelet refuses a root that does not exist, and each
//! node's pods then live in `<root>/kubepods`, apart from the others'.

use std::path::{Path, PathBuf};

use crate::Error;

const CGROUP_FS: &str = "/sys/fs/cgroup";

/// Mounted hierarchies: every v1 controller directory and the unified
/// one (or the v2 root itself).
fn hierarchies() -> Vec<PathBuf> {
    let base = Path::new(CGROUP_FS);
    if base.join("cgroup.controllers").exists() {
        return vec![base.to_path_buf()];
    }
    std::fs::read_dir(base)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                // cpu and cpuacct are symlinks to cpu,cpuacct.
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .filter(|p| p.join("cgroup.procs").exists())
                .collect()
        })
        .unwrap_or_default()
}

/// Creates `root` in every hierarchy ("/" needs nothing).
pub fn ensure_root(root: &str) -> Result<(), Error> {
    let relative = root.trim_matches('/');
    if relative.is_empty() {
        return Ok(());
    }
    for hierarchy in hierarchies() {
        let dir = hierarchy.join(relative);
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io(dir.clone(), e))?;
        // A new v1 cpuset starts with no CPUs or memory nodes; its
        // children (the pods) could not run. Inherit the parent's.
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = dir.join(file);
            let empty = std::fs::read_to_string(&own).is_ok_and(|t| t.trim().is_empty());
            if empty
                && let Some(parent) = dir.parent()
                && let Ok(value) = std::fs::read_to_string(parent.join(file))
            {
                std::fs::write(&own, value.trim()).map_err(|e| Error::Io(own.clone(), e))?;
            }
        }
    }
    Ok(())
}

fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(|e| e.ok()) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    // Only empty cgroups go; one still holding a process stays.
    let _ = std::fs::remove_dir(dir);
}

/// Removes `root` and what kubelet made below it, once its pods are gone.
pub fn remove_root(root: &str) {
    let relative = root.trim_matches('/');
    if relative.is_empty() {
        return;
    }
    for hierarchy in hierarchies() {
        remove_tree(&hierarchy.join(relative));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_is_made_and_removed_in_every_hierarchy() {
        if !nix::unistd::Uid::effective().is_root() {
            return;
        }
        let root = format!("/k3r-cgroups-test-{}", std::process::id());
        ensure_root(&root).expect("created");
        let made: Vec<PathBuf> = hierarchies()
            .iter()
            .map(|h| h.join(root.trim_start_matches('/')))
            .collect();
        assert!(!made.is_empty());
        for dir in &made {
            assert!(dir.is_dir(), "{}", dir.display());
            if dir.join("cpuset.cpus").exists() {
                let cpus = std::fs::read_to_string(dir.join("cpuset.cpus")).expect("cpus");
                assert!(!cpus.trim().is_empty(), "cpuset inherited");
            }
        }
        std::fs::create_dir_all(made[0].join("kubepods")).expect("child");
        remove_root(&root);
        for dir in &made {
            assert!(!dir.exists(), "{} removed", dir.display());
        }
    }
}
