//! Encodings, hashes, regular expressions, and Helm's YAML/JSON functions.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k3r_gotemplate::{FuncError, Template, Value, map_of};
use regex::Regex;
use sha2::Digest;

use super::args::{Result, arity, int, string};
use crate::json::{COMPACT, PRETTY, RAW, to_json};
use crate::values::{parse_json, parse_yaml, parse_yaml_documents};
use crate::yaml::to_yaml;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn regex(pattern: &str) -> Result<Regex> {
    Regex::new(pattern).map_err(|e| FuncError::Call(format!("error parsing regexp: {e}")))
}

pub fn register(t: &mut Template) {
    t.func("b64enc", |_, a| {
        arity("b64enc", a, 1)?;
        Ok(Value::from(STANDARD.encode(string(a, 0)?)))
    });
    t.func("b64dec", |_, a| {
        arity("b64dec", a, 1)?;
        Ok(Value::from(match STANDARD.decode(string(a, 0)?) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => e.to_string(),
        }))
    });
    t.func("sha1sum", |_, a| {
        arity("sha1sum", a, 1)?;
        Ok(Value::from(hex(&sha1::Sha1::digest(string(a, 0)?))))
    });
    t.func("sha256sum", |_, a| {
        arity("sha256sum", a, 1)?;
        Ok(Value::from(hex(&sha2::Sha256::digest(string(a, 0)?))))
    });
    t.func("sha512sum", |_, a| {
        arity("sha512sum", a, 1)?;
        Ok(Value::from(hex(&sha2::Sha512::digest(string(a, 0)?))))
    });
    t.func("adler32sum", |_, a| {
        arity("adler32sum", a, 1)?;
        let (mut x, mut y) = (1u32, 0u32);
        for b in string(a, 0)?.bytes() {
            x = (x + u32::from(b)) % 65521;
            y = (y + x) % 65521;
        }
        Ok(Value::from(((y << 16) | x).to_string()))
    });

    t.func("regexMatch", |_, a| {
        arity("regexMatch", a, 2)?;
        Ok(Value::Bool(regex(&string(a, 0)?)?.is_match(&string(a, 1)?)))
    });
    t.func("regexFind", |_, a| {
        arity("regexFind", a, 2)?;
        let s = string(a, 1)?;
        Ok(Value::from(
            regex(&string(a, 0)?)?
                .find(&s)
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
        ))
    });
    t.func("regexFindAll", |_, a| {
        arity("regexFindAll", a, 3)?;
        let s = string(a, 1)?;
        let n = int(a, 2)?;
        let found: Vec<Value> = regex(&string(a, 0)?)?
            .find_iter(&s)
            .take(usize::try_from(n).unwrap_or(usize::MAX))
            .map(|m| Value::str(m.as_str()))
            .collect();
        Ok(Value::from(found))
    });
    t.func("regexReplaceAll", |_, a| {
        arity("regexReplaceAll", a, 3)?;
        let s = string(a, 1)?;
        Ok(Value::from(
            regex(&string(a, 0)?)?
                .replace_all(&s, string(a, 2)?.as_str())
                .into_owned(),
        ))
    });
    t.func("regexReplaceAllLiteral", |_, a| {
        arity("regexReplaceAllLiteral", a, 3)?;
        let s = string(a, 1)?;
        let replacement = string(a, 2)?;
        Ok(Value::from(
            regex(&string(a, 0)?)?
                .replace_all(&s, regex::NoExpand(&replacement))
                .into_owned(),
        ))
    });
    t.func("regexSplit", |_, a| {
        arity("regexSplit", a, 3)?;
        let s = string(a, 1)?;
        let n = int(a, 2)?;
        let re = regex(&string(a, 0)?)?;
        let parts: Vec<Value> = if n < 0 {
            re.split(&s).map(Value::str).collect()
        } else {
            re.splitn(&s, usize::try_from(n).unwrap_or(0))
                .map(Value::str)
                .collect()
        };
        Ok(Value::from(parts))
    });
    t.func("regexQuoteMeta", |_, a| {
        arity("regexQuoteMeta", a, 1)?;
        Ok(Value::from(regex::escape(&string(a, 0)?)))
    });

    // Helm: errors are swallowed into "" (toYaml/toJson) or an Error key.
    t.func("toYaml", |_, a| {
        arity("toYaml", a, 1)?;
        Ok(Value::from(
            to_yaml(&a[0])
                .map(|y| y.strip_suffix('\n').unwrap_or(&y).to_string())
                .unwrap_or_default(),
        ))
    });
    t.func("mustToYaml", |_, a| {
        arity("mustToYaml", a, 1)?;
        let y = to_yaml(&a[0]).map_err(FuncError::Call)?;
        Ok(Value::from(y.strip_suffix('\n').unwrap_or(&y).to_string()))
    });
    for (name, style) in [
        ("toJson", &COMPACT),
        ("toPrettyJson", &PRETTY),
        ("toRawJson", &RAW),
    ] {
        t.func(name, move |_, a| {
            arity(name, a, 1)?;
            Ok(Value::from(to_json(&a[0], style).unwrap_or_default()))
        });
    }
    for (name, style) in [
        ("mustToJson", &COMPACT),
        ("mustToPrettyJson", &PRETTY),
        ("mustToRawJson", &RAW),
    ] {
        t.func(name, move |_, a| {
            arity(name, a, 1)?;
            Ok(Value::from(to_json(&a[0], style).map_err(FuncError::Call)?))
        });
    }
    t.func("fromYaml", |_, a| {
        arity("fromYaml", a, 1)?;
        Ok(match parse_yaml(&string(a, 0)?) {
            Ok(Value::Map(m)) => Value::Map(m),
            Ok(Value::Nil) => map_of([]),
            Ok(other) => error_map(format!(
                "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(&other)
            )),
            Err(e) => error_map(format!("error converting YAML to JSON: yaml: {e}")),
        })
    });
    t.func("fromYamlArray", |_, a| {
        arity("fromYamlArray", a, 1)?;
        Ok(match parse_yaml_documents(&string(a, 0)?) {
            Ok(docs) => match docs.into_iter().next() {
                Some(Value::List(items)) => Value::List(items),
                None | Some(Value::Nil) => Value::from(Vec::new()),
                Some(other) => Value::from(vec![Value::from(format!(
                    "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type []interface {{}}",
                    json_kind(&other)
                ))]),
            },
            Err(e) => Value::from(vec![Value::from(format!(
                "error converting YAML to JSON: yaml: {e}"
            ))]),
        })
    });
    t.func("fromJson", |_, a| {
        arity("fromJson", a, 1)?;
        Ok(match parse_json(&string(a, 0)?) {
            Ok(Value::Map(m)) => Value::Map(m),
            Ok(other) => error_map(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(&other)
            )),
            Err(e) => error_map(e),
        })
    });
    t.func("fromJsonArray", |_, a| {
        arity("fromJsonArray", a, 1)?;
        Ok(match parse_json(&string(a, 0)?) {
            Ok(Value::List(items)) => Value::List(items),
            Ok(other) => Value::from(vec![Value::from(format!(
                "json: cannot unmarshal {} into Go value of type []interface {{}}",
                json_kind(&other)
            ))]),
            Err(e) => Value::from(vec![Value::from(e)]),
        })
    });
}

fn error_map(message: String) -> Value {
    map_of([("Error".to_string(), Value::from(message))])
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::List(_) => "array",
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Float(_) | Value::Int(_) => "number",
        Value::Map(_) => "object",
        _ => "value",
    }
}
