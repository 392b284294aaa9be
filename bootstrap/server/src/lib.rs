//! The k3r server role: brings up a complete single-node cluster and keeps
//! it running until told to stop. [`boot`] runs the phases in order: files
//! (PKI, token, packaged manifests), datastore, k3r's routes of the
//! supervisor listener, kube-apiserver (which serves that listener), cluster
//! objects (CRDs, the operators), the admin kubeconfig, the
//! controllers, and the server's own node — started through k3r-node's
//! node start, the path every agent takes.

mod addons;
mod api;
mod args;
mod checks;
pub mod cleanup;
pub mod config;
mod crds;
pub mod join;
pub mod layout;
mod metrics;
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
use k3r_node::shared_process::{self, Component, Process};
use k3r_node::{Node, NodeSpec, Shutdown, record};

/// How often the embedded datastore tells each of kube-apiserver's watches
/// (about 60) how far it is complete while nothing changes. kube-apiserver
/// asks for progress itself when a read must be fresh (a consistent list
/// from its watch cache), so the periodic answer only keeps quiet
/// resources' bookmarks recent, well inside the 5 minutes of history that
/// compaction keeps. kine's 5 s woke an idle kube-apiserver about 12 times
/// a second for nothing (docs/benchmarks.md); etcd's default is 10 minutes.
pub const WATCH_PROGRESS_NOTIFY_INTERVAL: Duration = Duration::from_secs(60);

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
    datastore: Option<Datastore>,
    control_plane: Vec<Supervised>,
    node: Node,
    stop_listener: watch::Sender<bool>,
}

impl Running {
    /// The node first (its pods, whose graceful stop would otherwise wait
    /// on watches the control plane holds open), then the control plane,
    /// then the datastore.
    async fn stop(mut self, how: Shutdown) {
        let _ = self.stop_listener.send(true);
        self.node.stop(how).await;
        while let Some(child) = self.control_plane.pop() {
            tracing::info!(component = %child.name, "stopping");
            child.stop().await;
        }
        if let Some(datastore) = self.datastore.take() {
            datastore.stop().await;
        }
    }
}

fn spec(layout: &Layout, process: Process) -> ProcessSpec {
    process.spec(&layout.programs.kube(), layout.server(), &layout.logs())
}

/// Runs the server until `shutdown` says how to stop, then stops every
/// component (keeping the node's pods on a [`Shutdown::Switch`]); returns
/// how it stopped.
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = Shutdown>,
) -> Result<Shutdown, Error> {
    checks::preflight(&config)?;
    let started = Instant::now();
    let programs = config
        .runtime
        .install(&config.data_dir)?
        .preferring_bundled(config.prefer_bundled_bin);
    let layout = Layout::new(&config.data_dir, programs);
    let (stop_listener, stop_rx) = watch::channel(false);
    let mut running = Running {
        datastore: None,
        control_plane: Vec::new(),
        node: Node::default(),
        stop_listener,
    };
    let mut record = record::this_process(
        "server",
        &config.node_name,
        &layout.programs.kube(),
        &config.data_dir,
    );
    record::publish(&record);
    let mut shutdown = std::pin::pin!(shutdown);
    let result = tokio::select! {
        result = boot(&config, &layout, &mut running, stop_rx, started) => result,
        how = &mut shutdown => {
            tracing::info!(?how, "stop requested during startup");
            running.stop(how).await;
            record.forget(how);
            return Ok(how);
        }
    };
    let how = match result {
        Ok(()) => {
            k3r_node::programs::clean_up_after_start(&config.data_dir);
            record.ready_until(shutdown).await
        }
        Err(ref err) => {
            tracing::error!(error = %err, "startup failed; stopping what was started");
            Shutdown::Stop
        }
    };
    running.stop(how).await;
    record.forget(how);
    result.map(|()| how)
}

