//! A class's week on the board's lesson report: per school day, from the stored lesson
//! reports, the figures a teacher compares day to day. Class-level only.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

/// One school day of the class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct DayTrend {
    pub(crate) date: NaiveDate,
    /// Lessons held (not cancelled).
    pub(crate) lessons: u32,
    /// Present or late over the roster, across those lessons (three decimals).
    pub(crate) attendance_rate: Option<f64>,
    /// Hands that went up, in lessons the camera looked at (`None`: it looked at none).
    pub(crate) hand_raises: Option<u64>,
    /// Mean heads-up rate of those lessons.
    pub(crate) heads_up_rate: Option<f64>,
    /// Mean teacher share of S-T samples (Rt) of lessons with a microphone.
    pub(crate) rt: Option<f64>,
}

#[derive(Default)]
struct Acc {
    lessons: u32,
    roster: u64,
    in_room: u64,
    hands: Option<u64>,
    heads_up: Vec<f64>,
    rt: Vec<f64>,
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| (v.iter().sum::<f64>() / v.len() as f64 * 1000.0).round() / 1000.0)
}

/// The days of `reports` (stored lesson reports, any order), oldest first. A report that
/// lacks a field counts as not having that figure, never as zero.
pub(crate) fn week(reports: &[serde_json::Value]) -> Vec<DayTrend> {
    let mut days: BTreeMap<NaiveDate, Acc> = BTreeMap::new();
    for r in reports {
        let Some(date) = r["date"].as_str().and_then(|d| d.parse().ok()) else {
            continue;
        };
        let a = days.entry(date).or_default();
        if r["cancelled"].as_bool() == Some(true) {
            continue;
        }
        a.lessons += 1;
        let att = &r["attendance"];
        if let (Some(roster), Some(p), Some(l)) = (
            att["roster"].as_u64(),
            att["present"].as_u64(),
            att["late"].as_u64(),
        ) {
            a.roster += roster;
            a.in_room += p + l;
        }
        if let Some(h) = r["behaviour"]["hand_raise_events"].as_u64() {
            a.hands = Some(a.hands.unwrap_or(0) + h);
        }
        if let Some(x) = r["behaviour"]["heads_up_rate"].as_f64() {
            a.heads_up.push(x);
        }
        if let Some(x) = r["talk_time"]["rt"].as_f64()
            && r["talk_time"]["samples"].as_u64().is_some_and(|n| n > 0)
        {
            a.rt.push(x);
        }
    }
    days.into_iter()
        .filter(|(_, a)| a.lessons > 0)
        .map(|(date, a)| DayTrend {
            date,
            lessons: a.lessons,
            attendance_rate: (a.roster > 0)
                .then(|| (a.in_room as f64 / a.roster as f64 * 1000.0).round() / 1000.0),
            hand_raises: a.hands,
            heads_up_rate: mean(&a.heads_up),
            rt: mean(&a.rt),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn days_add_up_their_lessons_and_missing_figures_stay_missing() {
        let r = |date: &str, present, behaviour, talk, cancelled| {
            json!({"date": date, "cancelled": cancelled,
                   "attendance": {"roster": 40, "present": present, "late": 2},
                   "behaviour": behaviour, "talk_time": talk})
        };
        let b = |h, up| json!({"hand_raise_events": h, "heads_up_rate": up});
        let t = |rt| json!({"rt": rt, "samples": 90});
        let days = week(&[
            r("2026-12-02", 36, b(4, 0.9), t(0.8), false),
            r("2026-12-01", 38, json!(null), json!(null), false),
            r("2026-12-02", 30, b(6, 0.7), t(0.4), false),
            r("2026-12-02", 0, json!(null), json!(null), true),
            r("2026-12-03", 0, json!(null), json!(null), true),
            json!({"date": "not a date"}),
        ]);
        assert_eq!(
            days.len(),
            2,
            "a day of cancelled lessons only is no school day: {days:?}"
        );
        assert_eq!(days[0].date.to_string(), "2026-12-01");
        assert_eq!(days[0].attendance_rate, Some(1.0));
        assert_eq!(days[0].hand_raises, None, "no camera that day: not zero");
        assert_eq!(days[0].rt, None);
        let d = &days[1];
        assert_eq!(d.lessons, 2);
        assert_eq!(d.attendance_rate, Some(0.875), "(36+2+30+2)/80");
        assert_eq!(d.hand_raises, Some(10));
        assert_eq!(d.heads_up_rate, Some(0.8));
        assert_eq!(d.rt, Some(0.6));
    }
}
