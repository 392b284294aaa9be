//! The checked-in CRD YAML matches the Rust types, and k3s users' YAML
//! deserializes into them unchanged.

#[test]
fn generated_crds_are_current() {
    let fresh = k3r_crds::render_yaml().expect("render");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("generated/crds.yaml");
    if std::env::var_os("K3R_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write");
        return;
    }
    assert!(
        k3r_crds::CRDS_YAML == fresh,
        "crds/generated/crds.yaml is stale: run `K3R_BLESS=1 cargo test -p k3r-crds` and commit it"
    );
    for (group, kind) in [
        ("k3s.cattle.io", "Addon"),
        ("helm.cattle.io", "HelmChart"),
        ("helm.cattle.io", "HelmChartConfig"),
        ("upgrade.cattle.io", "Plan"),
    ] {
        assert!(
            fresh.contains(&format!("group: {group}")) && fresh.contains(&format!("kind: {kind}")),
            "{kind}"
        );
    }
}

#[test]
fn k3s_user_yaml_applies_unchanged() {
    let chart: k3r_crds::HelmChart = serde_saphyr::from_str(
        r#"
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata: {name: traefik, namespace: kube-system}
spec:
  repo: https://traefik.github.io/charts
  chart: traefik
  version: 34.2.1
  targetNamespace: kube-system
  repoCA: "pem"
  insecureSkipTLSVerify: true
  plainHTTP: false
  set:
    replicas: 2
    image.tag: "v3"
  valuesContent: |-
    ports: {web: {port: 8000}}
  values: {deployment: {kind: DaemonSet}}
  failurePolicy: abort
"#,
    )
    .expect("HelmChart");
    assert_eq!(chart.spec.repo_ca.as_deref(), Some("pem"));
    assert_eq!(chart.spec.insecure_skip_tls_verify, Some(true));
    assert_eq!(chart.spec.set.len(), 2);
    let plan: k3r_crds::Plan = serde_saphyr::from_str(
        r#"
apiVersion: upgrade.cattle.io/v1
kind: Plan
metadata: {name: server-plan, namespace: system-upgrade}
spec:
  concurrency: 1
  cordon: true
  nodeSelector:
    matchExpressions: [{key: node-role.kubernetes.io/control-plane, operator: In, values: ["true"]}]
  serviceAccountName: system-upgrade
  upgrade: {image: rancher/k3s-upgrade}
  channel: https://update.k3s.io/v1-release/channels/stable
  drain: {force: true, skipWaitForDeleteTimeout: 60}
"#,
    )
    .expect("Plan");
    assert_eq!(plan.spec.upgrade.image, "rancher/k3s-upgrade");
    assert_eq!(
        plan.spec.drain.and_then(|d| d.skip_wait_for_delete_timeout),
        Some(60)
    );
}
