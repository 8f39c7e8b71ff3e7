//! Fleet reconnect simulation (`bench/fleet-reconnect.sh`): N boards, each a real rumqttc
//! client with a reconnect policy, connected to one Mosquitto that this program starts,
//! kills (-9) and, after an outage, starts again. Prints, per policy: connection attempts
//! per second while the broker is down and after it is back, the time until every board is
//! back, the median, p99 and slowest board.
//!
//!   fleet --mosquitto /usr/sbin/mosquitto --boards 5553 --outage-s 30 --policy ketang
//!
//! Policies: `ketang` (the sync worker's [`Reconnect`] with its defaults), `old` (main
//! before issue 15: 0.5 s doubling to 60 s, full jitter), `fixed100` (a naive client that
//! retries every 100 ms).
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

#[path = "common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::arg;
use ketang_sync::mqtt::{Failure, MqttSettings, Reconnect, connect_failure};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    Ketang,
    Old,
    Fixed100,
}

enum Delay {
    Ketang(Reconnect),
    Old(u32),
    Fixed,
}

impl Delay {
    fn new(p: Policy) -> Self {
        match p {
            Policy::Ketang => {
                let d = MqttSettings::new(String::new(), 0, String::new(), String::new());
                Delay::Ketang(Reconnect::new(d.backoff, d.refused_backoff))
            }
            Policy::Old => Delay::Old(0),
            Policy::Fixed100 => Delay::Fixed,
        }
    }
    fn next(&mut self, f: Failure) -> Duration {
        match self {
            Delay::Ketang(r) => r.next_delay(f),
            Delay::Old(attempt) => {
                let min = Duration::from_millis(500);
                let cap = min
                    .saturating_mul(1u32 << (*attempt).min(16))
                    .min(Duration::from_secs(60));
                *attempt += 1;
                let span = (cap - min).as_millis() as u64;
                min + Duration::from_millis(fastrand::u64(0..=span))
            }
            Delay::Fixed => Duration::from_millis(100),
        }
    }
    fn connected(&mut self) {
        match self {
            Delay::Ketang(r) => r.stable(),
            Delay::Old(a) => *a = 0,
            Delay::Fixed => {}
        }
    }
}

struct Shared {
    /// Connection attempts, per 100 ms slot since the start.
    attempts: Vec<AtomicU64>,
    /// Boards connected now.
    connected: AtomicUsize,
    /// For each board: ms since the start when it last got a CONNACK.
    back_at: Vec<AtomicU64>,
    t0: Instant,
}

impl Shared {
    fn slot(&self) -> usize {
        ((self.t0.elapsed().as_millis() / 100) as usize).min(self.attempts.len() - 1)
    }
}

async fn board(i: usize, port: u16, policy: Policy, shared: Arc<Shared>) {
    let mut delay = Delay::new(policy);
    let host = format!("127.0.0.{}", 1 + i % 200);
    loop {
        shared.attempts[shared.slot()].fetch_add(1, Ordering::Relaxed);
        let mut o = MqttOptions::new(format!("board-{i}"), host.clone(), port);
        o.set_keep_alive(Duration::from_secs(60))
            .set_clean_session(true);
        let (_client, mut el) = AsyncClient::new(o, 4);
        let mut net = el.network_options();
        net.set_connection_timeout(5);
        el.set_network_options(net);
        let failure = match el.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                shared.back_at[i].store(shared.t0.elapsed().as_millis() as u64, Ordering::Relaxed);
                shared.connected.fetch_add(1, Ordering::Relaxed);
                delay.connected();
                // Stay connected until the broker goes away.
                while el.poll().await.is_ok() {}
                shared.connected.fetch_sub(1, Ordering::Relaxed);
                Failure::Unreachable
            }
            Ok(_) => Failure::Refused,
            Err(e) => connect_failure(&e),
        };
        tokio::time::sleep(delay.next(failure)).await;
    }
}

