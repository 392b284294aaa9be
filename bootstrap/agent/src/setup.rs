//! What an agent writes before it can run a node (k3s's agent config
//! step): its node password, the CAs, its kubelet serving and client
//! certificates, the shared kube-proxy and k3r-controller identities, and
//! kubeconfigs that reach the cluster through the local load balancer —
//! after checking the server against the token and the cluster's critical
//! configuration against the agent's own.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use k3r_join_protocol::{CriticalConfig, Endpoint, Mismatch};
use k3r_pki::{write_kubeconfig, write_private};

use crate::join::{JoinError, Joiner, NodeIdentity, split_cert_and_key};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Join(#[from] JoinError),
    #[error(transparent)]
    Critical(#[from] Mismatch),
    #[error("the server's {endpoint} answer is not what was expected: {reason}")]
    Answer {
        endpoint: &'static str,
        reason: String,
    },
    #[error("{path}: {reason}", path = .0.display(), reason = .1)]
    File(PathBuf, String),
}

/// The agent's flags that setup needs.
#[derive(Clone, Debug)]
pub struct AgentSetup {
    pub data_dir: PathBuf,
    pub server: String,
    pub token: String,
    pub node_name: String,
    pub node_ips: Vec<IpAddr>,
    /// Port of the local load balancer the kubeconfigs point at.
    pub lb_port: u16,
    /// Critical values given on the agent's command line (key, value).
    pub critical: Vec<(&'static str, Option<String>)>,
}

/// What setup produced.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub agent_dir: PathBuf,
    /// Supervisor addresses of every server (for the load balancer).
    pub apiservers: Vec<String>,
    /// The cluster's critical configuration.
    pub cluster: CriticalConfig,
}

fn write(path: &Path, contents: &[u8], private: bool) -> Result<(), SetupError> {
    let result = if private {
        write_private(path, contents)
    } else {
        k3r_pki::write_public(path, contents)
    };
    result.map_err(|e| SetupError::File(path.to_path_buf(), e.to_string()))
}

/// This machine's node password: made once, kept in the data dir.
pub fn node_password(agent_dir: &Path) -> Result<String, SetupError> {
    k3r_pki::node_password(agent_dir)
        .map_err(|e| SetupError::File(agent_dir.join("node-password"), e.to_string()))
}

pub async fn prepare(setup: &AgentSetup) -> Result<Prepared, SetupError> {
    let agent_dir = setup.data_dir.join("agent");
    std::fs::create_dir_all(&agent_dir)
        .map_err(|e| SetupError::File(agent_dir.clone(), e.to_string()))?;
    let joiner = Joiner::connect(&setup.server, &setup.token).await?;
    let cluster: CriticalConfig =
        serde_json::from_slice(&joiner.get(Endpoint::Config, None).await?).map_err(|e| {
            SetupError::Answer {
                endpoint: "config",
                reason: e.to_string(),
            }
        })?;
    cluster.check(&setup.critical)?;
    let identity = NodeIdentity {
        name: setup.node_name.clone(),
        password: node_password(&agent_dir)?,
        ips: setup.node_ips.clone(),
    };
    for endpoint in [Endpoint::ClientCa, Endpoint::ServerCa] {
        let pem = joiner.get(endpoint, None).await?;
        write(&agent_dir.join(endpoint.name()), &pem, false)?;
    }
    for (endpoint, stem) in [
        (Endpoint::ServingKubelet, "serving-kubelet"),
        (Endpoint::ClientKubelet, "client-kubelet"),
        (Endpoint::ClientKubeProxy, "client-kube-proxy"),
        (Endpoint::ClientK3rController, "client-k3r-controller"),
    ] {
        let body = joiner
            .get(endpoint, endpoint.needs_node().then_some(&identity))
            .await?;
        let (cert, key) = split_cert_and_key(&body);
        if cert.is_empty() || key.is_empty() {
            return Err(SetupError::Answer {
                endpoint: "certificate",
                reason: format!("{} holds no certificate and key", endpoint.name()),
            });
        }
        write(
            &agent_dir.join(format!("{stem}.crt")),
            cert.as_bytes(),
            false,
        )?;
        write(&agent_dir.join(format!("{stem}.key")), key.as_bytes(), true)?;
    }
    let local = format!("https://127.0.0.1:{}", setup.lb_port);
    for (kubeconfig, stem) in [
        ("kubelet.kubeconfig", "client-kubelet"),
        ("kubeproxy.kubeconfig", "client-kube-proxy"),
        ("k3rcontroller.kubeconfig", "client-k3r-controller"),
    ] {
        let path = agent_dir.join(kubeconfig);
        write_kubeconfig(
            &path,
            &local,
            &agent_dir.join("server-ca.crt"),
            &agent_dir.join(format!("{stem}.crt")),
            &agent_dir.join(format!("{stem}.key")),
            0o600,
        )
        .map_err(|e| SetupError::File(path.clone(), e.to_string()))?;
    }
    let apiservers: Vec<String> =
        serde_json::from_slice(&joiner.get(Endpoint::Apiservers, None).await?).map_err(|e| {
            SetupError::Answer {
                endpoint: "apiservers",
                reason: e.to_string(),
            }
        })?;
    tracing::info!(node = %setup.node_name, ?apiservers, "joined: certificates and kubeconfigs written");
    Ok(Prepared {
        agent_dir,
        apiservers,
        cluster,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_password_is_made_once() {
        let dir = std::env::temp_dir().join(format!("k3r-agent-setup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let first = node_password(&dir).expect("made");
        assert_eq!(first.len(), 32);
        assert_eq!(node_password(&dir).expect("kept"), first);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
