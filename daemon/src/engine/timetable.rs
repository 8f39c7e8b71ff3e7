//! Which lesson is on at a given local time.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone};
use chrono_tz::Tz;
use std::collections::HashMap;

use ketang_sync::{AttendanceStatus, LessonControl, Period};

use super::calendar::Calendar;

pub(crate) use ketang_sync::LessonState;

/// A timetable period on a concrete date.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Slot {
    pub(crate) date: NaiveDate,
    pub(crate) period: Period,
    pub(crate) starts_at: DateTime<Tz>,
    pub(crate) ends_at: DateTime<Tz>,
}

impl Slot {
    pub(crate) fn id(&self) -> String {
        format!("{}/{}", self.date, self.period.period)
    }

    pub(crate) fn state(&self, now: DateTime<Tz>, checkin_opens: Duration) -> LessonState {
        let opens = self.starts_at - TimeDelta::from_std(checkin_opens).unwrap_or_default();
        if now < opens {
            LessonState::Upcoming
        } else if now < self.starts_at {
            LessonState::Open
        } else if now < self.ends_at {
            LessonState::InProgress
        } else {
            LessonState::Ended
        }
    }

    /// The status a check-in at `now` earns: present up to `late_after` past the start.
    pub(crate) fn check_in_status(
        &self,
        now: DateTime<Tz>,
        late_after: Duration,
    ) -> AttendanceStatus {
        if now <= self.starts_at + TimeDelta::from_std(late_after).unwrap_or_default() {
            AttendanceStatus::Present
        } else {
            AttendanceStatus::Late
        }
    }
}

/// The school's weekly timetable and its calendar, with what teachers did to lessons.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timetable {
    pub(crate) periods: Vec<Period>,
    pub(crate) calendar: Calendar,
    /// Teacher actions and finalisation, by lesson id.
    pub(crate) controls: HashMap<String, LessonControl>,
}

impl Timetable {
    /// The lessons of `date`, in time order (none on holidays and outside the term).
    pub(crate) fn slots_on(&self, date: NaiveDate, tz: Tz) -> Vec<Slot> {
        let Some(weekday) = self.calendar.runs(date) else {
            return Vec::new();
        };
        let mut v: Vec<Slot> = self
            .periods
            .iter()
            .filter(|p| p.weekday == weekday)
            .filter_map(|p| {
                // A local time that does not exist (DST gap) has no slot; China has no DST.
                let starts_at = tz
                    .from_local_datetime(&date.and_time(p.starts))
                    .earliest()?;
                let ends_at = tz.from_local_datetime(&date.and_time(p.ends)).earliest()?;
                Some(Slot {
                    date,
                    period: p.clone(),
                    starts_at,
                    ends_at,
                })
            })
            .collect();
        v.sort_by_key(|s| s.starts_at);
        v
    }

    /// A lesson's state, with the teacher's actions (see [`super::lesson`]).
    pub(crate) fn state(
        &self,
        slot: &Slot,
        now: DateTime<Tz>,
        checkin_opens: Duration,
    ) -> LessonState {
        super::lesson::state(slot, self.controls.get(&slot.id()), now, checkin_opens)
    }

    /// The lesson open for check-in or in progress at `now`: one in progress wins over one
    /// open early.
    pub(crate) fn current(&self, now: DateTime<Tz>, checkin_opens: Duration) -> Option<Slot> {
        let slots = self.slots_on(now.date_naive(), now.timezone());
        let of = |want: LessonState| {
            slots
                .iter()
                .find(|s| self.state(s, now, checkin_opens) == want)
                .cloned()
        };
        of(LessonState::InProgress).or_else(|| of(LessonState::Open))
    }

    /// The next lesson today that has not opened yet.
    pub(crate) fn next(&self, now: DateTime<Tz>, checkin_opens: Duration) -> Option<Slot> {
        self.slots_on(now.date_naive(), now.timezone())
            .into_iter()
            .find(|s| self.state(s, now, checkin_opens) == LessonState::Upcoming)
    }

    /// A lesson of any date by id ("YYYY-MM-DD/P").
    pub(crate) fn slot(&self, id: &str, tz: Tz) -> Option<Slot> {
        let (date, _) = id.split_once('/')?;
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        self.slots_on(date, tz).into_iter().find(|s| s.id() == id)
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveTime;
    use chrono_tz::Asia::Shanghai;

    use super::*;

    fn period(weekday: u8, n: u8, a: &str, b: &str) -> Period {
        let t = |s| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        Period {
            weekday,
            period: n,
            starts: t(a),
            ends: t(b),
            subject: "数学".into(),
            teacher: "陈建国".into(),
            room: None,
            roster_id: "g7-c3".into(),
        }
    }

    fn at(s: &str) -> DateTime<Tz> {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Shanghai)
    }

    fn tt() -> Timetable {
        Timetable {
            periods: vec![
                period(1, 2, "08:55", "09:40"),
                period(1, 1, "08:00", "08:45"),
            ],
            calendar: Calendar::default(),
            controls: HashMap::new(),
        }
    }

    const TEN_MIN: Duration = Duration::from_secs(600);

    #[test]
    fn check_in_opens_ten_minutes_before_the_start() {
        // 2026-11-23 is a Monday.
        assert_eq!(tt().current(at("2026-11-23T07:49:59+08:00"), TEN_MIN), None);
        let s = tt()
            .current(at("2026-11-23T07:50:00+08:00"), TEN_MIN)
            .unwrap();
        assert_eq!(s.id(), "2026-11-23/1");
        assert_eq!(
            s.state(at("2026-11-23T07:50:00+08:00"), TEN_MIN),
            LessonState::Open
        );
        assert_eq!(
            s.state(at("2026-11-23T08:00:00+08:00"), TEN_MIN),
            LessonState::InProgress
        );
    }

    #[test]
    fn the_break_between_periods_opens_the_next_one() {
        let s = tt()
            .current(at("2026-11-23T08:46:00+08:00"), TEN_MIN)
            .unwrap();
        assert_eq!(s.period.period, 2);
        assert_eq!(
            tt().next(at("2026-11-23T07:00:00+08:00"), TEN_MIN)
                .unwrap()
                .period
                .period,
            1
        );
    }

    #[test]
    fn no_lessons_on_other_weekdays_or_outside_the_term() {
        assert_eq!(tt().current(at("2026-11-24T08:10:00+08:00"), TEN_MIN), None);
        let mut t = tt();
        t.calendar.term = Some((
            NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        ));
        assert_eq!(t.current(at("2026-11-23T08:10:00+08:00"), TEN_MIN), None);
    }

    #[test]
    fn late_starts_after_the_grace_period() {
        let s = tt()
            .current(at("2026-11-23T08:00:00+08:00"), TEN_MIN)
            .unwrap();
        let grace = Duration::from_secs(300);
        assert_eq!(
            s.check_in_status(at("2026-11-23T07:55:00+08:00"), grace),
            AttendanceStatus::Present
        );
        assert_eq!(
            s.check_in_status(at("2026-11-23T08:05:00+08:00"), grace),
            AttendanceStatus::Present
        );
        assert_eq!(
            s.check_in_status(at("2026-11-23T08:05:01+08:00"), grace),
            AttendanceStatus::Late
        );
    }

    #[test]
    fn times_are_read_in_the_school_time_zone_whatever_the_offset_given() {
        // 00:10 UTC is 08:10 in Shanghai.
        let s = tt()
            .current(at("2026-11-23T00:10:00+00:00"), TEN_MIN)
            .unwrap();
        assert_eq!(s.period.period, 1);
    }
}
