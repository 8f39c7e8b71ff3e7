//! The classroom actor's decisions, tested without HTTP or MQTT: a real SQLite store in a
//! temporary folder, the bundled demo school, simulated hardware and a simulated clock.
//! Each test drives the actor the way the daemon does (hardware events, staff actions,
//! the tick) and checks what it stored, queued for the cloud and told the board.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::DateTime;
use ketang_drivers::Uid;
use ketang_sync::{Identity, StoreHandle};
use ketang_web::{Action, Actor, BoardEvent, Role};
use tokio::sync::{broadcast, mpsc};

use crate::clock::Clock;
use crate::config::HardwareConfig;
use crate::devices::{Hardware, HwEvent};
use crate::engine::timetable::Timetable;

use super::{ActionError, Classroom, Counters, StoreHealth, Wiring};

/// A student of the demo school and their card.
const STUDENT: (&str, &str) = ("2025070301", "040A9E95");
/// T01's staff card.
const STAFF_CARD: &str = "0E7A11C3";

struct Room {
    room: Classroom,
    store: StoreHandle,
    clock: Clock,
    events: broadcast::Receiver<BoardEvent>,
    _hw_events: mpsc::Receiver<HwEvent>,
    _dir: tempfile::TempDir,
}

/// The demo class on Monday 2026-11-23 at `at` (local time, +08:00).
async fn room(at: &str) -> Room {
    room_with(at, |_| {}).await
}

/// A room whose demo config `change` adjusts first.
async fn room_with(at: &str, change: impl FnOnce(&mut crate::config::Config)) -> Room {
    let dir = tempfile::tempdir().unwrap();
    let (class_name, seed) = crate::demo::snapshot().unwrap();
    let mut cfg = crate::demo::config(
        class_name.clone(),
        "127.0.0.1:0".parse().unwrap(),
        dir.path().to_owned(),
        None,
        dir.path().join("no-models"),
    );
    change(&mut cfg);
    let identity = Identity {
        school_id: "demo-school".into(),
        device_id: "kt-test".into(),
        classroom_id: "g7-c3".into(),
    };
    let (store, _) = StoreHandle::open(dir.path(), identity.clone()).unwrap();
    store.replace_school(seed).await.unwrap();
    let start = DateTime::parse_from_rfc3339(&format!("2026-11-23T{at}+08:00")).unwrap();
    let clock = Clock::starting_at(cfg.school.timezone, start);
    let timetable = Timetable {
        periods: store.timetable().await.unwrap(),
        calendar: crate::engine::calendar::Calendars::new(cfg.school.calendar.clone()),
        controls: HashMap::new(),
    };
    let (tx, hw_events) = mpsc::channel(64);
    let hw = Arc::new(Hardware::new(&HardwareConfig::all_simulated(), tx));
    let (events_tx, events) = broadcast::channel(64);
    let room = Classroom::new(Wiring {
        store: store.clone(),
        school: cfg.school.clone(),
        clock: clock.clone(),
        hw,
        timetable: Arc::new(RwLock::new(timetable)),
        counters: Arc::new(Counters::default()),
        store_health: Arc::new(StoreHealth::default()),
        since: start - chrono::Days::new(1),
        unlock: Arc::new(Mutex::new(None)),
        events: events_tx,
        whiteboard: None,
        sign: None,
        class_name,
        inference: None,
        face_key: None,
        urgent: None,
        identity,
        alarm_path: Default::default(),
    });
    Room {
        room,
        store,
        clock,
        events,
        _hw_events: hw_events,
        _dir: dir,
    }
}

impl Room {
    async fn tap(&mut self, uid: &str) {
        let uid = Uid::from_hex(uid).unwrap();
        self.room
            .handle(HwEvent::CardTap {
                reader: "door".into(),
                uid,
            })
            .await;
    }

    async fn pending(&self, stream: &str) -> u64 {
        let p = self.store.outbox_pending().await.unwrap();
        p.get(stream).copied().unwrap_or(0)
    }

