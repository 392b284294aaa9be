//! sprig's regular expression functions with Go's regexp (RE2) syntax:
//! patterns are translated to the regex crate's syntax where the two
//! differ (ASCII-only \d \w \s \b, a literal `{` that is no repetition,
//! `\Q…\E`, octal escapes, `[`, `&`, `~` and a `-` next to a class escape
//! taken literally inside a class), and errors are worded as Go words
//! them. As in sprig, regexMatch swallows a bad pattern (false), the other
//! plain functions fail as Go's MustCompile panics, and the must* forms
//! fail with the compile error.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use k3r_gotemplate::{FuncError, Template, Value};
use regex::{Regex, RegexBuilder};

use super::args::{Result, arity, int, string};

/// A compile error as Go's regexp/syntax prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct GoRegexError(pub String);

/// regexp.Compile. Compiled patterns are kept (charts call the same few
/// patterns in every helper, and building the regex crate's automata costs
/// far more than Go's compile): a bounded cache, emptied when full.
pub fn compile(pattern: &str) -> std::result::Result<Regex, GoRegexError> {
    static CACHE: LazyLock<Mutex<HashMap<String, std::result::Result<Regex, GoRegexError>>>> =
        LazyLock::new(Mutex::default);
    const CACHED_PATTERNS: usize = 1024;
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = cache.get(pattern) {
        return found.clone();
    }
    let compiled = translate(pattern).and_then(|translated| {
        RegexBuilder::new(&translated).build().map_err(|e| {
            GoRegexError(format!(
                "error parsing regexp: {}",
                rust_reason(&e, pattern)
            ))
        })
    });
    if cache.len() >= CACHED_PATTERNS {
        cache.clear();
    }
    cache.insert(pattern.to_string(), compiled.clone());
    compiled
}

/// How a plain function fails: Go's MustCompile panic.
fn must_compile(pattern: &str) -> Result<Regex> {
    compile(pattern).map_err(|e| {
        FuncError::Call(format!(
            "regexp: Compile({}): {}",
            go_backquote(pattern),
            e.0
        ))
    })
}

/// How a must* function fails: the compile error itself.
fn compile_or_error(pattern: &str) -> Result<Regex> {
    compile(pattern).map_err(|e| FuncError::Call(e.0))
}

/// Go's regexp quote(): backquoted when it can be, else strconv.Quote.
fn go_backquote(s: &str) -> String {
    if s.chars()
        .all(|c| c != '`' && (c == '\t' || !c.is_control()) && c != '\u{FEFF}')
    {
        format!("`{s}`")
    } else {
        k3r_gotemplate::fmt::go_quote(s)
    }
}