async fn boot(
    config: &ServerConfig,
    layout: &Layout,
    running: &mut Running,
    stop_rx: watch::Receiver<bool>,
    started: Instant,
) -> Result<(), Error> {
    let (pki, token) = prepare_files(config, layout)?;
    let etcd_servers = start_datastore(config, layout, running).await?;
    let local_api = format!("https://127.0.0.1:{}", config.apiserver_port());
    write_component_kubeconfigs(layout, &pki, &local_api)?;
    let api = api::ApiClient::new(
        &local_api,
        &pki.server_ca,
        &pki.cert("client-supervisor"),
        &pki.key("client-supervisor"),
    )?;
    let tunnels = tunnel::Tunnels::new(api.clone());
    let own_metrics = config
        .supervisor_metrics
        .then(|| own_metrics(running))
        .flatten();
    let front = serve_own_routes(
        config,
        layout,
        &pki,
        &token,
        &api,
        std::sync::Arc::clone(&tunnels),
        own_metrics,
        stop_rx.clone(),
    )
    .await?;
    let controllers_alone = start_apiserver(
        config,
        layout,
        running,
        &pki,
        &etcd_servers,
        &api,
        &tunnels,
        front,
        stop_rx.clone(),
        started,
    )
    .await?;
    install_cluster_objects(config, layout, &api).await?;
    write_admin_kubeconfig(config, &pki)?;
    start_controllers(layout, running, controllers_alone);
    let pod_cidr = running
        .node
        .start(&node_spec(config, layout, &pki), &ChildExecutor, started)
        .await?;
    tracing::info!(node = %config.node_name, pod_cidr = %pod_cidr, seconds = started.elapsed().as_secs_f32(), "node Ready");
    label_server_node(&api, &config.node_name).await;
    Ok(())
}

/// The roles k3s gives a server's node (a kubelet may not set
/// `node-role.kubernetes.io/*` labels itself), so that selectors written
/// for k3s — SUC's server and agent Plans among them — select the same
/// nodes.
async fn label_server_node(api: &api::ApiClient, node: &str) {
    let labels = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node, "labels": {
            "node-role.kubernetes.io/control-plane": "true",
            "node-role.kubernetes.io/master": "true",
        }},
    });
    if let Err(err) = api.apply(&labels).await {
        tracing::warn!(error = %err, node, "cannot label the server's node with its roles");
    }
}

/// Directories, PKI, the token and the packaged manifests.
fn prepare_files(config: &ServerConfig, layout: &Layout) -> Result<(Pki, k3r_pki::Token), Error> {
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
    Ok((pki, token))
}

/// The embedded datastore (unless an etcd cluster is given); returns what
/// kube-apiserver's --etcd-servers gets.
async fn start_datastore(
    config: &ServerConfig,
    layout: &Layout,
    running: &mut Running,
) -> Result<String, Error> {
    let endpoint = Endpoint::parse(&config.datastore_endpoint, layout.db().join("state.db"))?;
    if let Endpoint::Etcd(urls) = &endpoint {
        return Ok(urls.join(","));
    }
    let datastore = Datastore::start(DatastoreConfig {
        endpoint,
        listen: vec![Listen::Unix(layout.server().join("kine.sock"))],
        tls: None,
        metrics_listen: None,
        store: StoreConfig::default(),
        progress_notify_interval: WATCH_PROGRESS_NOTIFY_INTERVAL,
    })
    .await?;
    tracing::info!(backend = datastore.store.kind(), "datastore ready");
    running.datastore = Some(datastore);
    // Relative, like k3s: kube-apiserver runs in the server dir, and a
    // relative socket path is a valid gRPC authority.
    Ok("unix://kine.sock".to_string())
}

fn write_component_kubeconfigs(layout: &Layout, pki: &Pki, local_api: &str) -> Result<(), Error> {
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
            local_api,
            &pki.server_ca,
            &pki.cert(cert),
            &pki.key(cert),
            0o600,
        )?;
    }
    Ok(())
}

/// The egress socket kube-apiserver reaches nodes through, then
/// kube-apiserver itself; the server then guards its node name. Returns
/// the controllers that cannot share kube-apiserver's process, for
/// `start_controllers`.
#[allow(clippy::too_many_arguments)]
async fn start_apiserver(
    config: &ServerConfig,
    layout: &Layout,
    running: &mut Running,
    pki: &Pki,
    etcd_servers: &str,
    api: &api::ApiClient,
    tunnels: &std::sync::Arc<tunnel::Tunnels>,
    front: Vec<String>,
    stop_rx: watch::Receiver<bool>,
    started: Instant,
) -> Result<Vec<Process>, Error> {
    let egress_socket = layout.server().join("egress.sock");
    let selector = layout.server().join("egress-selector.yaml");
    std::fs::write(&selector, tunnel::egress::selector_config(&egress_socket))
        .map_err(|e| Error::Io(selector.clone(), e))?;
    tunnel::egress::serve(egress_socket, std::sync::Arc::clone(tunnels), stop_rx).await?;
    // kube-controller-manager and kube-scheduler run in kube-apiserver's
    // process (they start there once it is ready), unless their flags
    // keep them apart.
    let (control_plane, alone) = shared_process::group(
        Component {
            args: args::apiserver(config, layout, pki, etcd_servers),
            user_args: config.kube_apiserver_args.clone(),
        },
        vec![
            Component {
                args: args::controller_manager(config, layout, pki),
                user_args: config.kube_controller_manager_args.clone(),
            },
            Component {
                args: args::scheduler(config, layout),
                user_args: config.kube_scheduler_args.clone(),
            },
        ],
    );
    // kube-apiserver's process serves the supervisor listener too.
    let control_plane = control_plane.with_group(front);
    running
        .control_plane
        .push(ChildExecutor.start(spec(layout, control_plane)));
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
    if !join::nodepass::check(api, &config.node_name, &own_password).await? {
        tracing::warn!(node = %config.node_name, "this node's name is guarded by another password (data dir replaced?)");
    }
    Ok(alone)
}

