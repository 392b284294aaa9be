//! `--supervisor-metrics` (the shared cluster runs with it): /metrics on
//! the supervisor port is kube-apiserver's answer with k3r's datastore
//! metrics appended, behind kube-apiserver's own authorization.

use std::collections::HashSet;
use std::process::Command;

use crate::cluster::Cluster;

pub fn supervisor_metrics(cluster: &Cluster) {
    let scraped = cluster.ok(&["get", "--raw", "/metrics"]);
    for family in [
        "apiserver_request_total",
        "k3r_datastore_commit_duration_seconds",
        "k3r_datastore_rpc_duration_seconds",
        "k3r_datastore_current_revision",
    ] {
        assert!(
            scraped.contains(&format!("# TYPE {family} ")),
            "{family} missing from the supervisor's /metrics"
        );
    }
    // One exposition: every family declared once, no OpenMetrics
    // terminator in the middle.
    let mut declared = HashSet::new();
    for line in scraped.lines() {
        assert_ne!(line, "# EOF", "the datastore's terminator was kept");
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|t| t.split(' ').next())
        {
            assert!(declared.insert(name), "{name} declared twice");
        }
    }
    let commits = sample(&scraped, "k3r_datastore_commit_duration_seconds_count");
    assert!(commits > 0.0, "no commits counted: {commits}");

    // kube-apiserver itself (:6444) serves only its own.
    let direct_server = format!("--server=https://127.0.0.1:{}", cluster.port + 1);
    let direct = cluster.ok(&[&direct_server, "get", "--raw", "/metrics"]);
    assert!(direct.contains("apiserver_request_total"));
    assert!(!direct.contains("k3r_datastore_"));

    // A client kube-apiserver does not authorize gets its refusal, and
    // nothing of k3r's.
    let token = cluster.ok(&["create", "token", "default", "-n", "default"]);
    for (who, auth) in [
        (
            "a ServiceAccount without RBAC",
            Some(token.trim().to_string()),
        ),
        ("an anonymous client", None),
    ] {
        let mut curl = Command::new("curl");
        curl.args(["-sk", "-w", "\n%{http_code}"]);
        if let Some(token) = &auth {
            curl.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        let out = curl
            .arg(format!("https://127.0.0.1:{}/metrics", cluster.port))
            .output()
            .expect("curl");
        let out = String::from_utf8_lossy(&out.stdout).to_string();
        let status = out.lines().last().unwrap_or_default();
        assert!(
            status == "401" || status == "403",
            "{who}: status {status}: {out}"
        );
        assert!(!out.contains("k3r_datastore_"), "{who}: {out}");
    }
}

fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (metric, value) = line.split_once(' ')?;
            (metric == name).then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("{name} not found"))
}
