//! Which lesson is on at a given local time.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone};
use chrono_tz::Tz;
use std::collections::HashMap;

use ketang_sync::{AttendanceStatus, LessonControl, Period};

use super::calendar::{Calendar, Calendars};
use ketang_sync::calendar::ChangeKind;

pub(crate) use ketang_sync::LessonState;

/// A timetable period on a concrete date.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Slot {
    pub(crate) date: NaiveDate,
    pub(crate) period: Period,
    pub(crate) starts_at: DateTime<Tz>,
    pub(crate) ends_at: DateTime<Tz>,
    /// What the calendar changed about this lesson on this date (调课, 代课, exam, extra).
    pub(crate) change: Option<SlotChange>,
}

/// A dated change as the board shows it: the kind, what the weekly timetable had, and a note.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SlotChange {
    pub(crate) kind: ChangeKind,
    /// The weekly timetable's subject and teacher (none for an extra lesson).
    pub(crate) was: Option<(String, String)>,
    /// The substitute's staff id.
    pub(crate) teacher_id: Option<String>,
    pub(crate) note: Option<String>,
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
    pub(crate) calendar: Calendars,
    /// Teacher actions and finalisation, by lesson id.
    pub(crate) controls: HashMap<String, LessonControl>,
}

impl Timetable {
    /// The rosters this board's weekly timetable teaches.
    pub(crate) fn rosters(&self) -> std::collections::BTreeSet<String> {
        self.periods.iter().map(|p| p.roster_id.clone()).collect()
    }

    /// The calendar that governs `date`.
    pub(crate) fn calendar_on(&self, date: NaiveDate, tz: Tz) -> &Calendar {
        self.calendar.on(date, tz)
    }

