//! Serving the etcd API: opens the backend named by the endpoint and serves
//! the gRPC services on a unix socket and/or TCP, plus Prometheus metrics.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k3r_etcd_proto::etcdserverpb::auth_server::AuthServer;
use k3r_etcd_proto::etcdserverpb::cluster_server::ClusterServer;
use k3r_etcd_proto::etcdserverpb::kv_server::KvServer;
use k3r_etcd_proto::etcdserverpb::lease_server::LeaseServer;
use k3r_etcd_proto::etcdserverpb::maintenance_server::MaintenanceServer;
use k3r_etcd_proto::etcdserverpb::watch_server::WatchServer;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};

use crate::backend::{self, Backend, Endpoint};
use crate::error::{Error, Result};
use crate::service::{
    AuthService, ClusterService, KvService, LeaseService, MaintenanceService, WatchService,
};
use crate::store::{Store, StoreConfig};

/// Where to accept etcd clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl Listen {
    /// Parses `unix:///path`, `unix://relative`, `host:port` or `http://host:port`.
    pub fn parse(s: &str) -> Result<Self> {
        if let Some(path) = s.strip_prefix("unix://") {
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        let addr = s.strip_prefix("http://").unwrap_or(s);
        addr.parse::<SocketAddr>()
            .map(Listen::Tcp)
            .map_err(|e| Error::InvalidEndpoint {
                endpoint: s.to_string(),
                reason: format!("listen address must be unix://PATH or IP:PORT ({e})"),
            })
    }

    /// The client URL etcd clients use (MemberList reports it), with the
    /// scheme telling them whether to speak TLS.
    pub fn url(&self, tls: bool) -> String {
        match self {
            Listen::Unix(path) => format!("unix://{}", path.display()),
            Listen::Tcp(addr) if tls => format!("https://{addr}"),
            Listen::Tcp(addr) => format!("http://{addr}"),
        }
    }
}

/// Server certificate and the CA that client certificates must chain to;
/// applies to TCP listeners (unix sockets rely on file permissions).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

#[derive(Clone, Debug)]
pub struct DatastoreConfig {
    pub endpoint: Endpoint,
    pub listen: Vec<Listen>,
    /// mTLS for TCP listeners.
    pub tls: Option<TlsFiles>,
    pub metrics_listen: Option<SocketAddr>,
    pub store: StoreConfig,
    pub progress_notify_interval: Duration,
}

