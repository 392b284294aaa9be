//! [`Builder`]: a kube-runtime Controller in k3r's shape.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, Stream, StreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::controller::{Action, Config, Controller, Error as ControllerError};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::utils::{Backoff, ResetTimerBackoff};
use kube::runtime::watcher::ExponentialBackoff;
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;

use crate::backoff::{Failures, Policy};
use crate::metrics::{ControllerMetrics, Outcome, Queue};
use crate::{Next, Runtime, key, key_of_ref};

/// How a failed watch is retried: quickly (250 ms doubling to 5 s, back to
/// the start after 30 s without errors). kube-runtime's default (up to
/// 30 s, reset only after 2 min) left a controller's caches stale for a
/// minute and more after an API server restart: every watch resumes from
/// a resource version the new server no longer has, fails once more, and
/// each failure waited out the grown delay.
fn watch_backoff() -> ResetTimerBackoff<ExponentialBackoff> {
    let exponential = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(5))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times();
    ResetTimerBackoff::new(exponential.into(), Duration::from_secs(30))
}

/// The pause kube-runtime's Controller puts on all its watches together
/// after an error from any one of them: none. Each watch has its own
/// [`watch_backoff`]; the Controller's joint one (by default 0.8 s doubling
/// to 30 s, reset only after two quiet minutes) stopped every watch of a
/// controller for up to a minute per error of one, so after an API server
/// restart, when each watch fails once or twice, a controller read the
/// buffered errors one per half minute and stayed blind for minutes.
#[derive(Clone, Copy, Debug, Default)]
struct NoJointBackoff;

impl Iterator for NoJointBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

impl Backoff for NoJointBackoff {
    fn reset(&mut self) {}
}

/// What a watched kind needs to be cached and watched.
pub trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}
impl<T> Watched for T where
    T: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

type Relation<K> = Box<dyn FnOnce(Controller<K>, Queue) -> Controller<K> + Send>;

/// Builds and runs one controller: the reconciled kind `K` in a reflector
/// cache, and the related kinds whose changes trigger reconciles of `K`.
pub struct Builder<K: Watched> {
    name: &'static str,
    runtime: Runtime,
    api: Api<K>,
    watcher_config: watcher::Config,
    reader: Store<K>,
    writer: Writer<K>,
    predicate: Option<fn(&K) -> Option<u64>>,
    relations: Vec<Relation<K>>,
    /// The related caches the reconciler reads: reconciles wait for them.
    related_ready: Vec<BoxFuture<'static, ()>>,
    concurrency: u16,
}

impl<K: Watched> Builder<K> {
    pub fn new(
        name: &'static str,
        runtime: &Runtime,
        api: Api<K>,
        watcher_config: watcher::Config,
    ) -> Self {
        let (reader, writer) = reflector::store();
        Self {
            name,
            runtime: runtime.clone(),
            api,
            watcher_config,
            reader,
            writer,
            predicate: None,
            relations: Vec::new(),
            related_ready: Vec::new(),
            concurrency: 0,
        }
    }

    /// The cache of reconciled objects.
    pub fn store(&self) -> Store<K> {
        self.reader.clone()
    }

    /// Only changes of what `predicate` hashes trigger a reconcile (so that
    /// a controller's own status updates do not).
    #[must_use]
    pub fn predicate(mut self, predicate: fn(&K) -> Option<u64>) -> Self {
        self.predicate = Some(predicate);
        self
    }

    /// At most `limit` reconciles at once (0: no limit).
    #[must_use]
    pub fn concurrency(mut self, limit: u16) -> Self {
        self.concurrency = limit;
        self
    }

    /// Changes of `O` objects reconcile the objects `mapper` names.
    #[must_use]
    pub fn watches<O, I>(
        mut self,
        api: Api<O>,
        watcher_config: watcher::Config,
        mapper: impl Fn(O) -> I + Send + Sync + 'static,
    ) -> Self
    where
        O: Watched,
        I: IntoIterator<Item = ObjectRef<K>> + 'static,
        I::IntoIter: Send,
    {
        self.relations.push(Box::new(move |controller, queue| {
            let stream = watcher(api, watcher_config)
                .backoff(watch_backoff())
                .touched_objects();
            controller.watches_stream(stream, queued(mapper, queue))
        }));
        self
    }

    /// As [`Builder::watches`], keeping the `O` objects in a cache the
    /// reconciler reads (reconciles wait until it holds the initial list).
    pub fn watches_cached<O, I>(
        mut self,
        api: Api<O>,
        watcher_config: watcher::Config,
        mapper: impl Fn(O) -> I + Send + Sync + 'static,
    ) -> (Self, Store<O>)
    where
        O: Watched,
        I: IntoIterator<Item = ObjectRef<K>> + 'static,
        I::IntoIter: Send,
    {
        let (reader, writer) = reflector::store();
        let ready = reader.clone();
        self.related_ready.push(
            async move {
                let _ = ready.wait_until_ready().await;
            }
            .boxed(),
        );
        self.relations.push(Box::new(move |controller, queue| {
            let stream = watcher(api, watcher_config)
                .backoff(watch_backoff())
                .reflect(writer)
                .touched_objects();
            controller.watches_stream(stream, queued(mapper, queue))
        }));
        (self, reader)
    }

