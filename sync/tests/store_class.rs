#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Teacher actions on the real store: overrides, follow-ups, alarms, notices, staff.

mod common;

use common::*;
use ketang_sync::*;
use proptest::prelude::*;

fn audit(action: &str) -> Audit {
    Audit {
        actor: "T01".into(),
        role: "teacher".into(),
        action: action.into(),
        target: "2026-11-23/1".into(),
        detail: serde_json::json!({}),
        at: at("2026-11-23T08:10:00+08:00"),
        clock_synced: true,
    }
}

fn keep(days: u64) -> Retention {
    Retention {
        taps_days: days,
        records_days: days,
    }
}

fn d(s: &str) -> chrono::NaiveDate {
    s.parse().unwrap()
}

fn record(stream: Stream) -> OutboxRecord {
    OutboxRecord {
        stream,
        captured_at: at("2026-11-23T08:10:00+08:00"),
        clock_synced: true,
        body: serde_json::json!({}),
    }
}

const STATUSES: [AttendanceStatus; 5] = [
    AttendanceStatus::Present,
    AttendanceStatus::Late,
    AttendanceStatus::Absent,
    AttendanceStatus::Leave,
    AttendanceStatus::Sick,
];

#[derive(Debug, Clone)]
enum Op {
    Tap(usize),
    Override(usize, usize),
    Finalise,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..3).prop_map(Op::Tap),
        (0usize..3, 0usize..5).prop_map(|(s, st)| Op::Override(s, st)),
        Just(Op::Finalise),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Any sequence of taps, teacher overrides and lesson ends (then a final end) leaves
    /// exactly one status per student: the teacher's last word, else the first check-in,
    /// else what the end decided; and every change has its attendance record.
    #[test]
    fn exactly_one_final_status_per_student(ops in prop::collection::vec(op(), 0..25)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let dir = tempfile::tempdir().unwrap();
            let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
            store.replace_school(school()).await.unwrap();
            let ids = ["S001", "S002", "S003"];
            let mut model: [Option<AttendanceStatus>; 3] = [None; 3];
            let mut records = 0u64;
            let mut finalised = false;
            let mut ops = ops;
            ops.push(Op::Finalise);
            for op in ops {
                match op {
                    Op::Tap(s) => {
                        if let CheckInOutcome::Recorded { .. } =
                            store.check_in(check_in(ids[s], "2026-11-23T07:58:00+08:00")).await.unwrap()
                        {
                            assert!(model[s].is_none(), "a second check-in was recorded");
                            model[s] = Some(AttendanceStatus::Present);
                            records += 1;
                        }
                    }
                    Op::Override(s, st) => {
                        let report = finalised.then(|| common::report(2));
                        let (prev, _) = store
                            .override_attendance(lesson(), ids[s].into(), STATUSES[st], audit("attendance.override"), record(Stream::Attendance), report)
                            .await
                            .unwrap();
                        assert_eq!(prev, model[s]);
                        model[s] = Some(STATUSES[st]);
                        records += 1;
                    }
                    Op::Finalise => {
                        let roll = store.lesson_roll(lesson().id, "g7-3".into()).await.unwrap();
                        let marks: Vec<Mark> = roll
                            .iter()
                            .filter(|(_, s)| s.is_none())
                            .map(|(id, _)| Mark { student_id: id.clone(), status: AttendanceStatus::Absent })
                            .collect();
                        let n = marks.len() as u64;
                        let seq = store
                            .finalise_lesson(end(lesson(), marks, report(1), at("2026-11-23T08:45:00+08:00")))
                            .await
                            .unwrap();
                        if seq.is_some() {
                            assert!(!finalised);
                            finalised = true;
                            records += n;
                            for m in &mut model {
                                m.get_or_insert(AttendanceStatus::Absent);
                            }
                        }
                    }
                }
            }
            let roll = store.lesson_roll(lesson().id, "g7-3".into()).await.unwrap();
            let got: Vec<Option<AttendanceStatus>> = roll.into_iter().map(|(_, s)| s).collect();
            assert_eq!(got, model.to_vec());
            assert!(got.iter().all(Option::is_some));
            let pending = store.outbox_pending().await.unwrap();
            assert_eq!(pending.get("attendance").copied().unwrap_or(0), records);
        });
    }
}