/// A running datastore.
pub struct Datastore {
    pub store: Store,
    bound: Vec<Listen>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub fn open_backend(endpoint: &Endpoint) -> Result<Arc<dyn Backend>> {
    Ok(match endpoint {
        Endpoint::Sqlite(path) => Arc::new(backend::sqlite_backend(path)),
        Endpoint::Postgres(dsn) => Arc::new(backend::postgres_backend(dsn)?),
        Endpoint::Mysql(dsn) => Arc::new(backend::mysql_backend(dsn)?),
        Endpoint::Etcd(_) => {
            return Err(Error::InvalidEndpoint {
                endpoint: format!("{endpoint:?}"),
                reason: "an etcd endpoint is used directly by kube-apiserver, not served by k3r"
                    .into(),
            });
        }
    })
}

impl Datastore {
    /// Opens the store and starts serving. Fails with a clear error when a
    /// listen address is taken.
    pub async fn start(config: DatastoreConfig) -> Result<Self> {
        let backend = open_backend(&config.endpoint)?;
        let store = Store::open(backend, config.store.clone()).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        // Bind everything first: a taken address fails before anything
        // serves, and MemberList reports the real ports (port 0 resolved).
        let mut listeners = Vec::new();
        let mut bound = Vec::new();
        for listen in &config.listen {
            match listen {
                Listen::Unix(path) => {
                    listeners.push(Bound::Unix(bind_unix(path)?));
                    bound.push(listen.clone());
                }
                Listen::Tcp(addr) => {
                    let listener = TcpListener::bind(addr).await.map_err(|e| {
                        Error::Io(std::io::Error::new(
                            e.kind(),
                            format!("cannot listen on {addr}: {e}"),
                        ))
                    })?;
                    bound.push(Listen::Tcp(listener.local_addr()?));
                    listeners.push(Bound::Tcp(listener));
                }
            }
        }
        let urls: Vec<String> = bound.iter().map(|l| l.url(config.tls.is_some())).collect();
        let tls = match &config.tls {
            Some(files) => {
                let read = |p: &Path| {
                    std::fs::read(p).map_err(|e| {
                        Error::Io(std::io::Error::new(
                            e.kind(),
                            format!("{}: {e}", p.display()),
                        ))
                    })
                };
                Some(
                    tonic::transport::ServerTlsConfig::new()
                        .identity(tonic::transport::Identity::from_pem(
                            read(&files.cert)?,
                            read(&files.key)?,
                        ))
                        .client_ca_root(tonic::transport::Certificate::from_pem(read(
                            &files.client_ca,
                        )?)),
                )
            }
            None => None,
        };
        for (listener, listen) in listeners.into_iter().zip(&bound) {
            let mut builder = tonic::transport::Server::builder();
            if let (Some(tls), Bound::Tcp(_)) = (&tls, &listener) {
                builder = builder.tls_config(tls.clone()).map_err(|e| {
                    Error::InvalidRequest(format!("datastore TLS configuration: {e}"))
                })?;
            }
            let router = builder
                .add_service(
                    KvServer::new(KvService::new(store.clone()))
                        .max_decoding_message_size(usize::MAX),
                )
                .add_service(WatchServer::new(WatchService::new(
                    store.clone(),
                    config.progress_notify_interval,
                )))
                .add_service(LeaseServer::new(LeaseService::new(store.clone())))
                .add_service(MaintenanceServer::new(MaintenanceService::new(
                    store.clone(),
                )))
                .add_service(ClusterServer::new(ClusterService::new(
                    store.clone(),
                    urls.clone(),
                )))
                .add_service(AuthServer::new(AuthService));
            let mut stop = shutdown_rx.clone();
            let signal = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let task = match listener {
                Bound::Unix(listener) => tokio::spawn(async move {
                    if let Err(e) = router
                        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), signal)
                        .await
                    {
                        tracing::error!(error = %e, "datastore unix listener failed");
                    }
                }),
                Bound::Tcp(listener) => {
                    // Small responses must not wait for delayed ACKs (Nagle):
                    // tonic only sets TCP_NODELAY on sockets it binds itself.
                    let incoming = TcpListenerStream::new(listener).map(|stream| {
                        stream.inspect(|s| {
                            let _ = s.set_nodelay(true);
                        })
                    });
                    tokio::spawn(async move {
                        if let Err(e) = router.serve_with_incoming_shutdown(incoming, signal).await
                        {
                            tracing::error!(error = %e, "datastore tcp listener failed");
                        }
                    })
                }
            };
            tracing::info!(listen = %listen.url(tls.is_some()), "datastore serving etcd API");
            tasks.push(task);
        }
        if let Some(addr) = config.metrics_listen {
            tasks.push(serve_metrics(addr, store.clone(), shutdown_rx.clone()).await?);
        }
        Ok(Self {
            store,
            bound,
            shutdown,
            tasks,
        })
    }

    /// The addresses actually listened on (port 0 resolved).
    pub fn listening(&self) -> &[Listen] {
        &self.bound
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for mut task in self.tasks {
            // Open watch streams keep a graceful shutdown waiting forever.
            if tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        for listen in &self.bound {
            if let Listen::Unix(path) = listen {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

enum Bound {
    Unix(UnixListener),
    Tcp(TcpListener),
}

fn bind_unix(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // A stale socket from a previous run blocks bind; a live one means
    // another datastore owns it.
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use by another process", path.display()),
            )));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path).map_err(|e| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("cannot listen on {}: {e}", path.display()),
        ))
    })?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// The store's metrics in the Prometheus text format (OpenMetrics
/// flavoured, as prometheus-client writes it, `# EOF` last).
pub fn metrics_text(store: &Store) -> Option<String> {
    let mut registry = Registry::default();
    store.metrics().register(&mut registry);
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &registry).ok()?;
    Some(body)
}

async fn serve_metrics(
    addr: SocketAddr,
    store: Store,
    mut shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr}: {e}"),
        ))
    })?;
    Ok(tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.changed() => break,
            };
            let Ok((mut socket, _)) = accepted else {
                continue;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 1024];
                let _ = socket.read(&mut request).await;
                let Some(body) = metrics_text(&store) else {
                    return;
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    }))
}
