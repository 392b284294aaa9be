//! Go's fmt for template values: Sprint, Sprintln and Sprintf with the
//! verbs, flags, width and precision charts use, and Go's error forms
//! (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA ...)`).

use crate::value::{Value, exp_form, format_float_g};

/// fmt.Sprint: spaces between operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        let is_string = |v: &Value| matches!(v, Value::String(_));
        if i > 0 && !is_string(arg) && !is_string(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&arg.to_go_string());
    }
    out
}

/// fmt.Sprintln: always spaces, and a final newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut out: Vec<String> = args.iter().map(Value::to_go_string).collect();
    out.push(String::new());
    let joined = out.join(" ");
    format!("{}\n", joined.trim_end_matches(' '))
}

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// fmt.Sprintf.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = 0usize;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = number(&mut chars, args, &mut next);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(number(&mut chars, args, &mut next).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        out.push_str(&format_one(verb, spec, arg));
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| format!("{}={}", a.type_name(), a.to_go_string()))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn number(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    args: &[Value],
    next: &mut usize,
) -> Option<usize> {
    if chars.peek() == Some(&'*') {
        chars.next();
        let value = match args.get(*next) {
            Some(Value::Int(i)) => usize::try_from(*i).ok(),
            _ => None,
        };
        *next += 1;
        return value;
    }
    let mut digits = String::new();
    while let Some(&d) = chars.peek() {
        if d.is_ascii_digit() {
            digits.push(d);
            chars.next();
        } else {
            break;
        }
    }
    digits.parse().ok()
}

fn bad(verb: char, arg: &Value) -> String {
    match arg {
        Value::Nil => format!("%!{verb}(<nil>)"),
        other => format!("%!{verb}({}={})", other.type_name(), other.to_go_string()),
    }
}

fn pad(text: String, spec: Spec, numeric: bool) -> String {
    let len = text.chars().count();
    let Some(width) = spec.width.filter(|w| *w > len) else {
        return text;
    };
    let fill = width - len;
    if spec.minus {
        format!("{text}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        // Zeros go after the sign.
        let (sign, digits) = match text.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), text[1..].to_string()),
            _ => (String::new(), text),
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{text}", " ".repeat(fill))
    }
}

fn sign(negative: bool, spec: Spec) -> &'static str {
    if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

fn format_one(verb: char, spec: Spec, arg: &Value) -> String {
    if verb == 'T' {
        return pad(arg.type_name(), spec, false);
    }
    match arg {
        Value::Bool(b) => match verb {
            'v' | 't' => pad(b.to_string(), spec, false),
            _ => bad(verb, arg),
        },
        Value::Int(i) => format_int(verb, spec, *i).unwrap_or_else(|| bad(verb, arg)),
        Value::Float(f) => format_float(verb, spec, *f).unwrap_or_else(|| bad(verb, arg)),
        Value::String(s) => format_str(verb, spec, s).unwrap_or_else(|| bad(verb, arg)),
        Value::Bytes(b) => match verb {
            's' | 'q' | 'x' | 'X' => {
                format_str(verb, spec, &String::from_utf8_lossy(b)).unwrap_or_default()
            }
            _ => pad(arg.to_go_string(), spec, false),
        },
        Value::Nil => match verb {
            'v' => pad("<nil>".into(), spec, false),
            _ => bad(verb, arg),
        },
        Value::List(items) => {
            if verb == 'v' {
                return pad(arg.to_go_string(), spec, false);
            }
            let inner: Vec<String> = items.iter().map(|v| format_one(verb, spec, v)).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Map(map) => {
            if verb == 'v' {
                return pad(arg.to_go_string(), spec, false);
            }
            let inner: Vec<String> = map
                .entries()
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        format_one(verb, spec, &Value::str(k)),
                        format_one(verb, spec, v)
                    )
                })
                .collect();
            format!("map[{}]", inner.join(" "))
        }
        Value::Object(o) => match verb {
            'v' | 's' => pad(o.format(), spec, false),
            _ => bad(verb, arg),
        },
    }
}

fn format_int(verb: char, spec: Spec, i: i64) -> Option<String> {
    let negative = i < 0;
    let magnitude = i.unsigned_abs();
    let digits = match verb {
        'v' | 'd' => magnitude.to_string(),
        'b' => format!("{magnitude:b}"),
        'o' | 'O' => format!("{magnitude:o}"),
        'x' => format!("{magnitude:x}"),
        'X' => format!("{magnitude:X}"),
        'c' => {
            return Some(pad(
                char::from_u32(u32::try_from(i).ok()?)
                    .unwrap_or('\u{fffd}')
                    .to_string(),
                spec,
                false,
            ));
        }
        'q' => {
            let c = char::from_u32(u32::try_from(i).ok()?).unwrap_or('\u{fffd}');
            return Some(pad(format!("'{}'", c.escape_default()), spec, false));
        }
        'U' => return Some(pad(format!("U+{magnitude:04X}"), spec, false)),
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => return None,
        's' => return None,
        _ => return None,
    };
    let digits = match spec.precision {
        Some(p) if digits.len() < p => format!("{}{digits}", "0".repeat(p - digits.len())),
        Some(0) if magnitude == 0 => String::new(),
        _ => digits,
    };
    let prefix = match (verb, spec.sharp) {
        ('x', true) => "0x",
        ('X', true) => "0X",
        ('o', true) if !digits.starts_with('0') => "0",
        ('O', _) => "0o",
        ('b', true) => "0b",
        _ => "",
    };
    let text = format!("{}{prefix}{digits}", sign(negative, spec));
    // Go ignores the 0 flag when a precision is given.
    let spec = Spec {
        zero: spec.zero && spec.precision.is_none(),
        ..spec
    };
    Some(pad(text, spec, true))
}

