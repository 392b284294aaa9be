//! The agent tunnel (k3s's remotedialer, simplified): each agent keeps a
//! websocket open to every server (`CONNECT_PATH`, authenticated by the
//! node's kubelet client certificate). When kube-apiserver needs that
//! node's kubelet, the server sends a `Dial` on it; the agent dials the
//! port locally and opens a second websocket (`STREAM_PREFIX` + id) that
//! carries the connection's bytes, so the server never dials the agent.

pub mod pipe;
pub mod tls;

pub use pipe::pipe;

pub use tokio_tungstenite::tungstenite;
pub use tokio_tungstenite::{WebSocketStream, client_async};

pub const CONNECT_PATH: &str = "/v1-k3r/connect";
pub const STREAM_PREFIX: &str = "/v1-k3r/tunnel/";
/// The only port a server asks agents to dial: the kubelet's.
pub const KUBELET_PORT: u16 = 10250;

#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("{0}")]
    Tls(String),
}

/// A server's request that the agent open connection `id` to its local
/// `port`; sent as a text message "dial ID PORT".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dial {
    pub id: u64,
    pub port: u16,
}

impl Dial {
    pub fn encode(&self) -> String {
        format!("dial {} {}", self.id, self.port)
    }

    pub fn parse(text: &str) -> Option<Dial> {
        let mut words = text.split_whitespace();
        if words.next()? != "dial" {
            return None;
        }
        let id = words.next()?.parse().ok()?;
        let port = words.next()?.parse().ok()?;
        words.next().is_none().then_some(Dial { id, port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_messages_round_trip_and_junk_is_refused() {
        let dial = Dial {
            id: 42,
            port: 10250,
        };
        assert_eq!(dial.encode(), "dial 42 10250");
        assert_eq!(Dial::parse(&dial.encode()), Some(dial));
        for junk in [
            "",
            "dial",
            "dial 1",
            "dial x 1",
            "dial 1 70000",
            "dial 1 2 3",
            "call 1 2",
        ] {
            assert_eq!(Dial::parse(junk), None, "{junk:?}");
        }
    }
}
