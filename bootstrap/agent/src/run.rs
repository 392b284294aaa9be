//! The agent role: join (retrying while the server cannot be reached),
//! the local load balancer, then the node — containerd with k3r's images,
//! kubelet and kube-proxy through the executor seam, node networking once
//! the node has its pod CIDR — until told to stop.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k3r_node::NodePaths;
use k3r_node::kubelet::{Kubelet, SharedHost};
use k3r_node::process::{ChildExecutor, Executor, ProcessSpec, Supervised};

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
    pub kube_binary: PathBuf,
    pub containerd: PathBuf,
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
    data_dir: PathBuf,
    paths: NodePaths,
    cgroup_root: String,
    children: Vec<Supervised>,
    network: Option<k3r_network::NodeNetwork>,
    load_balancer: Option<LoadBalancer>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn stop(mut self) {
        for task in self.background.drain(..) {
            task.abort();
        }
        drop(self.network.take());
        while let Some(child) = self.children.pop() {
            tracing::info!(component = %child.name, "stopping");
            child.stop().await;
        }
        let (paths, data_dir, root) = (
            self.paths.clone(),
            self.data_dir.clone(),
            self.cgroup_root.clone(),
        );
        let _ = tokio::task::spawn_blocking(move || {
            k3r_node::cleanup::stop_workloads(&paths, &data_dir, &root);
            k3r_node::cgroups::remove_root(&root);
            // A node of its own on a shared machine: its run dir is only
            // its own (the default /run/k3r may be a server's).
            if root != "/" {
                let _ = std::fs::remove_dir_all(&paths.run_dir);
            }
        })
        .await;
        drop(self.load_balancer.take());
    }
}

/// Runs the agent until `shutdown` completes, then stops what it started.
pub async fn run(
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let started = Instant::now();
    let (paths, cgroup_root) = config.node_scope();
    let mut running = Running {
        data_dir: config.setup.data_dir.clone(),
        paths,
        cgroup_root,
        children: Vec::new(),
        network: None,
        load_balancer: None,
        background: Vec::new(),
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let result = tokio::select! {
        result = boot(&config, &mut running, started) => result,
        _ = &mut shutdown => {
            tracing::info!("stop requested during startup");
            running.stop().await;
            return Ok(());
        }
    };
    match result {
        Ok(()) => {
            shutdown.await;
            tracing::info!("shutting down");
        }
        Err(ref err) => {
            tracing::error!(error = %err, "agent startup failed; stopping what was started")
        }
    }
    running.stop().await;
    result
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

fn spec(config: &AgentConfig, name: &str, args: Vec<String>) -> ProcessSpec {
    let agent_dir = config.agent_dir();
    ProcessSpec {
        name: name.into(),
        program: config.kube_binary.clone(),
        args,
        env: Vec::new(),
        cwd: Some(agent_dir.clone()),
        log: agent_dir.join("logs").join(format!("{name}.log")),
    }
}

fn cluster_value<'a>(cluster: &'a serde_json::Value, key: &str) -> Result<&'a str, AgentError> {
    cluster[key].as_str().ok_or_else(|| {
        AgentError::Config(format!("the server's cluster configuration has no {key}"))
    })
}

