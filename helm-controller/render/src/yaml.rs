//! toYaml as Helm produces it: sigs.k8s.io/yaml, i.e. JSON first (so
//! integral floats become ints and bytes base64) and then go-yaml v2's
//! emitter: its key order, scalar styles (plain, '...', "...", |), folding
//! of long lines at 80 columns, and block layout with lists not indented
//! under their key.

use k3r_gotemplate::{Value, format_float_g};

use crate::json::base64;
use crate::values::resolve_plain;

const BEST_WIDTH: usize = 80;
const BEST_INDENT: usize = 2;

/// The YAML text, with go-yaml's final newline.
pub fn to_yaml(value: &Value) -> Result<String, String> {
    let value = json_round_trip(value)?;
    Ok(Emitter::new(false).document(&value))
}

/// Helm's toYamlPretty: go-yaml v3's encoder with an indent of 2, on the
/// values themselves (no JSON step, so floats print as Go's %g): lists
/// indented under their key and long lines not folded.
pub fn to_yaml_pretty(value: &Value) -> String {
    Emitter::new(true).document(&pretty_data(value))
}

fn pretty_data(value: &Value) -> Value {
    match value {
        Value::List(items) => Value::from(items.iter().map(pretty_data).collect::<Vec<_>>()),
        Value::Map(map) => Value::from(
            map.entries()
                .into_iter()
                .map(|(k, v)| (k, pretty_data(&v)))
                .collect::<std::collections::BTreeMap<_, _>>(),
        ),
        Value::Object(o) => pretty_data(&o.to_data()),
        other => other.clone(),
    }
}

/// What JSON leaves of a value: ints for integral floats below 1e21.
fn json_round_trip(value: &Value) -> Result<Value, String> {
    Ok(match value {
        Value::Float(f) => {
            // Infinities and NaN fail in JSON, as in Helm.
            crate::json::float(*f)?;
            Value::Float(*f)
        }
        Value::Bytes(b) => Value::str(&base64(b)),
        Value::List(items) => Value::from(
            items
                .iter()
                .map(json_round_trip)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Value::Map(map) => Value::from(
            map.entries()
                .iter()
                .map(|(k, v)| Ok((k.clone(), json_round_trip(v)?)))
                .collect::<Result<std::collections::BTreeMap<_, _>, String>>()?,
        ),
        Value::Object(o) => json_round_trip(&o.to_data())?,
        other => other.clone(),
    })
}

/// JSON wrote integral floats as digits, which go-yaml reads back as ints;
/// other floats it prints with 'g' (so 1e-7 becomes 1e-07).
fn number_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f}")
    } else {
        format_float_g(f)
    }
}

