//! sprig's conversions, math, flow control and reflection.

use k3r_gotemplate::{FuncError, Template, Value};

use super::args::{arity, at_least, boolean, empty, string, to_float64, to_int64};

pub fn register(t: &mut Template) {
    t.func("default", |_, a| {
        at_least("default", a, 1)?;
        // default DEFAULT GIVEN: GIVEN unless it is empty.
        Ok(match a.get(1) {
            Some(given) if !empty(given) => given.clone(),
            _ => a[0].clone(),
        })
    });
    t.func("empty", |_, a| {
        arity("empty", a, 1)?;
        Ok(Value::Bool(empty(&a[0])))
    });
    t.func("coalesce", |_, a| {
        Ok(a.iter().find(|v| !empty(v)).cloned().unwrap_or_default())
    });
    t.func("all", |_, a| Ok(Value::Bool(a.iter().all(|v| !empty(v)))));
    t.func("any", |_, a| Ok(Value::Bool(a.iter().any(|v| !empty(v)))));
    t.func("ternary", |_, a| {
        arity("ternary", a, 3)?;
        Ok(if boolean(a, 2)? {
            a[0].clone()
        } else {
            a[1].clone()
        })
    });
    t.func("fail", |_, a| {
        arity("fail", a, 1)?;
        Err(FuncError::Call(string(a, 0)?))
    });
    t.func("required", |_, a| {
        arity("required", a, 2)?;
        match &a[1] {
            Value::Nil => Err(FuncError::Call(string(a, 0)?)),
            Value::String(s) if s.is_empty() => Err(FuncError::Call(string(a, 0)?)),
            other => Ok(other.clone()),
        }
    });

    // Conversions (cast as sprig uses it). Go's int and int64 print alike.
    for name in ["int", "int64"] {
        t.func(name, move |_, a| {
            arity(name, a, 1)?;
            Ok(Value::Int(to_int64(&a[0])))
        });
    }
    t.func("float64", |_, a| {
        arity("float64", a, 1)?;
        Ok(Value::Float(to_float64(&a[0])))
    });
    t.func("atoi", |_, a| {
        arity("atoi", a, 1)?;
        Ok(Value::Int(string(a, 0)?.trim().parse().unwrap_or(0)))
    });
    t.func("toDecimal", |_, a| {
        arity("toDecimal", a, 1)?;
        Ok(Value::Int(
            i64::from_str_radix(&super::args::strval(&a[0]), 8).unwrap_or(0),
        ))
    });

    // Integer math: every argument through toInt64.
    t.func("add", |_, a| {
        Ok(Value::Int(
            a.iter().map(to_int64).fold(0, i64::wrapping_add),
        ))
    });
    t.func("add1", |_, a| {
        arity("add1", a, 1)?;
        Ok(Value::Int(to_int64(&a[0]).wrapping_add(1)))
    });
    t.func("sub", |_, a| {
        arity("sub", a, 2)?;
        Ok(Value::Int(to_int64(&a[0]).wrapping_sub(to_int64(&a[1]))))
    });
    t.func("mul", |_, a| {
        at_least("mul", a, 1)?;
        Ok(Value::Int(
            a.iter().map(to_int64).fold(1, i64::wrapping_mul),
        ))
    });
    t.func("div", |_, a| {
        arity("div", a, 2)?;
        let d = to_int64(&a[1]);
        if d == 0 {
            return Err(FuncError::Call(
                "runtime error: integer divide by zero".into(),
            ));
        }
        Ok(Value::Int(to_int64(&a[0]).wrapping_div(d)))
    });
    t.func("mod", |_, a| {
        arity("mod", a, 2)?;
        let d = to_int64(&a[1]);
        if d == 0 {
            return Err(FuncError::Call(
                "runtime error: integer divide by zero".into(),
            ));
        }
        Ok(Value::Int(to_int64(&a[0]).wrapping_rem(d)))
    });
    for (name, pick_max) in [("max", true), ("biggest", true), ("min", false)] {
        t.func(name, move |_, a| {
            at_least(name, a, 1)?;
            let nums = a.iter().map(to_int64);
            Ok(Value::Int(if pick_max {
                nums.max().unwrap_or(0)
            } else {
                nums.min().unwrap_or(0)
            }))
        });
    }
    // Float math.
    t.func("addf", |_, a| {
        Ok(Value::Float(a.iter().map(to_float64).sum()))
    });
    t.func("add1f", |_, a| {
        arity("add1f", a, 1)?;
        Ok(Value::Float(to_float64(&a[0]) + 1.0))
    });
    t.func("subf", |_, a| {
        at_least("subf", a, 1)?;
        let first = to_float64(&a[0]);
        Ok(Value::Float(
            a[1..].iter().map(to_float64).fold(first, |x, y| x - y),
        ))
    });
    t.func("mulf", |_, a| {
        Ok(Value::Float(a.iter().map(to_float64).product()))
    });
    t.func("divf", |_, a| {
        at_least("divf", a, 1)?;
        let first = to_float64(&a[0]);
        Ok(Value::Float(
            a[1..].iter().map(to_float64).fold(first, |x, y| x / y),
        ))
    });
    t.func("maxf", |_, a| {
        Ok(Value::Float(
            a.iter().map(to_float64).fold(f64::NEG_INFINITY, f64::max),
        ))
    });
    t.func("minf", |_, a| {
        Ok(Value::Float(
            a.iter().map(to_float64).fold(f64::INFINITY, f64::min),
        ))
    });
    t.func("floor", |_, a| {
        arity("floor", a, 1)?;
        Ok(Value::Float(to_float64(&a[0]).floor()))
    });
    t.func("ceil", |_, a| {
        arity("ceil", a, 1)?;
        Ok(Value::Float(to_float64(&a[0]).ceil()))
    });
    t.func("round", |_, a| {
        at_least("round", a, 2)?;
        let places = i32::try_from(to_int64(&a[1])).unwrap_or(0);
        let round_on = a.get(2).map_or(0.5, to_float64);
        let pow = 10f64.powi(places);
        let digit = to_float64(&a[0]) * pow;
        let (int, frac) = (digit.trunc(), digit.fract());
        let rounded = if frac >= round_on { int + 1.0 } else { int };
        Ok(Value::Float(rounded / pow))
    });

    t.func("semverCompare", |_, a| {
        arity("semverCompare", a, 2)?;
        crate::semver::semver_compare(&string(a, 0)?, &string(a, 1)?)
            .map(Value::Bool)
            .map_err(FuncError::Call)
    });
    t.func("semver", |_, a| {
        arity("semver", a, 1)?;
        let v = crate::semver::Version::parse(&string(a, 0)?).map_err(FuncError::Call)?;
        Ok(k3r_gotemplate::map_of([
            (
                "Major".to_string(),
                Value::Int(i64::try_from(v.major).unwrap_or(0)),
            ),
            (
                "Minor".to_string(),
                Value::Int(i64::try_from(v.minor).unwrap_or(0)),
            ),
            (
                "Patch".to_string(),
                Value::Int(i64::try_from(v.patch).unwrap_or(0)),
            ),
            ("Prerelease".to_string(), Value::from(v.pre)),
        ]))
    });

    // Reflection, with Go's type and kind names.
    t.func("typeOf", |_, a| {
        arity("typeOf", a, 1)?;
        Ok(Value::from(a[0].type_name()))
    });
    t.func("kindOf", |_, a| {
        arity("kindOf", a, 1)?;
        Ok(Value::str(kind(&a[0])))
    });
    t.func("kindIs", |_, a| {
        arity("kindIs", a, 2)?;
        Ok(Value::Bool(string(a, 0)? == kind(&a[1])))
    });
    t.func("typeIs", |_, a| {
        arity("typeIs", a, 2)?;
        Ok(Value::Bool(string(a, 0)? == a[1].type_name()))
    });
    t.func("typeIsLike", |_, a| {
        arity("typeIsLike", a, 2)?;
        let want = string(a, 0)?;
        let got = a[1].type_name();
        Ok(Value::Bool(want == got || want == format!("*{got}")))
    });
    t.func("deepEqual", |_, a| {
        arity("deepEqual", a, 2)?;
        Ok(Value::Bool(a[0] == a[1]))
    });
}

/// reflect.Kind names.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::List(_) | Value::Bytes(_) => "slice",
        Value::Map(_) => "map",
        Value::Object(_) => "ptr",
    }
}
