//! The agent end of the tunnel: a websocket to each server, held open and
//! re-opened with backoff when the server goes away; each dial the server
//! sends becomes a local connection to the kubelet carried over a stream
//! websocket of its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use k3r_tunnel::tungstenite::Message;
use k3r_tunnel::{CONNECT_PATH, Dial, KUBELET_PORT, STREAM_PREFIX, WebSocketStream, client_async};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

type Ws = WebSocketStream<TlsStream<TcpStream>>;

const MAX_BACKOFF: Duration = Duration::from_secs(30);
const PING_EVERY: Duration = Duration::from_secs(15);
/// A server silent this long (no frame, no pong) is taken for gone.
const SILENCE: Duration = Duration::from_secs(45);

/// What the tunnel needs: the node's kubelet client identity and the CA
/// the servers' supervisor certificates chain to.
#[derive(Clone, Debug)]
pub struct TunnelConfig {
    pub server_ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TunnelConfig {
    pub fn for_agent(agent_dir: &Path) -> Self {
        TunnelConfig {
            server_ca: agent_dir.join("server-ca.crt"),
            client_cert: agent_dir.join("client-kubelet.crt"),
            client_key: agent_dir.join("client-kubelet.key"),
        }
    }
}

async fn open(server: &str, path: &str, tls: &TlsConnector) -> Result<Ws, String> {
    let host = server
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(server)
        .to_string();
    let name = ServerName::try_from(host).map_err(|e| format!("{server}: {e}"))?;
    let tcp = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(server))
        .await
        .map_err(|_| format!("{server}: connect timed out"))?
        .map_err(|e| format!("{server}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let stream = tls
        .connect(name, tcp)
        .await
        .map_err(|e| format!("{server}: TLS: {e}"))?;
    let (ws, _) = client_async(format!("wss://{server}{path}"), stream)
        .await
        .map_err(|e| format!("{server}{path}: {e}"))?;
    Ok(ws)
}

/// Keeps a tunnel to `server` (host:port) open until the task is aborted.
pub async fn keep_open(server: String, config: TunnelConfig) {
    let tls = match k3r_tunnel::tls::client_config(
        &config.server_ca,
        &config.client_cert,
        &config.client_key,
    ) {
        Ok(c) => TlsConnector::from(Arc::new(c)),
        Err(err) => {
            tracing::error!(error = %err, "agent tunnel cannot start");
            return;
        }
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        match open(&server, CONNECT_PATH, &tls).await {
            Ok(ws) => {
                tracing::info!(%server, "tunnel connected");
                backoff = Duration::from_secs(1);
                serve(ws, &server, &tls).await;
                tracing::warn!(%server, "tunnel lost; reconnecting");
            }
            Err(err) => {
                tracing::warn!(%server, error = %err, retry_in = ?backoff, "tunnel not connected")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn serve(ws: Ws, server: &str, tls: &TlsConnector) {
    let (mut out, mut incoming) = ws.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            message = tokio::time::timeout(SILENCE, incoming.next()) => match message {
                Ok(Some(Ok(Message::Text(text)))) => match Dial::parse(&text) {
                    Some(dial) if dial.port == KUBELET_PORT => {
                        let (server, tls) = (server.to_string(), tls.clone());
                        tokio::spawn(async move { stream(dial, &server, &tls).await });
                    }
                    _ => tracing::warn!(message = %text, "tunnel: ignoring an unexpected request"),
                },
                Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) | Err(_) => return,
                Ok(Some(Ok(_))) => {}
            },
            _ = ping.tick() => {
                if out.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One dial: the local kubelet, carried over a stream websocket.
async fn stream(dial: Dial, server: &str, tls: &TlsConnector) {
    let local = match TcpStream::connect(("127.0.0.1", dial.port)).await {
        Ok(local) => {
            let _ = local.set_nodelay(true);
            local
        }
        Err(err) => {
            tracing::warn!(port = dial.port, error = %err, "tunnel: local dial failed");
            return;
        }
    };
    match open(server, &format!("{STREAM_PREFIX}{}", dial.id), tls).await {
        Ok(ws) => k3r_tunnel::pipe(ws, local).await,
        Err(err) => tracing::warn!(error = %err, "tunnel: stream not opened"),
    }
}
