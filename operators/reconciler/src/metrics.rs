//! Per-controller Prometheus metrics: reconciles by result, errors, the
//! duration histogram and the queue depth (objects due for a reconcile
//! that has not started: triggered by a change, or a requeue whose time
//! has come), plus whatever the host registers beside them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    controller: String,
    result: String,
}

/// Objects waiting for a reconcile, with the time each is due.
#[derive(Clone, Default)]
pub struct Queue {
    due: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.due.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `key` is due at `at` (the earlier time wins, as in the scheduler).
    pub fn schedule(&self, key: String, at: Instant) {
        let mut due = self.lock();
        let entry = due.entry(key).or_insert(at);
        if at < *entry {
            *entry = at;
        }
    }

    /// A reconcile of `key` started (or the object is gone).
    pub fn started(&self, key: &str) {
        self.lock().remove(key);
    }

    /// How many objects are due now.
    pub fn depth(&self) -> usize {
        let now = Instant::now();
        self.lock().values().filter(|at| **at <= now).count()
    }
}

struct Inner {
    registry: Mutex<Registry>,
    reconciles: Family<ResultLabels, Counter>,
    errors: Family<ControllerLabels, Counter>,
    durations: Family<ControllerLabels, Histogram>,
    depth: Family<ControllerLabels, Gauge>,
    queues: Mutex<BTreeMap<&'static str, Queue>>,
}

/// The metrics of every controller in this process.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let reconciles = Family::<ResultLabels, Counter>::default();
        let errors = Family::<ControllerLabels, Counter>::default();
        let durations = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 4.0, 10))
        });
        let depth = Family::<ControllerLabels, Gauge>::default();
        let mut registry = Registry::default();
        registry.register(
            "k3r_controller_reconciles",
            "Reconciles by controller and result (success, requeue, error)",
            reconciles.clone(),
        );
        registry.register(
            "k3r_controller_reconcile_errors",
            "Reconciles that failed, by controller",
            errors.clone(),
        );
        registry.register(
            "k3r_controller_reconcile_duration_seconds",
            "Time one reconcile took, by controller",
            durations.clone(),
        );
        registry.register(
            "k3r_controller_queue_depth",
            "Objects due for a reconcile that has not started yet",
            depth.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry: Mutex::new(registry),
                reconciles,
                errors,
                durations,
                depth,
                queues: Mutex::default(),
            }),
        }
    }

    /// Registers a metric of the host's beside the controllers' (under
    /// its full name).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.inner
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .register(name, help, metric);
    }

    /// The handle one controller reports through.
    pub fn controller(&self, name: &'static str) -> ControllerMetrics {
        let queue = self
            .inner
            .queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name)
            .or_default()
            .clone();
        ControllerMetrics {
            name,
            metrics: self.clone(),
            queue,
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        for (name, queue) in self
            .inner
            .queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let depth = i64::try_from(queue.depth()).unwrap_or(i64::MAX);
            self.inner
                .depth
                .get_or_create(&ControllerLabels {
                    controller: (*name).to_string(),
                })
                .set(depth);
        }
        let mut body = String::new();
        let registry = self
            .inner
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if prometheus_client::encoding::text::encode(&mut body, &registry).is_err() {
            body.clear();
        }
        body
    }
}

/// What one reconcile ended with, for the metrics.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    Success,
    Requeue,
    Error,
}

#[derive(Clone)]
pub struct ControllerMetrics {
    name: &'static str,
    metrics: Metrics,
    pub queue: Queue,
}

impl ControllerMetrics {
    pub fn reconciled(&self, outcome: Outcome, took: Duration) {
        let inner = &self.metrics.inner;
        let result = match outcome {
            Outcome::Success => "success",
            Outcome::Requeue => "requeue",
            Outcome::Error => "error",
        };
        inner
            .reconciles
            .get_or_create(&ResultLabels {
                controller: self.name.into(),
                result: result.into(),
            })
            .inc();
        if matches!(outcome, Outcome::Error) {
            inner
                .errors
                .get_or_create(&ControllerLabels {
                    controller: self.name.into(),
                })
                .inc();
        }
        inner
            .durations
            .get_or_create(&ControllerLabels {
                controller: self.name.into(),
            })
            .observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_results_errors_durations_and_due_objects() {
        let metrics = Metrics::new();
        let helm = metrics.controller("helm");
        helm.reconciled(Outcome::Success, Duration::from_millis(3));
        helm.reconciled(Outcome::Error, Duration::from_millis(3));
        helm.reconciled(Outcome::Requeue, Duration::from_millis(3));
        let now = Instant::now();
        helm.queue.schedule("a/x".into(), now);
        helm.queue
            .schedule("a/y".into(), now + Duration::from_secs(60));
        helm.queue
            .schedule("a/y".into(), now + Duration::from_secs(600));
        assert_eq!(helm.queue.depth(), 1, "only what is due counts");
        let text = metrics.encode();
        for line in [
            "k3r_controller_reconciles_total{controller=\"helm\",result=\"success\"} 1",
            "k3r_controller_reconciles_total{controller=\"helm\",result=\"error\"} 1",
            "k3r_controller_reconcile_errors_total{controller=\"helm\"} 1",
            "k3r_controller_reconcile_duration_seconds_count{controller=\"helm\"} 3",
            "k3r_controller_queue_depth{controller=\"helm\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
        helm.queue.started("a/x");
        assert!(
            metrics
                .encode()
                .contains("k3r_controller_queue_depth{controller=\"helm\"} 0")
        );
    }
}