    /// The `tap` events the board was sent since the last call.
    fn taps(&mut self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            if e.kind() == "tap" {
                out.push(serde_json::from_str(&e.to_json(false)).unwrap());
            }
        }
        out
    }

    fn at(&self, hhmm: &str) {
        let t = DateTime::parse_from_rfc3339(&format!("2026-11-23T{hhmm}:00+08:00")).unwrap();
        self.clock.set(t);
    }
}

fn teacher() -> Actor {
    Actor {
        id: "T01".into(),
        name: "王丽华".into(),
        role: Role::Teacher,
    }
}

#[tokio::test]
async fn a_card_in_an_open_lesson_checks_in_once_and_a_repeat_changes_nothing() {
    let mut r = room("07:55:00").await;
    r.tap(STUDENT.1).await;
    assert_eq!(r.pending("attendance").await, 1);
    let taps = r.taps();
    assert_eq!(taps.len(), 1, "{taps:?}");
    assert_eq!(taps[0]["outcome"], "checked_in");
    assert_eq!(taps[0]["status"], "present");
    r.tap(STUDENT.1).await;
    assert_eq!(r.pending("attendance").await, 1, "a repeat queues nothing");
    assert_eq!(r.taps()[0]["outcome"], "repeat");
    let roll = r
        .store
        .lesson_roll("2026-11-23/1".into(), "g7-c3".into())
        .await
        .unwrap();
    let mine = roll.iter().find(|(s, _)| s == STUDENT.0).unwrap();
    assert_eq!(mine.1, Some(ketang_sync::AttendanceStatus::Present));
}

#[tokio::test]
async fn a_card_after_the_grace_period_is_late() {
    let mut r = room("08:06:00").await;
    r.tap(STUDENT.1).await;
    let taps = r.taps();
    assert_eq!(taps[0]["status"], "late", "{taps:?}");
}

#[tokio::test]
async fn unknown_and_staff_cards_queue_nothing_for_the_cloud() {
    let mut r = room("07:55:00").await;
    r.tap("DEADBEEF").await;
    assert_eq!(r.taps()[0]["outcome"], "unknown_card");
    r.tap(STAFF_CARD).await;
    assert!(r.taps().is_empty(), "a staff card is not a check-in");
    assert!(r.store.outbox_pending().await.unwrap().is_empty());
    assert!(
        r.room.unlock.lock().unwrap().is_some(),
        "teacher mode is offered to the board's screen"
    );
}

#[tokio::test]
async fn a_card_between_lessons_is_logged_but_checks_nobody_in() {
    let mut r = room("12:30:00").await;
    r.tap(STUDENT.1).await;
    assert_eq!(r.taps()[0]["outcome"], "no_lesson");
    assert_eq!(r.pending("attendance").await, 0);
}

#[tokio::test]
async fn a_lesson_that_ends_marks_the_unmarked_absent_with_its_report_in_the_same_step() {
    let mut r = room("07:55:00").await;
    r.tap(STUDENT.1).await;
    r.at("08:50");
    assert!(r.room.finalise_due().await, "period 1 ended at 08:45");
    // 39 absent + the one check-in, and one report.
    assert_eq!(r.pending("attendance").await, 40);
    assert_eq!(r.pending("lesson_report").await, 1);
    // Finalising again changes nothing.
    assert!(!r.room.finalise_due().await);
    assert_eq!(r.pending("attendance").await, 40);
}

