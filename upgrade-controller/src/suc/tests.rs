//! Expected values come from system-upgrade-controller's own libraries
//! (kubectl's hash package, wrangler's SafeConcatName, Go's SHA-224), run
//! once with the inputs below.

use k8s_openapi::ByteString;
use serde_json::json;

use super::*;

fn plan(value: serde_json::Value) -> Plan {
    serde_json::from_value(value).expect("plan")
}

fn node(name: &str, uid: &str, labels: serde_json::Value) -> Node {
    serde_json::from_value(json!({"metadata": {"name": name, "uid": uid, "labels": labels}}))
        .expect("node")
}

#[test]
fn secret_hashes_are_kubectls() {
    let mut secret = Secret {
        type_: Some("Opaque".into()),
        data: Some(
            [
                ("token".to_string(), ByteString(b"s3cr3t".to_vec())),
                ("a".to_string(), ByteString(vec![0, 1, 2])),
            ]
            .into(),
        ),
        ..Default::default()
    };
    secret.metadata.name = Some("upgrade-env".into());
    assert_eq!(secret_hash(&secret), "7k867ch977");
    let mut empty = Secret::default();
    empty.metadata.name = Some("empty".into());
    assert_eq!(secret_hash(&empty), "g2g7979bc6");
}

#[test]
fn the_latest_hash_covers_version_account_and_secrets() {
    let plan = plan(json!({
        "metadata": {"name": "k3s-server", "namespace": "system-upgrade"},
        "spec": {"serviceAccountName": "system-upgrade", "concurrency": 1,
                 "upgrade": {"image": "rancher/k3s-upgrade"}},
    }));
    let hash = latest_hash(&plan, "v1.35.8+k3s1", &["g2g7979bc6".to_string()]);
    assert_eq!(
        hash,
        "5b2cca95abe151f6df818f1c0cfb7173ea4c4cc9c298594a860ad93e"
    );
    assert_ne!(latest_hash(&plan, "v1.35.9+k3s1", &[]), hash);
    // Paths named by the digest annotation join it.
    let mut annotated = plan.clone();
    annotated
        .annotations_mut()
        .insert(ANNOTATION_DIGEST.into(), "spec.concurrency".into());
    let plain = latest_hash(&plan, "v1", &[]);
    let with_concurrency = latest_hash(&annotated, "v1", &[]);
    assert_ne!(plain, with_concurrency);
    annotated.spec.concurrency = 2;
    assert_ne!(latest_hash(&annotated, "v1", &[]), with_concurrency);
}

#[test]
fn job_names_are_cut_as_wrangler_cuts_them() {
    assert_eq!(
        job_name("k3s-server", "node-1", "abc"),
        "apply-k3s-server-on-node-1-with-abc"
    );
    assert_eq!(
        job_name(
            "k3s-server",
            "node-1.example.com",
            "0123456789abcdef0123456789abcdef0123456789abcdef01234567"
        ),
        "apply-k3s-server-on-node-1-with-0123456789abcdef012345678-0b621"
    );
    assert_eq!(
        safe_concat_name(&[
            "apply",
            "a-plan-with-a-long-name",
            "on",
            "worker",
            "with",
            "x-y-z-0123456789012345678901234567890"
        ]),
        "apply-a-plan-with-a-long-name-on-worker-with-x-y-z-012345-bd317"
    );
}

#[test]
fn job_labels_name_plan_node_version_and_hash() {
    let plan = plan(json!({
        "metadata": {"name": "agents", "namespace": "system-upgrade",
                     "labels": {"team": "ops", "upgrade.cattle.io/x": "dropped"}},
        "spec": {"concurrency": 1, "exclusive": true, "upgrade": {"image": "k3r-upgrade"}},
    }));
    let labels = job_labels(
        &plan,
        "worker-1",
        "system-upgrade-controller",
        "v1.35.9",
        "h1",
    );
    assert_eq!(
        labels,
        [
            ("plan.upgrade.cattle.io/agents", "h1"),
            ("team", "ops"),
            ("upgrade.cattle.io/controller", "system-upgrade-controller"),
            ("upgrade.cattle.io/exclusive", "true"),
            ("upgrade.cattle.io/node", "worker-1"),
            ("upgrade.cattle.io/plan", "agents"),
            ("upgrade.cattle.io/version", "v1.35.9"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    );
}

#[test]
fn node_selection_is_sucs() {
    let nodes = vec![
        node(
            "a",
            "u-a",
            json!({"kubernetes.io/hostname": "a", "role": "agent"}),
        ),
        node(
            "b",
            "u-b",
            json!({"kubernetes.io/hostname": "b", "role": "agent"}),
        ),
        node(
            "c",
            "u-c",
            json!({"kubernetes.io/hostname": "c", "role": "agent",
                                 "plan.upgrade.cattle.io/agents": "h1"}),
        ),
        node(
            "d",
            "u-d",
            json!({"kubernetes.io/hostname": "d", "role": "agent",
                                 "plan.upgrade.cattle.io/agents": "disabled"}),
        ),
        node("e", "u-e", json!({"role": "agent"})),
        node(
            "s",
            "u-s",
            json!({"kubernetes.io/hostname": "s", "role": "server"}),
        ),
        node(
            "f",
            "u-f",
            json!({"kubernetes.io/hostname": "f", "role": "agent",
                                 "plan.upgrade.cattle.io/agents": "old"}),
        ),
    ];
    let names =
        |selected: Vec<&Node>| -> Vec<String> { selected.iter().map(|n| n.name_any()).collect() };
    let mut agents = plan(json!({
        "metadata": {"name": "agents", "namespace": "system-upgrade", "uid": "plan-uid"},
        "spec": {"concurrency": 10, "nodeSelector": {"matchLabels": {"role": "agent"}},
                 "upgrade": {"image": "k3r-upgrade"}},
    }));
    // Done (h1), disabled, without a hostname label, or not selected: out.
    assert_eq!(names(select_nodes(&agents, "h1", &nodes)), ["a", "b", "f"]);
    // Concurrency 1: the first candidate in sha256(node UID + plan UID +
    // hash) order; one already applying keeps its place.
    agents.spec.concurrency = 1;
    let first = names(select_nodes(&agents, "h1", &nodes));
    assert_eq!(first.len(), 1);
    let mut order: Vec<(String, &str)> = ["a", "b", "f"]
        .iter()
        .map(|n| {
            let digest = Sha256::digest(format!("u-{n}plan-uidh1").as_bytes());
            (digest.iter().map(|b| format!("{b:02x}")).collect(), *n)
        })
        .collect();
    order.sort();
    assert_eq!(first, [order[0].1]);
    agents.status = Some(k3r_crds::plan::PlanStatus {
        applying: vec![order[1].1.to_string()],
        ..Default::default()
    });
    assert_eq!(names(select_nodes(&agents, "h1", &nodes)), [order[1].1]);
    // No nodeSelector selects nothing.
    agents.spec.node_selector = None;
    assert!(select_nodes(&agents, "h1", &nodes).is_empty());
}

#[test]
fn versions_become_image_tags() {
    assert_eq!(munge_version("v1.35.8+k3s1"), "v1.35.8-k3s1");
    assert_eq!(
        plan_label("k3s-server"),
        "plan.upgrade.cattle.io/k3s-server"
    );
}
