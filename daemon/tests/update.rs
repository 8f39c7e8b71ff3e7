//! System updates, the daemon's part: a technician's upload is streamed into the spool and
//! handed to the installer (`request`), never larger than allowed, never twice at once, and
//! the installer's steps show in the status and queue on the `update` stream. The installer
//! itself (RAUC) is proven in QEMU by `image/test-update.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use sha2::Digest as _;

/// Bytes that look like a bundle to the daemon (it never parses one: RAUC does).
fn fake_bundle(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn an_uploaded_bundle_is_handed_to_the_installer_and_its_steps_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let demo = Demo::start_args(&data, Some(MONDAY_0755), &["--accept-updates".as_ref()]);
    let s = demo.status();
    assert_eq!(s["system"]["updates"], true, "{}", s["system"]);
    assert!(s["system"]["data_free_mb"].as_u64().unwrap() > 0);

    // Only a logged-in technician may upload (refused before the body is read: an empty
    // body here, else the client sees its write cut off rather than the 401).
    let bundle = fake_bundle(5 * 1024 * 1024 + 17);
    assert_eq!(
        post_bytes(
            &demo,
            "/api/v1/tech/update",
            "application/octet-stream",
            b""
        ),
        401
    );
    let tech = demo.technician();
    // Larger than axum's default body limit (2 MB): streamed, not buffered.
    let (code, body) = tech.post_bytes("/api/v1/tech/update", "application/octet-stream", &bundle);
    assert_eq!(code, 202, "{body}");
    let sha = hex(&sha2::Sha256::digest(&bundle));
    assert_eq!(body["sha256"], sha.as_str());
    assert_eq!(body["bytes"], bundle.len());
    let spool = data.join("update");
    assert_eq!(std::fs::read(spool.join("bundle.raucb")).unwrap(), bundle);
    let request = std::fs::read_to_string(spool.join("request")).unwrap();
    assert_eq!(request, format!("sha256={sha}\nsource=upload\n"));
    assert!(!spool.join("bundle.raucb.part").exists());
    assert_eq!(demo.status()["system"]["update"]["state"], "received");

    // While the installer has not taken it, a second bundle is refused; nothing is touched.
    let (code, body) = tech.post_bytes("/api/v1/tech/update", "application/octet-stream", b"x");
    assert_eq!(code, 409, "{body}");
    assert_eq!(std::fs::read(spool.join("bundle.raucb")).unwrap(), bundle);

    // The installer (root) takes it and writes its steps; the daemon reports each once.
    std::fs::remove_file(spool.join("request")).unwrap();
    std::fs::remove_file(spool.join("bundle.raucb")).unwrap();
    std::fs::write(
        spool.join("state"),
        format!("state=refused\nsource=upload\nsha256={sha}\nslot=B\ndetail=signature verification failed\nat=1764460800\n"),
    )
    .unwrap();
    let s = demo.wait_for("the installer's step", |s| {
        s["system"]["update"]["state"] == "refused"
    });
    assert_eq!(
        s["system"]["update"]["detail"],
        "signature verification failed"
    );
    assert_eq!(s["system"]["update"]["slot"], "B");
    // receiving, received, refused: queued for the cloud (no broker here).
    assert_eq!(pending(&s, "update"), 3, "{}", s["outbox"]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        pending(&demo.status(), "update"),
        3,
        "a step was queued twice"
    );

    // An empty body is refused and leaves nothing behind.
    let (code, body) = tech.post_bytes("/api/v1/tech/update", "application/octet-stream", b"");
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("empty"), "{body}");
    assert!(!spool.join("request").exists());
    assert!(!spool.join("bundle.raucb.part").exists());
    let audit = tech.get("/api/v1/audit").1;
    assert!(
        audit.to_string().contains("system.update_upload"),
        "the upload is audited: {audit}"
    );
}

#[test]
fn a_board_without_an_installer_refuses_bundles_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(MONDAY_0755));
    if std::path::Path::new("/etc/rauc/system.conf").exists() {
        return; // this machine has RAUC: the default is on
    }
    assert_eq!(demo.status()["system"]["updates"], false);
    let tech = demo.technician();
    let t0 = Instant::now();
    let (code, body) =
        tech.post_bytes("/api/v1/tech/update", "application/octet-stream", b"bundle");
    assert_eq!(code, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no update installer"),
        "{body}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(!dir.path().join("data/update/request").exists());
}
