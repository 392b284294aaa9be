//! The server end of the agent tunnel: agents' websockets, registered by
//! their Node's addresses, and dialling a node's kubelet through them.
//! kube-apiserver reaches kubelets through `egress` (its egress selector),
//! which uses a tunnel when the node has one and dials directly otherwise.

pub mod egress;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use k3r_tunnel::tungstenite::Message;
use k3r_tunnel::tungstenite::handshake::derive_accept_key;
use k3r_tunnel::tungstenite::protocol::Role;
use k3r_tunnel::{CONNECT_PATH, Dial, STREAM_PREFIX, WebSocketStream};
use tokio::sync::{mpsc, oneshot};

use crate::api::ApiClient;
use crate::tls::Certified;

pub type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// How long a dial waits for the agent's stream.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Pings on idle control channels find dead agents.
const PING_EVERY: Duration = Duration::from_secs(15);

struct Session {
    node: String,
    id: u64,
    dial: mpsc::UnboundedSender<Dial>,
}

pub struct Tunnels {
    api: ApiClient,
    by_ip: Mutex<HashMap<IpAddr, Arc<Session>>>,
    pending: Mutex<HashMap<u64, (String, oneshot::Sender<Ws>)>>,
    next: AtomicU64,
}

/// A refused upgrade: status and a one-line reason.
pub type Refusal = (StatusCode, String);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The node a kubelet client certificate belongs to.
fn node_of(identity: Option<&Certified>) -> Result<String, Refusal> {
    identity
        .filter(|c| c.groups.iter().any(|g| g == "system:nodes"))
        .and_then(|c| c.user.strip_prefix("system:node:"))
        .map(String::from)
        .ok_or((
            StatusCode::UNAUTHORIZED,
            "the tunnel needs the node's kubelet client certificate".into(),
        ))
}

impl Tunnels {
    pub fn new(api: ApiClient) -> Arc<Self> {
        Arc::new(Tunnels {
            api,
            by_ip: Mutex::default(),
            pending: Mutex::default(),
            next: AtomicU64::new(1),
        })
    }

    pub fn handles(path: &str) -> bool {
        path == CONNECT_PATH || path.starts_with(STREAM_PREFIX)
    }

    /// What `handles` answers: exact paths, then prefixes.
    pub fn paths() -> (Vec<&'static str>, Vec<&'static str>) {
        (vec![CONNECT_PATH], vec![STREAM_PREFIX])
    }

    /// Accepts an agent's websocket upgrade; returns the
    /// Sec-WebSocket-Accept value for the 101 answer.
    pub async fn accept(
        self: &Arc<Self>,
        mut req: Request<Incoming>,
        identity: Option<&Certified>,
    ) -> Result<String, Refusal> {
        let node = node_of(identity)?;
        let key = req
            .headers()
            .get("sec-websocket-key")
            .map(|k| derive_accept_key(k.as_bytes()))
            .ok_or((StatusCode::BAD_REQUEST, "not a websocket upgrade".into()))?;
        let path = req.uri().path().to_string();
        let on_upgrade = hyper::upgrade::on(&mut req);
        let upgraded = async move {
            let upgraded = on_upgrade.await.ok()?;
            Some(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await)
        };
        if path == CONNECT_PATH {
            let ips = self.node_addresses(&node).await?;
            let tunnels = Arc::clone(self);
            tokio::spawn(async move {
                if let Some(ws) = upgraded.await {
                    tunnels.control(node, ips, ws).await;
                }
            });
        } else {
            let id: u64 = path
                .strip_prefix(STREAM_PREFIX)
                .and_then(|id| id.parse().ok())
                .ok_or((StatusCode::NOT_FOUND, "no such tunnel stream".into()))?;
            let waiting = {
                let mut pending = lock(&self.pending);
                match pending.get(&id) {
                    Some((owner, _)) if *owner == node => pending.remove(&id),
                    _ => None,
                }
            };
            let (_, sender) = waiting.ok_or((
                StatusCode::NOT_FOUND,
                format!("no dial {id} for node {node}"),
            ))?;
            tokio::spawn(async move {
                if let Some(ws) = upgraded.await {
                    let _ = sender.send(ws);
                }
            });
        }
        Ok(key)
    }

    async fn node_addresses(&self, node: &str) -> Result<Vec<IpAddr>, Refusal> {
        let found = self
            .api
            .get_json(&format!("/api/v1/nodes/{node}"))
            .await
            .ok()
            .flatten();
        let ips: Vec<IpAddr> = found
            .as_ref()
            .and_then(|n| n["status"]["addresses"].as_array())
            .map(|addresses| {
                addresses
                    .iter()
                    .filter_map(|a| a["address"].as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if ips.is_empty() {
            return Err((
                StatusCode::CONFLICT,
                format!("node {node} has no addresses yet; retry once it is registered"),
            ));
        }
        Ok(ips)
    }

    /// Runs one agent's control channel until it closes.
    async fn control(&self, node: String, ips: Vec<IpAddr>, ws: Ws) {
        let (dial, mut dials) = mpsc::unbounded_channel();
        let session = Arc::new(Session {
            node: node.clone(),
            id: self.next.fetch_add(1, Ordering::Relaxed),
            dial,
        });
        {
            let mut by_ip = lock(&self.by_ip);
            for ip in &ips {
                by_ip.insert(*ip, Arc::clone(&session));
            }
        }
        tracing::info!(%node, ?ips, "agent tunnel connected");
        let (mut out, mut incoming) = ws.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        loop {
            tokio::select! {
                Some(request) = dials.recv() => {
                    if out.send(Message::Text(request.encode().into())).await.is_err() {
                        break;
                    }
                }
                message = incoming.next() => match message {
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                _ = ping.tick() => {
                    if out.send(Message::Ping(Vec::new().into())).await.is_err() {
                        break;
                    }
                }
            }
        }
        lock(&self.by_ip).retain(|_, s| s.id != session.id);
        tracing::info!(%node, "agent tunnel closed");
    }

    /// Whether `ip` is a node with a tunnel here.
    pub fn has(&self, ip: IpAddr) -> bool {
        lock(&self.by_ip).contains_key(&ip)
    }

    /// Opens a connection to `port` on the node at `ip` through its tunnel.
    pub async fn dial(&self, ip: IpAddr, port: u16) -> Result<Ws, String> {
        let session = lock(&self.by_ip)
            .get(&ip)
            .cloned()
            .ok_or_else(|| format!("no tunnel to {ip}"))?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        lock(&self.pending).insert(id, (session.node.clone(), sender));
        if session.dial.send(Dial { id, port }).is_err() {
            lock(&self.pending).remove(&id);
            return Err(format!("the tunnel to node {} closed", session.node));
        }
        match tokio::time::timeout(DIAL_TIMEOUT, receiver).await {
            Ok(Ok(ws)) => Ok(ws),
            _ => {
                lock(&self.pending).remove(&id);
                Err(format!(
                    "node {} did not open its tunnel stream within {DIAL_TIMEOUT:?}",
                    session.node
                ))
            }
        }
    }
}
