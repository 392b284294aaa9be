//! `spec.set`: Helm's --set / --set-string paths (`a.b`, `list[0].x`,
//! `a\.b` for a literal dot). k3s passes ints and "true"/"false" with
//! --set (typed) and every other string with --set-string.

use std::collections::BTreeMap;

use k3r_gotemplate::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("spec.set {key:?}: {message}")]
pub struct SetError {
    pub key: String,
    pub message: String,
}

/// One path element.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

fn parse_path(key: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut current = String::new();
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => current.push(escaped),
                None => return Err("ends with a backslash".into()),
            },
            '.' => {
                if current.is_empty() && !matches!(steps.last(), Some(Step::Index(_))) {
                    return Err("empty path element".into());
                }
                if !current.is_empty() {
                    steps.push(Step::Key(std::mem::take(&mut current)));
                }
            }
            '[' => {
                if !current.is_empty() {
                    steps.push(Step::Key(std::mem::take(&mut current)));
                }
                let mut digits = String::new();
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                    digits.push(d);
                }
                let index = digits
                    .parse::<usize>()
                    .map_err(|_| format!("invalid list index [{digits}]"))?;
                steps.push(Step::Index(index));
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        steps.push(Step::Key(current));
    }
    if steps.is_empty() {
        return Err("empty key".into());
    }
    Ok(steps)
}

/// strvals' typedVal for --set: true/false/null, integers without a
/// leading zero (int64), everything else a string.
pub fn typed(text: &str) -> Value {
    match text {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        "null" => return Value::Nil,
        _ => {}
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    let leading_zero = digits.len() > 1 && digits.starts_with('0');
    if !leading_zero
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = text.parse::<i64>()
    {
        return Value::Int(i);
    }
    Value::str(text)
}

/// A HelmChart `set` entry's value: k3s sends ints and "true"/"false"
/// typed, other strings as strings.
pub fn set_value(int: Option<i64>, text: &str) -> Value {
    match int {
        Some(i) => Value::Int(i),
        None if text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false") => {
            typed(&text.to_ascii_lowercase())
        }
        None => Value::str(text),
    }
}

/// Sets `key` (a --set path) to `value` in `values`, creating maps and
/// growing lists as Helm does (missing list elements become null).
pub fn apply(values: &Value, key: &str, value: Value) -> Result<Value, SetError> {
    let error = |message: String| SetError {
        key: key.to_string(),
        message,
    };
    let steps = parse_path(key).map_err(error)?;
    Ok(set_at(values, &steps, value))
}

fn set_at(current: &Value, steps: &[Step], value: Value) -> Value {
    let Some((first, rest)) = steps.split_first() else {
        return value;
    };
    match first {
        Step::Key(k) => {
            let mut map = match current {
                Value::Map(m) => m.to_map(),
                _ => BTreeMap::new(),
            };
            let child = map.get(k).cloned().unwrap_or_default();
            map.insert(k.clone(), set_at(&child, rest, value));
            Value::from(map)
        }
        Step::Index(i) => {
            let mut list = match current {
                Value::List(l) => l.to_vec(),
                _ => Vec::new(),
            };
            if list.len() <= *i {
                list.resize(*i + 1, Value::Nil);
            }
            list[*i] = set_at(&list[*i], rest, value);
            Value::from(list)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: &Value) -> String {
        k3r_helm_render::json::to_json(v, &k3r_helm_render::json::COMPACT).expect("json")
    }

    #[test]
    fn paths_lists_and_escapes() {
        let base = k3r_helm_render::values::parse_yaml("a: {keep: 1}\n").expect("yaml");
        let v = apply(&base, "a.b.c", typed("5")).expect("set");
        let v = apply(&v, "list[1].name", Value::str("x")).expect("set");
        let v = apply(&v, r"dotted\.key", Value::Bool(true)).expect("set");
        assert_eq!(
            json(&v),
            r#"{"a":{"b":{"c":5},"keep":1},"dotted.key":true,"list":[null,{"name":"x"}]}"#
        );
        assert!(apply(&base, "a..b", Value::Nil).is_err());
        assert!(apply(&base, "l[x]", Value::Nil).is_err());
    }

    #[test]
    fn typed_values_like_strvals() {
        assert_eq!(typed("42"), Value::Int(42));
        assert_eq!(typed("007"), Value::str("007"));
        assert_eq!(typed("1.5"), Value::str("1.5"));
        assert_eq!(typed("true"), Value::Bool(true));
        assert_eq!(set_value(None, "True"), Value::Bool(true));
        assert_eq!(set_value(None, "42"), Value::str("42"));
        assert_eq!(set_value(Some(3), "3"), Value::Int(3));
    }
}