#[tokio::test]
async fn a_follow_up_resolves_once_with_its_record_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    store.replace_school(school()).await.unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    store
        .open_followups(
            date,
            vec!["S002".into()],
            "absent_at_morning_check".into(),
            at("2026-11-23T08:30:00+08:00"),
            true,
        )
        .await
        .unwrap();
    let id = "2026-11-23/S002".to_owned();
    let r = store
        .resolve_followup(
            id.clone(),
            "病假".into(),
            true,
            audit("followup.resolve"),
            record(Stream::Followup),
        )
        .await
        .unwrap();
    assert!(matches!(r, Some(Ok(_))));
    let again = store
        .resolve_followup(
            id.clone(),
            "x".into(),
            false,
            audit("followup.resolve"),
            record(Stream::Followup),
        )
        .await
        .unwrap();
    assert_eq!(again, Some(Err("T01".into())));
    assert_eq!(
        store
            .resolve_followup(
                "nope".into(),
                "x".into(),
                false,
                audit("x"),
                record(Stream::Followup)
            )
            .await
            .unwrap(),
        None
    );
    let list = store.followups(date).await.unwrap();
    assert_eq!(list[0].state, "resolved");
    assert_eq!(list[0].contacted_guardian, Some(true));
    assert_eq!(list[0].name, "学生2");
    assert_eq!(store.outbox_pending().await.unwrap()["followup"], 2);
    let tail = store.audit_tail(10).await.unwrap();
    assert_eq!(tail.len(), 1, "refused actions leave no audit row");
    assert_eq!(tail[0].action, "followup.resolve");
}

#[tokio::test]
async fn clearing_alarms_reports_what_remains_and_staff_cards_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    store.replace_school(school()).await.unwrap();
    for (id, drill) in [("a1", false), ("a2", true)] {
        let alarm = AlarmRecord {
            id: id.into(),
            source: "button".into(),
            drill,
            raised_at: at("2026-11-23T08:00:00+08:00"),
            clock_synced: true,
        };
        store
            .raise_alarm(alarm, record(Stream::Alarm))
            .await
            .unwrap();
    }
    let r = store
        .clear_alarm("a1".into(), audit("alarm.clear"), record(Stream::Alarm))
        .await
        .unwrap();
    assert_eq!(r.map(|(remaining, _)| remaining), Some(true));
    let r = store
        .clear_alarm("a1".into(), audit("alarm.clear"), record(Stream::Alarm))
        .await
        .unwrap();
    assert_eq!(r, None);
    let r = store
        .clear_alarm("a2".into(), audit("alarm.clear"), record(Stream::Alarm))
        .await
        .unwrap();
    assert_eq!(r.map(|(remaining, _)| remaining), Some(false));
    assert!(store.active_alarms().await.unwrap().is_empty());

    let t = store
        .staff_by_card("0DEADBEEF0".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.id, "T01");
    assert!(
        store
            .card_owner("0DEADBEEF0".into())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.staff_list().await.unwrap(),
        vec![("T01".to_owned(), "王老师".to_owned())]
    );
}

#[tokio::test]
async fn staff_with_bad_pin_hashes_or_shared_cards_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    let mut s = school();
    s.staff[0].pin_hash = Some("2468".into());
    s.staff[0].cards = vec![s.students[0].cards[0].clone()];
    let err = store.replace_school(s).await.unwrap_err().to_string();
    assert!(
        err.contains("pin_hash is not an Argon2 PHC string"),
        "{err}"
    );
    assert!(
        err.contains("a card UID of staff \"T01\" is also owned"),
        "{err}"
    );
}

#[tokio::test]
async fn history_past_its_retention_is_pruned_and_the_outbox_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    store.replace_school(school()).await.unwrap();
    // A lesson on 2026-11-23 with a check-in (and its tap and outbox record).
    let mut ci = check_in("S001", "2026-11-23T07:58:00+08:00");
    ci.tap = Some(TapRecord {
        reader: "door".into(),
        uid: "04A1B2C1".into(),
        student_id: Some("S001".into()),
        lesson_id: Some("2026-11-23/1".into()),
        outcome: CardTapOutcome::CheckedIn,
        at: at("2026-11-23T07:58:00+08:00"),
        clock_synced: true,
    });
    store.check_in(ci).await.unwrap();
    store.audit(audit("x")).await.unwrap();
    // Nothing is older than the cut-offs yet.
    let n = store.prune_history(d("2026-11-23"), keep(0)).await.unwrap();
    assert!(n.iter().all(|(_, k)| *k == 0), "{n:?}");
    // With something newer stored a day later, everything of 2026-11-23 is past.
    let mut later = audit("y");
    later.at = at("2026-11-24T08:00:00+08:00");
    store.audit(later).await.unwrap();
    let n = store.prune_history(d("2026-11-24"), keep(0)).await.unwrap();
    let get = |t: &str| n.iter().find(|(name, _)| *name == t).unwrap().1;
    assert_eq!(
        (
            get("card_taps"),
            get("attendance"),
            get("lessons"),
            get("audit_log")
        ),
        (1, 1, 1, 0),
        "the audit log keeps its newest rows (AUDIT_FLOOR) whatever their dates"
    );
    assert_eq!(
        store.outbox_pending().await.unwrap()["attendance"],
        1,
        "the outbox keeps its record"
    );
    assert!(
        store
            .lesson_roll("2026-11-23/1".into(), "g7-3".into())
            .await
            .unwrap()
            .iter()
            .all(|(_, s)| s.is_none())
    );
}

