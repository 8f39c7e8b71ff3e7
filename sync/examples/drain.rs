//! A board's sync on its own, for the partition test (`sync/tests/partition/run.sh`): opens a
//! store in `--data DIR`, optionally fills it with `--fill N` attendance records, drains it
//! to `--broker HOST:PORT` with the real sync worker until the outbox is empty, and prints
//! what happened. Exit 0 when drained, 1 on timeout.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

#[path = "common/mod.rs"]
mod common;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta};
use common::{Hooks, arg};
use ketang_sync::mqtt::{MqttSettings, SyncWorker};
use ketang_sync::{Identity, OutboxRecord, StoreHandle, Stream};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() {
    let data = arg("--data").expect("--data DIR");
    let broker = arg("--broker").expect("--broker HOST:PORT");
    let (host, port) = broker.rsplit_once(':').expect("HOST:PORT");
    let fill: usize = arg("--fill").map_or(0, |n| n.parse().unwrap());
    let timeout = Duration::from_secs(arg("--timeout").map_or(600, |n| n.parse().unwrap()));
    let rate: u32 = arg("--rate").map_or(100, |n| n.parse().unwrap());

    let id = Identity {
        school_id: "netns-school".into(),
        device_id: "netns-board".into(),
        classroom_id: "g7-c3".into(),
    };
    let (store, _) = StoreHandle::open(std::path::Path::new(&data), id.clone()).unwrap();
    if fill > 0 {
        let t0 = DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap();
        let recs = (0..fill)
            .map(|i| OutboxRecord {
                stream: Stream::Attendance,
                captured_at: t0 + TimeDelta::seconds(i as i64),
                clock_synced: true,
                body: serde_json::json!({"i": i}),
            })
            .collect();
        store.enqueue_batch(recs).await.unwrap();
    }
    let mut s = MqttSettings::new(
        host.into(),
        port.parse().unwrap(),
        id.school_id,
        id.device_id,
    );
    s.max_publish_per_s = NonZeroU32::new(rate);
    s.keep_alive = Duration::from_secs(10);
    s.boot_id = "netns".into();
    let stop = CancellationToken::new();
    let (w, status) = SyncWorker::new(store.clone(), s, Arc::new(Hooks), stop.clone());
    let task = tokio::spawn(w.run());
    let t = Instant::now();
    let mut last = String::new();
    let mut shown = Instant::now();
    let drained = loop {
        let pending: u64 = store.outbox_pending().await.unwrap().values().sum();
        let state = status.state();
        if state != last || shown.elapsed() >= Duration::from_secs(5) {
            shown = Instant::now();
            println!(
                "drain: t={:>5.1}s pending={pending} state={state}",
                t.elapsed().as_secs_f64()
            );
            last = state;
        }
        if pending == 0 {
            break true;
        }
        if t.elapsed() > timeout {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "drain: {} after {:.1}s: published {} acked {} connections {} attempts {} rejected {}",
        if drained { "drained" } else { "TIMED OUT" },
        t.elapsed().as_secs_f64(),
        status.published.load(Ordering::Relaxed),
        status.acked.load(Ordering::Relaxed),
        status.connections.load(Ordering::Relaxed),
        status.attempts.load(Ordering::Relaxed),
        status.rejected.load(Ordering::Relaxed)
    );
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    store.shutdown().await.unwrap();
    std::process::exit(i32::from(!drained));
}
