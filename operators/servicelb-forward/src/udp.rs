//! UDP: one upstream socket per client address (so replies find their
//! way back), dropped after the client has been idle for a while — the
//! user-space counterpart of a conntrack entry.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::{Config, Error};

const DATAGRAM: usize = 64 * 1024;

struct Session {
    upstream: Arc<UdpSocket>,
    /// Milliseconds after `epoch` of the client's last datagram.
    last_sent: Arc<AtomicU64>,
}

type Sessions = Arc<Mutex<HashMap<SocketAddr, Session>>>;

pub(crate) async fn serve(socket: UdpSocket, config: Config) -> Result<(), Error> {
    let socket = Arc::new(socket);
    let sessions: Sessions = Arc::default();
    let epoch = Instant::now();
    let mut buffer = vec![0u8; DATAGRAM];
    loop {
        let (length, peer) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(err) => {
                tracing::debug!(%err, "receive failed");
                continue;
            }
        };
        if !config.allows(peer.ip()) {
            tracing::debug!(client = %peer, "dropped: not in loadBalancerSourceRanges");
            continue;
        }
        let now = epoch.elapsed().as_millis() as u64;
        let existing = {
            let sessions = sessions.lock().unwrap_or_else(|p| p.into_inner());
            sessions.get(&peer).map(|s| {
                s.last_sent.store(now, Ordering::Relaxed);
                Arc::clone(&s.upstream)
            })
        };
        let upstream = match existing {
            Some(upstream) => upstream,
            None => match open(&config).await {
                Some(upstream) => {
                    let upstream = Arc::new(upstream);
                    let last_sent = Arc::new(AtomicU64::new(now));
                    sessions.lock().unwrap_or_else(|p| p.into_inner()).insert(
                        peer,
                        Session {
                            upstream: Arc::clone(&upstream),
                            last_sent: Arc::clone(&last_sent),
                        },
                    );
                    tokio::spawn(replies(
                        Arc::clone(&upstream),
                        Arc::clone(&socket),
                        peer,
                        Arc::clone(&sessions),
                        (last_sent, epoch, config.udp_idle),
                    ));
                    upstream
                }
                None => {
                    tracing::warn!(client = %peer, to = ?config.dest_ips, "no destination socket");
                    continue;
                }
            },
        };
        if let Err(err) = upstream.send(&buffer[..length]).await {
            tracing::debug!(client = %peer, %err, "send upstream failed");
        }
    }
}

/// A socket connected to the first destination that takes one.
async fn open(config: &Config) -> Option<UdpSocket> {
    for destination in config.destinations() {
        let local: IpAddr = match destination {
            SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let Ok(socket) = UdpSocket::bind(SocketAddr::new(local, 0)).await else {
            continue;
        };
        if socket.connect(destination).await.is_ok() {
            return Some(socket);
        }
    }
    None
}

/// Sends the destination's replies back to `peer` until the session has
/// been idle (no datagram either way) for `idle`.
async fn replies(
    upstream: Arc<UdpSocket>,
    listener: Arc<UdpSocket>,
    peer: SocketAddr,
    sessions: Sessions,
    (last_sent, epoch, idle): (Arc<AtomicU64>, Instant, Duration),
) {
    let mut buffer = vec![0u8; DATAGRAM];
    loop {
        match tokio::time::timeout(idle, upstream.recv(&mut buffer)).await {
            Ok(Ok(length)) => {
                if let Err(err) = listener.send_to(&buffer[..length], peer).await {
                    tracing::debug!(client = %peer, %err, "reply failed");
                }
            }
            // An ICMP error from the destination (nothing listening yet):
            // the client may retry.
            Ok(Err(err)) => tracing::debug!(client = %peer, %err, "upstream error"),
            Err(_) => {
                let last = Duration::from_millis(last_sent.load(Ordering::Relaxed));
                if epoch.elapsed().saturating_sub(last) >= idle {
                    break;
                }
            }
        }
    }
    sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&peer);
}
