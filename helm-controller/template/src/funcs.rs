//! Go text/template's builtin functions (and/or are evaluated lazily by the
//! executor): not len index slice print printf println eq ne lt le gt ge
//! html js urlquery call.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::exec::Exec;
use crate::fmt::{sprint, sprintf, sprintln};
use crate::template::{Func, FuncError};
use crate::value::Value;

fn func(
    f: impl Fn(&mut Exec<'_>, &[Value]) -> Result<Value, String> + Send + Sync + 'static,
) -> Func {
    Arc::new(move |exec, args| f(exec, args).map_err(FuncError::Call))
}

pub fn builtins() -> BTreeMap<String, Func> {
    let mut map: BTreeMap<String, Func> = BTreeMap::new();
    map.insert(
        "not".into(),
        func(|_, a| {
            arity("not", a, 1)?;
            Ok(Value::Bool(!a[0].truthy()))
        }),
    );
    map.insert(
        "len".into(),
        func(|_, a| {
            arity("len", a, 1)?;
            length(&a[0]).map(Value::Int)
        }),
    );
    map.insert("index".into(), func(|_, a| index(a)));
    map.insert("slice".into(), func(|_, a| slice(a)));
    map.insert("print".into(), func(|_, a| Ok(Value::from(sprint(a)))));
    map.insert("println".into(), func(|_, a| Ok(Value::from(sprintln(a)))));
    map.insert(
        "printf".into(),
        func(|_, a| {
            let Some(Value::String(format)) = a.first() else {
                return Err(wrong_type(a.first(), "string"));
            };
            Ok(Value::from(sprintf(format, &a[1..])))
        }),
    );
    map.insert("eq".into(), func(|_, a| eq(a).map(Value::Bool)));
    map.insert(
        "ne".into(),
        func(|_, a| {
            arity("ne", a, 2)?;
            eq(a).map(|b| Value::Bool(!b))
        }),
    );
    for (name, want) in [
        ("lt", [Ordering::Less].as_slice()),
        ("le", [Ordering::Less, Ordering::Equal].as_slice()),
        ("gt", [Ordering::Greater].as_slice()),
        ("ge", [Ordering::Greater, Ordering::Equal].as_slice()),
    ] {
        let want = want.to_vec();
        map.insert(
            name.into(),
            func(move |_, a| {
                arity(name, a, 2)?;
                Ok(Value::Bool(want.contains(&compare(&a[0], &a[1])?)))
            }),
        );
    }
    map.insert(
        "html".into(),
        func(|_, a| Ok(Value::from(html_escape(&text_of(a))))),
    );
    map.insert(
        "js".into(),
        func(|_, a| Ok(Value::from(js_escape(&text_of(a))))),
    );
    map.insert(
        "urlquery".into(),
        func(|_, a| Ok(Value::from(query_escape(&text_of(a))))),
    );
    map.insert(
        "call".into(),
        func(|_, a| {
            Err(format!(
                "non-function {} of type {}",
                a.first().map(Value::to_go_string).unwrap_or_default(),
                a.first().map(Value::type_name).unwrap_or_default()
            ))
        }),
    );
    map
}

fn arity(name: &str, args: &[Value], want: usize) -> Result<(), String> {
    if args.len() == want {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        ))
    }
}

pub fn wrong_type(got: Option<&Value>, want: &str) -> String {
    format!(
        "wrong type for value; expected {want}; got {}",
        got.map_or_else(|| "<nil>".into(), Value::type_name)
    )
}

/// The text html/js/urlquery act on: one string as is, else Sprint.
fn text_of(args: &[Value]) -> String {
    match args {
        [Value::String(s)] => s.to_string(),
        _ => sprint(args),
    }
}