pub fn register(t: &mut Template) {
    t.func("regexMatch", |_, a| {
        arity("regexMatch", a, 2)?;
        Ok(Value::Bool(compile(&string(a, 0)?).is_ok_and(|re| {
            re.is_match(&string(a, 1).unwrap_or_default())
        })))
    });
    t.func("mustRegexMatch", |_, a| {
        arity("mustRegexMatch", a, 2)?;
        Ok(Value::Bool(
            compile_or_error(&string(a, 0)?)?.is_match(&string(a, 1)?),
        ))
    });
    for (name, must) in [("regexFind", false), ("mustRegexFind", true)] {
        t.func(name, move |_, a| {
            arity(name, a, 2)?;
            let re = pick(must)(&string(a, 0)?)?;
            let s = string(a, 1)?;
            Ok(Value::from(
                re.find(&s)
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_default(),
            ))
        });
    }
    for (name, must) in [("regexFindAll", false), ("mustRegexFindAll", true)] {
        t.func(name, move |_, a| {
            arity(name, a, 3)?;
            let re = pick(must)(&string(a, 0)?)?;
            let s = string(a, 1)?;
            let n = int(a, 2)?;
            Ok(Value::from(
                find_all(&re, &s, n)
                    .into_iter()
                    .map(|(start, end)| Value::str(&s[start..end]))
                    .collect::<Vec<_>>(),
            ))
        });
    }
    // The Literal forms take the replacement as it is; the others expand
    // $1 and ${name} as Go's Expand does.
    for (name, must, literal) in [
        ("regexReplaceAll", false, false),
        ("mustRegexReplaceAll", true, false),
        ("regexReplaceAllLiteral", false, true),
        ("mustRegexReplaceAllLiteral", true, true),
    ] {
        t.func(name, move |_, a| {
            arity(name, a, 3)?;
            let re = pick(must)(&string(a, 0)?)?;
            let s = string(a, 1)?;
            let replacement = string(a, 2)?;
            let replaced = if literal {
                re.replace_all(&s, regex::NoExpand(&replacement))
            } else {
                re.replace_all(&s, replacement.as_str())
            };
            Ok(Value::from(replaced.into_owned()))
        });
    }
    for (name, must) in [("regexSplit", false), ("mustRegexSplit", true)] {
        t.func(name, move |_, a| {
            arity(name, a, 3)?;
            let pattern = string(a, 0)?;
            let re = pick(must)(&pattern)?;
            let s = string(a, 1)?;
            Ok(Value::from(
                split(&re, &pattern, &s, int(a, 2)?)
                    .into_iter()
                    .map(Value::from)
                    .collect::<Vec<_>>(),
            ))
        });
    }
    t.func("regexQuoteMeta", |_, a| {
        arity("regexQuoteMeta", a, 1)?;
        Ok(Value::from(quote_meta(&string(a, 0)?)))
    });
}

fn pick(must: bool) -> fn(&str) -> Result<Regex> {
    if must { compile_or_error } else { must_compile }
}

/// FindAllStringIndex: n < 0 all, n == 0 none; an empty match right after
/// the previous match is skipped, as Go does.
fn find_all(re: &Regex, s: &str, n: i64) -> Vec<(usize, usize)> {
    let limit = usize::try_from(n).unwrap_or(usize::MAX);
    let mut out: Vec<(usize, usize)> = Vec::new();
    for m in re.find_iter(s) {
        if out.len() >= limit {
            break;
        }
        if m.start() == m.end() && out.last().is_some_and(|last| last.1 == m.start()) {
            continue;
        }
        out.push((m.start(), m.end()));
    }
    out
}

/// Regexp.Split.
fn split(re: &Regex, pattern: &str, s: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    if !pattern.is_empty() && s.is_empty() {
        return vec![String::new()];
    }
    let mut out = Vec::new();
    let (mut begin, mut end) = (0, 0);
    for (start, stop) in find_all(re, s, n) {
        if n > 0 && i64::try_from(out.len()).unwrap_or(i64::MAX) == n - 1 {
            break;
        }
        end = start;
        if stop != 0 {
            out.push(s[begin..end].to_string());
        }
        begin = stop;
    }
    if end != s.len() {
        out.push(s[begin..].to_string());
    }
    out
}

/// regexp.QuoteMeta: only Go's special characters.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

const WORD: &str = "0-9A-Za-z_";
const SPACE: &str = "\\t\\n\\f\\r ";

fn error(code: &str, expr: &str) -> GoRegexError {
    GoRegexError(format!("error parsing regexp: {code}: `{expr}`"))
}

