//! Component tests of the store on a real SQLite file in a temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ketang_sync::*;

#[tokio::test]
async fn a_new_database_is_migrated_from_empty_to_the_latest_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (store, report) = StoreHandle::open(dir.path(), identity()).unwrap();
    assert_eq!(report.from_version, 0);
    assert_eq!(report.to_version, schema::LATEST_VERSION);
    assert!(report.quarantined.is_none());
    assert!(store.outbox_pending().await.unwrap().is_empty());
    store.shutdown().await.unwrap();

    // Reopening does not migrate again.
    let (store, report) = StoreHandle::open(dir.path(), identity()).unwrap();
    assert_eq!(report.from_version, schema::LATEST_VERSION);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_corrupt_database_is_moved_aside_and_a_fresh_one_starts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(DB_FILE);
    std::fs::write(
        &db,
        b"this is not a sqlite database, just garbage bytes".repeat(200),
    )
    .unwrap();

    let (store, report) = StoreHandle::open(dir.path(), identity()).unwrap();
    let (moved, reason) = report.quarantined.expect("the corrupt file is reported");
    assert!(
        moved
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("ketang.db.corrupt-")
    );
    assert!(!reason.is_empty());
    // The garbage is kept byte for byte, never deleted.
    assert_eq!(
        std::fs::read(&moved).unwrap(),
        b"this is not a sqlite database, just garbage bytes".repeat(200)
    );
    // The fresh database works.
    store.replace_school(school()).await.unwrap();
    assert_eq!(store.school_counts().await.unwrap(), (3, 3, 1));
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_database_with_damaged_pages_is_quarantined_too() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    store.replace_school(school()).await.unwrap();
    store.shutdown().await.unwrap();
    // Overwrite the middle of the file (past the header page) with garbage.
    let db = dir.path().join(DB_FILE);
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 8192);
    for b in &mut bytes[4096..8192] {
        *b = 0xA5;
    }
    std::fs::write(&db, &bytes).unwrap();

    let (store, report) = StoreHandle::open(dir.path(), identity()).unwrap();
    assert!(
        report.quarantined.is_some(),
        "damaged pages must be detected"
    );
    assert_eq!(store.school_counts().await.unwrap(), (0, 0, 0));
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unusable_data_dir_is_a_clear_error_naming_the_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = StoreHandle::open(&file.join("data"), identity()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("plain-file"), "{msg}");
    assert!(matches!(err, Error::DataDir { .. }));
}