fn spawn_broker(mosquitto: &str, conf: &PathBuf, port: u16) -> Child {
    let c = Command::new(mosquitto)
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not listen");
        std::thread::sleep(Duration::from_millis(5));
    }
    c
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mosquitto = arg("--mosquitto").unwrap_or_else(|| "/usr/sbin/mosquitto".into());
    let n: usize = arg("--boards").map_or(1000, |v| v.parse().unwrap());
    let outage = Duration::from_secs(arg("--outage-s").map_or(30, |v| v.parse().unwrap()));
    let policy = match arg("--policy").as_deref().unwrap_or("ketang") {
        "ketang" => Policy::Ketang,
        "old" => Policy::Old,
        "fixed100" => Policy::Fixed100,
        p => panic!("unknown policy {p}"),
    };
    let name = arg("--policy").unwrap_or_else(|| "ketang".into());
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.path().join("m.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 0.0.0.0\nallow_anonymous true\nmax_connections -1\npersistence false\n"
        ),
    )
    .unwrap();
    let mut broker = spawn_broker(&mosquitto, &conf, port);
    let horizon = outage + Duration::from_secs(240);
    let shared = Arc::new(Shared {
        attempts: (0..horizon.as_millis() / 100 + 1)
            .map(|_| AtomicU64::new(0))
            .collect(),
        connected: AtomicUsize::new(0),
        back_at: (0..n).map(|_| AtomicU64::new(0)).collect(),
        t0: Instant::now(),
    });
    // The fleet comes up spread over 10 s (boards booting), then settles.
    for i in 0..n {
        let s = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(fastrand::u64(0..10_000))).await;
            board(i, port, policy, s).await;
        });
    }
    let t = Instant::now();
    while shared.connected.load(Ordering::Relaxed) < n {
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "the fleet never all connected: {}",
            shared.connected.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Outage.
    let _ = broker.kill();
    let _ = broker.wait();
    let down_slot = shared.slot();
    tokio::time::sleep(outage).await;
    let up_slot = shared.slot();
    let up_ms = shared.t0.elapsed().as_millis() as u64;
    broker = spawn_broker(&mosquitto, &conf, port);
    let t = Instant::now();
    let mut all_back = None;
    while t.elapsed() < Duration::from_secs(200) {
        let back = shared
            .back_at
            .iter()
            .filter(|b| b.load(Ordering::Relaxed) >= up_ms)
            .count();
        if back == n {
            all_back = Some(t.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let end_slot = shared.slot();
    let _ = broker.kill();
    let _ = broker.wait();
    let per_s = |a: usize, b: usize| -> (f64, f64) {
        let v: Vec<u64> = (a..b.max(a + 1))
            .map(|i| shared.attempts[i].load(Ordering::Relaxed))
            .collect();
        let sum: u64 = v.iter().sum();
        let peak = v.iter().copied().max().unwrap_or(0);
        (sum as f64 * 10.0 / v.len() as f64, peak as f64 * 10.0)
    };
    // Skip the first second of the outage (every board's first retry).
    let (down_mean, down_peak) = per_s(down_slot + 10, up_slot);
    let (up_mean, up_peak) = per_s(up_slot, end_slot.max(up_slot + 10));
    let mut back: Vec<u64> = shared
        .back_at
        .iter()
        .map(|b| b.load(Ordering::Relaxed).saturating_sub(up_ms))
        .collect();
    back.sort_unstable();
    println!(
        "fleet policy={name} boards={n} outage={}s: attempts/s while down mean {down_mean:.0} (peak {down_peak:.0}); after up mean {up_mean:.0} (peak {up_peak:.0}); back: median {} ms, p99 {} ms, slowest {} ms; all back {}",
        outage.as_secs(),
        percentile(&back, 0.5),
        percentile(&back, 0.99),
        back.last().copied().unwrap_or(0),
        all_back.map_or("NOT within 200 s".into(), |d| format!(
            "after {:.2} s",
            d.as_secs_f64()
        )),
    );
    std::process::exit(0);
}
