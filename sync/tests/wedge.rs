//! Issue 15: nothing can wedge the sync, and the board is back within seconds of its
//! broker. Against a real Mosquitto started by the test on 127.0.0.1 (feature
//! `mqtt-integration-tests`, ./scripts/test).
#![cfg(feature = "mqtt-integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::broker::{Broker, Collector};
use common::worker::*;
use common::*;
use ketang_sync::*;
use serde_json::json;

fn alarm(i: u64) -> OutboxRecord {
    OutboxRecord {
        stream: Stream::Alarm,
        captured_at: at("2026-11-23T08:00:00+08:00"),
        clock_synced: true,
        body: json!({"alarm_id": format!("a-{i}"), "kind": "emergency"}),
    }
}

/// Makes row `seq` as large as `bytes`, as a record an older version (without the cap)
/// could have stored: straight into the database file while the store is closed.
fn inflate_row(dir: &std::path::Path, seq: u64, bytes: usize) {
    let conn = rusqlite::Connection::open(dir.join("data").join(DB_FILE)).unwrap();
    let pad = "x".repeat(bytes);
    let n = conn
        .execute(
            "UPDATE outbox SET payload = CAST(json_set(CAST(payload AS TEXT), '$.body.pad', ?2) AS BLOB) WHERE seq = ?1",
            rusqlite::params![seq as i64, pad],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// Trigger 1 of the issue: a `notice` under the 1 MiB downlink cap whose `school_id` is
/// 480,000 tab characters. On main the ack quoted it whole (1.44 MB), rumqttc refused to
/// send it, and the board reconnected forever with everything behind it pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downlink_that_quotes_huge_input_gets_a_short_ack_and_nothing_wedges() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(&dir.path().join("mosq"), "");
    let col = Collector::start(broker.port, "ketang/v1/#").await;
    let store = open(dir.path()).await;
    let run = start(&store, settings(broker.port));
    col.wait_for("the birth message", 10, |c| {
        c.msgs
            .lock()
            .unwrap()
            .iter()
            .any(|(t, _, _)| t.ends_with("/status"))
    })
    .await;

    let mut notice = down(
        "dl-tabs",
        "notice",
        json!({"id": "n1", "title": "t", "body": "b"}),
    );
    notice["school_id"] = json!("\t".repeat(480_000));
    let payload = serde_json::to_vec(&notice).unwrap();
    assert!(payload.len() < 1024 * 1024, "{} bytes", payload.len());
    publish_down(broker.port, "notice", payload, true).await;
    col.wait_for("the refusal ack", 15, |c| !c.up("ack").is_empty())
        .await;
    let ack = &col.up("ack")[0];
    assert_eq!(ack["body"]["downlink_id"], "dl-tabs");
    assert_eq!(ack["body"]["ok"], false);
    let size = serde_json::to_vec(ack).unwrap().len();
    assert!(size < 2048, "the ack is {size} bytes: {ack}");
    let problem = ack["body"]["problems"][0].as_str().unwrap();
    assert!(
        problem.contains("school_id") && problem.contains("(480000 characters)"),
        "{problem}"
    );

    // Everything behind it flows on the same connection.
    store
        .enqueue_batch(records(Stream::Attendance, 3, "2026-11-23T08:01:00+08:00"))
        .await
        .unwrap();
    col.wait_for("attendance", 10, |c| c.up("attendance").len() == 3)
        .await;
    assert_eq!(run.status.connections.load(Ordering::Relaxed), 1);
    col.save_contract("sync-wedge-ack", &["ack"]);
    run.stop().await;
}

/// A record too large for any MQTT packet the client sends (stored by an older version,
/// before the per-record cap): it is moved aside with a `rejected` record, and both its
/// own lane (alarms) and the others keep moving, also after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_too_large_to_send_is_moved_aside_and_every_lane_keeps_moving() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let poison = store.enqueue(alarm(1)).await.unwrap();
    store.shutdown().await.unwrap();
    inflate_row(dir.path(), poison, 1_500_000);

    let store = open(dir.path()).await;
    let later_alarm = store.enqueue(alarm(2)).await.unwrap();
    store
        .enqueue_batch(records(Stream::Attendance, 5, "2026-11-23T08:01:00+08:00"))
        .await
        .unwrap();
    // Telemetry older than its 7-day budget: evicted, and a `dropped` record says so.
    store
        .enqueue_batch(records(Stream::Telemetry, 3, "2026-11-01T08:00:00+08:00"))
        .await
        .unwrap();
    let evicted = store
        .enforce_budgets(
            ketang_sync::mqtt::default_budgets(),
            at("2026-11-23T08:00:00+08:00"),
            true,
        )
        .await
        .unwrap();
    assert_eq!(evicted.len(), 1);
    let broker = Broker::start(&dir.path().join("mosq"), "");
    let col = Collector::start(broker.port, "ketang/v1/#").await;
    let run = start(&store, settings(broker.port));

    col.wait_for(
        "the later alarm, attendance and the rejected record",
        15,
        |c| {
            c.up("alarm").len() == 1
                && c.up("attendance").len() == 5
                && c.up("rejected").len() == 1
                && c.up("dropped").len() == 1
        },
    )
    .await;
    col.save_contract("sync-wedge-rejected", &["rejected", "dropped"]);
    assert_eq!(col.up("alarm")[0]["seq"].as_u64(), Some(later_alarm));
    let r = &col.up("rejected")[0]["body"];
    assert_eq!(r["seq"].as_u64(), Some(poison));
    assert_eq!(r["stream"], "alarm");
    assert!(r["bytes"].as_u64().unwrap() > 1_500_000, "{r}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("exceeds the client's limit"),
        "{r}"
    );
    assert_eq!(run.status.connections.load(Ordering::Relaxed), 1);
    wait_empty(&store).await;
    let kept = store.rejected_records().await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].0, poison);
    run.stop().await;
}

