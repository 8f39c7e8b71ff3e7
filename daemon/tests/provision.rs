#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `ketangd provision`: a provisioning file becomes the board's config, credentials and
//! technician password once, is removed, and the board runs with it; bad files change
//! nothing; a provisioned board refuses a second file without --force.

mod common;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};

use common::{BIN, free_port, get};

fn hash(password: &str) -> String {
    let mut c = Command::new(BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(c.stdin.take().unwrap(), "{password}").unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn provision(
    file: &std::path::Path,
    dir: &std::path::Path,
    force: bool,
) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("provision")
        .arg(file)
        .arg("--etc")
        .arg(dir.join("etc"))
        .arg("--data-dir")
        .arg(dir.join("data"));
    if force {
        cmd.arg("--force");
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_provisioning_file_is_applied_once_removed_and_the_board_runs_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = dir.path().join("ketang-provision.toml");
    let good = format!(
        r#"school_id = "hf-0042"
classroom_id = "g7-c3"
device_id = "kt-0007"
class_name = "七年级(3)班"
broker_url = "mqtt://127.0.0.1:1"
username = "kt-0007"
password = "s3cret-mqtt"
http_listen = "127.0.0.1:{port}"
technician_password_hash = "{}"
"#,
        hash("班牌-技术员-2026")
    );
    std::fs::write(&file, &good).unwrap();
    let (code, out, err) = provision(&file, dir.path(), false);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("device kt-0007"), "{out}");
    assert!(
        !out.contains("s3cret") && !err.contains("s3cret"),
        "no secret printed"
    );
    assert!(
        !file.exists(),
        "the provisioning file is removed once applied"
    );
    let creds = dir.path().join("etc/mqtt.credentials");
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let config = dir.path().join("etc/ketang.toml");
    let check = Command::new(BIN)
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // A second file is refused on a provisioned board, and kept; --force re-provisions.
    std::fs::write(&file, &good).unwrap();
    let (code, _, err) = provision(&file, dir.path(), false);
    assert_eq!(code, Some(2));
    assert!(err.contains("already provisioned"), "{err}");
    assert!(file.exists());
    let (code, _, err) = provision(&file, dir.path(), true);
    assert_eq!(code, Some(0), "{err}");

    // The board runs with it: its identity, and the technician pages past provisioning.
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Ok((200, body)) = get(&format!("http://127.0.0.1:{port}/api/v1/status")) {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "no status");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.contains("\"device_id\":\"kt-0007\""), "{status}");
    let (_, p) = get(&format!("http://127.0.0.1:{port}/api/v1/tech/provision")).unwrap();
    assert!(p.contains("\"provisioned\":true"), "{p}");
    // A factory reset refuses while the daemon runs (the test's own ketangd counts).
    let reset = |args: &[&str]| {
        let o = Command::new(BIN)
            .arg("factory-reset")
            .arg("--etc")
            .arg(dir.path().join("etc"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let (code, out) = reset(&["--yes"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("ketangd is running"), "{out}");
    let _ = child.kill();
    let _ = child.wait();

    // Without --yes nothing happens.
    let db = dir.path().join("data/ketang.db");
    assert!(db.exists());
    let (code, out) = reset(&[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(db.exists());
    // A reset keeps identity, certificates and the technician password, drops the store.
    let (code, out) = reset(&["--yes"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("identity, certificates and technician password kept"),
        "{out}"
    );
    assert!(config.exists() && creds.exists());
    std::fs::write(&file, &good).unwrap();
    let (code, _, err) = provision(&file, dir.path(), false);
    assert_eq!(code, Some(2), "still provisioned after a reset");
    assert!(err.contains("already provisioned"), "{err}");
    // --all: unprovisioned; a provisioning file applies again.
    let (code, out) = reset(&["--all", "--yes"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("the board is unprovisioned"), "{out}");
    assert!(!config.exists() && !creds.exists());
    let (code, _, err) = provision(&file, dir.path(), false);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn a_bad_provisioning_file_lists_every_problem_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ketang-provision.toml");
    std::fs::write(
        &file,
        r#"school_id = "hf/0042"
classroom_id = "g7-c3"
device_id = "kt-0007"
client_cert_pem = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"
username = "only-a-user"
technician_password_hash = "plaintext-password"
"#,
    )
    .unwrap();
    let (code, _, err) = provision(&file, dir.path(), false);
    assert_eq!(code, Some(2), "{err}");
    for want in [
        "technician_password_hash",
        "client_cert_pem and client_key_pem",
        "username and password",
    ] {
        assert!(err.contains(want), "{want} missing from: {err}");
    }
    assert!(file.exists(), "a refused file is kept");
    assert!(!dir.path().join("etc/ketang.toml").exists());
    // Valid on its face but an invalid id: the daemon's own validator says so.
    std::fs::write(
        &file,
        format!(
            "school_id = \"hf/0042\"\nclassroom_id = \"g7-c3\"\ndevice_id = \"kt-1\"\ntechnician_password_hash = \"{}\"\n",
            hash("班牌-技术员-2026")
        ),
    )
    .unwrap();
    let (code, _, err) = provision(&file, dir.path(), false);
    assert_eq!(code, Some(2));
    assert!(err.contains("device.school_id"), "{err}");
    assert!(!dir.path().join("etc/ketang.toml").exists());
    assert!(
        !dir.path().join("etc/.provision").exists(),
        "staging is cleaned up"
    );
}