pub fn length(value: &Value) -> Result<i64, String> {
    let len = match value {
        Value::String(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        Value::Bytes(b) => b.len(),
        Value::Nil => return Err("len of nil pointer".into()),
        other => return Err(format!("len of type {}", other.type_name())),
    };
    Ok(i64::try_from(len).unwrap_or(i64::MAX))
}

fn int_index(value: &Value, len: usize, what: &str) -> Result<usize, String> {
    let Value::Int(i) = value else {
        return Err(format!(
            "cannot index {what} with type {}",
            value.type_name()
        ));
    };
    usize::try_from(*i)
        .ok()
        .filter(|i| *i < len)
        .ok_or_else(|| format!("index out of range: {i}"))
}

fn index(args: &[Value]) -> Result<Value, String> {
    let Some(mut item) = args.first().cloned() else {
        return Err("wrong number of args for index: want at least 1 got 0".into());
    };
    if matches!(item, Value::Nil) {
        return Err("index of untyped nil".into());
    }
    let mut nil_interface = false;
    for key in &args[1..] {
        if matches!(item, Value::Nil) && nil_interface {
            return Err("index of nil pointer".into());
        }
        item = match &item {
            Value::List(list) => list[int_index(key, list.len(), "slice/array")?].clone(),
            Value::Bytes(bytes) => Value::Int(i64::from(
                bytes[int_index(key, bytes.len(), "slice/array")?],
            )),
            Value::String(s) => Value::Int(i64::from(
                s.as_bytes()[int_index(key, s.len(), "slice/array")?],
            )),
            Value::Map(map) => {
                let Value::String(k) = key else {
                    return Err(format!(
                        "value has type {}; should be string",
                        key.type_name()
                    ));
                };
                nil_interface = true;
                map.get(k).unwrap_or_default()
            }
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

fn slice(args: &[Value]) -> Result<Value, String> {
    let Some(item) = args.first() else {
        return Err("wrong number of args for slice: want at least 1 got 0".into());
    };
    let len = match item {
        Value::String(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Bytes(b) => b.len(),
        Value::Nil => return Err("slice of untyped nil".into()),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    if args.len() > 4 {
        return Err(format!("too many slice indexes: {}", args.len() - 1));
    }
    let mut bounds = Vec::new();
    for arg in &args[1..] {
        let Value::Int(i) = arg else {
            return Err(format!(
                "cannot index slice/array with type {}",
                arg.type_name()
            ));
        };
        let i = usize::try_from(*i).map_err(|_| format!("index out of range: {i}"))?;
        if i > len {
            return Err(format!("index out of range: {i}"));
        }
        bounds.push(i);
    }
    let start = bounds.first().copied().unwrap_or(0);
    let end = bounds.get(1).copied().unwrap_or(len);
    if start > end {
        return Err(format!("invalid slice index: {start} > {end}"));
    }
    Ok(match item {
        Value::String(s) => Value::from(
            s.get(start..end)
                .ok_or_else(|| format!("invalid slice index: {start} > {end}"))?
                .to_string(),
        ),
        Value::List(l) => Value::from(l[start..end].to_vec()),
        Value::Bytes(b) => Value::Bytes(Arc::new(b[start..end].to_vec())),
        _ => Value::Nil,
    })
}

#[derive(PartialEq)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    String,
    Other,
}

fn kind(value: &Value) -> Kind {
    match value {
        Value::Nil => Kind::Invalid,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::String(_) => Kind::String,
        _ => Kind::Other,
    }
}

/// Go's eq: arg1 equals any of the others; mixing kinds is an error unless
/// one side is nil.
pub fn eq(args: &[Value]) -> Result<bool, String> {
    let Some((first, rest)) = args.split_first() else {
        return Err("missing argument for comparison".into());
    };
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = kind(first);
    for other in rest {
        let k2 = kind(other);
        let truth = if k1 != k2 {
            if k1 != Kind::Invalid && k2 != Kind::Invalid {
                return Err(incompatible(first, other));
            }
            false
        } else {
            match (first, other) {
                (Value::Bool(a), Value::Bool(b)) => a == b,
                (Value::Int(a), Value::Int(b)) => a == b,
                (Value::Float(a), Value::Float(b)) => a == b,
                (Value::String(a), Value::String(b)) => a == b,
                (Value::Nil, Value::Nil) => true,
                (Value::Object(a), Value::Object(b)) => Arc::ptr_eq(a, b),
                (a, _) => {
                    return Err(format!(
                        "non-comparable type {}: {}",
                        a.to_go_string(),
                        a.type_name()
                    ));
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

pub fn compare(a: &Value, b: &Value) -> Result<Ordering, String> {
    let (ka, kb) = (kind(a), kind(b));
    if matches!(ka, Kind::Invalid | Kind::Bool | Kind::Other)
        || matches!(kb, Kind::Invalid | Kind::Bool | Kind::Other)
    {
        return Err("invalid type for comparison".into());
    }
    if ka != kb {
        return Err(incompatible(a, b));
    }
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => Ordering::Equal,
    })
}

fn incompatible(a: &Value, b: &Value) -> String {
    format!(
        "incompatible types for comparison: {} and {}",
        a.type_name(),
        b.type_name()
    )
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

pub fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// url.QueryEscape.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
