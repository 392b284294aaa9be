use super::*;

fn spec(days: &[&str], start: &str, end: &str, zone: &str) -> TimeWindowSpec {
    TimeWindowSpec {
        days: days.iter().map(|d| d.to_string()).collect(),
        start_time: Some(start.into()),
        end_time: Some(end.into()),
        time_zone: (!zone.is_empty()).then(|| zone.into()),
    }
}

fn at(text: &str) -> Timestamp {
    text.parse().expect("a timestamp")
}

#[test]
fn kureds_layouts_and_day_names() {
    for (text, hour, minute) in [
        ("02:30", 2, 30),
        ("2:30", 2, 30),
        ("23:59", 23, 59),
        ("02:30:06", 2, 30),
        ("02:30pm", 14, 30),
        ("12:05am", 0, 5),
        ("12:05pm", 12, 5),
        ("7", 7, 0),
        ("07pm", 19, 0),
    ] {
        assert_eq!(
            time_of_day(text),
            Ok(Time::new(hour, minute, 0, 0).expect("a time")),
            "{text}"
        );
    }
    for bad in [
        "", "24:00", "2:3", "02:30 pm", "02:30PM", "13pm", "noon", "02:30:5",
    ] {
        assert_eq!(
            time_of_day(bad),
            Err(WindowError::Time(bad.into())),
            "{bad}"
        );
    }
    assert_eq!(weekday("0"), Ok(Weekday::Sunday));
    assert_eq!(weekday("6"), Ok(Weekday::Saturday));
    assert_eq!(weekday("TUE"), Ok(Weekday::Tuesday));
    assert_eq!(weekday("th"), Ok(Weekday::Thursday));
    assert_eq!(weekday("7"), Err(WindowError::DayNumber("7".into())));
    assert_eq!(weekday("funday"), Err(WindowError::Day("funday".into())));
}

#[test]
fn contains_only_strictly_inside_an_allowed_day_in_its_zone() {
    // 2026-11-30 is a Monday.
    let w = Window::parse(&spec(&["monday", "we"], "02:00", "04:00", "")).expect("valid");
    assert!(w.contains(at("2026-11-30T03:00:00Z")));
    assert!(
        !w.contains(at("2026-11-30T02:00:00Z")),
        "the start is outside"
    );
    assert!(
        !w.contains(at("2026-11-30T04:00:00Z")),
        "the end is outside"
    );
    assert!(!w.contains(at("2026-12-01T03:00:00Z")), "Tuesday");
    assert!(w.contains(at("2026-12-02T03:00:00Z")));
    // 02:00–04:00 in Berlin (UTC+1 in winter) is 01:00–03:00 UTC.
    let berlin =
        Window::parse(&spec(&["1"], "02:00", "04:00", "Europe/Berlin")).expect("valid zone");
    assert!(berlin.contains(at("2026-11-30T01:30:00Z")));
    assert!(!berlin.contains(at("2026-11-30T03:30:00Z")));
}

#[test]
fn until_open_points_just_past_the_next_start() {
    let w = Window::parse(&spec(&["mon"], "02:00", "04:00", "")).expect("valid");
    assert_eq!(
        w.until_open(at("2026-11-30T01:00:00Z")),
        Duration::from_secs(3601)
    );
    assert_eq!(w.until_open(at("2026-11-30T03:00:00Z")), Duration::ZERO);
    // After Monday's window: next Monday.
    assert_eq!(
        w.until_open(at("2026-11-30T05:00:00Z")),
        Duration::from_secs(7 * 86400 - 3 * 3600 + 1)
    );
    let opened = at("2026-11-30T01:00:00Z") + w.until_open(at("2026-11-30T01:00:00Z"));
    assert!(w.contains(opened));
}

#[test]
fn windows_that_never_open_or_do_not_parse_are_refused() {
    let cases = [
        (spec(&[], "02:00", "04:00", ""), "never opens: no days"),
        (spec(&["mon"], "04:00", "02:00", ""), "never opens"),
        (spec(&["mon"], "04:00", "04:00", ""), "never opens"),
        (spec(&["someday"], "02:00", "04:00", ""), "Invalid weekday"),
        (
            spec(&["mon"], "2am", "04:00", ""),
            "Invalid time format: 2am",
        ),
        (
            spec(&["mon"], "02:00", "04:00", "Mars/Olympus"),
            "unknown time zone",
        ),
    ];
    for (spec, message) in cases {
        let err = Window::parse(&spec).expect_err(message);
        assert!(err.to_string().contains(message), "{err}");
    }
}
