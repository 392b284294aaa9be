//! The conformance tooling (bootstrap/conformance) must test the
//! Kubernetes k3r runs (bootstrap/kube): the same k8s.io/kubernetes version
//! and the same staging-module replaces, or its results say nothing.

use std::path::Path;

fn go_mod(module: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../bootstrap")
        .join(module)
        .join("go.mod");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn kubernetes_version(go_mod: &str) -> Option<String> {
    go_mod
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("k8s.io/kubernetes "))
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string()
        })
}

fn replaces(go_mod: &str) -> Vec<String> {
    let mut lines: Vec<String> = go_mod
        .lines()
        // k3r's own Go modules (replaced by path) are not Kubernetes's.
        .filter(|l| l.starts_with("replace k8s.io/"))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

#[test]
fn conformance_tooling_pins_the_kubernetes_k3r_runs() {
    let (kube, conformance) = (go_mod("kube"), go_mod("conformance"));
    let version = kubernetes_version(&kube).expect("bootstrap/kube requires k8s.io/kubernetes");
    assert_eq!(kubernetes_version(&conformance), Some(version));
    assert!(!replaces(&kube).is_empty());
    assert_eq!(replaces(&conformance), replaces(&kube));
}