/// k3r's CRDs and the operators that reconcile them.
async fn install_cluster_objects(
    config: &ServerConfig,
    layout: &Layout,
    api: &api::ApiClient,
) -> Result<(), Error> {
    let crds = crds::install(api).await?;
    tracing::info!(crds = ?crds, "CRDs installed");
    operators::apply(api, config, layout).await?;
    tracing::info!("k3r operators applied");
    Ok(())
}

/// What `--supervisor-metrics` adds to kube-apiserver's /metrics: the
/// embedded datastore's (an external etcd serves its own).
fn own_metrics(running: &Running) -> Option<metrics::OwnMetrics> {
    let store = running.datastore.as_ref()?.store.clone();
    Some(std::sync::Arc::new(move || {
        k3r_datastore::metrics_text(&store)
    }))
}

/// k3r's own routes of the :6443 listener, on a unix socket; returns the
/// `k3r-front` group that makes kube-apiserver's process serve :6443 and
/// forward those routes here.
#[allow(clippy::too_many_arguments)]
async fn serve_own_routes(
    config: &ServerConfig,
    layout: &Layout,
    pki: &Pki,
    token: &k3r_pki::Token,
    api: &api::ApiClient,
    tunnels: std::sync::Arc<tunnel::Tunnels>,
    own_metrics: Option<metrics::OwnMetrics>,
    stop_rx: watch::Receiver<bool>,
) -> Result<Vec<String>, Error> {
    // Preflight has checked that the port is free (one clear error).
    let proxy_config = proxy::ProxyConfig {
        listen: SocketAddr::new(config.bind_address, config.https_listen_port),
        socket: layout.server().join("supervisor.sock"),
        backend: format!("https://127.0.0.1:{}", config.apiserver_port()),
        server_ca: pki.server_ca.clone(),
        proxy_cert: pki.cert("client-auth-proxy"),
        proxy_key: pki.key("client-auth-proxy"),
        join: std::sync::Arc::new(join::JoinService::new(
            config,
            pki,
            token.password.clone(),
            api.clone(),
        )?),
        tunnels,
        own_metrics,
    };
    let front = proxy_config.front_args(
        &pki.cert("serving-supervisor"),
        &pki.key("serving-supervisor"),
        &pki.client_ca,
    );
    drop(proxy::serve(proxy_config, stop_rx).await?);
    Ok(front)
}

/// The admin kubeconfig, pointing at the :6443 listener.
fn write_admin_kubeconfig(config: &ServerConfig, pki: &Pki) -> Result<(), Error> {
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
    Ok(())
}

/// The controllers that could not share kube-apiserver's process.
fn start_controllers(layout: &Layout, running: &mut Running, alone: Vec<Process>) {
    for process in alone {
        running
            .control_plane
            .push(ChildExecutor.start(spec(layout, process)));
    }
}

/// The server's own node, as an agent's would be described.
fn node_spec(config: &ServerConfig, layout: &Layout, pki: &Pki) -> NodeSpec {
    let paths = cleanup::server_node(&config.data_dir).with_programs(&layout.programs);
    NodeSpec {
        data_dir: config.data_dir.clone(),
        kubelet: k3r_node::kubelet::Kubelet {
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
        },
        paths,
        cgroup_root: "/".into(),
        programs: layout.programs.clone(),
        registries: config.registries.clone(),
        logs: layout.logs(),
        kube_proxy_kubeconfig: layout.kubeconfig("kube-proxy"),
        kube_proxy_args: config.kube_proxy_args.clone(),
        controller_kubeconfig: layout.kubeconfig("k3r-controller"),
        network: k3r_network::NodeNetworkConfig {
            node_name: config.node_name.clone(),
            node_ip: config.node_ip,
            iface: config.flannel_iface.clone(),
            backend: config.flannel_backend,
            cluster_cidr: config.cluster_cidr,
            external_ip: config.node_external_ip,
        },
    }
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
