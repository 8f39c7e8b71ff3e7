//! The term calendar: which weekday's timetable runs on a date, and what changes single
//! lessons on single dates.
//!
//! Rules, in order: outside the term nothing runs; on a holiday or school day off nothing
//! runs; on a make-up day (调休, e.g. a Saturday that runs Monday's timetable) the named
//! weekday's timetable runs; otherwise the date's own weekday runs. Then the day's changes
//! apply to the lessons of the rosters the board's timetable teaches (调课, 代课, exams,
//! cancelled and extra lessons).
//!
//! The calendar comes from the config (the base) until the cloud sends one (`calendar`
//! downlink); every version is kept with when it was applied, and a date is governed by
//! the version in force at the end of that date, so a day that was never finalised (the
//! board was off) still finalises against the calendar it had.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use ketang_sync::calendar::{CalendarDoc, ChangeKind, LessonChange};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Calendar {
    /// First and last day of the term, inclusive.
    pub(crate) term: Option<(NaiveDate, NaiveDate)>,
    pub(crate) holidays: BTreeSet<NaiveDate>,
    /// Date → weekday (1 = Monday .. 7 = Sunday) whose timetable runs that day.
    pub(crate) makeup: BTreeMap<NaiveDate, u8>,
    /// What the board calls a day without lessons or a make-up day (国庆节, 运动会).
    pub(crate) names: BTreeMap<NaiveDate, String>,
    /// Dated lesson changes by (date, roster, period).
    pub(crate) changes: BTreeMap<(NaiveDate, String, u8), LessonChange>,
    /// The cloud's version (0: the config's calendar).
    pub(crate) version: u64,
}

impl Calendar {
    /// The weekday whose timetable runs on `date`, or `None` when there are no lessons.
    pub(crate) fn runs(&self, date: NaiveDate) -> Option<u8> {
        if let Some((a, b)) = self.term
            && (date < a || date > b)
        {
            return None;
        }
        if self.holidays.contains(&date) {
            return None;
        }
        if let Some(w) = self.makeup.get(&date) {
            return Some(*w);
        }
        u8::try_from(date.weekday().number_from_monday()).ok()
    }

    /// The calendar a cloud snapshot describes.
    pub(crate) fn from_doc(doc: &CalendarDoc) -> Self {
        let mut c = Self {
            term: doc.term.map(|t| (t.start, t.end)),
            version: doc.version,
            ..Self::default()
        };
        for d in doc.holidays.iter().chain(&doc.days_off) {
            for date in d.dates() {
                c.holidays.insert(date);
                c.names.insert(date, d.name.clone());
            }
        }
        for m in &doc.makeup_days {
            c.makeup.insert(m.date, m.runs);
            if let Some(n) = &m.name {
                c.names.insert(m.date, n.clone());
            }
        }
        for ch in &doc.changes {
            c.changes
                .insert((ch.date, ch.roster_id.clone(), ch.period), ch.clone());
        }
        c
    }

    /// The change to period `period` of `roster` on `date`, if any.
    pub(crate) fn change(
        &self,
        date: NaiveDate,
        roster: &str,
        period: u8,
    ) -> Option<&LessonChange> {
        self.changes.get(&(date, roster.to_owned(), period))
    }

    /// Every change on `date`.
    pub(crate) fn changes_on(&self, date: NaiveDate) -> impl Iterator<Item = &LessonChange> {
        self.changes
            .range((date, String::new(), 0)..)
            .take_while(move |((d, _, _), _)| *d == date)
            .map(|(_, c)| c)
    }

    /// Whether `date` has a cancelled lesson for one of `rosters` in this calendar.
    pub(crate) fn cancelled_on<'a>(
        &'a self,
        date: NaiveDate,
        rosters: &'a BTreeSet<String>,
    ) -> impl Iterator<Item = &'a LessonChange> {
        self.changes_on(date)
            .filter(move |c| c.kind == ChangeKind::Cancel && rosters.contains(&c.roster_id))
    }
}

/// The config's calendar and every version the cloud sent, with when each was applied.
#[derive(Debug, Clone, Default)]
pub(crate) struct Calendars {
    base: Calendar,
    versions: Vec<(DateTime<Utc>, Calendar)>,
}

impl Calendars {
    /// Only the config's calendar.
    #[cfg(test)]
    pub(crate) fn new(base: Calendar) -> Self {
        Self {
            base,
            versions: Vec::new(),
        }
    }

    /// The config's calendar and the cloud's versions (any order).
    pub(crate) fn with_history(
        base: Calendar,
        docs: &[(DateTime<FixedOffset>, CalendarDoc)],
    ) -> Self {
        let mut versions: Vec<(DateTime<Utc>, Calendar)> = docs
            .iter()
            .map(|(at, d)| (at.with_timezone(&Utc), Calendar::from_doc(d)))
            .collect();
        versions.sort_by_key(|(at, c)| (*at, c.version));
        Self { base, versions }
    }

    /// The cloud's versions replaced by `docs` (after a `calendar` downlink); the config's
    /// calendar stays the base.
    pub(crate) fn set_history(&mut self, docs: &[(DateTime<FixedOffset>, CalendarDoc)]) {
        *self = Self::with_history(std::mem::take(&mut self.base), docs);
    }

