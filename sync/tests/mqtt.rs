//! Sync against a real Mosquitto started by the test on 127.0.0.1 (random port, persistence
//! in a temp dir). Enabled by the `mqtt-integration-tests` feature (./scripts/test).
#![cfg(feature = "mqtt-integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use common::broker::{Broker, Collector, free_port, open_gate};
use common::worker::*;
use common::*;
use ketang_sync::mqtt::TlsSettings;
use ketang_sync::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_made_offline_all_arrive_once_in_order_with_capture_times_when_the_broker_comes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store
        .enqueue_batch(records(
            Stream::Attendance,
            300,
            "2026-11-20T08:00:00+08:00",
        ))
        .await
        .unwrap();
    // The board talks to `gate`, where no broker answers yet: the worker retries with
    // backoff. The broker comes up on `port` and the gate opens once the collector listens.
    let gate = free_port();
    let run = start(&store, settings(gate));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!run.status.connected());
    assert!(
        run.status.state().contains("disconnected"),
        "{}",
        run.status.state()
    );
    store
        .enqueue_batch(records(
            Stream::Attendance,
            200,
            "2026-11-21T08:00:00+08:00",
        ))
        .await
        .unwrap();

    let port = free_port();
    let broker = Broker::start_on(&dir.path().join("broker"), port, "");
    let col = Collector::start(port, "ketang/#").await;
    open_gate(gate, port).await;
    col.wait_for("500 attendance records", 30, |c| {
        c.up("attendance").len() >= 500
    })
    .await;
    let got = col.up("attendance");
    assert_eq!(
        seqs(&got),
        (1..=500).collect::<Vec<_>>(),
        "once each, in order"
    );
    assert_eq!(got[0]["captured_at"], "2026-11-20T08:00:00.000+08:00");
    assert_eq!(got[300]["captured_at"], "2026-11-21T08:00:00.000+08:00");
    // Deleted only after PUBACK: the outbox empties.
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.outbox_pending().await.unwrap().values().sum::<u64>() > 0 {
        assert!(Instant::now() < deadline, "outbox did not empty");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The birth message is retained on the status topic.
    let status: Vec<_> = col
        .msgs
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _, _)| t.ends_with("/status"))
        .map(|m| m.1.clone())
        .collect();
    assert_eq!(status[0]["state"], "online");
    run.stop().await;
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_drain_loses_nothing_and_duplicates_are_detectable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let n = 8_000;
    store
        .enqueue_batch(records(Stream::Attendance, n, "2026-11-20T08:00:00+08:00"))
        .await
        .unwrap();
    let mut broker = Broker::start(&dir.path().join("broker"), "");
    let col = Collector::start_native(broker.port, "ketang/+/+/+/up/#").await;
    // Mosquitto saves sessions only now and then; after kill -9 it would forget the
    // collector's. A clean restart saves its persistent session and subscription, so the
    // broker queues for it while it reconnects after the kill.
    broker.graceful_restart();
    col.await_probe(broker.port, "ketang/probe/x/x/up/probe")
        .await;
    // Design: the device is held to 1,000 records/s (ten times the default rate). Much
    // faster, Mosquitto acknowledges records it has not yet handed to the test's
    // subscriber, and kill -9 loses them inside the broker (seen at 5,000/s: the device's
    // outbox empty, every record acknowledged once, a run of records never delivered).
    // That is the broker's durability; this test proves the device's side: a record leaves
    // the outbox only after the broker's PUBACK. For the same reason the subscriber is a
    // native mosquitto_sub writing to a file: under qemu-user at nice 19 (the arm64 stage)
    // the test's own client fell behind, and a kill lost 106 records inside the broker.
    let mut s = settings(broker.port);
    s.max_publish_per_s = NonZeroU32::new(1_000);
    let run = start(&store, s);
    col.wait_for("a part of the backlog", 30, |c| c.len() >= 2_000)
        .await;
    broker.kill9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(col.len() < n, "the kill must land mid-drain");
    broker.restart();
    // Fails when nothing new arrives for 15 s (a slow machine only drains slower).
    let mut last = (0, Instant::now());
    loop {
        let have: BTreeSet<u64> = seqs(&col.up("attendance")).into_iter().collect();
        if have.len() == n {
            break;
        }
        if have.len() > last.0 {
            last = (have.len(), Instant::now());
        }
        if last.1.elapsed() > Duration::from_secs(15) {
            let missing: Vec<u64> = (1..=n as u64).filter(|s| !have.contains(s)).collect();
            let pending = store.outbox_pending().await.unwrap();
            panic!(
                "{} records missing (first {:?}, last {:?}); device outbox still holds {pending:?}; device acked {}",
                missing.len(),
                missing.first(),
                missing.last(),
                run.status.acked.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = col.up("attendance");
    let unique: BTreeSet<u64> = seqs(&got).into_iter().collect();
    assert_eq!(
        unique,
        (1..=n as u64).collect::<BTreeSet<_>>(),
        "nothing lost"
    );
    // Any duplicate carries the same id as the original: the cloud can drop it.
    let mut by_seq: HashMap<u64, String> = HashMap::new();
    for m in &got {
        let id = m["id"].as_str().unwrap().to_owned();
        assert_eq!(
            by_seq
                .entry(m["seq"].as_u64().unwrap())
                .or_insert_with(|| id.clone()),
            &id
        );
    }
    println!(
        "broker kill -9: {} records, {} duplicates",
        n,
        got.len() - n
    );
    assert!(
        run.status
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_raised_during_a_100k_backlog_is_delivered_before_the_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let n = 100_000;
    for chunk in 0..10 {
        store
            .enqueue_batch(records(
                Stream::Telemetry,
                n / 10,
                &format!("2026-11-{:02}T00:00:00+08:00", 10 + chunk),
            ))
            .await
            .unwrap();
    }
    let broker = Broker::start(&dir.path().join("broker"), "");
    let col = Collector::start(broker.port, "ketang/+/+/+/up/#").await;
    let mut s = settings(broker.port);
    // A fleet-friendly rate: the backlog would take 100 s to drain.
    s.max_publish_per_s = NonZeroU32::new(1000);
    // No budgets here: this test is about lanes (eviction has its own test).
    s.budgets = vec![];
    let run = start(&store, s);
    col.wait_for("the drain to start", 30, |c| c.len() >= 500)
        .await;
    let when = at("2026-11-23T08:00:00+08:00");
    let raised = Instant::now();
    store
        .raise_alarm(
            AlarmRecord {
                id: "alarm-1".into(),
                source: "alarm".into(),
                drill: false,
                raised_at: when,
                clock_synced: true,
            },
            OutboxRecord {
                stream: Stream::Alarm,
                captured_at: when,
                clock_synced: true,
                body: json!({"alarm_id": "alarm-1"}),
            },
        )
        .await
        .unwrap();
    col.wait_for("the alarm", 10, |c| !c.up("alarm").is_empty())
        .await;
    let (telemetry_before, waited) = {
        let msgs = col.msgs.lock().unwrap();
        let pos = msgs
            .iter()
            .position(|(t, _, _)| t.ends_with("/up/alarm"))
            .unwrap();
        (pos, msgs[pos].2.duration_since(raised))
    };
    println!(
        "alarm waited {waited:?} behind a {n}-record backlog; {telemetry_before} telemetry records were published before it"
    );
    assert!(
        telemetry_before < n / 10,
        "the alarm must not wait for the backlog"
    );
    assert!(
        waited < bound(Duration::from_secs(2)),
        "alarm waited {waited:?}"
    );
    let alarm = &col.up("alarm")[0];
    assert_eq!(alarm["seq"].as_u64(), Some(n as u64 + 1));
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_wrong_school_and_expired_downlinks_are_refused_with_acks_and_change_nothing()
 {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.replace_school(school()).await.unwrap();
    let broker = Broker::start(&dir.path().join("broker"), "");
    let col = Collector::start(broker.port, "ketang/+/+/+/up/ack").await;
    let run = start(&store, settings(broker.port));
    col.wait_for("connection", 10, |_| run.status.connected())
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await; // subscription in place

    let notice = json!({"id": "n1", "title": "t", "body": "b"});
    publish_down(broker.port, "notice", b"{ this is not json".to_vec(), true).await;
    let mut big = down("dl-big", "notice", notice.clone());
    big["body"]["body"] = json!("x".repeat(1_100_000));
    publish_down(
        broker.port,
        "notice",
        serde_json::to_vec(&big).unwrap(),
        true,
    )
    .await;
    let mut wrong = down("dl-wrong-school", "notice", notice.clone());
    wrong["school_id"] = json!("another-school");
    publish_down(
        broker.port,
        "notice",
        serde_json::to_vec(&wrong).unwrap(),
        true,
    )
    .await;
    let mut expired = down(
        "dl-expired",
        "command",
        json!({"name": "whiteboard.power", "args": {"on": true}}),
    );
    expired["expires_at"] = json!("2026-11-22T08:05:00+08:00");
    publish_down(
        broker.port,
        "command",
        serde_json::to_vec(&expired).unwrap(),
        true,
    )
    .await;
    let mut bad_tt = down(
        "dl-overlap",
        "timetable",
        json!({"version": 5, "periods": [
        {"weekday": 1, "period": 1, "starts": "08:00:00", "ends": "08:45:00", "subject": "数学", "teacher": "t", "roster_id": "g7-3"},
        {"weekday": 1, "period": 2, "starts": "08:30:00", "ends": "09:15:00", "subject": "语文", "teacher": "t", "roster_id": "g7-3"}]}),
    );
    bad_tt["device_id"] = json!(identity().device_id);
    publish_down(
        broker.port,
        "timetable",
        serde_json::to_vec(&bad_tt).unwrap(),
        true,
    )
    .await;

    col.wait_for("five acks", 15, |c| c.up("ack").len() >= 5)
        .await;
    let acks = col.up("ack");
    let by_id = |id: &str| {
        acks.iter()
            .find(|a| a["body"]["downlink_id"] == id)
            .unwrap_or_else(|| panic!("no ack for {id}: {acks:#?}"))["body"]
            .clone()
    };
    let malformed = acks
        .iter()
        .find(|a| a["body"]["downlink_id"].is_null())
        .expect("an ack for the malformed message");
    assert_eq!(malformed["body"]["ok"], false);
    assert!(
        malformed["body"]["problems"][0]
            .as_str()
            .unwrap()
            .contains("invalid envelope")
    );
    for (id, needle) in [
        ("dl-big", "invalid envelope"),
        ("dl-wrong-school", "not this device's school"),
        ("dl-expired", "expired"),
        ("dl-overlap", "overlaps"),
    ] {
        let a = by_id(id);
        assert_eq!(a["ok"], false, "{id}");
        let text = a["problems"].to_string();
        assert!(
            text.contains(needle) || (id == "dl-big" && text.contains("exceeds")),
            "{id}: {text}"
        );
    }
    // Nothing changed.
    assert_eq!(store.snapshot_versions().await.unwrap(), (0, 0));
    assert_eq!(store.timetable().await.unwrap(), school().periods);
    assert!(
        store
            .active_notices(at("2026-11-23T08:00:00+08:00"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(run.hooks.applied.lock().unwrap().is_empty());
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_apply_atomically_with_versions_and_a_repeated_id_applies_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.replace_school(school()).await.unwrap();
    let broker = Broker::start(&dir.path().join("broker"), "");
    let col = Collector::start(broker.port, "ketang/+/+/+/up/ack").await;
    let run = start(&store, settings(broker.port));
    col.wait_for("connection", 10, |_| run.status.connected())
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let roster = json!({"version": 3, "students": [
        {"id": "S001", "name": "学生1", "class_id": "g7-3", "cards": ["04A1B2C1"]},
        {"id": "S004", "name": "学生4", "class_id": "g7-3", "cards": ["04A1B2C4"]}],
        "rosters": [{"id": "g7-3", "name": "七年级(3)班", "kind": "class", "members": ["S001", "S004"]}]});
    let msg = serde_json::to_vec(&down("dl-roster-3", "roster", roster.clone())).unwrap();
    publish_down(broker.port, "roster", msg.clone(), true).await;
    publish_down(broker.port, "roster", msg, true).await; // same id again
    let mut stale = roster.clone();
    stale["version"] = json!(2);
    publish_down(
        broker.port,
        "roster",
        serde_json::to_vec(&down("dl-roster-2", "roster", stale)).unwrap(),
        true,
    )
    .await;
    let mut dup_card = roster.clone();
    dup_card["version"] = json!(4);
    dup_card["students"][1]["cards"] = json!(["04A1B2C1"]);
    publish_down(
        broker.port,
        "roster",
        serde_json::to_vec(&down("dl-roster-4", "roster", dup_card)).unwrap(),
        true,
    )
    .await;

    col.wait_for("four acks", 15, |c| c.up("ack").len() >= 4)
        .await;
    let acks: Vec<_> = col
        .up("ack")
        .into_iter()
        .map(|a| a["body"].clone())
        .collect();
    assert_eq!(acks[0]["downlink_id"], "dl-roster-3");
    assert_eq!(acks[0]["ok"], true);
    assert_eq!(acks[1]["duplicate"], true);
    assert_eq!(acks[2]["ok"], false);
    assert!(
        acks[2]["problems"][0]
            .as_str()
            .unwrap()
            .contains("not newer")
    );
    assert_eq!(acks[3]["ok"], false);
    assert!(
        acks[3]["problems"][0]
            .as_str()
            .unwrap()
            .contains("also owned by")
    );
    // Version 3 is in force, applied once.
    assert_eq!(store.snapshot_versions().await.unwrap().0, 3);
    assert_eq!(
        store
            .card_owner("04A1B2C4".into())
            .await
            .unwrap()
            .unwrap()
            .0,
        "S004"
    );
    assert_eq!(store.card_owner("04A1B2C2".into()).await.unwrap(), None);
    assert_eq!(
        *run.hooks.applied.lock().unwrap(),
        vec!["roster".to_owned()]
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendars_apply_by_version_school_wide_keep_their_history_and_bad_ones_name_every_problem()
{
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.replace_school(school()).await.unwrap();
    let broker = Broker::start(&dir.path().join("broker"), "");
    let col = Collector::start(broker.port, "ketang/+/+/+/up/ack").await;
    let run = start(&store, settings(broker.port));
    col.wait_for("connection", 10, |_| run.status.connected())
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let v1 = json!({"version": 1,
        "term": {"start": "2026-09-01", "end": "2027-01-22"},
        "holidays": [{"from": "2026-10-01", "until": "2026-10-07", "name": "国庆节"}],
        "makeup_days": [{"date": "2026-10-10", "runs": 1}]});
    let mut v2 = v1.clone();
    v2["version"] = json!(2);
    v2["days_off"] = json!([{"from": "2026-11-27", "name": "运动会"}]);
    v2["changes"] = json!([
        {"date": "2026-11-24", "roster_id": "g7-3", "period": 1, "kind": "substitute", "teacher": "李老师", "teacher_id": "T07"}]);
    let mut bad = v1.clone();
    bad["version"] = json!(3);
    bad["makeup_days"] = json!([{"date": "2026-10-03", "runs": 8}]);
    let school_wide = |id: &str, body: &serde_json::Value| {
        let mut m = down(id, "calendar", body.clone());
        m.as_object_mut().unwrap().remove("device_id");
        serde_json::to_vec(&m).unwrap()
    };
    for (id, body) in [
        ("dl-cal-1", &v1),
        ("dl-cal-2", &v2),
        ("dl-cal-1b", &v1),
        ("dl-cal-3", &bad),
    ] {
        let msg = school_wide(id, body);
        publish_down(broker.port, "calendar", msg, false).await;
    }
    col.wait_for("four acks", 15, |c| c.up("ack").len() >= 4)
        .await;
    let acks: Vec<_> = col
        .up("ack")
        .into_iter()
        .map(|a| a["body"].clone())
        .collect();
    assert_eq!(acks[0]["ok"], true, "{acks:#?}");
    assert_eq!(acks[1]["ok"], true, "{acks:#?}");
    assert_eq!(acks[2]["ok"], false);
    assert!(
        acks[2]["problems"][0]
            .as_str()
            .unwrap()
            .contains("not newer"),
        "{acks:#?}"
    );
    let problems = acks[3]["problems"].to_string();
    assert!(
        problems.contains("makeup_days[0].runs: 8 is not a weekday 1-7"),
        "{problems}"
    );
    assert!(
        problems.contains("makeup_days[0]: 2026-10-03 is also a holiday or day off"),
        "{problems}"
    );
    // Both good versions are kept, in order, with when they were applied; the bad one is not.
    let kept = store.calendars().await.unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[1].1.version, 2);
    assert_eq!(kept[1].1.changes[0].teacher_id.as_deref(), Some("T07"));
    assert!(kept[0].0 <= kept[1].0);
    assert_eq!(
        *run.hooks.applied.lock().unwrap(),
        vec!["calendar".to_owned(), "calendar".to_owned()]
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_boards_content_applies_whole_by_version_and_bad_content_names_every_problem() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.replace_school(school()).await.unwrap();
    let broker = Broker::start(&dir.path().join("broker"), "");
    let col = Collector::start(broker.port, "ketang/+/+/+/up/ack").await;
    let run = start(&store, settings(broker.port));
    col.wait_for("connection", 10, |_| run.status.connected())
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let gif = base64::engine::general_purpose::STANDARD.encode(b"GIF89a\x01\x00\x01\x00");
    let msgs = [
        (
            "dl-d1",
            "duty",
            json!({"version": 1, "days": [{"weekday": 1, "students": ["S001", "S002"], "task": "扫地"}]}),
        ),
        (
            "dl-d0",
            "duty",
            json!({"version": 1, "days": [{"weekday": 2, "students": ["S001"]}]}),
        ),
        (
            "dl-d2",
            "duty",
            json!({"version": 2, "days": [{"weekday": 1, "students": ["S001", "S404"]}, {"weekday": 9, "students": []}]}),
        ),
        (
            "dl-h1",
            "honours",
            json!({"version": 5, "items": [{"id": "h1", "title": "流动红旗"}, {"id": "h2", "title": "", "image": gif}]}),
        ),
        (
            "dl-w1",
            "homework",
            json!({"date": "2026-11-23", "items": [{"subject": "数学", "text": "练习册第12页", "due": "2026-11-24"}]}),
        ),
        (
            "dl-w2",
            "homework",
            json!({"date": "2026-11-23", "items": [{"subject": "语文", "text": "", "due": "2026-11-20"}]}),
        ),
    ];
    for (id, kind, body) in &msgs {
        let msg = serde_json::to_vec(&down(id, kind, body.clone())).unwrap();
        publish_down(broker.port, kind, msg, true).await;
    }
    col.wait_for("six acks", 15, |c| c.up("ack").len() >= 6)
        .await;
    let acks: Vec<_> = col
        .up("ack")
        .into_iter()
        .map(|a| a["body"].clone())
        .collect();
    let by = |id: &str| {
        acks.iter()
            .find(|a| a["downlink_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by("dl-d1")["ok"], true, "{acks:#?}");
    assert!(
        by("dl-d0")["problems"][0]
            .as_str()
            .unwrap()
            .contains("not newer")
    );
    let p = by("dl-d2")["problems"].to_string();
    assert!(
        p.contains("days[0].students[1]: \\\"S404\\\" is not a student of this board's roster"),
        "{p}"
    );
    assert!(p.contains("days[1].weekday: 9 is not 1-7"), "{p}");
    let p = by("dl-h1")["problems"].to_string();
    assert!(
        p.contains("items[1].title is empty") && p.contains("items[1].image: not a PNG or JPEG"),
        "{p}"
    );
    assert_eq!(by("dl-w1")["ok"], true);
    let p = by("dl-w2")["problems"].to_string();
    assert!(
        p.contains("items[0].text is empty") && p.contains("items[0].due 2026-11-20 is before"),
        "{p}"
    );
    // What the board shows on Monday the 23rd: duty version 1 with names, the first
    // homework (the refused second one changed nothing), no honours (refused whole).
    let monday = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let c = store.board_content(monday, Some(1)).await.unwrap();
    assert_eq!(c.duty.as_ref().unwrap().0.as_deref(), Some("扫地"));
    assert_eq!(c.duty.as_ref().unwrap().1.len(), 2);
    assert_eq!(c.homework.as_ref().unwrap().items[0].subject, "数学");
    assert!(c.honours.is_empty());
    // A day without lessons has no duty; homework due tomorrow is still shown then.
    let c = store
        .board_content(monday.succ_opt().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(c.duty, None);
    assert_eq!(c.homework.unwrap().items.len(), 1);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_works_and_a_wrong_client_certificate_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("pki");
    let evil = dir.path().join("evil");
    ketang_testkit::pki(&good, "Ketang test");
    ketang_testkit::pki(&evil, "Someone else");
    let port = free_port();
    let conf = format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\ncafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\nrequire_certificate true\n",
        good.display()
    );
    let broker = Broker::start_on(&dir.path().join("broker"), port, &conf);

    let store = open(dir.path()).await;
    store
        .enqueue_batch(records(Stream::Attendance, 3, "2026-11-20T08:00:00+08:00"))
        .await
        .unwrap();
    let mut s = settings(port);
    s.tls = Some(TlsSettings {
        ca_file: Some(good.join("ca.pem")),
        client_auth: Some((good.join("client.pem"), good.join("client.key"))),
    });
    let run = start(&store, s);
    let deadline = Instant::now() + Duration::from_secs(15);
    while store.outbox_pending().await.unwrap().values().sum::<u64>() > 0 {
        assert!(
            Instant::now() < deadline,
            "mTLS drain did not finish: {} / broker: {}",
            run.status.state(),
            broker.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run.stop().await;

    // A client certificate from another CA: refused, and the status says why.
    store
        .enqueue_batch(records(Stream::Attendance, 1, "2026-11-21T08:00:00+08:00"))
        .await
        .unwrap();
    let mut s = settings(port);
    s.tls = Some(TlsSettings {
        ca_file: Some(good.join("ca.pem")),
        client_auth: Some((evil.join("client.pem"), evil.join("client.key"))),
    });
    let run = start(&store, s);
    let state = state_when(&run, |s| s.contains("disconnected")).await;
    assert!(!run.status.connected());
    println!("wrong client certificate: {state}");
    assert!(state.contains("disconnected"), "{state}");
    assert_eq!(
        store.outbox_pending().await.unwrap().values().sum::<u64>(),
        1,
        "nothing leaves, nothing is lost"
    );
    run.stop().await;

    // A broker certificate from an unknown CA is refused by the device.
    let mut s = settings(port);
    s.tls = Some(TlsSettings {
        ca_file: Some(evil.join("ca.pem")),
        client_auth: Some((good.join("client.pem"), good.join("client.key"))),
    });
    let run = start(&store, s);
    let state = state_when(&run, |s| s.contains("disconnected")).await;
    println!("unknown broker CA: {state}");
    assert!(!run.status.connected());
    assert!(
        state.to_lowercase().contains("certificate")
            || state.contains("Tls")
            || state.contains("tls"),
        "{state}"
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn username_and_password_work_and_a_wrong_password_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    let st = std::process::Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&pw)
        .args(["kt-test-1", "s3cret-pw"])
        .status()
        .unwrap();
    assert!(st.success());
    let _ = std::process::Command::new("chmod")
        .args(["644"])
        .arg(&pw)
        .status();
    let port = free_port();
    let conf = format!(
        "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
        pw.display()
    );
    let _broker = Broker::start_on(&dir.path().join("broker"), port, &conf);

    let store = open(dir.path()).await;
    store
        .enqueue_batch(records(Stream::Attendance, 2, "2026-11-20T08:00:00+08:00"))
        .await
        .unwrap();
    let mut s = settings(port);
    s.credentials = Some(("kt-test-1".into(), "wrong-pw".into()));
    let run = start(&store, s);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let state = run.status.state();
    println!("wrong password: {state}");
    assert!(!run.status.connected());
    assert!(
        state.contains("disconnected")
            && (state.contains("BadUserNamePassword") || state.contains("NotAuthorized")),
        "{state}"
    );
    assert!(
        !state.contains("wrong-pw"),
        "the password must not appear: {state}"
    );
    run.stop().await;

    let mut s = settings(port);
    s.credentials = Some(("kt-test-1".into(), "s3cret-pw".into()));
    let run = start(&store, s);
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.outbox_pending().await.unwrap().values().sum::<u64>() > 0 {
        assert!(
            Instant::now() < deadline,
            "drain with credentials did not finish: {}",
            run.status.state()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run.stop().await;
}
