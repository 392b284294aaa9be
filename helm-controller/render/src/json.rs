//! Go's encoding/json output for template values (toJson, toPrettyJson,
//! toRawJson): sorted keys, HTML-safe escaping unless raw, float64 in 'f'
//! form except below 1e-6 or from 1e21 up.

use k3r_gotemplate::Value;
use k3r_gotemplate::format_float_g;

pub struct JsonStyle {
    /// Escape <, > and & as \u003c, \u003e, \u0026 (json.Marshal does).
    pub escape_html: bool,
    /// MarshalIndent's indent ("" for compact).
    pub indent: &'static str,
}

pub const COMPACT: JsonStyle = JsonStyle {
    escape_html: true,
    indent: "",
};
pub const PRETTY: JsonStyle = JsonStyle {
    escape_html: true,
    indent: "  ",
};
pub const RAW: JsonStyle = JsonStyle {
    escape_html: false,
    indent: "",
};

pub fn to_json(value: &Value, style: &JsonStyle) -> Result<String, String> {
    let mut out = String::new();
    write(value, style, 0, &mut out)?;
    Ok(out)
}

fn newline(style: &JsonStyle, depth: usize, out: &mut String) {
    if !style.indent.is_empty() {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(style.indent);
        }
    }
}

fn write(value: &Value, style: &JsonStyle, depth: usize, out: &mut String) -> Result<(), String> {
    match value {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&float(*f)?),
        Value::String(s) => string(s, style.escape_html, out),
        Value::Bytes(b) => string(&base64(b), style.escape_html, out),
        Value::List(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(style, depth + 1, out);
                write(item, style, depth + 1, out)?;
            }
            newline(style, depth, out);
            out.push(']');
        }
        Value::Map(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, (k, v)) in map.entries().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(style, depth + 1, out);
                string(k, style.escape_html, out);
                out.push(':');
                if !style.indent.is_empty() {
                    out.push(' ');
                }
                write(v, style, depth + 1, out)?;
            }
            newline(style, depth, out);
            out.push('}');
        }
        Value::Object(o) => write(&o.to_data(), style, depth, out)?,
    }
    Ok(())
}

/// encoding/json's float64: shortest digits, 'f' form unless |f| < 1e-6 or
/// >= 1e21, exponents without a leading zero (1e-7, 1e+21).
pub fn float(f: f64) -> Result<String, String> {
    if f.is_nan() || f.is_infinite() {
        return Err(format!("json: unsupported value: {}", format_float_g(f)));
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format_float_g(f);
        // format_float_g already uses the exponent form here; Go's json
        // writes e-07 as e-7.
        return Ok(match text.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = e.split_at(1);
                format!("{m}e{sign}{}", digits.trim_start_matches('0'))
            }
            None => text,
        });
    }
    Ok(plain(f))
}

/// Shortest round-trip digits in positional notation.
fn plain(f: f64) -> String {
    let text = format!("{f}");
    // Rust prints integral floats without a fraction ("1e21" never happens
    // below 1e21 here), which is also Go's 'f' with precision -1.
    text
}

fn string(s: &str, escape_html: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if escape_html => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_encoding_json() {
        for (f, go) in [
            (1.0, "1"),
            (1000000.0, "1000000"),
            (0.5, "0.5"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (0.0000001, "1e-7"),
            (0.000001, "0.000001"),
            (-2.5, "-2.5"),
        ] {
            assert_eq!(float(f).expect("finite"), go, "{f}");
        }
        assert!(float(f64::INFINITY).is_err());
    }

    #[test]
    fn strings_escape_html_unless_raw() {
        let v = Value::str("<a&b>\"\n");
        assert_eq!(
            to_json(&v, &COMPACT).expect("json"),
            r#""\u003ca\u0026b\u003e\"\n""#
        );
        assert_eq!(to_json(&v, &RAW).expect("json"), r#""<a&b>\"\n""#);
        assert_eq!(base64(b"hello"), "aGVsbG8=");
    }
}
