//! Whole charts written by this project, rendered into release manifests
//! by `helm install --dry-run` and by us: subcharts with values scoping and
//! globals, aliases, conditions and tags, a library chart, `.Files`, hooks,
//! NOTES, install order with unknown kinds.

use std::path::Path;

use serde_json::json;

use crate::harness::our_manifest;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// The suite chart (helm-controller/render/testdata/charts/suite).
pub fn suite_chart() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/charts/suite")
}

#[test]
fn chart_suite_manifests_match_helm() {
    let chart = suite_chart();
    for values in [
        json!({}),
        json!({"sub": {"enabled": false}, "tags": {"extras": true}, "global": {"region": "ap"}}),
        json!({"sub2": {"replicas": null}, "big": 2.5, "name": "x"}),
    ] {
        let helm = k3r_helm_oracle::helm_manifest(&chart, "demo", "ns", &values)
            .unwrap_or_else(|e| panic!("Helm installs the suite with {values}: {e}"));
        let ours = our_manifest(&chart, &values).expect("we render the suite");
        assert!(helm.contains("kind: Deployment"), "{helm}");
        if ours != helm {
            let diff: Vec<String> = helm
                .lines()
                .zip(ours.lines())
                .enumerate()
                .filter(|(_, (h, o))| h != o)
                .take(5)
                .map(|(i, (h, o))| format!("line {}: helm {h:?} ours {o:?}", i + 1))
                .collect();
            panic!(
                "values {values}: manifests differ:\n{}\n--- helm ---\n{helm}\n--- ours ---\n{ours}",
                diff.join("\n")
            );
        }
    }
}

#[test]
fn schema_and_kube_version_failures_match_helm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chart = k3r_helm_oracle::write_chart(
        dir.path(),
        "strict",
        "replicas: 1\nimage: {tag: v1}\n",
        &[(
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  r: {{ .Values.replicas | quote }}\n",
        )],
    );
    write(
        &chart,
        "values.schema.json",
        r#"{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "required": ["replicas"],
            "properties": {"replicas": {"type": "integer", "minimum": 1},
                           "image": {"type": "object", "properties": {"tag": {"type": "string"}}}}}"#,
    );
    // Valid values render the same.
    let good = json!({"replicas": 3});
    assert_eq!(
        our_manifest(&chart, &good).expect("valid values render"),
        k3r_helm_oracle::helm_manifest(&chart, "demo", "ns", &good).expect("Helm renders")
    );
    for bad in [
        json!({"replicas": "two"}),
        json!({"replicas": 0}),
        json!({"image": {"tag": 5}}),
    ] {
        let helm =
            k3r_helm_oracle::helm_manifest(&chart, "demo", "ns", &bad).expect_err("Helm rejects");
        let ours = our_manifest(&chart, &bad).expect_err("we reject");
        assert!(helm.contains("schema"), "{helm}");
        assert!(
            ours.contains("values don't meet the specifications of the schema"),
            "{ours}"
        );
        assert!(ours.contains("strict:"), "{ours}");
        let field = if bad.get("image").is_some() {
            "/image/tag"
        } else {
            "/replicas"
        };
        assert!(ours.contains(field), "{bad}: {ours}");
    }
    // A kubeVersion the cluster does not satisfy.
    write(
        &chart,
        "Chart.yaml",
        "apiVersion: v2\nname: strict\nversion: 0.1.0\nkubeVersion: \">=1.99.0-0\"\n",
    );
    let helm =
        k3r_helm_oracle::helm_manifest(&chart, "demo", "ns", &good).expect_err("Helm rejects");
    let ours = our_manifest(&chart, &good).expect_err("we reject");
    assert!(helm.contains("incompatible with Kubernetes"), "{helm}");
    assert!(
        ours.contains(
            "chart requires kubeVersion: >=1.99.0-0 which is incompatible with Kubernetes"
        ),
        "{ours}"
    );
}

/// The traefik chart k3r ships (addons/charts/traefik) renders exactly as
/// Helm renders it, with defaults and with a HelmChartConfig-like override.
#[test]
fn packaged_traefik_chart_matches_helm() {
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../addons/charts/traefik");
    for values in [
        json!({}),
        json!({"image": {"registry": "registry.local:5000", "tag": "v3.0.0"}, "replicas": 2,
               "service": {"type": "ClusterIP", "annotations": {"a": "b"}},
               "ingressClass": {"isDefault": false}, "extraArgs": ["--log.level=DEBUG"]}),
    ] {
        let helm = k3r_helm_oracle::helm_manifest(&chart, "demo", "ns", &values)
            .unwrap_or_else(|e| panic!("Helm renders traefik with {values}: {e}"));
        let ours = our_manifest(&chart, &values).expect("we render traefik");
        assert!(helm.contains("kind: Deployment") && helm.contains("kind: IngressClass"));
        assert_eq!(ours, helm, "traefik with {values}");
    }
}
