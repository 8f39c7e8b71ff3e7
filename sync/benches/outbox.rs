//! Outbox benchmarks, each against a reference measured in the same run:
//!
//! * capture: records/s through `StoreHandle::enqueue_batch` vs a raw batched rusqlite
//!   insert loop with the same durability (WAL, synchronous = FULL) and row shape;
//! * drain: a backlog to a real Mosquitto (started here on 127.0.0.1) through the sync
//!   worker vs a raw rumqttc QoS 1 publish loop of the same payloads, same inflight window.
//!
//! `cargo bench -p ketang-sync --bench outbox [-- N]` (N = records, default 100000).
//! `PROBE=1 cargo bench -p ketang-sync --bench outbox` measures the store alone: fetch and
//! acknowledge-delete rates, no broker (the "store-only" figure in `docs/benchmarks.md`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

#[path = "../tests/common/broker.rs"]
mod broker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, TimeDelta};
use ketang_sync::mqtt::{Command, CommandHandler, MqttSettings, SyncWorker};
use ketang_sync::{Identity, OutboxRecord, StoreHandle, Stream};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

struct Hooks;
impl CommandHandler for Hooks {
    fn now(&self) -> (DateTime<FixedOffset>, bool) {
        (chrono::Utc::now().fixed_offset(), true)
    }
    async fn command(&self, _: Command) -> Result<(), Vec<String>> {
        Err(vec![])
    }
    async fn applied(&self, _: &str) {}
}

fn identity() -> Identity {
    Identity {
        school_id: "bench-school".into(),
        device_id: "bench-1".into(),
        classroom_id: "g7-c3".into(),
    }
}

fn records(n: usize) -> Vec<OutboxRecord> {
    let t0 = DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap();
    (0..n)
        .map(|i| OutboxRecord {
            stream: Stream::Telemetry,
            captured_at: t0 + TimeDelta::milliseconds(i as i64),
            clock_synced: true,
            body: serde_json::json!({"cpu_temp_c": 48.5, "uptime_s": i, "wifi_rssi": -61}),
        })
        .collect()
}

const BATCH: usize = 1000;

async fn capture_ours(n: usize) -> (f64, Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    let recs = records(n);
    let t = Instant::now();
    let mut it = recs.into_iter().peekable();
    while it.peek().is_some() {
        let batch: Vec<_> = it.by_ref().take(BATCH).collect();
        store.enqueue_batch(batch).await.unwrap();
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    let payloads = ketang_sync::drain::fetch(&store, [0; 3], n)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.payload)
        .collect();
    store.shutdown().await.unwrap();
    (rate, payloads)
}

