//! Lesson end: the students still unmarked are finalised, and the lesson report (学情报告,
//! first version) is made.
//!
//! Rules: a student on the lesson's roster with no status at the end is `leave` when
//! approved leave covers the lesson's start, otherwise `absent`. A status already recorded
//! (card, face, teacher) is never changed here. Exactly one status per student results.

use std::collections::{BTreeMap, HashSet};

use ketang_sync::{AttendanceStatus, DayHealth, LessonControl, Mark};
use serde_json::{Value, json};

use super::timetable::Slot;

/// Marks for the unmarked students of `roll`, given who is on approved leave.
pub(crate) fn marks(
    roll: &[(String, Option<AttendanceStatus>)],
    on_leave: &HashSet<String>,
) -> Vec<Mark> {
    roll.iter()
        .filter(|(_, s)| s.is_none())
        .map(|(id, _)| Mark {
            student_id: id.clone(),
            status: if on_leave.contains(id) {
                AttendanceStatus::Leave
            } else {
                AttendanceStatus::Absent
            },
        })
        .collect()
}

/// The report of a finalised lesson: counts and lists by status, the day's health checks
/// of the roster, what the teacher did to the lesson, and its revision (a correction after
/// the end makes a new one). The classroom's observations add the inference pipelines'
/// class-level figures (head count, behaviour, talk time) when the camera or microphone ran.
pub(crate) fn report(
    slot: &Slot,
    roll: &[(String, Option<AttendanceStatus>)],
    marks: &[Mark],
    health: &[DayHealth],
    control: &LessonControl,
    revision: u32,
) -> Value {
    let mut by: BTreeMap<&'static str, Vec<&str>> = BTreeMap::new();
    let finalised: std::collections::HashMap<&str, AttendanceStatus> = marks
        .iter()
        .map(|m| (m.student_id.as_str(), m.status))
        .collect();
    for (id, status) in roll {
        // Unmarked remains only in a cancelled lesson (nobody is finalised then).
        let status = status
            .or_else(|| finalised.get(id.as_str()).copied())
            .map_or("unmarked", AttendanceStatus::as_str);
        by.entry(status).or_default().push(id);
    }
    let count = |s: &str| by.get(s).map_or(0, Vec::len);
    json!({
        "lesson_id": slot.id(),
        "date": slot.date,
        "period": slot.period.period,
        "subject": slot.period.subject,
        "teacher": slot.period.teacher,
        "roster_id": slot.period.roster_id,
        "starts_at": slot.starts_at.to_rfc3339(),
        "ends_at": slot.ends_at.to_rfc3339(),
        "attendance": {
            "roster": roll.len(),
            "present": count("present"),
            "late": count("late"),
            "absent": count("absent"),
            "leave": count("leave"),
            "sick": count("sick"),
            "unmarked": count("unmarked"),
            "late_ids": by.get("late").cloned().unwrap_or_default(),
            "absent_ids": by.get("absent").cloned().unwrap_or_default(),
            "leave_ids": by.get("leave").cloned().unwrap_or_default(),
            "sick_ids": by.get("sick").cloned().unwrap_or_default(),
        },
        "health": health_summary(roll, health),
        "cancelled": control.cancelled,
        "started_early_at": control.started_at.map(|t| t.to_rfc3339()),
        "ended_early_at": control.ended_at.map(|t| t.to_rfc3339()),
        "revision": revision,
        "behaviour": null,
        "talk_time": null,
    })
}