/// A broker with a smaller packet limit than the client (Mosquitto `max_packet_size`,
/// like AWS IoT's 128 KiB) closes the connection when the record arrives. The board
/// blames the oldest unacknowledged row, sends it alone to be sure, and moves it aside;
/// the 59 records around it are delivered and the connection count stays small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_broker_refuses_is_found_by_sending_it_alone_and_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let mut recs = records(Stream::Attendance, 60, "2026-11-23T08:01:00+08:00");
    recs[20].body = json!({"i": 20, "pad": "x".repeat(40_000)});
    let seqs = store.enqueue_batch(recs).await.unwrap();
    let broker = Broker::start(&dir.path().join("mosq"), "max_packet_size 20000");
    let col = Collector::start(broker.port, "ketang/v1/#").await;
    let run = start(&store, settings(broker.port));
    col.wait_for("59 records and the rejected one", 60, |c| {
        c.up("attendance").len() >= 59 && c.up("rejected").len() == 1
    })
    .await;
    col.save_contract("sync-wedge-refused", &["rejected"]);
    let r = &col.up("rejected")[0]["body"];
    assert_eq!(r["seq"].as_u64(), Some(seqs[20]));
    assert!(r["reason"].as_str().unwrap().contains("sent alone"), "{r}");
    let got: std::collections::BTreeSet<u64> = seqs_of(&col.up("attendance"));
    let want: std::collections::BTreeSet<u64> =
        seqs.iter().copied().filter(|s| *s != seqs[20]).collect();
    assert_eq!(got, want);
    let connections = run.status.connections.load(Ordering::Relaxed);
    println!("{connections} connections until the refused record was moved aside");
    assert!(connections <= 12, "{connections} connections");
    wait_empty(&store).await;
    run.stop().await;
}

