//! Whole recovery after an outage (`bench/recovery.sh`): a backlog of N records waits while
//! the broker is down for S seconds; from the moment the broker listens again until every
//! record is acknowledged (PUBACK), for
//! * Ketang: the real sync worker draining its SQLite outbox (shipped reconnect policy,
//!   no publish rate limit), and
//! * raw: a bare rumqttc client that retries every 100 ms, then publishes the same
//!   payloads from memory (QoS 1, the same in-flight window), the reference,
//!
//! alternating for R rounds in one run. Prints each round and the median ratio raw/Ketang
//! of the times (≥ 0.8 is the goal: Ketang at least 80 % of raw's speed).
//!
//!   recovery --mosquitto /usr/sbin/mosquitto --records 20000 --outage-s 30 --rounds 3
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use common::{Hooks, arg};
use ketang_sync::mqtt::{MqttSettings, SyncWorker};
use ketang_sync::{Identity, OutboxRecord, StoreHandle, Stream};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

struct Broker {
    mosquitto: String,
    conf: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    fn new(mosquitto: String, dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("m.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 0\nmax_queued_messages 0\n"),
        )
        .unwrap();
        Self {
            mosquitto,
            conf,
            port,
            child: None,
        }
    }
    fn up(&mut self) -> Instant {
        self.child = Some(
            Command::new(&self.mosquitto)
                .arg("-c")
                .arg(&self.conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("mosquitto starts"),
        );
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            std::thread::sleep(Duration::from_millis(1));
        }
        Instant::now()
    }
    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn identity() -> Identity {
    Identity {
        school_id: "hf-0042".into(),
        device_id: "kt-recovery".into(),
        classroom_id: "g7-c3".into(),
    }
}

fn records(n: usize) -> Vec<OutboxRecord> {
    let t0 = chrono::Utc::now().fixed_offset();
    (0..n)
        .map(|i| OutboxRecord {
            stream: Stream::Attendance,
            captured_at: t0 + TimeDelta::milliseconds(i as i64),
            clock_synced: true,
            body: serde_json::json!({"lesson_id": "2026-11-23/1", "student_id": format!("20250703{:02}", i % 40), "status": "present", "source": "card"}),
        })
        .collect()
}

/// Ketang: the worker runs through the outage; returns broker up → outbox empty.
async fn ketang(broker: &mut Broker, n: usize, outage: Duration) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = StoreHandle::open(&dir.path().join("data"), identity()).unwrap();
    let mut s = MqttSettings::new(
        "127.0.0.1".into(),
        broker.port,
        identity().school_id,
        identity().device_id,
    );
    s.max_publish_per_s = None;
    let stop = CancellationToken::new();
    let (w, status) = SyncWorker::new(store.clone(), s, Arc::new(Hooks), stop.clone());
    broker.up();
    let task = tokio::spawn(w.run());
    while !status.connected() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    broker.down();
    store.enqueue_batch(records(n)).await.unwrap();
    tokio::time::sleep(outage).await;
    let t = broker.up();
    loop {
        let pending: u64 = store.outbox_pending().await.unwrap().values().sum();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = t.elapsed();
    stop.cancel();
    let _ = task.await;
    store.shutdown().await.unwrap();
    broker.down();
    took
}

/// Raw: the same payloads from memory; retries every 100 ms from the start of the outage.
async fn raw(broker: &mut Broker, n: usize, outage: Duration, payloads: &[Vec<u8>]) -> Duration {
    let topic = format!(
        "ketang/v1/{}/{}/up/attendance",
        identity().school_id,
        identity().device_id
    );
    let port = broker.port;
    let payloads = payloads.to_vec();
    let started = Arc::new(tokio::sync::Notify::new());
    let s2 = started.clone();
    let client = tokio::spawn(async move {
        s2.notified().await;
        // Reconnect every 100 ms until CONNACK.
        let (c, mut el) = loop {
            let mut o = MqttOptions::new("raw-recovery", "127.0.0.1", port);
            o.set_inflight(100).set_keep_alive(Duration::from_secs(30));
            let (c, mut el) = AsyncClient::new(o, 400);
            let mut net = el.network_options();
            net.set_tcp_nodelay(true);
            el.set_network_options(net);
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => break (c, el),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let pump = tokio::spawn(async move {
            let mut acked = 0usize;
            while acked < n {
                if let Ok(Event::Incoming(Packet::PubAck(_))) = el.poll().await {
                    acked += 1;
                }
            }
        });
        for p in payloads {
            c.publish(topic.clone(), QoS::AtLeastOnce, false, p)
                .await
                .unwrap();
        }
        pump.await.unwrap();
        Instant::now()
    });
    started.notify_one();
    tokio::time::sleep(outage).await;
    let t = broker.up();
    let done = client.await.unwrap();
    broker.down();
    done - t
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mosquitto = arg("--mosquitto").unwrap_or_else(|| "/usr/sbin/mosquitto".into());
    let n: usize = arg("--records").map_or(20_000, |v| v.parse().unwrap());
    let outage = Duration::from_secs(arg("--outage-s").map_or(30, |v| v.parse().unwrap()));
    let rounds: usize = arg("--rounds").map_or(3, |v| v.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::new(mosquitto, dir.path());
    // The raw client sends byte-identical envelopes: take them from a store.
    let payloads: Vec<Vec<u8>> = {
        let d = tempfile::tempdir().unwrap();
        let (store, _) = StoreHandle::open(&d.path().join("data"), identity()).unwrap();
        store.enqueue_batch(records(n)).await.unwrap();
        let rows = ketang_sync::drain::fetch(&store, [0, 0, 0], n)
            .await
            .unwrap();
        store.shutdown().await.unwrap();
        rows.into_iter().map(|r| r.payload).collect()
    };
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let k = ketang(&mut broker, n, outage).await;
        let r = raw(&mut broker, n, outage, &payloads).await;
        let ratio = r.as_secs_f64() / k.as_secs_f64();
        println!(
            "recovery round {round}: {n} records after a {} s outage, broker up → all acknowledged: Ketang {:.3} s, raw rumqttc (100 ms retry) {:.3} s, ratio {ratio:.2}",
            outage.as_secs(),
            k.as_secs_f64(),
            r.as_secs_f64()
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "recovery: median ratio raw/Ketang {:.2} over {rounds} rounds (all: {:?})",
        ratios[ratios.len() / 2],
        ratios
            .iter()
            .map(|r| (r * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    );
}
