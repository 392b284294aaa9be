//! Network policy's cost on a node with 200 pods (of 1,000 in the cluster)
//! and 100 NetworkPolicies: compiling the node's ruleset, replacing the
//! kernel table, and what the table costs packets between two pods — a
//! client namespace and a server pod namespace routed through a "node"
//! namespace that holds the table — against the same path with no table.
//! Needs root; makes and removes three network namespaces. Prints
//! markdown tables.
//!
//!   netpol-bench [--policies 100] [--local-pods 200] [--pods 1000]

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use k3r_bench::tcp::{backend_on, connection_rate, round_trips, stream};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100)]
    policies: usize,
    /// Pods on the measured node
    #[arg(long, default_value_t = 200)]
    local_pods: usize,
    /// Pods in the cluster (peers)
    #[arg(long, default_value_t = 1000)]
    pods: usize,
    /// Table replacements timed
    #[arg(long, default_value_t = 30)]
    replacements: usize,
    #[arg(long, default_value_t = 1 << 30)]
    bytes: u64,
    #[arg(long, default_value_t = 20_000)]
    round_trips: usize,
    #[arg(long, default_value_t = 2_000)]
    connections: usize,
}

const NAMESPACES: usize = 10;
const CLIENT: &str = "10.42.200.10";
/// The server pod: local pod 0 (10.42.0.10).
const SERVER_PORT: u16 = 8080;

/// Pod `i`: local pods are 10.42.0.10.. on node n1, the others spread
/// over nodes n2.. in /24s of their own; labels app-<i % 20>, tier.
fn pods(local: usize, total: usize) -> Vec<Arc<Pod>> {
    let mut pods: Vec<Arc<Pod>> = (0..total)
        .map(|i| {
            // Local pods in the node's /24s, the others 200 per node.
            let (node, ip) = if i < local {
                (
                    "n1".to_string(),
                    format!("10.42.{}.{}", 100 * (i / 240), 10 + i % 240),
                )
            } else {
                let j = i - local;
                (
                    format!("n{}", 2 + j / 200),
                    format!("10.42.{}.{}", 1 + j / 200, 10 + j % 200),
                )
            };
            pod(
                &format!("ns-{}", i % NAMESPACES),
                &format!("p{i}"),
                &node,
                &ip,
                i,
            )
        })
        .collect();
    pods.push(pod("ns-0", "client", "n9", CLIENT, 10_000));
    pods
}

fn pod(ns: &str, name: &str, node: &str, ip: &str, i: usize) -> Arc<Pod> {
    let app = if i == 10_000 {
        "client".to_string()
    } else {
        format!("app-{}", i % 20)
    };
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"app": app, "tier": if i.is_multiple_of(3) {"front"} else {"back"}}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9100}]}]},
            "status": {"phase": "Running", "podIPs": [{"ip": ip}]},
        }))
        .expect("pod"),
    )
}

fn namespaces() -> Vec<Arc<Namespace>> {
    (0..NAMESPACES)
        .map(|i| {
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": format!("ns-{i}"),
                    "labels": {"team": format!("t{}", i % 3)}}}))
                .expect("namespace"),
            )
        })
        .collect()
}

/// A realistic mix: per namespace a default deny, then allow rules by pod
/// label, by namespace, by both, ipBlocks with exceptions, numeric, named
/// and ranged ports, and egress rules; the client's own allow last.
fn policies(count: usize) -> Vec<Arc<NetworkPolicy>> {
    let mut out: Vec<serde_json::Value> = Vec::new();
    for i in 0..count.saturating_sub(1) {
        let ns = format!("ns-{}", i % NAMESPACES);
        let app = format!("app-{}", i % 20);
        let peer = format!("app-{}", (i + 7) % 20);
        let spec = match i % 6 {
            0 => json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
            1 => json!({"podSelector": {"matchLabels": {"app": app}}, "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": peer}}}], "ports": [{"port": 8080}]}]}),
            2 => json!({"podSelector": {"matchLabels": {"app": app}}, "ingress": [
                {"from": [{"namespaceSelector": {"matchLabels": {"team": format!("t{}", i % 3)}}}],
                 "ports": [{"port": "metrics"}]}]}),
            3 => json!({"podSelector": {"matchLabels": {"tier": "front"}}, "ingress": [
                {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": peer}}}]},
                {"from": [{"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.7.0/24"]}}],
                 "ports": [{"port": 30000, "endPort": 30100}]}]}),
            4 => {
                json!({"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Egress"], "egress": [
                {"to": [{"podSelector": {"matchLabels": {"tier": "back"}}}], "ports": [{"port": "http"}]},
                {"to": [{"ipBlock": {"cidr": "10.43.0.0/16"}}], "ports": [{"protocol": "UDP", "port": 53}]}]})
            }
            _ => json!({"podSelector": {"matchLabels": {"app": app}}, "ingress": [
                {"from": [{"podSelector": {"matchExpressions": [
                    {"key": "app", "operator": "In", "values": [peer, "app-1", "app-2"]}]}}]}]}),
        };
        out.push(json!({"metadata": {"name": format!("p{i}"), "namespace": ns}, "spec": spec}));
    }
    out.push(
        json!({"metadata": {"name": "client", "namespace": "ns-0"}, "spec": {
        "podSelector": {"matchLabels": {"app": "app-0"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                     "ports": [{"port": SERVER_PORT}]}]}}),
    );
    out.into_iter()
        .map(|v| Arc::new(serde_json::from_value(v).expect("policy")))
        .collect()
}

