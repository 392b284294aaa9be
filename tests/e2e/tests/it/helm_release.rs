//! Releases k3r writes are Helm's: a release Secret built by
//! k3r-helm-render, stored in the cluster, is read back by real Helm (the
//! v4 library) — list, get values (user and computed), history.

use std::time::SystemTime;

use k3r_helm_render::chart::from_files;
use k3r_helm_render::release::{Release, Status};
use k3r_helm_render::values::parse_yaml;

use crate::cluster::Cluster;

pub fn real_helm_reads_our_releases(cluster: &Cluster) {
    let chart = from_files(
        vec![
            (
                "Chart.yaml".into(),
                b"apiVersion: v2\nname: demo\nversion: 0.3.0\nappVersion: \"1.0\"\n".to_vec(),
            ),
            (
                "values.yaml".into(),
                b"replicas: 1\nimage: {tag: v1}\n".to_vec(),
            ),
            (
                "templates/cm.yaml".into(),
                b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n".to_vec(),
            ),
        ],
        "demo",
    )
    .expect("chart");
    let now = SystemTime::now();
    for (version, status) in [(1, Status::Superseded), (2, Status::Deployed)] {
        let release = Release {
            name: "e2e-demo".into(),
            namespace: "default".into(),
            version,
            status,
            first_deployed: now,
            last_deployed: now,
            description: if version == 1 { "Install complete" } else { "Upgrade complete" }.into(),
            notes: String::new(),
            chart: chart.clone(),
            config: parse_yaml(&format!("replicas: {}\n", version + 2)).expect("values"),
            manifest: "---\n# Source: demo/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n".into(),
            hooks: Vec::new(),
        };
        let applied =
            cluster.kubectl_stdin(&["apply", "-f", "-"], Some(&release.secret().to_string()));
        assert!(
            applied.status.success(),
            "{}",
            String::from_utf8_lossy(&applied.stderr)
        );
    }
    let read = k3r_helm_oracle::helm_read_release(&cluster.kubeconfig, "default", "e2e-demo")
        .expect("real Helm reads the release");
    let text = read.to_string();
    assert!(text.contains("e2e-demo"), "{text}");
    // helm list shows the deployed revision 2 of chart demo-0.3.0.
    let listed = read["list"].to_string();
    assert!(
        listed.contains("deployed") && listed.contains("0.3.0"),
        "list: {listed}"
    );
    // get values: the user's values of the latest revision; --all merges the chart's.
    let values = read["values"].to_string();
    assert!(
        values.contains("replicas") && values.contains('4'),
        "values: {values}"
    );
    let all = read["all_values"].to_string();
    assert!(
        all.contains("image") && all.contains("v1"),
        "all values: {all}"
    );
    let history = read["history"].as_array().cloned().unwrap_or_default();
    let revisions: Vec<(i64, String)> = history
        .iter()
        .map(|h| {
            (
                h["revision"].as_i64().unwrap_or(0),
                h["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        revisions,
        [(1, "superseded".to_string()), (2, "deployed".to_string())],
        "history: {history:?}"
    );
}
