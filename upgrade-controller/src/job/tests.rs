use serde_json::json;

use super::*;

/// SUC's example agent plan for k3s (examples/k3s-upgrade.yaml), with a
/// secret and a volume added.
fn agent_plan() -> Plan {
    serde_json::from_value(json!({
        "apiVersion": "upgrade.cattle.io/v1", "kind": "Plan",
        "metadata": {"name": "k3s-agent", "namespace": "system-upgrade",
                     "annotations": {"team": "ops", "upgrade.cattle.io/digest": "spec.upgrade.envs"}},
        "spec": {
            "concurrency": 2,
            "nodeSelector": {"matchExpressions": [
                {"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"}]},
            "serviceAccountName": "system-upgrade",
            "secrets": [{"name": "k3s-env", "path": "env"}],
            "prepare": {"image": "rancher/k3s-upgrade", "args": ["prepare", "k3s-server"]},
            "drain": {"force": true, "skipWaitForDeleteTimeout": 60},
            "upgrade": {"image": "rancher/k3s-upgrade",
                        "volumes": [{"name": "data", "source": "/var/lib/x", "destination": "/data"}]},
            "version": "v1.35.8+k3s1",
        },
    }))
    .expect("plan")
}

fn worker() -> Node {
    serde_json::from_value(json!({"metadata": {"name": "worker-1.lan",
        "labels": {"kubernetes.io/hostname": "worker-1"}}}))
    .expect("node")
}

fn input(applying: bool) -> JobInput<'static> {
    JobInput {
        controller: "system-upgrade-controller",
        latest_version: "v1.35.8-k3s1",
        latest_hash: "abc123",
        applying,
        post_complete_delay: None,
    }
}

