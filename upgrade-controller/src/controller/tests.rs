//! Passes of the Plan controller against a scripted API server.

use super::*;
use k3r_reconciler::mock;
use kube::runtime::reflector;
use serde_json::{Value, json};

struct Caches {
    nodes: reflector::store::Writer<Node>,
    jobs: reflector::store::Writer<Job>,
    pods: reflector::store::Writer<Pod>,
}

fn context(client: kube::Client) -> (Arc<Context>, Caches) {
    let (nodes, node_writer) = reflector::store::<Node>();
    let (jobs, job_writer) = reflector::store::<Job>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let runtime = Runtime::new(client);
    (
        Arc::new(Context::new(
            &runtime,
            nodes,
            jobs,
            pods,
            "cluster-1".into(),
        )),
        Caches {
            nodes: node_writer,
            jobs: job_writer,
            pods: pod_writer,
        },
    )
}

fn add<K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned>(
    writer: &mut reflector::store::Writer<K>,
    value: Value,
) {
    let object: K = serde_json::from_value(value).expect("object");
    writer.apply_watcher_event(&watcher::Event::Apply(object));
}

fn plan_json(spec: Value, status: Value) -> Value {
    let mut full = json!({
        "nodeSelector": {"matchLabels": {"k3r.io/upgrade": "yes"}},
        "concurrency": 1, "version": "v2.0.0+k3r1", "cordon": true,
        "serviceAccountName": "system-upgrade",
        "upgrade": {"image": "docker.io/k3r/upgrade"},
    });
    if let (Some(full), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
        full.extend(extra.clone());
    }
    json!({
        "apiVersion": "upgrade.cattle.io/v1", "kind": "Plan",
        "metadata": {"name": "k3r", "namespace": "system-upgrade", "uid": "plan-uid",
                     "finalizers": [FINALIZER]},
        "spec": full, "status": status,
    })
}

fn plan(spec: Value, status: Value) -> Plan {
    serde_json::from_value(plan_json(spec, status)).expect("plan")
}

/// Answers as the API server would: Secrets absent, writes echoed (a
/// Plan's as the whole Plan).
fn api(request: &mock::Recorded) -> (u16, Value) {
    let route = request.route();
    if route.contains("/secrets/") {
        return (404, mock::status(404, "NotFound", "secrets not found"));
    }
    if route.contains("/plans/") {
        return (200, plan_json(json!({}), json!({})));
    }
    if let Some(name) = route.strip_prefix("/api/v1/nodes/") {
        return (200, node(name, json!({}), json!({})));
    }
    (200, request.body.clone())
}

fn node(name: &str, labels: Value, extra: Value) -> Value {
    let mut node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "labels": labels},
    });
    if let (Some(node), Some(extra)) = (node.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            match (node.get_mut(key), value) {
                (Some(Value::Object(into)), Value::Object(more)) => into.extend(more.clone()),
                _ => {
                    node.insert(key.clone(), value.clone());
                }
            }
        }
    }
    node
}

fn selected(name: &str) -> Value {
    json!({"kubernetes.io/hostname": name, "k3r.io/upgrade": "yes"})
}

fn lines(server: &mock::MockApi) -> Vec<String> {
    server
        .lines()
        .into_iter()
        .filter(|l| !l.contains("/events"))
        .collect()
}

fn status_patch(server: &mock::MockApi) -> Value {
    server
        .requests()
        .into_iter()
        .find(|r| r.route().ends_with("/plans/k3r/status"))
        .map(|r| r.body["status"].clone())
        .expect("a status patch")
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .expect("condition")
}