#[tokio::test]
async fn the_first_check_in_wins_and_repeats_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    store.replace_school(school()).await.unwrap();

    let first = store
        .check_in(check_in("S001", "2026-11-23T07:55:00+08:00"))
        .await
        .unwrap();
    assert_eq!(first, CheckInOutcome::Recorded { seq: 1 });
    let mut late = check_in("S001", "2026-11-23T08:10:00+08:00");
    late.status = AttendanceStatus::Late;
    let again = store.check_in(late).await.unwrap();
    assert_eq!(
        again,
        CheckInOutcome::AlreadyRecorded {
            status: AttendanceStatus::Present
        }
    );

    assert_eq!(
        store.outbox_pending().await.unwrap().get("attendance"),
        Some(&1)
    );
    let summary = store
        .lesson_summary("2026-11-23/1".into(), "g7-3".into())
        .await
        .unwrap();
    assert_eq!(
        (
            summary.roster,
            summary.present,
            summary.late,
            summary.unmarked
        ),
        (3, 1, 0, 2)
    );
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn outbox_seq_is_gap_free_across_restarts_and_envelopes_keep_capture_time() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    store.replace_school(school()).await.unwrap();
    store
        .check_in(check_in("S001", "2026-11-23T07:55:00+08:00"))
        .await
        .unwrap();
    store
        .check_in(check_in("S002", "2026-11-23T07:56:00+08:00"))
        .await
        .unwrap();
    store.shutdown().await.unwrap();

    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    let third = store
        .check_in(check_in("S003", "2026-11-23T07:57:00+08:00"))
        .await
        .unwrap();
    assert_eq!(third, CheckInOutcome::Recorded { seq: 3 });
    let rows = store.outbox_peek(10).await.unwrap();
    assert_eq!(
        rows.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(rows[0].captured_at, "2026-11-23T07:55:00.000+08:00");
    assert_eq!(rows[0].schema, ENVELOPE_SCHEMA);
    assert_eq!(rows[0].device_id, "kt-test-1");
    let ids: std::collections::HashSet<_> = rows.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), 3);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn alarms_drain_before_earlier_attendance() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    store.replace_school(school()).await.unwrap();
    store
        .check_in(check_in("S001", "2026-11-23T07:55:00+08:00"))
        .await
        .unwrap();
    let when = at("2026-11-23T08:01:00+08:00");
    store
        .raise_alarm(
            AlarmRecord {
                id: "a1".into(),
                source: "alarm".into(),
                drill: false,
                raised_at: when,
                clock_synced: true,
            },
            OutboxRecord {
                stream: Stream::Alarm,
                captured_at: when,
                clock_synced: true,
                body: serde_json::json!({"alarm_id": "a1"}),
            },
        )
        .await
        .unwrap();
    let rows = store.outbox_peek(10).await.unwrap();
    assert_eq!(rows[0].stream, Stream::Alarm);
    assert_eq!(rows[0].seq, 2);
    assert_eq!(store.active_alarms().await.unwrap().len(), 1);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_invalid_school_snapshot_is_rejected_whole_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    store.replace_school(school()).await.unwrap();

    let mut bad = school();
    bad.students[1].cards = bad.students[0].cards.clone();
    bad.rosters[0].members.push("S999".into());
    bad.periods[0].ends = t("07:00");
    let err = store.replace_school(bad).await.unwrap_err().to_string();
    assert!(err.contains("also owned by"), "{err}");
    assert!(err.contains("S999"), "{err}");
    assert!(err.contains("not after"), "{err}");
    assert!(
        !err.contains("04A1B2C1"),
        "card UIDs must not appear in messages: {err}"
    );
    // The previous good data stays in force.
    assert_eq!(store.school_counts().await.unwrap(), (3, 3, 1));
    assert_eq!(
        store
            .card_owner("04A1B2C2".into())
            .await
            .unwrap()
            .unwrap()
            .0,
        "S002"
    );
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn calls_after_shutdown_report_a_closed_store() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    store.shutdown().await.unwrap();
    assert!(matches!(store.ping().await, Err(Error::Closed)));
    // The WAL was checkpointed into the main file.
    let wal = dir.path().join("ketang.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
}

