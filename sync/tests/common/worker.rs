//! The sync worker under test: hooks, start/stop, settings, records and downlinks.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, TimeDelta};
use ketang_sync::mqtt::{Command, CommandHandler, MqttSettings, SyncStatus, SyncWorker};
use ketang_sync::*;
use rumqttc::QoS;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{at, identity};

#[derive(Default)]
pub struct Hooks {
    pub applied: Mutex<Vec<String>>,
}

impl CommandHandler for Hooks {
    fn now(&self) -> (DateTime<FixedOffset>, bool) {
        (
            chrono::Utc::now().with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap()),
            true,
        )
    }
    async fn command(&self, cmd: Command) -> Result<(), Vec<String>> {
        Err(vec![format!("unknown command {:?}", cmd.name)])
    }
    async fn applied(&self, kind: &str) {
        self.applied.lock().unwrap().push(kind.to_owned());
    }
}

pub struct Running {
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    pub status: Arc<SyncStatus>,
    pub hooks: Arc<Hooks>,
}

impl Running {
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("worker stops")
            .unwrap();
    }
}

pub fn settings(port: u16) -> MqttSettings {
    let id = identity();
    let mut s = MqttSettings::new("127.0.0.1".into(), port, id.school_id, id.device_id);
    s.boot_id = "boot-test".into();
    s.version = "test".into();
    s.max_publish_per_s = None;
    s.backoff = (Duration::from_millis(100), Duration::from_millis(500));
    s
}

/// The worker's state once `pred` holds, or after 10 s: a refused TLS handshake can take
/// more than a second or two to be reported on a loaded machine (the callers then assert).
pub async fn state_when(run: &Running, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = run.status.state();
        if pred(&state) || Instant::now() > deadline {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn start(store: &StoreHandle, s: MqttSettings) -> Running {
    let hooks = Arc::new(Hooks::default());
    let stop = CancellationToken::new();
    let (w, status) = SyncWorker::new(store.clone(), s, hooks.clone(), stop.clone());
    Running {
        stop,
        task: tokio::spawn(w.run()),
        status,
        hooks,
    }
}

pub fn records(stream: Stream, n: usize, start: &str) -> Vec<OutboxRecord> {
    let t0 = at(start);
    (0..n)
        .map(|i| OutboxRecord {
            stream,
            captured_at: t0 + TimeDelta::seconds(i as i64),
            clock_synced: true,
            body: json!({"i": i}),
        })
        .collect()
}

pub async fn open(dir: &std::path::Path) -> StoreHandle {
    StoreHandle::open(&dir.join("data"), identity()).unwrap().0
}

/// Every seq received exactly or at least once, and in increasing order per stream.
pub fn seqs(msgs: &[serde_json::Value]) -> Vec<u64> {
    msgs.iter().map(|m| m["seq"].as_u64().unwrap()).collect()
}

pub async fn publish_down(port: u16, kind: &str, payload: Vec<u8>, device_topic: bool) {
    let mut o =
        rumqttc::MqttOptions::new(format!("cloud-{}", fastrand::u32(..)), "127.0.0.1", port);
    o.set_max_packet_size(4 << 20, 4 << 20);
    let (c, mut el) = rumqttc::AsyncClient::new(o, 10);
    let who = if device_topic {
        identity().device_id
    } else {
        "all".into()
    };
    let topic = format!("ketang/v1/{}/{who}/down/{kind}", identity().school_id);
    c.publish(topic, QoS::AtLeastOnce, false, payload)
        .await
        .unwrap();
    loop {
        if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) = el.poll().await {
            break;
        }
    }
    let _ = c.disconnect().await;
}

pub fn down(id: &str, kind: &str, body: serde_json::Value) -> serde_json::Value {
    json!({"schema": "ketang.v1", "id": id, "kind": kind, "school_id": identity().school_id, "device_id": identity().device_id,
           "issued_at": "2026-11-22T08:00:00+08:00", "body": body})
}
