//! What the probes and the metrics endpoint report: leadership, and per
//! operator a heartbeat, whether its first pass finished, and counters of
//! its reconciles.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    operator: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperatorLabels {
    operator: String,
}

struct OperatorState {
    last_beat: Instant,
    synced: bool,
}

#[derive(Default)]
struct Inner {
    leader: bool,
    operators: BTreeMap<&'static str, OperatorState>,
}

/// Shared by the operators (which report) and the HTTP endpoint (which reads).
#[derive(Clone)]
pub struct Status {
    inner: Arc<Mutex<Inner>>,
    registry: Arc<Registry>,
    leader_gauge: Gauge,
    reconciles: Family<ReconcileLabels, Counter>,
    durations: Family<OperatorLabels, Histogram>,
}

impl Default for Status {
    fn default() -> Self {
        Self::new()
    }
}

impl Status {
    pub fn new() -> Self {
        let leader_gauge = Gauge::default();
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let durations = Family::<OperatorLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 4.0, 8))
        });
        let mut registry = Registry::with_prefix("k3r_operators");
        registry.register(
            "leader",
            "1 while this replica holds the k3r-operators lease",
            leader_gauge.clone(),
        );
        registry.register(
            "reconciles",
            "Reconcile passes by operator and result",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile pass took",
            durations.clone(),
        );
        Self {
            inner: Arc::default(),
            registry: Arc::new(registry),
            leader_gauge,
            reconciles,
            durations,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_leader(&self, leader: bool) {
        self.lock().leader = leader;
        self.leader_gauge.set(i64::from(leader));
    }

    pub fn is_leader(&self) -> bool {
        self.lock().leader
    }

    /// Registers an operator; from now on it must beat to stay live.
    pub fn operator(&self, name: &'static str) -> OperatorHandle {
        self.lock().operators.insert(
            name,
            OperatorState {
                last_beat: Instant::now(),
                synced: false,
            },
        );
        OperatorHandle {
            name,
            status: self.clone(),
        }
    }

    /// Liveness: every operator beat within `max_silence` (a stuck loop
    /// gets the pod restarted; errors alone do not).
    pub fn live(&self, max_silence: Duration) -> Result<(), String> {
        let inner = self.lock();
        let stuck: Vec<&str> = inner
            .operators
            .iter()
            .filter(|(_, s)| s.last_beat.elapsed() > max_silence)
            .map(|(name, _)| *name)
            .collect();
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "no progress for {max_silence:?}: {}",
                stuck.join(", ")
            ))
        }
    }

    /// Readiness: a standby is ready; the leader once every operator
    /// finished its first pass.
    pub fn ready(&self) -> Result<(), String> {
        let inner = self.lock();
        if !inner.leader {
            return Ok(());
        }
        let pending: Vec<&str> = inner
            .operators
            .iter()
            .filter(|(_, s)| !s.synced)
            .map(|(name, _)| *name)
            .collect();
        if pending.is_empty() {
            Ok(())
        } else {
            Err(format!("first pass pending: {}", pending.join(", ")))
        }
    }

    /// The Prometheus text exposition.
    pub fn metrics_text(&self) -> String {
        let mut body = String::new();
        if prometheus_client::encoding::text::encode(&mut body, &self.registry).is_err() {
            body.clear();
        }
        body
    }
}

/// One operator's view of the status.
#[derive(Clone)]
pub struct OperatorHandle {
    name: &'static str,
    status: Status,
}

impl OperatorHandle {
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The loop is alive (call at least once per pass or tick).
    pub fn beat(&self) {
        if let Some(state) = self.status.lock().operators.get_mut(self.name) {
            state.last_beat = Instant::now();
        }
    }

    /// One pass finished; the first one makes the operator ready.
    pub fn reconciled(&self, ok: bool, took: Duration) {
        if let Some(state) = self.status.lock().operators.get_mut(self.name) {
            state.last_beat = Instant::now();
            state.synced = true;
        }
        self.status
            .reconciles
            .get_or_create(&ReconcileLabels {
                operator: self.name.into(),
                result: if ok { "success" } else { "error" }.into(),
            })
            .inc();
        self.status
            .durations
            .get_or_create(&OperatorLabels {
                operator: self.name.into(),
            })
            .observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standby_is_ready_leader_waits_for_first_passes() {
        let status = Status::new();
        let deploy = status.operator("deploy");
        let _hosts = status.operator("nodehosts");
        assert!(status.ready().is_ok(), "standby");
        status.set_leader(true);
        assert!(status.ready().is_err());
        deploy.reconciled(true, Duration::from_millis(3));
        let err = status.ready().expect_err("nodehosts pending");
        assert!(
            err.contains("nodehosts") && !err.contains("deploy"),
            "{err}"
        );
    }

    #[test]
    fn liveness_names_the_stuck_operator() {
        let status = Status::new();
        let deploy = status.operator("deploy");
        assert!(status.live(Duration::from_secs(60)).is_ok());
        std::thread::sleep(Duration::from_millis(30));
        let err = status
            .live(Duration::from_millis(10))
            .expect_err("silent too long");
        assert!(err.contains("deploy"), "{err}");
        deploy.beat();
        assert!(status.live(Duration::from_millis(10)).is_ok());
    }

    #[test]
    fn metrics_count_reconciles_and_leadership() {
        let status = Status::new();
        let deploy = status.operator("deploy");
        deploy.reconciled(true, Duration::from_millis(3));
        deploy.reconciled(false, Duration::from_millis(3));
        deploy.reconciled(true, Duration::from_millis(3));
        status.set_leader(true);
        let text = status.metrics_text();
        assert!(text.contains("k3r_operators_leader 1"), "{text}");
        assert!(
            text.contains(
                "k3r_operators_reconciles_total{operator=\"deploy\",result=\"success\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("k3r_operators_reconcile_duration_seconds_count{operator=\"deploy\"} 3"),
            "{text}"
        );
    }
}
