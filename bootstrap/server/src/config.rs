//! The resolved server configuration (flags and config files are parsed
//! by the CLI; this is what the server acts on).

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use crate::Error;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub token: Option<String>,
    pub cluster_cidr: IpNet,
    pub service_cidr: IpNet,
    pub service_node_port_range: String,
    pub cluster_dns: IpAddr,
    pub cluster_domain: String,
    pub node_name: String,
    pub node_ip: IpAddr,
    pub node_external_ip: Option<IpAddr>,
    pub tls_san: Vec<String>,
    pub write_kubeconfig: PathBuf,
    pub write_kubeconfig_mode: u32,
    pub disable: Vec<String>,
    /// Namespace of the service load balancer's DaemonSets.
    pub servicelb_namespace: String,
    /// `--disable-network-policy`: no node enforces NetworkPolicies.
    pub disable_network_policy: bool,
    /// `--supervisor-metrics`: GET /metrics on the supervisor port adds
    /// k3r's own metrics (the datastore's) to kube-apiserver's.
    pub supervisor_metrics: bool,
    /// Registry of the packaged add-ons' images.
    pub system_default_registry: String,
    pub datastore_endpoint: String,
    pub bind_address: IpAddr,
    pub https_listen_port: u16,
    pub kube_apiserver_args: Vec<String>,
    pub kube_controller_manager_args: Vec<String>,
    pub kube_scheduler_args: Vec<String>,
    pub kubelet_args: Vec<String>,
    pub kube_proxy_args: Vec<String>,
    pub node_labels: Vec<String>,
    pub node_taints: Vec<String>,
    /// Where the node's programs (upstream multicall, containerd, runc,
    /// CNI plugins) come from: this k3r's payload, as a rule.
    pub runtime: k3r_node::programs::Source,
    /// `--prefer-bundled-bin`: the bundled iptables before the host's.
    pub prefer_bundled_bin: bool,
    /// registries.yaml and the default-endpoint policy.
    pub registries: k3r_node::registries::RegistrySettings,
    /// Client TLS for an external https:// etcd.
    pub datastore_tls: Option<DatastoreTls>,
    pub flannel_backend: k3r_network::Backend,
    pub flannel_iface: Option<String>,
}

#[derive(Clone, Debug)]
pub struct DatastoreTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ServerConfig {
    /// Port kube-apiserver listens on (the supervisor port + 1, 6444 by
    /// default, as in k3s); the supervisor listener proxies to it.
    pub fn apiserver_port(&self) -> u16 {
        self.https_listen_port.wrapping_add(1)
    }

    /// The first address of the service CIDR: the `kubernetes` Service.
    pub fn api_service_ip(&self) -> Result<IpAddr, Error> {
        nth_address(&self.service_cidr, 1)
    }
}

pub fn nth_address(net: &IpNet, n: u128) -> Result<IpAddr, Error> {
    let invalid = || Error::Config(format!("{net} has no address number {n}"));
    match net {
        IpNet::V4(v4) => {
            let base = u32::from(v4.network()) as u128;
            let ip = u32::try_from(base + n).map_err(|_| invalid())?;
            let addr = std::net::Ipv4Addr::from(ip);
            if v4.contains(&addr) {
                Ok(IpAddr::V4(addr))
            } else {
                Err(invalid())
            }
        }
        IpNet::V6(v6) => {
            let addr = std::net::Ipv6Addr::from(u128::from(v6.network()) + n);
            if v6.contains(&addr) {
                Ok(IpAddr::V6(addr))
            } else {
                Err(invalid())
            }
        }
    }
}

/// Parses a CIDR flag value with an error naming the flag.
pub fn parse_cidr(flag: &str, value: &str) -> Result<IpNet, Error> {
    let net: IpNet = value.trim().parse().map_err(|_| {
        Error::Config(format!(
            "--{flag}: {value:?} is not a CIDR (like 10.42.0.0/16)"
        ))
    })?;
    if net.trunc() != net {
        return Err(Error::Config(format!(
            "--{flag}: {value} has host bits set; did you mean {}?",
            net.trunc()
        )));
    }
    Ok(net)
}

/// Cluster and service CIDRs must not overlap, and cluster DNS must be a
/// service address.
pub fn check_networks(config: &ServerConfig) -> Result<(), Error> {
    let (a, b) = (&config.cluster_cidr, &config.service_cidr);
    if a.contains(&b.network()) || b.contains(&a.network()) {
        return Err(Error::Config(format!(
            "--cluster-cidr {a} overlaps --service-cidr {b}"
        )));
    }
    if !b.contains(&config.cluster_dns) {
        return Err(Error::Config(format!(
            "--cluster-dns {} is outside --service-cidr {b}",
            config.cluster_dns
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_are_checked_with_the_flag_named() {
        assert!(parse_cidr("cluster-cidr", "10.42.0.0/16").is_ok());
        let err = parse_cidr("cluster-cidr", "10.42.0.0")
            .expect_err("no prefix")
            .to_string();
        assert!(
            err.contains("--cluster-cidr") && err.contains("not a CIDR"),
            "{err}"
        );
        let err = parse_cidr("service-cidr", "10.43.0.1/16")
            .expect_err("host bits")
            .to_string();
        assert!(err.contains("10.43.0.0/16"), "{err}");
        let net = parse_cidr("service-cidr", "10.43.0.0/16").expect("cidr");
        assert_eq!(
            nth_address(&net, 1).expect("first").to_string(),
            "10.43.0.1"
        );
        assert!(nth_address(&parse_cidr("x", "10.0.0.0/31").expect("cidr"), 5).is_err());
    }
}
