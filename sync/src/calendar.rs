//! The school's calendar as the cloud sends it (`calendar` downlink, docs/mqtt.md): the
//! term, holidays, 调休 make-up days, the school's own days off, and dated changes to the
//! timetable (调课, 代课, exams and events, cancelled or added lessons). A versioned
//! snapshot: each version replaces the last; the store keeps the history so that a past
//! day's lessons finalise against the calendar that was in force that day.

use std::collections::{BTreeSet, HashSet};

use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

/// Holiday and day-off entries in one calendar.
pub const MAX_CALENDAR_DAYS: usize = 400;
/// Dated changes in one calendar.
pub const MAX_CALENDAR_CHANGES: usize = 5_000;
/// Days one holiday or day-off entry may span.
pub const MAX_SPAN_DAYS: u64 = 120;
const MAX_NAME_CHARS: usize = 64;
const MAX_NOTE_CHARS: usize = 200;

/// A calendar snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarDoc {
    /// Must be newer than the applied version.
    pub version: u64,
    /// The term: no lessons outside it. Absent: lessons every week.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<Term>,
    /// Public holidays (no lessons).
    #[serde(default)]
    pub holidays: Vec<DaysOff>,
    /// 调休: a date that runs another weekday's timetable.
    #[serde(default)]
    pub makeup_days: Vec<MakeupDay>,
    /// The school's own days off (sports day, teacher training): no lessons.
    #[serde(default)]
    pub days_off: Vec<DaysOff>,
    /// Changes to single lessons on single dates.
    #[serde(default)]
    pub changes: Vec<LessonChange>,
}

/// First and last day of the term, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Term {
    /// First day.
    pub start: NaiveDate,
    /// Last day.
    pub end: NaiveDate,
}

/// Days without lessons: `from` to `until` inclusive (one day when `until` is absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaysOff {
    /// First day.
    pub from: NaiveDate,
    /// Last day (inclusive); absent = `from` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<NaiveDate>,
    /// Shown on the board, e.g. 国庆节, 运动会.
    pub name: String,
}

impl DaysOff {
    /// Every date of the entry.
    pub fn dates(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        let until = self.until.unwrap_or(self.from);
        self.from.iter_days().take_while(move |d| *d <= until)
    }
}

/// A date that runs the timetable of weekday `runs` (1 = Monday .. 7 = Sunday).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MakeupDay {
    /// The date.
    pub date: NaiveDate,
    /// Whose timetable runs.
    pub runs: u8,
    /// Shown on the board, e.g. 国庆调休.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What a change does to a lesson.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// 调课: another subject and/or teacher takes the period (a swap is two of these).
    Swap,
    /// 代课: another teacher takes the lesson; `teacher_id` may unlock teacher mode.
    Substitute,
    /// 考试/活动: an exam or event replaces the period (`subject` is its title).
    Event,
    /// 停课: the lesson does not take place (a lesson moved away).
    Cancel,
    /// 加课: a lesson the weekly timetable does not have (a lesson moved here).
    Extra,
}

impl ChangeKind {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Swap => "swap",
            Self::Substitute => "substitute",
            Self::Event => "event",
            Self::Cancel => "cancel",
            Self::Extra => "extra",
        }
    }
}

/// One lesson changed on one date: period `period` of roster `roster_id` on `date`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LessonChange {
    /// The date.
    pub date: NaiveDate,
    /// The roster (class or elective group) whose lesson changes; a board applies only
    /// changes to rosters its timetable teaches.
    pub roster_id: String,
    /// Period number.
    pub period: u8,
    /// What happens.
    pub kind: ChangeKind,
    /// The subject (swap, extra) or the exam/event's title (event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The teacher's display name (swap, substitute, extra; an event's invigilator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<String>,
    /// The substitute's staff id (substitute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_id: Option<String>,
    /// A new start (required for extra; with `ends`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts: Option<NaiveTime>,
    /// A new end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends: Option<NaiveTime>,
    /// Another room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// Shown on the board, e.g. 与第5节对调.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn text(p: &mut Vec<String>, field: &str, v: Option<&str>, max: usize, required: bool) {
    crate::limits::check_text(p, field, v, max, required, false);
}

