use super::*;

fn job(spec: serde_json::Value, status: serde_json::Value) -> Job {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "apply-p-on-n1-with-h", "namespace": "system-upgrade",
                     "labels": {"upgrade.cattle.io/plan": "p", "upgrade.cattle.io/node": "n1",
                                "upgrade.cattle.io/version": "v2", "plan.upgrade.cattle.io/p": "h"},
                     "annotations": {"upgrade.cattle.io/ttl-seconds-after-finished": "120"}},
        "spec": spec, "status": status,
    }))
    .expect("job")
}

#[test]
fn states_follow_the_jobs_conditions_and_parallelism() {
    let paused = job(
        serde_json::json!({"parallelism": 0, "template": {}}),
        serde_json::json!({}),
    );
    assert_eq!(state(&paused), JobState::Paused);
    let running = job(
        serde_json::json!({"parallelism": 1, "template": {}}),
        serde_json::json!({}),
    );
    assert_eq!(state(&running), JobState::Running);
    let done = job(
        serde_json::json!({"template": {}}),
        serde_json::json!({"conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": "2026-11-30T10:00:00Z"},
            {"type": "Complete", "status": "True", "lastTransitionTime": "2026-11-30T10:00:01Z"}]}),
    );
    assert_eq!(
        state(&done),
        JobState::Complete {
            at: "2026-11-30T10:00:01Z".parse().expect("time")
        }
    );
    let failed = job(
        serde_json::json!({"template": {}}),
        serde_json::json!({"conditions": [{"type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit",
            "lastTransitionTime": "2026-11-30T10:00:00Z"}]}),
    );
    match state(&failed) {
        JobState::Failed { message, .. } => assert_eq!(
            message,
            "Job system-upgrade/apply-p-on-n1-with-h failed on Node n1: BackoffLimitExceeded: Job has reached the specified backoff limit"
        ),
        other => panic!("{other:?}"),
    }
    let l = labels(&failed).expect("labels");
    assert_eq!(
        (l.plan, l.node, l.version, l.hash),
        ("p", "n1", "v2", Some("h"))
    );
}

#[test]
fn ttl_prefers_the_spec_then_the_annotation() {
    let from_annotation = job(serde_json::json!({"template": {}}), serde_json::json!({}));
    assert_eq!(ttl(&from_annotation), Duration::from_secs(120));
    let from_spec = job(
        serde_json::json!({"ttlSecondsAfterFinished": 900, "template": {}}),
        serde_json::json!({}),
    );
    assert_eq!(ttl(&from_spec), Duration::from_secs(900));
    let t0: Timestamp = "2026-11-30T10:00:00Z".parse().expect("time");
    let later: Timestamp = "2026-11-30T10:01:00Z".parse().expect("time");
    assert_eq!(
        remaining(t0, Duration::from_secs(120), later),
        Some(Duration::from_secs(60))
    );
    assert_eq!(remaining(t0, Duration::from_secs(60), later), None);
}

#[test]
fn labels_expand_like_kubernetes_env() {
    let vars = BTreeMap::from([("LATEST_VERSION", "v2"), ("LATEST_HASH", "abc")]);
    assert_eq!(expand("$(LATEST_VERSION)", &vars), "v2");
    assert_eq!(expand("k3s-$(LATEST_HASH)-x", &vars), "k3s-abc-x");
    assert_eq!(expand("$$(LATEST_VERSION)", &vars), "$(LATEST_VERSION)");
    assert_eq!(expand("$(OTHER) $ $(", &vars), "$(OTHER) $ $(");
}
