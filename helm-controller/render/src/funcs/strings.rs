//! sprig's string functions.

use k3r_gotemplate::fmt::go_quote;
use k3r_gotemplate::{Template, Value};

use super::args::{arity, at_least, int, string, strslice, strval};

fn text(s: String) -> Value {
    Value::from(s)
}

pub fn register(t: &mut Template) {
    for (name, f) in [
        ("upper", str::to_uppercase as fn(&str) -> String),
        ("lower", str::to_lowercase),
        ("trim", |s: &str| s.trim().to_string()),
        ("title", title),
        ("untitle", untitle),
        ("nospace", |s: &str| {
            s.chars().filter(|c| !c.is_whitespace()).collect()
        }),
        ("initials", |s: &str| {
            s.split_whitespace()
                .filter_map(|w| w.chars().next())
                .collect()
        }),
        ("swapcase", |s: &str| {
            s.chars()
                .map(|c| {
                    if c.is_uppercase() {
                        c.to_lowercase().collect::<String>()
                    } else {
                        c.to_uppercase().collect()
                    }
                })
                .collect()
        }),
        ("snakecase", snakecase),
        ("kebabcase", |s: &str| snakecase(s).replace('_', "-")),
        ("camelcase", camelcase),
    ] {
        t.func(name, move |_, a| {
            arity(name, a, 1)?;
            Ok(text(f(&string(a, 0)?)))
        });
    }
    t.func("trimAll", |_, a| {
        arity("trimAll", a, 2)?;
        let cut = string(a, 0)?;
        Ok(text(
            string(a, 1)?.trim_matches(|c| cut.contains(c)).to_string(),
        ))
    });
    t.func("trimall", |_, a| {
        arity("trimall", a, 2)?;
        let cut = string(a, 0)?;
        Ok(text(
            string(a, 1)?.trim_matches(|c| cut.contains(c)).to_string(),
        ))
    });
    t.func("trimSuffix", |_, a| {
        arity("trimSuffix", a, 2)?;
        let suffix = string(a, 0)?;
        let s = string(a, 1)?;
        Ok(text(
            s.strip_suffix(suffix.as_str()).unwrap_or(&s).to_string(),
        ))
    });
    t.func("trimPrefix", |_, a| {
        arity("trimPrefix", a, 2)?;
        let prefix = string(a, 0)?;
        let s = string(a, 1)?;
        Ok(text(
            s.strip_prefix(prefix.as_str()).unwrap_or(&s).to_string(),
        ))
    });
    t.func("contains", |_, a| {
        arity("contains", a, 2)?;
        Ok(Value::Bool(string(a, 1)?.contains(&string(a, 0)?)))
    });
    t.func("hasPrefix", |_, a| {
        arity("hasPrefix", a, 2)?;
        Ok(Value::Bool(string(a, 1)?.starts_with(&string(a, 0)?)))
    });
    t.func("hasSuffix", |_, a| {
        arity("hasSuffix", a, 2)?;
        Ok(Value::Bool(string(a, 1)?.ends_with(&string(a, 0)?)))
    });
    t.func("repeat", |_, a| {
        arity("repeat", a, 2)?;
        let count = usize::try_from(int(a, 0)?).map_err(|_| "strings: negative Repeat count")?;
        Ok(text(string(a, 1)?.repeat(count)))
    });
    t.func("replace", |_, a| {
        arity("replace", a, 3)?;
        Ok(text(string(a, 2)?.replace(&string(a, 0)?, &string(a, 1)?)))
    });
    t.func("indent", |_, a| {
        arity("indent", a, 2)?;
        Ok(text(indent(int(a, 0)?, &string(a, 1)?)))
    });
    t.func("nindent", |_, a| {
        arity("nindent", a, 2)?;
        Ok(text(format!("\n{}", indent(int(a, 0)?, &string(a, 1)?))))
    });
    t.func("trunc", |_, a| {
        arity("trunc", a, 2)?;
        let c = int(a, 0)?;
        let s = string(a, 1)?;
        let len = i64::try_from(s.len()).unwrap_or(i64::MAX);
        // Bytes, as Go slices strings; a negative count keeps the tail.
        let bytes = s.as_bytes();
        let cut = if c < 0 && len + c > 0 {
            &bytes[usize::try_from(len + c).unwrap_or(0)..]
        } else if c >= 0 && len > c {
            &bytes[..usize::try_from(c).unwrap_or(0)]
        } else {
            bytes
        };
        Ok(text(String::from_utf8_lossy(cut).into_owned()))
    });
    t.func("substr", |_, a| {
        arity("substr", a, 3)?;
        let (start, end) = (int(a, 0)?, int(a, 1)?);
        let s = string(a, 2)?;
        let bytes = s.as_bytes();
        let len = bytes.len();
        let to = |i: i64| usize::try_from(i).unwrap_or(0).min(len);
        let out = if start < 0 {
            &bytes[..to(end)]
        } else if end < 0 || to(end) > len {
            &bytes[to(start)..]
        } else {
            &bytes[to(start).min(to(end))..to(end)]
        };
        Ok(text(String::from_utf8_lossy(out).into_owned()))
    });
    t.func("quote", |_, a| {
        let quoted: Vec<String> = a
            .iter()
            .filter(|v| !matches!(v, Value::Nil))
            .map(|v| go_quote(&strval(v)))
            .collect();
        Ok(text(quoted.join(" ")))
    });
    t.func("squote", |_, a| {
        let quoted: Vec<String> = a
            .iter()
            .filter(|v| !matches!(v, Value::Nil))
            .map(|v| format!("'{}'", strval(v)))
            .collect();
        Ok(text(quoted.join(" ")))
    });
    t.func("cat", |_, a| {
        let parts: Vec<String> = a
            .iter()
            .filter(|v| !matches!(v, Value::Nil))
            .map(Value::to_go_string)
            .collect();
        Ok(text(parts.join(" ")))
    });
    t.func("toString", |_, a| {
        arity("toString", a, 1)?;
        Ok(text(strval(&a[0])))
    });
    t.func("toStrings", |_, a| {
        arity("toStrings", a, 1)?;
        Ok(Value::from(
            strslice(&a[0])
                .into_iter()
                .map(Value::from)
                .collect::<Vec<_>>(),
        ))
    });
    t.func("plural", |_, a| {
        arity("plural", a, 3)?;
        Ok(text(if int(a, 2)? == 1 {
            string(a, 0)?
        } else {
            string(a, 1)?
        }))
    });
    t.func("split", |_, a| {
        arity("split", a, 2)?;
        let sep = string(a, 0)?;
        Ok(numbered(string(a, 1)?.split(sep.as_str())))
    });
    t.func("splitn", |_, a| {
        arity("splitn", a, 3)?;
        let sep = string(a, 0)?;
        let n = usize::try_from(int(a, 1)?).unwrap_or(usize::MAX);
        Ok(numbered(string(a, 2)?.splitn(n, sep.as_str())))
    });
    t.func("splitList", |_, a| {
        arity("splitList", a, 2)?;
        let sep = string(a, 0)?;
        Ok(Value::from(
            string(a, 1)?
                .split(sep.as_str())
                .map(Value::str)
                .collect::<Vec<_>>(),
        ))
    });
    t.func("join", |_, a| {
        arity("join", a, 2)?;
        Ok(text(strslice(&a[1]).join(&string(a, 0)?)))
    });
    t.func("sortAlpha", |_, a| {
        arity("sortAlpha", a, 1)?;
        let mut items = strslice(&a[0]);
        items.sort();
        Ok(Value::from(
            items.into_iter().map(Value::from).collect::<Vec<_>>(),
        ))
    });
    t.func("wrap", |_, a| {
        arity("wrap", a, 2)?;
        Ok(text(wrap(
            &string(a, 1)?,
            usize::try_from(int(a, 0)?).unwrap_or(0),
            "\n",
        )))
    });
    t.func("wrapWith", |_, a| {
        arity("wrapWith", a, 3)?;
        Ok(text(wrap(
            &string(a, 2)?,
            usize::try_from(int(a, 0)?).unwrap_or(0),
            &string(a, 1)?,
        )))
    });
    t.func("abbrev", |_, a| {
        arity("abbrev", a, 2)?;
        let width = usize::try_from(int(a, 0)?).unwrap_or(0);
        let s = string(a, 1)?;
        if width < 4 || s.chars().count() <= width {
            return Ok(text(s));
        }
        Ok(text(format!(
            "{}...",
            s.chars().take(width - 3).collect::<String>()
        )))
    });
    t.func("abbrevboth", |_, a| {
        arity("abbrevboth", a, 3)?;
        let (left, right) = (int(a, 0)?, int(a, 1)?);
        let s = string(a, 2)?;
        if right < 4 || (left > 0 && right < 7) {
            return Ok(text(s));
        }
        Ok(text(abbreviate_full(&s, left, right)))
    });
    t.func("hello", |_, _| Ok(Value::str("Hello!")));
    t.func("seq", |_, a| {
        at_least("seq", a, 0)?;
        let nums: Vec<i64> = a.iter().map(super::args::to_int64).collect();
        let (start, step, end) = match nums.as_slice() {
            [end] => (1, if *end >= 1 { 1 } else { -1 }, *end),
            [start, end] => (*start, if end >= start { 1 } else { -1 }, *end),
            [start, step, end] => (*start, *step, *end),
            _ => return Ok(text(String::new())),
        };
        let mut out = Vec::new();
        let mut i = start;
        while step != 0 && ((step > 0 && i <= end) || (step < 0 && i >= end)) {
            out.push(i.to_string());
            i += step;
        }
        Ok(text(out.join(" ")))
    });
}

