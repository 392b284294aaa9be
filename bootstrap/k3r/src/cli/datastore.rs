use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use k3r_datastore::{Datastore, DatastoreConfig, Endpoint, Listen, StoreConfig, TlsFiles};

#[derive(Args, Debug)]
pub struct DatastoreArgs {
    /// Where to serve the etcd API: unix://PATH or IP:PORT (repeatable)
    #[arg(long = "listen-address", default_value = "127.0.0.1:2379")]
    listen: Vec<String>,
    /// sqlite://PATH (default ./db/state.db), postgres://… or mysql://…
    #[arg(long, env = "K3R_DATASTORE_ENDPOINT", default_value = "")]
    datastore_endpoint: String,
    /// Serve Prometheus metrics on this address
    #[arg(long)]
    metrics_address: Option<SocketAddr>,
    /// Run automatic compaction this often (0s disables it)
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    compaction_interval: Duration,
    /// Automatic compaction keeps at least this many recent revisions
    #[arg(long, default_value_t = 1000)]
    compaction_retain: i64,
    /// …and compacts history older than this
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    compaction_retain_age: Duration,
    /// Serving certificate for TCP listeners (enables mTLS with the next two)
    #[arg(long, requires_all = ["tls_key_file", "client_ca_file"])]
    tls_cert_file: Option<PathBuf>,
    /// Key of the serving certificate
    #[arg(long)]
    tls_key_file: Option<PathBuf>,
    /// CA that client certificates must chain to
    #[arg(long)]
    client_ca_file: Option<PathBuf>,
    /// Interval of watch progress notifications
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    watch_progress_notify_interval: Duration,
}

pub fn run(args: DatastoreArgs) -> anyhow::Result<()> {
    let endpoint = Endpoint::parse(&args.datastore_endpoint, PathBuf::from("db/state.db"))?;
    let listen = args
        .listen
        .iter()
        .map(|l| Listen::parse(l))
        .collect::<Result<Vec<_>, _>>()?;
    let config = DatastoreConfig {
        endpoint,
        listen,
        tls: match (args.tls_cert_file, args.tls_key_file, args.client_ca_file) {
            (Some(cert), Some(key), Some(client_ca)) => Some(TlsFiles {
                cert,
                key,
                client_ca,
            }),
            _ => None,
        },
        metrics_listen: args.metrics_address,
        store: StoreConfig {
            compaction_interval: args.compaction_interval,
            compaction_retain: args.compaction_retain,
            compaction_retain_age: args.compaction_retain_age,
            ..StoreConfig::default()
        },
        progress_notify_interval: args.watch_progress_notify_interval,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting async runtime")?;
    runtime.block_on(async move {
        let datastore = Datastore::start(config).await?;
        super::wait_for_signal().await;
        tracing::info!("shutting down");
        datastore.stop().await;
        anyhow::Ok(())
    })
}