/// Per check window (morning, noon, ...): how many of the roster were checked, who had a
/// fever, who had symptoms entered, and who was not checked.
fn health_summary(roll: &[(String, Option<AttendanceStatus>)], health: &[DayHealth]) -> Value {
    let mut windows: BTreeMap<&str, Vec<&DayHealth>> = BTreeMap::new();
    for h in health {
        windows.entry(h.window.as_str()).or_default().push(h);
    }
    let out: serde_json::Map<String, Value> = windows
        .into_iter()
        .map(|(w, checks)| {
            let checked: std::collections::BTreeSet<&str> =
                checks.iter().map(|h| h.student_id.as_str()).collect();
            let fever: std::collections::BTreeSet<&str> = checks
                .iter()
                .filter(|h| h.fever)
                .map(|h| h.student_id.as_str())
                .collect();
            let mut symptoms: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for h in checks.iter().filter(|h| !h.symptoms.is_empty()) {
                symptoms
                    .entry(h.student_id.as_str())
                    .or_default()
                    .extend(h.symptoms.iter().map(String::as_str));
            }
            let unchecked: Vec<&str> = roll
                .iter()
                .map(|(id, _)| id.as_str())
                .filter(|id| !checked.contains(id))
                .collect();
            (
                w.to_owned(),
                json!({
                    "checked": checked.len(),
                    "fever": fever.len(),
                    "fever_ids": fever,
                    "symptoms": symptoms,
                    "unchecked_ids": unchecked,
                }),
            )
        })
        .collect();
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveTime};
    use chrono_tz::Asia::Shanghai;
    use ketang_sync::Period;
    use proptest::prelude::*;

    use super::*;

    fn slot() -> Slot {
        let t = |s| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        let at = |s| {
            DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&Shanghai)
        };
        Slot {
            date: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            period: Period {
                weekday: 1,
                period: 1,
                starts: t("08:00"),
                ends: t("08:45"),
                subject: "语文".into(),
                teacher: "王丽华".into(),
                room: None,
                roster_id: "g7-c3".into(),
            },
            starts_at: at("2026-11-23T08:00:00+08:00"),
            ends_at: at("2026-11-23T08:45:00+08:00"),
        }
    }

    #[test]
    fn unmarked_students_become_absent_or_on_leave_and_recorded_ones_stay() {
        let roll = vec![
            ("S1".to_owned(), Some(AttendanceStatus::Present)),
            ("S2".to_owned(), None),
            ("S3".to_owned(), None),
            ("S4".to_owned(), Some(AttendanceStatus::Late)),
        ];
        let leave: HashSet<String> = ["S3".to_owned()].into();
        let m = marks(&roll, &leave);
        assert_eq!(
            m,
            vec![
                Mark {
                    student_id: "S2".into(),
                    status: AttendanceStatus::Absent
                },
                Mark {
                    student_id: "S3".into(),
                    status: AttendanceStatus::Leave
                },
            ]
        );
        let r = report(&slot(), &roll, &m, &[], &LessonControl::default(), 1);
        assert_eq!(r["attendance"]["present"], 1);
        assert_eq!(r["attendance"]["late_ids"], json!(["S4"]));
        assert_eq!(r["attendance"]["absent_ids"], json!(["S2"]));
        assert_eq!(r["attendance"]["leave"], 1);
        assert_eq!(r["lesson_id"], "2026-11-23/1");
        assert!(r["talk_time"].is_null());
    }

    fn status() -> impl Strategy<Value = Option<AttendanceStatus>> {
        prop_oneof![
            Just(None),
            Just(Some(AttendanceStatus::Present)),
            Just(Some(AttendanceStatus::Late)),
            Just(Some(AttendanceStatus::Absent)),
            Just(Some(AttendanceStatus::Leave)),
            Just(Some(AttendanceStatus::Sick)),
        ]
    }

    proptest! {
        #[test]
        fn every_student_ends_with_exactly_one_status_and_recorded_ones_never_change(
            roll in prop::collection::vec(status(), 0..60),
            leave_mask in prop::collection::vec(any::<bool>(), 60),
        ) {
            let roll: Vec<(String, Option<AttendanceStatus>)> =
                roll.into_iter().enumerate().map(|(i, s)| (format!("S{i:02}"), s)).collect();
            let leave: HashSet<String> = roll.iter().zip(&leave_mask).filter(|(_, l)| **l).map(|((id, _), _)| id.clone()).collect();
            let m = marks(&roll, &leave);
            // Marks only for the unmarked, one each.
            let marked: HashSet<&str> = m.iter().map(|x| x.student_id.as_str()).collect();
            prop_assert_eq!(marked.len(), m.len());
            for (id, s) in &roll {
                prop_assert_eq!(s.is_none(), marked.contains(id.as_str()));
            }
            // The report accounts for every student exactly once.
            let r = report(&slot(), &roll, &m, &[], &LessonControl::default(), 1);
            let a = &r["attendance"];
            let total: u64 = ["present", "late", "absent", "leave", "sick"].iter().map(|k| a[*k].as_u64().unwrap()).sum();
            prop_assert_eq!(total, roll.len() as u64);
        }
    }
}
