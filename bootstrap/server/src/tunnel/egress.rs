//! kube-apiserver's egress selector for the "cluster" egress (traffic to
//! nodes, pods and services): HTTP CONNECT over a unix socket, answered
//! here — through an agent's tunnel for its kubelet port, by dialling
//! directly for everything else.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::watch;

use super::Tunnels;
use crate::Error;

const MAX_HEAD: usize = 8 * 1024;
const DIRECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The EgressSelectorConfiguration pointing "cluster" at `socket`.
pub fn selector_config(socket: &Path) -> String {
    format!(
        "apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: {}
",
        socket.display()
    )
}

/// The CONNECT target (host:port) of a request head.
pub fn connect_target(head: &str) -> Option<(String, u16)> {
    let line = head.lines().next()?;
    let mut words = line.split_whitespace();
    if words.next()? != "CONNECT" {
        return None;
    }
    let target = words.next()?;
    let (host, port) = target.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

/// Serves CONNECT requests on `socket` until `stop`.
pub async fn serve(
    socket: PathBuf,
    tunnels: Arc<Tunnels>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(|e| Error::Io(socket.clone(), e))?;
    // It dials anywhere: only root (kube-apiserver) may use it.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::Io(socket.clone(), e))?;
    }
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => { tracing::warn!(error = %e, "egress accept failed"); continue; }
                },
                _ = stop.wait_for(|s| *s) => break,
            };
            let tunnels = Arc::clone(&tunnels);
            tokio::spawn(async move {
                if let Err(reason) = connect(stream, &tunnels).await {
                    tracing::debug!(%reason, "egress connection failed");
                }
            });
        }
    });
    Ok(())
}

async fn connect(mut client: UnixStream, tunnels: &Tunnels) -> Result<(), String> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    let end = loop {
        let n = client.read(&mut buffer).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before the request".into());
        }
        head.extend_from_slice(&buffer[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if head.len() > MAX_HEAD {
            return Err("request head too large".into());
        }
    };
    let early = head.split_off(end);
    let Some((host, port)) = connect_target(&String::from_utf8_lossy(&head)) else {
        let _ = client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            .await;
        return Err("not a CONNECT request".into());
    };
    let tunnelled = host
        .parse::<IpAddr>()
        .ok()
        .filter(|ip| port == k3r_tunnel::KUBELET_PORT && tunnels.has(*ip));
    if let Some(ip) = tunnelled {
        let ws = match tunnels.dial(ip, port).await {
            Ok(ws) => ws,
            Err(reason) => {
                let _ = client
                    .write_all(format!("HTTP/1.1 502 Bad Gateway\r\n\r\n{reason}").as_bytes())
                    .await;
                return Err(reason);
            }
        };
        established(&mut client, &early).await?;
        k3r_tunnel::pipe(ws, client).await;
        return Ok(());
    }
    let target = format!("{host}:{port}");
    let direct = tokio::time::timeout(DIRECT_TIMEOUT, TcpStream::connect(&target)).await;
    let mut server = match direct {
        Ok(Ok(server)) => {
            let _ = server.set_nodelay(true);
            server
        }
        Ok(Err(e)) => {
            let _ = client
                .write_all(format!("HTTP/1.1 502 Bad Gateway\r\n\r\n{target}: {e}").as_bytes())
                .await;
            return Err(e.to_string());
        }
        Err(_) => {
            let _ = client
                .write_all(b"HTTP/1.1 504 Gateway Timeout\r\n\r\n")
                .await;
            return Err(format!("{target}: timed out"));
        }
    };
    if !early.is_empty() {
        server.write_all(&early).await.map_err(|e| e.to_string())?;
    }
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    Ok(())
}

async fn established(client: &mut UnixStream, early: &[u8]) -> Result<(), String> {
    if !early.is_empty() {
        // kube-apiserver waits for the answer before speaking TLS.
        return Err("data sent before the CONNECT answer".into());
    }
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_targets_parse() {
        assert_eq!(
            connect_target("CONNECT 10.213.0.11:10250 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("10.213.0.11".into(), 10250))
        );
        assert_eq!(
            connect_target("CONNECT [fd00::2]:10250 HTTP/1.1\r\n\r\n"),
            Some(("fd00::2".into(), 10250))
        );
        assert_eq!(connect_target("GET / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(connect_target("CONNECT nohost HTTP/1.1\r\n\r\n"), None);
    }

    #[test]
    fn the_cluster_egress_goes_to_the_socket() {
        let config = selector_config(Path::new("/d/server/egress.sock"));
        assert!(config.contains("name: cluster"));
        assert!(config.contains("proxyProtocol: HTTPConnect"));
        assert!(config.contains("udsName: /d/server/egress.sock"));
    }
}
