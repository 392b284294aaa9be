//! The svclb forwarder's cost: the same TCP workloads against a backend
//! directly and through `k3r svclb` (a separate process, configured as a
//! svclb pod is), on loopback. Prints a markdown table.
//!
//!   forward-bench --k3r target/release/k3r [--bytes 2147483648] [--round-trips 20000]

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser)]
struct Args {
    /// The k3r binary whose `svclb` subcommand is measured
    #[arg(long)]
    k3r: std::path::PathBuf,
    /// Bytes streamed per throughput run
    #[arg(long, default_value_t = 2 << 30)]
    bytes: u64,
    /// Request/response round trips per latency run
    #[arg(long, default_value_t = 20_000)]
    round_trips: usize,
    /// Connections opened per connection-rate run
    #[arg(long, default_value_t = 2_000)]
    connections: usize,
}

/// Reads everything (the stream test) or echoes (the other tests): the
/// first byte says which.
async fn backend() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 256 * 1024];
                let mut mode = [0u8; 1];
                if stream.read_exact(&mut mode).await.is_err() {
                    return;
                }
                loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) if mode[0] == b'e' => {
                            if stream.write_all(&buffer[..n]).await.is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    Ok(address)
}

struct Forwarder(Child);

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn forwarder(
    k3r: &std::path::Path,
    to: SocketAddr,
) -> anyhow::Result<(Forwarder, SocketAddr)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(k3r)
        .arg("svclb")
        .env("SRC_PORT", port.to_string())
        .env("SRC_RANGES", "0.0.0.0/0,::/0")
        .env("DEST_PROTO", "TCP")
        .env("DEST_PORT", to.port().to_string())
        .env("DEST_IPS", to.ip().to_string())
        .env("K3R_LOG", "warn")
        .spawn()
        .context("starting k3r svclb")?;
    let guard = Forwarder(child);
    let address: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    for _ in 0..100 {
        if TcpStream::connect(address).await.is_ok() {
            return Ok((guard, address));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("k3r svclb never listened on {address}")
}

async fn stream(to: SocketAddr, bytes: u64, connections: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(to).await?;
            stream.write_all(b"s").await?;
            let chunk = vec![7u8; 256 * 1024];
            let mut left = bytes / connections;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                stream.write_all(&chunk[..n]).await?;
                left -= n as u64;
            }
            stream.shutdown().await?;
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(bytes as f64 * 8.0 / started.elapsed().as_secs_f64() / 1e9)
}

async fn round_trips(to: SocketAddr, count: usize) -> anyhow::Result<(f64, f64)> {
    let mut stream = TcpStream::connect(to).await?;
    stream.set_nodelay(true)?;
    stream.write_all(b"e").await?;
    let message = [1u8; 64];
    let mut reply = [0u8; 64];
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        stream.write_all(&message).await?;
        stream.read_exact(&mut reply).await?;
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    Ok((samples[count / 2], samples[count * 99 / 100]))
}

async fn connection_rate(to: SocketAddr, count: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    for _ in 0..count {
        let mut stream = TcpStream::connect(to).await?;
        stream.set_nodelay(true)?;
        stream.write_all(b"eping").await?;
        let mut reply = [0u8; 4];
        stream.read_exact(&mut reply).await?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backend = backend().await?;
    let (_forwarder, forwarded) = forwarder(&args.k3r, backend).await?;
    println!(
        "| path | stream 1 conn (Gbit/s) | stream 8 conns (Gbit/s) | 64 B round trip p50 / p99 (µs) | new connections per s |"
    );
    println!("|---|---|---|---|---|");
    for (name, to) in [("direct", backend), ("through k3r svclb", forwarded)] {
        let one = stream(to, args.bytes, 1).await?;
        let eight = stream(to, args.bytes, 8).await?;
        let (p50, p99) = round_trips(to, args.round_trips).await?;
        let rate = connection_rate(to, args.connections).await?;
        println!("| {name} | {one:.1} | {eight:.1} | {p50:.0} / {p99:.0} | {rate:.0} |");
    }
    Ok(())
}
