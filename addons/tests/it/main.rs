//! The packaged add-ons render into manifests the deploy operator accepts,
//! filled with the cluster's values.

use std::net::IpAddr;

use k3r_addons::{ClusterValues, names, render, write};
use k3r_apply::parse_manifest;
use serde_json::Value;

fn values() -> ClusterValues {
    ClusterValues {
        cluster_dns: "10.99.0.53".parse::<IpAddr>().expect("ip"),
        cluster_domain: "corp.example".into(),
        registry: "registry.local:5000".into(),
        trim_start_pages_after: "60s".into(),
    }
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} missing"))
}

#[test]
fn every_addon_renders_to_valid_objects() {
    let rendered = render(&values()).expect("render");
    assert_eq!(
        rendered.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
        names().map(|n| format!("{n}.yaml")).collect::<Vec<_>>()
    );
    for (file, text) in &rendered {
        let objects = parse_manifest(text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!objects.is_empty(), "{file} declares nothing");
        assert!(!text.contains("{{"), "{file} has an unfilled placeholder");
    }
}

#[test]
fn coredns_takes_the_cluster_values() {
    let rendered = render(&values()).expect("render");
    let (_, text) = rendered
        .iter()
        .find(|(f, _)| f == "coredns.yaml")
        .expect("coredns");
    let objects = parse_manifest(text).expect("parse");
    let service = find(&objects, "Service", "kube-dns");
    assert_eq!(service["spec"]["clusterIP"], "10.99.0.53");
    assert_eq!(service["metadata"]["namespace"], "kube-system");
    let config = find(&objects, "ConfigMap", "coredns");
    let corefile = config["data"]["Corefile"].as_str().expect("Corefile");
    assert!(corefile.contains("kubernetes corp.example in-addr.arpa ip6.arpa {"));
    assert!(corefile.contains("hosts /etc/coredns/NodeHosts"));
    assert!(corefile.contains("forward . /etc/resolv.conf"));
    // NodeHosts belongs to the nodehosts controller, not to this file.
    assert!(config["data"].get("NodeHosts").is_none());
    let deployment = find(&objects, "Deployment", "coredns");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["image"],
        "registry.local:5000/coredns/coredns:1.15.0"
    );
    assert_eq!(pod["dnsPolicy"], "Default");
}

#[test]
fn rolebindings_bind_the_k3r_controller_user() {
    let rendered = render(&values()).expect("render");
    let (_, text) = rendered
        .iter()
        .find(|(f, _)| f == "rolebindings.yaml")
        .expect("rolebindings");
    let objects = parse_manifest(text).expect("parse");
    let binding = find(&objects, "ClusterRoleBinding", "system:k3r-controller");
    assert_eq!(binding["subjects"][0]["kind"], "User");
    assert_eq!(binding["subjects"][0]["name"], "system:k3r-controller");
    find(&objects, "ClusterRole", "system:k3r-controller");
}