#[tokio::test]
async fn a_clock_years_ahead_prunes_nothing_and_a_running_wrong_clock_only_a_week_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    store.replace_school(school()).await.unwrap();
    store
        .check_in(check_in("S001", "2026-11-23T07:58:00+08:00"))
        .await
        .unwrap();
    // A card tap of 2026-11-01 (kept one day), the rest of 2026-11-23.
    let mut ci = check_in("S002", "2026-11-23T07:59:00+08:00");
    ci.tap = Some(TapRecord {
        reader: "door".into(),
        uid: "04A1B2C2".into(),
        student_id: Some("S002".into()),
        lesson_id: None,
        outcome: CardTapOutcome::CheckedIn,
        at: at("2026-11-01T07:59:00+08:00"),
        clock_synced: true,
    });
    store.check_in(ci).await.unwrap();
    store.audit(audit("today")).await.unwrap();
    let audit_rows = || async { store.audit_tail(100).await.unwrap().len() };
    // The first prune of the board, on 2026-11-02 (keep one day): nothing is that old.
    let n = store.prune_history(d("2026-11-02"), keep(1)).await.unwrap();
    assert!(n.iter().all(|(_, k)| *k == 0), "{n:?}");
    // The clock jumps three years ahead: ages count from the newest record (2026-11-23),
    // and the cut-off moves a week at most: only the tap of 2026-11-01 goes.
    let n = store.prune_history(d("2029-11-23"), keep(1)).await.unwrap();
    let gone: Vec<_> = n.iter().filter(|(_, k)| *k > 0).collect();
    assert_eq!(gone, [&("card_taps", 1)], "{n:?}");
    assert_eq!(audit_rows().await, 1);
    assert!(
        store
            .lesson_roll("2026-11-23/1".into(), "g7-3".into())
            .await
            .unwrap()
            .iter()
            .any(|(_, s)| s.is_some()),
        "the lesson of 2026-11-23 and its attendance stay"
    );
    // Back to the right time: nothing more goes, and nothing came back wrong.
    let n = store.prune_history(d("2026-11-23"), keep(1)).await.unwrap();
    assert!(n.iter().all(|(_, k)| *k == 0), "{n:?}");
    assert_eq!(audit_rows().await, 1);
}

#[tokio::test]
async fn the_newest_audit_rows_are_kept_whatever_their_dates() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    let mut old = audit("kept");
    old.at = at("2020-01-01T09:00:00+08:00");
    store.audit(old).await.unwrap();
    store.audit(audit("today")).await.unwrap();
    // One audit row is years past its retention, but within the floor.
    let n = store.prune_history(d("2026-11-23"), keep(1)).await.unwrap();
    assert!(n.iter().all(|(_, k)| *k == 0), "{n:?}");
    assert_eq!(store.audit_tail(10).await.unwrap().len(), 2);
    const { assert!(AUDIT_FLOOR >= 1_000) };
}

#[tokio::test]
async fn a_lessons_timeline_is_kept_with_its_report_found_by_date_and_pruned_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    store.replace_school(school()).await.unwrap();
    let timeline = LessonTimeline {
        bucket_min: 5,
        frames: vec![10, 12, 0],
        heads_down: vec![Some(0.1), Some(0.5), None],
        hand_raises: vec![2, 0, 0],
        st_interval_s: 30,
        st: "TTSST".into(),
        expressions: Some(ketang_sync::ExpressionTotals {
            engaged: 3,
            neutral: 5,
            negative: 1,
        }),
    };
    let mut e = end(lesson(), vec![], report(1), at("2026-11-23T08:45:00+08:00"));
    e.timeline = Some(timeline.clone());
    store.finalise_lesson(e).await.unwrap().unwrap();
    assert_eq!(
        store.lesson_timeline("2026-11-23/1".into()).await.unwrap(),
        Some(timeline)
    );
    assert_eq!(
        store.lesson_timeline("2026-11-23/2".into()).await.unwrap(),
        None
    );
    // Nothing of it is queued for the cloud: only the report.
    assert_eq!(
        store
            .outbox_pending()
            .await
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["lesson_report"]
    );
    // The week's reports, by date.
    assert_eq!(
        store
            .reports_between(d("2026-11-17"), d("2026-11-23"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .reports_between(d("2026-11-24"), d("2026-11-30"))
            .await
            .unwrap()
            .is_empty()
    );
    // Past retention it goes with its lesson (before it: the lesson is referenced).
    let mut later = audit("y");
    later.at = at("2026-11-24T08:00:00+08:00");
    store.audit(later).await.unwrap();
    let n = store.prune_history(d("2026-11-24"), keep(0)).await.unwrap();
    let get = |t: &str| n.iter().find(|(name, _)| *name == t).unwrap().1;
    assert_eq!(
        (
            get("lesson_timelines"),
            get("lesson_reports"),
            get("lessons")
        ),
        (1, 1, 1)
    );
    assert_eq!(
        store.lesson_timeline("2026-11-23/1".into()).await.unwrap(),
        None
    );
}