#[tokio::test]
async fn a_teacher_cannot_set_attendance_for_a_later_day_or_an_unknown_student() {
    let mut r = room("07:55:00").await;
    let later = r
        .room
        .act(
            teacher(),
            Action::SetAttendance {
                lesson_id: "2026-11-24/1".into(),
                student_id: STUDENT.0.into(),
                status: ketang_sync::AttendanceStatus::Sick,
            },
        )
        .await;
    assert!(matches!(later, Err(ActionError::Conflict(_))), "{later:?}");
    let stranger = r
        .room
        .act(
            teacher(),
            Action::SetAttendance {
                lesson_id: "2026-11-23/1".into(),
                student_id: "nobody".into(),
                status: ketang_sync::AttendanceStatus::Sick,
            },
        )
        .await;
    assert!(
        matches!(stranger, Err(ActionError::NotFound(_))),
        "{stranger:?}"
    );
    assert!(r.store.outbox_pending().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_teacher_override_wins_over_a_card_and_is_queued_with_the_previous_status() {
    let mut r = room("07:55:00").await;
    r.tap(STUDENT.1).await;
    let answer = r
        .room
        .act(
            teacher(),
            Action::SetAttendance {
                lesson_id: "2026-11-23/1".into(),
                student_id: STUDENT.0.into(),
                status: ketang_sync::AttendanceStatus::Leave,
            },
        )
        .await
        .unwrap();
    let answer = serde_json::to_value(answer).unwrap();
    assert_eq!(answer["previous"], "present", "{answer}");
    assert_eq!(r.pending("attendance").await, 2);
    let queued = r.store.outbox_peek(10).await.unwrap();
    let last = queued.last().unwrap();
    assert_eq!(last.body["source"], "manual");
    assert_eq!(last.body["recorded_by"], "T01");
    assert_eq!(last.body["previous"], "present");
}

#[tokio::test]
async fn an_alarm_sounds_the_siren_and_goes_first_and_clearing_it_silences_it() {
    let mut r = room("09:10:00").await;
    r.room
        .handle(HwEvent::Button {
            name: "alarm".into(),
        })
        .await;
    assert_eq!(r.pending("alarm").await, 1);
    let active = r.store.active_alarms().await.unwrap();
    assert_eq!(active.len(), 1);
    let siren = |room: &Room| {
        room.room
            .hw
            .statuses()
            .into_iter()
            .find(|d| d.kind == "siren")
            .and_then(|d| d.detail)
    };
    assert_eq!(siren(&r).as_deref(), Some("on"));
    let cleared = r
        .room
        .act(
            teacher(),
            Action::ClearAlarm {
                alarm_id: active[0].id.clone(),
            },
        )
        .await
        .unwrap();
    let cleared = serde_json::to_value(cleared).unwrap();
    assert_eq!(cleared["siren"], false, "{cleared}");
    assert_eq!(siren(&r).as_deref(), Some("off"));
    assert_eq!(r.pending("alarm").await, 2);
}

#[tokio::test]
async fn a_recognised_face_checks_in_once_and_a_stranger_to_the_roster_does_not() {
    let mut r = room("07:56:00").await;
    let face = |id: &str| HwEvent::FaceMatch {
        student_id: id.to_owned(),
        similarity: 0.7321,
    };
    r.room.handle(face(STUDENT.0)).await;
    let taps = r.taps();
    assert_eq!(taps.len(), 1, "{taps:?}");
    assert_eq!(taps[0]["source"], "face");
    let queued = r.store.outbox_peek(10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].body["source"], "face");
    assert_eq!(queued[0].body["confidence"], 0.732);
    assert_eq!(queued[0].body["reader"], "camera");
    // Seen again: nothing new, and the board is not told again.
    r.room.handle(face(STUDENT.0)).await;
    assert!(r.taps().is_empty());
    r.room.handle(face("not-on-this-roster")).await;
    assert!(r.taps().is_empty());
    assert_eq!(r.pending("attendance").await, 1);
}

/// Follow-ups after the noon check too (#18): a student seen in the morning but not since
/// noon (no noon check, no afternoon check-in) is followed up with the noon reason; one
/// checked in to the afternoon lesson is not; nobody is followed up twice in a day.
#[tokio::test]
async fn the_noon_check_opens_follow_ups_for_students_gone_since_the_morning() {
    const OTHER: (&str, &str) = ("2025070302", "0458CBAA");
    let mut r = room("07:55:00").await;
    r.tap(STUDENT.1).await;
    r.tap(OTHER.1).await;
    r.at("08:31");
    assert!(r.room.followups_due().await);
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let morning = r.store.followups(date).await.unwrap();
    assert_eq!(morning.len(), 38, "the 38 unseen in the morning");
    // After lunch only OTHER checks in, to the 14:00 lesson.
    r.at("13:55");
    r.tap(OTHER.1).await;
    r.at("14:31");
    assert!(r.room.followups_due().await);
    let all = r.store.followups(date).await.unwrap();
    assert_eq!(
        all.len(),
        39,
        "one more: the student gone since the morning"
    );
    let noon: Vec<_> = all
        .iter()
        .filter(|f| f.reason == "absent_at_noon_check")
        .collect();
    assert_eq!(noon.len(), 1);
    assert_eq!(noon[0].student_id, STUDENT.0);
    // Once a day per window.
    assert!(!r.room.followups_due().await);
    assert_eq!(r.pending("followup").await, 39);
}

/// 晚检 (#18): a boarding school's evening check opens follow-ups for students not seen since
/// it opened; a student measured in it is not followed up; without the window, nothing.
#[tokio::test]
async fn the_evening_check_of_a_boarding_school_opens_its_own_follow_ups() {
    const OTHER: (&str, &str) = ("2025070302", "0458CBAA");
    let t = |h, m| chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap();
    let mut r = room_with("07:55:00", |c| {
        c.school.evening_check = Some((t(18, 30), t(20, 30)));
    })
    .await;
    r.tap(STUDENT.1).await;
    r.tap(OTHER.1).await;
    r.at("08:31");
    assert!(r.room.followups_due().await);
    r.at("13:55");
    r.tap(STUDENT.1).await;
    r.tap(OTHER.1).await;
    r.at("14:31");
    assert!(r.room.followups_due().await);
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    assert_eq!(r.store.followups(date).await.unwrap().len(), 38);
    // In the dormitory at 19:00 only OTHER is measured (reading, then the card).
    r.at("19:00");
    r.room
        .handle(HwEvent::Temperature {
            sensor: "thermometer".into(),
            celsius: 36.6,
        })
        .await;
    r.tap(OTHER.1).await;
    r.at("20:31");
    assert!(r.room.followups_due().await);
    let all = r.store.followups(date).await.unwrap();
    let evening: Vec<_> = all
        .iter()
        .filter(|f| f.reason == "absent_at_evening_check")
        .collect();
    assert_eq!(evening.len(), 1, "{all:?}");
    assert_eq!(evening[0].student_id, STUDENT.0);
    let health = r.store.day_health(date, "g7-c3".into()).await.unwrap();
    assert!(
        health
            .iter()
            .any(|h| h.student_id == OTHER.0 && h.window == ketang_sync::HealthWindow::Evening),
        "{health:?}"
    );
    assert!(!r.room.followups_due().await, "once a day");
}

/// A fever at the door puts the student on the day's follow-up list at once (#18), once.
#[tokio::test]
async fn a_fever_at_the_check_opens_a_follow_up_for_that_student_once() {
    let mut r = room("07:30:00").await;
    for celsius in [38.4, 38.6] {
        r.room
            .handle(HwEvent::Temperature {
                sensor: "thermometer".into(),
                celsius,
            })
            .await;
        r.tap(STUDENT.1).await;
        r.at("07:31");
    }
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let list = r.store.followups(date).await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        (list[0].student_id.as_str(), list[0].reason.as_str()),
        (STUDENT.0, "fever_at_check")
    );
    assert_eq!(r.pending("followup").await, 1);
    // A normal reading opens nothing.
    r.room
        .handle(HwEvent::Temperature {
            sensor: "thermometer".into(),
            celsius: 36.5,
        })
        .await;
    r.tap("0458CBAA").await;
    assert_eq!(r.store.followups(date).await.unwrap().len(), 1);
}