struct Netns(&'static str);

impl Netns {
    fn create(name: &'static str) -> anyhow::Result<Self> {
        let _ = Command::new("ip").args(["netns", "delete", name]).output();
        ip(&["netns", "add", name])?;
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(Netns(name))
    }

    /// Runs `work` on a thread of its own inside this namespace.
    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> std::thread::JoinHandle<anyhow::Result<T>> {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).with_context(|| path.clone())?;
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
            work()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", self.0])
            .output();
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() {
        bail!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// client (10.42.200.10) — node (forwarding; the table) — server pod (10.42.0.10).
fn topology() -> anyhow::Result<(Netns, Netns, Netns)> {
    let node = Netns::create("k3rnp-node")?;
    let client = Netns::create("k3rnp-client")?;
    let server = Netns::create("k3rnp-pod")?;
    for (ns, inner, outer, address, gateway) in [
        (client.0, "eth0", "vc", "10.42.200.10/24", "10.42.200.1/24"),
        (server.0, "eth0", "vp", "10.42.0.10/24", "10.42.0.1/24"),
    ] {
        ip(&[
            "link", "add", outer, "netns", node.0, "type", "veth", "peer", "name", inner, "netns",
            ns,
        ])?;
        ip(&["-n", ns, "addr", "add", address, "dev", inner])?;
        ip(&["-n", ns, "link", "set", inner, "up"])?;
        let via = gateway.split('/').next().unwrap_or_default();
        ip(&["-n", ns, "route", "add", "default", "via", via])?;
        ip(&["-n", node.0, "addr", "add", gateway, "dev", outer])?;
        ip(&["-n", node.0, "link", "set", outer, "up"])?;
    }
    let forwarding = Command::new("ip")
        .args([
            "netns",
            "exec",
            node.0,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])
        .status()?;
    if !forwarding.success() {
        bail!("cannot enable forwarding in {}", node.0);
    }
    Ok((node, client, server))
}

fn millis(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    (samples[samples.len() / 2], samples[samples.len() - 1])
}

fn traffic(client: &Netns, to: SocketAddr, args: &Args) -> anyhow::Result<String> {
    let (bytes, rounds, connections) = (args.bytes, args.round_trips, args.connections);
    client
        .run(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let one = stream(to, bytes, 1).await?;
                let (p50, p99) = round_trips(to, rounds).await?;
                let rate = connection_rate(to, connections).await?;
                anyhow::Ok(format!("{one:.1} | {p50:.0} / {p99:.0} | {rate:.0}"))
            })
        })
        .join()
        .map_err(|_| anyhow::anyhow!("client thread panicked"))?
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !nix::unistd::Uid::effective().is_root() {
        bail!("netpol-bench needs root (network namespaces, nftables)");
    }
    let pods = pods(args.local_pods, args.pods);
    let namespaces = namespaces();
    let policies = policies(args.policies);

    let mut compile_ms = Vec::new();
    let mut compiled = None;
    for _ in 0..args.replacements {
        let started = Instant::now();
        let result = k3r_network_policy::compile::compile("n1", &pods, &namespaces, &policies);
        compile_ms.push(started.elapsed().as_secs_f64() * 1e3);
        compiled = Some(result);
    }
    let compiled = compiled.context("no replacement run")?;
    let ruleset = compiled.ruleset;
    let elements: usize = ruleset.sets.iter().map(|s| s.elements.len()).sum();

    let (node, client, server) = topology()?;
    let listener = server
        .run(|| {
            let listener = std::net::TcpListener::bind(("0.0.0.0", SERVER_PORT))?;
            listener.set_nonblocking(true)?;
            Ok(listener)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    let _backend = std::thread::spawn(move || -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            backend_on(tokio::net::TcpListener::from_std(listener)?)?;
            std::future::pending::<()>().await;
            anyhow::Ok(())
        })
    });
    let to = SocketAddr::new("10.42.0.10".parse::<IpAddr>()?, SERVER_PORT);
    std::thread::sleep(Duration::from_millis(200));
    // Alternating runs without and with the table show the noise.
    let mut rows = Vec::new();
    let mut replace_ms = Vec::new();
    for round in 0..2 {
        let again = if round == 0 { "" } else { ", again" };
        rows.push(format!(
            "| no table{again} | {} |",
            traffic(&client, to, &args)?
        ));
        let table = ruleset.clone();
        let replacements = args.replacements;
        replace_ms.extend(
            node.run(move || {
                let mut samples = Vec::new();
                for _ in 0..replacements {
                    let started = Instant::now();
                    k3r_nftables::replace(&table)?;
                    samples.push(started.elapsed().as_secs_f64() * 1e3);
                }
                Ok(samples)
            })
            .join()
            .map_err(|_| anyhow::anyhow!("node thread panicked"))??,
        );
        rows.push(format!(
            "| {} policies{again} | {} |",
            args.policies,
            traffic(&client, to, &args)?
        ));
        node.run(|| Ok(k3r_nftables::delete_table(k3r_nftables::K3R_TABLE)?))
            .join()
            .map_err(|_| anyhow::anyhow!("node thread panicked"))??;
    }
    drop((node, client, server));

    let (compile_p50, compile_max) = millis(&mut compile_ms);
    let (replace_p50, replace_max) = millis(&mut replace_ms);
    println!(
        "| node's pods / cluster's pods / policies | pods isolated (in / eg) | rules / sets / set elements | compile p50 / max (ms) | kernel replace p50 / max (ms) |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {} / {} / {} | {} / {} | {} / {} / {elements} | {compile_p50:.1} / {compile_max:.1} | {replace_p50:.1} / {replace_max:.1} |",
        args.local_pods,
        args.pods + 1,
        args.policies,
        compiled.isolated.0,
        compiled.isolated.1,
        ruleset.rules.len(),
        ruleset.sets.len(),
    );
    println!();
    println!(
        "| client → pod through the node | stream 1 conn (Gbit/s) | 64 B round trip p50 / p99 (µs) | new connections per s |"
    );
    println!("|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}
