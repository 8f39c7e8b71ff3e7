//! When the board's own screen is awake: through the school day, asleep outside it.
//!
//! Awake from 10 minutes before the first thing of the day the board is used for (the
//! morning health check, or the first lesson's check-in) until 10 minutes after the last
//! (the last lesson's end, or the evening check), on days with lessons (the calendar's:
//! holidays, days off and 调休 included). Outside that the screen sleeps; a touch wakes it
//! for a minute (the board's page), and an alarm always shows.

use chrono::{DateTime, NaiveTime, TimeDelta, TimeZone};
use chrono_tz::Tz;

use super::timetable::Slot;

/// Minutes awake before the day's first use and after its last.
pub(crate) const MARGIN_MIN: i64 = 10;

/// The day's awake window, `None` on a day without lessons.
pub(crate) fn window(
    slots: &[Slot],
    checkin_opens: std::time::Duration,
    checks: &[(NaiveTime, NaiveTime)],
    tz: Tz,
) -> Option<(DateTime<Tz>, DateTime<Tz>)> {
    let (first, last) = (slots.first()?, slots.last()?);
    let date = first.date;
    let at = |t: NaiveTime| tz.from_local_datetime(&date.and_time(t)).earliest();
    let mut from = first.starts_at - TimeDelta::from_std(checkin_opens).unwrap_or_default();
    let mut until = slots
        .iter()
        .map(|s| s.ends_at)
        .max()
        .unwrap_or(last.ends_at);
    for (a, b) in checks {
        if let Some(a) = at(*a) {
            from = from.min(a);
        }
        if let Some(b) = at(*b) {
            until = until.max(b);
        }
    }
    Some((
        from - TimeDelta::minutes(MARGIN_MIN),
        until + TimeDelta::minutes(MARGIN_MIN),
    ))
}

/// Whether the screen is awake at `now` (always when sleeping is turned off).
pub(crate) fn awake(now: DateTime<Tz>, window: Option<(DateTime<Tz>, DateTime<Tz>)>) -> bool {
    window.is_some_and(|(a, b)| now >= a && now < b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use chrono_tz::Asia::Shanghai;
    use ketang_sync::Period;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn slot(p: u8, a: NaiveTime, b: NaiveTime) -> Slot {
        let date = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let at = |x: NaiveTime| Shanghai.from_local_datetime(&date.and_time(x)).unwrap();
        Slot {
            date,
            period: Period {
                weekday: 1,
                period: p,
                starts: a,
                ends: b,
                subject: "语文".into(),
                teacher: "王丽华".into(),
                room: None,
                roster_id: "g7-c3".into(),
            },
            starts_at: at(a),
            ends_at: at(b),
            change: None,
        }
    }

    fn at(s: &str) -> DateTime<Tz> {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Shanghai)
    }

    #[test]
    fn awake_from_the_morning_check_until_after_the_last_lesson() {
        let slots = [slot(1, t(8, 0), t(8, 45)), slot(7, t(15, 50), t(16, 35))];
        let ten = std::time::Duration::from_secs(600);
        let w = window(&slots, ten, &[(t(7, 0), t(8, 30))], Shanghai);
        assert!(!awake(at("2026-11-23T06:49:00+08:00"), w));
        assert!(
            awake(at("2026-11-23T06:50:00+08:00"), w),
            "10 min before 晨检"
        );
        assert!(awake(at("2026-11-23T12:00:00+08:00"), w));
        assert!(awake(at("2026-11-23T16:44:00+08:00"), w));
        assert!(
            !awake(at("2026-11-23T16:45:00+08:00"), w),
            "10 min after the last lesson"
        );
        // A boarding school's 晚检 keeps it awake into the evening.
        let w = window(
            &slots,
            ten,
            &[(t(7, 0), t(8, 30)), (t(18, 30), t(20, 30))],
            Shanghai,
        );
        assert!(awake(at("2026-11-23T20:35:00+08:00"), w));
        // No lessons (a holiday): asleep all day.
        assert!(!awake(
            at("2026-11-23T09:00:00+08:00"),
            window(&[], ten, &[], Shanghai)
        ));
    }
}
