//! Kubernetes API load in the style of kube-burner/clusterloader: for one
//! resource (ConfigMaps, Secrets or Pods) and one load (N concurrent
//! clients, or a fixed rate), creates, gets, updates, lists (paginated)
//! and deletes `--objects` objects in a fresh namespace while a watcher
//! measures event delivery, and prints one Markdown row per operation:
//! throughput and p50/p99 latency.
//!
//! Closed loop (`--clients N`): N workers, each issuing its next request
//! when the previous one answered. Open loop (`--qps R`): request i is due
//! at start + i/R and its latency counts from then (a slow server cannot
//! hide its queueing), at most 64 in flight.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use futures::{StreamExt, TryStreamExt};
use k3r_bench::percentile;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::GroupVersionKind;
use serde_json::json;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Resource {
    Configmaps,
    Secrets,
    Pods,
}

#[derive(Parser, Debug)]
struct Args {
    #[arg(long)]
    kubeconfig: PathBuf,
    /// API server URL overriding the kubeconfig's (e.g. kube-apiserver's
    /// own port, to compare with the supervisor's)
    #[arg(long)]
    server: Option<String>,
    #[arg(long, value_enum)]
    resource: Resource,
    #[arg(long, default_value_t = 200)]
    objects: usize,
    /// Concurrent clients (closed loop)
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Fixed request rate (open loop) instead of --clients
    #[arg(long)]
    qps: Option<f64>,
    /// Page size of the paginated lists
    #[arg(long, default_value_t = 50)]
    page: u32,
    /// First columns of every row
    #[arg(long, default_value = "")]
    label: String,
    /// Instead of the phases: N requests through the kubeconfig's server
    /// and N through --server, alternating (so that both see the same
    /// machine), and the difference of their medians.
    #[arg(long)]
    overhead: Option<usize>,
    /// What --overhead times: GETs of one ConfigMap, or creates of
    /// ConfigMaps of the size the kubectl yardstick uses
    #[arg(long, value_enum, default_value_t = OverheadOp::Get)]
    overhead_op: OverheadOp,
    /// HTTP/2, one multiplexed connection per endpoint, as kubectl and
    /// client-go use (the default is kube-rs's HTTP/1.1)
    #[arg(long)]
    http2: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum OverheadOp {
    Get,
    Create,
}

#[derive(Clone, Copy)]
enum Load {
    Clients(usize),
    Rate(f64),
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Load::Clients(n) => write!(f, "{n} clients"),
            Load::Rate(r) => write!(f, "{r} QPS"),
        }
    }
}

struct Phase {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

fn api_resource(resource: Resource) -> ApiResource {
    let (kind, plural) = match resource {
        Resource::Configmaps => ("ConfigMap", "configmaps"),
        Resource::Secrets => ("Secret", "secrets"),
        Resource::Pods => ("Pod", "pods"),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", kind), plural)
}

/// An object of about the size real ones have. Pods carry a scheduling
/// gate: they stay unscheduled, so no node starts containers for them.
fn object(resource: Resource, name: &str, generation: usize) -> serde_json::Value {
    let payload = format!("{generation:08}{}", "x".repeat(512));
    let metadata =
        json!({"name": name, "labels": {"app": "api-bench", "generation": generation.to_string()}});
    match resource {
        Resource::Configmaps => json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
            "data": {"payload": payload},
        }),
        Resource::Secrets => json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": metadata,
            "stringData": {"payload": payload},
        }),
        Resource::Pods => json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {
                "schedulingGates": [{"name": "k3r.io/api-bench"}],
                "containers": [{
                    "name": "main", "image": "registry.invalid/api-bench:1",
                    "env": [{"name": "PAYLOAD", "value": payload}],
                }],
            },
        }),
    }
}

/// The benchmark's objects (a namespace has others, e.g. kube-root-ca.crt).
const SELECTOR: &str = "app=api-bench";

fn name_of(i: usize) -> String {
    format!("obj-{i:05}")
}