fn reasons(server: &mock::MockApi) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter(|r| r.route().contains("/events"))
        .map(|r| r.body["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn hash(plan: &Plan) -> String {
    crate::suc::latest_hash(plan, "v2.0.0-k3r1", &[])
}

#[tokio::test]
async fn a_channel_that_does_not_redirect_makes_the_plan_invalid() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/v1-release/channels/stable",
        listener.local_addr().expect("address")
    );
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 4096];
        let _ = stream.read(&mut buf).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .await;
    });
    let (client, server) = mock::client(api);
    let (ctx, mut caches) = context(client);
    add(&mut caches.nodes, node("n1", selected("n1"), json!({})));
    let p = plan(json!({"version": null, "channel": url}), json!({}));
    reconcile(Arc::new(p), ctx).await.expect("reconcile");
    assert!(
        !lines(&server).iter().any(|l| l.contains("/jobs")),
        "no Job: {:?}",
        lines(&server)
    );
    let status = status_patch(&server);
    let validated = condition(&status, "Validated");
    assert_eq!(validated["status"], "False");
    let expected = format!("channel {url} does not redirect to a version: it answered 200 OK");
    assert_eq!(validated["message"], expected.as_str());
    assert_eq!(condition(&status, "LatestResolved")["status"], "False");
    assert_eq!(status["lastError"], expected.as_str());
    assert_eq!(reasons(&server), ["ResolveFailed", "ValidateFailed"]);
}

#[tokio::test]
async fn an_invalid_plan_gets_validated_false_and_touches_nothing() {
    let (client, server) = mock::client(api);
    let (ctx, mut caches) = context(client);
    add(&mut caches.nodes, node("n1", selected("n1"), json!({})));
    let p = plan(json!({"secrets": [{"name": "creds"}]}), json!({}));
    reconcile(Arc::new(p), ctx).await.expect("reconcile");
    assert_eq!(
        lines(&server),
        [
            "GET /api/v1/namespaces/system-upgrade/secrets/creds",
            "PATCH /apis/upgrade.cattle.io/v1/namespaces/system-upgrade/plans/k3r/status",
        ]
    );
    let status = status_patch(&server);
    let validated = condition(&status, "Validated");
    assert_eq!(validated["status"], "False");
    assert_eq!(validated["message"], "secrets \"creds\" not found");
    assert_eq!(condition(&status, "Complete")["reason"], "NotReady");
    assert_eq!(status["lastError"], "secrets \"creds\" not found");
    assert_eq!(reasons(&server), ["ValidateFailed"]);
}

#[tokio::test]
async fn a_new_plan_creates_a_paused_job_for_one_node_and_records_it_applying() {
    let (client, server) = mock::client(api);
    let (ctx, mut caches) = context(client);
    for name in ["n1", "n2"] {
        add(&mut caches.nodes, node(name, selected(name), json!({})));
    }
    add(
        &mut caches.nodes,
        node("n3", json!({"kubernetes.io/hostname": "n3"}), json!({})),
    );
    let p = plan(json!({}), json!({}));
    let hash = hash(&p);
    reconcile(Arc::new(p), ctx).await.expect("reconcile");
    let calls = lines(&server);
    assert_eq!(
        calls,
        [
            "POST /apis/batch/v1/namespaces/system-upgrade/jobs",
            "PATCH /apis/upgrade.cattle.io/v1/namespaces/system-upgrade/plans/k3r/status",
        ]
    );
    let requests = server.requests();
    let job = &requests
        .iter()
        .find(|r| r.method == "POST" && r.route().ends_with("/jobs"))
        .expect("job")
        .body;
    assert_eq!(job["spec"]["parallelism"], 0, "paused until cordoned");
    assert_eq!(
        job["metadata"]["labels"]["upgrade.cattle.io/controller"],
        CONTROLLER
    );
    assert_eq!(
        job["metadata"]["labels"]["upgrade.cattle.io/version"],
        "v2.0.0-k3r1"
    );
    let node = job["metadata"]["labels"]["upgrade.cattle.io/node"]
        .as_str()
        .expect("node");
    assert_eq!(
        job["metadata"]["name"],
        crate::suc::job_name("k3r", node, &hash)
    );
    let status = status_patch(&server);
    assert_eq!(status["applying"], json!([node]));
    assert_eq!(status["latestVersion"], "v2.0.0-k3r1");
    assert_eq!(status["latestHash"], hash.as_str());
    assert_eq!(status["nodesApplying"], 1);
    assert_eq!(status["nodesDone"], 0);
    assert_eq!(condition(&status, "Complete")["reason"], "SyncJob");
    assert_eq!(reasons(&server), ["Validated", "Resolved", "SyncJob"]);
}

