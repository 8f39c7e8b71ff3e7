#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

pub mod broker;
#[cfg(feature = "mqtt-integration-tests")]
pub mod worker;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime};
use ketang_sync::*;

/// A latency bound the board promises (an alarm within 2 s, the first record within 3 s
/// of the broker's return), stretched by `KETANG_TEST_SLACK` (a factor; 1 unless set).
/// `scripts/test-arm64` sets it: there the tests run under qemu-user at nice 19 beside
/// the update test's QEMU, which proves correctness, never speed (docs/benchmarks.md).
pub fn bound(d: std::time::Duration) -> std::time::Duration {
    let slack = std::env::var("KETANG_TEST_SLACK")
        .ok()
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|f| (1.0..=20.0).contains(f))
                .unwrap_or_else(|| panic!("KETANG_TEST_SLACK={v:?}: a factor from 1 to 20"))
        })
        .unwrap_or(1.0);
    d.mul_f64(slack)
}

pub fn identity() -> Identity {
    Identity {
        school_id: "hf-0042".into(),
        device_id: "kt-test-1".into(),
        classroom_id: "g7-c3".into(),
    }
}

pub fn at(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

pub fn t(s: &str) -> NaiveTime {
    NaiveTime::parse_from_str(s, "%H:%M").unwrap()
}

pub fn school() -> SchoolSnapshot {
    let students = (1..=3)
        .map(|i| StudentRow {
            id: format!("S{i:03}"),
            name: format!("学生{i}"),
            class_id: "g7-3".into(),
            gender: None,
            cards: vec![format!("04A1B2C{i}")],
            face_consent: None,
        })
        .collect::<Vec<_>>();
    SchoolSnapshot {
        rosters: vec![Roster {
            id: "g7-3".into(),
            name: "七年级(3)班".into(),
            kind: "class".into(),
            members: students.iter().map(|s| s.id.clone()).collect(),
        }],
        students,
        periods: vec![Period {
            weekday: 1,
            period: 1,
            starts: t("08:00"),
            ends: t("08:45"),
            subject: "语文".into(),
            teacher: "王老师".into(),
            room: None,
            roster_id: "g7-3".into(),
        }],
        notices: vec![],
        staff: vec![StaffRow {
            id: "T01".into(),
            name: "王老师".into(),
            pin_hash: None,
            cards: vec!["0DEADBEEF0".into()],
        }],
    }
}

pub fn lesson() -> LessonRow {
    LessonRow {
        id: "2026-11-23/1".into(),
        date: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
        period: 1,
        subject: "语文".into(),
        teacher: "王老师".into(),
        roster_id: "g7-3".into(),
        starts_at: at("2026-11-23T08:00:00+08:00"),
        ends_at: at("2026-11-23T08:45:00+08:00"),
        state: ketang_sync::LessonState::Open,
    }
}

/// A lesson report of [`lesson`] with nothing in it but its `revision`.
pub fn report(revision: u32) -> ketang_sync::LessonReport {
    let l = lesson();
    ketang_sync::LessonReport {
        lesson_id: l.id,
        date: l.date,
        period: l.period,
        subject: l.subject,
        teacher: "王老师".into(),
        roster_id: l.roster_id,
        starts_at: l.starts_at,
        ends_at: l.ends_at,
        attendance: ketang_sync::ReportAttendance::default(),
        health: std::collections::BTreeMap::new(),
        cancelled: false,
        started_early_at: None,
        ended_early_at: None,
        revision,
        behaviour: None,
        talk_time: None,
        head_count: None,
        whiteboard_on_s: None,
    }
}

/// A lesson's end with no behaviour aggregates, clock synced.
pub fn end(
    lesson: LessonRow,
    marks: Vec<ketang_sync::Mark>,
    report: ketang_sync::LessonReport,
    at: chrono::DateTime<chrono::FixedOffset>,
) -> ketang_sync::LessonEnd {
    ketang_sync::LessonEnd {
        lesson,
        marks,
        report,
        behaviour: None,
        timeline: None,
        at,
        clock_synced: true,
    }
}

pub fn check_in(student: &str, when: &str) -> CheckIn {
    CheckIn {
        lesson: lesson(),
        student_id: student.into(),
        status: AttendanceStatus::Present,
        source: AttendanceSource::Card,
        recorded_by: None,
        tap: None,
        outbox: OutboxRecord {
            stream: Stream::Attendance,
            captured_at: at(when),
            clock_synced: true,
            body: serde_json::json!({"student_id": student, "status": "present"}),
        },
    }
}
