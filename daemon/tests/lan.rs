//! The board and its school LAN (issue 16, finding 4), through the real `ketangd demo`:
//! a real alarm without a session only from the board itself, names other than the
//! board's address refused (DNS rebinding), and JSON required where a cross-site page
//! could otherwise post.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::io::{Read, Write};

use common::*;

/// One request with raw headers (so the test controls `Host` and `Content-Type`).
fn raw(addr: &str, request: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, answer)
}

fn post(addr: &str, host: &str, path: &str, content_type: &str, body: &str) -> (u16, String) {
    raw(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// This machine's address on its default route (no packet is sent).
fn lan_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn a_real_alarm_from_the_lan_needs_teacher_mode_and_other_names_and_plain_text_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let demo = Demo::start_on(&dir.path().join("data"), Some(MONDAY_0755), &listen);
    let local = format!("127.0.0.1:{port}");
    let alarm = r#"{"action":"raise_alarm"}"#;

    // DNS rebinding: a page on another name that now resolves to the board.
    let (code, body) = post(
        &local,
        &format!("evil.example:{port}"),
        "/api/v1/actions",
        "application/json",
        alarm,
    );
    assert_eq!(code, 421, "{body}");
    let (code, _) = raw(
        &local,
        "GET /api/v1/status HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 421);
    let (code, _) = raw(
        &local,
        &format!("GET /healthz HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(code, 200);

    // Cross-site simple requests (text/plain) are refused: login, actions, simulators.
    let (code, body) = post(
        &local,
        &local,
        "/api/v1/session",
        "text/plain",
        r#"{"staff_id":"T01","pin":"2468"}"#,
    );
    assert_eq!(code, 415, "{body}");
    let (code, _) = post(&local, &local, "/api/v1/actions", "text/plain", alarm);
    assert_eq!(code, 400);
    let (code, _) = post(
        &local,
        &local,
        "/api/v1/sim/button",
        "text/plain",
        r#"{"button":"alarm"}"#,
    );
    assert_eq!(code, 415);
    assert_eq!(demo.status()["alarms"].as_array().unwrap().len(), 0);

    // From another device on the LAN, a real alarm needs teacher mode.
    match lan_address() {
        Some(ip) => {
            let lan = format!("{ip}:{port}");
            let (code, body) = post(&lan, &lan, "/api/v1/actions", "application/json", alarm);
            assert_eq!(code, 401, "{body}");
            assert!(body.contains("teacher mode"), "{body}");
            assert_eq!(demo.status()["alarms"].as_array().unwrap().len(), 0);
        }
        None => eprintln!("no non-loopback address on this machine: the LAN part is not run"),
    }
    // The board's own screen raises it at once.
    let (code, body) = post(&local, &local, "/api/v1/actions", "application/json", alarm);
    assert_eq!(code, 200, "{body}");
    demo.wait_for("the alarm", |s| s["alarms"].as_array().unwrap().len() == 1);
}
