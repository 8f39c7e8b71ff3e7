//! Lesson end: the students still unmarked are finalised, and the lesson report (学情报告,
//! first version) is made.
//!
//! Rules: a student on the lesson's roster with no status at the end is `sick` when
//! approved sick leave (病假) covers the lesson's start, `leave` for any other approved leave,
//! otherwise `absent`. A status already recorded
//! (card, face, teacher) is never changed here. Exactly one status per student results.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ketang_sync::{
    AttendanceStatus, DayHealth, HealthWindow, LeaveKind, LessonControl, LessonReport, Mark,
    ReportAttendance, ReportHealth,
};

use super::timetable::Slot;

/// Marks for the unmarked students of `roll`, given who is on approved leave and of which
/// kind: sick leave (病假) ends the lesson as `sick`, any other leave as `leave`, no leave
/// as `absent`.
pub(crate) fn marks(
    roll: &[(String, Option<AttendanceStatus>)],
    on_leave: &HashMap<String, LeaveKind>,
) -> Vec<Mark> {
    roll.iter()
        .filter(|(_, s)| s.is_none())
        .map(|(id, _)| Mark {
            student_id: id.clone(),
            status: match on_leave.get(id) {
                Some(LeaveKind::Sick) => AttendanceStatus::Sick,
                Some(_) => AttendanceStatus::Leave,
                None => AttendanceStatus::Absent,
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
) -> LessonReport {
    let finalised: HashMap<&str, AttendanceStatus> = marks
        .iter()
        .map(|m| (m.student_id.as_str(), m.status))
        .collect();
    let mut attendance = ReportAttendance {
        roster: count(roll.len()),
        ..ReportAttendance::default()
    };
    for (id, status) in roll {
        // Unmarked remains only in a cancelled lesson (nobody is finalised then).
        let a = &mut attendance;
        let (n, ids) = match status.or_else(|| finalised.get(id.as_str()).copied()) {
            None => (&mut a.unmarked, None),
            Some(AttendanceStatus::Present) => (&mut a.present, None),
            Some(AttendanceStatus::Late) => (&mut a.late, Some(&mut a.late_ids)),
            Some(AttendanceStatus::Absent) => (&mut a.absent, Some(&mut a.absent_ids)),
            Some(AttendanceStatus::Leave) => (&mut a.leave, Some(&mut a.leave_ids)),
            Some(AttendanceStatus::Sick) => (&mut a.sick, Some(&mut a.sick_ids)),
        };
        *n += 1;
        if let Some(ids) = ids {
            ids.push(id.clone());
        }
    }
    LessonReport {
        lesson_id: slot.id(),
        date: slot.date,
        period: slot.period.period,
        subject: slot.period.subject.clone(),
        teacher: slot.period.teacher.clone(),
        roster_id: slot.period.roster_id.clone(),
        starts_at: slot.starts_at.fixed_offset(),
        ends_at: slot.ends_at.fixed_offset(),
        attendance,
        health: health_summary(roll, health),
        cancelled: control.cancelled,
        started_early_at: control.started_at,
        ended_early_at: control.ended_at,
        revision,
        behaviour: None,
        talk_time: None,
        head_count: None,
        whiteboard_on_s: None,
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Per check window (morning, noon, ...): how many of the roster were checked, who had a
/// fever, who had symptoms entered, and who was not checked.
fn health_summary(
    roll: &[(String, Option<AttendanceStatus>)],
    health: &[DayHealth],
) -> BTreeMap<HealthWindow, ReportHealth> {
    let mut windows: BTreeMap<HealthWindow, Vec<&DayHealth>> = BTreeMap::new();
    for h in health {
        windows.entry(h.window).or_default().push(h);
    }
    windows
        .into_iter()
        .map(|(w, checks)| {
            let checked: BTreeSet<&str> = checks.iter().map(|h| h.student_id.as_str()).collect();
            let fever_ids: Vec<String> = checks
                .iter()
                .filter(|h| h.fever)
                .map(|h| h.student_id.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let mut symptoms: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for h in checks.iter().filter(|h| !h.symptoms.is_empty()) {
                symptoms
                    .entry(h.student_id.clone())
                    .or_default()
                    .extend(h.symptoms.iter().cloned());
            }
            let unchecked_ids = roll
                .iter()
                .filter(|(id, _)| !checked.contains(id.as_str()))
                .map(|(id, _)| id.clone())
                .collect();
            let summary = ReportHealth {
                checked: count(checked.len()),
                fever: count(fever_ids.len()),
                fever_ids,
                symptoms,
                unchecked_ids,
            };
            (w, summary)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::{DateTime, NaiveTime};
    use chrono_tz::Asia::Shanghai;
    use ketang_sync::Period;
    use proptest::prelude::*;
    use serde_json::json;

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
            change: None,
        }
    }

    #[test]
    fn unmarked_students_become_absent_or_on_leave_and_recorded_ones_stay() {
        let roll = vec![
            ("S1".to_owned(), Some(AttendanceStatus::Present)),
            ("S2".to_owned(), None),
            ("S3".to_owned(), None),
            ("S4".to_owned(), Some(AttendanceStatus::Late)),
            ("S5".to_owned(), None),
        ];
        let leave: HashMap<String, LeaveKind> = [
            ("S3".to_owned(), LeaveKind::Personal),
            ("S5".to_owned(), LeaveKind::Sick),
        ]
        .into();
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
                Mark {
                    student_id: "S5".into(),
                    status: AttendanceStatus::Sick
                },
            ]
        );
        let r = serde_json::to_value(report(
            &slot(),
            &roll,
            &m,
            &[],
            &LessonControl::default(),
            1,
        ))
        .unwrap();
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
            let leave: HashMap<String, LeaveKind> = roll.iter().zip(&leave_mask).filter(|(_, l)| **l).map(|((id, _), _)| (id.clone(), LeaveKind::Other)).collect();
            let m = marks(&roll, &leave);
            // Marks only for the unmarked, one each.
            let marked: HashSet<&str> = m.iter().map(|x| x.student_id.as_str()).collect();
            prop_assert_eq!(marked.len(), m.len());
            for (id, s) in &roll {
                prop_assert_eq!(s.is_none(), marked.contains(id.as_str()));
            }
            // The report accounts for every student exactly once.
            let r = serde_json::to_value(report(&slot(), &roll, &m, &[], &LessonControl::default(), 1)).unwrap();
            let a = &r["attendance"];
            let total: u64 = ["present", "late", "absent", "leave", "sick"].iter().map(|k| a[*k].as_u64().unwrap()).sum();
            prop_assert_eq!(total, roll.len() as u64);
        }
    }
}
