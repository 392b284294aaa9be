use k3r_reconciler::mock;
use serde_json::{Value, json};

use super::*;

fn core_v1() -> Value {
    json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1",
        "resources": [
            {"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap",
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
            {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace",
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
        ],
    })
}

fn api() -> (Applier, mock::MockApi) {
    let (client, server) =
        mock::client(
            |request| match (request.method.as_str(), request.path.as_str()) {
                ("GET", "/api/v1") => (200, core_v1()),
                ("GET", path) if path.starts_with("/apis/") => (
                    404,
                    mock::status(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    ),
                ),
                ("PATCH", _) => (200, request.body.clone()),
                ("DELETE", path) if path.contains("/gone") => {
                    (404, mock::status(404, "NotFound", "gone"))
                }
                ("DELETE", _) => (200, mock::status(200, "", "")),
                _ => (500, mock::status(500, "InternalError", "unexpected")),
            },
        );
    (Applier::new(client), server)
}

fn reference(text: &str) -> ObjectRef {
    ObjectRef::parse(text).expect("reference")
}

#[tokio::test]
async fn applies_in_order_and_prunes_only_what_is_no_longer_declared() {
    let (applier, server) = api();
    let objects = parse_manifest(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata: {name: ns1, namespace: ignored}\n",
    )
    .expect("manifest");
    // An older inventory recorded `a` without its namespace: still `a`.
    let previous = [
        reference("v1/ConfigMap a"),
        reference("v1/ConfigMap default/b"),
        reference("v1/ConfigMap default/gone"),
        reference("example.com/v1/Widget w"),
    ];
    let options = Options {
        manager: "k3r-test",
        force: true,
    };
    let inventory = applier
        .apply_and_prune(&objects, &previous, "default", &options)
        .await
        .expect("apply");
    assert_eq!(
        inventory
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["v1/ConfigMap default/a", "v1/Namespace ns1"]
    );
    let lines = server.lines();
    assert_eq!(
        lines,
        [
            "GET /api/v1",
            "PATCH /api/v1/namespaces/default/configmaps/a",
            "PATCH /api/v1/namespaces/ns1",
            "GET /apis/example.com/v1",
            "DELETE /api/v1/namespaces/default/configmaps/gone",
            "DELETE /api/v1/namespaces/default/configmaps/b",
        ],
        "one discovery request per group version; b pruned, a kept, an unserved kind skipped"
    );
    let requests = server.requests();
    assert!(
        requests[1].path.contains("fieldManager=k3r-test")
            && requests[1].path.contains("force=true")
    );
    assert_eq!(requests[1].body["metadata"]["namespace"], "default");
    assert!(
        requests[2].body["metadata"].get("namespace").is_none(),
        "cluster-scoped"
    );
}

#[tokio::test]
async fn keep_holds_objects_back_and_failures_name_the_object() {
    let (applier, server) = api();
    let pruned = applier
        .prune(
            &[
                reference("v1/ConfigMap x/keep-me"),
                reference("v1/ConfigMap x/drop"),
            ],
            &[],
            "default",
            |r| r.name == "keep-me",
        )
        .await
        .expect("prune");
    assert_eq!(pruned, [reference("v1/ConfigMap x/drop")]);
    assert!(!server.lines().iter().any(|l| l.contains("keep-me")));
    let err = applier
        .apply(
            &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
            &Options {
                manager: "m",
                force: false,
            },
        )
        .await
        .expect_err("unserved");
    assert_eq!(
        err.to_string(),
        "the cluster does not serve example.com/v1 Widget"
    );
}
