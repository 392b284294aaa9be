//! sprig's date functions on Go-style times (UTC; k3r runs in UTC like
//! Helm in a container): now, date, dateInZone, htmlDate, htmlDateInZone,
//! toDate, mustToDate, unixEpoch, dateModify, ago, duration. Layouts use
//! Go's reference time (Mon Jan 2 15:04:05 MST 2006).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use k3r_gotemplate::{FuncError, Object, Template, Value};

use super::args::{arity, string, to_int64};
use k3r_gotemplate::fmt::go_quote;

/// A point in time: seconds and nanoseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Time {
    pub secs: i64,
    pub nanos: u32,
}

/// Days since 1970-01-01 -> (year, month 1-12, day 1-31).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) -> days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];

impl Time {
    pub fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Time {
            secs: i64::try_from(d.as_secs()).unwrap_or(0),
            nanos: d.subsec_nanos(),
        }
    }

    /// Go's Time.Format with `layout`.
    pub fn format(&self, layout: &str) -> String {
        let days = self.secs.div_euclid(86_400);
        let secs_of_day = self.secs.rem_euclid(86_400);
        let (year, month, day) = civil(days);
        let (hour, minute, second) = (secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60);
        let weekday = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
        let month_name = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
        let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };
        let tokens: &[(&str, String)] = &[
            ("January", month_name.to_string()),
            ("Monday", weekday.to_string()),
            ("2006", format!("{year:04}")),
            ("Jan", month_name[..3].to_string()),
            ("Mon", weekday[..3].to_string()),
            ("MST", "UTC".into()),
            ("Z07:00", "Z".into()),
            ("Z0700", "Z".into()),
            ("-07:00", "+00:00".into()),
            ("-0700", "+0000".into()),
            ("-07", "+00".into()),
            ("01", format!("{month:02}")),
            ("02", format!("{day:02}")),
            ("_2", format!("{day:>2}")),
            ("06", format!("{:02}", year.rem_euclid(100))),
            ("15", format!("{hour:02}")),
            ("03", format!("{hour12:02}")),
            ("04", format!("{minute:02}")),
            ("05", format!("{second:02}")),
            ("PM", if hour >= 12 { "PM" } else { "AM" }.into()),
            ("pm", if hour >= 12 { "pm" } else { "am" }.into()),
            ("1", month.to_string()),
            ("2", day.to_string()),
            ("3", hour12.to_string()),
            ("4", minute.to_string()),
            ("5", second.to_string()),
        ];
        let mut out = String::new();
        let mut rest = layout;
        'outer: while !rest.is_empty() {
            // Fractional seconds: .000 (fixed) or .999 (trailing zeros cut).
            for marker in ['0', '9'] {
                let prefix = format!(".{marker}");
                if rest.starts_with(&prefix) {
                    let digits = rest[1..].chars().take_while(|c| *c == marker).count();
                    let frac = format!("{:09}", self.nanos);
                    let mut text = frac[..digits.min(9)].to_string();
                    if marker == '9' {
                        text = text.trim_end_matches('0').to_string();
                    }
                    if !text.is_empty() {
                        out.push('.');
                        out.push_str(&text);
                    }
                    rest = &rest[1 + digits..];
                    continue 'outer;
                }
            }
            for (token, value) in tokens {
                if rest.starts_with(token) {
                    out.push_str(value);
                    rest = &rest[token.len()..];
                    continue 'outer;
                }
            }
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }

    /// time.Parse for the layouts charts use with toDate (numeric fields).
    pub fn parse(layout: &str, text: &str) -> Result<Time, String> {
        let fail = || format!("parsing time {text:?} as {layout:?}: cannot parse");
        let (mut year, mut month, mut day, mut hour, mut minute, mut second) =
            (1i64, 1u32, 1u32, 0i64, 0i64, 0i64);
        let (mut l, mut t) = (layout, text);
        let number = |t: &mut &str, width: usize| -> Result<i64, String> {
            let digits: String = t
                .chars()
                .take(width)
                .take_while(char::is_ascii_digit)
                .collect();
            if digits.is_empty() {
                return Err(fail());
            }
            *t = &t[digits.len()..];
            digits.parse().map_err(|_| fail())
        };
        while !l.is_empty() {
            if let Some(r) = l.strip_prefix("2006") {
                year = number(&mut t, 4)?;
                l = r;
            } else if let Some(r) = l.strip_prefix("01") {
                month = u32::try_from(number(&mut t, 2)?).map_err(|_| fail())?;
                l = r;
            } else if let Some(r) = l.strip_prefix("02") {
                day = u32::try_from(number(&mut t, 2)?).map_err(|_| fail())?;
                l = r;
            } else if let Some(r) = l.strip_prefix("15") {
                hour = number(&mut t, 2)?;
                l = r;
            } else if let Some(r) = l.strip_prefix("04") {
                minute = number(&mut t, 2)?;
                l = r;
            } else if let Some(r) = l.strip_prefix("05") {
                second = number(&mut t, 2)?;
                l = r;
            } else {
                let c = l.chars().next().unwrap_or(' ');
                if !t.starts_with(c) {
                    return Err(fail());
                }
                l = &l[c.len_utf8()..];
                t = &t[c.len_utf8()..];
            }
        }
        if !t.is_empty() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return Err(fail());
        }
        Ok(Time {
            secs: days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second,
            nanos: 0,
        })
    }
}

