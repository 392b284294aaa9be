use std::sync::Arc;

use k3r_reconciler::mock::{self, MockApi};
use serde_json::{Value, json};

use super::*;

fn core_v1() -> Value {
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": [
        {"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap", "verbs": ["get", "patch", "delete"]},
    ]})
}

fn context(dir: &Path, disabled: &[&str]) -> (Arc<Context>, MockApi) {
    let (client, server) =
        mock::client(
            |request| match (request.method.as_str(), request.path.as_str()) {
                ("GET", "/api/v1") => (200, core_v1()),
                (_, path) if path.starts_with("/apis/events.k8s.io") => (201, request.body.clone()),
                ("PATCH", path) if path.contains("/addons/") => (200, addon("demo", "", None)),
                ("PATCH", _) => (200, request.body.clone()),
                ("DELETE", _) => (200, mock::status(200, "", "")),
                _ => (500, mock::status(500, "InternalError", "unexpected")),
            },
        );
    let runtime = Runtime::new(client);
    let config = Config {
        manifests_dir: dir.to_path_buf(),
        disabled: disabled.iter().map(ToString::to_string).collect(),
    };
    (Arc::new(Context::new(&runtime, config)), server)
}

fn addon(name: &str, source: &str, status: Option<Value>) -> Value {
    let mut addon = json!({
        "apiVersion": "k3s.cattle.io/v1", "kind": "Addon",
        "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1},
        "spec": {"source": source, "checksum": ""},
    });
    if let Some(status) = status {
        addon["status"] = status;
    }
    addon
}

fn parse(value: Value) -> Arc<Addon> {
    Arc::new(serde_json::from_value(value).expect("addon"))
}

/// Requests other than Events (those are best effort).
fn calls(server: &MockApi) -> Vec<String> {
    server
        .lines()
        .into_iter()
        .filter(|l| !l.contains("events.k8s.io"))
        .collect()
}

#[tokio::test]
async fn a_new_file_is_applied_and_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("demo.yaml");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n",
    )
    .expect("write");
    let (context, server) = context(dir.path(), &[]);
    let next = reconcile(
        parse(addon("demo", &path.display().to_string(), None)),
        context,
    )
    .await
    .expect("reconcile");
    assert_eq!(next, Next::Done);
    assert_eq!(
        calls(&server),
        [
            "GET /api/v1",
            "PATCH /api/v1/namespaces/default/configmaps/one",
            "PATCH /apis/k3s.cattle.io/v1/namespaces/kube-system/addons/demo",
            "PATCH /apis/k3s.cattle.io/v1/namespaces/kube-system/addons/demo/status",
        ]
    );
    let requests = server.requests();
    let spec = requests
        .iter()
        .find(|r| r.route().ends_with("/addons/demo"))
        .expect("spec patch");
    assert_eq!(
        spec.body["spec"]["checksum"],
        checksum(&std::fs::read(&path).expect("read"))
    );
    let status = requests
        .iter()
        .find(|r| r.route().ends_with("/addons/demo/status"))
        .expect("status");
    assert_eq!(
        status.body["status"]["appliedObjects"],
        json!(["v1/ConfigMap default/one"])
    );
    assert_eq!(
        status.body["status"]["conditions"][0]["reason"],
        "AppliedManifest"
    );
    let events: Vec<String> = requests
        .iter()
        .filter(|r| r.path.contains("events.k8s.io"))
        .map(|r| r.body["reason"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(events, ["ApplyingManifest", "AppliedManifest"]);
}

#[tokio::test]
async fn an_applied_file_is_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("demo.yaml");
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n";
    std::fs::write(&path, text).expect("write");
    let (context, server) = context(dir.path(), &[]);
    let mut object = addon(
        "demo",
        &path.display().to_string(),
        Some(json!({
            "conditions": [{"type": "Applied", "status": "True", "reason": "AppliedManifest"}],
            "appliedObjects": ["v1/ConfigMap default/one"],
        })),
    );
    object["spec"]["checksum"] = json!(checksum(text.as_bytes()));
    assert_eq!(
        reconcile(parse(object), context).await.expect("reconcile"),
        Next::Done
    );
    assert!(server.lines().is_empty(), "{:?}", server.lines());
}

#[tokio::test]
async fn a_parse_error_names_the_line_and_applies_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("demo.yaml");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\ndata: [oops\n",
    )
    .expect("write");
    let (context, server) = context(dir.path(), &[]);
    let next = reconcile(
        parse(addon("demo", &path.display().to_string(), None)),
        context,
    )
    .await
    .expect("a parse error is the file's problem, not a retry");
    assert_eq!(next, Next::Done);
    assert_eq!(
        calls(&server),
        ["PATCH /apis/k3s.cattle.io/v1/namespaces/kube-system/addons/demo/status"]
    );
    let requests = server.requests();
    let status = &requests
        .iter()
        .find(|r| r.route().ends_with("/status"))
        .expect("status")
        .body["status"];
    assert_eq!(status["conditions"][0]["status"], "False");
    assert_eq!(status["conditions"][0]["reason"], "ParseManifestFailed");
    let message = status["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("demo.yaml: line 4"), "{message}");
}

#[tokio::test]
async fn a_disabled_addon_takes_its_objects_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (context, server) = context(dir.path(), &["demo"]);
    let object = addon(
        "demo",
        &dir.path().join("demo.yaml").display().to_string(),
        Some(json!({
            "appliedObjects": ["v1/ConfigMap default/one", "v1/ConfigMap kube-system/two"],
        })),
    );
    assert_eq!(
        reconcile(parse(object), context).await.expect("reconcile"),
        Next::Done
    );
    assert_eq!(
        calls(&server),
        [
            "GET /api/v1",
            "DELETE /api/v1/namespaces/kube-system/configmaps/two",
            "DELETE /api/v1/namespaces/default/configmaps/one",
            "DELETE /apis/k3s.cattle.io/v1/namespaces/kube-system/addons/demo",
        ]
    );
}
