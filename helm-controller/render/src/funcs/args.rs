//! Go's argument conversions for template functions: a parameter of type
//! string takes only a string, int only an int, and so on; variadic
//! interface{} takes anything. Mismatches read as Go reports them.

use k3r_gotemplate::{FuncError, Value};

pub type Result<T> = std::result::Result<T, FuncError>;

/// "wrong number of args for NAME: want N got M" (Go checks this before
/// calling).
pub fn arity(name: &str, args: &[Value], want: usize) -> Result<()> {
    if args.len() == want {
        Ok(())
    } else {
        Err(FuncError::Arg(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        )))
    }
}

pub fn at_least(name: &str, args: &[Value], want: usize) -> Result<()> {
    if args.len() >= want {
        Ok(())
    } else {
        Err(FuncError::Arg(format!(
            "wrong number of args for {name}: want at least {want} got {}",
            args.len()
        )))
    }
}

fn wrong(value: &Value, want: &str) -> FuncError {
    FuncError::Arg(format!(
        "wrong type for value; expected {want}; got {}",
        value.type_name()
    ))
}

/// A `string` parameter.
pub fn string(args: &[Value], i: usize) -> Result<String> {
    match &args[i] {
        Value::String(s) => Ok(s.to_string()),
        // A nil interface converts to the zero string.
        Value::Nil => Ok(String::new()),
        other => Err(wrong(other, "string")),
    }
}

/// An `int` parameter.
pub fn int(args: &[Value], i: usize) -> Result<i64> {
    match &args[i] {
        Value::Int(n) => Ok(*n),
        Value::Nil => Ok(0),
        other => Err(wrong(other, "int")),
    }
}

/// A `bool` parameter.
pub fn boolean(args: &[Value], i: usize) -> Result<bool> {
    match &args[i] {
        Value::Bool(b) => Ok(*b),
        Value::Nil => Ok(false),
        other => Err(wrong(other, "bool")),
    }
}

/// A `map[string]interface{}` parameter. Go passes nil (a missing key) as
/// a nil map, which reads as empty (`hasKey (lookup ...).data "k"`).
pub fn map(args: &[Value], i: usize) -> Result<k3r_gotemplate::MapRef> {
    match &args[i] {
        Value::Map(m) => Ok(m.clone()),
        Value::Nil => Ok(k3r_gotemplate::MapRef::new(
            std::collections::BTreeMap::new(),
        )),
        other => Err(wrong(other, "map[string]interface {}")),
    }
}

/// sprig's strval: strings as they are, everything else as %v.
pub fn strval(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.to_go_string(),
    }
}

/// sprig's strslice: a list's non-nil elements as strings, else [strval].
pub fn strslice(value: &Value) -> Vec<String> {
    match value {
        Value::List(items) => items
            .iter()
            .filter(|v| !matches!(v, Value::Nil))
            .map(strval)
            .collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

/// cast.ToInt64 as sprig uses it: numbers truncate, strings parse (base
/// prefixes allowed, ".0" tails ignored), bools are 0/1, the rest 0.
pub fn to_int64(value: &Value) -> i64 {
    match value {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => {
            let s = s.trim();
            let s = match s.split_once('.') {
                Some((int, frac)) if frac.bytes().all(|b| b == b'0') => int,
                _ => s,
            };
            parse_go_int(s).unwrap_or(0)
        }
        _ => 0,
    }
}

/// cast.ToFloat64.
pub fn to_float64(value: &Value) -> f64 {
    match value {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn parse_go_int(s: &str) -> Option<i64> {
    let (negative, magnitude) = crate::values::go_integer(s)?;
    let value = i64::try_from(magnitude).ok()?;
    Some(if negative { -value } else { value })
}

/// sprig's empty: nil, zero numbers, false, and empty strings, lists and
/// maps are empty; objects never are.
pub fn empty(value: &Value) -> bool {
    !value.truthy()
}