    /// The calendar that governs `date`: the version in force at the end of that date.
    pub(crate) fn on(&self, date: NaiveDate, tz: Tz) -> &Calendar {
        let end = date
            .succ_opt()
            .and_then(|n| {
                tz.from_local_datetime(&n.and_time(chrono::NaiveTime::MIN))
                    .earliest()
            })
            .map(|e| e.with_timezone(&Utc));
        self.versions
            .iter()
            .rev()
            .find(|(at, _)| end.is_none_or(|e| *at < e))
            .map_or(&self.base, |(_, c)| c)
    }
}

/// Parses a weekday name (English, or 周一..周日 / 星期一..星期日) to 1..=7.
pub(crate) fn weekday(s: &str) -> Option<u8> {
    let s = s.trim().to_lowercase();
    let en = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    if let Some(i) = en.iter().position(|d| *d == s || d[..3] == s) {
        return u8::try_from(i + 1).ok();
    }
    let zh = ["一", "二", "三", "四", "五", "六", "日"];
    let tail = s.strip_prefix("周").or_else(|| s.strip_prefix("星期"))?;
    let tail = if tail == "天" { "日" } else { tail };
    zh.iter()
        .position(|d| *d == tail)
        .and_then(|i| u8::try_from(i + 1).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn cal() -> Calendar {
        Calendar {
            term: Some((d("2026-09-01"), d("2027-01-22"))),
            holidays: (1..=7).map(|i| d(&format!("2026-10-0{i}"))).collect(),
            makeup: [(d("2026-10-10"), 1)].into(),
            ..Calendar::default()
        }
    }

    #[test]
    fn an_ordinary_weekday_runs_its_own_timetable() {
        assert_eq!(cal().runs(d("2026-11-23")), Some(1)); // a Monday
        assert_eq!(cal().runs(d("2026-11-28")), Some(6)); // a Saturday: its own (empty) day
    }

    #[test]
    fn holidays_and_days_outside_the_term_have_no_lessons() {
        assert_eq!(cal().runs(d("2026-10-01")), None);
        assert_eq!(cal().runs(d("2026-08-31")), None);
        assert_eq!(cal().runs(d("2027-01-23")), None);
    }

    #[test]
    fn a_makeup_saturday_runs_mondays_timetable() {
        assert_eq!(cal().runs(d("2026-10-10")), Some(1));
    }

    #[test]
    fn weekday_names_parse_in_english_and_chinese() {
        assert_eq!(weekday("Monday"), Some(1));
        assert_eq!(weekday("fri"), Some(5));
        assert_eq!(weekday("周一"), Some(1));
        assert_eq!(weekday("星期日"), Some(7));
        assert_eq!(weekday("周天"), Some(7));
        assert_eq!(weekday("someday"), None);
    }

    fn doc(v: serde_json::Value) -> CalendarDoc {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_cloud_calendar_names_its_days_and_indexes_its_changes() {
        let c = Calendar::from_doc(&doc(serde_json::json!({
            "version": 4,
            "holidays": [{"from": "2026-10-01", "until": "2026-10-03", "name": "国庆节"}],
            "days_off": [{"from": "2026-11-27", "name": "运动会"}],
            "makeup_days": [{"date": "2026-10-10", "runs": 5, "name": "国庆调休"}],
            "changes": [
                {"date": "2026-11-24", "roster_id": "g7-c3", "period": 2, "kind": "cancel"},
                {"date": "2026-11-24", "roster_id": "g8-c1", "period": 1, "kind": "event", "subject": "期中考试"},
                {"date": "2026-11-25", "roster_id": "g7-c3", "period": 1, "kind": "substitute", "teacher": "李老师", "teacher_id": "T07"}
            ]
        })));
        assert_eq!(c.runs(d("2026-10-02")), None);
        assert_eq!(c.runs(d("2026-11-27")), None);
        assert_eq!(c.names[&d("2026-11-27")], "运动会");
        assert_eq!(c.runs(d("2026-10-10")), Some(5));
        assert_eq!(c.changes_on(d("2026-11-24")).count(), 2);
        assert_eq!(c.changes_on(d("2026-11-25")).count(), 1);
        assert!(c.change(d("2026-11-25"), "g7-c3", 1).is_some());
        let mine: BTreeSet<String> = ["g7-c3".to_owned()].into();
        assert_eq!(c.cancelled_on(d("2026-11-24"), &mine).count(), 1);
    }

    #[test]
    fn a_date_is_governed_by_the_version_in_force_at_its_end() {
        let sh = chrono_tz::Asia::Shanghai;
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap();
        let v = |n: u64, off: &str| {
            doc(serde_json::json!({"version": n, "days_off": [{"from": off, "name": "x"}]}))
        };
        let cals = Calendars::with_history(
            cal(),
            &[
                (at("2026-11-24T10:00:00+08:00"), v(2, "2026-11-23")),
                (at("2026-11-20T09:00:00+08:00"), v(1, "2026-11-30")),
            ],
        );
        // Before any cloud version: the config's.
        assert_eq!(cals.on(d("2026-11-19"), sh).version, 0);
        // Version 1 from the 20th; version 2 applied on the 24th governs the 24th whole.
        assert_eq!(cals.on(d("2026-11-20"), sh).version, 1);
        assert_eq!(cals.on(d("2026-11-23"), sh).version, 1);
        assert_eq!(cals.on(d("2026-11-24"), sh).version, 2);
        // Version 2 made the 23rd a day off, but only after it was over: the 23rd keeps
        // its lessons (it finalises against the calendar it had).
        assert_eq!(cals.on(d("2026-11-23"), sh).runs(d("2026-11-23")), Some(1));
    }
}
