//! Dependencies as Helm processes them before rendering: aliases,
//! `tags` and `condition` (conditions win; the first path that resolves to a
//! bool decides), disabled charts removed recursively; then values
//! coalesced down the tree with the parent's `global` winning.

use std::collections::BTreeMap;

use k3r_gotemplate::Value;

use crate::chart::Chart;
use crate::values::coalesce_except;

/// One entry of Chart.yaml `dependencies`.
struct Dependency {
    name: String,
    alias: Option<String>,
    condition: String,
    tags: Vec<String>,
    import_values: Vec<Value>,
}

fn dependencies_of(chart: &Chart) -> Vec<Dependency> {
    let Value::Map(meta) = &chart.metadata else {
        return Vec::new();
    };
    let Some(Value::List(items)) = meta.get("dependencies") else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Value::Map(m) = item else { return None };
            let text = |k: &str| match m.get(k) {
                Some(Value::String(s)) => s.to_string(),
                _ => String::new(),
            };
            let tags = match m.get("tags") {
                Some(Value::List(tags)) => tags
                    .iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            };
            let import_values = match m.get("import-values") {
                Some(Value::List(items)) => items.to_vec(),
                _ => Vec::new(),
            };
            Some(Dependency {
                name: text("name"),
                alias: Some(text("alias")).filter(|a| !a.is_empty()),
                condition: text("condition"),
                tags,
                import_values,
            })
        })
        .collect()
}

/// Renames a chart (an alias is a copy under another name).
fn renamed(chart: &Chart, name: &str) -> Chart {
    let mut copy = chart.clone();
    if let Value::Map(m) = &chart.metadata {
        let mut meta = m.to_map();
        meta.insert("name".into(), Value::str(name));
        copy.metadata = Value::from(meta);
    }
    copy
}