#[test]
fn the_job_is_shaped_as_sucs() {
    let job = new_job(&agent_plan(), &worker(), &input(false));
    assert_eq!(
        job.metadata.name.as_deref(),
        Some("apply-k3s-agent-on-worker-1-with-abc123")
    );
    assert_eq!(job.metadata.namespace.as_deref(), Some("system-upgrade"));
    let labels = job.metadata.labels.clone().expect("labels");
    assert_eq!(labels["plan.upgrade.cattle.io/k3s-agent"], "abc123");
    assert_eq!(labels["upgrade.cattle.io/node"], "worker-1.lan");
    let annotations = job.metadata.annotations.clone().expect("annotations");
    assert_eq!(
        annotations["upgrade.cattle.io/ttl-seconds-after-finished"],
        "900"
    );
    assert_eq!(annotations["team"], "ops");
    assert!(!annotations.contains_key("upgrade.cattle.io/digest"));
    let spec = job.spec.clone().expect("spec");
    assert_eq!(spec.parallelism, Some(0), "paused until applying");
    assert_eq!(spec.backoff_limit, Some(2));
    assert_eq!(spec.active_deadline_seconds, Some(600));
    let pod = spec.template.spec.expect("pod");
    assert_eq!(
        (pod.host_ipc, pod.host_pid, pod.host_network),
        (Some(true), Some(true), Some(true))
    );
    let affinity = serde_json::to_value(pod.affinity).expect("json");
    assert_eq!(
        affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchExpressions"][0]["values"],
        json!(["worker-1"])
    );
    assert_eq!(
        affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"]
            ["matchExpressions"][0],
        json!({"key": "upgrade.cattle.io/plan", "operator": "In", "values": ["k3s-agent"]})
    );
    let tolerations = pod.tolerations.expect("tolerations");
    assert_eq!(
        tolerations[0].key.as_deref(),
        Some("node.kubernetes.io/unschedulable")
    );
    // Prepare, then the drain (SUC's order) — not kubectl: a gate that
    // waits for the controller's drain through the API — then upgrade.
    let init = pod.init_containers.expect("init");
    assert_eq!(init.len(), 2);
    assert_eq!(init[0].name, "prepare");
    assert_eq!(
        init[0].image.as_deref(),
        Some("rancher/k3s-upgrade:v1.35.8-k3s1")
    );
    assert_eq!(init[1].name, "drain");
    assert_eq!(init[1].image.as_deref(), Some(crate::gate::IMAGE));
    assert_eq!(
        init[1].args.clone().expect("args"),
        [
            "upgrade-gate",
            "--node",
            "$(SYSTEM_UPGRADE_NODE_NAME)",
            "--job",
            "apply-k3s-agent-on-worker-1-with-abc123"
        ]
    );
    assert!(crate::gate::gated(&job));
    let upgrade = &pod.containers[0];
    assert_eq!(upgrade.name, "upgrade");
    assert_eq!(
        upgrade.security_context.as_ref().and_then(|s| s.privileged),
        Some(true)
    );
    let env: Vec<(String, Option<String>)> = upgrade
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    assert_eq!(env[0].0, "SYSTEM_UPGRADE_NODE_NAME");
    assert!(env.contains(&(
        "SYSTEM_UPGRADE_PLAN_LATEST_VERSION".to_string(),
        Some("v1.35.8-k3s1".to_string())
    )));
    let mounts: Vec<(String, String)> = upgrade
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.clone(), m.mount_path.clone()))
        .collect();
    assert_eq!(
        mounts,
        [
            ("host-root", "/host"),
            ("pod-info", "/run/system-upgrade/pod"),
            ("secret-k3s-env", "/run/system-upgrade/secrets/env"),
            ("data", "/data"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let volumes: Vec<String> = pod
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.clone())
        .collect();
    assert_eq!(volumes, ["host-root", "pod-info", "secret-k3s-env", "data"]);
}

#[test]
fn applying_runs_it_and_deadlines_follow_the_plan() {
    let mut plan = agent_plan();
    assert_eq!(
        new_job(&plan, &worker(), &input(true))
            .spec
            .and_then(|s| s.parallelism),
        Some(1)
    );
    for (given, expected) in [(Some(0), None), (Some(-1), Some(600)), (Some(30), Some(30))] {
        plan.spec.job_active_deadline_secs = given;
        let job = new_job(&plan, &worker(), &input(true));
        assert_eq!(job.spec.and_then(|s| s.active_deadline_seconds), expected);
    }
    plan.spec.exclusive = Some(true);
    let mut delayed = input(true);
    delayed.post_complete_delay = Some(3600);
    let job = new_job(&plan, &worker(), &delayed);
    let spec = job.spec.expect("spec");
    assert_eq!(spec.ttl_seconds_after_finished, Some(3660));
    let affinity = serde_json::to_value(spec.template.spec.expect("pod").affinity).expect("json");
    assert_eq!(
        affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"]
            ["matchExpressions"][0],
        json!({"key": "upgrade.cattle.io/exclusive", "operator": "In", "values": ["true"]})
    );
}

#[test]
fn images_get_the_version_as_tag_only_when_they_have_none() {
    for (image, expected) in [
        ("rancher/k3s-upgrade", "rancher/k3s-upgrade:v1"),
        ("docker.io/rancher/k3s-upgrade", "rancher/k3s-upgrade:v1"),
        ("docker.io/library/busybox", "busybox:v1"),
        (
            "registry.local:5000/k3r/upgrade",
            "registry.local:5000/k3r/upgrade:v1",
        ),
        ("rancher/k3s-upgrade:v0.9", "rancher/k3s-upgrade:v0.9"),
        (
            "registry.local:5000/k3r/upgrade:v2",
            "registry.local:5000/k3r/upgrade:v2",
        ),
        ("k3r@sha256:0123", "k3r@sha256:0123"),
    ] {
        assert_eq!(with_latest_tag(image, "v1"), expected, "{image}");
    }
}

#[test]
fn only_a_prepare_step_with_a_cordon_or_drain_is_gated() {
    let mut plan = agent_plan();
    plan.spec.drain = None;
    plan.spec.cordon = Some(true);
    let job = new_job(&plan, &worker(), &input(false));
    let init = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.init_containers.clone())
        .expect("init");
    assert_eq!(
        init.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["prepare", "cordon"]
    );
    plan.spec.cordon = None;
    let job = new_job(&plan, &worker(), &input(false));
    assert!(!crate::gate::gated(&job), "nothing to wait for");
    plan.spec.cordon = Some(true);
    plan.spec.prepare = None;
    let job = new_job(&plan, &worker(), &input(false));
    assert!(
        !crate::gate::gated(&job),
        "no prepare: cordoned before it runs"
    );
}
