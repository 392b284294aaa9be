use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use k3r_agent::{AgentConfig, AgentSetup};

use super::host;

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Config file (its drop-ins are read from FILE.d/)
    #[arg(
        long,
        short = 'c',
        env = "K3R_CONFIG_FILE",
        default_value = "/etc/k3r/config.yaml"
    )]
    pub config: PathBuf,
    /// Server to connect to (https://HOST:PORT)
    #[arg(long, short = 's', env = "K3R_URL")]
    server: Option<String>,
    /// Token to join with (the server's node-token, or a bootstrap token)
    #[arg(long, short = 't', env = "K3R_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the token
    #[arg(long, env = "K3R_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Folder to hold state
    #[arg(
        long,
        short = 'd',
        env = "K3R_DATA_DIR",
        default_value = "/var/lib/k3r"
    )]
    data_dir: PathBuf,
    /// Node name (default: the hostname)
    #[arg(long, env = "K3R_NODE_NAME")]
    node_name: Option<String>,
    /// IP address to advertise for the node (default: the default route's)
    #[arg(long, short = 'i', env = "K3R_NODE_IP")]
    node_ip: Option<IpAddr>,
    /// External IP address to advertise for the node
    #[arg(long, env = "K3R_NODE_EXTERNAL_IP")]
    node_external_ip: Option<IpAddr>,
    /// Interface for node-to-node pod traffic (default: the node IP's)
    #[arg(long)]
    flannel_iface: Option<String>,
    /// Port of the local load balancer in front of the servers
    #[arg(long, env = "K3R_LB_SERVER_PORT", default_value_t = 6444)]
    lb_server_port: u16,
    /// Extra kubelet flag as key=value (repeatable)
    #[arg(long)]
    kubelet_arg: Vec<String>,
    /// Extra kube-proxy flag as key=value (repeatable)
    #[arg(long)]
    kube_proxy_arg: Vec<String>,
    /// Label to register the node with (repeatable)
    #[arg(long)]
    node_label: Vec<String>,
    /// Taint to register the node with (repeatable)
    #[arg(long)]
    node_taint: Vec<String>,
    /// Expected cluster CIDR: the join is refused if the server's differs
    #[arg(long)]
    cluster_cidr: Option<String>,
    /// Expected service CIDR: the join is refused if the server's differs
    #[arg(long)]
    service_cidr: Option<String>,
    /// Expected cluster DNS: the join is refused if the server's differs
    #[arg(long)]
    cluster_dns: Option<String>,
    /// Expected cluster domain: the join is refused if the server's differs
    #[arg(long)]
    cluster_domain: Option<String>,
    /// This node shares the machine with other k3r nodes (each in its own
    /// network namespace): keep run state, cgroups, pod logs and pod IPs apart
    #[arg(long)]
    shared_host: bool,
}

impl AgentArgs {
    fn resolve(self) -> anyhow::Result<AgentConfig> {
        let Some(server) = self.server else {
            bail!("--server is required (https://HOST:6443 of a k3r server)");
        };
        let token = match (self.token, self.token_file) {
            (Some(t), _) => t,
            (None, Some(file)) => std::fs::read_to_string(&file)
                .with_context(|| format!("--token-file {}", file.display()))?
                .trim()
                .to_string(),
            (None, None) => bail!("--token or --token-file is required to join"),
        };
        let node_name = match self.node_name {
            Some(name) => name,
            None => host::hostname()?,
        };
        host::check_node_name(&node_name)?;
        let node_ip = match self.node_ip {
            Some(ip) => ip,
            None => host::default_ip()?,
        };
        let node_ips = [Some(node_ip), self.node_external_ip]
            .into_iter()
            .flatten()
            .collect();
        Ok(AgentConfig {
            setup: AgentSetup {
                data_dir: self.data_dir.clone(),
                server,
                token,
                node_name,
                node_ips,
                lb_port: self.lb_server_port,
                critical: vec![
                    ("clusterCIDR", self.cluster_cidr),
                    ("serviceCIDR", self.service_cidr),
                    ("clusterDNS", self.cluster_dns),
                    ("clusterDomain", self.cluster_domain),
                ],
            },
            kube_binary: host::kube_binary(Some(&self.data_dir))?,
            containerd: k3r_node::host::which("containerd")
                .context("containerd is not on PATH (scripts/install-deps installs it)")?,
            node_ip,
            node_external_ip: self.node_external_ip,
            flannel_iface: self.flannel_iface,
            kubelet_args: self.kubelet_arg,
            kube_proxy_args: self.kube_proxy_arg,
            node_labels: self.node_label,
            node_taints: self.node_taint,
            shared_host: self.shared_host,
        })
    }
}

pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!("k3r agent must run as root");
    }
    let config = args.resolve()?;
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async move {
        k3r_agent::run(config, super::wait_for_signal()).await?;
        anyhow::Ok(())
    })
}
