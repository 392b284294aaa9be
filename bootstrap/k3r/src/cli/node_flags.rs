//! Flags every node takes, server or agent (k3s's shared agent flags),
//! and the data dir and token flags several commands share.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::host;

/// Root's data dir, as k3s's /var/lib/rancher/k3s.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/k3r";

#[derive(Args, Debug)]
pub struct DataDir {
    /// Folder to hold state
    #[arg(long, short = 'd', env = "K3R_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct TokenFlags {
    /// Shared secret (a server generates one if not given; an agent joins with it)
    #[arg(long, short = 't', env = "K3R_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the token
    #[arg(long, env = "K3R_TOKEN_FILE")]
    token_file: Option<PathBuf>,
}

impl TokenFlags {
    /// `--token`, else the contents of `--token-file`.
    pub fn resolve(self) -> anyhow::Result<Option<String>> {
        Ok(match (self.token, self.token_file) {
            (Some(t), _) => Some(t),
            (None, Some(file)) => Some(
                std::fs::read_to_string(&file)
                    .with_context(|| format!("--token-file {}", file.display()))?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        })
    }
}

#[derive(Args, Debug)]
pub struct NodeFlags {
    /// Config file (its drop-ins are read from FILE.d/; the command line wins)
    #[arg(
        long,
        short = 'c',
        env = "K3R_CONFIG_FILE",
        default_value = "/etc/k3r/config.yaml"
    )]
    pub config: PathBuf,
    #[command(flatten)]
    pub data_dir: DataDir,
    /// Node name (default: the hostname)
    #[arg(long, env = "K3R_NODE_NAME")]
    node_name: Option<String>,
    /// IP address to advertise for the node (default: the default route's)
    #[arg(long, short = 'i', env = "K3R_NODE_IP")]
    node_ip: Option<IpAddr>,
    /// External IP address to advertise for the node
    #[arg(long, env = "K3R_NODE_EXTERNAL_IP")]
    pub node_external_ip: Option<IpAddr>,
    /// Interface for node-to-node pod traffic (default: the node IP's)
    #[arg(long)]
    pub flannel_iface: Option<String>,
    /// Extra kubelet flag as key=value (repeatable)
    #[arg(long)]
    pub kubelet_arg: Vec<String>,
    /// Extra kube-proxy flag as key=value (repeatable)
    #[arg(long)]
    pub kube_proxy_arg: Vec<String>,
    /// Label to register the node with (repeatable)
    #[arg(long)]
    pub node_label: Vec<String>,
    /// Taint to register the node with (repeatable)
    #[arg(long)]
    pub node_taint: Vec<String>,
    /// Private registry configuration file (k3s's registries.yaml format)
    #[arg(
        long,
        env = "K3R_PRIVATE_REGISTRY",
        default_value = "/etc/k3r/registries.yaml"
    )]
    pub private_registry: PathBuf,
    /// Do not fall back to a mirrored registry's own endpoint
    #[arg(long)]
    pub disable_default_registry_endpoint: bool,
    /// Use k3r's bundled iptables before the host's
    #[arg(long)]
    pub prefer_bundled_bin: bool,
}

impl NodeFlags {
    /// registries.yaml (optional at its default path) and the endpoint
    /// policy; a bad file is refused here, before anything is started.
    pub fn registries(&self) -> anyhow::Result<k3r_node::registries::RegistrySettings> {
        Ok(k3r_node::registries::RegistrySettings {
            registries: k3r_node::registries::Registries::load(&self.private_registry)?,
            disable_default_endpoint: self.disable_default_registry_endpoint,
        })
    }

    /// `--node-name`, else the hostname; checked.
    pub fn node_name(&self) -> anyhow::Result<String> {
        let name = match &self.node_name {
            Some(name) => name.clone(),
            None => host::hostname()?,
        };
        host::check_node_name(&name)?;
        Ok(name)
    }

    /// `--node-ip`, else the default route's address.
    pub fn node_ip(&self) -> anyhow::Result<IpAddr> {
        match self.node_ip {
            Some(ip) => Ok(ip),
            None => host::default_ip(),
        }
    }
}
