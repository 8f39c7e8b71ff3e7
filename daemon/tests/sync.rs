//! The daemon against a real Mosquitto: killed with -9 mid-drain and restarted, nothing is
//! lost and every duplicate is detectable. Enabled by `mqtt-integration-tests`.
#![cfg(feature = "mqtt-integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::mqtt::*;
use common::*;
use ketang_sync::{Identity, OutboxRecord, StoreHandle, Stream};

/// `mosquitto_sub` collecting uplink envelopes into a shared vector.
fn collector(
    port: u16,
) -> (
    Proc,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    let mut child = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            "ketang/+/+/+/up/#",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub is installed");
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let got: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> = std::sync::Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                g.lock().unwrap().push(v);
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    (Proc(child), got)
}

/// Waits (up to 20 s) until the board is connected and subscribed: its first records arrive.
fn wait_first_publish(got: &std::sync::Mutex<Vec<serde_json::Value>>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the board never published");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The body of the ack to downlink `id` among the collected envelopes (waits up to 30 s).
fn ack_for(got: &std::sync::Mutex<Vec<serde_json::Value>>, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(a) = got
            .lock()
            .unwrap()
            .iter()
            .find(|e| e["stream"] == "ack" && e["body"]["downlink_id"] == id)
        {
            return a["body"].clone();
        }
        assert!(Instant::now() < deadline, "no ack for {id}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn demo(data: &std::path::Path, port: u16) -> Proc {
    demo_args(data, port, &[])
}

fn demo_args(data: &std::path::Path, port: u16, extra: &[&str]) -> Proc {
    Proc(
        Command::new(BIN)
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--clock",
                MONDAY_0755,
                "--max-publish-per-s",
                "0",
                "--broker",
                &format!("mqtt://127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(data.with_extension("log")).unwrap())
            .spawn()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_drain_and_restarted_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A backlog made while the school was offline.
    let n: u64 = 30_000;
    let (store, _) = StoreHandle::open(
        &data,
        Identity {
            school_id: "demo-school".into(),
            device_id: "demo-board-1".into(),
            classroom_id: "g7-c3".into(),
        },
    )
    .unwrap();
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-20T08:00:00+08:00").unwrap();
    let recs: Vec<_> = (0..n)
        .map(|i| OutboxRecord {
            stream: Stream::Attendance,
            captured_at: t0 + chrono::TimeDelta::seconds(i as i64),
            clock_synced: true,
            body: serde_json::json!({"i": i}),
        })
        .collect();
    store.enqueue_batch(recs).await.unwrap();
    store.shutdown().await.unwrap();

    let port = free_port();
    let _broker = mosquitto(&dir.path().join("broker"), port);
    let (_sub, got) = collector(port);
    let mut d = demo(&data, port);
    let deadline = Instant::now() + Duration::from_secs(60);
    while (got.lock().unwrap().len() as u64) < n / 10 {
        assert!(
            Instant::now() < deadline,
            "drain did not start: {}",
            std::fs::read_to_string(data.with_extension("log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    d.0.kill().unwrap(); // SIGKILL
    d.0.wait().unwrap();
    let at_kill = got.lock().unwrap().len() as u64;
    assert!(
        at_kill < n,
        "the kill must land mid-drain ({at_kill} of {n})"
    );
    drop(d);

    let _d = demo(&data, port);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let unique: BTreeSet<u64> = got
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["stream"] == "attendance")
            .map(|v| v["seq"].as_u64().unwrap())
            .collect();
        if unique.len() as u64 == n {
            assert_eq!(unique, (1..=n).collect::<BTreeSet<_>>());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} arrived after the restart",
            unique.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let all = got.lock().unwrap().clone();
    let mut ids: HashMap<u64, String> = HashMap::new();
    for v in all.iter().filter(|v| v["stream"] == "attendance") {
        let id = v["id"].as_str().unwrap().to_owned();
        assert_eq!(
            ids.entry(v["seq"].as_u64().unwrap())
                .or_insert_with(|| id.clone()),
            &id,
            "a duplicate must carry its original id"
        );
    }
    let dups = all.iter().filter(|v| v["stream"] == "attendance").count() as u64 - n;
    println!(
        "daemon kill -9 after {at_kill} of {n} records: {dups} duplicates (all detectable by id and seq)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_whiteboard_commands_are_executed_and_acked_and_bad_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let _broker = mosquitto(&dir.path().join("broker"), port);
    let (_sub, got) = collector(port);
    let _demo = demo(&data, port);
    let send = |id: &str, body: &str| send_command(port, id, body);
    let ack = |id: &str| ack_for(&got, id);
    // Wait until the board is connected and subscribed (its first records arrive).
    wait_first_publish(&got);
    send(
        "dl-wb-1",
        r#"{"name":"whiteboard.input","args":{"input":"hdmi2"}}"#,
    );
    let a = ack("dl-wb-1");
    assert_eq!(a["ok"], true, "{a}");
    send(
        "dl-wb-2",
        r#"{"name":"whiteboard.power","args":{"on":"yes"}}"#,
    );
    let a = ack("dl-wb-2");
    assert_eq!(a["ok"], false);
    assert!(
        a["problems"][0]
            .as_str()
            .unwrap()
            .contains("argument \"on\": invalid type: string \"yes\", expected a boolean"),
        "{a}"
    );
    send("dl-wb-3", r#"{"name":"format.disk","args":{}}"#);
    let a = ack("dl-wb-3");
    assert!(
        a["problems"][0]
            .as_str()
            .unwrap()
            .contains("whiteboard.power"),
        "{a}"
    );
    // The executed command is on the whiteboard stream, from the cloud.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if got.lock().unwrap().iter().any(|e| {
            e["stream"] == "whiteboard"
                && e["body"]["source"] == "cloud"
                && e["body"]["input"] == "hdmi2"
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no whiteboard record from the cloud command"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_update_command_fetches_the_bundle_checks_its_hash_and_hands_it_over() {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let _broker = mosquitto(&dir.path().join("broker"), port);
    let (_sub, got) = collector(port);
    // The bundle's server: HTTPS with a CA of its own, which the board is told to trust.
    let pki = dir.path().join("pki");
    ketang_testkit::pki(&pki, "Update server");
    let ca = pki.join("ca.pem");
    let _demo = demo_args(
        &data,
        port,
        &["--accept-updates", "--update-ca", ca.to_str().unwrap()],
    );
    let bundle: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let sha: String = sha2::Sha256::digest(&bundle)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("bundle.raucb"), &bundle).unwrap();
    // A bundle over the board's limit (demo: 2048 MiB is too big to serve here, so the
    // limit is checked in daemon/src/system/download.rs's tests; this one checks globbing).
    std::fs::write(www.join("b[1-4].raucb"), b"not a bundle").unwrap();
    let server = ketang_testkit::HttpsServer::start(&www, &pki);
    let https = server.port;
    let url = format!("https://127.0.0.1:{https}/bundle.raucb");
    let send = |id: &str, body: &str| send_command(port, id, body);
    let find = |what: &str, pred: &dyn Fn(&serde_json::Value) -> bool| -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(e) = got.lock().unwrap().iter().find(|e| pred(e)) {
                return e["body"].clone();
            }
            assert!(Instant::now() < deadline, "no {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let ack = |id: &str| {
        find(id, &|e| {
            e["stream"] == "ack" && e["body"]["downlink_id"] == id
        })
    };
    wait_first_publish(&got);
    let spool = data.join("update");

    // Bad arguments: refused in the ack, each problem named; plain http is refused.
    send(
        "dl-up-0",
        r#"{"name":"system.update","args":{"url":"ftp://x/b","sha256":"zz"}}"#,
    );
    let a = ack("dl-up-0");
    assert_eq!(a["ok"], false, "{a}");
    assert_eq!(a["problems"].as_array().unwrap().len(), 2, "{a}");
    send(
        "dl-up-0h",
        &format!(
            r#"{{"name":"system.update","args":{{"url":"http://127.0.0.1:{https}/bundle.raucb","sha256":"{sha}"}}}}"#
        ),
    );
    let a = ack("dl-up-0h");
    assert_eq!(a["ok"], false, "{a}");
    assert!(
        a["problems"][0].as_str().unwrap().contains("https://"),
        "{a}"
    );

    // Brackets in the URL are the file's name, not a pattern: one request, the one file
    // (curl made four requests of b[1-4]), whose hash is not the command's.
    send(
        "dl-up-g",
        &format!(
            r#"{{"name":"system.update","args":{{"url":"https://127.0.0.1:{https}/b[1-4].raucb","sha256":"{sha}"}}}}"#
        ),
    );
    assert_eq!(ack("dl-up-g")["ok"], true);
    let f = find("the bracketed file fetched and refused", &|e| {
        e["stream"] == "update"
            && e["body"]["state"] == "failed"
            && e["body"]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("SHA-256"))
    });
    assert_eq!(f["sha256"], sha.as_str(), "{f}");

    got.lock().unwrap().clear();
    // A hash that does not match: accepted, downloaded, not handed over, reported.
    let zeros = "0".repeat(64);
    send(
        "dl-up-1",
        &format!(r#"{{"name":"system.update","args":{{"url":"{url}","sha256":"{zeros}"}}}}"#),
    );
    assert_eq!(ack("dl-up-1")["ok"], true);
    let f = find("a failed update step", &|e| {
        e["stream"] == "update" && e["body"]["state"] == "failed"
    });
    assert!(f["detail"].as_str().unwrap().contains("SHA-256"), "{f}");
    assert!(!spool.join("request").exists() && !spool.join("bundle.raucb.part").exists());

    // A server that answers 404: reported, nothing left behind.
    send(
        "dl-up-2",
        &format!(
            r#"{{"name":"system.update","args":{{"url":"https://127.0.0.1:{https}/nope?token=s3cret","sha256":"{sha}"}}}}"#
        ),
    );
    assert_eq!(ack("dl-up-2")["ok"], true);
    let f = find("a refused download", &|e| {
        e["stream"] == "update"
            && e["body"]["state"] == "failed"
            && e["body"]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("refused"))
    });
    let detail = f["detail"].as_str().unwrap();
    assert!(
        detail.contains("404") && detail.contains("127.0.0.1"),
        "{f}"
    );
    assert!(
        !detail.contains("s3cret") && !detail.contains("nope"),
        "{f}"
    );

    // A server whose certificate the board does not trust: refused at once, not retried.
    let other = dir.path().join("pki-other");
    ketang_testkit::pki(&other, "Someone else");
    let untrusted = ketang_testkit::HttpsServer::start(&www, &other);
    send(
        "dl-up-t",
        &format!(
            r#"{{"name":"system.update","args":{{"url":"https://127.0.0.1:{}/bundle.raucb","sha256":"{sha}"}}}}"#,
            untrusted.port
        ),
    );
    assert_eq!(ack("dl-up-t")["ok"], true);
    let f = find("an untrusted server refused", &|e| {
        e["stream"] == "update"
            && e["body"]["state"] == "failed"
            && e["body"]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("not trusted"))
    });
    assert!(f["detail"].as_str().unwrap().contains("127.0.0.1"), "{f}");
    drop(untrusted);

    // The right bundle: handed to the installer.
    send(
        "dl-up-3",
        &format!(r#"{{"name":"system.update","args":{{"url":"{url}","sha256":"{sha}"}}}}"#),
    );
    assert_eq!(ack("dl-up-3")["ok"], true);
    let r = find("a received update step", &|e| {
        e["stream"] == "update" && e["body"]["state"] == "received"
    });
    assert_eq!(r["sha256"], sha.as_str());
    assert_eq!(r["source"], "cloud");
    assert_eq!(std::fs::read(spool.join("bundle.raucb")).unwrap(), bundle);
    assert_eq!(
        std::fs::read_to_string(spool.join("request")).unwrap(),
        format!("sha256={sha}\nsource=cloud\n")
    );
    // A second command while the installer has not taken it: refused in the ack.
    send(
        "dl-up-4",
        &format!(r#"{{"name":"system.update","args":{{"url":"{url}","sha256":"{sha}"}}}}"#),
    );
    let a = ack("dl-up-4");
    assert_eq!(a["ok"], false, "{a}");
    assert!(
        a["problems"][0]
            .as_str()
            .unwrap()
            .contains("installer has not finished"),
        "{a}"
    );
}

/// `system.reboot` (#21): acked once systemd-logind agrees, then logind is asked to reboot
/// a few seconds later (a stand-in logind on a private D-Bus: `hw-tests/src/bin/fake-logind.rs`);
/// with logind gone, refused with the reason and nothing happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_command_is_acked_and_asks_logind_and_is_refused_without_it() {
    let fake = std::path::Path::new(BIN).with_file_name("fake-logind");
    assert!(
        fake.exists(),
        "{} is missing: cargo build -p ketang-hw-tests --bin fake-logind (./scripts/test builds every target)",
        fake.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bus = dir.path().join("bus");
    let address = format!("unix:path={}", bus.display());
    let _dbus = Proc(
        Command::new("dbus-daemon")
            .args(["--session", "--nofork", &format!("--address={address}")])
            .stdout(Stdio::null())
            .spawn()
            .expect("dbus-daemon is installed (./scripts/test installs it)"),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !bus.exists() {
        assert!(Instant::now() < deadline, "dbus-daemon made no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let calls = dir.path().join("calls.jsonl");
    let logind = Proc(
        Command::new(&fake)
            .arg(&calls)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let port = free_port();
    let _broker = mosquitto(&dir.path().join("broker"), port);
    let (_sub, got) = collector(port);
    let _demo = Proc(
        Command::new(BIN)
            .args(["demo", "--listen", "127.0.0.1:0", "--clock", MONDAY_0755])
            .args([
                "--broker",
                &format!("mqtt://127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&data)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(data.with_extension("log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let ack = |id: &str| ack_for(&got, id);
    wait_first_publish(&got);
    send_command(port, "dl-rb-1", r#"{"name":"system.reboot","args":{}}"#);
    let a = ack("dl-rb-1");
    assert_eq!(a["ok"], true, "{a}");
    // Not at once: the ack goes out first; then logind is asked.
    let asked = Instant::now();
    let deadline = asked + Duration::from_secs(15);
    while !std::fs::read_to_string(&calls).is_ok_and(|c| c.contains("\"reboot\":true")) {
        assert!(
            Instant::now() < deadline,
            "logind was never asked to reboot; log: {}",
            std::fs::read_to_string(data.with_extension("log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    assert!(log.contains("Rebooting on the cloud's command."), "{log}");
    // logind gone: refused, naming it.
    drop(logind);
    std::thread::sleep(Duration::from_millis(300));
    send_command(port, "dl-rb-2", r#"{"name":"system.reboot"}"#);
    let a = ack("dl-rb-2");
    assert_eq!(a["ok"], false, "{a}");
    assert!(
        a["problems"][0]
            .as_str()
            .unwrap()
            .contains("systemd-logind"),
        "{a}"
    );
}

/// `system.factory_reset` (#21): refused unless `confirm` echoes this board's device id;
/// with it, acked, the daemon restarts and the school's data is gone (the identity stays).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_factory_reset_command_needs_the_device_id_echoed_and_removes_the_schools_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let _broker = mosquitto(&dir.path().join("broker"), port);
    let (_sub, got) = collector(port);
    let broker = format!("mqtt://127.0.0.1:{port}");
    let mut demo = Demo::start_with(&data, Some(MONDAY_0755), None, Some(&broker));
    demo.tap(CARD_1);
    demo.wait_for("the check-in", |s| s["counters"]["check_ins"] == 1);
    let ack = |id: &str| ack_for(&got, id);
    send_command(
        port,
        "dl-fr-1",
        r#"{"name":"system.factory_reset","args":{"confirm":"another-board"}}"#,
    );
    let a = ack("dl-fr-1");
    assert_eq!(a["ok"], false, "{a}");
    assert!(
        a["problems"][0].as_str().unwrap().contains("device id"),
        "{a}"
    );
    assert_eq!(demo.status()["lesson"]["attendance"]["present"], 1);
    send_command(
        port,
        "dl-fr-2",
        r#"{"name":"system.factory_reset","args":{"confirm":"demo-board-1"}}"#,
    );
    let a = ack("dl-fr-2");
    assert_eq!(a["ok"], true, "{a}");
    // The daemon ends for systemd to start it again.
    let deadline = Instant::now() + Duration::from_secs(20);
    while demo.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the daemon did not restart");
        std::thread::sleep(Duration::from_millis(50));
    }
    let demo = Demo::start_with(&data, Some(MONDAY_0755), None, Some(&broker));
    let s = demo.status();
    assert_eq!(s["lesson"]["attendance"]["present"], 0, "{s:#}");
    assert_eq!(s["device"]["device_id"], "demo-board-1");
    assert!(!data.join("factory-reset-request").exists());
    assert!(
        demo.log_text()
            .contains("Factory reset done, as the cloud asked"),
        "{}",
        demo.log_text()
    );
}

/// `system.diagnostics` (#21): the bundle (logs, status, redacted config, versions,
/// devices; no student data) is PUT to an https URL and acked when the server took it;
/// plain http is refused. The same bundle downloads on /tech for the technician only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diagnostics_command_uploads_the_bundle_without_student_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let _broker = mosquitto(&dir.path().join("broker"), port);
    let (_sub, got) = collector(port);
    let pki = dir.path().join("pki");
    ketang_testkit::pki(&pki, "Diagnostics server");
    let ca = pki.join("ca.pem");
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let server = ketang_testkit::HttpsServer::start(&www, &pki);
    let broker = format!("mqtt://127.0.0.1:{port}");
    let demo = Demo::start_args(
        &data,
        Some(MONDAY_0755),
        &[
            "--broker".as_ref(),
            broker.as_ref(),
            "--update-ca".as_ref(),
            ca.as_os_str(),
        ],
    );
    demo.tap(CARD_1);
    demo.wait_for("the check-in", |s| s["counters"]["check_ins"] == 1);
    let ack = |id: &str| ack_for(&got, id);
    send_command(
        port,
        "dl-dg-1",
        r#"{"name":"system.diagnostics","args":{"url":"http://127.0.0.1:9/x"}}"#,
    );
    let a = ack("dl-dg-1");
    assert_eq!(a["ok"], false, "{a}");
    assert!(
        a["problems"][0].as_str().unwrap().contains("https://"),
        "{a}"
    );
    send_command(
        port,
        "dl-dg-2",
        &format!(
            r#"{{"name":"system.diagnostics","args":{{"url":"https://127.0.0.1:{}/diag.json"}}}}"#,
            server.port
        ),
    );
    let a = ack("dl-dg-2");
    assert_eq!(a["ok"], true, "{a}");
    let text = std::fs::read_to_string(www.join("diag.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["kind"], "ketang-diagnostics");
    for key in ["status", "config", "logs", "system", "devices", "version"] {
        assert!(!v[key].is_null(), "{key} missing: {text}");
    }
    // No student data: not the checked-in student's name, not her card.
    assert!(
        !text.contains("姜芷若") && !text.contains(CARD_1),
        "student data in the bundle"
    );
    // On /tech: the technician only, as a file.
    let (code, _) = get(&format!("{}/api/v1/tech/diagnostics", demo.base)).unwrap();
    assert_eq!(code, 401);
    let (code, v) = demo.technician().get("/api/v1/tech/diagnostics");
    assert_eq!(code, 200);
    assert_eq!(v["kind"], "ketang-diagnostics");
}