/// Every problem of a calendar, each naming its field; empty when it may be applied.
#[must_use]
pub fn check_calendar(c: &CalendarDoc) -> Vec<String> {
    let mut p = Vec::new();
    if c.version == 0 {
        p.push("version must be at least 1".into());
    }
    if let Some(t) = c.term
        && t.end <= t.start
    {
        p.push(format!(
            "term: end {} is not after start {}",
            t.end, t.start
        ));
    }
    if c.holidays.len() + c.days_off.len() > MAX_CALENDAR_DAYS {
        p.push(format!(
            "{} holiday and day-off entries (at most {MAX_CALENDAR_DAYS})",
            c.holidays.len() + c.days_off.len()
        ));
        return p;
    }
    if c.changes.len() > MAX_CALENDAR_CHANGES {
        p.push(format!(
            "{} changes (at most {MAX_CALENDAR_CHANGES})",
            c.changes.len()
        ));
        return p;
    }
    let mut off = BTreeSet::new();
    for (list, entries) in [("holidays", &c.holidays), ("days_off", &c.days_off)] {
        for (i, d) in entries.iter().enumerate() {
            let f = format!("{list}[{i}]");
            text(
                &mut p,
                &format!("{f}.name"),
                Some(&d.name),
                MAX_NAME_CHARS,
                true,
            );
            let until = d.until.unwrap_or(d.from);
            if until < d.from {
                p.push(format!("{f}: until {until} is before from {}", d.from));
            } else if (until - d.from).num_days()
                >= i64::try_from(MAX_SPAN_DAYS).unwrap_or(i64::MAX)
            {
                p.push(format!("{f}: spans more than {MAX_SPAN_DAYS} days"));
            } else {
                off.extend(d.dates());
            }
        }
    }
    let mut makeup = HashSet::new();
    for (i, m) in c.makeup_days.iter().enumerate() {
        let f = format!("makeup_days[{i}]");
        if !(1..=7).contains(&m.runs) {
            p.push(format!("{f}.runs: {} is not a weekday 1-7", m.runs));
        }
        if off.contains(&m.date) {
            p.push(format!("{f}: {} is also a holiday or day off", m.date));
        }
        if !makeup.insert(m.date) {
            p.push(format!("{f}: {} is listed twice", m.date));
        }
        text(
            &mut p,
            &format!("{f}.name"),
            m.name.as_deref(),
            MAX_NAME_CHARS,
            false,
        );
    }
    let mut seen = HashSet::new();
    for (i, ch) in c.changes.iter().enumerate() {
        let f = format!("changes[{i}]");
        let before = p.len();
        text(
            &mut p,
            &format!("{f}.roster_id"),
            Some(&ch.roster_id),
            MAX_NAME_CHARS,
            true,
        );
        if !(1..=20).contains(&ch.period) {
            p.push(format!("{f}.period: {} is not 1-20", ch.period));
        }
        if off.contains(&ch.date) {
            p.push(format!(
                "{f}: {} is a holiday or day off in this calendar",
                ch.date
            ));
        }
        let need = |field: &str| match ch.kind {
            ChangeKind::Swap => field == "subject",
            ChangeKind::Substitute => field == "teacher" || field == "teacher_id",
            ChangeKind::Event => field == "subject",
            ChangeKind::Extra => field == "subject" || field == "teacher",
            ChangeKind::Cancel => false,
        };
        text(
            &mut p,
            &format!("{f}.subject"),
            ch.subject.as_deref(),
            MAX_NAME_CHARS,
            need("subject"),
        );
        text(
            &mut p,
            &format!("{f}.teacher"),
            ch.teacher.as_deref(),
            MAX_NAME_CHARS,
            need("teacher"),
        );
        text(
            &mut p,
            &format!("{f}.teacher_id"),
            ch.teacher_id.as_deref(),
            MAX_NAME_CHARS,
            need("teacher_id"),
        );
        text(
            &mut p,
            &format!("{f}.room"),
            ch.room.as_deref(),
            MAX_NAME_CHARS,
            false,
        );
        text(
            &mut p,
            &format!("{f}.note"),
            ch.note.as_deref(),
            MAX_NOTE_CHARS,
            false,
        );
        match (ch.starts, ch.ends) {
            (Some(a), Some(b)) if b <= a => {
                p.push(format!("{f}: ends {b} is not after starts {a}"));
            }
            (Some(_), None) | (None, Some(_)) => {
                p.push(format!("{f}: starts and ends go together"));
            }
            (None, None) if ch.kind == ChangeKind::Extra => {
                p.push(format!("{f}: an extra lesson needs starts and ends"));
            }
            _ => {}
        }
        if p.len() == before && !seen.insert((ch.date, ch.roster_id.as_str(), ch.period)) {
            p.push(format!(
                "{f}: period {} of {} on {} is changed twice",
                ch.period,
                crate::limits::excerpt(&ch.roster_id),
                ch.date
            ));
        }
        if p.len() > 40 {
            p.push("… stopped after 40 problems".into());
            break;
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(v: serde_json::Value) -> CalendarDoc {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_school_calendar_is_accepted() {
        let c = doc(serde_json::json!({
            "version": 2,
            "term": {"start": "2026-09-01", "end": "2027-01-22"},
            "holidays": [{"from": "2026-10-01", "until": "2026-10-07", "name": "国庆节"}],
            "makeup_days": [{"date": "2026-10-10", "runs": 1, "name": "国庆调休"}],
            "days_off": [{"from": "2026-11-20", "name": "运动会"}],
            "changes": [
                {"date": "2026-12-08", "roster_id": "g7-c3", "period": 2, "kind": "swap", "subject": "语文", "teacher": "王芳", "note": "与第5节对调"},
                {"date": "2026-12-08", "roster_id": "g7-c3", "period": 5, "kind": "swap", "subject": "数学", "teacher": "陈建国"},
                {"date": "2026-12-09", "roster_id": "g7-c3", "period": 1, "kind": "substitute", "teacher": "李老师", "teacher_id": "T07"},
                {"date": "2026-12-10", "roster_id": "g7-c3", "period": 3, "kind": "event", "subject": "期中考试"},
                {"date": "2026-12-11", "roster_id": "g7-c3", "period": 4, "kind": "cancel"},
                {"date": "2026-12-12", "roster_id": "g7-c3", "period": 1, "kind": "extra", "subject": "数学", "teacher": "陈建国", "starts": "08:00:00", "ends": "08:45:00"}
            ]
        }));
        assert_eq!(check_calendar(&c), Vec::<String>::new());
        assert_eq!(c.holidays[0].dates().count(), 7);
    }

    #[test]
    fn every_problem_is_named_with_its_field() {
        let c = doc(serde_json::json!({
            "version": 0,
            "term": {"start": "2027-01-22", "end": "2026-09-01"},
            "holidays": [{"from": "2026-10-07", "until": "2026-10-01", "name": "国庆节"}, {"from": "2026-10-20", "name": ""}],
            "makeup_days": [{"date": "2026-10-20", "runs": 9}],
            "changes": [
                {"date": "2026-12-09", "roster_id": "g7-c3", "period": 1, "kind": "substitute", "teacher": "李老师"},
                {"date": "2026-12-12", "roster_id": "g7-c3", "period": 1, "kind": "extra", "subject": "数学", "teacher": "陈"},
                {"date": "2026-12-13", "roster_id": "g7-c3", "period": 2, "kind": "cancel"},
                {"date": "2026-12-13", "roster_id": "g7-c3", "period": 2, "kind": "cancel"},
                {"date": "2026-10-20", "roster_id": "g7-c3", "period": 30, "kind": "event", "subject": "x", "starts": "09:00:00", "ends": "08:00:00"}
            ]
        }));
        let p = check_calendar(&c);
        for want in [
            "version must be at least 1",
            "term: end 2026-09-01 is not after start 2027-01-22",
            "holidays[0]: until 2026-10-01 is before from 2026-10-07",
            "holidays[1].name is empty",
            "makeup_days[0].runs: 9 is not a weekday 1-7",
            "makeup_days[0]: 2026-10-20 is also a holiday or day off",
            "changes[0].teacher_id is required",
            "changes[1]: an extra lesson needs starts and ends",
            "changes[3]: period 2 of \"g7-c3\" on 2026-12-13 is changed twice",
            "changes[4].period: 30 is not 1-20",
            "changes[4]: 2026-10-20 is a holiday or day off in this calendar",
            "changes[4]: ends 08:00:00 is not after starts 09:00:00",
        ] {
            assert!(p.iter().any(|x| x == want), "missing {want:?} in {p:#?}");
        }
    }
}
