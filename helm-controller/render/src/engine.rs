//! Rendering one chart's templates as Helm's engine does: every template
//! parsed into one set (deepest paths first, so a parent's `define` wins),
//! each non-partial executed with {Values, Release, Chart, Capabilities,
//! Template, Files}, and "<no value>" removed from the output.

use std::collections::BTreeMap;
use std::sync::Arc;

use k3r_gotemplate::{Object, Value, map_of};

use crate::funcs::helm_template;

/// What `.Release` says.
#[derive(Clone, Debug)]
pub struct ReleaseInfo {
    pub name: String,
    pub namespace: String,
    pub revision: i64,
    pub is_install: bool,
    pub is_upgrade: bool,
}

/// What `.Capabilities` says.
#[derive(Clone, Debug)]
pub struct Capabilities {
    /// "v1.35.8"
    pub kube_version: String,
    /// group/versions and group/version/Kinds the cluster serves.
    pub api_versions: Vec<String>,
    pub helm_version: String,
}

/// A chart as loaded: its name, Chart.yaml, and templates by path
/// relative to the chart (`templates/deployment.yaml`).
#[derive(Clone, Debug)]
pub struct ChartSource {
    pub name: String,
    pub metadata: Value,
    pub templates: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct RenderError(pub String);

/// Renders every template: "<chart>/templates/<file>" -> text (partials,
/// whose names start with '_', are parsed but not rendered).
pub fn render(
    chart: &ChartSource,
    values: &Value,
    release: &ReleaseInfo,
    capabilities: &Capabilities,
) -> Result<BTreeMap<String, String>, RenderError> {
    let mut names: Vec<(String, &str)> = chart
        .templates
        .iter()
        .map(|(path, text)| (format!("{}/{path}", chart.name), text.as_str()))
        .collect();
    names.sort_by(|(a, _), (b, _)| parse_order(a, b));
    let mut set = helm_template();
    for (name, text) in &names {
        set.parse(name, text)
            .map_err(|e| RenderError(e.to_string()))?;
    }
    let top = |template: &str| {
        map_of([
            ("Values".to_string(), values.clone()),
            ("Release".to_string(), release_value(release)),
            (
                "Chart".to_string(),
                Value::Object(Arc::new(ChartObject(chart.metadata.clone()))),
            ),
            (
                "Capabilities".to_string(),
                Value::Object(Arc::new(CapabilitiesObject(capabilities.clone()))),
            ),
            (
                "Template".to_string(),
                map_of([
                    ("Name".to_string(), Value::str(template)),
                    (
                        "BasePath".to_string(),
                        Value::from(format!("{}/templates", chart.name)),
                    ),
                ]),
            ),
            ("Files".to_string(), map_of([])),
        ])
    };
    let mut out = BTreeMap::new();
    for (name, _) in &names {
        let base = name.rsplit('/').next().unwrap_or_default();
        if base.starts_with('_') {
            continue;
        }
        let text = set
            .execute(name, top(name))
            .map_err(|e| RenderError(e.to_string()))?;
        out.insert(name.clone(), text.replace("<no value>", ""));
    }
    Ok(out)
}

/// Helm's sortTemplates: more '/' first, then reverse lexical.
fn parse_order(a: &str, b: &str) -> std::cmp::Ordering {
    let depth = |s: &str| s.matches('/').count();
    depth(b).cmp(&depth(a)).then_with(|| b.cmp(a))
}

fn release_value(release: &ReleaseInfo) -> Value {
    map_of([
        ("Name".to_string(), Value::str(&release.name)),
        ("Namespace".to_string(), Value::str(&release.namespace)),
        ("Revision".to_string(), Value::Int(release.revision)),
        ("IsInstall".to_string(), Value::Bool(release.is_install)),
        ("IsUpgrade".to_string(), Value::Bool(release.is_upgrade)),
        ("Service".to_string(), Value::str("Helm")),
    ])
}

/// `.Chart`: Chart.yaml with Go's field names.
#[derive(Debug)]
struct ChartObject(Value);

const CHART_FIELDS: &[(&str, &str)] = &[
    ("Name", "name"),
    ("Home", "home"),
    ("Sources", "sources"),
    ("Version", "version"),
    ("Description", "description"),
    ("Keywords", "keywords"),
    ("Maintainers", "maintainers"),
    ("Icon", "icon"),
    ("APIVersion", "apiVersion"),
    ("Condition", "condition"),
    ("Tags", "tags"),
    ("AppVersion", "appVersion"),
    ("Deprecated", "deprecated"),
    ("Annotations", "annotations"),
    ("KubeVersion", "kubeVersion"),
    ("Dependencies", "dependencies"),
    ("Type", "type"),
];

impl Object for ChartObject {
    fn type_name(&self) -> &str {
        "*chart.Metadata"
    }

