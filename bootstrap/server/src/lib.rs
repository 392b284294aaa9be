//! The k3r server role: brings up a complete single-node cluster and keeps
//! it running until told to stop.

mod addons;
mod api;
mod args;
mod checks;
pub mod cleanup;
pub mod config;
mod crds;
pub mod join;
pub mod layout;
mod node;
mod operators;
mod proxy;
mod tls;
mod token;
pub mod tunnel;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k3r_datastore::{Datastore, DatastoreConfig, Endpoint, Listen, StoreConfig};
use k3r_pki::{Pki, PkiOptions, write_kubeconfig};
use tokio::sync::watch;

pub use crate::config::ServerConfig;
use crate::layout::Layout;
use k3r_node::process::{ChildExecutor, Executor, ProcessSpec, Supervised};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, std::io::Error),
    #[error(transparent)]
    Pki(#[from] k3r_pki::Error),
    #[error("datastore: {0}")]
    Datastore(#[from] k3r_datastore::Error),
    #[error("tls: {0}")]
    Tls(String),
    #[error("kubernetes API: {0}")]
    Api(String),
    #[error("host setup: {0}")]
    Host(String),
    #[error(transparent)]
    Node(#[from] k3r_node::Error),
}

/// host-local IPAM's state for the server's node (kept where earlier
/// releases put it).
pub(crate) const CNI_STATE_DIR: &str = "/var/lib/cni/k3r";

/// What ran, so it can be stopped in reverse order.
struct Running {
    data_dir: PathBuf,
    children: Vec<Supervised>,
    network: Option<k3r_network::NodeNetwork>,
    datastore: Option<Datastore>,
    stop_listener: watch::Sender<bool>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop_listener.send(true);
        drop(self.network.take());
        let mut workloads_stopped = false;
        while let Some(child) = self.children.pop() {
            tracing::info!(component = %child.name, "stopping");
            let was_containerd = child.name == "containerd";
            child.stop().await;
            // Containers outlive containerd; stop them and their mounts
            // before the control plane, whose graceful stop waits for the
            // watches that pods (operators, CoreDNS) hold open.
            if was_containerd {
                self.stop_workloads().await;
                workloads_stopped = true;
            }
        }
        if !workloads_stopped {
            self.stop_workloads().await;
        }
        if let Some(datastore) = self.datastore.take() {
            datastore.stop().await;
        }
    }

    async fn stop_workloads(&self) {
        let data_dir = self.data_dir.clone();
        let _ = tokio::task::spawn_blocking(move || {
            k3r_node::cleanup::stop_workloads(&cleanup::server_node(&data_dir), &data_dir, "/")
        })
        .await;
    }
}

fn spec(layout: &Layout, config: &ServerConfig, name: &str, args: Vec<String>) -> ProcessSpec {
    ProcessSpec {
        name: name.into(),
        program: config.kube_binary.clone(),
        args,
        env: Vec::new(),
        cwd: Some(layout.server()),
        log: layout.log(name),
    }
}

/// Runs the server until `shutdown` completes, then stops every component.
pub async fn run(config: ServerConfig, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    checks::preflight(&config)?;
    let started = Instant::now();
    let layout = Layout::new(&config.data_dir);
    let (stop_listener, stop_rx) = watch::channel(false);
    let mut running = Running {
        data_dir: config.data_dir.clone(),
        children: Vec::new(),
        network: None,
        datastore: None,
        stop_listener,
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let result = tokio::select! {
        result = boot(&config, &layout, &mut running, stop_rx, started) => result,
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
        Err(ref err) => tracing::error!(error = %err, "startup failed; stopping what was started"),
    }
    running.stop().await;
    result
}

async fn boot(
    config: &ServerConfig,
    layout: &Layout,
    running: &mut Running,
    stop_rx: watch::Receiver<bool>,
    started: Instant,
) -> Result<(), Error> {
    for dir in [
        layout.server(),
        layout.cred(),
        layout.db(),
        layout.manifests(),
        layout.logs(),
        layout.agent_etc(),
    ] {
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io(dir.clone(), e))?;
    }
    let pki = Pki::ensure(
        &layout.tls(),
        &PkiOptions {
            node_name: config.node_name.clone(),
            node_ips: [Some(config.node_ip), config.node_external_ip]
                .into_iter()
                .flatten()
                .collect(),
            tls_sans: config.tls_san.clone(),
            cluster_domain: config.cluster_domain.clone(),
            api_service_ip: config.api_service_ip()?,
        },
    )?;
    let token = token::ensure(layout, &pki, config.token.as_deref())?;
    tracing::info!("certificates and token ready");
    addons::write(config, layout)?;

    let endpoint = Endpoint::parse(&config.datastore_endpoint, layout.db().join("state.db"))?;
    let etcd_servers = match &endpoint {
        Endpoint::Etcd(urls) => urls.join(","),
        _ => {
            let datastore = Datastore::start(DatastoreConfig {
                endpoint,
                listen: vec![Listen::Unix(layout.server().join("kine.sock"))],
                tls: None,
                metrics_listen: None,
                store: StoreConfig::default(),
                progress_notify_interval: Duration::from_secs(5),
            })
            .await?;
            tracing::info!(backend = datastore.store.kind(), "datastore ready");
            running.datastore = Some(datastore);
            // Relative, like k3s: kube-apiserver runs in the server dir, and
            // a relative socket path is a valid gRPC authority.
            "unix://kine.sock".to_string()
        }
    };

    let local_api = format!("https://127.0.0.1:{}", config.apiserver_port());
    for (name, cert) in [
        ("controller", "client-controller"),
        ("scheduler", "client-scheduler"),
        ("admin", "client-admin"),
        ("supervisor", "client-supervisor"),
        ("kubelet", "client-kubelet"),
        ("kube-proxy", "client-kube-proxy"),
        ("k3r-controller", "client-k3r-controller"),
    ] {
        write_kubeconfig(
            &layout.kubeconfig(name),
            &local_api,
            &pki.server_ca,
            &pki.cert(cert),
            &pki.key(cert),
            0o600,
        )?;
    }

    let api = api::ApiClient::new(
        &local_api,
        &pki.server_ca,
        &pki.cert("client-supervisor"),
        &pki.key("client-supervisor"),
    )?;
    let tunnels = tunnel::Tunnels::new(api.clone());
    let egress_socket = layout.server().join("egress.sock");
    let selector = layout.server().join("egress-selector.yaml");
    std::fs::write(&selector, tunnel::egress::selector_config(&egress_socket))
        .map_err(|e| Error::Io(selector.clone(), e))?;
    tunnel::egress::serve(
        egress_socket,
        std::sync::Arc::clone(&tunnels),
        stop_rx.clone(),
    )
    .await?;
    let executor = ChildExecutor;
    running.children.push(executor.start(spec(
        layout,
        config,
        "kube-apiserver",
        args::apiserver(config, layout, &pki, &etcd_servers),
    )));
    wait_until("kube-apiserver ready", Duration::from_secs(180), || async {
        matches!(api.get("/readyz").await, Ok((hyper::StatusCode::OK, _)))
    })
    .await?;
    tracing::info!(
        seconds = started.elapsed().as_secs_f32(),
        "kube-apiserver ready"
    );
    // The server's node keeps its name the way agents keep theirs: by a
    // node password, so no agent can join under it.
    let own_password = k3r_pki::node_password(&layout.agent())?;
    if !join::nodepass::check(&api, &config.node_name, &own_password).await? {
        tracing::warn!(node = %config.node_name, "this node's name is guarded by another password (data dir replaced?)");
    }
    let crds = crds::install(&api).await?;
    tracing::info!(crds = ?crds, "CRDs installed");
    operators::apply(&api, config, layout).await?;
    tracing::info!("k3r-operators deployment applied");

    let proxy = proxy::serve(
        proxy::ProxyConfig {
            listen: SocketAddr::new(config.bind_address, config.https_listen_port),
            backend: local_api.clone(),
            serving_cert: pki.cert("serving-supervisor"),
            serving_key: pki.key("serving-supervisor"),
            client_ca: pki.client_ca.clone(),
            server_ca: pki.server_ca.clone(),
            proxy_cert: pki.cert("client-auth-proxy"),
            proxy_key: pki.key("client-auth-proxy"),
            join: std::sync::Arc::new(join::JoinService::new(
                config,
                &pki,
                token.password.clone(),
                api.clone(),
                tunnels,
            )?),
        },
        stop_rx,
    )
    .await?;
    drop(proxy);
    let public_api = format!("https://127.0.0.1:{}", config.https_listen_port);
    write_kubeconfig(
        &config.write_kubeconfig,
        &public_api,
        &pki.server_ca,
        &pki.cert("client-admin"),
        &pki.key("client-admin"),
        config.write_kubeconfig_mode,
    )?;
    tracing::info!(kubeconfig = %config.write_kubeconfig.display(), "admin kubeconfig written");

    running.children.push(executor.start(spec(
        layout,
        config,
        "kube-controller-manager",
        args::controller_manager(config, layout, &pki),
    )));
    running.children.push(executor.start(spec(
        layout,
        config,
        "kube-scheduler",
        args::scheduler(config, layout),
    )));

    // The node.
    let node_paths = cleanup::server_node(&config.data_dir);
    k3r_node::host::prepare_host()?;
    running.children.push(k3r_node::containerd::launch(
        &executor,
        &node_paths,
        checks::which("containerd").unwrap_or_else(|| PathBuf::from("containerd")),
        layout.log("containerd"),
    )?);
    k3r_node::containerd::ready(&node_paths).await?;
    tracing::info!(
        seconds = started.elapsed().as_secs_f32(),
        "containerd ready, images imported"
    );

    // Not needed for the node to become Ready: import in the background.
    let (operators_layout, operators_paths) = (layout.clone(), node_paths.clone());
    tokio::spawn(async move {
        if let Err(err) = node::import_operators_image(&operators_layout, &operators_paths).await {
            tracing::error!(error = %err, "operators image");
        }
    });
    let kubelet = k3r_node::kubelet::Kubelet {
        node_name: config.node_name.clone(),
        node_ip: config.node_ip,
        cluster_dns: config.cluster_dns,
        cluster_domain: config.cluster_domain.clone(),
        client_ca: pki.client_ca.clone(),
        serving_cert: pki.cert("serving-kubelet"),
        serving_key: pki.key("serving-kubelet"),
        kubeconfig: layout.kubeconfig("kubelet"),
        config_file: layout.agent_etc().join("kubelet.conf"),
        labels: config.node_labels.clone(),
        taints: config.node_taints.clone(),
        extra_args: config.kubelet_args.clone(),
        shared_host: None,
    };
    k3r_node::kubelet::write_config(&kubelet, &node_paths)?;
    running.children.push(executor.start(spec(
        layout,
        config,
        "kubelet",
        k3r_node::kubelet::args(&kubelet, &node_paths),
    )));
    running.children.push(executor.start(spec(
        layout,
        config,
        "kube-proxy",
        k3r_node::kubelet::kube_proxy_args(
            &config.node_name,
            &config.cluster_cidr.to_string(),
            &layout.kubeconfig("kube-proxy"),
            &config.kube_proxy_args,
        ),
    )));

    let node_path = format!("/api/v1/nodes/{}", config.node_name);
    let pod_cidr = std::sync::Mutex::new(String::new());
    wait_until("node pod CIDR", Duration::from_secs(180), || async {
        if let Ok(Some(node)) = api.get_json(&node_path).await
            && let Some(cidr) = node["spec"]["podCIDR"].as_str()
        {
            *pod_cidr.lock().unwrap_or_else(|p| p.into_inner()) = cidr.to_string();
            return true;
        }
        false
    })
    .await?;
    let pod_cidr = pod_cidr.into_inner().unwrap_or_else(|p| p.into_inner());
    let network = start_network(config, layout, &pod_cidr).await?;
    k3r_node::cni::write(
        &node_paths,
        &pod_cidr,
        &config.cluster_cidr.to_string(),
        network.mtu,
    )?;
    running.network = Some(network);
    // A Ready condition from before a restart does not count (`ready`).
    let booted = std::time::SystemTime::now() - started.elapsed();
    let lease_path = format!(
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{}",
        config.node_name
    );
    wait_until("node Ready", Duration::from_secs(180), || async {
        let Ok(Some(node)) = api.get_json(&node_path).await else {
            return false;
        };
        let lease = api.get_json(&lease_path).await.ok().flatten();
        k3r_node::ready::ready_since(&node, lease.as_ref(), booted)
    })
    .await?;
    tracing::info!(node = %config.node_name, pod_cidr = %pod_cidr, seconds = started.elapsed().as_secs_f32(), "node Ready");
    Ok(())
}

/// The node network controller for the server's node.
async fn start_network(
    config: &ServerConfig,
    layout: &Layout,
    pod_cidr: &str,
) -> Result<k3r_network::NodeNetwork, Error> {
    let network_error = |e: k3r_network::Error| Error::Host(format!("node networking: {e}"));
    let client = k3r_network::node::client(&layout.kubeconfig("k3r-controller"))
        .await
        .map_err(network_error)?;
    k3r_network::node::start(
        client,
        k3r_network::NodeNetworkConfig {
            node_name: config.node_name.clone(),
            node_ip: config.node_ip,
            iface: config.flannel_iface.clone(),
            backend: config.flannel_backend,
            cluster_cidr: config.cluster_cidr,
            external_ip: config.node_external_ip,
        },
        pod_cidr,
    )
    .await
    .map_err(network_error)
}

pub(crate) async fn wait_until<F, Fut>(
    what: &str,
    timeout: Duration,
    mut check: F,
) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    k3r_node::wait::until(what, timeout, || {
        let done = check();
        async move { done.await.then_some(()) }
    })
    .await?;
    Ok(())
}
