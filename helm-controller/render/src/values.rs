//! YAML as Helm reads it: sigs.k8s.io/yaml, i.e. go-yaml v2 (YAML 1.1
//! scalars: yes/no/on/off/y/n are booleans, 017 is octal, 1_000 is 1000,
//! dates stay strings) and then a JSON round trip, so every number becomes a
//! float64 and every map key a string. Anchors, aliases and `<<` merges
//! work as in go-yaml.

use std::collections::BTreeMap;

use k3r_gotemplate::{MapRef, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

/// Parses the first document of `text` the way Helm reads values.yaml.
/// An empty document is an empty map.
pub fn parse_yaml(text: &str) -> Result<Value, YamlError> {
    let mut docs = parse_yaml_documents(text)?;
    Ok(if docs.is_empty() {
        Value::Map(MapRef::default())
    } else {
        docs.swap_remove(0)
    })
}

/// Every document of a stream (for fromYamlArray, manifests).
pub fn parse_yaml_documents(text: &str) -> Result<Vec<Value>, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| YamlError {
        line: e.marker().line(),
        message: e.info().to_string(),
    })?;
    if let Some(error) = builder.error {
        return Err(error);
    }
    Ok(builder.documents)
}

enum Frame {
    Seq(Vec<Value>, usize),
    Map(BTreeMap<String, Value>, Option<String>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: BTreeMap<usize, Value>,
    documents: Vec<Value>,
    error: Option<YamlError>,
}

impl Builder {
    fn fail(&mut self, mark: &Marker, message: String) {
        if self.error.is_none() {
            self.error = Some(YamlError {
                line: mark.line(),
                message,
            });
        }
    }

    /// Places a finished node into its parent (or as a document).
    fn place(&mut self, value: Value, anchor: usize, key_text: Option<String>, mark: &Marker) {
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        let mut bad_key = false;
        match self.stack.last_mut() {
            None => self.documents.push(value),
            Some(Frame::Seq(items, _)) => items.push(value),
            Some(Frame::Map(map, key, _)) => match key.take() {
                None => {
                    // This node is a key.
                    let text = key_text.or_else(|| key_string(&value));
                    bad_key = text.is_none();
                    *key = Some(text.unwrap_or_default());
                }
                Some(k) if k == "<<" => merge_into(map, &value),
                Some(k) => {
                    map.insert(k, value);
                }
            },
        }
        if bad_key {
            self.fail(mark, "a map key must be a scalar".into());
        }
    }
}

/// `<<: *anchor` / `<<: [*a, *b]`: keys the map does not have yet.
fn merge_into(map: &mut BTreeMap<String, Value>, value: &Value) {
    match value {
        Value::Map(source) => {
            for (k, v) in source.entries() {
                map.entry(k).or_insert(v);
            }
        }
        Value::List(sources) => {
            for source in sources.iter() {
                merge_into(map, source);
            }
        }
        _ => {}
    }
}

/// sigs.k8s.io/yaml turns non-string keys into strings.
fn key_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Float(f) => Some(k3r_gotemplate::format_float_g(*f)),
        Value::Int(i) => Some(i.to_string()),
        Value::Nil => Some("null".into()),
        _ => None,
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match event {
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(Vec::new(), anchor)),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(BTreeMap::new(), None, anchor));
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(items, anchor)) = self.stack.pop() {
                    self.place(Value::from(items), anchor, None, &mark);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(map, _, anchor)) = self.stack.pop() {
                    self.place(Value::from(map), anchor, None, &mark);
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let is_key = matches!(self.stack.last(), Some(Frame::Map(_, None, _)));
                match resolve(&text, style, tag.as_ref()) {
                    Ok(value) => {
                        // A key keeps its text when it is a string, and
                        // becomes Go's key form otherwise (`y` -> "true").
                        let key_text =
                            (is_key && matches!(value, Value::String(_))).then(|| text.clone());
                        self.place(value, anchor, key_text, &mark);
                    }
                    Err(message) => self.fail(&mark, message),
                }
            }
            Event::Alias(id) => {
                let value = self.anchors.get(&id).cloned();
                match value {
                    Some(value) => self.place(value, 0, None, &mark),
                    None => self.fail(&mark, format!("unknown anchor {id}")),
                }
            }
            _ => {}
        }
    }
}