/// Go's syntax -> the regex crate's, checking what Go rejects on the way.
pub fn translate(pattern: &str) -> std::result::Result<String, GoRegexError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    let mut depth = 0usize;
    // Whether the last thing written can take a repetition operator.
    let mut operand = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let (text, next) = escape(&chars, i, false)?;
                out.push_str(&text);
                i = next;
                operand = true;
                continue;
            }
            '[' => {
                let (text, next) = class(&chars, i)?;
                out.push_str(&text);
                i = next;
                operand = true;
                continue;
            }
            '(' => {
                if chars.get(i + 1) == Some(&'?') {
                    let rest: String = chars[i..].iter().collect();
                    for unsupported in ["(?<=", "(?<!", "(?=", "(?!"] {
                        if rest.starts_with(unsupported) {
                            return Err(error("invalid or unsupported Perl syntax", unsupported));
                        }
                    }
                    // (?flags), (?flags: (?P<name> (?<name>: copied whole.
                    let named = rest.starts_with("(?P<") || rest.starts_with("(?<");
                    let end = if named {
                        rest.find('>')
                    } else {
                        rest.find([':', ')'])
                    };
                    let Some(end) = end else {
                        return Err(error("missing closing )", pattern));
                    };
                    let prefix = &rest[..=end];
                    out.push_str(prefix);
                    i += prefix.chars().count();
                    if !prefix.ends_with(')') {
                        depth += 1;
                    }
                    operand = false;
                    continue;
                }
                depth += 1;
                out.push(c);
                operand = false;
            }
            ')' => {
                if depth == 0 {
                    return Err(error("unexpected )", pattern));
                }
                depth -= 1;
                out.push(c);
                operand = true;
            }
            '|' => {
                out.push(c);
                operand = false;
            }
            '*' | '+' | '?' => {
                if !operand {
                    if i > 0 && matches!(chars[i - 1], '*' | '+' | '?') {
                        return Err(error(
                            "invalid nested repetition operator",
                            &format!("{}{c}", chars[i - 1]),
                        ));
                    }
                    return Err(error(
                        "missing argument to repetition operator",
                        &c.to_string(),
                    ));
                }
                out.push(c);
                // After a repetition only a lazy `?` may follow.
                operand = false;
                if chars.get(i + 1) == Some(&'?') {
                    out.push('?');
                    i += 1;
                }
            }
            '{' => match repeat_at(&chars, i) {
                Some((text, next, min, max)) => {
                    if min > 1000 || max.is_some_and(|m| m > 1000 || m < min) {
                        return Err(error("invalid repeat count", &text));
                    }
                    if !operand {
                        return Err(error("missing argument to repetition operator", &text));
                    }
                    out.push_str(&text);
                    i = next;
                    operand = false;
                    if chars.get(i) == Some(&'?') {
                        out.push('?');
                        i += 1;
                    }
                    continue;
                }
                None => {
                    out.push_str("\\{");
                    operand = true;
                }
            },
            '}' => {
                out.push_str("\\}");
                operand = true;
            }
            '^' | '$' | '.' => {
                out.push(c);
                operand = true;
            }
            other => {
                out.push_str(&literal(other));
                operand = true;
            }
        }
        i += 1;
    }
    if depth > 0 {
        return Err(error("missing closing )", pattern));
    }
    Ok(out)
}

/// `{n}`, `{n,}` or `{n,m}` at i: (text, index after, min, max).
fn repeat_at(chars: &[char], i: usize) -> Option<(String, usize, u32, Option<u32>)> {
    let close = chars[i..].iter().position(|c| *c == '}')? + i;
    let inner: String = chars[i + 1..close].iter().collect();
    let (min, max) = match inner.split_once(',') {
        Some((min, "")) => (min.parse().ok()?, None),
        Some((min, max)) => (min.parse().ok()?, Some(max.parse().ok()?)),
        None => {
            let n: u32 = inner.parse().ok()?;
            (n, Some(n))
        }
    };
    if inner.starts_with(|c: char| !c.is_ascii_digit()) {
        return None;
    }
    let text: String = chars[i..=close].iter().collect();
    Some((text, close + 1, min, max))
}

/// A character as a literal in the regex crate's syntax.
fn literal(c: char) -> String {
    if "\\.+*?()|[]{}^$#&-~".contains(c) {
        format!("\\{c}")
    } else {
        c.to_string()
    }
}