#[test]
fn write_skips_disabled_and_keeps_unchanged_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let written = write(dir.path(), &values(), &["coredns".into()]).expect("write");
    assert_eq!(written, ["rolebindings", "traefik"]);
    assert!(!dir.path().join("coredns.yaml").exists());
    let path = dir.path().join("rolebindings.yaml");
    let before = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(dir.path(), &values(), &[]).expect("write again");
    let after = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(before, after, "an unchanged add-on must not be rewritten");
    assert!(dir.path().join("coredns.yaml").exists());
    // A user's edit is replaced: packaged add-ons are rewritten at start.
    std::fs::write(&path, "edited").expect("edit");
    write(dir.path(), &values(), &[]).expect("write again");
    assert_ne!(std::fs::read_to_string(&path).expect("read"), "edited");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn operators_deployment_is_filled_and_quoted() {
    let text = k3r_addons::render_operators(&k3r_addons::OperatorsValues {
        servicelb_namespace: "lb system".into(),
        image: "docker.io/k3r/k3r-operators:v9".into(),
        node_image: "docker.io/k3r/k3r-operators:node".into(),
        manifests_dir: "/var/lib/k3r dir/server/manifests".into(),
        node_name: "node-1".into(),
        disable: "coredns,traefik".into(),
        disable_network_policy: false,
        port: 10270,
        node_port: 10271,
        trim_start_pages_after: "60s".into(),
    })
    .expect("render");
    let objects = parse_manifest(&text).expect("parse");
    let deployment = find(&objects, "Deployment", "k3r-operators");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"]["kubernetes.io/hostname"], "node-1");
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "docker.io/k3r/k3r-operators:v9");
    assert_eq!(
        container["args"],
        serde_json::json!([
            "operators",
            "--manifests-dir",
            "/var/lib/k3r dir/server/manifests",
            "--disable",
            "coredns,traefik",
            "--listen",
            "0.0.0.0:10270",
            "--servicelb-namespace",
            "lb system",
            "--svclb-image",
            "docker.io/k3r/k3r-operators:node"
        ])
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"],
        "10270"
    );
    // Each operator's roles are bound to the one ServiceAccount.
    for name in [
        "k3r-operators:deploy",
        "k3r-operators:helm",
        "k3r-operators:nodehosts",
        "k3r-operators:leader-election",
    ] {
        assert!(
            objects.iter().any(
                |o| o["kind"].as_str().is_some_and(|k| k.ends_with("Binding"))
                    && o["metadata"]["name"] == name
                    && o["subjects"][0]["name"] == "k3r-operators"
            ),
            "binding {name}"
        );
    }
    // The per-node host: every node, its name from the downward API, its
    // own ServiceAccount and port.
    let daemonset = find(&objects, "DaemonSet", "k3r-node-operators");
    let pod = &daemonset["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "k3r-node-operators");
    assert_eq!(
        pod["tolerations"],
        serde_json::json!([{"operator": "Exists"}])
    );
    let container = &pod["containers"][0];
    // The node's own k3r, not the servers' (which a rolling upgrade may
    // not have brought to the node yet).
    assert_eq!(container["image"], "docker.io/k3r/k3r-operators:node");
    assert_eq!(
        container["args"],
        serde_json::json!(["operators", "--listen", "0.0.0.0:10271"])
    );
    let node_name = container["env"]
        .as_array()
        .and_then(|env| env.iter().find(|e| e["name"] == "NODE_NAME"))
        .expect("NODE_NAME");
    assert_eq!(
        node_name["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );
    for binding in [
        "k3r-node-operators:nodeinfo",
        "k3r-node-operators:network-policy",
    ] {
        assert!(objects.iter().any(|o| o["kind"] == "ClusterRoleBinding"
            && o["metadata"]["name"] == binding
            && o["subjects"][0]["name"] == "k3r-node-operators"));
    }
    // Network policy programs the node's own nftables: host network,
    // NET_ADMIN and nothing else.
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(
        container["securityContext"]["capabilities"],
        serde_json::json!({"drop": ["ALL"], "add": ["NET_ADMIN"]})
    );
}

#[test]
fn disabling_network_policy_reaches_every_nodes_operators() {
    let text = k3r_addons::render_operators(&k3r_addons::OperatorsValues {
        servicelb_namespace: "kube-system".into(),
        image: "k3r:v1".into(),
        node_image: "k3r:node".into(),
        manifests_dir: "/m".into(),
        node_name: "node-1".into(),
        disable: String::new(),
        disable_network_policy: true,
        port: 10270,
        node_port: 10271,
        trim_start_pages_after: "60s".into(),
    })
    .expect("render");
    let objects = parse_manifest(&text).expect("parse");
    let daemonset = find(&objects, "DaemonSet", "k3r-node-operators");
    assert_eq!(
        daemonset["spec"]["template"]["spec"]["containers"][0]["args"],
        serde_json::json!([
            "operators",
            "--listen",
            "0.0.0.0:10271",
            "--disable-network-policy"
        ])
    );
}

#[test]
fn traefik_travels_as_a_reproducible_chart_in_a_helmchart() {
    let first = render(&values()).expect("render");
    let second = render(&values()).expect("render");
    assert_eq!(
        first, second,
        "the packaged add-ons must not change between starts"
    );
    let (_, text) = first
        .iter()
        .find(|(f, _)| f == "traefik.yaml")
        .expect("traefik");
    let objects = parse_manifest(text).expect("parse");
    let chart = find(&objects, "HelmChart", "traefik");
    assert_eq!(chart["spec"]["targetNamespace"], "kube-system");
    assert!(
        chart["spec"]["valuesContent"]
            .as_str()
            .is_some_and(|v| v.contains("registry: registry.local:5000")),
        "{chart}"
    );
    use base64::Engine;
    let archive = base64::engine::general_purpose::STANDARD
        .decode(
            chart["spec"]["chartContent"]
                .as_str()
                .expect("chartContent"),
        )
        .expect("base64");
    let loaded = k3r_helm_render::chart::load_archive(&archive).expect("a loadable chart");
    assert_eq!(loaded.name(), "traefik");
    assert_eq!(loaded.templates.len(), 6);
}

/// scripts/coredns-image builds bootstrap/coredns: the CoreDNS it requires
/// is the release the manifest names.
#[test]
fn the_coredns_build_requires_the_release_the_manifest_names() {
    let go_mod = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bootstrap/coredns/go.mod"
    ))
    .expect("bootstrap/coredns/go.mod");
    let require = format!(
        "require github.com/coredns/coredns v{}",
        k3r_addons::COREDNS_VERSION
    );
    assert!(
        go_mod.lines().any(|line| line == require),
        "{require} missing from bootstrap/coredns/go.mod"
    );
}
