//! A Plan's `spec.window`, read as SUC reads it (kured's timewindow): the
//! days (`0`–`6`, `su`/`sun`/`sunday`… in any case), a start and an end
//! time of day in one of the layouts `15:04`, `15:04:06` (whose last part
//! Go reads as a two-digit year, so it only shifts nothing), `03:04pm`,
//! `15`, `03pm`, and an IANA time zone (empty: UTC). The window contains
//! an instant strictly between the start and the end of an allowed day in
//! that zone; a window does not wrap past midnight, so one whose end is
//! not after its start, or with no days, never opens.

use std::time::Duration;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};
use k3r_crds::plan::TimeWindowSpec;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    #[error("Invalid weekday: {0}")]
    Day(String),
    #[error("Invalid weekday, number out of range: {0}")]
    DayNumber(String),
    #[error("unknown time zone {0}")]
    TimeZone(String),
    #[error("Invalid time format: {0}")]
    Time(String),
    #[error("the window never opens: {0}")]
    NeverOpens(String),
}

#[derive(Clone, Debug)]
pub struct Window {
    days: Vec<Weekday>,
    zone: TimeZone,
    start: Time,
    end: Time,
}

fn weekday(day: &str) -> Result<Weekday, WindowError> {
    if let Ok(n) = day.parse::<i64>() {
        return match n {
            0 => Ok(Weekday::Sunday),
            1..=6 => Weekday::from_monday_one_offset(n as i8)
                .map_err(|_| WindowError::DayNumber(day.into())),
            _ => Err(WindowError::DayNumber(day.into())),
        };
    }
    let day_lower = day.to_lowercase();
    let names = [
        (Weekday::Sunday, ["su", "sun", "sunday"]),
        (Weekday::Monday, ["mo", "mon", "monday"]),
        (Weekday::Tuesday, ["tu", "tue", "tuesday"]),
        (Weekday::Wednesday, ["we", "wed", "wednesday"]),
        (Weekday::Thursday, ["th", "thu", "thursday"]),
        (Weekday::Friday, ["fr", "fri", "friday"]),
        (Weekday::Saturday, ["sa", "sat", "saturday"]),
    ];
    names
        .iter()
        .find(|(_, spellings)| spellings.contains(&day_lower.as_str()))
        .map(|(weekday, _)| *weekday)
        .ok_or_else(|| WindowError::Day(day.into()))
}

/// Go's number parsing for an hour or minute: exactly two digits when
/// `fixed`, else one or two.
fn number(text: &str, fixed: bool) -> Option<(i8, &str)> {
    let digits = text.bytes().take(2).take_while(u8::is_ascii_digit).count();
    if digits == 0 || (fixed && digits < 2) {
        return None;
    }
    let value = text[..digits].parse().ok()?;
    Some((value, &text[digits..]))
}

/// One of kured's layouts, tried in its order.
fn time_of_day(text: &str) -> Result<Time, WindowError> {
    let invalid = || WindowError::Time(text.into());
    let clock = |hour: i8, minute: i8| Time::new(hour, minute, 0, 0).map_err(|_| invalid());
    let twelve = |hour: i8, meridiem: &str| match (hour, meridiem) {
        (1..=11, "am") => Some(hour),
        (12, "am") => Some(0),
        (1..=11, "pm") => Some(hour + 12),
        (12, "pm") => Some(12),
        _ => None,
    };
    // 15:04 and 15:04:06 (the 06 a year: ignored)
    if let Some((hour, rest)) = number(text, false)
        && let Some(rest) = rest.strip_prefix(':')
        && let Some((minute, rest)) = number(rest, true)
        && hour < 24
        && minute < 60
    {
        let year_ok = rest
            .strip_prefix(':')
            .is_some_and(|y| y.len() == 2 && y.bytes().all(|b| b.is_ascii_digit()));
        if rest.is_empty() || year_ok {
            return clock(hour, minute);
        }
    }
    // 03:04pm
    if let Some((hour, rest)) = number(text, true)
        && let Some(rest) = rest.strip_prefix(':')
        && let Some((minute, meridiem)) = number(rest, true)
        && let Some(hour) = twelve(hour, meridiem)
        && minute < 60
    {
        return clock(hour, minute);
    }
    // 15
    if let Some((hour, "")) = number(text, false)
        && hour < 24
    {
        return clock(hour, 0);
    }
    // 03pm
    if let Some((hour, meridiem)) = number(text, true)
        && let Some(hour) = twelve(hour, meridiem)
    {
        return clock(hour, 0);
    }
    Err(invalid())
}

fn zone(name: &str) -> Result<TimeZone, WindowError> {
    match name {
        "" | "UTC" => Ok(TimeZone::UTC),
        "Local" => Ok(TimeZone::system()),
        other => TimeZone::get(other).map_err(|_| WindowError::TimeZone(other.into())),
    }
}

impl Window {
    /// The window `spec` describes, or why it is invalid or never opens.
    pub fn parse(spec: &TimeWindowSpec) -> Result<Self, WindowError> {
        let days = spec
            .days
            .iter()
            .map(|d| weekday(d))
            .collect::<Result<Vec<_>, _>>()?;
        let zone = zone(spec.time_zone.as_deref().unwrap_or_default())?;
        let start = time_of_day(spec.start_time.as_deref().unwrap_or_default())?;
        let end = time_of_day(spec.end_time.as_deref().unwrap_or_default())?;
        if days.is_empty() {
            return Err(WindowError::NeverOpens("no days".into()));
        }
        if end <= start {
            return Err(WindowError::NeverOpens(format!(
                "it ends ({end}) before it starts ({start}) and does not wrap past midnight"
            )));
        }
        Ok(Self {
            days,
            zone,
            start,
            end,
        })
    }

    fn bounds(&self, date: Date) -> Option<(Zoned, Zoned)> {
        let start = date
            .to_datetime(self.start)
            .to_zoned(self.zone.clone())
            .ok()?;
        let end = date
            .to_datetime(self.end)
            .to_zoned(self.zone.clone())
            .ok()?;
        Some((start, end))
    }

    /// Whether `now` falls strictly inside the window.
    pub fn contains(&self, now: Timestamp) -> bool {
        let local = now.to_zoned(self.zone.clone());
        if !self.days.contains(&local.weekday()) {
            return false;
        }
        self.bounds(local.date())
            .is_some_and(|(start, end)| now > start.timestamp() && now < end.timestamp())
    }

    /// How long until the window next opens (zero when open now): the
    /// first instant after a start, within the coming eight days.
    pub fn until_open(&self, now: Timestamp) -> Duration {
        if self.contains(now) {
            return Duration::ZERO;
        }
        let today = now.to_zoned(self.zone.clone()).date();
        for offset in 0..8 {
            let Ok(date) = today.checked_add(offset.days()) else {
                break;
            };
            if !self.days.contains(&date.weekday()) {
                continue;
            }
            if let Some((start, _)) = self.bounds(date)
                && start.timestamp() >= now
            {
                let wait = now.duration_until(start.timestamp());
                return Duration::try_from(wait).unwrap_or_default() + Duration::from_secs(1);
            }
        }
        Duration::from_secs(7 * 24 * 3600)
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let days: Vec<String> = self.days.iter().map(|d| format!("{d:?}")).collect();
        write!(
            f,
            "{} between {} and {} {}",
            days.join(","),
            self.start,
            self.end,
            self.zone.iana_name().unwrap_or("UTC")
        )
    }
}

#[cfg(test)]
mod tests;
