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

/// The keys every provisioning file of these tests starts with (kt-0007 of hf-0042).
fn head() -> String {
    format!(
        "school_id = \"hf-0042\"\nclassroom_id = \"g7-c3\"\ndevice_id = \"kt-0007\"\ntechnician_password_hash = \"{}\"\n",
        hash("班牌-技术员-2026")
    )
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
    // --all: unprovisioned; a provisioning file applies again. The board's own identity
    // (what its QR code shows, what a file without device_id gives) outlives even that.
    let own = || {
        let o = Command::new(BIN)
            .arg("device-id")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap().trim().to_owned()
    };
    let before = own();
    let (code, out) = reset(&["--all", "--yes"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("the board is unprovisioned"), "{out}");
    assert!(!config.exists() && !creds.exists());
    assert_eq!(own(), before, "the identity survives a factory reset");
    std::fs::write(&file, good.replace("device_id = \"kt-0007\"\n", "")).unwrap();
    let (code, out, err) = provision(&file, dir.path(), false);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("device {before}")), "{out}");
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

/// Starts `ketangd run --config CONFIG` serving on `port`, as a [`common::Demo`] handle.
fn run_board(config: &std::path::Path, port: u16, log: &std::path::Path) -> common::Demo {
    let started = std::time::Instant::now();
    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(config)
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = started + std::time::Duration::from_secs(10);
    while !matches!(get(&format!("{base}/healthz")), Ok((200, _))) {
        assert!(
            std::time::Instant::now() < deadline,
            "no /healthz: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    common::Demo {
        child,
        base,
        data_dir: config.parent().unwrap().to_owned(),
        log: log.to_owned(),
        started,
        ready_after: started.elapsed(),
    }
}

#[test]
fn a_technician_enters_the_provisioning_file_on_the_tech_page_and_the_board_restarts_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let config = etc.join("ketang.toml");
    // What ketang-firstboot writes on a board without a provisioning file.
    let unprovisioned = format!(
        "data_dir = {:?}\n\n[device]\nschool_id = \"unprovisioned\"\nclassroom_id = \"unprovisioned\"\ndevice_id = \"kt-0123456789ab\"\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n",
        dir.path().join("data").display().to_string()
    );
    std::fs::write(&config, &unprovisioned).unwrap();
    let mut board = run_board(&config, port, &dir.path().join("run1.log"));
    let tech = board.technician();

    // A bad file: every problem listed, nothing written, the board keeps running.
    let (code, body) = tech.post_bytes(
        "/api/v1/tech/provisioning",
        "application/toml",
        b"school_id = \"hf 0042\"\nclassroom_id = \"g7-c3\"\ntechnician_password_hash = \"plain\"\n",
    );
    assert_eq!(code, 400, "{body}");
    let err = body["error"].as_str().unwrap();
    assert!(err.contains("technician_password_hash"), "{err}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), unprovisioned);
    assert_eq!(
        get(&format!("{}/healthz", board.base)).unwrap().0,
        200,
        "still running"
    );

    // A good one: applied, audited, and the daemon ends cleanly for systemd to restart it.
    let good = format!(
        "school_id = \"hf-0042\"\nclassroom_id = \"g7-c3\"\ndevice_id = \"kt-tech-0009\"\nclass_name = \"七年级(3)班\"\nhttp_listen = \"127.0.0.1:{port}\"\ntechnician_password_hash = \"{}\"\n",
        hash("新的-技术员-密码-2026")
    );
    let (code, body) = tech.post_bytes(
        "/api/v1/tech/provisioning",
        "application/toml",
        good.as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["device_id"], "kt-tech-0009");
    assert_eq!(body["restarting"], true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(s) = board.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not restart"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "a clean exit: {status:?}");
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.contains("device_id = \"kt-tech-0009\""),
        "{written}"
    );

    // Started again (as systemd does): the new identity and the new technician password.
    let board = run_board(&config, port, &dir.path().join("run2.log"));
    let s = board.status();
    assert_eq!(s["device"]["device_id"], "kt-tech-0009");
    assert_eq!(s["device"]["school_id"], "hf-0042");
    let (code, _) = common::post(
        &format!("{}/api/v1/session", board.base),
        r#"{"password":"新的-技术员-密码-2026"}"#,
    )
    .unwrap();
    assert_eq!(code, 200, "the provisioned technician password works");
    let (code, _) = common::post(
        &format!("{}/api/v1/session", board.base),
        r#"{"password":"班牌-技术员-2026"}"#,
    )
    .unwrap();
    assert_eq!(code, 401, "the old one no longer does");
}

#[test]
fn the_schools_time_servers_and_a_static_address_are_checked_and_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ketang-provision.toml");
    let head = head();
    // A directive smuggled in as a host, and NTS without servers: refused, nothing written.
    std::fs::write(
        &file,
        format!("{head}ntp_servers = [\"ntp.school.cn\", \"x iburst\\nsourcedir /etc\"]\n"),
    )
    .unwrap();
    let (code, _, err) = provision(&file, dir.path(), false);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("ntp_servers[1]: not a host name"), "{err}");
    assert!(
        !err.contains("sourcedir"),
        "the input is not quoted back: {err}"
    );
    assert!(!dir.path().join("etc/time.sources").exists());
    std::fs::write(&file, format!("{head}ntp_nts = true\n")).unwrap();
    let (code, _, err) = provision(&file, dir.path(), false);
    assert_eq!(code, Some(2));
    assert!(err.contains("ntp_nts goes with ntp_servers"), "{err}");
    // Good: one source line per server, NTS when the school's servers speak it.
    std::fs::write(
        &file,
        format!("{head}ntp_servers = [\"ntp.school.cn\", \"10.20.0.1\"]\nntp_nts = true\n"),
    )
    .unwrap();
    let (code, _, err) = provision(&file, dir.path(), false);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc/time.sources")).unwrap(),
        "server ntp.school.cn iburst nts\nserver 10.20.0.1 iburst nts\n"
    );
    // A static address, checked: a wrong one names the field and writes nothing.
    std::fs::write(
        &file,
        format!("{head}[network]\naddress = \"192.168.10.23\"\ndns = [\"dns.example\"]\n"),
    )
    .unwrap();
    let (code, _, err) = provision(&file, dir.path(), true);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("network.address: not an address with its prefix"),
        "{err}"
    );
    assert!(err.contains("network.dns[0]: not an IP address"), "{err}");
    std::fs::write(
        &file,
        format!("{head}[network]\naddress = \"192.168.10.23/24\"\ngateway = \"192.168.10.1\"\ndns = [\"223.5.5.5\"]\n"),
    )
    .unwrap();
    let (code, _, err) = provision(&file, dir.path(), true);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc/network.conf")).unwrap(),
        "address=192.168.10.23/24\ngateway=192.168.10.1\ndns=223.5.5.5\n"
    );
    // Re-provisioned without them: back to the image's own servers and DHCP.
    std::fs::write(&file, &head).unwrap();
    let (code, _, err) = provision(&file, dir.path(), true);
    assert_eq!(code, Some(0), "{err}");
    assert!(!dir.path().join("etc/time.sources").exists());
    assert!(!dir.path().join("etc/network.conf").exists());
}

