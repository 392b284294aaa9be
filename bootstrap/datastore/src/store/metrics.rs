//! Prometheus metrics of the datastore.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub method: String,
}

pub struct Metrics {
    pub rpc_seconds: Family<RpcLabels, Histogram>,
    pub commit_seconds: Histogram,
    pub commit_requests: Histogram,
    pub compacted_rows: Counter,
    pub compactions: Counter,
    pub db_size_bytes: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub current_revision: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub watchers: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub events_sent: Counter<u64, AtomicU64>,
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            rpc_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 18))
            }),
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            commit_requests: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            compacted_rows: Counter::default(),
            compactions: Counter::default(),
            db_size_bytes: Gauge::default(),
            current_revision: Gauge::default(),
            watchers: Gauge::default(),
            events_sent: Counter::default(),
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("k3r_datastore");
        r.register(
            "rpc_duration_seconds",
            "Latency of etcd RPCs by method",
            self.rpc_seconds.clone(),
        );
        r.register(
            "commit_duration_seconds",
            "Duration of one group commit",
            self.commit_seconds.clone(),
        );
        r.register(
            "commit_requests",
            "Requests per group commit",
            self.commit_requests.clone(),
        );
        r.register(
            "compacted_rows",
            "Rows removed by compaction",
            self.compacted_rows.clone(),
        );
        r.register("compactions", "Compactions run", self.compactions.clone());
        r.register(
            "db_size_bytes",
            "Size of the database",
            self.db_size_bytes.clone(),
        );
        r.register(
            "current_revision",
            "Current revision",
            self.current_revision.clone(),
        );
        r.register("watchers", "Active watchers", self.watchers.clone());
        r.register(
            "watch_events_sent",
            "Watch events sent",
            self.events_sent.clone(),
        );
    }

    pub fn observe_commit(&self, requests: usize, elapsed: Duration) {
        self.commit_seconds.observe(elapsed.as_secs_f64());
        self.commit_requests.observe(requests as f64);
    }

    pub fn observe_rpc(&self, method: &str, elapsed: Duration) {
        self.rpc_seconds
            .get_or_create(&RpcLabels {
                method: method.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
