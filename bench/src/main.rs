//! Measures one operation against one etcd-API endpoint for a fixed time
//! and prints one table row: ops/s, p50 and p99 latency, errors.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp, WatchOptions};
use k3r_bench::percentile;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Op {
    Put,
    Get,
    TxnUpdate,
    List,
    Watch,
    Fsync,
}

#[derive(Parser, Debug)]
struct Args {
    #[arg(long)]
    endpoint: Option<String>,
    #[arg(long, value_enum)]
    op: Op,
    #[arg(long, default_value_t = 1)]
    clients: usize,
    #[arg(long, default_value = "3")]
    seconds: u64,
    /// Label for the first column
    #[arg(long, default_value = "")]
    system: String,
    /// Directory for the fsync probe
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

struct Stats {
    latencies: Vec<Duration>,
    errors: u64,
    elapsed: Duration,
}

async fn connect(endpoint: &str) -> anyhow::Result<Client> {
    Client::connect([endpoint], None)
        .await
        .with_context(|| format!("connecting to {endpoint}"))
}

async fn run_clients(args: &Args, endpoint: &str) -> anyhow::Result<Stats> {
    let value = "v".repeat(256);
    let mut setup = connect(endpoint).await?;
    let run_id = std::process::id();
    if args.op == Op::List || args.op == Op::Get {
        for i in 0..1000 {
            setup
                .put(format!("/bench/{run_id}/list/{i:04}"), value.as_str(), None)
                .await?;
        }
    }
    let connections: Vec<Client> = {
        let mut v = Vec::new();
        for _ in 0..args.clients.min(16) {
            v.push(connect(endpoint).await?);
        }
        v
    };
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let mut client = connections[c % connections.len()].clone();
        let stop = Arc::clone(&stop);
        let errors = Arc::clone(&errors);
        let value = value.clone();
        let op = args.op;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let key = format!("/bench/{run_id}/c{c}");
            let mut rev = 0;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = match op {
                    Op::Put => client
                        .put(format!("{key}/{i}"), value.as_str(), None)
                        .await
                        .is_ok(),
                    Op::Get => client
                        .get(format!("/bench/{run_id}/list/{:04}", i % 1000), None)
                        .await
                        .is_ok(),
                    Op::List => client
                        .get(
                            format!("/bench/{run_id}/list/"),
                            Some(GetOptions::new().with_prefix()),
                        )
                        .await
                        .is_ok_and(|r| r.kvs().len() == 1000),
                    Op::TxnUpdate => {
                        let txn = Txn::new()
                            .when([Compare::mod_revision(key.as_str(), CompareOp::Equal, rev)])
                            .and_then([TxnOp::put(key.as_str(), value.as_str(), None)])
                            .or_else([TxnOp::get(key.as_str(), None)]);
                        match client.txn(txn).await {
                            Ok(r) if r.succeeded() => {
                                rev = r.header().map_or(0, |h| h.revision());
                                true
                            }
                            _ => false,
                        }
                    }
                    Op::Watch | Op::Fsync => true,
                };
                if ok {
                    latencies.push(t.elapsed());
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?);
    }
    Ok(Stats {
        latencies,
        errors: errors.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    })
}

/// `clients` watchers on one prefix; one writer puts for the duration.
/// Latency is put-acknowledged to event-received, per delivered event.
async fn run_watch(args: &Args, endpoint: &str) -> anyhow::Result<Stats> {
    let prefix = format!("/bench/{}/watch/", std::process::id());
    let mut watchers = Vec::new();
    let sent: Arc<std::sync::Mutex<Vec<Instant>>> = Arc::default();
    for _ in 0..args.clients {
        let mut client = connect(endpoint).await?;
        let stream = client
            .watch(prefix.as_str(), Some(WatchOptions::new().with_prefix()))
            .await?;
        watchers.push((client, stream));
    }
    let mut writer = connect(endpoint).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (client, mut stream) in watchers {
        let sent = Arc::clone(&sent);
        tasks.push(tokio::spawn(async move {
            let _keep = client;
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut next = 0usize;
            loop {
                match tokio::time::timeout(Duration::from_secs(10), stream.message()).await {
                    Ok(Ok(Some(response))) => {
                        for event in response.events() {
                            let Some(kv) = event.kv() else { continue };
                            if kv.value() == b"done" {
                                return (latencies, errors);
                            }
                            // Events must arrive exactly once, in order.
                            let n: usize = String::from_utf8_lossy(kv.value())
                                .parse()
                                .unwrap_or(usize::MAX);
                            if n != next {
                                errors += 1;
                            }
                            next = n.saturating_add(1);
                            if let Some(at) = sent.lock().ok().and_then(|s| s.get(n).copied()) {
                                latencies.push(at.elapsed());
                            }
                        }
                    }
                    _ => return (latencies, errors + 1),
                }
            }
        }));
    }
    let started = Instant::now();
    let mut i = 0usize;
    while started.elapsed() < Duration::from_secs(args.seconds) {
        let t = Instant::now();
        if writer
            .put(format!("{prefix}k"), i.to_string(), None)
            .await
            .is_ok()
        {
            if let Ok(mut s) = sent.lock() {
                s.push(t);
            }
            i += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.put(format!("{prefix}k"), "done", None).await?;
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await?;
        latencies.extend(l);
        errors += e;
    }
    Ok(Stats {
        latencies,
        errors,
        elapsed: started.elapsed(),
    })
}

fn fsync_probe(dir: &std::path::Path, seconds: u64) -> anyhow::Result<Stats> {
    use std::io::Write;
    let path = dir.join(format!("fsync-probe-{}", std::process::id()));
    let mut file = std::fs::File::create(&path)?;
    let block = vec![0u8; 4096];
    let started = Instant::now();
    let mut latencies = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        latencies.push(t.elapsed());
    }
    std::fs::remove_file(&path)?;
    Ok(Stats {
        latencies,
        errors: 0,
        elapsed: started.elapsed(),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut stats = match (args.op, &args.endpoint) {
        (Op::Fsync, _) => fsync_probe(&args.dir, args.seconds)?,
        (Op::Watch, Some(ep)) => run_watch(&args, ep).await?,
        (_, Some(ep)) => run_clients(&args, ep).await?,
        (_, None) => anyhow::bail!("--endpoint is required for {:?}", args.op),
    };
    stats.latencies.sort();
    let ops = stats.latencies.len() as f64 / stats.elapsed.as_secs_f64();
    println!(
        "| {} | {:?} | {} | {:.0} | {:.2} | {:.2} | {} |",
        args.system,
        args.op,
        args.clients,
        ops,
        percentile(&stats.latencies, 0.5),
        percentile(&stats.latencies, 0.99),
        stats.errors
    );
    Ok(())
}
