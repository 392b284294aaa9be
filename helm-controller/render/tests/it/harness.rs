//! Renders a chart with real Helm and with this crate.

use std::collections::BTreeMap;
use std::path::Path;

use k3r_gotemplate::Value;
use k3r_helm_render::chart::load_dir;
use k3r_helm_render::engine::{Capabilities, ReleaseInfo, render};
use k3r_helm_render::manifest::template;
use k3r_helm_render::values::parse_json;

pub const CHART: &str = "demo";

/// Helm 4's defaults without a cluster.
pub fn capabilities() -> Capabilities {
    Capabilities {
        kube_version: "v1.36.0".into(),
        api_versions: vec!["v1".into(), "apps/v1".into(), "batch/v1".into()],
        helm_version: "v4.2".into(),
        lookup: None,
    }
}

pub fn release() -> ReleaseInfo {
    ReleaseInfo {
        name: "demo".into(),
        namespace: "ns".into(),
        revision: 1,
        is_install: true,
        is_upgrade: false,
    }
}

/// Our rendering of the chart directory (template files, as Helm's
/// engine returns them).
pub fn ours_dir(chart: &Path) -> Result<BTreeMap<String, String>, String> {
    let chart = load_dir(chart).map_err(|e| e.to_string())?;
    let values = k3r_helm_render::deps::coalesce_tree(&chart, &Value::from(BTreeMap::new()));
    render(&chart, &values, &release(), &capabilities()).map_err(|e| e.to_string())
}

/// Our release manifest for the chart directory with user values (JSON).
pub fn our_manifest(chart: &Path, values: &serde_json::Value) -> Result<String, String> {
    let chart = load_dir(chart).map_err(|e| e.to_string())?;
    let user = parse_json(&values.to_string())?;
    template(&chart, &user, &release(), &capabilities())
        .map(|r| r.manifest())
        .map_err(|e| e.to_string())
}

fn write(values_yaml: &str, templates: &[(&str, &str)]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let chart = k3r_helm_oracle::write_chart(dir.path(), CHART, values_yaml, templates);
    (dir, chart)
}

pub fn ours(
    values_yaml: &str,
    templates: &[(&str, &str)],
) -> Result<BTreeMap<String, String>, String> {
    let (_dir, chart) = write(values_yaml, templates);
    ours_dir(&chart)
}

pub fn helm(
    values_yaml: &str,
    templates: &[(&str, &str)],
) -> Result<BTreeMap<String, String>, String> {
    let (_dir, chart) = write(values_yaml, templates);
    k3r_helm_oracle::helm_render(&chart, "demo", "ns")
}

/// Every case must render identically.
pub fn assert_same(values_yaml: &str, cases: &[(&str, &str)]) {
    let (_dir, chart) = write(values_yaml, cases);
    let expected =
        k3r_helm_oracle::helm_render(&chart, "demo", "ns").expect("Helm renders the cases");
    let actual = ours_dir(&chart).expect("we render the cases");
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