/// go-yaml v3's float: strconv 'g' with YAML's names for the specials.
fn v3_float(f: f64) -> String {
    if f.is_nan() {
        ".nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { ".inf" } else { "-.inf" }.into()
    } else {
        format_float_g(f)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Context {
    Document,
    MapValue,
    SeqItem,
}

struct Emitter {
    out: String,
    /// go-yaml v3 (toYamlPretty) rather than v2 (toYaml).
    v3: bool,
    width: usize,
}

impl Emitter {
    fn new(v3: bool) -> Self {
        Emitter {
            out: String::new(),
            v3,
            width: if v3 { usize::MAX } else { BEST_WIDTH },
        }
    }

    fn document(mut self, value: &Value) -> String {
        self.node(value, 0, Context::Document);
        if !self.out.ends_with('\n') {
            self.out.push('\n');
        }
        self.out
    }

    fn column(&self) -> usize {
        self.out.len() - self.out.rfind('\n').map_or(0, |i| i + 1)
    }

    fn newline_indent(&mut self, indent: usize) {
        self.out.push('\n');
        self.out.push_str(&" ".repeat(indent));
    }

    /// A node at block indent `indent` (the indent of the collection that
    /// holds it), after "key:" or "- " or at the document start.
    fn node(&mut self, value: &Value, indent: usize, context: Context) {
        match value {
            Value::Map(map) if !map.is_empty() => {
                let child = match context {
                    Context::Document => 0,
                    Context::MapValue => indent + BEST_INDENT,
                    Context::SeqItem => indent + BEST_INDENT,
                };
                let mut entries = map.entries();
                entries.sort_by(|a, b| go_yaml_key_order(&a.0, &b.0));
                for (i, (key, value)) in entries.iter().enumerate() {
                    // The first key of a document or of a list item ("- k: v")
                    // goes where we are; the others on their own lines.
                    if context == Context::MapValue || i > 0 {
                        self.newline_indent(child);
                    }
                    self.key(key);
                    self.out.push(':');
                    self.value_after_key(value, child);
                }
            }
            Value::List(items) if !items.is_empty() => {
                // v2 does not indent lists under their key; v3 does.
                let child = match context {
                    Context::Document => 0,
                    Context::MapValue if self.v3 => indent + BEST_INDENT,
                    Context::MapValue => indent,
                    Context::SeqItem => indent + BEST_INDENT,
                };
                for (i, item) in items.iter().enumerate() {
                    if context == Context::MapValue || i > 0 {
                        self.newline_indent(child);
                    }
                    self.out.push_str("- ");
                    self.node(item, child, Context::SeqItem);
                }
            }
            scalar => {
                let scalar_indent = match context {
                    Context::Document => BEST_INDENT,
                    _ => indent + BEST_INDENT,
                };
                if context == Context::MapValue {
                    self.out.push(' ');
                }
                self.scalar(scalar, scalar_indent, false);
            }
        }
    }

    fn value_after_key(&mut self, value: &Value, indent: usize) {
        self.node(value, indent, Context::MapValue);
    }

    fn key(&mut self, key: &str) {
        self.string(key, 0, true);
    }

    fn scalar(&mut self, value: &Value, indent: usize, simple_key: bool) {
        match value {
            Value::Nil => self.out.push_str("null"),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => self.out.push_str(&i.to_string()),
            Value::Float(f) if self.v3 => self.out.push_str(&v3_float(*f)),
            Value::Float(f) => self.out.push_str(&number_text(*f)),
            Value::String(s) => self.string(s, indent, simple_key),
            Value::Map(_) => self.out.push_str("{}"),
            Value::List(_) => self.out.push_str("[]"),
            Value::Bytes(_) | Value::Object(_) => {}
        }
    }

    fn string(&mut self, s: &str, indent: usize, simple_key: bool) {
        let analysis = analyze(s);
        let can_use_plain = resolves_to_string(s) && !is_base60_float(s);
        let mut style = if s.contains('\n') {
            Style::Literal
        } else if can_use_plain {
            Style::Plain
        } else {
            Style::Double
        };
        if style == Style::Plain && (!analysis.block_plain_allowed || (s.is_empty() && simple_key))
        {
            style = Style::Single;
        }
        if style == Style::Single && !analysis.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!analysis.block_allowed || simple_key) {
            style = Style::Double;
        }
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.plain_or_single(s, indent, allow_breaks, false),
            Style::Single => self.plain_or_single(s, indent, allow_breaks, true),
            Style::Double => self.double(s, indent, allow_breaks),
            Style::Literal => self.literal(s, indent),
        }
    }

    /// Plain and single-quoted scalars: past the width a space becomes a
    /// line break (never the first or last character of a quoted one).
    fn plain_or_single(&mut self, s: &str, indent: usize, allow_breaks: bool, quoted: bool) {
        let chars: Vec<char> = s.chars().collect();
        if quoted {
            self.out.push('\'');
        }
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let inner = !quoted || (i > 0 && i + 1 < chars.len());
                if allow_breaks
                    && !spaces
                    && inner
                    && self.column() > self.width
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.newline_indent(indent);
                } else {
                    self.out.push(c);
                }
                spaces = true;
            } else {
                if quoted && c == '\'' {
                    self.out.push('\'');
                }
                self.out.push(c);
                spaces = false;
            }
        }
        if quoted {
            self.out.push('\'');
        }
    }

    fn double(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.out.push('"');
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                let escaped = match c {
                    '\0' => "\\0".to_string(),
                    '\u{7}' => "\\a".into(),
                    '\u{8}' => "\\b".into(),
                    '\t' => "\\t".into(),
                    '\n' => "\\n".into(),
                    '\u{b}' => "\\v".into(),
                    '\u{c}' => "\\f".into(),
                    '\r' => "\\r".into(),
                    '\u{1b}' => "\\e".into(),
                    '"' => "\\\"".into(),
                    '\\' => "\\\\".into(),
                    '\u{85}' => "\\N".into(),
                    '\u{a0}' => "\\_".into(),
                    '\u{2028}' => "\\L".into(),
                    '\u{2029}' => "\\P".into(),
                    c if (c as u32) <= 0xff => format!("\\x{:02X}", c as u32),
                    c if (c as u32) <= 0xffff => format!("\\u{:04X}", c as u32),
                    c => format!("\\U{:08X}", c as u32),
                };
                self.out.push_str(&escaped);
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column() > self.width
                    && i > 0
                    && i + 1 < chars.len()
                {
                    self.newline_indent(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.out.push('\\');
                    }
                } else {
                    self.out.push(c);
                }
                spaces = true;
            } else {
                self.out.push(c);
                spaces = false;
            }
        }
        self.out.push('"');
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.out.push('|');
        if s.starts_with(' ') || s.starts_with('\n') {
            self.out.push_str(&BEST_INDENT.to_string());
        }
        // Chomping: "-" without a final newline, "+" with more than one.
        if !s.ends_with('\n') {
            self.out.push('-');
        } else if s.len() == 1 || s[..s.len() - 1].ends_with('\n') {
            self.out.push('+');
        }
        self.out.push('\n');
        let mut at_line_start = true;
        for c in s.chars() {
            if c == '\n' {
                self.out.push('\n');
                at_line_start = true;
            } else {
                if at_line_start {
                    self.out.push_str(&" ".repeat(indent));
                    at_line_start = false;
                }
                self.out.push(c);
            }
        }
        // The final line break of the value ends the scalar; without one
        // the next node starts on a new line anyway.
        if self.out.ends_with('\n') {
            self.out.pop();
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

struct Analysis {
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// go-yaml's is_printable (with unicode output on): no tabs, no control
/// characters, nothing outside the BMP.
fn printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0a
        || (0x20..=0x7e).contains(&u)
        || (0xa0..=0xd7ff).contains(&u)
        || ((0xe000..=0xfffd).contains(&u) && u != 0xfeff)
}

/// go-yaml's yaml_emitter_analyze_scalar, for block context.
fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let mut special = false;
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut line_breaks) = (false, false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let mut followed_by_whitespace = chars
        .get(1)
        .is_none_or(|c| *c == ' ' || *c == '\t' || is_break(*c));
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 {
            // The end of the value counts as whitespace (go-yaml's blankz).
            followed_by_whitespace = chars
                .get(i + 1)
                .is_none_or(|c| *c == ' ' || *c == '\t' || is_break(*c));
        }
        // Indicators that forbid a plain scalar in block context.
        let indicator = if i == 0 {
            matches!(
                c,
                '#' | ','
                    | '['
                    | ']'
                    | '{'
                    | '}'
                    | '&'
                    | '*'
                    | '!'
                    | '|'
                    | '>'
                    | '\''
                    | '"'
                    | '%'
                    | '@'
                    | '`'
            ) || (matches!(c, '?' | ':' | '-') && followed_by_whitespace)
        } else {
            (c == ':' && followed_by_whitespace) || (c == '#' && preceded_by_whitespace)
        };
        block_indicators |= indicator;
        if !printable(c) {
            special = true;
        }
        let last = i + 1 == chars.len();
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if last {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if last {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = c == ' ' || c == '\t' || is_break(c);
    }
    let mut analysis = Analysis {
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        analysis.block_plain_allowed = false;
    }
    if trailing_space {
        analysis.block_allowed = false;
    }
    if break_space {
        analysis.block_plain_allowed = false;
        analysis.single_quoted_allowed = false;
    }
    if space_break || special {
        analysis.block_plain_allowed = false;
        analysis.single_quoted_allowed = false;
        analysis.block_allowed = false;
    }
    if line_breaks || block_indicators {
        analysis.block_plain_allowed = false;
    }
    analysis
}

/// Would go-yaml v2 read this plain text back as a string?
fn resolves_to_string(s: &str) -> bool {
    // The reader's own resolution (values.rs), plus what it keeps as a
    // string only because JSON cannot hold it: timestamps and merge keys.
    s != "<<" && !is_timestamp(s) && matches!(resolve_plain(s), Ok(Value::String(_)))
}

/// go-yaml v2 timestamps: 2006-1-2, with an optional time part.
fn is_timestamp(s: &str) -> bool {
    let date_end = s.find(['T', 't', ' ']).unwrap_or(s.len());
    let date: Vec<&str> = s[..date_end].split('-').collect();
    let date_ok = date.len() == 3
        && date[0].len() == 4
        && date
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
        && date[1].len() <= 2
        && date[2].len() <= 2;
    if !date_ok {
        return false;
    }
    if date_end == s.len() {
        return true;
    }
    // A time part must look like hh:mm:ss (go-yaml tries a few layouts).
    let time = s[date_end + 1..].trim_start();
    let hms: Vec<&str> = time.split(':').collect();
    hms.len() >= 3
        && hms[..2]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (main, frac) = match s.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    let mut parts = main.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    let head_ok = head.starts_with(|c: char| c.is_ascii_digit())
        && head.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let rest: Vec<&str> = parts.collect();
    let rest_ok = !rest.is_empty()
        && rest.iter().all(|p| {
            let b = p.as_bytes();
            match b.len() {
                1 => b[0].is_ascii_digit(),
                2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
                _ => false,
            }
        });
    head_ok && rest_ok && frac.is_none_or(|f| f.bytes().all(|b| b.is_ascii_digit() || b == b'_'))
}

/// go-yaml v2's map key order: letters after non-letters, runs of digits
/// compared as numbers.
pub fn go_yaml_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}
