//! sprig's lists and dicts. Dicts are Go maps, so `set`, `unset` and
//! `merge` change the map they are given (charts rely on it).

use std::collections::BTreeMap;

use k3r_gotemplate::{FuncError, MapRef, Template, Value};

use super::args::{Result, arity, at_least, empty, int, map, string, strval, to_int64};
use super::conv::kind;

/// The items of a list argument; otherwise sprig's message, which names
/// the argument's reflect.Kind.
fn list_of(value: &Value, message: &str) -> Result<Vec<Value>> {
    match value {
        Value::List(items) => Ok(items.to_vec()),
        Value::Nil => Ok(Vec::new()),
        other => Err(FuncError::Call(format!("{message} {}", kind(other)))),
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
    // sprig's list functions and their must* forms: the same work, and the
    // same message (a panic in the one, an error in the other, both
    // reported by Go as "error calling NAME: …").
    for name in ["first", "mustFirst"] {
        t.func(name, move |_, a| {
            arity(name, a, 1)?;
            Ok(list_of(&a[0], "Cannot find first on type")?
                .first()
                .cloned()
                .unwrap_or_default())
        });
    }
    for name in ["last", "mustLast"] {
        t.func(name, move |_, a| {
            arity(name, a, 1)?;
            Ok(list_of(&a[0], "Cannot find last on type")?
                .last()
                .cloned()
                .unwrap_or_default())
        });
    }
    for name in ["rest", "mustRest"] {
        t.func(name, move |_, a| {
            arity(name, a, 1)?;
            let items = list_of(&a[0], "Cannot find rest on type")?;
            Ok(if items.is_empty() {
                Value::Nil
            } else {
                list(items[1..].to_vec())
            })
        });
    }
    for name in ["initial", "mustInitial"] {
        t.func(name, move |_, a| {
            arity(name, a, 1)?;
            let items = list_of(&a[0], "Cannot find initial on type")?;
            Ok(if items.is_empty() {
                Value::Nil
            } else {
                list(items[..items.len() - 1].to_vec())
            })
        });
    }
    for name in ["append", "push", "mustAppend", "mustPush"] {
        t.func(name, move |_, a| {
            arity(name, a, 2)?;
            let mut items = list_of(&a[0], "Cannot push on type")?;
            items.push(a[1].clone());
            Ok(list(items))
        });
    }
    for name in ["prepend", "mustPrepend"] {
        t.func(name, move |_, a| {
            arity(name, a, 2)?;
            let mut items = list_of(&a[0], "Cannot prepend on type")?;
            items.insert(0, a[1].clone());
            Ok(list(items))
        });
    }
    t.func("concat", |_, a| {
        let mut out = Vec::new();
        for item in a {
            match item {
                Value::List(items) => out.extend(items.iter().cloned()),
                other => {
                    return Err(FuncError::Call(format!(
                        "Cannot concat type {} as list",
                        kind(other)
                    )));
                }
            }
        }
        Ok(list(out))
    });
    for name in ["reverse", "mustReverse"] {
        t.func(name, move |_, a| {
            arity(name, a, 1)?;
            let mut items = list_of(&a[0], "Cannot find reverse on type")?;
            items.reverse();
            Ok(list(items))
        });
    }
    for name in ["uniq", "mustUniq"] {
        t.func(name, move |_, a| {
            arity(name, a, 1)?;
            let mut out: Vec<Value> = Vec::new();
            for item in list_of(&a[0], "Cannot find uniq on type")? {
                if !out.contains(&item) {
                    out.push(item);
                }
            }
            Ok(list(out))
        });
    }
    for name in ["compact", "mustCompact"] {
        t.func(name, move |_, a| {
            arity(name, a, 1)?;
            Ok(list(
                list_of(&a[0], "Cannot compact on type")?
                    .into_iter()
                    .filter(|v| !empty(v))
                    .collect(),
            ))
        });
    }
    for name in ["without", "mustWithout"] {
        t.func(name, move |_, a| {
            at_least(name, a, 1)?;
            let drop = &a[1..];
            Ok(list(
                list_of(&a[0], "Cannot find without on type")?
                    .into_iter()
                    .filter(|v| !drop.contains(v))
                    .collect(),
            ))
        });
    }
    for name in ["has", "mustHas"] {
        t.func(name, move |_, a| {
            arity(name, a, 2)?;
            Ok(Value::Bool(
                list_of(&a[1], "Cannot find has on type")?.contains(&a[0]),
            ))
        });
    }
    for name in ["slice", "mustSlice"] {
        t.func(name, move |_, a| {
            at_least(name, a, 1)?;
            let items = match &a[0] {
                Value::List(items) => items.to_vec(),
                other => {
                    return Err(FuncError::Call(format!(
                        "list should be type of slice or array but {}",
                        kind(other)
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
    }
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
    for name in ["chunk", "mustChunk"] {
        t.func(name, move |_, a| {
            arity(name, a, 2)?;
            let size = usize::try_from(int(a, 0)?).unwrap_or(1).max(1);
            Ok(list(
                list_of(&a[1], "Cannot chunk type")?
                    .chunks(size)
                    .map(|c| list(c.to_vec()))
                    .collect(),
            ))
        });
    }
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
