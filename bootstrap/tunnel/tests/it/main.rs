//! The pipe carries bytes both ways over a real websocket handshake.

use k3r_tunnel::tungstenite::protocol::Role;
use k3r_tunnel::{WebSocketStream, client_async, pipe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn bytes_cross_a_websocket_both_ways() {
    // A websocket between "server" and "agent" over an in-memory duplex.
    let (server_side, agent_side) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move { tokio_tungstenite_accept(server_side).await });
    let (agent_ws, _) = client_async("ws://server/v1-k3r/tunnel/1", agent_side)
        .await
        .expect("handshake");
    let server_ws = server.await.expect("join");

    // The agent pipes its websocket to a local "kubelet"; the server pipes
    // its end to a "kube-apiserver" connection.
    let (kubelet, mut kubelet_peer) = tokio::io::duplex(64 * 1024);
    let (apiserver, mut apiserver_peer) = tokio::io::duplex(64 * 1024);
    tokio::spawn(pipe(agent_ws, kubelet));
    tokio::spawn(pipe(server_ws, apiserver));

    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    apiserver_peer.write_all(&big).await.expect("write");
    let mut got = vec![0u8; big.len()];
    kubelet_peer.read_exact(&mut got).await.expect("read");
    assert_eq!(got, big);
    kubelet_peer.write_all(b"pong").await.expect("write back");
    let mut back = [0u8; 4];
    apiserver_peer
        .read_exact(&mut back)
        .await
        .expect("read back");
    assert_eq!(&back, b"pong");

    // The kubelet side closing ends the connection on the other end.
    drop(kubelet_peer);
    let mut rest = Vec::new();
    let n = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        apiserver_peer.read_to_end(&mut rest),
    )
    .await
    .expect("closed in time")
    .expect("read");
    assert_eq!(n, 0);
}

/// The server side of the handshake, as the supervisor does it after an
/// HTTP upgrade: read the request, answer 101, then speak websocket.
async fn tokio_tungstenite_accept(
    mut stream: tokio::io::DuplexStream,
) -> WebSocketStream<tokio::io::DuplexStream> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.expect("request");
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let key = text
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_string())
        })
        .expect("key");
    let accept = k3r_tunnel::tungstenite::handshake::derive_accept_key(key.as_bytes());
    stream
        .write_all(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("response");
    WebSocketStream::from_raw_socket(stream, Role::Server, None).await
}
