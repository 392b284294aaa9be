//! Encodings, hashes, and Helm's YAML/JSON functions.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k3r_gotemplate::{FuncError, Template, Value, map_of};
use sha2::Digest;

use super::args::{arity, string};
use crate::json::{COMPACT, PRETTY, RAW, to_json};
use crate::values::{parse_json, parse_yaml, parse_yaml_documents};
use crate::yaml::{to_yaml, to_yaml_pretty};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    t.func("b32enc", |_, a| {
        arity("b32enc", a, 1)?;
        Ok(Value::from(base32_encode(string(a, 0)?.as_bytes())))
    });
    t.func("b32dec", |_, a| {
        arity("b32dec", a, 1)?;
        Ok(Value::from(match base32_decode(&string(a, 0)?) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => e,
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
    t.func("mustFromJson", |_, a| {
        arity("mustFromJson", a, 1)?;
        parse_json(&string(a, 0)?).map_err(FuncError::Call)
    });
    t.func("toYamlPretty", |_, a| {
        arity("toYamlPretty", a, 1)?;
        let y = to_yaml_pretty(&a[0]);
        Ok(Value::from(y.strip_suffix('\n').unwrap_or(&y).to_string()))
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

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// base32.StdEncoding.EncodeToString.
fn base32_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(5) {
        let mut block = [0u8; 5];
        block[..chunk.len()].copy_from_slice(chunk);
        let bits = block.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let emitted = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < emitted {
                let index = usize::try_from((bits >> (35 - 5 * i)) & 31).unwrap_or(0);
                out.push(char::from(BASE32[index]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// base32.StdEncoding.DecodeString, with Go's error text.
fn base32_decode(text: &str) -> std::result::Result<Vec<u8>, String> {
    let input: Vec<u8> = text
        .bytes()
        .filter(|b| *b != b'\r' && *b != b'\n')
        .collect();
    let illegal = |i: usize| format!("illegal base32 data at input byte {i}");
    if !input.len().is_multiple_of(8) {
        return Err(illegal(input.len() / 8 * 8));
    }
    let mut out = Vec::new();
    for (n, block) in input.chunks(8).enumerate() {
        let pad = block.iter().rev().take_while(|b| **b == b'=').count();
        let bytes = match pad {
            0 => 5,
            1 => 4,
            3 => 3,
            4 => 2,
            6 => 1,
            _ => return Err(illegal(n * 8 + 8 - pad)),
        };
        if pad > 0 && n + 1 != input.len() / 8 {
            return Err(illegal(n * 8 + 8 - pad));
        }
        let mut bits = 0u64;
        for (i, c) in block.iter().enumerate() {
            let value = if i >= 8 - pad {
                0
            } else {
                BASE32
                    .iter()
                    .position(|b| b == c)
                    .ok_or_else(|| illegal(n * 8 + i))?
            };
            bits = (bits << 5) | u64::try_from(value).unwrap_or(0);
        }
        out.extend_from_slice(&bits.to_be_bytes()[3..3 + bytes]);
    }
    Ok(out)
}