#[tokio::test]
async fn budget_eviction_writes_dropped_records_and_never_touches_alarms_or_attendance() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    store.replace_school(school()).await.unwrap();
    store
        .check_in(check_in("S001", "2026-11-23T07:55:00+08:00"))
        .await
        .unwrap();
    let rec = |stream, i: i64| OutboxRecord {
        stream,
        captured_at: at("2026-11-23T07:00:00+08:00") + chrono::TimeDelta::seconds(i),
        clock_synced: true,
        body: serde_json::json!({"i": i}),
    };
    store
        .enqueue_batch((0..30).map(|i| rec(Stream::Telemetry, i)).collect())
        .await
        .unwrap();
    store
        .enqueue_batch((0..5).map(|i| rec(Stream::Alarm, i)).collect())
        .await
        .unwrap();
    let budgets = vec![
        StreamBudget {
            stream: Stream::Telemetry,
            max_rows: 10,
            max_bytes: u64::MAX,
            max_age: Duration::from_secs(86_400),
        },
        // Budgets on streams that must never be evicted are ignored.
        StreamBudget {
            stream: Stream::Alarm,
            max_rows: 0,
            max_bytes: 0,
            max_age: Duration::ZERO,
        },
        StreamBudget {
            stream: Stream::Attendance,
            max_rows: 0,
            max_bytes: 0,
            max_age: Duration::ZERO,
        },
    ];
    let ev = store
        .enforce_budgets(budgets.clone(), at("2026-11-23T08:00:00+08:00"), true)
        .await
        .unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].stream, ev[0].first_seq, ev[0].last_seq, ev[0].count),
        (Stream::Telemetry, 2, 21, 20)
    );
    assert_eq!(ev[0].reason, "max_rows");
    let pending = store.outbox_pending().await.unwrap();
    assert_eq!(pending.get("telemetry"), Some(&10));
    assert_eq!(pending.get("alarm"), Some(&5));
    assert_eq!(pending.get("attendance"), Some(&1));
    assert_eq!(pending.get("dropped"), Some(&1));
    let dropped = store
        .outbox_peek(100)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.stream == Stream::Dropped)
        .unwrap();
    assert_eq!(dropped.body["count"], 20);
    assert_eq!(dropped.body["first_seq"], 2);
    // Under budget: nothing more happens.
    assert!(
        store
            .enforce_budgets(budgets, at("2026-11-23T08:00:00+08:00"), true)
            .await
            .unwrap()
            .is_empty()
    );

    // Age: everything older than a day goes, oldest first.
    let old = vec![StreamBudget {
        stream: Stream::Telemetry,
        max_rows: 1000,
        max_bytes: u64::MAX,
        max_age: Duration::from_secs(3600),
    }];
    let ev = store
        .enforce_budgets(old, at("2026-11-24T08:00:00+08:00"), true)
        .await
        .unwrap();
    assert_eq!((ev[0].count, ev[0].reason.as_str()), (10, "max_age"));
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_full_disk_is_reported_as_such_and_everything_stored_stays() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open_capped(dir.path(), identity(), Some(256 * 1024)).unwrap();
    store.replace_school(school()).await.unwrap();
    store
        .check_in(check_in("S001", "2026-11-23T07:55:00+08:00"))
        .await
        .unwrap();
    let big = |i: i64| OutboxRecord {
        stream: Stream::Telemetry,
        captured_at: at("2026-11-23T07:00:00+08:00") + chrono::TimeDelta::seconds(i),
        clock_synced: true,
        body: serde_json::json!({"pad": "x".repeat(2000), "i": i}),
    };
    let mut stored = 0u64;
    let err = loop {
        match store.enqueue(big(stored as i64)).await {
            Ok(_) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored < 10_000, "the cap never hit");
    };
    assert!(matches!(err, Error::DiskFull { .. }), "{err}");
    assert!(err.to_string().contains("disk full"), "{err}");
    // What was stored before stays, and the seq counter has no gap.
    let pending = store.outbox_pending().await.unwrap();
    assert_eq!(pending.get("telemetry"), Some(&stored));
    assert_eq!(pending.get("attendance"), Some(&1));
    let last = store
        .outbox_peek(100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.seq)
        .max()
        .unwrap();
    assert_eq!(last, stored + 1);
    store.shutdown().await.unwrap();

    // Reopened without the cap, the store goes on from where it was.
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    assert_eq!(store.enqueue(big(0)).await.unwrap(), stored + 2);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn when_the_disk_is_full_evicting_detail_makes_room_for_an_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open_capped(dir.path(), identity(), Some(256 * 1024)).unwrap();
    store
        .check_in(check_in("S001", "2026-11-23T07:55:00+08:00"))
        .await
        .ok();
    let pad = |i: i64| OutboxRecord {
        stream: Stream::Telemetry,
        captured_at: at("2026-11-23T07:00:00+08:00") + chrono::TimeDelta::seconds(i),
        clock_synced: true,
        body: serde_json::json!({"pad": "x".repeat(2000), "i": i}),
    };
    let mut i = 0;
    while store.enqueue(pad(i)).await.is_ok() {
        i += 1;
    }
    let when = at("2026-11-23T08:01:00+08:00");
    let alarm = AlarmRecord {
        id: "a1".into(),
        source: "alarm".into(),
        drill: false,
        raised_at: when,
        clock_synced: true,
    };
    let out = OutboxRecord {
        stream: Stream::Alarm,
        captured_at: when,
        clock_synced: true,
        body: serde_json::json!({"alarm_id": "a1", "pad": "y".repeat(3000)}),
    };
    assert!(matches!(
        store.raise_alarm(alarm.clone(), out.clone()).await,
        Err(Error::DiskFull { .. })
    ));
    let ev = store.make_room(when, true).await.unwrap();
    assert_eq!(ev[0].count, i as u64);
    store.raise_alarm(alarm, out).await.unwrap();
    let pending = store.outbox_pending().await.unwrap();
    assert_eq!(pending.get("alarm"), Some(&1));
    assert_eq!(pending.get("dropped"), Some(&1));
    assert_eq!(pending.get("telemetry"), None);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn finalising_a_lesson_is_atomic_once_and_never_overrides_a_recorded_status() {
    let dir = tempfile::tempdir().unwrap();
    let (store, opened) = StoreHandle::open(dir.path(), identity()).unwrap();
    assert_eq!(opened.to_version, schema::LATEST_VERSION);
    store.replace_school(school()).await.unwrap();
    store
        .check_in(check_in("S001", "2026-11-23T07:55:00+08:00"))
        .await
        .unwrap();
    let roll = store
        .lesson_roll("2026-11-23/1".into(), "g7-3".into())
        .await
        .unwrap();
    assert_eq!(
        roll,
        vec![
            ("S001".to_owned(), Some(AttendanceStatus::Present)),
            ("S002".to_owned(), None),
            ("S003".to_owned(), None),
        ]
    );
    let mut lesson = lesson();
    lesson.state = LessonState::Ended;
    let marks = vec![
        // A stale mark for S001 must not override the present status.
        Mark {
            student_id: "S001".into(),
            status: AttendanceStatus::Absent,
        },
        Mark {
            student_id: "S002".into(),
            status: AttendanceStatus::Absent,
        },
        Mark {
            student_id: "S003".into(),
            status: AttendanceStatus::Leave,
        },
    ];
    let when = at("2026-11-23T08:45:00+08:00");
    let seq = store
        .finalise_lesson(end(lesson.clone(), marks.clone(), report(1), when))
        .await
        .unwrap();
    assert!(seq.is_some());
    assert!(store.lesson_finalised("2026-11-23/1".into()).await.unwrap());
    let s = store
        .lesson_summary("2026-11-23/1".into(), "g7-3".into())
        .await
        .unwrap();
    assert_eq!((s.present, s.absent, s.leave, s.unmarked), (1, 1, 1, 0));
    let pending = store.outbox_pending().await.unwrap();
    assert_eq!(pending.get("attendance"), Some(&3)); // the check-in + 2 finalised
    assert_eq!(pending.get("lesson_report"), Some(&1));
    // Again: nothing changes.
    assert_eq!(
        store
            .finalise_lesson(end(lesson, marks, report(2), when))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.lesson_report("2026-11-23/1".into()).await.unwrap(),
        Some(serde_json::to_value(report(1)).unwrap())
    );
    assert_eq!(store.outbox_pending().await.unwrap(), pending);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_behaviour_record_commits_with_its_lesson_report_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    store.replace_school(school()).await.unwrap();
    let when = at("2026-11-23T08:45:00+08:00");
    let mut first = end(lesson(), vec![], report(1), when);
    first.behaviour = Some(BehaviourBody {
        lesson_id: "2026-11-23/1".into(),
        date: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
        period: 1,
        roster_id: "g7-3".into(),
        scope: ClassScope::Class,
        frames: 10,
        hand_raise_events: 2,
        share_most_heads_down: Some(0.1),
        heads_up_rate: Some(0.9),
        standing_max: Some(1),
    });
    let seq = store.finalise_lesson(first.clone()).await.unwrap().unwrap();
    // The call returned: a power cut now (no shutdown, the store thread just goes away)
    // must find both records on disk.
    drop(store);
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    let pending = store.outbox_pending().await.unwrap();
    assert_eq!(pending.get("lesson_report"), Some(&1), "{pending:?}");
    assert_eq!(pending.get("behaviour"), Some(&1), "{pending:?}");
    let queued = store.outbox_peek(10).await.unwrap();
    let behaviour = queued
        .iter()
        .find(|e| e.stream == Stream::Behaviour)
        .unwrap();
    assert_eq!(
        behaviour.seq,
        seq + 1,
        "queued right after the report, in its transaction"
    );
    assert_eq!(behaviour.body["scope"], "class");
    // Finalising again writes nothing, the behaviour record included.
    assert_eq!(store.finalise_lesson(first).await.unwrap(), None);
    assert_eq!(store.outbox_pending().await.unwrap(), pending);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_school_snapshot_with_overlapping_periods_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    let mut bad = school();
    let mut second = bad.periods[0].clone();
    second.period = 2;
    second.starts = t("08:30");
    second.ends = t("09:15");
    bad.periods.push(second);
    let err = store.replace_school(bad).await.unwrap_err().to_string();
    assert!(err.contains("overlaps"), "{err}");
    assert_eq!(store.school_counts().await.unwrap(), (0, 0, 0));
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn follow_ups_open_once_per_student_and_day_with_their_records() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    store.replace_school(school()).await.unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let when = at("2026-11-23T08:30:00+08:00");
    store
        .check_in(check_in("S001", "2026-11-23T07:55:00+08:00"))
        .await
        .unwrap();
    let p = store
        .day_presence(date, (at("2026-11-23T07:00:00+08:00"), when))
        .await
        .unwrap();
    assert_eq!(p.class_members, vec!["S001", "S002", "S003"]);
    assert!(p.checked_in.contains("S001") && p.checked.is_empty());
    let n = store
        .open_followups(
            date,
            vec!["S002".into(), "S003".into()],
            "absent_at_morning_check".into(),
            when,
            true,
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        store
            .open_followups(
                date,
                vec!["S002".into()],
                "absent_at_morning_check".into(),
                when,
                true
            )
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.outbox_pending().await.unwrap().get("followup"),
        Some(&2)
    );
    assert_eq!(store.open_followup_list(date).await.unwrap().len(), 2);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn acknowledged_rows_go_and_only_they_whether_in_runs_or_scattered() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    let recs: Vec<OutboxRecord> = (0..10)
        .map(|i| OutboxRecord {
            stream: Stream::Attendance,
            captured_at: at("2026-11-23T08:00:00+08:00"),
            clock_synced: true,
            body: serde_json::json!({"i": i}),
        })
        .collect();
    let seqs = store.enqueue_batch(recs).await.unwrap();
    assert_eq!(seqs, (1..=10).collect::<Vec<u64>>());
    // A run (3..=6), singles (1, 9), out of order and repeated.
    ketang_sync::drain::ack(&store, vec![6, 1, 4, 3, 9, 5, 4])
        .await
        .unwrap();
    let left: Vec<u64> = store
        .outbox_peek(100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(left, vec![2, 7, 8, 10]);
    store.shutdown().await.unwrap();
}

#[test]
fn pin_hashes_that_would_make_a_check_cost_gigabytes_are_refused() {
    let demo = "$argon2id$v=19$m=19456,t=2,p=1$ANDMpnHDTRSvL3ctGs94kg$3TPyNGFjsiZw2cdo1MktjFMlAeI6rk3akAUudldY0ek";
    assert!(pin_hash_cost_ok(demo).is_ok());
    let greedy = "$argon2id$v=19$m=4194304,t=2,p=1$ANDMpnHDTRSvL3ctGs94kg$3TPyNGFjsiZw2cdo1MktjFMlAeI6rk3akAUudldY0ek";
    let e = pin_hash_cost_ok(greedy).unwrap_err();
    assert!(e.contains("m=4194304") && e.contains("m=65536"), "{e}");
    assert!(pin_hash_cost_ok("$argon2id$v=19$m=19456,t=1000,p=1$x$y").is_err());
    assert!(pin_hash_cost_ok("$argon2id$v=19$x$y").is_err());
    // In a roster, such a hash is refused with the staff member named.
    let mut snap = school();
    snap.staff = vec![StaffRow {
        id: "T09".into(),
        name: "老师".into(),
        pin_hash: Some(greedy.into()),
        cards: vec![],
    }];
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let e = rt
        .block_on(store.replace_school(snap))
        .unwrap_err()
        .to_string();
    assert!(e.contains("staff[0]") && e.contains("m=4194304"), "{e}");
    rt.block_on(store.shutdown()).unwrap();
}

/// A school-wide roster snapshot (every class of the school on `all/down/roster`) must not
/// make every board follow up every class (#18): the morning follow-ups concern the class
/// rosters this board's timetable teaches.
#[tokio::test]
async fn follow_ups_concern_only_the_classes_of_this_boards_timetable() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    let mut s = school();
    for i in 1..=2 {
        s.students.push(StudentRow {
            id: format!("T{i:03}"),
            name: format!("别班学生{i}"),
            class_id: "g7-4".into(),
            gender: None,
            cards: vec![],
            face_consent: None,
        });
    }
    s.rosters.push(Roster {
        id: "g7-4".into(),
        name: "七年级(4)班".into(),
        kind: "class".into(),
        members: vec!["T001".into(), "T002".into()],
    });
    store.replace_school(s).await.unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let p = store
        .day_presence(
            date,
            (
                at("2026-11-23T07:00:00+08:00"),
                at("2026-11-23T08:30:00+08:00"),
            ),
        )
        .await
        .unwrap();
    assert_eq!(p.class_members, vec!["S001", "S002", "S003"]);
    store.shutdown().await.unwrap();
}