/// A value at a dotted path ("sub.enabled") in a values tree.
fn path_value(values: &Value, path: &str) -> Option<Value> {
    let mut current = values.clone();
    for part in path.split('.') {
        current = match &current {
            Value::Map(m) => m.get(part)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Applies aliases, tags and conditions through the tree; `user` are the
/// values given for this chart (the release's values at the root).
pub fn process(chart: &Chart, user: &Value) -> Chart {
    process_at(chart, user, "")
}

fn process_at(chart: &Chart, top: &Value, path: &str) -> Chart {
    let declared = dependencies_of(chart);
    let mut result = chart.clone();
    // Subcharts not named in Chart.yaml stay; declared ones are taken (and
    // copied under their alias).
    let mut children: Vec<Chart> = chart
        .dependencies
        .iter()
        .filter(|c| !declared.iter().any(|d| d.name == c.name()))
        .cloned()
        .collect();
    for dep in &declared {
        if let Some(found) = chart.dependencies.iter().find(|c| c.name() == dep.name) {
            children.push(match &dep.alias {
                Some(alias) => renamed(found, alias),
                None => found.clone(),
            });
        }
    }
    result.dependencies = children;
    // Conditions and tags are read from the values coalesced so far.
    let coalesced = coalesce_tree(&result, &scoped(top, path));
    let tags = path_value(&coalesced, "tags");
    let mut disabled: Vec<String> = Vec::new();
    for dep in &declared {
        let name = dep.alias.clone().unwrap_or_else(|| dep.name.clone());
        let mut enabled = true;
        let (mut has_true, mut has_false) = (false, false);
        for tag in &dep.tags {
            match tags.as_ref().and_then(|t| path_value(t, tag)) {
                Some(Value::Bool(true)) => has_true = true,
                Some(Value::Bool(false)) => has_false = true,
                _ => {}
            }
        }
        if !has_true && has_false {
            enabled = false;
        }
        for condition in dep.condition.trim().split(',').filter(|c| !c.is_empty()) {
            if let Some(Value::Bool(b)) = path_value(&coalesced, condition.trim()) {
                enabled = b;
                break;
            }
        }
        if !enabled {
            disabled.push(name);
        }
    }
    result
        .dependencies
        .retain(|c| !disabled.contains(&c.name()));
    let children = std::mem::take(&mut result.dependencies);
    result.dependencies = children
        .iter()
        .map(|c| process_at(c, top, &format!("{path}{}.", c.name())))
        .collect();
    import_values(&mut result, &declared);
    result
}

/// `import-values`: a child's `exports.<name>` (string form) or any child
/// table (`{child, parent}` form) copied into this chart's values, below
/// the chart's own values (Helm's processImportValues, merge mode).
fn import_values(chart: &mut Chart, declared: &[Dependency]) {
    if declared.iter().all(|d| d.import_values.is_empty()) {
        return;
    }
    let merged = coalesce_tree(chart, &Value::from(BTreeMap::new()));
    let mut imported = Value::from(BTreeMap::new());
    for dep in declared {
        let name = dep.alias.clone().unwrap_or_else(|| dep.name.clone());
        for entry in &dep.import_values {
            let (child, parent) = match entry {
                Value::String(export) => (format!("exports.{export}"), ".".to_string()),
                Value::Map(m) => {
                    let field = |k: &str| {
                        m.get(k).map(|v| match v {
                            Value::String(s) => s.to_string(),
                            other => other.to_go_string(),
                        })
                    };
                    match (field("child"), field("parent")) {
                        (Some(c), Some(p)) => (c, p),
                        _ => continue,
                    }
                }
                _ => continue,
            };
            let Some(table @ Value::Map(_)) = path_value(&merged, &format!("{name}.{child}"))
            else {
                continue;
            };
            imported = crate::values::merge(&imported, &path_to_map(&parent, table));
        }
    }
    // The chart's own (coalesced) values win over what it imports.
    chart.values = crate::values::merge(&imported, &merged);
}

/// {"a.b": v} -> {a: {b: v}}; "." is the root.
fn path_to_map(path: &str, value: Value) -> Value {
    if path == "." || path.is_empty() {
        return value;
    }
    path.rsplit('.').fold(value, |inner, key| {
        Value::from(BTreeMap::from([(key.to_string(), inner)]))
    })
}

/// The values a chart at `path` ("sub.subsub.") was given, from the root.
fn scoped(top: &Value, path: &str) -> Value {
    let trimmed = path.trim_end_matches('.');
    if trimmed.is_empty() {
        return top.clone();
    }
    path_value(top, trimmed).unwrap_or_else(|| Value::from(BTreeMap::new()))
}

/// Helm's CoalesceValues over the whole tree: each subchart's section
/// (created when missing) gets the parent's globals, then its own defaults.
pub fn coalesce_tree(chart: &Chart, user: &Value) -> Value {
    let children: Vec<String> = chart.dependencies.iter().map(Chart::name).collect();
    let merged = coalesce_except(&chart.values, user, &children);
    let Value::Map(dest) = &merged else {
        return merged;
    };
    for sub in &chart.dependencies {
        let name = sub.name();
        let mut section = match dest.get(&name) {
            Some(Value::Map(m)) => m.to_map(),
            _ => BTreeMap::new(),
        };
        if let Some(Value::Map(parent_global)) = dest.get("global") {
            let child_global = section
                .get("global")
                .cloned()
                .unwrap_or_else(|| Value::from(BTreeMap::new()));
            // The parent's globals win over the child's.
            section.insert(
                "global".into(),
                merge_globals(&child_global, &Value::Map(parent_global)),
            );
        }
        dest.insert(name, coalesce_tree(sub, &Value::from(section)));
    }
    merged
}

fn merge_globals(child: &Value, parent: &Value) -> Value {
    let (Value::Map(child), Value::Map(parent)) = (child, parent) else {
        return parent.clone();
    };
    let mut out = child.to_map();
    for (key, value) in parent.entries() {
        let merged = match (out.get(&key), &value) {
            (Some(existing @ Value::Map(_)), Value::Map(_)) => merge_globals(existing, &value),
            _ => value.clone(),
        };
        out.insert(key, merged);
    }
    Value::from(out)
}
