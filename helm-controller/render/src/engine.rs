//! Rendering a chart's templates as Helm's engine does: the templates of
//! the chart and all its subcharts parsed into one set (deepest paths first,
//! so a parent's `define` wins), each non-partial executed with its chart's
//! {Values, Release, Chart, Capabilities, Template, Files, Subcharts}, and
//! "<no value>" removed from the output.

use std::collections::BTreeMap;
use std::sync::Arc;

use k3r_gotemplate::{Object, Value, map_of};

use crate::chart::Chart;
use crate::files::Files;
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

/// Helm's `lookup apiVersion kind namespace name`: the object (a map), a
/// `{items: [...]}` list when name is empty, an empty map when not found.
#[derive(Clone)]
pub struct Lookup(pub Arc<LookupFn>);

/// (apiVersion, kind, namespace, name) -> object, list or empty map.
pub type LookupFn = dyn Fn(&str, &str, &str, &str) -> Result<Value, String> + Send + Sync;

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lookup")
    }
}

/// What `.Capabilities` says (and, for `lookup`, how to reach the cluster).
#[derive(Clone, Debug)]
pub struct Capabilities {
    /// "v1.35.8"
    pub kube_version: String,
    /// group/versions and group/version/Kinds the cluster serves.
    pub api_versions: Vec<String>,
    pub helm_version: String,
    /// The live cluster for `lookup`; without it lookup finds nothing, as
    /// in `helm template`.
    pub lookup: Option<Lookup>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct RenderError(pub String);

/// One template to execute: its data (shared per chart) and base path.
struct Renderable {
    text: String,
    data: Value,
    base_path: String,
}

/// Renders every template of the chart and its (already processed)
/// subcharts with `values` (already coalesced): "<path>" -> text, where
/// path is "top/templates/x.yaml" or "top/charts/sub/templates/y.yaml".
/// Partials (names starting with '_') are parsed but not rendered.
pub fn render(
    chart: &Chart,
    values: &Value,
    release: &ReleaseInfo,
    capabilities: &Capabilities,
) -> Result<BTreeMap<String, String>, RenderError> {
    let mut templates: BTreeMap<String, Renderable> = BTreeMap::new();
    let shared = Shared {
        release: release_value(release),
        capabilities: Value::Object(Arc::new(CapabilitiesObject(capabilities.clone()))),
    };
    collect(chart, values, &chart.name(), true, &shared, &mut templates);
    let mut names: Vec<&String> = templates.keys().collect();
    names.sort_by(|a, b| parse_order(a, b));
    let mut set = helm_template();
    if let Some(Lookup(lookup)) = &capabilities.lookup {
        let lookup = Arc::clone(lookup);
        set.func("lookup", move |_, a| {
            let text = |i: usize| match a.get(i) {
                Some(Value::String(s)) => Ok(s.to_string()),
                Some(Value::Nil) | None => Ok(String::new()),
                Some(other) => Err(k3r_gotemplate::FuncError::Arg(format!(
                    "wrong type for value; expected string; got {}",
                    other.type_name()
                ))),
            };
            if a.len() != 4 {
                return Err(k3r_gotemplate::FuncError::Arg(format!(
                    "wrong number of args for lookup: want 4 got {}",
                    a.len()
                )));
            }
            lookup(&text(0)?, &text(1)?, &text(2)?, &text(3)?)
                .map_err(k3r_gotemplate::FuncError::Call)
        });
    }
    for name in &names {
        set.parse(name, &templates[name.as_str()].text)
            .map_err(|e| RenderError(e.to_string()))?;
    }
    let mut out = BTreeMap::new();
    for name in names {
        let base = name.rsplit('/').next().unwrap_or_default();
        if base.starts_with('_') {
            continue;
        }
        let renderable = &templates[name.as_str()];
        let data = with_template(&renderable.data, name, &renderable.base_path);
        let text = set
            .execute(name, data)
            .map_err(|e| RenderError(e.to_string()))?;
        out.insert(name.clone(), text.replace("<no value>", ""));
    }
    Ok(out)
}

struct Shared {
    release: Value,
    capabilities: Value,
}

/// Helm's recAllTpls: the data of a chart, its subcharts' under
/// `.Subcharts`, and its templates by full path.
fn collect(
    chart: &Chart,
    values: &Value,
    full_path: &str,
    is_root: bool,
    shared: &Shared,
    templates: &mut BTreeMap<String, Renderable>,
) -> Value {
    let mut subcharts = BTreeMap::new();
    for child in &chart.dependencies {
        let child_values = match values {
            Value::Map(m) => match m.get(&child.name()) {
                Some(v @ Value::Map(_)) => v,
                _ => map_of([]),
            },
            _ => map_of([]),
        };
        let child_path = format!("{full_path}/charts/{}", child.name());
        let data = collect(child, &child_values, &child_path, false, shared, templates);
        subcharts.insert(child.name(), data);
    }
    let data = map_of([
        (
            "Chart".to_string(),
            Value::Object(Arc::new(ChartObject {
                metadata: chart.metadata.clone(),
                is_root,
            })),
        ),
        (
            "Files".to_string(),
            Value::Object(Arc::new(Files::new(&chart.files))),
        ),
        ("Release".to_string(), shared.release.clone()),
        ("Capabilities".to_string(), shared.capabilities.clone()),
        ("Values".to_string(), values.clone()),
        ("Subcharts".to_string(), Value::from(subcharts)),
    ]);
    for (path, text) in chart.templates.iter() {
        let base = path.rsplit('/').next().unwrap_or_default();
        // A library chart only lends its helpers.
        if chart.is_library() && !base.starts_with('_') {
            continue;
        }
        templates.insert(
            format!("{full_path}/{path}"),
            Renderable {
                text: text.clone(),
                data: data.clone(),
                base_path: format!("{full_path}/templates"),
            },
        );
    }
    data
}

/// The chart's data with this template's `.Template`.
fn with_template(data: &Value, name: &str, base_path: &str) -> Value {
    let Value::Map(m) = data else {
        return data.clone();
    };
    let mut copy = m.to_map();
    copy.insert(
        "Template".into(),
        map_of([
            ("Name".to_string(), Value::str(name)),
            ("BasePath".to_string(), Value::str(base_path)),
        ]),
    );
    Value::from(copy)
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

/// `.Chart`: Chart.yaml with Go's field names, and IsRoot.
#[derive(Debug)]
struct ChartObject {
    metadata: Value,
    is_root: bool,
}

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
        if name == "IsRoot" {
            return Some(Value::Bool(self.is_root));
        }
        let (_, key) = CHART_FIELDS.iter().find(|(field, _)| *field == name)?;
        let value = match &self.metadata {
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
        self.metadata.to_go_string()
    }

    fn to_data(&self) -> Value {
        self.metadata.clone()
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