impl Object for Time {
    fn type_name(&self) -> &str {
        "time.Time"
    }

    fn field(&self, _name: &str) -> Option<Value> {
        None
    }

    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        Some(match (name, args) {
            ("Unix", []) => Ok(Value::Int(self.secs)),
            ("Year", []) => Ok(Value::Int(civil(self.secs.div_euclid(86_400)).0)),
            ("Format", [Value::String(layout)]) => Ok(Value::from(self.format(layout))),
            ("UTC", []) | ("Local", []) => Ok(Value::Object(Arc::new(*self))),
            _ => return None,
        })
    }

    fn format(&self) -> String {
        self.format("2006-01-02 15:04:05.999999999 -0700 MST")
    }

    fn to_data(&self) -> Value {
        Value::from(self.format("2006-01-02T15:04:05.999999999Z07:00"))
    }
}

/// A date argument: a time, or Unix seconds as a number (sprig accepts both).
fn time_of(value: &Value) -> Time {
    match value {
        Value::Object(o) if o.type_name() == "time.Time" => {
            let secs = o.method("Unix", &[]).and_then(Result::ok);
            Time {
                secs: secs.as_ref().map_or(0, super::args::to_int64),
                nanos: 0,
            }
        }
        Value::Int(_) | Value::Float(_) => Time {
            secs: to_int64(value),
            nanos: 0,
        },
        _ => Time::now(),
    }
}

fn time_value(t: Time) -> Value {
    Value::Object(Arc::new(t))
}

const NANOS_PER_SEC: i64 = 1_000_000_000;

impl Time {
    fn add_nanos(self, nanos: i64) -> Time {
        let total =
            i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos) + i128::from(nanos);
        Time {
            secs: i64::try_from(total.div_euclid(1_000_000_000)).unwrap_or(i64::MAX),
            nanos: u32::try_from(total.rem_euclid(1_000_000_000)).unwrap_or(0),
        }
    }
}

/// An argument Go requires to be a time.Time.
fn time_arg(value: &Value) -> Result<Time, FuncError> {
    match value {
        Value::Object(o) if o.type_name() == "time.Time" => Ok(time_of(value)),
        other => Err(FuncError::Call(format!(
            "wrong type for value; expected time.Time; got {}",
            other.type_name()
        ))),
    }
}

/// time.ParseDuration: "1h30m", "-1.5s", "300ms", "2h45m0.5s"; nanoseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(text));
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (whole, fraction) = rest[..digits]
            .split_once('.')
            .unwrap_or((&rest[..digits], ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(invalid());
        }
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: u64 = match unit {
            "" => return Err(format!("time: missing unit in duration {}", go_quote(text))),
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            other => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(other),
                    go_quote(text)
                ));
            }
        };
        // The whole part exactly, the fraction through a float, as Go.
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let mut part = whole.checked_mul(scale).ok_or_else(invalid)?;
        if !fraction.is_empty() {
            let digits = fraction.len().min(18);
            let f: u64 = fraction[..digits].parse().map_err(|_| invalid())?;
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let extra = (f as f64
                * (scale as f64 / 10f64.powi(i32::try_from(digits).unwrap_or(18))))
                as u64;
            part = part.checked_add(extra).ok_or_else(invalid)?;
        }
        total = total.checked_add(part).ok_or_else(invalid)?;
    }
    let nanos = i64::try_from(total).map_err(|_| invalid())?;
    Ok(if negative { -nanos } else { nanos })
}

/// sprig's durationRound: the largest whole unit (y, mo, d, h, m, s).
fn duration_round(nanos: i64) -> String {
    let u = nanos.unsigned_abs();
    let hour = 3_600_000_000_000u64;
    for (size, unit) in [
        (hour * 24 * 365, "y"),
        (hour * 24 * 30, "mo"),
        (hour * 24, "d"),
        (hour, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
    ] {
        if u > size {
            return format!("{}{unit}", u / size);
        }
    }
    "0s".into()
}

/// Go's Duration.String: 1h2m3s, 4m5s, 6s, 0s.
fn duration_string(secs: i64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{sign}{m}m{sec}s")
    } else {
        format!("{sign}{sec}s")
    }
}

