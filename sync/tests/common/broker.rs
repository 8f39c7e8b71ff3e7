//! A real Mosquitto on 127.0.0.1 for tests (`ketang_testkit::Broker`), a gate, and a
//! collecting subscriber.
#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

pub use ketang_testkit::{Broker, free_port};

/// Forwards connections on `port` to a broker on `target`, from when it is opened: a board
/// pointed at `port` finds no broker until then, so a test can subscribe its collector
/// first (non-retained messages published before a subscription are dropped by the
/// broker, and a retrying worker may otherwise connect and drain first).
pub async fn open_gate(port: u16, target: u16) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("gate port free");
    tokio::spawn(async move {
        while let Ok((mut board, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut broker) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut board, &mut broker).await;
                }
            });
        }
    });
}

/// A subscriber that records every message; persistent session so it survives broker
/// restarts.
#[derive(Clone)]
pub struct Collector {
    pub msgs: Arc<Mutex<Vec<(String, serde_json::Value, Instant)>>>,
    /// Keeps the subscriber alive: the test's own MQTT client, or a `mosquitto_sub`.
    _subscriber: Arc<Subscriber>,
}

enum Subscriber {
    Client(AsyncClient),
    Native(std::process::Child, tempfile::TempDir),
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if let Subscriber::Native(child, _) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Collector {
    pub async fn start(port: u16, filter: &str) -> Collector {
        let mut o = MqttOptions::new(
            format!("collector-{}", fastrand::u32(..)),
            "127.0.0.1",
            port,
        );
        o.set_clean_session(false)
            .set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(16 << 20, 16 << 20)
            .set_inflight(1000);
        let (client, mut el) = AsyncClient::new(o, 1000);
        let msgs: Arc<Mutex<Vec<(String, serde_json::Value, Instant)>>> = Arc::default();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let mut ready = Some(ready_tx);
        let m = msgs.clone();
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let c2 = client.clone();
        let f = filter.to_owned();
        tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::ConnAck(c))) => {
                        if !c.session_present {
                            let _ = c2.subscribe(f.clone(), QoS::AtLeastOnce).await;
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let v =
                            serde_json::from_slice(&p.payload).unwrap_or(serde_json::Value::Null);
                        m.lock().unwrap().push((p.topic, v, Instant::now()));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("collector subscribed")
            .unwrap();
        Collector {
            msgs,
            _subscriber: Arc::new(Subscriber::Client(client)),
        }
    }

    /// The same collector as a native `mosquitto_sub` (persistent session, QoS 1; it
    /// reconnects by itself) writing to a file that a thread follows. For tests that kill
    /// the broker with `kill -9`: Mosquitto loses what it acknowledged but had not yet
    /// handed to a subscriber, so the subscriber must keep up with the board whatever the
    /// test binary runs under (the arm64 stage runs it under qemu-user at nice 19, where
    /// the test's own client fell 106 records behind and a kill lost them in the broker).
    pub async fn start_native(port: u16, filter: &str) -> Collector {
        use std::io::{BufRead, Seek};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("collected.txt");
        let out = std::fs::File::create(&path).unwrap();
        let child = std::process::Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-c"])
            .args(["-i", &format!("collector-{}", fastrand::u32(..))])
            .args(["-k", "5", "-v", "-t", filter])
            .stdout(out)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto_sub (Debian mosquitto-clients) runs");
        let msgs: Arc<Mutex<Vec<(String, serde_json::Value, Instant)>>> = Arc::default();
        let m = std::sync::Arc::downgrade(&msgs);
        std::thread::spawn(move || {
            let mut file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
            let mut line = String::new();
            // Until the collector is dropped; a line without its newline is read again.
            while let Some(m) = m.upgrade() {
                let at = file.stream_position().unwrap();
                line.clear();
                match file.read_line(&mut line) {
                    Ok(_) if line.ends_with('\n') => {
                        let l = line.trim_end();
                        let (topic, payload) = l.split_once(' ').unwrap_or((l, ""));
                        let v = serde_json::from_str(payload).unwrap_or(serde_json::Value::Null);
                        m.lock()
                            .unwrap()
                            .push((topic.to_owned(), v, Instant::now()));
                    }
                    _ => {
                        file.seek(std::io::SeekFrom::Start(at)).unwrap();
                        drop(m);
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
        });
        let c = Collector {
            msgs,
            _subscriber: Arc::new(Subscriber::Native(child, dir)),
        };
        // Subscribed once a probe on its filter comes through.
        let probe = filter.replace("/#", "/probe").replace('+', "x");
        c.await_probe(port, &probe).await;
        c
    }

    /// Publishes a probe on a topic the collector's filter matches and waits until it
    /// arrives: the collector is connected and subscribed.
    pub async fn await_probe(&self, port: u16, topic: &str) {
        let before = self.len();
        let mut o = MqttOptions::new(format!("probe-{}", fastrand::u32(..)), "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(5));
        let (c, mut el) = AsyncClient::new(o, 10);
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.len() == before {
            assert!(Instant::now() < deadline, "the collector did not come back");
            let _ = c.try_publish(topic, QoS::AtLeastOnce, false, "{}");
            let until = Instant::now() + Duration::from_millis(200);
            while Instant::now() < until {
                let _ = tokio::time::timeout(Duration::from_millis(50), el.poll()).await;
            }
        }
        self.msgs.lock().unwrap().retain(|(t, _, _)| t != topic);
    }

    pub fn len(&self) -> usize {
        self.msgs.lock().unwrap().len()
    }

    /// Saves the messages of `streams` (and status messages) as `mosquitto_sub -v` lines in
    /// `target/contract/{name}.txt`, where `./scripts/test` validates every capture against
    /// docs/asyncapi.yaml (scripts/contract/validate.mjs). Only streams whose bodies the
    /// code under test made itself: bodies a test made up are not the contract.
    pub fn save_contract(&self, name: &str, streams: &[&str]) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/contract");
        std::fs::create_dir_all(&dir).unwrap();
        let mut out = String::new();
        for (t, v, _) in self.msgs.lock().unwrap().iter() {
            let keep =
                t.ends_with("/status") || streams.iter().any(|s| t.ends_with(&format!("/up/{s}")));
            if keep {
                out.push_str(&format!("{t} {v}\n"));
            }
        }
        std::fs::write(dir.join(format!("{name}.txt")), out).unwrap();
    }

    /// Messages on topics ending in `/up/{stream}`.
    pub fn up(&self, stream: &str) -> Vec<serde_json::Value> {
        let suffix = format!("/up/{stream}");
        self.msgs
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _, _)| t.ends_with(&suffix))
            .map(|(_, v, _)| v.clone())
            .collect()
    }

    pub async fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&Collector) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !pred(self) {
            assert!(
                Instant::now() < deadline,
                "timed out after {secs} s waiting for {what} ({} messages so far)",
                self.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