fn format_float(verb: char, spec: Spec, f: f64) -> Option<String> {
    let negative = f.is_sign_negative() && f != 0.0 || (f == 0.0 && f.is_sign_negative());
    let magnitude = f.abs();
    if f.is_nan() || f.is_infinite() {
        let text = if f.is_nan() {
            "NaN".to_string()
        } else {
            format!("{}Inf", if negative { "-" } else { "+" })
        };
        return Some(pad(
            text,
            Spec {
                zero: false,
                ..spec
            },
            false,
        ));
    }
    let body = match (verb, spec.precision) {
        ('v', None) | ('g', None) => format_float_g(magnitude),
        ('G', None) => format_float_g(magnitude).to_uppercase(),
        ('v' | 'g' | 'G', Some(p)) => {
            let text = precise_g(magnitude, p.max(1), spec.sharp);
            if verb == 'G' {
                text.to_uppercase()
            } else {
                text
            }
        }
        ('f' | 'F', p) => format!("{:.*}", p.unwrap_or(6), magnitude),
        ('e' | 'E', p) => {
            let text = format!("{:.*e}", p.unwrap_or(6), magnitude);
            let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
            let exponent: i32 = exponent.parse().unwrap_or(0);
            let esign = if exponent < 0 { '-' } else { '+' };
            let text = format!("{mantissa}e{esign}{:02}", exponent.abs());
            if verb == 'E' {
                text.to_uppercase()
            } else {
                text
            }
        }
        _ => return None,
    };
    Some(pad(format!("{}{body}", sign(negative, spec)), spec, true))
}

/// %.Ng: N significant digits, trailing zeros dropped (unless #).
fn precise_g(f: f64, precision: usize, sharp: bool) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let text = format!("{:.*e}", precision - 1, f);
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !sharp {
        while digits.len() > 1 && digits.ends_with('0') {
            digits.pop();
        }
    }
    let eprec = i32::try_from(precision).unwrap_or(i32::MAX);
    if exponent < -4 || exponent >= eprec {
        return exp_form(&digits, exponent);
    }
    if exponent < 0 {
        format!(
            "0.{}{digits}",
            "0".repeat(usize::try_from(-exponent - 1).unwrap_or(0))
        )
    } else {
        let point = usize::try_from(exponent + 1).unwrap_or(0);
        if digits.len() <= point {
            format!("{digits}{}", "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    }
}

fn format_str(verb: char, spec: Spec, s: &str) -> Option<String> {
    let truncated: String = match spec.precision {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    };
    let text = match verb {
        'v' | 's' => truncated,
        'q' => {
            if spec.sharp && !truncated.contains('`') {
                format!("`{truncated}`")
            } else {
                go_quote(&truncated)
            }
        }
        'x' => truncated.bytes().map(|b| format!("{b:02x}")).collect(),
        'X' => truncated.bytes().map(|b| format!("{b:02X}")).collect(),
        _ => return None,
    };
    Some(pad(
        text,
        Spec {
            zero: false,
            ..spec
        },
        false,
    ))
}

/// strconv.Quote.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(format: &str, args: &[Value]) -> String {
        sprintf(format, args)
    }

    #[test]
    fn verbs_flags_and_errors_like_go() {
        assert_eq!(
            f(
                "%d-%5d-%-5d|%05d",
                &[3.into(), 42.into(), 7.into(), (-42).into()]
            ),
            "3-   42-7    |-0042"
        );
        assert_eq!(f("%s=%q", &["a".into(), "b\"c".into()]), "a=\"b\\\"c\"");
        assert_eq!(f("%v %v", &[1.5.into(), 1000000.0.into()]), "1.5 1e+06");
        assert_eq!(
            f("%.2f %f %e", &[2.71628.into(), 2.0.into(), 1234.5.into()]),
            "2.72 2.000000 1.234500e+03"
        );
        assert_eq!(f("%d", &[3.0.into()]), "%!d(float64=3)");
        assert_eq!(f("%s", &[Value::Int(3)]), "%!s(int=3)");
        assert_eq!(f("%s %s", &["a".into()]), "a %!s(MISSING)");
        assert_eq!(f("%s", &["a".into(), Value::Int(1)]), "a%!(EXTRA int=1)");
        assert_eq!(
            f("%x %X %o %b", &[255.into(), 255.into(), 8.into(), 5.into()]),
            "ff FF 10 101"
        );
        assert_eq!(f("%t %v", &[true.into(), Value::Nil]), "true <nil>");
        assert_eq!(
            f("%T %T", &[Value::Float(1.0), Value::str("x")]),
            "float64 string"
        );
        assert_eq!(
            f(
                "%.3s|%6.2f|%g",
                &["abcdef".into(), 2.71628.into(), 0.000012.into()]
            ),
            "abc|  2.72|1.2e-05"
        );
        assert_eq!(f("100%%", &[]), "100%");
    }

    #[test]
    fn sprint_spaces_only_between_non_strings() {
        assert_eq!(sprint(&[1.into(), 2.into()]), "1 2");
        assert_eq!(
            sprint(&["a".into(), 1.into(), 2.into(), "b".into()]),
            "a1 2b"
        );
        assert_eq!(sprintln(&["a".into(), 1.into()]), "a 1\n");
    }
}