/// sprig's split result: {"_0": first, "_1": second, ...}.
fn numbered<'a>(parts: impl Iterator<Item = &'a str>) -> Value {
    k3r_gotemplate::map_of(
        parts
            .enumerate()
            .map(|(i, p)| (format!("_{i}"), Value::str(p))),
    )
}

fn indent(spaces: i64, s: &str) -> String {
    let pad = " ".repeat(usize::try_from(spaces).unwrap_or(0));
    format!("{pad}{}", s.replace('\n', &format!("\n{pad}")))
}

/// strings.Title: the first letter of every word upper-cased.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous: Option<char> = None;
    for c in s.chars() {
        let at_word_start =
            previous.is_none_or(|p| !(p.is_alphanumeric() || p == '_' || p == '\''));
        if at_word_start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        previous = Some(c);
    }
    out
}

fn untitle(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous_space = true;
    for c in s.chars() {
        if previous_space {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        previous_space = c.is_whitespace();
    }
    out
}

/// xstrings.ToSnakeCase.
fn snakecase(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if i > 0
                && (prev_lower || (next_lower && chars[i - 1].is_uppercase()))
                && !out.ends_with('_')
            {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else if c == '-' || c == ' ' || c == '_' || c == '.' {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// xstrings.ToCamelCase: words joined with their first letter upper-cased.
fn camelcase(s: &str) -> String {
    s.split(['_', '-', ' '])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|f| f.to_uppercase().collect::<String>() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// goutils.WrapCustom (long words are not broken).
fn wrap(s: &str, width: usize, newline: &str) -> String {
    let width = width.max(1);
    let mut lines = Vec::new();
    for paragraph in s.split('\n') {
        let mut line = String::new();
        for word in paragraph.split(' ').filter(|w| !w.is_empty()) {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines.join(newline)
}

/// goutils.AbbreviateFull (byte offsets, as Go's): "..." on the side(s)
/// cut so the result is at most `width` long, keeping `offset` in view.
fn abbreviate_full(s: &str, offset: i64, width: i64) -> String {
    let len = i64::try_from(s.len()).unwrap_or(i64::MAX);
    if s.is_empty() || width < 4 || len <= width {
        return s.to_string();
    }
    let byte = |i: i64| usize::try_from(i.clamp(0, len)).unwrap_or(0);
    let slice = |from: i64, to: i64| {
        String::from_utf8_lossy(&s.as_bytes()[byte(from)..byte(to)]).into_owned()
    };
    let mut offset = offset.min(len);
    if len - offset < width - 3 {
        offset = len - (width - 3);
    }
    if offset <= 4 {
        return format!("{}...", slice(0, width - 3));
    }
    if width < 7 {
        return s.to_string();
    }
    if offset + width - 3 < len {
        return format!("...{}", abbreviate_full(&slice(offset, len), 0, width - 3));
    }
    format!("...{}", slice(len - (width - 3), len))
}
