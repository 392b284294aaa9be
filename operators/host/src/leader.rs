//! Leader election on a coordination.k8s.io Lease, with client-go's rules:
//! a lease held by another is taken only after it stayed unchanged, as
//! observed on our own clock, for its whole duration (no clock-skew
//! trouble); the leader renews every retry period and gives up when it
//! could not renew within the renew deadline; a clean stop releases the
//! lease so a standby takes over at once. The leader renews every renew
//! period, not every retry period as client-go does: a lease write every
//! 2 s was most of an idle cluster's writes (docs/benchmarks.md); a failed
//! renewal is retried every retry period. As client-go's fast path, the
//! leader renews by writing over the lease it wrote last (one request, not
//! a read and a write); a conflict sends it back to reading the lease.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;

use crate::Error;

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    /// How often the leader renews a lease it holds.
    pub renew_period: Duration,
    /// How often a standby looks at the lease, and a failed renewal is
    /// tried again.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// A 30 s lease renewed every 10 s (the kubelet's node lease renews a
    /// 40 s one every 10 s), given up 20 s after the last renewal, 10 s
    /// before another replica may take it; standbys look every 2 s
    /// (kube-controller-manager's retry period). A clean stop releases the
    /// lease, so only a crashed leader's successor waits out the 30 s.
    pub fn new(name: &str, namespace: &str, identity: &str) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(30),
            renew_deadline: Duration::from_secs(20),
            renew_period: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Whether `me` may take a lease whose record has stayed as `spec` for
/// `unchanged_for` (as we observed it).
pub fn may_take(spec: &LeaseSpec, me: &str, unchanged_for: Duration) -> bool {
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() || holder == me {
        return true;
    }
    let duration = u64::try_from(spec.lease_duration_seconds.unwrap_or(15)).unwrap_or(15);
    unchanged_for >= Duration::from_secs(duration)
}

pub struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    observed: Option<(LeaseSpec, Instant)>,
    /// The lease as this process last wrote it while holding it.
    written: Option<Lease>,
}

