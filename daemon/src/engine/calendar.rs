//! The term calendar: which weekday's timetable runs on a date.
//!
//! Rules, in order: outside the term nothing runs; on a holiday nothing runs; on a make-up
//! day (调休, e.g. a Saturday that runs Monday's timetable) the named weekday's timetable
//! runs; otherwise the date's own weekday runs.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Calendar {
    /// First and last day of the term, inclusive.
    pub(crate) term: Option<(NaiveDate, NaiveDate)>,
    pub(crate) holidays: BTreeSet<NaiveDate>,
    /// Date → weekday (1 = Monday .. 7 = Sunday) whose timetable runs that day.
    pub(crate) makeup: BTreeMap<NaiveDate, u8>,
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
}