async fn wait_empty(store: &StoreHandle) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.outbox_pending().await.unwrap().values().sum::<u64>() > 0 {
        assert!(Instant::now() < deadline, "the outbox did not empty");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn seqs_of(msgs: &[serde_json::Value]) -> std::collections::BTreeSet<u64> {
    msgs.iter().map(|m| m["seq"].as_u64().unwrap()).collect()
}

/// Issue 15 part 2: with a 20,000-record backlog and the broker down for 20 s, the board
/// keeps trying every 0.25–2 s (main waited up to a minute) and the first record arrives
/// within 3 s of the broker listening again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_the_board_is_back_within_seconds_of_its_broker() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(&dir.path().join("mosq"), "");
    let store = open(dir.path()).await;
    let mut s = settings(broker.port);
    // The shipped reconnect policy, not the tests' fast one.
    let defaults =
        ketang_sync::mqtt::MqttSettings::new(String::new(), 0, String::new(), String::new());
    s.backoff = defaults.backoff;
    s.refused_backoff = defaults.refused_backoff;
    // The collector's persistent session outlives the outage (the broker saves it on
    // SIGTERM), so nothing the board sends right after the restart is missed.
    let col = Collector::start(broker.port, "ketang/v1/+/+/up/#").await;
    let run = start(&store, s);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !run.status.connected() {
        assert!(Instant::now() < deadline, "never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.stop();
    store
        .enqueue_batch(records(
            Stream::Attendance,
            20_000,
            "2026-11-23T08:01:00+08:00",
        ))
        .await
        .unwrap();
    let before = run.status.attempts.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let attempts = run.status.attempts.load(Ordering::Relaxed) - before;
    assert!(
        attempts >= 8,
        "only {attempts} connection attempts in a 20 s outage: the backoff grew too long"
    );
    broker.restart();
    let back = Instant::now();
    col.wait_for("the first record", 10, |c| c.len() > 0).await;
    let first = col.msgs.lock().unwrap()[0].2 - back;
    println!(
        "first record {first:?} after the broker was back ({attempts} attempts in the outage)"
    );
    assert!(
        first < bound(Duration::from_secs(3)),
        "first record after {first:?}"
    );
    col.wait_for("the whole backlog", 60, |c| {
        c.up("attendance").len() >= 20_000
    })
    .await;
    run.stop().await;
}

/// Text of `chars` characters drawn (by `seed`) from a palette that JSON escapes in every
/// way: control characters, quotes, backslashes, multi-byte and astral characters.
fn nasty_text(chars: usize, seed: u64) -> String {
    const PALETTE: [char; 10] = [
        'a', '\t', '"', '\\', '\u{0}', '班', '😀', '\n', '<', '\u{7f}',
    ];
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..chars)
        .map(|_| PALETTE[rng.usize(..PALETTE.len())])
        .collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 16, ..Default::default() })]

    /// Records of random sizes and content through enqueue → publish against a real
    /// Mosquitto: each is refused at enqueue with an error naming its stream, size and the
    /// limit, or delivered; nothing stays behind in any lane.
    #[test]
    fn any_record_is_refused_at_enqueue_or_delivered_and_the_lanes_keep_moving(
        recs in proptest::collection::vec((0usize..13, 0usize..40_000, proptest::prelude::any::<u64>()), 1..24)
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let dir = tempfile::tempdir().unwrap();
            let broker = Broker::start(&dir.path().join("mosq"), "");
            let col = Collector::start(broker.port, "ketang/v1/+/+/up/#").await;
            let store = open(dir.path()).await;
            let mut delivered = std::collections::BTreeSet::new();
            for (stream, chars, seed) in recs {
                let stream = Stream::ALL[stream];
                // Captured now: older telemetry and behaviour would be evicted by age.
                let record = OutboxRecord {
                    stream,
                    captured_at: chrono::Utc::now().fixed_offset(),
                    clock_synced: true,
                    body: json!({"text": nasty_text(chars, seed)}),
                };
                let encoded = serde_json::to_vec(&record.body).unwrap().len();
                match store.enqueue(record).await {
                    Ok(seq) => {
                        assert!(encoded <= MAX_RECORD_BYTES, "a {encoded}-byte body was accepted");
                        delivered.insert(seq);
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        assert!(matches!(e, Error::RecordTooLarge { .. }), "{msg}");
                        assert!(msg.contains(stream.as_str()) && msg.contains("65536"), "{msg}");
                        assert!(encoded > MAX_RECORD_BYTES - 400, "a {encoded}-byte body was refused: {msg}");
                    }
                }
            }
            let run = start(&store, settings(broker.port));
            let want = delivered.len();
            col.wait_for("every accepted record", 30, |c| c.len() >= want).await;
            let got: std::collections::BTreeSet<u64> = col
                .msgs
                .lock()
                .unwrap()
                .iter()
                .map(|(_, v, _)| v["seq"].as_u64().unwrap())
                .collect();
            assert_eq!(got, delivered);
            wait_empty(&store).await;
            run.stop().await;
        });
    }
}