impl Elector {
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
            written: None,
        }
    }

    /// Returns once this process holds the lease.
    pub async fn acquire(&mut self) -> Result<(), Error> {
        let mut announced = false;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became leader");
                    return Ok(());
                }
                Ok(false) => {
                    if !announced {
                        let holder = self
                            .observed
                            .as_ref()
                            .and_then(|(s, _)| s.holder_identity.clone())
                            .unwrap_or_default();
                        tracing::info!(lease = %self.config.name, %holder, "standing by: another replica leads");
                        announced = true;
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot read or take the lease"),
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Renews until leadership is lost; returns why.
    pub async fn hold(&mut self) -> Error {
        let mut renewed = Instant::now();
        let mut wait = self.config.renew_period;
        loop {
            tokio::time::sleep(wait).await;
            wait = self.config.retry_period;
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    renewed = Instant::now();
                    wait = self.config.renew_period;
                }
                Ok(false) => {
                    return Error::LeaseLost(
                        self.config.name.clone(),
                        "another replica took it".into(),
                    );
                }
                Err(err) if renewed.elapsed() > self.config.renew_deadline => {
                    return Error::LeaseLost(
                        self.config.name.clone(),
                        format!("not renewed within {:?}: {err}", self.config.renew_deadline),
                    );
                }
                Err(err) => tracing::warn!(error = %err, "renewing the lease failed; retrying"),
            }
        }
    }

    /// Gives the lease up so that a standby need not wait for it to expire.
    pub async fn release(&mut self) {
        self.written = None;
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.config.name, "lease released"),
            Err(err) => tracing::warn!(error = %err, "cannot release the lease"),
        }
    }

    async fn try_acquire_or_renew(&mut self) -> Result<bool, Error> {
        if let Some(renewed) = self.renew_written().await? {
            return Ok(renewed);
        }
        let now = MicroTime(Timestamp::now());
        let duration = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(15);
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.config.identity.clone()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(created.spec.clone().unwrap_or_default());
                    self.written = Some(created);
                    Ok(true)
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e.into()),
            };
        };
        let current = lease.spec.clone().unwrap_or_default();
        self.observe(current.clone());
        let unchanged_for = self
            .observed
            .as_ref()
            .map_or(Duration::ZERO, |(_, since)| since.elapsed());
        if !may_take(&current, &self.config.identity, unchanged_for) {
            return Ok(false);
        }
        let ours = current.holder_identity.as_deref() == Some(self.config.identity.as_str());
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(duration),
            acquire_time: if ours {
                current.acquire_time.clone()
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(current.lease_transitions.unwrap_or(0) + i32::from(!ours)),
            ..LeaseSpec::default()
        });
        self.write(&lease).await
    }

    /// Writes the lease; false when someone else wrote it since it was
    /// read (replace carries the resourceVersion: a concurrent taker gets
    /// 409).
    async fn write(&mut self, lease: &Lease) -> Result<bool, Error> {
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), lease)
            .await
        {
            Ok(updated) => {
                self.observe(updated.spec.clone().unwrap_or_default());
                self.written = Some(updated);
                Ok(true)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The fast path: `Some(true)` when the lease this process wrote last
    /// was renewed as it stood; `None` when there is nothing to renew that
    /// way or someone else changed the lease since (then read it).
    async fn renew_written(&mut self) -> Result<Option<bool>, Error> {
        let Some(mut lease) = self.written.take() else {
            return Ok(None);
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(None);
        };
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        // After an error, the next attempt renews from the lease as it
        // stands (`written` was taken).
        Ok(self.write(&lease).await?.then_some(true))
    }

    fn observe(&mut self, spec: LeaseSpec) {
        if self.observed.as_ref().map(|(s, _)| s) != Some(&spec) {
            self.observed = Some((spec, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: Option<&str>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(String::from),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn free_or_own_leases_are_taken_at_once() {
        assert!(may_take(&held_by(None), "a", Duration::ZERO));
        assert!(may_take(&held_by(Some("")), "a", Duration::ZERO));
        assert!(may_take(&held_by(Some("a")), "a", Duration::ZERO));
    }

    /// A lease API answering GET with the stored lease and PUT with
    /// optimistic concurrency on resourceVersion, as the API server does.
    fn lease_server(
        stored: std::sync::Arc<std::sync::Mutex<serde_json::Value>>,
    ) -> impl Fn(&k3r_reconciler::mock::Recorded) -> (u16, serde_json::Value) {
        move |request| {
            let mut lease = stored.lock().expect("lock");
            match request.method.as_str() {
                "GET" => (200, lease.clone()),
                "PUT"
                    if request.body["metadata"]["resourceVersion"]
                        == lease["metadata"]["resourceVersion"] =>
                {
                    let version: u64 = lease["metadata"]["resourceVersion"]
                        .as_str()
                        .and_then(|v| v.parse().ok())
                        .expect("numeric resourceVersion");
                    let mut updated = request.body.clone();
                    updated["metadata"]["resourceVersion"] = (version + 1).to_string().into();
                    *lease = updated.clone();
                    (200, updated)
                }
                "PUT" => (
                    409,
                    k3r_reconciler::mock::status(409, "Conflict", "the object has been modified"),
                ),
                _ => (405, serde_json::Value::Null),
            }
        }
    }

    #[tokio::test]
    async fn the_leader_renews_with_one_write_and_rereads_after_a_conflict() {
        let stored = std::sync::Arc::new(std::sync::Mutex::new(serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "ops", "namespace": "kube-system", "resourceVersion": "7"},
            "spec": {"holderIdentity": "", "leaseDurationSeconds": 15},
        })));
        let (client, api) = k3r_reconciler::mock::client(lease_server(stored.clone()));
        let mut elector = Elector::new(client, LeaseConfig::new("ops", "kube-system", "me"));
        assert!(elector.try_acquire_or_renew().await.expect("renew"));
        assert!(elector.try_acquire_or_renew().await.expect("renew"));
        assert!(elector.try_acquire_or_renew().await.expect("renew"));
        let lease = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/ops";
        assert_eq!(
            api.lines(),
            [
                format!("GET {lease}"),
                format!("PUT {lease}"),
                format!("PUT {lease}"),
                format!("PUT {lease}")
            ]
        );
        assert_eq!(stored.lock().expect("lock")["spec"]["holderIdentity"], "me");

        // Someone else wrote the lease: the fast path conflicts, the
        // elector reads it and finds another holder.
        {
            let mut lease = stored.lock().expect("lock");
            lease["spec"]["holderIdentity"] = "other".into();
            lease["metadata"]["resourceVersion"] = "100".into();
        }
        assert!(!elector.try_acquire_or_renew().await.expect("renew"));
        let lines = api.lines();
        assert_eq!(lines[4..], [format!("PUT {lease}"), format!("GET {lease}")]);
        assert_eq!(
            stored.lock().expect("lock")["spec"]["holderIdentity"],
            "other"
        );
    }

    #[test]
    fn another_holder_must_be_silent_for_the_whole_duration() {
        let spec = held_by(Some("b"));
        assert!(!may_take(&spec, "a", Duration::from_secs(14)));
        assert!(may_take(&spec, "a", Duration::from_secs(15)));
    }

    /// The leader writes its lease once per renew period, not once per
    /// retry period: 3 renewals in 35 s.
    #[tokio::test(start_paused = true)]
    async fn the_leader_renews_once_per_renew_period() {
        let stored = std::sync::Arc::new(std::sync::Mutex::new(serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "ops", "namespace": "kube-system", "resourceVersion": "7"},
            "spec": {"holderIdentity": "", "leaseDurationSeconds": 30},
        })));
        let (client, api) = k3r_reconciler::mock::client(lease_server(stored));
        let mut elector = Elector::new(client, LeaseConfig::new("ops", "kube-system", "me"));
        assert!(elector.try_acquire_or_renew().await.expect("acquire"));
        let held = tokio::time::timeout(Duration::from_secs(35), elector.hold()).await;
        assert!(held.is_err(), "still the leader after 35 s");
        let writes = api.lines().iter().filter(|l| l.starts_with("PUT")).count();
        assert_eq!(writes, 1 + 3, "the acquisition and one renewal per 10 s");
    }
}
