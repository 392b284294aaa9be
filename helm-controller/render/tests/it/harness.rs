//! Renders a chart with real Helm and with this crate.

use std::collections::BTreeMap;

use k3r_helm_render::engine::{Capabilities, ChartSource, ReleaseInfo, render};
use k3r_helm_render::values::{coalesce, parse_yaml};

pub const CHART: &str = "demo";

/// Helm 4's defaults without a cluster.
fn capabilities() -> Capabilities {
    Capabilities {
        kube_version: "v1.36.0".into(),
        api_versions: vec!["v1".into(), "apps/v1".into(), "batch/v1".into()],
        helm_version: "v4.2".into(),
    }
}

pub fn ours(
    values_yaml: &str,
    templates: &[(&str, &str)],
) -> Result<BTreeMap<String, String>, String> {
    let metadata = parse_yaml(&format!(
        "apiVersion: v2\nname: {CHART}\nversion: 0.1.0\nappVersion: \"1.2.3\"\n"
    ))
    .map_err(|e| e.to_string())?;
    let chart = ChartSource {
        name: CHART.into(),
        metadata,
        templates: templates
            .iter()
            .map(|(f, t)| (format!("templates/{f}"), (*t).to_string()))
            .collect(),
    };
    let defaults = parse_yaml(values_yaml).map_err(|e| e.to_string())?;
    let values = coalesce(&defaults, &parse_yaml("").map_err(|e| e.to_string())?);
    let release = ReleaseInfo {
        name: "demo".into(),
        namespace: "ns".into(),
        revision: 1,
        is_install: true,
        is_upgrade: false,
    };
    render(&chart, &values, &release, &capabilities()).map_err(|e| e.to_string())
}

pub fn helm(
    values_yaml: &str,
    templates: &[(&str, &str)],
) -> Result<BTreeMap<String, String>, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let chart = k3r_helm_oracle::write_chart(dir.path(), CHART, values_yaml, templates);
    k3r_helm_oracle::helm_render(&chart, "demo", "ns")
}

/// Every case must render identically.
pub fn assert_same(values_yaml: &str, cases: &[(&str, &str)]) {
    let expected = helm(values_yaml, cases).expect("Helm renders the cases");
    let actual = ours(values_yaml, cases).expect("we render the cases");
    let mut differ = Vec::new();
    for (file, _) in cases {
        let key = format!("{CHART}/templates/{file}");
        if actual.get(&key) != expected.get(&key) {
            differ.push(format!(
                "{file}:\n  helm: {:?}\n  ours: {:?}",
                expected.get(&key),
                actual.get(&key)
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} differ from Helm:\n{}",
        differ.len(),
        cases.len(),
        differ.join("\n")
    );
}