fn job_json(p: &Plan, node: &str, parallelism: i32, status: Value) -> Value {
    let hash = hash(p);
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": crate::suc::job_name("k3r", node, &hash), "namespace": "system-upgrade",
                     "labels": {"upgrade.cattle.io/controller": CONTROLLER, "upgrade.cattle.io/plan": "k3r",
                                "upgrade.cattle.io/node": node, "upgrade.cattle.io/version": "v2.0.0-k3r1",
                                "plan.upgrade.cattle.io/k3r": hash}},
        "spec": {"parallelism": parallelism, "ttlSecondsAfterFinished": 900, "template": {}},
        "status": status,
    })
}

fn applying_status(p: &Plan, node: &str) -> Value {
    json!({"applying": [node], "latestVersion": "v2.0.0-k3r1", "latestHash": hash(p), "nodesApplying": 1,
           "conditions": [
               {"type": "Validated", "status": "True", "reason": "PlanIsValid", "message": ""},
               {"type": "LatestResolved", "status": "True", "reason": "Version", "message": ""},
               {"type": "Complete", "status": "False", "reason": "SyncJob", "message": ""}]})
}

#[tokio::test]
async fn in_its_turn_the_node_is_cordoned_then_the_job_runs() {
    let (client, server) = mock::client(api);
    let (ctx, mut caches) = context(client);
    add(&mut caches.nodes, node("n1", selected("n1"), json!({})));
    let bare = plan(json!({}), json!({}));
    let p = plan(json!({}), applying_status(&bare, "n1"));
    add(&mut caches.jobs, job_json(&p, "n1", 0, json!({})));
    reconcile(Arc::new(p), ctx).await.expect("reconcile");
    let calls = lines(&server);
    assert_eq!(
        calls,
        [
            "PATCH /api/v1/nodes/n1",
            format!(
                "PATCH /apis/batch/v1/namespaces/system-upgrade/jobs/{}",
                crate::suc::job_name("k3r", "n1", &hash(&bare))
            )
            .as_str(),
        ],
        "nothing else changed, so no status write"
    );
    let requests = server.requests();
    assert_eq!(
        requests[0].body,
        json!({"metadata": {"annotations": {"upgrade.k3r.io/cordoned-by": "system-upgrade/k3r"}},
               "spec": {"unschedulable": true}})
    );
    assert_eq!(requests[1].body, json!({"spec": {"parallelism": 1}}));
}

/// A Job with a prepare step and its gate (SUC's agent Plan shape).
fn gated_job_json(p: &Plan, node: &str, parallelism: i32) -> Value {
    let mut job = job_json(p, node, parallelism, json!({}));
    job["metadata"]["uid"] = json!("job-uid");
    job["spec"]["template"] = json!({"spec": {"containers": [], "initContainers": [
        {"name": "prepare", "image": "docker.io/k3r/upgrade"},
        {"name": "cordon", "image": crate::gate::IMAGE}]}});
    job
}

fn gated_pod(prepare: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "apply-pod", "namespace": "system-upgrade",
                        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "job-uid"}]},
           "status": {"initContainerStatuses": [{"name": "prepare", "image": "i", "imageID": "", "ready": false,
                                                 "restartCount": 0, "state": prepare}]}})
}