async fn boot(
    config: &AgentConfig,
    running: &mut Running,
    started: Instant,
) -> Result<(), AgentError> {
    let prepared = join(&config.setup).await?;
    tracing::info!(seconds = started.elapsed().as_secs_f32(), "joined");
    let cluster = &prepared.cluster;
    let cluster_cidr: ipnet::IpNet = cluster_value(cluster, "clusterCIDR")?
        .parse()
        .map_err(|_| AgentError::Config("the server's clusterCIDR is not a CIDR".into()))?;
    let cluster_dns: IpAddr = cluster_value(cluster, "clusterDNS")?
        .parse()
        .map_err(|_| AgentError::Config("the server's clusterDNS is not an IP".into()))?;
    let backend: k3r_network::Backend = cluster["flannelBackend"]
        .as_str()
        .unwrap_or("vxlan")
        .parse()?;

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

    let paths = running.paths.clone();
    let cgroup_root = running.cgroup_root.clone();
    for dir in [paths.etc(), paths.agent_dir.join("logs")] {
        std::fs::create_dir_all(&dir).map_err(|e| AgentError::Io(dir.clone(), e))?;
    }
    k3r_node::scope::write(&paths, &cgroup_root)?;
    k3r_node::cgroups::ensure_root(&cgroup_root)?;
    k3r_node::host::prepare_host()?;

    let executor = ChildExecutor;
    running.children.push(k3r_node::containerd::launch(
        &executor,
        &paths,
        config.containerd.clone(),
        paths.agent_dir.join("logs").join("containerd.log"),
    )?);
    k3r_node::containerd::ready(&paths).await?;
    tracing::info!(
        seconds = started.elapsed().as_secs_f32(),
        "containerd ready, images imported"
    );

    let agent_dir = config.agent_dir();
    let kubelet = Kubelet {
        node_name: config.setup.node_name.clone(),
        node_ip: config.node_ip,
        cluster_dns,
        cluster_domain: cluster_value(cluster, "clusterDomain")?.to_string(),
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
    };
    k3r_node::kubelet::write_config(&kubelet, &paths)?;
    running.children.push(executor.start(spec(
        config,
        "kubelet",
        k3r_node::kubelet::args(&kubelet, &paths),
    )));
    running.children.push(executor.start(spec(
        config,
        "kube-proxy",
        k3r_node::kubelet::kube_proxy_args(
            &config.setup.node_name,
            &cluster_cidr.to_string(),
            &agent_dir.join("kubeproxy.kubeconfig"),
            &config.kube_proxy_args,
        ),
    )));

    let client = k3r_network::node::client(&agent_dir.join("k3rcontroller.kubeconfig")).await?;
    let pod_cidr = wait_for_pod_cidr(&client, &config.setup.node_name).await?;
    let network = k3r_network::node::start(
        client.clone(),
        k3r_network::NodeNetworkConfig {
            node_name: config.setup.node_name.clone(),
            node_ip: config.node_ip,
            iface: config.flannel_iface.clone(),
            backend,
            cluster_cidr,
            external_ip: config.node_external_ip,
        },
        &pod_cidr,
    )
    .await?;
    k3r_node::cni::write(
        &paths,
        &pod_cidr.to_string(),
        &cluster_cidr.to_string(),
        network.mtu,
    )?;
    running.network = Some(network);
    // As the kubelet itself (nodes may read their own Node and Lease).
    let kubelet_client = k3r_network::node::client(&agent_dir.join("kubelet.kubeconfig")).await?;
    let booted = std::time::SystemTime::now() - started.elapsed();
    wait_for_ready(&kubelet_client, &config.setup.node_name, booted).await?;
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

const NODE_TIMEOUT: Duration = Duration::from_secs(180);

async fn wait_for_pod_cidr(client: &kube::Client, name: &str) -> Result<String, AgentError> {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    Ok(
        k3r_node::wait::until("the node's pod CIDR", NODE_TIMEOUT, || async {
            nodes.get_opt(name).await.ok().flatten()?.spec?.pod_cidr
        })
        .await?,
    )
}

/// Ready by this boot's kubelet (a Ready condition from before a restart
/// does not count: `k3r_node::ready`).
async fn wait_for_ready(
    client: &kube::Client,
    name: &str,
    booted: std::time::SystemTime,
) -> Result<(), AgentError> {
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client.clone(), "kube-node-lease");
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    Ok(
        k3r_node::wait::until("the node to be Ready", NODE_TIMEOUT, || async {
            let node = serde_json::to_value(nodes.get_opt(name).await.ok().flatten()?).ok()?;
            let lease = leases
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .and_then(|l| serde_json::to_value(l).ok());
            k3r_node::ready::ready_since(&node, lease.as_ref(), booted).then_some(())
        })
        .await?,
    )
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
            serde_json::from_slice::<Vec<String>>(&joiner.get("apiservers", None).await.ok()?).ok()
        }
        .await;
        if let Some(servers) = servers.filter(|s| !s.is_empty()) {
            lb.set_servers(servers);
        }
    }
}
