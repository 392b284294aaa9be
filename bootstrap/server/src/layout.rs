//! The data-dir layout, mirroring k3s's (see k3s-interfaces.md §2).

use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Layout {
    pub data_dir: PathBuf,
    /// The node's programs (the extracted payload, as a rule).
    pub programs: k3r_node::programs::Programs,
}

impl Layout {
    pub fn new(data_dir: &Path, programs: k3r_node::programs::Programs) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            programs,
        }
    }
    pub fn server(&self) -> PathBuf {
        self.data_dir.join("server")
    }
    pub fn tls(&self) -> PathBuf {
        self.server().join("tls")
    }
    pub fn cred(&self) -> PathBuf {
        self.server().join("cred")
    }
    pub fn db(&self) -> PathBuf {
        self.server().join("db")
    }
    pub fn manifests(&self) -> PathBuf {
        self.server().join("manifests")
    }
    pub fn logs(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
    pub fn agent(&self) -> PathBuf {
        self.data_dir.join("agent")
    }
    pub fn agent_etc(&self) -> PathBuf {
        self.agent().join("etc")
    }
    pub fn kubeconfig(&self, name: &str) -> PathBuf {
        self.cred().join(format!("{name}.kubeconfig"))
    }
}

/// Runtime state that must not outlive a boot (sockets, pids).
pub const RUN_DIR: &str = "/run/k3r";