fn capture_raw(payloads: &[Vec<u8>]) -> f64 {
    // The same row shape as ours, ids included: each row's 36-character UUID, taken from
    // its envelope before the clock starts (until 2026-12 the reference inserted "id-N").
    let ids: Vec<String> = payloads
        .iter()
        .map(|p| {
            serde_json::from_slice::<serde_json::Value>(p).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut c = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.execute_batch(
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, stream TEXT NOT NULL, priority INTEGER NOT NULL,
         captured_at TEXT NOT NULL, clock_synced INTEGER NOT NULL, payload BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
         enqueued_at TEXT NOT NULL) STRICT; CREATE INDEX d ON outbox (priority, seq); CREATE INDEX s ON outbox (stream, seq);",
    )
    .unwrap();
    let t = Instant::now();
    for (b, chunk) in payloads.chunks(BATCH).enumerate() {
        let tx = c.transaction().unwrap();
        {
            let mut st = tx
                .prepare_cached("INSERT INTO outbox (id, seq, stream, priority, captured_at, clock_synced, payload, enqueued_at) VALUES (?1, ?2, 'telemetry', 2, ?3, 1, ?4, ?3)")
                .unwrap();
            for (i, p) in chunk.iter().enumerate() {
                let seq = (b * BATCH + i) as i64;
                st.execute(rusqlite::params![
                    ids[b * BATCH + i],
                    seq,
                    "2026-11-23T08:00:00.000+08:00",
                    p
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    payloads.len() as f64 / t.elapsed().as_secs_f64()
}

async fn drain_ours(port: u16, n: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    for chunk in records(n).chunks(10_000) {
        store.enqueue_batch(chunk.to_vec()).await.unwrap();
    }
    let id = identity();
    let mut s = MqttSettings::new("127.0.0.1".into(), port, id.school_id, id.device_id);
    s.max_publish_per_s = None;
    s.budgets = vec![];
    let stop = CancellationToken::new();
    let (w, status) = SyncWorker::new(store.clone(), s, Arc::new(Hooks), stop.clone());
    let t = Instant::now();
    let task = tokio::spawn(w.run());
    while status.acked.load(std::sync::atomic::Ordering::Relaxed) < n as u64 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    stop.cancel();
    task.await.unwrap();
    assert_eq!(
        store.outbox_pending().await.unwrap().values().sum::<u64>(),
        0
    );
    store.shutdown().await.unwrap();
    rate
}

async fn drain_raw(port: u16, payloads: Vec<Vec<u8>>) -> f64 {
    let mut o = MqttOptions::new("raw-bench", "127.0.0.1", port);
    o.set_inflight(100).set_clean_session(true);
    let (client, mut el) = AsyncClient::new(o, 200);
    let n = payloads.len();
    let t = Instant::now();
    let publisher = tokio::spawn(async move {
        for p in payloads {
            client
                .publish(
                    "ketang/v1/bench-school/raw/up/telemetry",
                    QoS::AtLeastOnce,
                    false,
                    p,
                )
                .await
                .unwrap();
        }
        client
    });
    let mut acked = 0;
    while acked < n {
        if let Event::Incoming(Packet::PubAck(_)) = el.poll().await.unwrap() {
            acked += 1;
        }
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    let _ = publisher.await;
    rate
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = after
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the ')'.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn line(name: &str, ours: f64, raw: f64) {
    println!(
        "{name}: ours {ours:.0}/s, raw {raw:.0}/s, ratio {:.2}",
        ours / raw
    );
}

async fn probe(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(dir.path(), identity()).unwrap();
    for chunk in records(n).chunks(10_000) {
        store.enqueue_batch(chunk.to_vec()).await.unwrap();
    }
    let t = Instant::now();
    let mut k = 0;
    let mut cursor = [0u64; 3];
    while k < n {
        let rows = ketang_sync::drain::fetch(&store, cursor, 50).await.unwrap();
        for r in &rows {
            cursor[usize::from(r.lane)] = r.seq;
        }
        k += rows.len();
        ketang_sync::drain::ack(&store, rows.into_iter().map(|r| r.seq).collect())
            .await
            .unwrap();
    }
    store.ping().await.unwrap();
    println!(
        "probe: fetch+ack {:.0}/s",
        n as f64 / t.elapsed().as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` this is a smoke run.
    let bench = std::env::args().any(|a| a == "--bench");
    let default_n = if bench { 100_000 } else { 2_000 };
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(default_n);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::var_os("PROBE").is_some() {
        rt.block_on(probe(n));
        return;
    }
    // Alternate ours and the reference, three rounds each, and compare medians: disk and
    // loopback timings swing between runs on a shared machine.
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    rt.block_on(async {
        let (mut ours, mut raw) = (vec![], vec![]);
        let mut payloads = vec![];
        for _ in 0..3 {
            let (o, p) = capture_ours(n).await;
            ours.push(o);
            raw.push(capture_raw(&p));
            payloads = p;
        }
        line("capture", median(ours), median(raw));

        let dir = tempfile::tempdir().unwrap();
        let broker = broker::Broker::start(&dir.path().join("broker"), "persistence false");
        let (mut ours, mut raw) = (vec![], vec![]);
        let (mut cpu_ours, mut cpu_raw) = (0.0, 0.0);
        for _ in 0..3 {
            let c = cpu_s();
            raw.push(drain_raw(broker.port, payloads.clone()).await);
            cpu_raw += cpu_s() - c;
            let c = cpu_s();
            ours.push(drain_ours(broker.port, n).await);
            cpu_ours += cpu_s() - c;
        }
        line("drain", median(ours), median(raw));
        let per = |cpu: f64| cpu * 1e6 / (3.0 * n as f64);
        println!("drain CPU of this process per record: ours {:.1} µs (incl. filling the backlog), raw {:.1} µs", per(cpu_ours), per(cpu_raw));
    });
}