#[test]
fn wifi_is_checked_and_written_for_the_root_side_with_its_key_private() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ketang-provision.toml");
    let head = head();
    // 802.1X without the RADIUS server's CA, and a passphrase where an account belongs:
    // refused, every problem named, no secret quoted back, nothing written.
    std::fs::write(
        &file,
        format!(
            "{head}[wifi]\nssid = \"EDU-Staff\"\nsecurity = \"wpa2-enterprise\"\neap = \"peap\"\nidentity = \"kt-0007\"\npassphrase = \"hunter2-secret\"\n"
        ),
    )
    .unwrap();
    let (code, _, err) = provision(&file, dir.path(), false);
    assert_eq!(code, Some(2), "{err}");
    for want in [
        "wifi.ca_pem: needed for wpa2-enterprise",
        "wifi.password: needed for eap = \"peap\"",
        "wifi.passphrase: not for wpa2-enterprise",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    assert!(!err.contains("hunter2"), "a secret was quoted back: {err}");
    assert!(!dir.path().join("etc/wifi.conf").exists());
    // PEAP with the school's CA: wifi.conf (0600: it holds the account's password) and the CA.
    let ca = "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n";
    std::fs::write(
        &file,
        format!(
            "{head}[wifi]\nssid = \"EDU-Staff\"\nsecurity = \"wpa2-enterprise\"\neap = \"peap\"\nidentity = \"kt-0007\"\npassword = \"pw-班牌\"\nca_pem = \"{ca}\"\nserver_domain = \"radius.hf.edu.cn\"\n"
        ),
    )
    .unwrap();
    let (code, _, err) = provision(&file, dir.path(), false);
    assert_eq!(code, Some(0), "{err}");
    let conf = dir.path().join("etc/wifi.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(
        text.starts_with("security=wpa2-enterprise\nssid=4544552d5374616666\n"),
        "{text}"
    );
    assert!(text.contains("eap=peap\n"), "{text}");
    assert!(!text.contains("pw-"), "the password is hex: {text}");
    assert_eq!(
        std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(dir.path().join("etc/wifi/ca.pem"))
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----\nMIIB")
    );
    // WPA2-Personal: the key, never the passphrase; the former network's CA is gone.
    std::fs::write(
        &file,
        format!(
            "{head}[wifi]\nssid = \"IEEE\"\nsecurity = \"wpa2-personal\"\npassphrase = \"password\"\n"
        ),
    )
    .unwrap();
    let (code, _, err) = provision(&file, dir.path(), true);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "security=wpa2-personal\nssid=49454545\ncountry=CN\npsk=f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e\n"
    );
    assert!(!dir.path().join("etc/wifi/ca.pem").exists());
    // Re-provisioned without [wifi]: wired only.
    std::fs::write(&file, &head).unwrap();
    let (code, _, err) = provision(&file, dir.path(), true);
    assert_eq!(code, Some(0), "{err}");
    assert!(!conf.exists());
}