/// Runs `op(i)` for i in 0..count under `load`.
async fn phase<F, Fut>(load: Load, count: usize, op: F) -> Phase
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let results: Arc<Mutex<Vec<anyhow::Result<Duration>>>> = Arc::default();
    match load {
        Load::Clients(clients) => {
            let next = Arc::new(AtomicUsize::new(0));
            let mut workers = Vec::new();
            for _ in 0..clients.max(1) {
                let (op, next, results) =
                    (Arc::clone(&op), Arc::clone(&next), Arc::clone(&results));
                workers.push(tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            break;
                        }
                        let at = Instant::now();
                        let result = op(i).await.map(|()| at.elapsed());
                        results.lock().expect("results").push(result);
                    }
                }));
            }
            for worker in workers {
                let _ = worker.await;
            }
        }
        Load::Rate(qps) => {
            let in_flight = Arc::new(tokio::sync::Semaphore::new(64));
            let mut tasks = Vec::new();
            for i in 0..count {
                let due = started + Duration::from_secs_f64(i as f64 / qps);
                tokio::time::sleep_until(due.into()).await;
                let permit = Arc::clone(&in_flight).acquire_owned().await;
                let (op, results) = (Arc::clone(&op), Arc::clone(&results));
                tasks.push(tokio::spawn(async move {
                    let _permit = permit;
                    let result = op(i).await.map(|()| due.elapsed());
                    results.lock().expect("results").push(result);
                }));
            }
            for task in tasks {
                let _ = task.await;
            }
        }
    }
    let elapsed = started.elapsed();
    let results = std::mem::take(&mut *results.lock().expect("results"));
    let mut latencies = Vec::new();
    let mut errors = 0;
    for result in results {
        match result {
            Ok(latency) => latencies.push(latency),
            Err(err) => {
                if errors == 0 {
                    eprintln!("api-bench: first error: {err:#}");
                }
                errors += 1;
            }
        }
    }
    Phase {
        latencies,
        errors,
        elapsed,
    }
}

fn row(args: &Args, load: Load, op: &str, mut phase: Phase) {
    phase.latencies.sort();
    let ops = phase.latencies.len();
    println!(
        "| {}{:?} | {op} | {load} | {ops} | {:.0} | {:.2} | {:.2} | {} |",
        args.label,
        args.resource,
        ops as f64 / phase.elapsed.as_secs_f64(),
        percentile(&phase.latencies, 0.5),
        percentile(&phase.latencies, 0.99),
        phase.errors,
    );
}

async fn client(args: &Args, server: Option<&String>) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("reading {}", args.kubeconfig.display()))?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    if let Some(server) = server {
        config.cluster_url = server.parse().context("--server")?;
    }
    if args.http2 {
        return http2_client(config);
    }
    Ok(k3r_kube_client::from_config(config)?)
}