#[tokio::test]
async fn a_prepare_step_runs_before_the_cordon_then_the_gate_opens() {
    let prepare =
        json!({"prepare": {"image": "docker.io/k3r/upgrade", "args": ["prepare", "server"]}});
    let bare = plan(prepare.clone(), json!({}));
    let job_path = format!(
        "PATCH /apis/batch/v1/namespaces/system-upgrade/jobs/{}",
        crate::suc::job_name("k3r", "n1", &hash(&bare))
    );
    // In its turn: the Job runs at once, the node stays schedulable.
    let (client, server) = mock::client(api);
    let (ctx, mut caches) = context(client);
    add(&mut caches.nodes, node("n1", selected("n1"), json!({})));
    let p = plan(prepare.clone(), applying_status(&bare, "n1"));
    add(&mut caches.jobs, gated_job_json(&p, "n1", 0));
    reconcile(Arc::new(p.clone()), ctx)
        .await
        .expect("reconcile");
    assert_eq!(lines(&server), [job_path.as_str()]);
    // Running, prepare still at work: nothing.
    let (client, server) = mock::client(api);
    let (ctx, mut caches) = context(client);
    add(&mut caches.nodes, node("n1", selected("n1"), json!({})));
    add(&mut caches.jobs, gated_job_json(&p, "n1", 1));
    add(&mut caches.pods, gated_pod(json!({"running": {}})));
    reconcile(Arc::new(p.clone()), Arc::clone(&ctx))
        .await
        .expect("reconcile");
    assert!(lines(&server).is_empty(), "{:?}", lines(&server));
    // Prepare done: cordoned, then the gate opens for this Job.
    add(
        &mut caches.pods,
        gated_pod(json!({"terminated": {"exitCode": 0}})),
    );
    reconcile(Arc::new(p.clone()), ctx)
        .await
        .expect("reconcile");
    let requests = server.requests();
    let patches: Vec<&mock::Recorded> = requests
        .iter()
        .filter(|r| r.route() == "/api/v1/nodes/n1")
        .collect();
    assert_eq!(patches.len(), 2, "{:?}", lines(&server));
    assert_eq!(patches[0].body["spec"]["unschedulable"], true);
    assert_eq!(
        patches[1].body,
        json!({"metadata": {"annotations": {crate::gate::DRAINED: crate::suc::job_name("k3r", "n1", &hash(&bare))}}})
    );
    // Open: nothing more until the Job finishes.
    let (client, server) = mock::client(api);
    let (ctx, mut caches) = context(client);
    let marked = json!({"metadata": {"annotations": {
        crate::gate::DRAINED: crate::suc::job_name("k3r", "n1", &hash(&bare)),
        "upgrade.k3r.io/cordoned-by": "system-upgrade/k3r"}},
        "spec": {"unschedulable": true}});
    add(&mut caches.nodes, node("n1", selected("n1"), marked));
    add(&mut caches.jobs, gated_job_json(&p, "n1", 1));
    add(
        &mut caches.pods,
        gated_pod(json!({"terminated": {"exitCode": 0}})),
    );
    reconcile(Arc::new(p), ctx).await.expect("reconcile");
    assert!(lines(&server).is_empty(), "{:?}", lines(&server));
}

