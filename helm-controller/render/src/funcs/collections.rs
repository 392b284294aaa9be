//! sprig's lists and dicts. Dicts are Go maps, so `set`, `unset` and
//! `merge` change the map they are given (charts rely on it).

use std::collections::BTreeMap;

use k3r_gotemplate::{FuncError, MapRef, Template, Value};

use super::args::{Result, arity, at_least, int, map, string, strval, to_int64};

fn list_of(value: &Value, name: &str) -> Result<Vec<Value>> {
    match value {
        Value::List(items) => Ok(items.to_vec()),
        Value::Nil => Ok(Vec::new()),
        other => Err(FuncError::Call(format!(
            "Cannot {name} on type {}",
            other.type_name()
        ))),
    }
}

fn list(items: Vec<Value>) -> Value {
    Value::from(items)
}

pub fn register(t: &mut Template) {
    t.func("list", |_, a| Ok(list(a.to_vec())));
    t.func("tuple", |_, a| Ok(list(a.to_vec())));
    t.func("dict", |_, a| {
        let mut map = BTreeMap::new();
        for pair in a.chunks(2) {
            let value = pair.get(1).cloned().unwrap_or_else(|| Value::str(""));
            map.insert(strval(&pair[0]), value);
        }
        Ok(Value::from(map))
    });
    t.func("get", |_, a| {
        arity("get", a, 2)?;
        Ok(map(a, 0)?
            .get(&string(a, 1)?)
            .unwrap_or_else(|| Value::str("")))
    });
    t.func("set", |_, a| {
        arity("set", a, 3)?;
        let m = map(a, 0)?;
        m.insert(string(a, 1)?, a[2].clone());
        Ok(Value::Map(m))
    });
    t.func("unset", |_, a| {
        arity("unset", a, 2)?;
        let m = map(a, 0)?;
        m.remove(&string(a, 1)?);
        Ok(Value::Map(m))
    });
    t.func("hasKey", |_, a| {
        arity("hasKey", a, 2)?;
        Ok(Value::Bool(map(a, 0)?.contains_key(&string(a, 1)?)))
    });
    t.func("keys", |_, a| {
        // Go returns map order (random); sorted is one of its orders.
        let mut keys = Vec::new();
        for (i, _) in a.iter().enumerate() {
            keys.extend(map(a, i)?.keys().into_iter().map(Value::from));
        }
        Ok(list(keys))
    });
    t.func("values", |_, a| {
        arity("values", a, 1)?;
        Ok(list(
            map(a, 0)?.entries().into_iter().map(|(_, v)| v).collect(),
        ))
    });
    t.func("pick", |_, a| {
        at_least("pick", a, 1)?;
        let source = map(a, 0)?;
        let mut out = BTreeMap::new();
        for key in &a[1..] {
            let key = strval(key);
            if let Some(v) = source.get(&key) {
                out.insert(key, v);
            }
        }
        Ok(Value::from(out))
    });
    t.func("omit", |_, a| {
        at_least("omit", a, 1)?;
        let drop: Vec<String> = a[1..].iter().map(strval).collect();
        Ok(Value::from(
            map(a, 0)?
                .entries()
                .into_iter()
                .filter(|(k, _)| !drop.contains(k))
                .collect::<BTreeMap<_, _>>(),
        ))
    });
    t.func("pluck", |_, a| {
        at_least("pluck", a, 1)?;
        let key = string(a, 0)?;
        let mut out = Vec::new();
        for i in 1..a.len() {
            if let Some(v) = map(a, i)?.get(&key) {
                out.push(v);
            }
        }
        Ok(list(out))
    });
    t.func("dig", |_, a| {
        at_least("dig", a, 3)?;
        let keys: Vec<String> = a[..a.len() - 2].iter().map(strval).collect();
        let default = a[a.len() - 2].clone();
        let mut current = Value::Map(map(a, a.len() - 1)?);
        for key in keys {
            current = match &current {
                Value::Map(m) => match m.get(&key) {
                    Some(v) => v,
                    None => return Ok(default),
                },
                _ => return Ok(default),
            };
        }
        Ok(current)
    });
    for (name, overwrite) in [
        ("merge", false),
        ("mustMerge", false),
        ("mergeOverwrite", true),
        ("mustMergeOverwrite", true),
    ] {
        t.func(name, move |_, a| {
            at_least(name, a, 1)?;
            let dst = map(a, 0)?;
            for source in &a[1..] {
                if let Value::Map(src) = source {
                    merge(&dst, src, overwrite);
                }
            }
            Ok(Value::Map(dst))
        });
    }
    t.func("deepCopy", |_, a| {
        arity("deepCopy", a, 1)?;
        Ok(deep_copy(&a[0]))
    });
    t.func("mustDeepCopy", |_, a| {
        arity("mustDeepCopy", a, 1)?;
        Ok(deep_copy(&a[0]))
    });
    t.func("first", |_, a| {
        arity("first", a, 1)?;
        Ok(list_of(&a[0], "first")?
            .first()
            .cloned()
            .unwrap_or_default())
    });
    t.func("last", |_, a| {
        arity("last", a, 1)?;
        Ok(list_of(&a[0], "last")?.last().cloned().unwrap_or_default())
    });
    t.func("rest", |_, a| {
        arity("rest", a, 1)?;
        let items = list_of(&a[0], "rest")?;
        Ok(if items.is_empty() {
            Value::Nil
        } else {
            list(items[1..].to_vec())
        })
    });
    t.func("initial", |_, a| {
        arity("initial", a, 1)?;
        let items = list_of(&a[0], "initial")?;
        Ok(if items.is_empty() {
            Value::Nil
        } else {
            list(items[..items.len() - 1].to_vec())
        })
    });
    for name in ["append", "push", "mustAppend", "mustPush"] {
        t.func(name, move |_, a| {
            arity(name, a, 2)?;
            let mut items = list_of(&a[0], "append")?;
            items.push(a[1].clone());
            Ok(list(items))
        });
    }
    for name in ["prepend", "mustPrepend"] {
        t.func(name, move |_, a| {
            arity(name, a, 2)?;
            let mut items = list_of(&a[0], "prepend")?;
            items.insert(0, a[1].clone());
            Ok(list(items))
        });
    }
    t.func("concat", |_, a| {
        let mut out = Vec::new();
        for item in a {
            out.extend(list_of(item, "concat")?);
        }
        Ok(list(out))
    });
    t.func("reverse", |_, a| {
        arity("reverse", a, 1)?;
        let mut items = list_of(&a[0], "reverse")?;
        items.reverse();
        Ok(list(items))
    });
    t.func("uniq", |_, a| {
        arity("uniq", a, 1)?;
        let mut out: Vec<Value> = Vec::new();
        for item in list_of(&a[0], "uniq")? {
            if !out.contains(&item) {
                out.push(item);
            }
        }
        Ok(list(out))
    });
    t.func("compact", |_, a| {
        arity("compact", a, 1)?;
        Ok(list(
            list_of(&a[0], "compact")?
                .into_iter()
                .filter(Value::truthy)
                .collect(),
        ))
    });
    t.func("without", |_, a| {
        at_least("without", a, 1)?;
        let drop = &a[1..];
        Ok(list(
            list_of(&a[0], "without")?
                .into_iter()
                .filter(|v| !drop.contains(v))
                .collect(),
        ))
    });
    t.func("has", |_, a| {
        arity("has", a, 2)?;
        Ok(Value::Bool(list_of(&a[1], "has")?.contains(&a[0])))
    });
    t.func("slice", |_, a| {
        at_least("slice", a, 1)?;
        let items = match &a[0] {
            Value::List(items) => items.to_vec(),
            other => {
                return Err(FuncError::Call(format!(
                    "list should be type of slice or array but {}",
                    other.type_name().trim_start_matches("[]")
                )));
            }
        };
        let bound = |i: usize, default: usize| -> usize {
            a.get(i)
                .map_or(default, |v| usize::try_from(to_int64(v)).unwrap_or(0))
        };
        let (start, end) = (bound(1, 0), bound(2, items.len()));
        if start > end || end > items.len() {
            return Err(FuncError::Call(format!(
                "slice bounds out of range [{start}:{end}]"
            )));
        }
        Ok(list(items[start..end].to_vec()))
    });
    t.func("until", |_, a| {
        arity("until", a, 1)?;
        let n = int(a, 0)?;
        let step = if n < 0 { -1 } else { 1 };
        Ok(list(range_values(0, n, step)))
    });
    t.func("untilStep", |_, a| {
        arity("untilStep", a, 3)?;
        Ok(list(range_values(int(a, 0)?, int(a, 1)?, int(a, 2)?)))
    });
    t.func("chunk", |_, a| {
        arity("chunk", a, 2)?;
        let size = usize::try_from(int(a, 0)?).unwrap_or(1).max(1);
        Ok(list(
            list_of(&a[1], "chunk")?
                .chunks(size)
                .map(|c| list(c.to_vec()))
                .collect(),
        ))
    });
}

fn range_values(start: i64, stop: i64, step: i64) -> Vec<Value> {
    let mut out = Vec::new();
    if step == 0 {
        return out;
    }
    let mut i = start;
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        out.push(Value::Int(i));
        i += step;
    }
    out
}

/// mergo.Merge: maps merge recursively; a destination value is replaced
/// only when `overwrite`, or when it is empty.
fn merge(dst: &MapRef, src: &MapRef, overwrite: bool) {
    for (key, value) in src.entries() {
        match (dst.get(&key), &value) {
            (Some(Value::Map(d)), Value::Map(s)) => merge(&d, s, overwrite),
            (Some(existing), _) if !overwrite && existing.truthy() => {}
            (Some(_), Value::Nil) if overwrite => {}
            _ => {
                dst.insert(key, deep_copy(&value));
            }
        }
    }
}

pub fn deep_copy(value: &Value) -> Value {
    match value {
        Value::Map(m) => Value::from(
            m.entries()
                .into_iter()
                .map(|(k, v)| (k, deep_copy(&v)))
                .collect::<BTreeMap<_, _>>(),
        ),
        Value::List(items) => list(items.iter().map(deep_copy).collect()),
        other => other.clone(),
    }
}