/// A kube client that speaks only HTTP/2 (ALPN h2), as client-go does
/// against a server that offers it.
fn http2_client(config: kube::Config) -> anyhow::Result<kube::Client> {
    use kube::client::ConfigExt;
    use tower::ServiceBuilder;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config.rustls_client_config()?)
        .https_only()
        .enable_http2()
        .wrap_connector(k3r_kube_client::http_connector());
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build(https);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .map_err(
            |e: hyper_util::client::legacy::Error| -> Box<dyn std::error::Error + Send + Sync> {
                Box::new(e)
            },
        )
        .service(http);
    Ok(kube::Client::new(service, config.default_namespace))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let load = match args.qps {
        Some(qps) => Load::Rate(qps),
        None => Load::Clients(args.clients),
    };
    if let Some(rounds) = args.overhead {
        return overhead(&args, rounds).await;
    }
    let client = client(&args, args.server.as_ref()).await?;
    let namespace = format!(
        "api-bench-{}-{}",
        std::process::id(),
        format!("{:?}", args.resource).to_lowercase()
    );
    let namespaces = create_namespace(&client, &namespace).await?;
    let resource = api_resource(args.resource);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
    let count = args.objects;

    // Watch delivery: from a create's answer to its ADDED event.
    let created_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let delivered: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let watcher = {
        let api = api.clone();
        let (created_at, delivered) = (Arc::clone(&created_at), Arc::clone(&delivered));
        let stream = api
            .watch(&WatchParams::default().labels(SELECTOR), "0")
            .await?;
        tokio::spawn(async move {
            let mut stream = stream.boxed();
            let mut seen = 0;
            while let Ok(Some(event)) = stream.try_next().await {
                if let WatchEvent::Added(object) = event {
                    let received = Instant::now();
                    let name = object.metadata.name.unwrap_or_default();
                    // The event can overtake the create's answer.
                    let latency = loop {
                        if let Some(at) = created_at.lock().expect("created").get(&name) {
                            break received.saturating_duration_since(*at);
                        }
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    };
                    delivered.lock().expect("delivered").push(latency);
                    seen += 1;
                    if seen == count {
                        break;
                    }
                }
            }
        })
    };

    let kind = args.resource;
    let create = {
        let (api, created_at) = (api.clone(), Arc::clone(&created_at));
        phase(load, count, move |i| {
            let (api, created_at) = (api.clone(), Arc::clone(&created_at));
            async move {
                let object: DynamicObject = serde_json::from_value(object(kind, &name_of(i), 0))?;
                api.create(&PostParams::default(), &object).await?;
                created_at
                    .lock()
                    .expect("created")
                    .insert(name_of(i), Instant::now());
                Ok(())
            }
        })
        .await
    };
    let create_elapsed = create.elapsed;
    row(&args, load, "create", create);
    let _ = tokio::time::timeout(Duration::from_secs(30), watcher).await;
    let delivered = std::mem::take(&mut *delivered.lock().expect("delivered"));
    let missing = count.saturating_sub(delivered.len());
    row(
        &args,
        load,
        "watch event",
        Phase {
            latencies: delivered,
            errors: missing,
            elapsed: create_elapsed,
        },
    );

    let fetched: Arc<Mutex<HashMap<usize, DynamicObject>>> = Arc::default();
    let get = {
        let (api, fetched) = (api.clone(), Arc::clone(&fetched));
        phase(load, count, move |i| {
            let (api, fetched) = (api.clone(), Arc::clone(&fetched));
            async move {
                let object = api.get(&name_of(i)).await?;
                fetched.lock().expect("fetched").insert(i, object);
                Ok(())
            }
        })
        .await
    };
    row(&args, load, "get", get);

    let update = {
        let (api, fetched) = (api.clone(), Arc::clone(&fetched));
        phase(load, count, move |i| {
            let (api, fetched) = (api.clone(), Arc::clone(&fetched));
            async move {
                let current = fetched
                    .lock()
                    .expect("fetched")
                    .remove(&i)
                    .context("object was not fetched")?;
                let mut next: DynamicObject = serde_json::from_value(object(kind, &name_of(i), 1))?;
                if kind == Resource::Pods {
                    // A pod's spec is immutable: change its labels only.
                    let mut pod = current;
                    pod.metadata.labels = next.metadata.labels.take();
                    next = pod;
                } else {
                    next.metadata.resource_version = current.metadata.resource_version;
                }
                api.replace(&name_of(i), &PostParams::default(), &next)
                    .await?;
                Ok(())
            }
        })
        .await
    };
    row(&args, load, "update", update);

    // Each operation is one whole paginated list of all objects.
    let lists = (count / 10).max(10);
    let page = args.page;
    let list = {
        let api = api.clone();
        phase(load, lists, move |_| {
            let api = api.clone();
            async move {
                let mut params = ListParams::default().labels(SELECTOR).limit(page);
                let mut total = 0;
                loop {
                    let list = api.list(&params).await?;
                    total += list.items.len();
                    match list.metadata.continue_.filter(|c| !c.is_empty()) {
                        Some(token) => params = params.continue_token(&token),
                        None => break,
                    }
                }
                anyhow::ensure!(total == count, "listed {total} of {count} objects");
                Ok(())
            }
        })
        .await
    };
    row(&args, load, &format!("list ({page}/page)"), list);

    let delete = {
        let api = api.clone();
        phase(load, count, move |i| {
            let api = api.clone();
            async move {
                api.delete(&name_of(i), &DeleteParams::default().grace_period(0))
                    .await?;
                Ok(())
            }
        })
        .await
    };
    row(&args, load, "delete", delete);
    namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
        .context("deleting the namespace")?;
    Ok(())
}

