//! The forwarder against real sockets: TCP and UDP round trips, the
//! destination fallback, and loadBalancerSourceRanges.

use std::net::SocketAddr;
use std::time::Duration;

use k3r_servicelb_forward::{Config, Protocol, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn tcp_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut stream, peer)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 1024];
                // First line back: who the backend saw.
                let _ = stream
                    .write_all(format!("{}\n", peer.ip()).as_bytes())
                    .await;
                while let Ok(n) = stream.read(&mut buffer).await {
                    if n == 0 || stream.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    address
}

fn config(protocol: Protocol, dest: &[SocketAddr], ranges: &str) -> Config {
    Config {
        src_port: 1,
        src_ranges: ranges
            .split(',')
            .filter(|r| !r.is_empty())
            .map(|r| r.parse().expect("cidr"))
            .collect(),
        protocol,
        dest_ips: dest.iter().map(|d| d.ip()).collect(),
        dest_port: dest[0].port(),
        udp_idle: Duration::from_millis(300),
    }
}

fn start(config: Config) -> SocketAddr {
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    tokio::spawn(async move {
        run(config, &[listen], std::future::pending())
            .await
            .expect("forwarder");
    });
    listen
}

async fn connect(address: SocketAddr) -> TcpStream {
    for _ in 0..50 {
        if let Ok(stream) = TcpStream::connect(address).await {
            return stream;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("forwarder never listened on {address}");
}

#[tokio::test]
async fn tcp_round_trip_through_the_second_destination() {
    let backend = tcp_echo().await;
    // 127.0.0.2 has nothing on the port: refused, the next one is tried.
    let mut config = config(Protocol::Tcp, &[backend], "127.0.0.0/8");
    config.dest_ips.insert(0, "127.0.0.2".parse().expect("ip"));
    let forwarder = start(config);
    let mut stream = connect(forwarder).await;
    stream
        .write_all(b"hello through svclb")
        .await
        .expect("write");
    let mut seen = vec![0u8; "127.0.0.1\nhello through svclb".len()];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut seen))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(seen, b"127.0.0.1\nhello through svclb");
}

#[tokio::test]
async fn clients_outside_the_source_ranges_get_nothing() {
    let backend = tcp_echo().await;
    let forwarder = start(config(
        Protocol::Tcp,
        &[backend],
        "10.0.0.0/8,192.168.1.1/32",
    ));
    let mut stream = connect(forwarder).await;
    let _ = stream.write_all(b"let me in").await;
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
        .await
        .expect("closed in time");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "a refused client read {read:?}"
    );
}

#[tokio::test]
async fn udp_replies_reach_each_client() {
    let backend = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let backend_address = backend.local_addr().expect("address");
    tokio::spawn(async move {
        let mut buffer = [0u8; 1500];
        while let Ok((n, peer)) = backend.recv_from(&mut buffer).await {
            let reply = [b"echo:".as_slice(), &buffer[..n]].concat();
            let _ = backend.send_to(&reply, peer).await;
        }
    });
    let forwarder = start(config(Protocol::Udp, &[backend_address], ""));
    tokio::time::sleep(Duration::from_millis(100)).await;
    for round in 0..2 {
        // The second round comes after the sessions idled out: new ones work.
        let mut clients = Vec::new();
        for i in 0..3 {
            let client = UdpSocket::bind("127.0.0.1:0").await.expect("client");
            client.connect(forwarder).await.expect("connect");
            client
                .send(format!("round {round} client {i}").as_bytes())
                .await
                .expect("send");
            clients.push(client);
        }
        for (i, client) in clients.iter().enumerate() {
            let mut buffer = [0u8; 64];
            let n = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buffer))
                .await
                .expect("reply in time")
                .expect("recv");
            assert_eq!(
                std::str::from_utf8(&buffer[..n]).expect("utf8"),
                format!("echo:round {round} client {i}")
            );
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}
