//! The agent role: join (retrying while the server cannot be reached),
//! the local load balancer, then the node through k3r-node's node start
//! (the path the server's own node takes too), then the tunnels — until
//! told to stop.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k3r_node::kubelet::{Kubelet, SharedHost};
use k3r_node::process::ChildExecutor;
use k3r_node::{NodePaths, NodeSpec};
use k3r_node::{Shutdown, record};

use crate::join::JoinError;
use crate::loadbalancer::LoadBalancer;
use crate::setup::{AgentSetup, Prepared, SetupError, prepare};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Node(#[from] k3r_node::Error),
    #[error("node networking: {0}")]
    Network(#[from] k3r_network::Error),
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, std::io::Error),
    #[error("load balancer on {0}: {1}")]
    LoadBalancer(SocketAddr, std::io::Error),
    #[error("{0}")]
    Config(String),
}

/// The resolved agent configuration.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub setup: AgentSetup,
    /// Where the node's programs come from: this k3r's payload, as a rule.
    pub runtime: k3r_node::programs::Source,
    /// `--prefer-bundled-bin`: the bundled iptables before the host's.
    pub prefer_bundled_bin: bool,
    /// registries.yaml and the default-endpoint policy.
    pub registries: k3r_node::registries::RegistrySettings,
    pub node_ip: IpAddr,
    pub node_external_ip: Option<IpAddr>,
    pub flannel_iface: Option<String>,
    pub kubelet_args: Vec<String>,
    pub kube_proxy_args: Vec<String>,
    pub node_labels: Vec<String>,
    pub node_taints: Vec<String>,
    /// Several nodes on one machine (each in its own network namespace):
    /// run state, cgroup root, pod logs and IP allocations of its own.
    pub shared_host: bool,
}

impl AgentConfig {
    fn agent_dir(&self) -> PathBuf {
        self.setup.data_dir.join("agent")
    }

    /// Where the node keeps what is not in its data dir, and its cgroup
    /// root.
    pub fn node_scope(&self) -> (NodePaths, String) {
        let agent_dir = self.agent_dir();
        if self.shared_host {
            let name = &self.setup.node_name;
            (
                NodePaths::new(
                    &agent_dir,
                    &Path::new("/run").join(format!("k3r-{name}")),
                    &agent_dir.join("cni-state"),
                ),
                format!("/k3r-{name}"),
            )
        } else {
            (
                NodePaths::new(
                    &agent_dir,
                    Path::new("/run/k3r"),
                    Path::new("/var/lib/cni/k3r"),
                ),
                "/".into(),
            )
        }
    }
}

struct Running {
    node: k3r_node::Node,
    load_balancer: Option<LoadBalancer>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn stop(mut self, how: Shutdown) {
        for task in self.background.drain(..) {
            task.abort();
        }
        self.node.stop(how).await;
        drop(self.load_balancer.take());
    }
}

/// Runs the agent until `shutdown` says how to stop, then stops what it
/// started (keeping the pods on a [`Shutdown::Switch`]); returns how it
/// stopped.
pub async fn run(
    config: AgentConfig,
    shutdown: impl Future<Output = Shutdown>,
) -> Result<Shutdown, AgentError> {
    k3r_node::host::kernel_check().map_err(AgentError::Config)?;
    let started = Instant::now();
    let programs = config
        .runtime
        .install(&config.setup.data_dir)?
        .preferring_bundled(config.prefer_bundled_bin);
    let mut running = Running {
        node: k3r_node::Node::default(),
        load_balancer: None,
        background: Vec::new(),
    };
    let mut record = record::this_process(
        "agent",
        &config.setup.node_name,
        &programs.kube(),
        &config.setup.data_dir,
    );
    record::publish(&record);
    let mut shutdown = std::pin::pin!(shutdown);
    let result = tokio::select! {
        result = boot(&config, &programs, &mut running, started) => result,
        how = &mut shutdown => {
            tracing::info!(?how, "stop requested during startup");
            running.stop(how).await;
            record.forget(how);
            return Ok(how);
        }
    };
    let how = match result {
        Ok(()) => {
            k3r_node::programs::clean_up_after_start(&config.setup.data_dir);
            record.ready_until(shutdown).await
        }
        Err(ref err) => {
            tracing::error!(error = %err, "agent startup failed; stopping what was started");
            Shutdown::Stop
        }
    };
    running.stop(how).await;
    record.forget(how);
    result.map(|()| how)
}

/// Whether a join failure may pass by itself (the server is starting or
/// restarting); a refused token or a CA mismatch will not.
fn retryable(error: &SetupError) -> bool {
    match error {
        SetupError::Join(JoinError::Unreachable { .. }) => true,
        SetupError::Join(JoinError::Status { status, .. }) => status.is_server_error(),
        _ => false,
    }
}

const MAX_JOIN_BACKOFF: Duration = Duration::from_secs(30);