/// Issue 15 part 3: an alarm reaches the broker even when the disk is full of records that
/// must be kept. Offline, the (capped) store fills with attendance until a record of the
/// alarm's size no longer fits; the alarm is refused by the store even after `make_room`,
/// so, as the daemon does (`Classroom::raise_alarm`), it is published directly through
/// [`Urgent`] (seq 0) and kept. When the broker comes, it goes out first, ahead of the
/// backlog; once the drained outbox has freed pages, it is stored with a real seq and sent
/// again (same `alarm_id`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_on_a_full_disk_goes_out_directly_first_and_is_stored_when_room_returns() {
    use ketang_sync::mqtt::{SyncWorker, Urgent};
    let dir = tempfile::tempdir().unwrap();
    let (store, _) =
        StoreHandle::open_capped(&dir.path().join("data"), identity(), Some(512 * 1024)).unwrap();
    let when = at("2026-11-23T08:01:00+08:00");
    let body = json!({"alarm_id": "a-full", "state": "raised", "source": "alarm", "drill": false});
    let filler = |i: u64| OutboxRecord {
        stream: Stream::Attendance,
        captured_at: when,
        clock_synced: true,
        // The alarm's body size, so the last page has no room for it either.
        body: json!({"alarm_id": format!("f{:05}", i % 100_000), "state": "raised", "source": "alarm", "drill": false}),
    };
    let mut filled = 0u64;
    loop {
        match store.enqueue(filler(filled)).await {
            Ok(_) => filled += 1,
            Err(Error::DiskFull { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let alarm = AlarmRecord {
        id: "a-full".into(),
        source: "alarm".into(),
        drill: false,
        raised_at: when,
        clock_synced: true,
    };
    let out = OutboxRecord {
        stream: Stream::Alarm,
        captured_at: when,
        clock_synced: true,
        body,
    };
    // The attendance filler's last insert may have failed on a page the alarm's rows do
    // not need (an index leaf of another key range: found when a new table moved the
    // pages). Records of the alarm's own stream and size fill what is left for it.
    let mut same_kind = 0usize;
    loop {
        let mut r = filler(100_000 + same_kind as u64);
        r.stream = Stream::Alarm;
        match store.enqueue(r).await {
            Ok(_) => same_kind += 1,
            Err(Error::DiskFull { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(matches!(
        store.raise_alarm(alarm.clone(), out.clone()).await,
        Err(Error::DiskFull { .. })
    ));
    store.make_room(when, true).await.unwrap();
    assert!(matches!(
        store.raise_alarm(alarm.clone(), out.clone()).await,
        Err(Error::DiskFull { .. })
    ));
    let (urgent, urgent_rx) = Urgent::channel();
    assert!(urgent.publish(
        Stream::Alarm,
        unsequenced_envelope(&identity(), &out).unwrap()
    ));

    // The broker comes; the collector listens before the board can reach it.
    let broker = Broker::start(&dir.path().join("mosq"), "");
    let col = Collector::start(broker.port, "ketang/v1/+/+/up/#").await;
    let gate = common::broker::free_port();
    let hooks = std::sync::Arc::new(Hooks::default());
    let stop = tokio_util::sync::CancellationToken::new();
    let (worker, _status) = SyncWorker::new(store.clone(), settings(gate), hooks, stop.clone());
    let task = tokio::spawn(worker.with_urgent(urgent_rx).run());
    common::broker::open_gate(gate, broker.port).await;
    col.wait_for("the direct alarm", 10, |c| !c.up("alarm").is_empty())
        .await;
    // Stored when there is room again (the daemon retries every second).
    let deadline = Instant::now() + Duration::from_secs(30);
    let seq = loop {
        match store.raise_alarm(alarm.clone(), out.clone()).await {
            Ok(seq) => break seq,
            Err(Error::DiskFull { .. }) => {
                assert!(Instant::now() < deadline, "no room after the drain");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    col.wait_for("the stored alarm and the backlog", 30, |c| {
        c.up("alarm").len() == 2 + same_kind && c.up("attendance").len() as u64 >= filled
    })
    .await;
    let msgs = col.msgs.lock().unwrap().clone();
    let first = &msgs[0];
    assert!(
        first.0.ends_with("/up/alarm"),
        "first uplink on {}",
        first.0
    );
    assert_eq!(first.1["seq"], 0);
    assert_eq!(first.1["body"]["alarm_id"], "a-full");
    let alarms = col.up("alarm");
    let stored: Vec<_> = alarms
        .iter()
        .filter(|a| a["body"]["alarm_id"] == "a-full" && a["seq"] != 0)
        .collect();
    assert_eq!(stored.len(), 1, "{alarms:?}");
    assert_eq!(stored[0]["seq"].as_u64(), Some(seq));
    stop.cancel();
    let _ = task.await;
}
