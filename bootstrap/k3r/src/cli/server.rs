use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use k3r_server::ServerConfig;
use k3r_server::config::parse_cidr;

use super::node_flags::{NodeFlags, TokenFlags};

#[derive(Args, Debug)]
pub struct ServerArgs {
    #[command(flatten)]
    node: NodeFlags,
    #[command(flatten)]
    token: TokenFlags,
    /// Network CIDR for pod IPs
    #[arg(long, env = "K3R_CLUSTER_CIDR", default_value = "10.42.0.0/16")]
    cluster_cidr: String,
    /// Network CIDR for service IPs
    #[arg(long, env = "K3R_SERVICE_CIDR", default_value = "10.43.0.0/16")]
    service_cidr: String,
    /// Port range reserved for NodePort services
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: String,
    /// Cluster IP of the DNS service
    #[arg(long, env = "K3R_CLUSTER_DNS", default_value = "10.43.0.10")]
    cluster_dns: IpAddr,
    /// Cluster domain
    #[arg(long, env = "K3R_CLUSTER_DOMAIN", default_value = "cluster.local")]
    cluster_domain: String,
    /// Extra hostnames or IPs for the server certificate (repeatable)
    #[arg(long)]
    tls_san: Vec<String>,
    /// Where to write the admin kubeconfig
    #[arg(
        long,
        short = 'o',
        env = "K3R_KUBECONFIG_OUTPUT",
        default_value = "/etc/k3r/k3r.yaml"
    )]
    write_kubeconfig: PathBuf,
    /// Mode of the admin kubeconfig (octal)
    #[arg(long, env = "K3R_KUBECONFIG_MODE", default_value = "0600")]
    write_kubeconfig_mode: String,
    /// Packaged components to leave out (repeatable or comma-separated)
    #[arg(long, value_delimiter = ',')]
    disable: Vec<String>,
    /// Namespace of the service load balancer's svclb DaemonSets
    #[arg(long, env = "K3R_SERVICELB_NAMESPACE", default_value = "kube-system")]
    servicelb_namespace: String,
    /// Do not enforce NetworkPolicies (every node's rules are removed)
    // Takes an optional value so that `disable-network-policy: true` in
    // config.yaml (spliced as `--disable-network-policy=true`) works.
    #[arg(long, env = "K3R_DISABLE_NETWORK_POLICY", num_args = 0..=1,
          default_missing_value = "true", default_value = "false",
          action = clap::ArgAction::Set)]
    disable_network_policy: bool,
    /// Serve k3r's own metrics (the datastore's) with kube-apiserver's at
    /// /metrics on the supervisor port
    #[arg(long, env = "K3R_SUPERVISOR_METRICS", num_args = 0..=1,
          default_missing_value = "true", default_value = "false",
          action = clap::ArgAction::Set)]
    supervisor_metrics: bool,
    /// sqlite://, postgres://, mysql:// or https:// (etcd); default: SQLite in the data dir
    #[arg(long, env = "K3R_DATASTORE_ENDPOINT", default_value = "")]
    datastore_endpoint: String,
    /// CA for an external https:// etcd datastore
    #[arg(long, env = "K3R_DATASTORE_CAFILE")]
    datastore_cafile: Option<PathBuf>,
    /// Client certificate for an external https:// etcd datastore
    #[arg(long, env = "K3R_DATASTORE_CERTFILE")]
    datastore_certfile: Option<PathBuf>,
    /// Client key for an external https:// etcd datastore
    #[arg(long, env = "K3R_DATASTORE_KEYFILE")]
    datastore_keyfile: Option<PathBuf>,
    /// Address of the supervisor listener
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// Port of the supervisor listener (the API port for clients)
    #[arg(long, default_value_t = 6443)]
    https_listen_port: u16,
    /// Extra kube-apiserver flag as key=value (repeatable)
    #[arg(long)]
    kube_apiserver_arg: Vec<String>,
    /// Extra kube-controller-manager flag as key=value (repeatable)
    #[arg(long)]
    kube_controller_manager_arg: Vec<String>,
    /// Extra kube-scheduler flag as key=value (repeatable)
    #[arg(long)]
    kube_scheduler_arg: Vec<String>,
    /// Registry prefixed to the packaged add-ons' images (default docker.io)
    #[arg(long, env = "K3R_SYSTEM_DEFAULT_REGISTRY")]
    system_default_registry: Option<String>,
    /// Flannel backend (vxlan, host-gw or none); multi-node networking
    #[arg(long, default_value = "vxlan")]
    flannel_backend: String,
}