pub fn register(t: &mut Template) {
    t.func("now", |_, a| {
        arity("now", a, 0)?;
        Ok(time_value(Time::now()))
    });
    t.func("date", |_, a| {
        arity("date", a, 2)?;
        Ok(Value::from(time_of(&a[1]).format(&string(a, 0)?)))
    });
    for name in ["dateInZone", "date_in_zone"] {
        t.func(name, move |_, a| {
            arity(name, a, 3)?;
            Ok(Value::from(time_of(&a[1]).format(&string(a, 0)?)))
        });
    }
    // dateModify keeps the date when the duration does not parse; the
    // must forms fail with Go's message.
    for (name, must) in [
        ("dateModify", false),
        ("date_modify", false),
        ("mustDateModify", true),
        ("must_date_modify", true),
    ] {
        t.func(name, move |_, a| {
            arity(name, a, 2)?;
            let date = time_arg(&a[1])?;
            match parse_duration(&string(a, 0)?) {
                Ok(nanos) => Ok(time_value(date.add_nanos(nanos))),
                Err(e) if must => Err(FuncError::Call(e)),
                Err(_) => Ok(time_value(date)),
            }
        });
    }
    t.func("durationRound", |_, a| {
        arity("durationRound", a, 1)?;
        let nanos = match &a[0] {
            Value::String(s) => parse_duration(s).unwrap_or(0),
            Value::Int(i) => *i,
            Value::Object(o) if o.type_name() == "time.Time" => {
                (Time::now().secs - time_of(&a[0]).secs).saturating_mul(NANOS_PER_SEC)
            }
            _ => 0,
        };
        Ok(Value::from(duration_round(nanos)))
    });
    t.func("htmlDate", |_, a| {
        arity("htmlDate", a, 1)?;
        Ok(Value::from(time_of(&a[0]).format("2006-01-02")))
    });
    t.func("htmlDateInZone", |_, a| {
        arity("htmlDateInZone", a, 2)?;
        Ok(Value::from(time_of(&a[0]).format("2006-01-02")))
    });
    t.func("unixEpoch", |_, a| {
        arity("unixEpoch", a, 1)?;
        Ok(Value::from(time_of(&a[0]).secs.to_string()))
    });
    t.func("toDate", |_, a| {
        arity("toDate", a, 2)?;
        // sprig swallows the error into the zero time.
        Ok(time_value(
            Time::parse(&string(a, 0)?, &string(a, 1)?).unwrap_or(Time {
                secs: -62_135_596_800,
                nanos: 0,
            }),
        ))
    });
    t.func("mustToDate", |_, a| {
        arity("mustToDate", a, 2)?;
        Time::parse(&string(a, 0)?, &string(a, 1)?)
            .map(time_value)
            .map_err(FuncError::Call)
    });
    t.func("ago", |_, a| {
        arity("ago", a, 1)?;
        Ok(Value::from(duration_string(
            Time::now().secs - time_of(&a[0]).secs,
        )))
    });
    t.func("duration", |_, a| {
        arity("duration", a, 1)?;
        Ok(Value::from(duration_string(to_int64(&a[0]))))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        for days in [-719_468, -1, 0, 1, 19_000, 20_000, 2_932_896] {
            let (y, m, d) = civil(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_849), (2024, 5, 6));
    }

    #[test]
    fn formats_like_go() {
        let t = Time::parse("2006-01-02 15:04:05", "2024-05-06 07:08:09").expect("parse");
        assert_eq!(
            t.format("2006-01-02T15:04:05Z07:00"),
            "2024-05-06T07:08:09Z"
        );
        assert_eq!(
            t.format("Jan 2, 2006 at 3:04pm (MST) Monday"),
            "May 6, 2024 at 7:08am (UTC) Monday"
        );
        assert_eq!(t.format("02/01/06 15h"), "06/05/24 07h");
        assert!(Time::parse("2006-01-02", "2024-13-01").is_err());
        assert_eq!(duration_string(3723), "1h2m3s");
        assert_eq!(duration_string(65), "1m5s");
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("-1.5s"), Ok(-1_500_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(
            parse_duration("1d"),
            Err("time: unknown unit \"d\" in duration \"1d\"".into())
        );
        assert_eq!(
            parse_duration("1"),
            Err("time: missing unit in duration \"1\"".into())
        );
        assert_eq!(duration_round(3 * 86_400_000_000_000 + 1), "3d");
        assert_eq!(duration_round(-90_000_000_000), "1m");
    }
}
