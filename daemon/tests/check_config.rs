//! `ketangd check-config` and `ketangd run` on bad configs, through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::BIN;

fn check(text: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ketang.toml");
    std::fs::write(&f, text).unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&f)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD: &str = r#"
data_dir = "data"
[device]
school_id = "hf-0042"
classroom_id = "g7-c3"
device_id = "kt-0001"
class_name = "七年级(3)班"
[sync]
broker_url = "mqtts://mqtt.edu.example.cn"
[hardware]
simulated = true
"#;

#[test]
fn a_good_config_prints_a_summary_and_exits_0() {
    let (code, out, err) = check(GOOD);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("ok"), "{out}");
    assert!(out.contains("mqtts://mqtt.edu.example.cn:8883"), "{out}");
    assert!(out.contains("door") && out.contains("simulated"), "{out}");
}

#[test]
fn a_bad_config_prints_every_error_and_exits_2() {
    let bad = GOOD
        .replace("device_id = \"kt-0001\"", "device_id = \"\"")
        .replace("[hardware]", "[http]\nlisten = \"nowhere\"\n[hardware]")
        .replace("simulated = true", "simulated = true\nfoo = 1");
    let (code, out, err) = check(&bad);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("device.device_id"), "{err}");
    assert!(err.contains("http.listen"), "{err}");
    assert!(err.contains("unknown field `foo`"), "{err}");
    assert!(err.contains("3 problems"), "{err}");
}

#[test]
fn a_missing_config_file_is_named() {
    let out = Command::new(BIN)
        .args(["check-config", "/nonexistent/ketang.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ketang.toml"));
}

#[test]
fn run_refuses_an_invalid_config_before_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ketang.toml");
    std::fs::write(
        &f,
        GOOD.replace("school_id = \"hf-0042\"", "school_id = \"hf/0042\""),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("run")
        .arg("--config")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("device.school_id"));
    assert!(
        !dir.path().join("data").exists(),
        "nothing may be created for an invalid config"
    );
}

#[test]
fn run_with_a_valid_config_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ketang.toml");
    // Config files refuse port 0, so take a free port from the OS first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &f,
        GOOD.to_owned() + &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .arg("run")
        .arg("--config")
        .arg(&f)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/api/v1/status");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let body = loop {
        if let Ok((200, body)) = common::get(&url) {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no status within 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["mode"], "production");
    assert_eq!(s["device"]["device_id"], "kt-0001");
    // No demo data in production.
    assert!(s["lesson"].is_null());
    assert!(dir.path().join("data/ketang.db").exists());
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let st = child.wait().unwrap();
    assert!(st.success());
}