/// go-yaml v2's resolution of a scalar, then JSON's number model.
fn resolve(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
    let explicit = tag.as_deref().map(|t| {
        t.trim_start_matches("tag:yaml.org,2002:")
            .trim_start_matches("!!")
            .to_string()
    });
    match explicit.as_deref() {
        Some("str") => return Ok(Value::str(text)),
        Some("int") | Some("float") | Some("bool") | Some("null") => {
            return match resolve_plain(text)? {
                Value::String(_) => Err(format!(
                    "cannot decode {text:?} as !!{}",
                    explicit.unwrap_or_default()
                )),
                other => Ok(other),
            };
        }
        _ => {}
    }
    if style != TScalarStyle::Plain {
        return Ok(Value::str(text));
    }
    resolve_plain(text)
}

pub(crate) fn resolve_plain(text: &str) -> Result<Value, String> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Nil),
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Ok(Value::Bool(true));
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Ok(Value::Bool(false));
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Err("json: unsupported value: +Inf".into());
        }
        "-.inf" | "-.Inf" | "-.INF" => return Err("json: unsupported value: -Inf".into()),
        ".nan" | ".NaN" | ".NAN" => return Err("json: unsupported value: NaN".into()),
        _ => {}
    }
    let first = text.chars().next().unwrap_or(' ');
    if !(first.is_ascii_digit() || first == '-' || first == '+' || first == '.') {
        return Ok(Value::str(text));
    }
    let plain = text.replace('_', "");
    if let Some(i) = parse_go_int(&plain) {
        return Ok(Value::Float(i));
    }
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Ok(Value::Float(f));
    }
    Ok(Value::str(text))
}

/// strconv.ParseInt/ParseUint(s, 0, 64) as a float64 (what JSON keeps).
fn parse_go_int(s: &str) -> Option<f64> {
    let (negative, magnitude) = go_integer(s)?;
    if negative {
        // ParseInt: down to i64::MIN.
        (magnitude <= 1u64 << 63).then(|| -(magnitude as f64))
    } else {
        Some(magnitude as f64)
    }
}

/// Go's integer syntax with base 0 (sign, 0x, 0o, 0b, a leading 0 for
/// octal): the sign and the magnitude.
pub(crate) fn go_integer(s: &str) -> Option<(bool, u64)> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() {
        return None;
    }
    Some((negative, u64::from_str_radix(digits, radix).ok()?))
}

/// go-yaml v2: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
fn is_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()),
        Some((int, frac)) => {
            !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

/// Helm's coalescing of user values over chart defaults: maps merge
/// recursively, the user's value wins otherwise (a table is never replaced
/// by a scalar default), a user `null` deletes the default, and nulls in the
/// defaults vanish. A user `null` for a key without a default stays.
pub fn coalesce(defaults: &Value, overrides: &Value) -> Value {
    coalesce_except(defaults, overrides, &[])
}

/// [`coalesce`], except that the sections named in `merged` (a parent's
/// subcharts) are merged keeping the user's nulls: the subchart's own
/// coalescing uses them to delete its defaults.
pub fn coalesce_except(defaults: &Value, overrides: &Value, merged: &[String]) -> Value {
    let (Value::Map(defaults), Value::Map(overrides)) = (defaults, overrides) else {
        return match overrides {
            Value::Nil => strip_nulls(defaults),
            other => other.clone(),
        };
    };
    let mut result = overrides.to_map();
    for (key, default) in defaults.entries() {
        match result.get(&key) {
            Some(Value::Nil) => {
                result.remove(&key);
            }
            Some(Value::Map(user)) => {
                if let Value::Map(_) = default {
                    let user = Value::Map(user.clone());
                    let combined = if merged.contains(&key) {
                        merge(&default, &user)
                    } else {
                        coalesce(&default, &user)
                    };
                    result.insert(key, combined);
                }
            }
            Some(_) => {}
            None => {
                if !matches!(default, Value::Nil) {
                    result.insert(key, strip_nulls(&default));
                }
            }
        }
    }
    Value::from(result)
}

/// Helm's MergeTables: `over` wins, maps merge recursively, nulls stay.
pub fn merge(base: &Value, over: &Value) -> Value {
    let (Value::Map(base), Value::Map(over)) = (base, over) else {
        return over.clone();
    };
    let mut result = over.to_map();
    for (key, value) in base.entries() {
        let combined = match result.get(&key) {
            None => value,
            Some(mine @ Value::Map(_)) if matches!(value, Value::Map(_)) => merge(&value, mine),
            Some(mine) => mine.clone(),
        };
        result.insert(key, combined);
    }
    Value::from(result)
}

/// A copy without null map entries (recursively through maps).
pub fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Map(map) => Value::from(
            map.entries()
                .into_iter()
                .filter(|(_, v)| !matches!(v, Value::Nil))
                .map(|(k, v)| (k, strip_nulls(&v)))
                .collect::<BTreeMap<_, _>>(),
        ),
        other => other.clone(),
    }
}

