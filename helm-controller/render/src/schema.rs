//! values.schema.json: each chart's schema checked against its values
//! (a subchart's against its own section), as Helm does before rendering.

use k3r_gotemplate::Value;

use crate::chart::Chart;

/// Our values as serde_json (for the validator). Integral floats become
/// integers: values are float64 in Helm, and its validator takes 3.0 for an
/// integer under every draft (draft-04 included).
pub fn to_serde(value: &Value) -> serde_json::Value {
    match value {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        #[allow(clippy::cast_possible_truncation)]
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
            serde_json::Value::from(*f as i64)
        }
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::String(s) => serde_json::Value::String(s.to_string()),
        Value::Bytes(b) => serde_json::Value::String(crate::json::base64(b)),
        Value::List(items) => serde_json::Value::Array(items.iter().map(to_serde).collect()),
        Value::Map(map) => serde_json::Value::Object(
            map.entries()
                .into_iter()
                .map(|(k, v)| (k, to_serde(&v)))
                .collect(),
        ),
        Value::Object(o) => to_serde(&o.to_data()),
    }
}

/// serde_json as Kubernetes' unstructured objects decode it (what `lookup`
/// returns): integers stay int64, other numbers are float64.
pub fn from_serde(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or_default()),
        },
        serde_json::Value::String(s) => Value::str(s),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(from_serde).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), from_serde(v)))
                .collect::<std::collections::BTreeMap<_, _>>(),
        ),
    }
}

/// Helm's validator (santhosh-tekuri/jsonschema) knows each draft by its
/// URL with or without "#", over http or https, and takes
/// "http://json-schema.org/schema#" for the latest draft (2020-12), which
/// is also its default without `$schema`; the validator here knows each
/// draft under one spelling, so the root's `$schema` is rewritten to it.
fn canonical_meta_schema(schema: &mut serde_json::Value) {
    let Some(declared) = schema.get("$schema").and_then(serde_json::Value::as_str) else {
        return;
    };
    let bare = declared
        .trim_end_matches('#')
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let canonical = match bare {
        "json-schema.org/schema" | "json-schema.org/draft/2020-12/schema" => {
            "https://json-schema.org/draft/2020-12/schema"
        }
        "json-schema.org/draft/2019-09/schema" => "https://json-schema.org/draft/2019-09/schema",
        "json-schema.org/draft-07/schema" => "http://json-schema.org/draft-07/schema#",
        "json-schema.org/draft-06/schema" => "http://json-schema.org/draft-06/schema#",
        "json-schema.org/draft-04/schema" => "http://json-schema.org/draft-04/schema#",
        _ => return,
    };
    schema["$schema"] = serde_json::Value::from(canonical);
}

/// Checks every schema in the tree; the error lists each failing chart
/// and its problems.
pub fn validate(chart: &Chart, values: &Value) -> Result<(), String> {
    let mut failures = String::new();
    check(chart, values, &mut failures);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "values don't meet the specifications of the schema(s) in the following chart(s):\n{failures}"
        ))
    }
}

fn check(chart: &Chart, values: &Value, failures: &mut String) {
    if let Some(schema_text) = &chart.schema {
        let parsed = serde_json::from_str::<serde_json::Value>(schema_text).map(|mut schema| {
            canonical_meta_schema(&mut schema);
            schema
        });
        let problems = match parsed {
            Err(e) => vec![format!("values.schema.json is not valid JSON: {e}")],
            Ok(schema) => match jsonschema::validator_for(&schema) {
                Err(e) => vec![format!("values.schema.json is not a valid schema: {e}")],
                Ok(validator) => {
                    let instance = to_serde(values);
                    let errors: Vec<_> = validator.iter_errors(&instance).collect();
                    crate::schema_errors::helm_lines(&errors)
                }
            },
        };
        if !problems.is_empty() {
            failures.push_str(&format!("{}:\n{}\n", chart.name(), problems.join("\n")));
        }
    }
    for sub in &chart.dependencies {
        let section = match values {
            Value::Map(m) => m.get(&sub.name()).unwrap_or_default(),
            _ => Value::Nil,
        };
        check(sub, &section, failures);
    }
}
