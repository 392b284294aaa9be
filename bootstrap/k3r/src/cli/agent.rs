use anyhow::{Context, bail};
use clap::Args;
use k3r_agent::{AgentConfig, AgentSetup};

use super::node_flags::{NodeFlags, TokenFlags};

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Server to connect to (https://HOST:PORT)
    #[arg(long, short = 's', env = "K3R_URL")]
    server: Option<String>,
    #[command(flatten)]
    node: NodeFlags,
    #[command(flatten)]
    token: TokenFlags,
    /// Port of the local load balancer in front of the servers
    #[arg(long, env = "K3R_LB_SERVER_PORT", default_value_t = 6444)]
    lb_server_port: u16,
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
        if !server.starts_with("https://") {
            bail!("--server: {server:?} is not an https:// URL");
        }
        let Some(token) = self.token.resolve()? else {
            bail!("--token or --token-file is required to join");
        };
        k3r_pki::Token::parse(&token, "node").context("--token")?;
        let node_name = self.node.node_name()?;
        let node_ip = self.node.node_ip()?;
        let data_dir = self.node.data_dir.data_dir.clone();
        let registries = self.node.registries()?;
        let node_ips = [Some(node_ip), self.node.node_external_ip]
            .into_iter()
            .flatten()
            .collect();
        Ok(AgentConfig {
            setup: AgentSetup {
                data_dir: data_dir.clone(),
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
            runtime: k3r_node::programs::Source::this_k3r()?,
            prefer_bundled_bin: self.node.prefer_bundled_bin,
            registries,
            node_ip,
            node_external_ip: self.node.node_external_ip,
            flannel_iface: self.node.flannel_iface,
            kubelet_args: self.node.kubelet_arg,
            kube_proxy_args: self.node.kube_proxy_arg,
            node_labels: self.node.node_label,
            node_taints: self.node.node_taint,
            shared_host: self.shared_host,
        })
    }
}

pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!("k3r agent must run as root");
    }
    let config = args.resolve()?;
    let exe = super::switch::started_from()?;
    let (node, data_dir) = (
        config.setup.node_name.clone(),
        config.setup.data_dir.clone(),
    );
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    let how = runtime.block_on(k3r_agent::run(config, super::wait_for_stop()))?;
    drop(runtime);
    match how {
        k3r_node::Shutdown::Stop => Ok(()),
        k3r_node::Shutdown::Switch => Err(super::switch::exec_again(&exe, &node, &data_dir)),
    }
}