#[test]
fn the_schools_proxy_and_its_login_are_checked_and_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ketang-provision.toml");
    let head = format!(
        "{}broker_url = \"mqtts://mqtt.edu.example.cn:8883\"\n",
        head()
    );
    std::fs::write(
        &file,
        format!("{head}proxy_url = \"http://kt:hunter2@proxy.school.cn:3128\"\nproxy_username = \"kt\"\n"),
    )
    .unwrap();
    let (code, _, err) = provision(&file, dir.path(), false);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("proxy_url: credentials in the URL are not allowed"),
        "{err}"
    );
    assert!(
        err.contains("proxy_username and proxy_password come together"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    std::fs::write(
        &file,
        format!("{head}proxy_url = \"http://proxy.school.cn:3128\"\nproxy_username = \"kt-0007\"\nproxy_password = \"pr0xy-pw\"\n"),
    )
    .unwrap();
    let (code, _, err) = provision(&file, dir.path(), false);
    assert_eq!(code, Some(0), "{err}");
    let cfg = std::fs::read_to_string(dir.path().join("etc/ketang.toml")).unwrap();
    assert!(
        cfg.contains("proxy_url = \"http://proxy.school.cn:3128\"\n"),
        "{cfg}"
    );
    assert!(!cfg.contains("pr0xy-pw"), "{cfg}");
    let creds = dir.path().join("etc/proxy.credentials");
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The daemon checks the config it runs with (the proxy's login included).
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(dir.path().join("etc/ketang.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