/// A backslash escape at i (outside or inside a class): its translation
/// and the index after it.
fn escape(
    chars: &[char],
    i: usize,
    in_class: bool,
) -> std::result::Result<(String, usize), GoRegexError> {
    let Some(&c) = chars.get(i + 1) else {
        return Err(GoRegexError(
            "error parsing regexp: trailing backslash at end of expression: ``".into(),
        ));
    };
    let class = |positive: &str, negated: bool| match (in_class, negated) {
        (true, false) => positive.to_string(),
        (_, true) => format!("[^{positive}]"),
        (false, false) => format!("[{positive}]"),
    };
    let text = match c {
        'd' => class("0-9", false),
        'D' => class("0-9", true),
        'w' => class(WORD, false),
        'W' => class(WORD, true),
        's' => class(SPACE, false),
        'S' => class(SPACE, true),
        'b' | 'B' if !in_class => format!("(?-u:\\{c})"),
        'A' | 'z' if !in_class => format!("\\{c}"),
        'a' => "\\x07".into(),
        'f' => "\\x0C".into(),
        'v' => "\\x0B".into(),
        't' | 'n' | 'r' => format!("\\{c}"),
        'Q' if !in_class => {
            let rest: String = chars[i + 2..].iter().collect();
            let (quoted, after) = match rest.find("\\E") {
                Some(end) => (&rest[..end], i + 2 + rest[..end].chars().count() + 2),
                None => (rest.as_str(), chars.len()),
            };
            return Ok((quoted.chars().map(literal).collect(), after));
        }
        'p' | 'P' if chars.get(i + 2) == Some(&'{') => {
            return braced(chars, i, "invalid character class range");
        }
        'p' | 'P' => {
            let end = (i + 3).min(chars.len());
            return Ok((chars[i..end].iter().collect(), i + 3));
        }
        'x' if chars.get(i + 2) == Some(&'{') => {
            return braced(chars, i, "invalid escape sequence");
        }
        'x' => {
            let hex: String = chars[i + 2..(i + 4).min(chars.len())].iter().collect();
            if hex.len() != 2 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                let shown: String = chars[i..(i + 2 + hex.chars().count()).min(chars.len())]
                    .iter()
                    .collect();
                return Err(error("invalid escape sequence", &shown));
            }
            return Ok((format!("\\x{hex}"), i + 4));
        }
        '0'..='7' => {
            // Octal: \0 and up to two more digits; \1-\7 only with more.
            let digits: String = chars[i + 1..]
                .iter()
                .take(3)
                .take_while(|c| ('0'..='7').contains(*c))
                .collect();
            if c != '0' && digits.len() == 1 {
                return Err(error("invalid escape sequence", &format!("\\{c}")));
            }
            let value = u32::from_str_radix(&digits, 8).unwrap_or(0);
            return Ok((format!("\\x{{{value:X}}}"), i + 1 + digits.len()));
        }
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => literal(c),
        other => return Err(error("invalid escape sequence", &format!("\\{other}"))),
    };
    Ok((text, i + 2))
}

/// `\p{Name}` or `\x{10FFFF}` at i, copied through its `}`.
fn braced(
    chars: &[char],
    i: usize,
    code: &str,
) -> std::result::Result<(String, usize), GoRegexError> {
    match chars[i + 2..].iter().position(|c| *c == '}') {
        Some(offset) => {
            let close = i + 2 + offset;
            Ok((chars[i..=close].iter().collect(), close + 1))
        }
        None => Err(error(code, &chars[i..].iter().collect::<String>())),
    }
}

