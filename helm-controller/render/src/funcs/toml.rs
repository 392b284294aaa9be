//! Helm's `toToml` and `fromToml`. toToml prints what BurntSushi/toml's
//! encoder prints: keys sorted with plain values before tables, a blank
//! line before top-level tables and each `[[array]]` entry, nested tables
//! indented two spaces per level, floats as Go's %g with ".0" when
//! integral, nil values left out. fromToml gives a map, or `{Error: …}`
//! (integers read as int, where Go has int64; the message is toml-rs's).

use std::fmt::Write;

use k3r_gotemplate::{Template, Value, map_of};

use super::args::arity;

pub fn register(t: &mut Template) {
    t.func("toToml", |_, a| {
        arity("toToml", a, 1)?;
        Ok(Value::from(to_toml(&a[0]).unwrap_or_else(|e| e)))
    });
    t.func("mustToToml", |_, a| {
        arity("mustToToml", a, 1)?;
        to_toml(&a[0])
            .map(Value::from)
            .map_err(k3r_gotemplate::FuncError::Call)
    });
    t.func("fromToml", |_, a| {
        arity("fromToml", a, 1)?;
        let text = super::args::strval(&a[0]);
        Ok(match text.parse::<toml::Table>() {
            Ok(table) => from_toml(&toml::Value::Table(table)),
            Err(e) => map_of([(
                "Error".to_string(),
                Value::from(format!("toml: {}", e.message())),
            )]),
        })
    });
}

fn from_toml(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::from(s.as_str()),
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::Float(f) => Value::Float(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::from(d.to_string()),
        toml::Value::Array(items) => {
            Value::List(std::sync::Arc::new(items.iter().map(from_toml).collect()))
        }
        toml::Value::Table(table) => map_of(
            table
                .iter()
                .map(|(k, v)| (k.clone(), from_toml(v)))
                .collect::<Vec<_>>(),
        ),
    }
}

/// The document, or the encoder's error text (what Helm prints then).
pub fn to_toml(value: &Value) -> Result<String, String> {
    let mut out = Encoder::default();
    match data(value) {
        Value::Map(_) => out.table(&[], &data(value))?,
        Value::Nil => {}
        other => out.element(&other)?,
    }
    Ok(out.text)
}

fn data(value: &Value) -> Value {
    match value {
        Value::Object(object) => object.to_data(),
        other => other.clone(),
    }
}

fn is_table(value: &Value) -> bool {
    matches!(data(value), Value::Map(_)) || is_table_array(value)
}

fn is_table_array(value: &Value) -> bool {
    match data(value) {
        Value::List(items) => {
            !items.is_empty() && items.iter().all(|i| matches!(data(i), Value::Map(_)))
        }
        _ => false,
    }
}

fn bare(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn key_part(key: &str) -> String {
    if bare(key) {
        key.to_string()
    } else {
        quoted(key)
    }
}

#[derive(Default)]
struct Encoder {
    text: String,
}

impl Encoder {
    fn newline(&mut self) {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
    }

    fn indent(path: &[String]) -> String {
        "  ".repeat(path.len().saturating_sub(1))
    }

    fn header(path: &[String]) -> String {
        path.iter()
            .map(|k| key_part(k))
            .collect::<Vec<_>>()
            .join(".")
    }

    fn table(&mut self, path: &[String], map: &Value) -> Result<(), String> {
        if path.len() == 1 {
            self.newline();
        }
        if !path.is_empty() {
            let _ = write!(self.text, "{}[{}]", Self::indent(path), Self::header(path));
            self.newline();
        }
        self.entries(path, map)
    }

    fn entries(&mut self, path: &[String], map: &Value) -> Result<(), String> {
        let Value::Map(map) = data(map) else {
            return Ok(());
        };
        let entries = map.entries();
        let (sub, direct): (Vec<_>, Vec<_>) = entries.iter().partition(|(_, v)| is_table(v));
        for (key, value) in direct.into_iter().chain(sub) {
            if matches!(value, Value::Nil) {
                continue;
            }
            let mut child = path.to_vec();
            child.push(key.clone());
            if is_table_array(value) {
                let Value::List(items) = data(value) else {
                    continue;
                };
                for item in items.iter() {
                    self.newline();
                    let _ = write!(
                        self.text,
                        "{}[[{}]]",
                        Self::indent(&child),
                        Self::header(&child)
                    );
                    self.newline();
                    self.entries(&child, item)?;
                }
            } else if matches!(data(value), Value::Map(_)) {
                self.table(&child, value)?;
            } else {
                let _ = write!(self.text, "{}{} = ", Self::indent(&child), key_part(key));
                self.element(value)?;
                self.newline();
            }
        }
        Ok(())
    }

    fn element(&mut self, value: &Value) -> Result<(), String> {
        match data(value) {
            Value::Bool(b) => self.text.push_str(if b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(self.text, "{i}");
            }
            Value::Float(f) => self.text.push_str(&float(f)),
            Value::String(s) => self.text.push_str(&quoted(&s)),
            Value::Bytes(bytes) => {
                let items: Vec<Value> = bytes.iter().map(|b| Value::Int(i64::from(*b))).collect();
                self.element(&Value::List(std::sync::Arc::new(items)))?;
            }
            Value::List(items) => {
                self.text.push('[');
                for (i, item) in items.iter().enumerate() {
                    if matches!(item, Value::Nil) {
                        return Err("toml: cannot encode array with nil element".into());
                    }
                    if i > 0 {
                        self.text.push_str(", ");
                    }
                    self.element(item)?;
                }
                self.text.push(']');
            }
            Value::Map(map) => {
                // Inline tables (inside arrays): direct keys, then tables.
                self.text.push('{');
                let entries = map.entries();
                let (sub, direct): (Vec<_>, Vec<_>) =
                    entries.iter().partition(|(_, v)| is_table(v));
                let trailing = !sub.is_empty();
                for group in [(direct, trailing), (sub, false)] {
                    let (keys, trail) = group;
                    let count = keys.len();
                    for (i, (key, value)) in keys.into_iter().enumerate() {
                        if matches!(value, Value::Nil) {
                            continue;
                        }
                        let _ = write!(self.text, "{} = ", key_part(key));
                        self.element(value)?;
                        if trail || i + 1 != count {
                            self.text.push_str(", ");
                        }
                    }
                }
                self.text.push('}');
            }
            Value::Nil | Value::Object(_) => {}
        }
        Ok(())
    }
}

/// strconv.FormatFloat(f, 'g', -1, 64), with ".0" added unless it has a
/// point or an exponent already (1e+06 stays, 8080 becomes 8080.0).
fn float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let text = k3r_gotemplate::format_float_g(f);
    if text.contains(['.', 'e']) {
        text
    } else {
        format!("{text}.0")
    }
}