#[tokio::test]
async fn a_completed_job_labels_its_node_and_uncordons_only_what_the_plan_cordoned() {
    let (client, server) = mock::client(api);
    let (ctx, mut caches) = context(client);
    let cordoned = json!({"metadata": {"annotations": {"upgrade.k3r.io/cordoned-by": "system-upgrade/k3r"}},
                          "spec": {"unschedulable": true}});
    add(&mut caches.nodes, node("n1", selected("n1"), cordoned));
    // Cordoned by someone else: never uncordoned by the Plan (SUC#341).
    add(
        &mut caches.nodes,
        node(
            "n2",
            selected("n2"),
            json!({"spec": {"unschedulable": true}}),
        ),
    );
    let bare = plan(
        json!({"postCompleteLabels": {"k3r.io/version": "$(LATEST_VERSION)"}}),
        json!({}),
    );
    let p = plan(
        json!({"postCompleteLabels": {"k3r.io/version": "$(LATEST_VERSION)"}}),
        applying_status(&bare, "n1"),
    );
    let done = json!({"conditions": [{"type": "Complete", "status": "True",
                                      "lastTransitionTime": k3r_reconciler::conditions::now()}]});
    add(&mut caches.jobs, job_json(&p, "n1", 1, done));
    reconcile(Arc::new(p), ctx).await.expect("reconcile");
    let requests = server.requests();
    let node_patches: Vec<&mock::Recorded> = requests
        .iter()
        .filter(|r| r.route().starts_with("/api/v1/nodes/"))
        .collect();
    assert_eq!(node_patches.len(), 2, "{:?}", lines(&server));
    assert_eq!(node_patches[0].route(), "/api/v1/nodes/n1");
    assert_eq!(
        node_patches[0].body,
        json!({"metadata": {"annotations": {"upgrade.k3r.io/cordoned-by": null, "upgrade.k3r.io/drained-for": null}}, "spec": {"unschedulable": null}})
    );
    assert_eq!(
        node_patches[1].body,
        json!({"metadata": {"labels": {"k3r.io/version": "v2.0.0-k3r1", "plan.upgrade.cattle.io/k3r": hash(&bare)}}})
    );
    assert!(reasons(&server).contains(&"JobComplete".to_string()));
    // n1 stays this pass's node until the cache shows its label; then the
    // next pass moves on to n2.
    assert!(!lines(&server).iter().any(|l| l.starts_with("POST")));
    let (client, server) = mock::client(api);
    let (ctx, mut caches) = context(client);
    let mut labelled = selected("n1");
    labelled["plan.upgrade.cattle.io/k3r"] = json!(hash(&bare));
    add(&mut caches.nodes, node("n1", labelled, json!({})));
    add(&mut caches.nodes, node("n2", selected("n2"), json!({})));
    let p = plan(json!({}), applying_status(&bare, "n1"));
    reconcile(Arc::new(p), ctx).await.expect("reconcile");
    let posted = server.requests();
    let job = posted
        .iter()
        .find(|r| r.method == "POST")
        .expect("n2's Job");
    assert_eq!(
        job.body["metadata"]["labels"]["upgrade.cattle.io/node"],
        "n2"
    );
    let status = status_patch(&server);
    assert_eq!(status["applying"], json!(["n2"]));
    assert_eq!(status["nodesDone"], 1);
}

#[tokio::test]
async fn a_failed_job_is_reported_and_releases_its_node() {
    let (client, server) = mock::client(api);
    let (ctx, mut caches) = context(client);
    let cordoned = json!({"metadata": {"annotations": {"upgrade.k3r.io/cordoned-by": "system-upgrade/k3r"}},
                          "spec": {"unschedulable": true}});
    add(&mut caches.nodes, node("n1", selected("n1"), cordoned));
    add(&mut caches.nodes, node("n2", selected("n2"), json!({})));
    let bare = plan(json!({}), json!({}));
    let p = plan(json!({}), applying_status(&bare, "n1"));
    let failed = json!({"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                        "message": "Job has reached the specified backoff limit",
                                        "lastTransitionTime": k3r_reconciler::conditions::now()}]});
    add(&mut caches.jobs, job_json(&p, "n1", 1, failed));
    let next = reconcile(Arc::new(p), ctx).await.expect("reconcile");
    assert!(
        matches!(next, Next::After(_)),
        "the failed Job is kept for its TTL"
    );
    let calls = lines(&server);
    assert!(
        calls.contains(&"PATCH /api/v1/nodes/n1".to_string()),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.starts_with("POST")),
        "no other node is started: {calls:?}"
    );
    let status = status_patch(&server);
    let complete = condition(&status, "Complete");
    assert_eq!(complete["reason"], "JobFailed");
    assert!(
        complete["message"]
            .as_str()
            .is_some_and(|m| m.contains("failed on Node n1: BackoffLimitExceeded"))
    );
    assert_eq!(status["nodesFailed"], 1);
    assert_eq!(status["lastError"], complete["message"]);
    assert_eq!(reasons(&server), ["JobFailed"]);
}

