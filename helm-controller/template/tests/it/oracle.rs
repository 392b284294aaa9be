//! Real Helm (v4, through the `helm-python-sdk` wheel) as the oracle: a
//! chart is written to a temporary dir and rendered by Helm; the same
//! templates are rendered by this crate with the data Helm would pass.

use std::collections::BTreeMap;
use std::path::Path;

use k3r_gotemplate::{Template, Value};

pub const CHART: &str = "demo";

/// Helm decodes values through JSON: every number is a float64.
pub fn from_json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Value::str(s),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(from_json).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), from_json(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

/// Writes the chart (JSON values are YAML too).
pub fn write_chart(dir: &Path, values: &serde_json::Value, templates: &[(&str, &str)]) {
    k3r_helm_oracle::write_chart(dir, CHART, &values.to_string(), templates);
}

/// Helm's result: rendered files by path, or its error text.
pub fn helm_render(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    k3r_helm_oracle::helm_render(&dir.join(CHART), "demo", "ns")
}

/// The top-level object Helm executes templates with (the parts the
/// engine tests use).
pub fn render_data(values: &serde_json::Value, template: &str) -> Value {
    let mut release = BTreeMap::new();
    release.insert("Name".to_string(), Value::str("demo"));
    release.insert("Namespace".to_string(), Value::str("ns"));
    release.insert("Revision".to_string(), Value::Int(1));
    release.insert("IsInstall".to_string(), Value::Bool(true));
    release.insert("IsUpgrade".to_string(), Value::Bool(false));
    release.insert("Service".to_string(), Value::str("Helm"));
    let mut tmpl = BTreeMap::new();
    tmpl.insert("Name".to_string(), Value::str(template));
    tmpl.insert(
        "BasePath".to_string(),
        Value::str(&format!("{CHART}/templates")),
    );
    let mut top = BTreeMap::new();
    top.insert("Values".to_string(), from_json(values));
    top.insert("Release".to_string(), Value::from(release));
    top.insert("Template".to_string(), Value::from(tmpl));
    Value::from(top)
}

/// Renders like Helm's engine: all files parsed into one set, each
/// executed, "<no value>" removed.
pub fn ours(
    values: &serde_json::Value,
    templates: &[(&str, &str)],
) -> Result<BTreeMap<String, String>, String> {
    let mut set = Template::new();
    let mut names = Vec::new();
    for (file, text) in templates {
        let name = format!("{CHART}/templates/{file}");
        set.parse(&name, text).map_err(|e| e.to_string())?;
        names.push(name);
    }
    let mut out = BTreeMap::new();
    for name in names {
        let text = set
            .execute(&name, render_data(values, &name))
            .map_err(|e| e.to_string())?;
        out.insert(name, text.replace("<no value>", ""));
    }
    Ok(out)
}