    /// Reconciles the objects `trigger` names, whenever it names them
    /// (e.g. a file scanner's findings).
    #[must_use]
    pub fn trigger(mut self, trigger: impl Stream<Item = ObjectRef<K>> + Send + 'static) -> Self {
        self.relations.push(Box::new(move |controller, queue| {
            controller.reconcile_on(trigger.inspect(move |reference| {
                queue.schedule(key_of_ref(reference), Instant::now());
            }))
        }));
        self
    }

    /// Runs the controller until its watch streams end (they do not, short
    /// of a shutdown): health says "synced" once the caches are, and
    /// "stopped" if the loop ever ends.
    pub async fn run<Ctx, F, Fut, E>(self, reconcile: F, context: Arc<Ctx>)
    where
        Ctx: Send + Sync + 'static,
        F: Fn(Arc<K>, Arc<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Next, E>> + Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        let Self {
            name,
            runtime,
            api,
            watcher_config,
            reader,
            writer,
            predicate,
            relations,
            related_ready,
            concurrency,
        } = self;
        runtime.health.starting(name);
        let metrics = runtime.metrics.controller(name);
        let queue = metrics.queue.clone();
        let objects = watcher(api, watcher_config)
            .backoff(watch_backoff())
            .reflect(writer)
            .applied_objects();
        let objects = match predicate {
            Some(predicate) => objects
                .predicate_filter(predicate, Default::default())
                .boxed(),
            None => objects.boxed(),
        };
        let triggered = queue.clone();
        let objects = objects.inspect(move |object| {
            if let Ok(object) = object {
                triggered.schedule(key(object), Instant::now());
            }
        });
        let mut controller = Controller::for_stream(objects, reader.clone())
            .with_config(Config::default().concurrency(concurrency))
            .trigger_backoff(NoJointBackoff);
        for relation in relations {
            controller = relation(controller, queue.clone());
        }
        let related: Shared<BoxFuture<'static, ()>> = futures::future::join_all(related_ready)
            .map(|_| ())
            .boxed()
            .shared();
        let state = Arc::new(State {
            name,
            metrics,
            failures: Failures::default(),
            policy: runtime.backoff,
            related: related.clone(),
            reconcile,
        });
        let synced = {
            let health = runtime.health.clone();
            async move {
                let _ = reader.wait_until_ready().await;
                related.await;
                health.synced(name);
                tracing::debug!(controller = name, "caches synced");
            }
        };
        let reconciler = {
            let state = Arc::clone(&state);
            move |object: Arc<K>, context: Arc<Ctx>| {
                let state = Arc::clone(&state);
                async move { state.reconcile(object, context).await }.boxed()
            }
        };
        let error_policy = {
            let state = Arc::clone(&state);
            move |object: Arc<K>, error: &E, _: Arc<Ctx>| state.retry(object.as_ref(), error)
        };
        let queue = state.metrics.queue.clone();
        let looping = controller
            .run(reconciler, error_policy, context)
            .for_each(move |result| {
                report(name, &queue, result);
                std::future::ready(())
            });
        futures::join!(synced, looping);
        tracing::error!(controller = name, "controller loop ended");
        runtime.health.stopped(name, "its watch streams ended");
    }
}

/// Wraps a mapper so that the objects it names count as queued.
fn queued<O, K: Watched, I>(
    mapper: impl Fn(O) -> I + Send + Sync + 'static,
    queue: Queue,
) -> impl Fn(O) -> Vec<ObjectRef<K>> + Send + Sync + 'static
where
    I: IntoIterator<Item = ObjectRef<K>>,
{
    move |object| {
        let references: Vec<ObjectRef<K>> = mapper(object).into_iter().collect();
        let now = Instant::now();
        for reference in &references {
            queue.schedule(key_of_ref(reference), now);
        }
        references
    }
}

fn report<K: Watched, E: std::error::Error>(
    name: &'static str,
    queue: &Queue,
    result: Result<(ObjectRef<K>, Action), ControllerError<E, watcher::Error>>,
) {
    match result {
        Ok(_) | Err(ControllerError::ReconcilerFailed(..)) => {}
        // Deleted before its turn came: nothing to do, nothing queued.
        Err(ControllerError::ObjectNotFound(reference)) => {
            let key = match &reference.namespace {
                Some(ns) => format!("{ns}/{}", reference.name),
                None => reference.name.clone(),
            };
            queue.started(&key);
        }
        Err(ControllerError::QueueError(err)) => {
            tracing::warn!(controller = name, error = %err, "watch failed; retrying with backoff");
        }
        Err(ControllerError::RunnerError(err)) => {
            tracing::warn!(controller = name, error = %err, "controller runner error");
        }
    }
}