#[tokio::test]
async fn outside_its_window_a_plan_waits_without_jobs() {
    let (client, server) = mock::client(api);
    let (ctx, mut caches) = context(client);
    add(&mut caches.nodes, node("n1", selected("n1"), json!({})));
    // A one-minute window on every day, twelve hours from now.
    let now = k8s_openapi::jiff::Timestamp::now().to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC);
    let hour = (now.hour() + 12) % 24;
    let window = json!({"days": ["0", "1", "2", "3", "4", "5", "6"],
                        "startTime": format!("{hour:02}:00"), "endTime": format!("{hour:02}:01")});
    let p = plan(json!({"window": window}), json!({}));
    let next = reconcile(Arc::new(p), ctx).await.expect("reconcile");
    let Next::After(wait) = next else {
        panic!("{next:?}")
    };
    assert!(
        wait > std::time::Duration::from_secs(10 * 3600)
            && wait < std::time::Duration::from_secs(13 * 3600),
        "{wait:?}"
    );
    assert!(!lines(&server).iter().any(|l| l.starts_with("POST")));
    let status = status_patch(&server);
    assert_eq!(condition(&status, "Complete")["reason"], "Waiting");
    assert_eq!(status["applying"], Value::Null);
}

#[tokio::test]
async fn deleting_a_plan_removes_its_jobs_and_uncordons_its_nodes_only() {
    let (client, server) = mock::client(api);
    let (ctx, mut caches) = context(client);
    let ours = json!({"metadata": {"annotations": {"upgrade.k3r.io/cordoned-by": "system-upgrade/k3r"}},
                      "spec": {"unschedulable": true}});
    add(&mut caches.nodes, node("n1", selected("n1"), ours));
    add(
        &mut caches.nodes,
        node(
            "n2",
            selected("n2"),
            json!({"spec": {"unschedulable": true}}),
        ),
    );
    let mut value = plan_json(json!({}), json!({}));
    value["metadata"]["deletionTimestamp"] = json!("2026-11-30T10:00:00Z");
    let p: Plan = serde_json::from_value(value).expect("plan");
    add(&mut caches.jobs, job_json(&p, "n1", 1, json!({})));
    let next = reconcile(Arc::new(p.clone()), ctx)
        .await
        .expect("reconcile");
    assert_eq!(next, Next::Done);
    assert_eq!(
        lines(&server),
        [
            format!(
                "DELETE /apis/batch/v1/namespaces/system-upgrade/jobs/{}",
                crate::suc::job_name("k3r", "n1", &hash(&p))
            ),
            "PATCH /api/v1/nodes/n1".to_string(),
            "PATCH /apis/upgrade.cattle.io/v1/namespaces/system-upgrade/plans/k3r".to_string(),
        ]
    );
}

#[tokio::test]
async fn a_node_down_past_the_timeout_is_skipped_and_reported() {
    let (client, server) = mock::client(api);
    let (ctx, mut caches) = context(client);
    let down = json!({"status": {"conditions": [
        {"type": "Ready", "status": "Unknown", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    add(&mut caches.nodes, node("n1", selected("n1"), down.clone()));
    add(&mut caches.nodes, node("n2", selected("n2"), json!({})));
    let p = plan(json!({}), json!({}));
    reconcile(Arc::new(p), ctx).await.expect("reconcile");
    let requests = server.requests();
    let job = requests
        .iter()
        .find(|r| r.method == "POST" && r.route().ends_with("/jobs"))
        .expect("a Job for the node that is up");
    assert_eq!(
        job.body["metadata"]["labels"]["upgrade.cattle.io/node"],
        "n2"
    );
    let status = status_patch(&server);
    assert_eq!(status["skipped"], json!(["n1"]));
    assert_eq!(status["applying"], json!(["n2"]));
    assert!(reasons(&server).contains(&"NodeSkipped".to_string()));

    // Only the down node left: the Plan says so instead of Complete.
    let (client, server) = mock::client(api);
    let (ctx, mut caches) = context(client);
    add(&mut caches.nodes, node("n1", selected("n1"), down));
    let mut labelled = selected("n2");
    let bare = plan(json!({}), json!({}));
    labelled["plan.upgrade.cattle.io/k3r"] = json!(hash(&bare));
    add(&mut caches.nodes, node("n2", labelled, json!({})));
    reconcile(Arc::new(bare), ctx).await.expect("reconcile");
    let status = status_patch(&server);
    let complete = condition(&status, "Complete");
    assert_eq!(
        (complete["status"].as_str(), complete["reason"].as_str()),
        (Some("False"), Some("NodesDown"))
    );
    assert_eq!(status["nodesDone"], 1);
}
