//! Reconciler tests against a scripted API server: hooks advance one
//! transition per call and never wait inline; the finalizer and the
//! unmanaged annotation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use k3r_apply::Applier;
use k3r_helm_render::manifest::{Document, Hook};
use k3r_reconciler::mock::{self, MockApi, Recorded};
use k3r_reconciler::{Next, Runtime};
use serde_json::{Value, json};

use crate::hooks::{self, Position, Progress};

/// Objects by path, as a tiny API server keeps them.
type Objects = Arc<Mutex<HashMap<String, Value>>>;

fn resources(group_version: &str, list: &[(&str, &str)]) -> Value {
    json!({"kind": "APIResourceList", "groupVersion": group_version, "resources": list.iter().map(|(name, kind)| json!({
        "name": name, "singularName": "", "namespaced": true, "kind": kind, "verbs": ["get", "patch", "delete"],
    })).collect::<Vec<_>>()})
}

fn cluster() -> (kube::Client, MockApi, Objects) {
    let objects: Objects = Arc::default();
    let store = Arc::clone(&objects);
    let (client, server) = mock::client(move |request: &Recorded| {
        let route = request.route().to_string();
        let mut objects = store.lock().unwrap_or_else(|p| p.into_inner());
        match (request.method.as_str(), route.as_str()) {
            ("GET", "/api/v1") => (200, resources("v1", &[("configmaps", "ConfigMap")])),
            ("GET", "/apis/batch/v1") => (200, resources("batch/v1", &[("jobs", "Job")])),
            ("GET", path) => match objects.get(path) {
                Some(object) => (200, object.clone()),
                None => (404, mock::status(404, "NotFound", "not found")),
            },
            ("PATCH", path) => {
                let mut object = request.body.clone();
                if let Some(existing) = objects.get(path) {
                    object["status"] = existing["status"].clone();
                }
                objects.insert(path.to_string(), object.clone());
                (200, object)
            }
            ("DELETE", path) => match objects.remove(path) {
                Some(_) => (200, mock::status(200, "", "")),
                None => (404, mock::status(404, "NotFound", "not found")),
            },
            _ => (500, mock::status(500, "InternalError", "unexpected")),
        }
    });
    (client, server, objects)
}

fn hook(content: &str, weight: i64, policies: &[&str]) -> Hook {
    Hook {
        document: Document {
            source: "demo/templates/hooks.yaml".into(),
            kind: String::new(),
            name: String::new(),
            content: content.into(),
        },
        events: vec!["pre-install".into()],
        weight,
        delete_policies: policies.iter().map(ToString::to_string).collect(),
    }
}

const JOB: &str = "/apis/batch/v1/namespaces/apps/jobs/migrate";
const TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test]
async fn hooks_advance_one_transition_per_call_and_never_wait_inline() {
    let (client, server, objects) = cluster();
    let applier = Applier::new(client);
    let hooks = [
        hook(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n",
            -5,
            &["hook-succeeded"],
        ),
        hook(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate}\nspec: {}\n",
            0,
            &[],
        ),
    ];
    let list = hooks::objects_for(&applier, &hooks, "pre-install", "apps")
        .await
        .expect("hook objects");
    assert_eq!(list.len(), 2);
    assert!(
        hooks::objects_for(&applier, &hooks, "post-install", "apps")
            .await
            .expect("none")
            .is_empty()
    );
    let mut position = Position::default();
    // A ConfigMap hook is done once created, and deleted (hook-succeeded).
    let progress = hooks::advance(&applier, &list, "pre-install", &mut position, TIMEOUT).await;
    assert!(matches!(progress, Ok(Progress::Advanced)));
    assert_eq!(position.index, 1);
    assert!(
        !objects
            .lock()
            .expect("lock")
            .contains_key("/api/v1/namespaces/apps/configmaps/first")
    );
    // The Job is created; the caller is told to look again, not kept waiting.
    let called = std::time::Instant::now();
    let progress = hooks::advance(&applier, &list, "pre-install", &mut position, TIMEOUT).await;
    assert!(matches!(progress, Ok(Progress::Wait(d)) if d == hooks::POLL));
    assert!(called.elapsed() < Duration::from_secs(1));
    assert!(position.started.is_some());
    assert!(objects.lock().expect("lock").contains_key(JOB));
    // Still running.
    let progress = hooks::advance(&applier, &list, "pre-install", &mut position, TIMEOUT).await;
    assert!(matches!(progress, Ok(Progress::Wait(_))));
    // Complete: the position moves on; before-hook-creation keeps the Job.
    objects.lock().expect("lock").get_mut(JOB).expect("job")["status"] =
        json!({"conditions": [{"type": "Complete", "status": "True"}]});
    let progress = hooks::advance(&applier, &list, "pre-install", &mut position, TIMEOUT).await;
    assert!(matches!(progress, Ok(Progress::Advanced)));
    assert_eq!(
        position,
        Position {
            index: 2,
            started: None
        }
    );
    assert!(objects.lock().expect("lock").contains_key(JOB));
    let progress = hooks::advance(&applier, &list, "pre-install", &mut position, TIMEOUT).await;
    assert!(matches!(progress, Ok(Progress::Done)));
    // Run again (an upgrade): the leftover Job is deleted before creation.
    let mut again = Position {
        index: 1,
        started: None,
    };
    let before = server.lines().len();
    let progress = hooks::advance(&applier, &list, "pre-install", &mut again, TIMEOUT).await;
    assert!(matches!(progress, Ok(Progress::Wait(_))));
    let lines = server.lines()[before..].to_vec();
    assert_eq!(
        lines,
        [
            format!("GET {JOB}"),
            format!("DELETE {JOB}"),
            format!("GET {JOB}"),
            format!("PATCH {JOB}")
        ]
    );
}

