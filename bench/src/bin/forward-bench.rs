//! The svclb forwarder's cost: the same TCP workloads against a backend
//! directly and through `k3r svclb` (a separate process, configured as a
//! svclb pod is), on loopback. Prints a markdown table.
//!
//!   forward-bench --k3r target/release/k3r [--bytes 2147483648] [--round-trips 20000]
//!
//! With `--target NAME=ADDRESS` (repeatable) it measures those addresses
//! instead — a cluster's paths to one backend that speaks the same
//! protocol (first byte `s`: sink, `e`: echo), as the e2e's
//! `bench::servicelb` does.

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use k3r_bench::tcp::{backend, connection_rate, round_trips, stream};
use tokio::net::TcpStream;

#[derive(Parser)]
struct Args {
    /// The k3r binary whose `svclb` subcommand is measured
    #[arg(long, required_unless_present = "target")]
    k3r: Option<std::path::PathBuf>,
    /// Measure these paths (NAME=HOST:PORT) instead of a local forwarder
    #[arg(long, value_parser = parse_target)]
    target: Vec<(String, SocketAddr)>,
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

fn parse_target(text: &str) -> Result<(String, SocketAddr), String> {
    let (name, address) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected NAME=HOST:PORT"))?;
    let address = address.parse().map_err(|e| format!("{text:?}: {e}"))?;
    Ok((name.to_string(), address))
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut _forwarder = None;
    let targets = match &args.k3r {
        Some(k3r) if args.target.is_empty() => {
            let backend = backend().await?;
            let (guard, forwarded) = forwarder(k3r, backend).await?;
            _forwarder = Some(guard);
            vec![
                ("direct".to_string(), backend),
                ("through k3r svclb".to_string(), forwarded),
            ]
        }
        _ => args.target.clone(),
    };
    println!(
        "| path | stream 1 conn (Gbit/s) | stream 8 conns (Gbit/s) | 64 B round trip p50 / p99 (µs) | new connections per s |"
    );
    println!("|---|---|---|---|---|");
    for (name, to) in targets {
        let one = stream(to, args.bytes, 1).await?;
        let eight = stream(to, args.bytes, 8).await?;
        let (p50, p99) = round_trips(to, args.round_trips).await?;
        let rate = connection_rate(to, args.connections).await?;
        println!("| {name} | {one:.1} | {eight:.1} | {p50:.0} / {p99:.0} | {rate:.0} |");
    }
    Ok(())
}
