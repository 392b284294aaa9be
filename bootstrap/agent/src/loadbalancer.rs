//! The agent's client-side load balancer (k3s's, on 127.0.0.1:6444 by
//! default): kubelet and kube-proxy talk to it, it forwards each TCP
//! connection to a server's supervisor. It sticks to the server that last
//! worked and moves to the next one when a dial fails, so a server going
//! away costs one failed dial, not an outage. The server list starts with
//! `--server` and is replaced by what `/v1-k3r/apiservers` reports.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

struct Shared {
    servers: RwLock<Vec<String>>,
    /// Index of the server that answered last.
    current: AtomicUsize,
    /// Set while no server answers: the outage is logged once, not per
    /// connection.
    down: AtomicBool,
}

pub struct LoadBalancer {
    shared: Arc<Shared>,
    local: SocketAddr,
    task: JoinHandle<()>,
}

impl LoadBalancer {
    /// Listens on `listen` and forwards to `servers` (host:port each).
    pub async fn start(listen: SocketAddr, servers: Vec<String>) -> std::io::Result<LoadBalancer> {
        let listener = TcpListener::bind(listen).await?;
        let local = listener.local_addr()?;
        let shared = Arc::new(Shared {
            servers: RwLock::new(servers),
            current: AtomicUsize::new(0),
            down: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            loop {
                let (client, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "load balancer accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Both halves carry small requests that must not wait on Nagle.
                let _ = client.set_nodelay(true);
                let shared = Arc::clone(&accepting);
                tokio::spawn(async move {
                    if let Some(mut server) = dial(&shared).await {
                        let mut client = client;
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    } else {
                        if !shared.down.swap(true, Ordering::Relaxed) {
                            tracing::warn!(%peer, "no server reachable; dropping connections until one answers");
                        }
                    }
                });
            }
        });
        Ok(LoadBalancer {
            shared,
            local,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A handle that updates the server list from elsewhere.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Replaces the server list, staying on the current server if it is
    /// still listed.
    pub fn set_servers(&self, servers: Vec<String>) {
        self.handle().set_servers(servers);
    }

    pub fn servers(&self) -> Vec<String> {
        self.shared
            .servers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Updates a running load balancer's server list.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// Replaces the server list, staying on the current server if it is
    /// still listed.
    pub fn set_servers(&self, mut servers: Vec<String>) {
        servers.dedup();
        let mut list = self
            .shared
            .servers
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let current = list
            .get(self.shared.current.load(Ordering::Relaxed))
            .cloned();
        let index = current
            .and_then(|c| servers.iter().position(|s| *s == c))
            .unwrap_or(0);
        if *list != servers {
            tracing::info!(?servers, "load balancer servers updated");
        }
        *list = servers;
        self.shared.current.store(index, Ordering::Relaxed);
    }
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The first server that accepts, starting with the current one.
async fn dial(shared: &Shared) -> Option<TcpStream> {
    let servers = shared
        .servers
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let start = shared.current.load(Ordering::Relaxed);
    for offset in 0..servers.len() {
        let index = (start + offset) % servers.len();
        let server = &servers[index];
        match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(server)).await {
            Ok(Ok(stream)) => {
                if index != start {
                    tracing::info!(%server, "load balancer switched server");
                }
                shared.current.store(index, Ordering::Relaxed);
                if shared.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(%server, "a server answers again");
                }
                let _ = stream.set_nodelay(true);
                return Some(stream);
            }
            Ok(Err(e)) => tracing::debug!(%server, error = %e, "dial failed"),
            Err(_) => tracing::debug!(%server, "dial timed out"),
        }
    }
    None
}
