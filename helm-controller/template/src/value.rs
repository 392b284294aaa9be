//! The data a template sees, modelled on what Helm hands Go's text/template:
//! values decoded from YAML/JSON (numbers are float64, maps have string
//! keys), Go ints from literals and functions, and objects with fields and
//! methods (`.Chart`, `.Files`, `.Capabilities`).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// A Go struct-like value: fields, methods, and how `%v` prints it.
pub trait Object: Send + Sync + Debug {
    /// Go's type name, used in error messages (`chart.Metadata`).
    fn type_name(&self) -> &str;
    /// An exported field; `None` when the type has no such field or method.
    fn field(&self, name: &str) -> Option<Value>;
    /// Calls a method; `None` when there is no such method.
    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>>;
    /// `%v` output.
    fn format(&self) -> String;
    /// The object as plain data (for toYaml/toJson and comparisons).
    fn to_data(&self) -> Value {
        Value::Nil
    }
    /// (key, value) pairs when the object is a Go map or slice that
    /// `range` can iterate; None when it cannot.
    fn entries(&self) -> Option<Vec<(Value, Value)>> {
        None
    }
}

/// A Go complex128 (only from an imaginary constant in a template).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Complex {
    pub re: f64,
    pub im: f64,
}

impl Object for Complex {
    fn type_name(&self) -> &str {
        "complex128"
    }

    fn field(&self, _name: &str) -> Option<Value> {
        None
    }

    fn method(&self, _name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        None
    }

    /// fmt's `(re+imi)`, each part as %g.
    fn format(&self) -> String {
        let im = format_float_g(self.im);
        let sign = if im.starts_with(['-', '+']) { "" } else { "+" };
        format!("({}{sign}{im}i)", format_float_g(self.re))
    }
}

#[derive(Clone, Debug, Default)]
pub enum Value {
    /// A nil interface: a missing map key, YAML null, or `nil`.
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(Arc<str>),
    List(Arc<Vec<Value>>),
    /// A Go map: a reference, so sprig's `set`/`unset` change it for
    /// every holder, as in Go.
    Map(MapRef),
    /// A []byte (prints like a list of numbers, as Go does).
    Bytes(Arc<Vec<u8>>),
    Object(Arc<dyn Object>),
}

/// A shared, mutable map[string]interface{}.
#[derive(Clone, Default)]
pub struct MapRef(Arc<RwLock<BTreeMap<String, Value>>>);

impl MapRef {
    pub fn new(map: BTreeMap<String, Value>) -> Self {
        Self(Arc::new(RwLock::new(map)))
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Value>> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Value> {
        self.read().get(key).cloned()
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.read().contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    pub fn insert(&self, key: String, value: Value) -> Option<Value> {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, value)
    }

    pub fn remove(&self, key: &str) -> Option<Value> {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key)
    }

    /// A copy of the entries, sorted by key.
    pub fn entries(&self) -> Vec<(String, Value)> {
        self.read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn keys(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// A shallow copy as a plain map.
    pub fn to_map(&self) -> BTreeMap<String, Value> {
        self.read().clone()
    }

    pub fn same(&self, other: &MapRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl PartialEq for MapRef {
    fn eq(&self, other: &Self) -> bool {
        self.same(other) || *self.read() == *other.read()
    }
}

impl Debug for MapRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.read().iter()).finish()
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s.into())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Self {
        Value::List(Arc::new(l))
    }
}

impl From<BTreeMap<String, Value>> for Value {
    fn from(m: BTreeMap<String, Value>) -> Self {
        Value::Map(MapRef::new(m))
    }
}

impl Value {
    pub fn str(s: &str) -> Self {
        Value::String(s.into())
    }

    /// Go's notion of "true" for if/with/and/or/not: the zero value of
    /// its type is false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::Object(_) => true,
        }
    }

    /// Go's type, as `%T` and error messages print it.
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float64".into(),
            Value::String(_) => "string".into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Map(_) => "map[string]interface {}".into(),
            Value::Bytes(_) => "[]uint8".into(),
            Value::Object(o) => o.type_name().into(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// `fmt.Sprint` of the value (`%v`).
    pub fn to_go_string(&self) -> String {
        let mut out = String::new();
        self.write_go(&mut out);
        out
    }

    fn write_go(&self, out: &mut String) {
        match self {
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&format_float_g(*f)),
            Value::String(s) => out.push_str(s),
            Value::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    item.write_go(out);
                }
                out.push(']');
            }
            Value::Bytes(bytes) => {
                out.push('[');
                for (i, b) in bytes.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(&b.to_string());
                }
                out.push(']');
            }
            Value::Map(map) => {
                out.push_str("map[");
                for (i, (k, v)) in map.entries().iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_go(out);
                }
                out.push(']');
            }
            Value::Object(o) => out.push_str(&o.format()),
        }
    }
}

/// Go's `%v` for float64 (strconv 'g', shortest): the shortest digits that
/// round-trip, in exponent form when the exponent is < -4 or >= 6 — so
/// 100000 prints as is and 1000000 as 1e+06 (Helm's big-number quirk).
pub fn format_float_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (negative, digits, exponent) = shortest_digits(f);
    let sign = if negative { "-" } else { "" };
    if !(-4..6).contains(&exponent) {
        format!("{sign}{}", exp_form(&digits, exponent))
    } else {
        format!("{sign}{}", plain_form(&digits, exponent))
    }
}

/// Sign, shortest round-trip digits and decimal exponent of `f` (d.ddd × 10^exp).
pub fn shortest_digits(f: f64) -> (bool, String, i32) {
    // Rust's LowerExp prints the shortest round-trip digits: "-1.2345e6".
    let text = format!("{f:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (
        mantissa.starts_with('-'),
        digits,
        exponent.parse().unwrap_or(0),
    )
}

/// d.ddde±XX, at least two exponent digits (Go's %e).
pub fn exp_form(digits: &str, exponent: i32) -> String {
    let mut out = String::from(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{out}e{sign}{:02}", exponent.abs())
}

fn plain_form(digits: &str, exponent: i32) -> String {
    if exponent < 0 {
        let zeros = "0".repeat(usize::try_from(-exponent - 1).unwrap_or(0));
        return format!("0.{zeros}{digits}");
    }
    let point = usize::try_from(exponent + 1).unwrap_or(0);
    if digits.len() <= point {
        format!("{digits}{}", "0".repeat(point - digits.len()))
    } else {
        format!("{}.{}", &digits[..point], &digits[point..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go_percent_v() {
        for (f, go) in [
            (1.0, "1"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (123456.7, "123456.7"),
            (0.5, "0.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
            (3.0e-10, "3e-10"),
        ] {
            assert_eq!(format_float_g(f), go, "{f}");
        }
    }

    #[test]
    fn composite_values_print_like_go() {
        let mut map = BTreeMap::new();
        map.insert("b".to_string(), Value::Float(2.0));
        map.insert(
            "a".to_string(),
            Value::from(vec![Value::Int(1), Value::Nil]),
        );
        assert_eq!(Value::from(map).to_go_string(), "map[a:[1 <nil>] b:2]");
    }
}
