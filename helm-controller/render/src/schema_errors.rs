//! values.schema.json failures worded as Helm's validator
//! (santhosh-tekuri/jsonschema) words them: "- at '/path': message", the
//! root at '', one line for all the missing properties of an object.

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind as Kind};
use k3r_gotemplate::format_float_g;
use serde_json::Value;

/// One line per failure, in the validator's order.
pub fn helm_lines(errors: &[ValidationError<'_>]) -> Vec<String> {
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut missing: Vec<(String, Vec<String>)> = Vec::new();
    for e in errors {
        let at = e.instance_path().to_string();
        if let Kind::Required { property } = e.kind() {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), String::from);
            match missing.iter_mut().find(|(path, _)| *path == at) {
                Some((_, names)) => names.push(name),
                None => {
                    missing.push((at.clone(), vec![name]));
                    // Placeholder keeps the first missing property's place.
                    lines.push((at, String::new()));
                }
            }
            continue;
        }
        lines.push((at, message(e)));
    }
    lines
        .into_iter()
        .map(|(at, message)| {
            let message = if message.is_empty() {
                let names = missing
                    .iter()
                    .find(|(path, _)| *path == at)
                    .map(|(_, names)| names.as_slice())
                    .unwrap_or_default();
                match names {
                    [one] => format!("missing property {}", quote(one)),
                    many => format!("missing properties {}", join_quoted(many)),
                }
            } else {
                message
            };
            format!("- at '{at}': {message}")
        })
        .collect()
}

fn message(e: &ValidationError<'_>) -> String {
    let got: &Value = e.instance();
    match e.kind() {
        Kind::Type { kind } => {
            let want: Vec<String> = match kind {
                TypeKind::Single(t) => vec![t.to_string()],
                TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
            };
            format!("got {}, want {}", json_type(got), want.join(" or "))
        }
        Kind::AdditionalProperties { unexpected } => {
            format!(
                "additional properties {} not allowed",
                join_quoted(unexpected)
            )
        }
        Kind::Enum { options } => {
            let options = options.as_array().cloned().unwrap_or_default();
            if options.iter().any(|o| o.is_array() || o.is_object()) {
                "enum failed".into()
            } else if let [one] = options.as_slice() {
                format!("value must be {}", display(one))
            } else {
                let shown: Vec<String> = options.iter().map(display).collect();
                format!("value must be one of {}", shown.join(", "))
            }
        }
        Kind::Constant { expected_value }
            if expected_value.is_array() || expected_value.is_object() =>
        {
            "const failed".into()
        }
        Kind::Constant { expected_value } => format!("value must be {}", display(expected_value)),
        Kind::Minimum { limit } => bound("minimum", got, limit),
        Kind::Maximum { limit } => bound("maximum", got, limit),
        Kind::ExclusiveMinimum { limit } => bound("exclusiveMinimum", got, limit),
        Kind::ExclusiveMaximum { limit } => bound("exclusiveMaximum", got, limit),
        Kind::MultipleOf { multiple_of } => format!(
            "multipleOf: got {}, want {}",
            number(got),
            format_float_g(*multiple_of)
        ),
        Kind::MinLength { limit } => format!("minLength: got {}, want {limit}", length(got)),
        Kind::MaxLength { limit } => format!("maxLength: got {}, want {limit}", length(got)),
        Kind::MinItems { limit } => format!("minItems: got {}, want {limit}", length(got)),
        Kind::MaxItems { limit } => format!("maxItems: got {}, want {limit}", length(got)),
        Kind::MinProperties { limit } => {
            format!("minProperties: got {}, want {limit}", length(got))
        }
        Kind::MaxProperties { limit } => {
            format!("maxProperties: got {}, want {limit}", length(got))
        }
        Kind::Pattern { pattern } => format!(
            "{} does not match pattern {}",
            quote(got.as_str().unwrap_or_default()),
            quote(pattern)
        ),
        Kind::UniqueItems => {
            let items = got.as_array().cloned().unwrap_or_default();
            let pair = (0..items.len())
                .flat_map(|i| (i + 1..items.len()).map(move |j| (i, j)))
                .find(|(i, j)| items[*i] == items[*j]);
            let (i, j) = pair.unwrap_or((0, 0));
            format!("items at {i} and {j} are equal")
        }
        Kind::FalseSchema => "false schema".into(),
        Kind::Not { .. } => "not failed".into(),
        Kind::AnyOf { .. } => "anyOf failed".into(),
        Kind::OneOfNotValid { .. } => "oneOf failed, none matched".into(),
        Kind::Contains => "no items match contains schema".into(),
        Kind::Format { format } => format!("{} is not valid {format}", display(got)),
        _ => e.to_string(),
    }
}

fn bound(keyword: &str, got: &Value, limit: &Value) -> String {
    format!("{keyword}: got {}, want {}", number(got), number(limit))
}

/// Go's %v of the number as a float64.
fn number(value: &Value) -> String {
    value
        .as_f64()
        .map_or_else(|| value.to_string(), format_float_g)
}

fn length(value: &Value) -> usize {
    match value {
        Value::String(s) => s.chars().count(),
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        _ => 0,
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// santhosh's quote: Go's %q with single quotes outside.
fn quote(s: &str) -> String {
    let go = k3r_gotemplate::fmt::go_quote(s)
        .replace("\\\"", "\"")
        .replace('\'', "\\'");
    format!("'{}'", &go[1..go.len() - 1])
}

fn join_quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|s| quote(s))
        .collect::<Vec<_>>()
        .join(", ")
}

fn display(value: &Value) -> String {
    match value {
        Value::String(s) => quote(s),
        Value::Array(_) | Value::Object(_) => "value".into(),
        Value::Number(_) => number(value),
        other => other.to_string(),
    }
}