struct State<F> {
    name: &'static str,
    metrics: ControllerMetrics,
    failures: Failures,
    policy: Policy,
    related: Shared<BoxFuture<'static, ()>>,
    reconcile: F,
}

impl<F> State<F> {
    async fn reconcile<K, Ctx, Fut, E>(
        &self,
        object: Arc<K>,
        context: Arc<Ctx>,
    ) -> Result<Action, E>
    where
        K: Watched,
        F: Fn(Arc<K>, Arc<Ctx>) -> Fut,
        Fut: Future<Output = Result<Next, E>>,
        E: std::error::Error,
    {
        self.related.clone().await;
        let key = key(object.as_ref());
        self.metrics.queue.started(&key);
        let started = Instant::now();
        let result = (self.reconcile)(object, context).await;
        let took = started.elapsed();
        match result {
            Ok(Next::Done) => {
                self.metrics.reconciled(Outcome::Success, took);
                self.failures.reset(&key);
                tracing::debug!(controller = self.name, object = %key, ?took, "reconciled");
                Ok(Action::await_change())
            }
            Ok(Next::After(delay)) => {
                self.metrics.reconciled(Outcome::Requeue, took);
                self.metrics.queue.schedule(key, Instant::now() + delay);
                Ok(Action::requeue(delay))
            }
            Err(err) => {
                self.metrics.reconciled(Outcome::Error, took);
                Err(err)
            }
        }
    }

    /// The error policy: this object's next exponential delay.
    fn retry<K: Watched>(&self, object: &K, error: &dyn std::error::Error) -> Action {
        let key = key(object);
        let delay: Duration = self.failures.failed(&key, &self.policy);
        tracing::warn!(controller = self.name, object = %key, error = %chain(error), retry_in = ?delay, "reconcile failed");
        self.metrics.queue.schedule(key, Instant::now() + delay);
        Action::requeue(delay)
    }
}

/// An error with its causes, each once.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use k3r_reconciler::mock::{self, Recorded};
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use serde_json::{Value, json};

    /// ConfigMaps: an empty list for the first 6 s, then one; every watch
    /// of them ends at once in a 410 (a relist follows). Secrets: every
    /// request fails.
    fn api_whose_secrets_fail(started: tokio::time::Instant) -> impl Fn(&Recorded) -> (u16, Value) {
        move |request| {
            if request.route() == "/api/v1/secrets" {
                return (500, mock::status(500, "InternalError", "etcd is down"));
            }
            if request.path.contains("watch=true") {
                let gone = mock::status(410, "Expired", "too old resource version");
                return (200, json!({"type": "ERROR", "object": gone}));
            }
            let items = if started.elapsed() < Duration::from_secs(6) {
                json!([])
            } else {
                json!([{"metadata": {"name": "a", "namespace": "default", "resourceVersion": "2"}}])
            };
            (
                200,
                json!({"apiVersion": "v1", "kind": "ConfigMapList",
                         "metadata": {"resourceVersion": "2"}, "items": items}),
            )
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_watch_does_not_hold_back_the_others() {
        let started = tokio::time::Instant::now();
        let (client, _api) = mock::client(api_whose_secrets_fail(started));
        let runtime = Runtime::new(client.clone());
        let (seen, mut reconciled) = tokio::sync::mpsc::unbounded_channel();
        let builder = Builder::new(
            "test",
            &runtime,
            Api::<ConfigMap>::all(client.clone()),
            watcher::Config::default(),
        )
        .watches(
            Api::<Secret>::all(client),
            watcher::Config::default(),
            |_: Secret| Vec::<ObjectRef<ConfigMap>>::new(),
        );
        let reconcile = move |object: Arc<ConfigMap>, _: Arc<()>| {
            let _ = seen.send(object.metadata.name.clone());
            async { Ok::<_, std::io::Error>(Next::Done) }
        };
        tokio::spawn(builder.run(reconcile, Arc::new(())));
        let name = tokio::time::timeout(Duration::from_secs(60), reconciled.recv())
            .await
            .expect("reconciled within a minute");
        assert_eq!(name.flatten().as_deref(), Some("a"));
        // The ConfigMap's own watch retries within 5 s (+ jitter) of its
        // last failure, whatever the Secrets' watch does.
        let after = started.elapsed();
        assert!(
            after < Duration::from_secs(13),
            "reconciled after {after:?}"
        );
    }

    #[test]
    fn watches_retry_within_seconds_however_often_they_failed() {
        let mut backoff = watch_backoff();
        let delays: Vec<Duration> = (0..30).map_while(|_| backoff.next()).collect();
        assert_eq!(delays.len(), 30, "retries without end");
        assert!(delays[0] <= Duration::from_millis(500), "{delays:?}");
        // The delay caps at 5 s (jitter may add up to as much again).
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(10)),
            "{delays:?}"
        );
        assert!(delays[29] >= Duration::from_secs(5), "{delays:?}");
    }
}