    fn field(&self, name: &str) -> Option<Value> {
        let (_, key) = CHART_FIELDS.iter().find(|(field, _)| *field == name)?;
        let value = match &self.0 {
            Value::Map(m) => m.get(key),
            _ => None,
        };
        Some(match (value, *key) {
            (Some(v), _) => v,
            // Go's zero values for the string fields.
            (
                None,
                "name" | "home" | "version" | "description" | "icon" | "apiVersion" | "condition"
                | "tags" | "appVersion" | "kubeVersion" | "type",
            ) => Value::str(""),
            (None, "deprecated") => Value::Bool(false),
            (None, _) => Value::Nil,
        })
    }

    fn method(&self, _name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        None
    }

    fn format(&self) -> String {
        self.0.to_go_string()
    }

    fn to_data(&self) -> Value {
        self.0.clone()
    }
}

/// `.Capabilities` and its parts.
#[derive(Debug)]
struct CapabilitiesObject(Capabilities);

#[derive(Debug)]
struct KubeVersionObject(String);

#[derive(Debug)]
struct ApiVersionsObject(Vec<String>);

impl Object for CapabilitiesObject {
    fn type_name(&self) -> &str {
        "*common.Capabilities"
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "KubeVersion" => Some(Value::Object(Arc::new(KubeVersionObject(
                self.0.kube_version.clone(),
            )))),
            "APIVersions" => Some(Value::Object(Arc::new(ApiVersionsObject(
                self.0.api_versions.clone(),
            )))),
            "HelmVersion" => Some(map_of([
                ("Version".to_string(), Value::str(&self.0.helm_version)),
                ("GitCommit".to_string(), Value::str("")),
                ("GitTreeState".to_string(), Value::str("")),
                ("GoVersion".to_string(), Value::str("")),
            ])),
            _ => None,
        }
    }

    fn method(&self, _name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        None
    }

    fn format(&self) -> String {
        format!(
            "&{{{} {:?} {}}}",
            self.0.kube_version, self.0.api_versions, self.0.helm_version
        )
    }
}

impl KubeVersionObject {
    fn parts(&self) -> (String, String) {
        let mut parts = self.0.trim_start_matches('v').split('.');
        (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        )
    }
}

impl Object for KubeVersionObject {
    fn type_name(&self) -> &str {
        "common.KubeVersion"
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Version" => Some(Value::str(&self.0)),
            "Major" => Some(Value::from(self.parts().0)),
            "Minor" => Some(Value::from(self.parts().1)),
            _ => None,
        }
    }

    fn method(&self, name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        match name {
            "String" | "GitVersion" => Some(Ok(Value::str(&self.0))),
            _ => None,
        }
    }

    fn format(&self) -> String {
        self.0.clone()
    }
}

impl Object for ApiVersionsObject {
    fn type_name(&self) -> &str {
        "common.VersionSet"
    }

    fn field(&self, _name: &str) -> Option<Value> {
        None
    }

    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match name {
            "Has" => Some(match args {
                [Value::String(v)] => Ok(Value::Bool(self.0.iter().any(|a| a == &**v))),
                _ => Err("wrong number of args for Has: want 1".into()),
            }),
            _ => None,
        }
    }

    fn format(&self) -> String {
        format!("[{}]", self.0.join(" "))
    }

    fn to_data(&self) -> Value {
        Value::from(self.0.iter().map(|v| Value::str(v)).collect::<Vec<_>>())
    }
}