/// JSON as Go's encoding/json decodes it into interface{}.
pub fn parse_json(text: &str) -> Result<Value, String> {
    let mut parser = JsonParser {
        bytes: text.as_bytes(),
        at: 0,
    };
    parser.skip_space();
    let value = parser.value()?;
    parser.skip_space();
    if parser.at != parser.bytes.len() {
        return Err(format!(
            "invalid character {:?} after top-level value",
            char::from(parser.bytes[parser.at])
        ));
    }
    Ok(value)
}

struct JsonParser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl JsonParser<'_> {
    /// encoding/json's syntax error at the current byte.
    fn unexpected(&self, context: &str) -> String {
        match self.bytes.get(self.at) {
            None => "unexpected end of JSON input".into(),
            Some(&b) => {
                let c = char::from(b);
                let quoted = match c {
                    '\'' => "'\\''".to_string(),
                    '"' => "'\"'".to_string(),
                    c if c.is_ascii_graphic() || c == ' ' => format!("'{c}'"),
                    c => {
                        let q = k3r_gotemplate::fmt::go_quote(&c.to_string());
                        format!("'{}'", &q[1..q.len() - 1])
                    }
                };
                format!("invalid character {quoted} {context}")
            }
        }
    }

    fn skip_space(&mut self) {
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
    }

    fn expect(&mut self, word: &str) -> Result<(), String> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(())
        } else {
            Err(format!("invalid character looking for {word}"))
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_space();
        match self.bytes.get(self.at) {
            None => Err("unexpected end of JSON input".into()),
            Some(b'n') => self.expect("null").map(|()| Value::Nil),
            Some(b't') => self.expect("true").map(|()| Value::Bool(true)),
            Some(b'f') => self.expect("false").map(|()| Value::Bool(false)),
            Some(b'"') => self.string().map(Value::from),
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                self.skip_space();
                if self.bytes.get(self.at) == Some(&b']') {
                    self.at += 1;
                    return Ok(Value::from(items));
                }
                loop {
                    items.push(self.value()?);
                    self.skip_space();
                    match self.bytes.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return Ok(Value::from(items));
                        }
                        _ => return Err(self.unexpected("after array element")),
                    }
                }
            }
            Some(b'{') => {
                self.at += 1;
                let mut map = BTreeMap::new();
                self.skip_space();
                if self.bytes.get(self.at) == Some(&b'}') {
                    self.at += 1;
                    return Ok(Value::from(map));
                }
                loop {
                    self.skip_space();
                    if self.bytes.get(self.at) != Some(&b'"') {
                        return Err(self.unexpected("looking for beginning of object key string"));
                    }
                    let key = self.string()?;
                    self.skip_space();
                    if self.bytes.get(self.at) != Some(&b':') {
                        return Err(self.unexpected("after object key"));
                    }
                    self.at += 1;
                    let value = self.value()?;
                    map.insert(key, value);
                    self.skip_space();
                    match self.bytes.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(Value::from(map));
                        }
                        _ => return Err(self.unexpected("after object key:value pair")),
                    }
                }
            }
            Some(_) => {
                let start = self.at;
                while self.bytes.get(self.at).is_some_and(|b| {
                    b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')
                }) {
                    self.at += 1;
                }
                let text = std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or_default();
                text.parse::<f64>().map(Value::Float).map_err(|_| {
                    format!(
                        "invalid character {:?} looking for beginning of value",
                        text.chars().next().unwrap_or(' ')
                    )
                })
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.bytes.get(self.at) else {
                return Err("unexpected end of JSON input".into());
            };
            self.at += 1;
            match b {
                b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let Some(&e) = self.bytes.get(self.at) else {
                        return Err("unexpected end of JSON input".into());
                    };
                    self.at += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'/' => out.push(b'/'),
                        b'\\' => out.push(b'\\'),
                        b'"' => out.push(b'"'),
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xD800..0xDC00).contains(&code)
                                && self.bytes[self.at..].starts_with(b"\\u")
                            {
                                self.at += 2;
                                let low = self.hex4()?;
                                code = 0x10000
                                    + ((code - 0xD800) << 10)
                                    + (low.wrapping_sub(0xDC00) & 0x3FF);
                            }
                            let c = char::from_u32(code).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err("invalid character in string escape code".into()),
                    }
                }
                b => out.push(b),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let text = self
            .bytes
            .get(self.at..self.at + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .ok_or("unexpected end of JSON input")?;
        self.at += 4;
        u32::from_str_radix(text, 16)
            .map_err(|_| "invalid character in \\u hexadecimal character escape".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(v: &Value, key: &str) -> Value {
        match v {
            Value::Map(m) => m.get(key).unwrap_or_else(|| panic!("no key {key}")),
            _ => panic!("not a map"),
        }
    }

    #[test]
    fn yaml_1_1_scalars_and_json_numbers() {
        let v = parse_yaml(
            "a: 1\nb: yes\nc: off\ny: 1\nd: 017\ne: 0o17\nf: 1_000\ng: 0x1F\nh: 2024-01-01\ni: 1.5\nj: '1'\nk: ~\nl: .5\nm: 1e3\nno: \"yes\"\no: +12\n",
        )
        .expect("parse");
        assert_eq!(get(&v, "a"), Value::Float(1.0));
        assert_eq!(get(&v, "b"), Value::Bool(true));
        assert_eq!(get(&v, "c"), Value::Bool(false));
        // The key `y` is the boolean true, so it becomes "true".
        assert_eq!(get(&v, "true"), Value::Float(1.0));
        assert_eq!(get(&v, "d"), Value::Float(15.0));
        assert_eq!(get(&v, "e"), Value::Float(15.0));
        assert_eq!(get(&v, "f"), Value::Float(1000.0));
        assert_eq!(get(&v, "g"), Value::Float(31.0));
        assert_eq!(get(&v, "h"), Value::str("2024-01-01"));
        assert_eq!(get(&v, "i"), Value::Float(1.5));
        assert_eq!(get(&v, "j"), Value::str("1"));
        assert_eq!(get(&v, "k"), Value::Nil);
        assert_eq!(get(&v, "l"), Value::Float(0.5));
        assert_eq!(get(&v, "m"), Value::Float(1000.0));
        // So is the key `no`: false.
        assert_eq!(get(&v, "false"), Value::str("yes"));
        assert_eq!(get(&v, "o"), Value::Float(12.0));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let v = parse_yaml("base: &b {x: 1, z: 2}\nother:\n  <<: *b\n  z: 3\nlist: [*b]\n")
            .expect("parse");
        let other = get(&v, "other");
        assert_eq!(get(&other, "x"), Value::Float(1.0));
        assert_eq!(get(&other, "z"), Value::Float(3.0));
    }

    #[test]
    fn infinity_fails_like_helm_and_errors_name_the_line() {
        assert!(parse_yaml("a: .inf\n").is_err());
        let err = parse_yaml("a: 1\nb: [\n").expect_err("bad yaml");
        assert!(err.line >= 2, "{err}");
    }

    #[test]
    fn coalescing_follows_helm() {
        let defaults =
            parse_yaml("a: 1\nb: {c: 2, d: null}\nnil: null\nkeep: x\n").expect("defaults");
        let user = parse_yaml("a: null\nnewkey: null\nb: {c: null, e: null}\nkeep: {x: 1}\n")
            .expect("user");
        let merged = coalesce(&defaults, &user);
        assert_eq!(
            crate::json::to_json(&merged, &crate::json::COMPACT).expect("json"),
            r#"{"b":{"e":null},"keep":{"x":1},"newkey":null}"#
        );
        let alone = coalesce(&defaults, &parse_yaml("").expect("empty"));
        assert_eq!(
            crate::json::to_json(&alone, &crate::json::COMPACT).expect("json"),
            r#"{"a":1,"b":{"c":2},"keep":"x"}"#
        );
    }

    #[test]
    fn json_decodes_numbers_as_float64() {
        let v = parse_json(r#"{"a": 1, "b": [true, null, "x\u00e9"], "c": 2.5e3}"#).expect("json");
        assert_eq!(get(&v, "a"), Value::Float(1.0));
        assert_eq!(get(&v, "c"), Value::Float(2500.0));
        assert!(parse_json("{").is_err());
    }
}