async fn join(setup: &AgentSetup) -> Result<Prepared, SetupError> {
    let mut backoff = Duration::from_secs(1);
    loop {
        match prepare(setup).await {
            Ok(prepared) => return Ok(prepared),
            Err(err) if retryable(&err) => {
                tracing::warn!(error = %err, retry_in = ?backoff, "cannot join yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_JOIN_BACKOFF);
            }
            Err(err) => return Err(err),
        }
    }
}

/// `host:port` of `https://host:port`.
fn authority(url: &str) -> String {
    url.trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string()
}

async fn boot(
    config: &AgentConfig,
    programs: &k3r_node::programs::Programs,
    running: &mut Running,
    started: Instant,
) -> Result<(), AgentError> {
    let prepared = join(&config.setup).await?;
    tracing::info!(seconds = started.elapsed().as_secs_f32(), "joined");
    let cluster = &prepared.cluster;
    let cluster_cidr: ipnet::IpNet = cluster
        .cluster_cidr
        .parse()
        .map_err(|_| AgentError::Config("the server's clusterCIDR is not a CIDR".into()))?;
    let cluster_dns: IpAddr = cluster
        .cluster_dns
        .parse()
        .map_err(|_| AgentError::Config("the server's clusterDNS is not an IP".into()))?;
    let backend: k3r_network::Backend = match cluster.flannel_backend.as_str() {
        "" => k3r_network::Backend::Vxlan,
        other => other.parse()?,
    };

    let mut servers = prepared.apiservers.clone();
    if servers.is_empty() {
        servers.push(authority(&config.setup.server));
    }
    let lb_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), config.setup.lb_port);
    let lb = LoadBalancer::start(lb_addr, servers)
        .await
        .map_err(|e| AgentError::LoadBalancer(lb_addr, e))?;
    running.background.push(tokio::spawn(refresh_servers(
        config.setup.clone(),
        lb.handle(),
    )));
    running.load_balancer = Some(lb);

    let (paths, cgroup_root) = config.node_scope();
    let paths = paths.with_programs(programs);
    let agent_dir = config.agent_dir();
    let node = NodeSpec {
        data_dir: config.setup.data_dir.clone(),
        paths: paths.clone(),
        cgroup_root: cgroup_root.clone(),
        programs: programs.clone(),
        registries: config.registries.clone(),
        logs: agent_dir.join("logs"),
        kubelet: Kubelet {
            node_name: config.setup.node_name.clone(),
            node_ip: config.node_ip,
            cluster_dns,
            cluster_domain: cluster.cluster_domain.clone(),
            client_ca: agent_dir.join("client-ca.crt"),
            serving_cert: agent_dir.join("serving-kubelet.crt"),
            serving_key: agent_dir.join("serving-kubelet.key"),
            kubeconfig: agent_dir.join("kubelet.kubeconfig"),
            config_file: paths.etc().join("kubelet.conf"),
            labels: config.node_labels.clone(),
            taints: config.node_taints.clone(),
            extra_args: config.kubelet_args.clone(),
            shared_host: config.shared_host.then(|| SharedHost {
                cgroup_root: cgroup_root.clone(),
                pod_logs_dir: agent_dir.join("pod-logs"),
            }),
        },
        kube_proxy_kubeconfig: agent_dir.join("kubeproxy.kubeconfig"),
        kube_proxy_args: config.kube_proxy_args.clone(),
        controller_kubeconfig: agent_dir.join("k3rcontroller.kubeconfig"),
        network: k3r_network::NodeNetworkConfig {
            node_name: config.setup.node_name.clone(),
            node_ip: config.node_ip,
            iface: config.flannel_iface.clone(),
            backend,
            cluster_cidr,
            external_ip: config.node_external_ip,
        },
    };
    let pod_cidr = running.node.start(&node, &ChildExecutor, started).await?;
    // The servers reach this node's kubelet through tunnels, opened once
    // the Node (whose addresses they are registered by) exists.
    let tunnel = crate::tunnel::TunnelConfig::for_agent(&agent_dir);
    for server in &prepared.apiservers {
        running
            .background
            .push(tokio::spawn(crate::tunnel::keep_open(
                server.clone(),
                tunnel.clone(),
            )));
    }
    tracing::info!(
        node = %config.setup.node_name,
        pod_cidr = %pod_cidr,
        seconds = started.elapsed().as_secs_f32(),
        "node Ready"
    );
    Ok(())
}

/// How often the server list behind the load balancer is refreshed.
const REFRESH: Duration = Duration::from_secs(60);

async fn refresh_servers(setup: AgentSetup, lb: crate::loadbalancer::Handle) {
    loop {
        tokio::time::sleep(REFRESH).await;
        let servers = async {
            let joiner = crate::Joiner::connect(&setup.server, &setup.token)
                .await
                .ok()?;
            serde_json::from_slice::<Vec<String>>(
                &joiner
                    .get(k3r_join_protocol::Endpoint::Apiservers, None)
                    .await
                    .ok()?,
            )
            .ok()
        }
        .await;
        if let Some(servers) = servers.filter(|s| !s.is_empty()) {
            lb.set_servers(servers);
        }
    }
}