    /// The lessons of `date`, in time order (none on holidays and outside the term), with
    /// the calendar's changes for that date applied.
    pub(crate) fn slots_on(&self, date: NaiveDate, tz: Tz) -> Vec<Slot> {
        let cal = self.calendar.on(date, tz);
        let Some(weekday) = cal.runs(date) else {
            return Vec::new();
        };
        let slot = |period: Period, change: Option<SlotChange>| {
            // A local time that does not exist (DST gap) has no slot; China has no DST.
            let starts_at = tz
                .from_local_datetime(&date.and_time(period.starts))
                .earliest()?;
            let ends_at = tz
                .from_local_datetime(&date.and_time(period.ends))
                .earliest()?;
            Some(Slot {
                date,
                period,
                starts_at,
                ends_at,
                change,
            })
        };
        let mut v: Vec<Slot> = Vec::new();
        for p in self.periods.iter().filter(|p| p.weekday == weekday) {
            let Some(ch) = cal.change(date, &p.roster_id, p.period) else {
                v.extend(slot(p.clone(), None));
                continue;
            };
            if ch.kind == ChangeKind::Cancel {
                continue;
            }
            let mut q = p.clone();
            if let Some(s) = &ch.subject {
                q.subject.clone_from(s);
            }
            if let Some(t) = &ch.teacher {
                q.teacher.clone_from(t);
            }
            if ch.room.is_some() {
                q.room.clone_from(&ch.room);
            }
            if let (Some(a), Some(b)) = (ch.starts, ch.ends) {
                (q.starts, q.ends) = (a, b);
            }
            v.extend(slot(
                q,
                Some(SlotChange {
                    kind: ch.kind,
                    was: Some((p.subject.clone(), p.teacher.clone())),
                    teacher_id: ch.teacher_id.clone(),
                    note: ch.note.clone(),
                }),
            ));
        }
        // Extra lessons (加课, a lesson moved here) for rosters this board teaches, unless
        // the weekly timetable already has that period (then the change above applied).
        let rosters = self.rosters();
        for ch in cal.changes_on(date) {
            let taken = v
                .iter()
                .any(|s| s.period.roster_id == ch.roster_id && s.period.period == ch.period);
            if ch.kind != ChangeKind::Extra || taken || !rosters.contains(&ch.roster_id) {
                continue;
            }
            let (Some(starts), Some(ends)) = (ch.starts, ch.ends) else {
                continue; // refused when the calendar was applied
            };
            let room = self
                .periods
                .iter()
                .find(|p| p.roster_id == ch.roster_id)
                .and_then(|p| p.room.clone());
            let p = Period {
                weekday,
                period: ch.period,
                starts,
                ends,
                subject: ch.subject.clone().unwrap_or_default(),
                teacher: ch.teacher.clone().unwrap_or_default(),
                room: ch.room.clone().or(room),
                roster_id: ch.roster_id.clone(),
            };
            v.extend(slot(
                p,
                Some(SlotChange {
                    kind: ch.kind,
                    was: None,
                    teacher_id: ch.teacher_id.clone(),
                    note: ch.note.clone(),
                }),
            ));
        }
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
            calendar: Calendars::default(),
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
        t.calendar = Calendars::new(Calendar {
            term: Some((
                NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
                NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            )),
            ..Calendar::default()
        });
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

    #[test]
    fn the_calendars_changes_apply_to_this_boards_rosters_on_their_date() {
        let mut t = tt();
        let doc: ketang_sync::calendar::CalendarDoc = serde_json::from_value(serde_json::json!({
            "version": 1,
            "changes": [
                {"date": "2026-11-23", "roster_id": "g7-c3", "period": 1, "kind": "substitute", "teacher": "李老师", "teacher_id": "T07"},
                {"date": "2026-11-23", "roster_id": "g7-c3", "period": 2, "kind": "cancel", "note": "移至周三"},
                {"date": "2026-11-23", "roster_id": "g7-c3", "period": 6, "kind": "extra", "subject": "语文", "teacher": "王芳", "starts": "14:00:00", "ends": "14:45:00"},
                {"date": "2026-11-23", "roster_id": "g8-c1", "period": 7, "kind": "extra", "subject": "物理", "teacher": "赵", "starts": "15:00:00", "ends": "15:45:00"},
                {"date": "2026-11-30", "roster_id": "g7-c3", "period": 2, "kind": "event", "subject": "期中考试", "starts": "08:55:00", "ends": "10:30:00"}
            ]
        })).unwrap();
        t.calendar.set_history(&[(
            DateTime::parse_from_rfc3339("2026-11-20T09:00:00+08:00").unwrap(),
            doc,
        )]);
        let day = t.slots_on(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(), Shanghai);
        let seen: Vec<(u8, &str, &str)> = day
            .iter()
            .map(|s| {
                (
                    s.period.period,
                    s.period.subject.as_str(),
                    s.period.teacher.as_str(),
                )
            })
            .collect();
        // Period 2 cancelled, period 6 added; another class's extra lesson is not ours.
        assert_eq!(seen, vec![(1, "数学", "李老师"), (6, "语文", "王芳")]);
        let sub = day[0].change.as_ref().unwrap();
        assert_eq!(sub.kind, ChangeKind::Substitute);
        assert_eq!(sub.was, Some(("数学".into(), "陈建国".into())));
        assert_eq!(sub.teacher_id.as_deref(), Some("T07"));
        assert_eq!(day[1].change.as_ref().unwrap().was, None);
        // The extra lesson is a lesson like any other: current at its time.
        assert_eq!(
            t.current(at("2026-11-23T14:10:00+08:00"), TEN_MIN)
                .map(|s| s.id()),
            Some("2026-11-23/6".to_owned())
        );
        // A week later: the exam replaces period 2 with its own times; period 1 is as usual.
        let exam = t.slots_on(NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(), Shanghai);
        assert_eq!(exam[1].period.subject, "期中考试");
        assert_eq!(exam[1].ends_at, at("2026-11-30T10:30:00+08:00"));
        assert_eq!(exam[0].change, None);
    }
}