#[tokio::test]
async fn a_hook_that_fails_or_outlives_the_timeout_fails_the_event() {
    let (client, _server, objects) = cluster();
    let applier = Applier::new(client);
    let hooks = [hook(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate}\nspec: {}\n",
        0,
        &["hook-failed"],
    )];
    let list = hooks::objects_for(&applier, &hooks, "pre-install", "apps")
        .await
        .expect("hook objects");
    // Created an hour ago, still running: past a 5-minute timeout.
    objects.lock().expect("lock").insert(JOB.into(), json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "apps"}}));
    let mut position = Position {
        index: 0,
        started: Some(SystemTime::now() - Duration::from_secs(3600)),
    };
    let err = hooks::advance(&applier, &list, "pre-install", &mut position, TIMEOUT)
        .await
        .err()
        .expect("timed out");
    assert!(
        err.to_string().contains("pre-install hook demo/templates/hooks.yaml (batch/v1/Job apps/migrate): not finished within the timeout (300s)"),
        "{err}"
    );
    assert!(
        !objects.lock().expect("lock").contains_key(JOB),
        "hook-failed deletes it"
    );
    assert_eq!(position.started, None, "a retry creates it afresh");
    // A Job that failed.
    objects.lock().expect("lock").insert(JOB.into(), json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "apps"},
        "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}}));
    position.started = Some(SystemTime::now());
    let err = hooks::advance(&applier, &list, "pre-install", &mut position, TIMEOUT)
        .await
        .err()
        .expect("failed");
    assert!(
        err.to_string().contains("job failed: BackoffLimitExceeded"),
        "{err}"
    );
}

fn chart(extra: Value) -> Arc<k3r_crds::helmchart::HelmChart> {
    let mut chart = json!({
        "apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
        "metadata": {"name": "demo", "namespace": "kube-system", "generation": 1,
            "annotations": {crate::reconcile::UNMANAGED: "true"}},
        "spec": {"chart": "demo", "repo": "https://charts.example.com"},
    });
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        chart["metadata"][key] = value;
    }
    Arc::new(serde_json::from_value(chart).expect("chart"))
}

/// What the API answers to a finalizer patch.
fn patched() -> Value {
    json!({"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
        "metadata": {"name": "demo", "namespace": "kube-system",
            "annotations": {crate::reconcile::UNMANAGED: "true"},
            "finalizers": [crate::reconcile::FINALIZER]},
        "spec": {}})
}

fn context(client: kube::Client) -> Arc<crate::Context> {
    let runtime = Runtime::new(client);
    let (configs, _writer) = kube::runtime::reflector::store();
    Arc::new(crate::Context::new(
        &runtime,
        runtime.recorder("helm-controller"),
        configs,
    ))
}

#[tokio::test]
async fn an_unmanaged_chart_gets_the_finalizer_and_nothing_else() {
    let (client, server) = mock::client(|_| (200, patched()));
    let next = crate::reconcile::reconcile(chart(json!({})), context(client))
        .await
        .expect("reconcile");
    assert_eq!(next, Next::Done);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{:?}", server.lines());
    assert_eq!(
        requests[0].line(),
        "PATCH /apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts/demo"
    );
    assert_eq!(requests[0].body[1]["path"], "/metadata/finalizers");
    assert_eq!(
        requests[0].body[1]["value"],
        json!([crate::reconcile::FINALIZER])
    );
}

#[tokio::test]
async fn a_deleted_unmanaged_chart_keeps_its_release() {
    let (client, server) = mock::client(|_| (200, patched()));
    let deleting = chart(json!({
        "deletionTimestamp": "2026-01-01T00:00:00Z",
        "finalizers": ["other.example.com/keep", crate::reconcile::FINALIZER],
    }));
    let next = crate::reconcile::reconcile(deleting, context(client))
        .await
        .expect("reconcile");
    assert_eq!(next, Next::Done);
    let requests = server.requests();
    assert_eq!(
        requests.len(),
        1,
        "only the finalizer goes: {:?}",
        server.lines()
    );
    assert_eq!(
        requests[0].body,
        json!([
            {"op": "test", "path": "/metadata/finalizers/1", "value": crate::reconcile::FINALIZER},
            {"op": "remove", "path": "/metadata/finalizers/1"},
        ])
    );
}