/// Creates the namespace the run works in; the API to delete it with.
async fn create_namespace(
    client: &kube::Client,
    name: &str,
) -> anyhow::Result<Api<k8s_openapi::api::core::v1::Namespace>> {
    let namespaces = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}}))?,
        )
        .await
        .context("creating the namespace")?;
    Ok(namespaces)
}

/// Request latency through two endpoints, alternating request by request.
async fn overhead(args: &Args, rounds: usize) -> anyhow::Result<()> {
    let direct_url = args.server.as_ref().context("--overhead needs --server")?;
    let via = client(args, None).await?;
    let direct = client(args, Some(direct_url)).await?;
    let namespace = format!("api-bench-overhead-{}", std::process::id());
    let namespaces = create_namespace(&via, &namespace).await?;
    let measured = alternate(args.overhead_op, rounds, &namespace, via, direct).await;
    namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
        .context("deleting the namespace")?;
    // Whatever runs next should not share the machine with these deletes.
    let deadline = Instant::now() + Duration::from_secs(300);
    while namespaces.get_opt(&namespace).await?.is_some() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "namespace {namespace} still there after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (mut through, mut around) = measured?;
    through.sort();
    around.sort();
    let (p50_via, p50_direct) = (percentile(&through, 0.5), percentile(&around, 0.5));
    let what = match args.overhead_op {
        OverheadOp::Get => "GET one ConfigMap",
        OverheadOp::Create => "create a ConfigMap",
    };
    let protocol = if args.http2 { ", HTTP/2" } else { "" };
    println!(
        "| {}{what}, {rounds} alternating{protocol} | {p50_via:.3} | {:.3} | {p50_direct:.3} | {:.3} | {:.3} | {:.1} % |",
        args.label,
        percentile(&through, 0.99),
        percentile(&around, 0.99),
        p50_via - p50_direct,
        (p50_via - p50_direct) / p50_direct * 100.0,
    );
    Ok(())
}

/// `rounds` requests through each client, alternating; their latencies.
async fn alternate(
    op: OverheadOp,
    rounds: usize,
    namespace: &str,
    via: kube::Client,
    direct: kube::Client,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    type ConfigMap = k8s_openapi::api::core::v1::ConfigMap;
    let via: Api<ConfigMap> = Api::namespaced(via, namespace);
    let direct: Api<ConfigMap> = Api::namespaced(direct, namespace);
    // The yardstick's ConfigMap: 256 bytes of payload.
    let config_map = |name: String| -> anyhow::Result<ConfigMap> {
        Ok(serde_json::from_value(json!({
            "metadata": {"name": name},
            "data": {"index": name, "payload": "x".repeat(256)},
        }))?)
    };
    let params = PostParams::default();
    via.create(&params, &config_map("probe".into())?).await?;
    // Warm both connections.
    via.get("probe").await?;
    direct.get("probe").await?;
    let (mut through, mut around) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for (api, latencies, port) in [
            (&via, &mut through, "via"),
            (&direct, &mut around, "direct"),
        ] {
            let object = config_map(format!("cm-{port}-{round:05}"))?;
            let at = Instant::now();
            match op {
                OverheadOp::Get => drop(api.get("probe").await?),
                OverheadOp::Create => drop(api.create(&params, &object).await?),
            }
            latencies.push(at.elapsed());
        }
    }
    Ok((through, around))
}
