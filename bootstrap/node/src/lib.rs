//! What every node runs, whether it is a server or an agent, and the one
//! path that starts it ([`start::Node`]): the host settings kubelet and
//! kube-proxy need, containerd with k3r's images, the CNI config for the
//! node's pod CIDR, the kubelet and kube-proxy command lines, node
//! networking. Paths come from `NodePaths`, so several nodes (an agent
//! per network namespace in the tests) can share one machine. `process`
//! is the executor seam every supervised component runs through.

pub mod cgroups;
pub mod cleanup;
pub mod cni;
pub mod containerd;
pub mod host;
pub mod images;
pub mod kube_proxy;
pub mod kubelet;
pub mod process;
pub mod programs;
pub mod ready;
pub mod record;
pub mod registries;
pub mod scope;
pub mod shared_process;
pub mod start;
pub mod wait;

pub use start::{Node, NodeSpec, Shutdown};

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("host setup: {0}")]
    Host(String),
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, std::io::Error),
    #[error("{0}")]
    Timeout(String),
    #[error(transparent)]
    Client(#[from] k3r_kube_client::Error),
    #[error("node networking: {0}")]
    Network(#[from] k3r_network::Error),
    #[error(transparent)]
    Payload(#[from] k3r_payload::Error),
    #[error("{0}")]
    Programs(String),
    #[error("{0}")]
    Registries(String),
}

/// Where a node keeps its state: `agent_dir` (DATA_DIR/agent) for what
/// lasts, `run_dir` for what must not outlive a boot (containerd's state
/// and socket).
#[derive(Clone, Debug)]
pub struct NodePaths {
    pub agent_dir: PathBuf,
    pub run_dir: PathBuf,
    /// host-local IPAM's allocations.
    pub cni_state_dir: PathBuf,
    /// The node's programs ([`programs::Programs`]); empty where only
    /// state is handled (cleanup), and programs are then looked up on PATH.
    pub bin: PathBuf,
    /// The PATH node processes get ([`programs::Programs::search_path`]);
    /// empty where only state is handled.
    pub search_path: String,
}

impl NodePaths {
    pub fn new(agent_dir: &Path, run_dir: &Path, cni_state_dir: &Path) -> Self {
        Self {
            agent_dir: agent_dir.to_path_buf(),
            run_dir: run_dir.to_path_buf(),
            cni_state_dir: cni_state_dir.to_path_buf(),
            bin: PathBuf::new(),
            search_path: String::new(),
        }
    }
    pub fn with_programs(mut self, programs: &programs::Programs) -> Self {
        self.bin = programs.dir.clone();
        self.search_path = programs.search_path();
        self
    }
    /// One of the node's programs (`ctr`, say).
    pub fn program(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }
    pub fn etc(&self) -> PathBuf {
        self.agent_dir.join("etc")
    }
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.etc().join("cni").join("net.d")
    }
    /// containerd's registry hosts dir (`<host>/hosts.toml` each).
    pub fn registry_hosts(&self) -> PathBuf {
        self.etc().join("containerd").join("certs.d")
    }
    pub fn images(&self) -> PathBuf {
        self.agent_dir.join("images")
    }
    pub fn own_images(&self) -> PathBuf {
        self.agent_dir.join("k3r-images")
    }
    pub fn containerd_root(&self) -> PathBuf {
        self.agent_dir.join("containerd")
    }
    pub fn containerd_state(&self) -> PathBuf {
        self.run_dir.join("containerd")
    }
    pub fn containerd_socket(&self) -> PathBuf {
        self.containerd_state().join("containerd.sock")
    }
    pub fn kubelet_root(&self) -> PathBuf {
        self.agent_dir.join("kubelet")
    }
    pub fn pod_manifests(&self) -> PathBuf {
        self.agent_dir.join("pod-manifests")
    }
}

/// crictl's config for the node (k3s's `agent/etc/crictl.yaml`): its
/// containerd socket.
pub fn crictl_config(agent_dir: &Path) -> PathBuf {
    agent_dir.join("etc").join("crictl.yaml")
}

/// `--name=value`
pub fn flag(name: &str, value: impl std::fmt::Display) -> String {
    format!("--{name}={value}")
}

/// `key=value` (or `key`) from a passthrough flag, as `--key=value`.
pub fn passthrough(args: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| format!("--{}", a.trim_start_matches('-')))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passthrough_args_become_flags() {
        let got = passthrough(&[
            "v=2".into(),
            "--feature-gates=A=true".into(),
            "allow-privileged".into(),
        ]);
        assert_eq!(
            got,
            ["--v=2", "--feature-gates=A=true", "--allow-privileged"]
        );
    }

    #[test]
    fn two_nodes_on_one_machine_share_no_path() {
        let a = NodePaths::new(
            Path::new("/d/a/agent"),
            Path::new("/run/k3r-a"),
            Path::new("/d/a/agent/cni"),
        );
        let b = NodePaths::new(
            Path::new("/d/b/agent"),
            Path::new("/run/k3r-b"),
            Path::new("/d/b/agent/cni"),
        );
        for (x, y) in [
            (a.containerd_socket(), b.containerd_socket()),
            (a.containerd_root(), b.containerd_root()),
            (a.kubelet_root(), b.kubelet_root()),
            (a.cni_conf_dir(), b.cni_conf_dir()),
            (a.cni_state_dir.clone(), b.cni_state_dir.clone()),
        ] {
            assert_ne!(x, y);
        }
        let cni = cni::config("10.42.1.0/24", "10.42.0.0/16", &a.cni_state_dir, 1450);
        assert!(
            cni.contains("/d/a/agent/cni")
                && cni.contains("10.42.1.0/24")
                && cni.contains(r#""mtu":1450"#),
            "{cni}"
        );
        assert!(
            containerd::config(&a, &Default::default())
                .contains("/run/k3r-a/containerd/containerd.sock")
        );
    }
}
