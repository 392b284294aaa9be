//! The one shape every k3r controller has, on kube-runtime: a
//! [`kube::runtime::Controller`] fed by reflector caches (one LIST at
//! start, then watches — never a periodic full LIST), reconciling each
//! object on its own (objects never wait for each other, one object is
//! never reconciled twice at once, a burst of triggers is one reconcile),
//! with:
//!
//! - [`Next`]: a reconcile says "done until something changes" or "look
//!   again after this long" — long work (a hook Job, a drain) is awaited by
//!   requeueing, never inline;
//! - an error policy with per-object exponential backoff ([`backoff`]);
//! - a finalizer helper whose cleanup may take several passes
//!   ([`finalizer`]);
//! - status-condition and Event helpers ([`conditions`], [`events`]);
//! - per-controller metrics (reconciles, errors, duration, queue depth)
//!   and health (live while the loop runs, ready once caches synced)
//!   ([`metrics`], [`health`]).
//!
//! A controller crate builds its controller with [`Builder`] from the
//! [`Runtime`] the operators host gives it.

pub mod backoff;
mod builder;
pub mod conditions;
pub mod duration;
pub mod events;
pub mod finalizer;
pub mod health;
pub mod metrics;
#[cfg(feature = "mock")]
pub mod mock;
pub mod selector;

use std::time::Duration;

pub use builder::{Builder, chain};
pub use kube::runtime::reflector::{ObjectRef, Store};

/// What a reconcile decided about its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Settled: nothing to do until the object or something it watches
    /// changes. Forgets earlier failures.
    Done,
    /// Work is under way (a Job running, a deletion in progress): look again
    /// after this long. Earlier failures are remembered, so a loop of
    /// failing attempts still backs off.
    After(Duration),
}

/// What every controller is built with: the API client, and where it
/// reports metrics and health.
#[derive(Clone)]
pub struct Runtime {
    pub client: kube::Client,
    pub metrics: metrics::Metrics,
    pub health: health::Health,
    pub backoff: backoff::Policy,
    /// The reporting instance on Events (the pod name).
    pub instance: Option<String>,
}

impl Runtime {
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            metrics: metrics::Metrics::new(),
            health: health::Health::default(),
            backoff: backoff::Policy::default(),
            instance: None,
        }
    }

    /// An Event recorder reporting as `controller`.
    pub fn recorder(&self, controller: &str) -> kube::runtime::events::Recorder {
        kube::runtime::events::Recorder::new(
            self.client.clone(),
            kube::runtime::events::Reporter {
                controller: controller.into(),
                instance: self.instance.clone(),
            },
        )
    }
}

/// The key one object has in queues and backoff tables: `namespace/name`
/// (or `name` for cluster-scoped objects).
pub fn key<K: kube::Resource>(object: &K) -> String {
    let meta = object.meta();
    let name = meta.name.as_deref().unwrap_or_default();
    match meta.namespace.as_deref() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

fn key_of_ref<K: kube::Resource>(reference: &ObjectRef<K>) -> String {
    match &reference.namespace {
        Some(ns) => format!("{ns}/{}", reference.name),
        None => reference.name.clone(),
    }
}
