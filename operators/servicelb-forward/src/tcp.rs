//! TCP: one upstream connection per client connection, bytes copied both
//! ways until either side closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::{Config, Error};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BUFFER: usize = 64 * 1024;

pub(crate) async fn serve(listener: TcpListener, config: Config) -> Result<(), Error> {
    let config = Arc::new(config);
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors or a connection reset before accept:
                // the listener itself is fine.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if !config.allows(peer.ip()) {
            tracing::debug!(client = %peer, "refused: not in loadBalancerSourceRanges");
            continue;
        }
        tokio::spawn(forward(client, peer, Arc::clone(&config)));
    }
}

async fn forward(mut client: TcpStream, peer: SocketAddr, config: Arc<Config>) {
    let Some(mut upstream) = connect(&config).await else {
        tracing::warn!(client = %peer, to = ?config.dest_ips, port = config.dest_port, "no destination answered");
        return;
    };
    // Both hops carry request/response traffic: no Nagle delay on either.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    if let Err(err) =
        tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, BUFFER, BUFFER).await
    {
        tracing::debug!(client = %peer, %err, "connection ended");
    }
}

async fn connect(config: &Config) -> Option<TcpStream> {
    for destination in config.destinations() {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(destination)).await {
            Ok(Ok(stream)) => return Some(stream),
            Ok(Err(err)) => tracing::debug!(%destination, %err, "connect failed"),
            Err(_) => tracing::debug!(%destination, "connect timed out"),
        }
    }
    None
}
