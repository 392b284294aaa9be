//! Go's number constants as text/template reads them.

#[derive(Debug, PartialEq)]
pub enum GoNumber {
    Int(i64),
    Float(f64),
    Imaginary(f64),
}

/// Go's underscoreOK: underscores only between digits (or after a base
/// prefix), never leading, trailing or doubled.
fn underscores_ok(text: &str) -> bool {
    let body = text.trim_start_matches(['+', '-']);
    let lower = body.to_ascii_lowercase();
    let digits = ["0x", "0o", "0b"]
        .iter()
        .find_map(|p| lower.strip_prefix(p))
        .map_or(lower.as_str(), |rest| rest.trim_start_matches('_'));
    !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && !digits.contains("_.")
        && !digits.contains("._")
        && !digits.contains("_e")
        && !digits.contains("_p")
        && !digits.contains("e_")
        && !digits.contains("p_")
}

pub fn go_number(text: &str) -> Option<GoNumber> {
    if text.contains('_') && !underscores_ok(text) {
        return None;
    }
    if let Some(imaginary) = text.strip_suffix('i') {
        // Decimal digits alone read as decimal even with a leading 0.
        let unsigned = imaginary.trim_start_matches(['+', '-']);
        let value =
            if !unsigned.is_empty() && unsigned.chars().all(|c| c.is_ascii_digit() || c == '_') {
                unsigned.replace('_', "").parse::<f64>().ok()?
            } else {
                match go_number(unsigned)? {
                    GoNumber::Int(v) => v as f64,
                    GoNumber::Float(v) => v,
                    GoNumber::Imaginary(_) => return None,
                }
            };
        return Some(GoNumber::Imaginary(if imaginary.starts_with('-') {
            -value
        } else {
            value
        }));
    }
    let clean = text.replace('_', "");
    let (negative, digits) = match clean.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean).to_string()),
    };
    let lower = digits.to_ascii_lowercase();
    let sign = |v: f64| if negative { -v } else { v };
    if let Some(hex) = lower.strip_prefix("0x") {
        if hex.contains('p') || hex.contains('.') {
            return hex_float(hex).map(|v| GoNumber::Float(sign(v)));
        }
        let value = i64::from_str_radix(hex, 16).ok()?;
        return Some(GoNumber::Int(if negative { -value } else { value }));
    }
    if lower.contains('.')
        || (lower.contains('e') && !lower.starts_with("0b") && !lower.starts_with("0o"))
    {
        if !lower
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
        {
            return None;
        }
        return lower.parse::<f64>().ok().map(|v| GoNumber::Float(sign(v)));
    }
    let parsed = if let Some(oct) = lower.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()
    } else if let Some(bin) = lower.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<i64>().ok()
    };
    parsed.map(|value| GoNumber::Int(if negative { -value } else { value }))
}

/// A hexadecimal float's digits after "0x": mantissa (with an optional
/// point) and the binary exponent Go requires ("p±N").
fn hex_float(text: &str) -> Option<f64> {
    let (mantissa, exponent) = text.split_once('p')?;
    let exponent: i32 = exponent.parse().ok()?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for c in whole.chars().chain(fraction.chars()) {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let scale = exponent - 4 * i32::try_from(fraction.len()).ok()?;
    Some(value * 2f64.powi(scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_number_literals() {
        assert_eq!(
            go_number("0x1p60"),
            Some(GoNumber::Float(1_152_921_504_606_846_976.0))
        );
        assert_eq!(go_number("0x1.8p1"), Some(GoNumber::Float(3.0)));
        assert_eq!(go_number("-0x.8p0"), Some(GoNumber::Float(-0.5)));
        assert_eq!(go_number("0x1.8"), None);
        assert_eq!(go_number("1_000"), Some(GoNumber::Int(1000)));
        assert_eq!(go_number("0x_ff"), Some(GoNumber::Int(255)));
        assert_eq!(go_number("0b1010"), Some(GoNumber::Int(10)));
        assert_eq!(go_number("0o17"), Some(GoNumber::Int(15)));
        assert_eq!(go_number("017"), Some(GoNumber::Int(15)));
        assert_eq!(go_number("1__0"), None);
        assert_eq!(go_number("1_"), None);
        assert_eq!(go_number("1.5e3"), Some(GoNumber::Float(1500.0)));
        assert_eq!(go_number("1i"), Some(GoNumber::Imaginary(1.0)));
        assert_eq!(go_number("2.5i"), Some(GoNumber::Imaginary(2.5)));
        assert_eq!(go_number("017i"), Some(GoNumber::Imaginary(17.0)));
        assert_eq!(go_number("09"), None);
    }
}