const KNOWN_COMPONENTS: [&str; 6] = [
    "coredns",
    "servicelb",
    "traefik",
    "local-storage",
    "metrics-server",
    "runtimes",
];

impl ServerArgs {
    fn resolve(self) -> anyhow::Result<ServerConfig> {
        let cluster_cidr = parse_cidr("cluster-cidr", &self.cluster_cidr)?;
        let service_cidr = parse_cidr("service-cidr", &self.service_cidr)?;
        let write_kubeconfig_mode =
            u32::from_str_radix(self.write_kubeconfig_mode.trim_start_matches("0o"), 8)
                .ok()
                .filter(|m| *m <= 0o777)
                .with_context(|| {
                    format!(
                        "--write-kubeconfig-mode: {:?} is not an octal file mode",
                        self.write_kubeconfig_mode
                    )
                })?;
        for item in &self.disable {
            if !KNOWN_COMPONENTS.contains(&item.as_str()) {
                bail!(
                    "--disable: unknown component {item:?} (known: {})",
                    KNOWN_COMPONENTS.join(", ")
                );
            }
        }
        let flannel_backend: k3r_network::Backend = self.flannel_backend.parse()?;
        let token = self.token.resolve()?;
        let node_name = self.node.node_name()?;
        let node_ip = self.node.node_ip()?;
        let data_dir = self.node.data_dir.data_dir.clone();
        let registries = self.node.registries()?;
        Ok(ServerConfig {
            data_dir: data_dir.clone(),
            token,
            cluster_cidr,
            service_cidr,
            service_node_port_range: self.service_node_port_range,
            cluster_dns: self.cluster_dns,
            cluster_domain: self.cluster_domain,
            node_name,
            node_ip,
            node_external_ip: self.node.node_external_ip,
            tls_san: self.tls_san,
            write_kubeconfig: self.write_kubeconfig,
            write_kubeconfig_mode,
            disable: self.disable,
            servicelb_namespace: self.servicelb_namespace,
            disable_network_policy: self.disable_network_policy,
            supervisor_metrics: self.supervisor_metrics,
            system_default_registry: self
                .system_default_registry
                .unwrap_or_else(|| "docker.io".into()),
            datastore_endpoint: self.datastore_endpoint,
            bind_address: self.bind_address,
            https_listen_port: self.https_listen_port,
            kube_apiserver_args: self.kube_apiserver_arg,
            kube_controller_manager_args: self.kube_controller_manager_arg,
            kube_scheduler_args: self.kube_scheduler_arg,
            kubelet_args: self.node.kubelet_arg,
            kube_proxy_args: self.node.kube_proxy_arg,
            node_labels: self.node.node_label,
            node_taints: self.node.node_taint,
            runtime: k3r_node::programs::Source::this_k3r()?,
            prefer_bundled_bin: self.node.prefer_bundled_bin,
            registries,
            flannel_backend,
            flannel_iface: self.node.flannel_iface,
            datastore_tls: match (
                self.datastore_cafile,
                self.datastore_certfile,
                self.datastore_keyfile,
            ) {
                (None, None, None) => None,
                (Some(ca), Some(cert), Some(key)) => {
                    Some(k3r_server::config::DatastoreTls { ca, cert, key })
                }
                _ => bail!(
                    "--datastore-cafile, --datastore-certfile and --datastore-keyfile go together"
                ),
            },
        })
    }
}

pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    let exe = super::switch::started_from()?;
    let (node, data_dir) = (config.node_name.clone(), config.data_dir.clone());
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    let how = runtime.block_on(k3r_server::run(config, super::wait_for_stop()))?;
    drop(runtime);
    match how {
        k3r_node::Shutdown::Stop => Ok(()),
        k3r_node::Shutdown::Switch => Err(super::switch::exec_again(&exe, &node, &data_dir)),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};

    #[test]
    fn switches_are_bare_flags_or_config_file_values() {
        type Read = fn(&super::ServerArgs) -> bool;
        let switches: [(&str, Read); 2] = [
            ("--disable-network-policy", |s| s.disable_network_policy),
            ("--supervisor-metrics", |s| s.supervisor_metrics),
        ];
        for (flag, read) in switches {
            for (given, expected) in [
                (None, false),
                (Some(flag.to_string()), true),
                (Some(format!("{flag}=true")), true),
                (Some(format!("{flag}=false")), false),
            ] {
                let cli = Cli::try_parse_from(
                    ["k3r".to_string(), "server".to_string()]
                        .into_iter()
                        .chain(given.clone()),
                )
                .expect("parses");
                let Command::Server(server) = cli.command else {
                    panic!("not a server command");
                };
                assert_eq!(read(&server), expected, "{given:?}");
            }
        }
    }
}