/// A bracketed class at i: its translation and the index after it.
fn class(chars: &[char], start: usize) -> std::result::Result<(String, usize), GoRegexError> {
    let mut out = String::from("[");
    let mut i = start + 1;
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let first = i;
    // Whether the previous item was a class escape like \d (no range end).
    let mut after_class_escape = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ']' if i > first => {
                out.push(']');
                return Ok((out, i + 1));
            }
            '[' if chars.get(i + 1) == Some(&':') => {
                let rest: String = chars[i..].iter().collect();
                match rest.find(":]") {
                    Some(end) if end > 1 => {
                        out.push_str(&rest[..end + 2]);
                        i += rest[..end + 2].chars().count();
                    }
                    _ => {
                        out.push_str("\\[");
                        i += 1;
                    }
                }
                after_class_escape = true;
                continue;
            }
            '\\' => {
                let escaped = chars.get(i + 1).copied();
                let (text, next) = escape(chars, i, true)?;
                out.push_str(&text);
                after_class_escape =
                    matches!(escaped, Some('d' | 'D' | 'w' | 'W' | 's' | 'S' | 'p' | 'P'));
                i = next;
                continue;
            }
            '-' => {
                let next_is_class_escape = chars.get(i + 1) == Some(&'\\')
                    && matches!(
                        chars.get(i + 2),
                        Some('d' | 'D' | 'w' | 'W' | 's' | 'S' | 'p' | 'P')
                    );
                if after_class_escape || next_is_class_escape {
                    out.push_str("\\-");
                } else {
                    out.push('-');
                }
            }
            '[' | '&' | '~' | ']' => {
                out.push('\\');
                out.push(c);
            }
            other => out.push(other),
        }
        after_class_escape = false;
        i += 1;
    }
    let shown: String = chars[start..].iter().collect();
    Err(error("missing closing ]", &shown))
}

/// A message for what the regex crate rejected after translation.
fn rust_reason(e: &regex::Error, pattern: &str) -> String {
    let text = e.to_string();
    if text.contains("range") {
        return format!("invalid character class range: `{pattern}`");
    }
    let last = text
        .lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or(&text);
    format!("{}: `{pattern}`", last.trim_start_matches("error: "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        compile(pattern).expect(pattern).is_match(text)
    }

    #[test]
    fn go_syntax_compiles() {
        assert!(matches(r"^[\w-\.]+$", "a-b.c"));
        assert!(matches(r"^[\d-z]+$", "1-z"));
        assert!(!matches(r"^[\d-z]+$", "y"));
        assert!(matches(r"^a{,3}$", "a{,3}"));
        assert!(matches(r"^{foo}$", "{foo}"));
        assert!(matches(r"^\Q1.5*\E$", "1.5*"));
        assert!(!matches(r"^\w+$", "é"));
        assert!(matches(r"^[a&&b]+$", "a&b"));
        assert!(matches(r"^\101$", "A"));
        assert!(matches(r"^a{2}?$", "aa"));
        assert!(matches(r"^[[:alpha:]]+$", "abc"));
        assert!(matches(r"(?i)^ABC$", "abc"));
        assert!(matches(r"^[]a]+$", "]a"));
        assert!(matches(r"^H.*d$", "Hello World"));
    }

    #[test]
    fn go_errors() {
        let err = |p: &str| compile(p).expect_err(p).0;
        assert_eq!(err("[a"), "error parsing regexp: missing closing ]: `[a`");
        assert_eq!(err("a)"), "error parsing regexp: unexpected ): `a)`");
        assert_eq!(err("(a"), "error parsing regexp: missing closing ): `(a`");
        assert_eq!(
            err("*a"),
            "error parsing regexp: missing argument to repetition operator: `*`"
        );
        assert_eq!(
            err("a**"),
            "error parsing regexp: invalid nested repetition operator: `**`"
        );
        assert_eq!(
            err(r"\y"),
            "error parsing regexp: invalid escape sequence: `\\y`"
        );
        assert_eq!(
            err("(?=a)"),
            "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"
        );
        assert_eq!(
            err("a{1001}"),
            "error parsing regexp: invalid repeat count: `{1001}`"
        );
        assert_eq!(quote_meta("a-b.c"), "a-b\\.c");
    }
}
