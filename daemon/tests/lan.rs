//! The board and its school LAN (issue 16, finding 4), through the real `ketangd demo`:
//! a real alarm without a session only from the board itself, names other than the
//! board's address refused (DNS rebinding), and JSON required where a cross-site page
//! could otherwise post.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::io::{Read, Write};

use common::*;

/// A byte stream to the board: plain TCP or TLS.
trait Io: Read + Write {}
impl<T: Read + Write> Io for T {}

/// A TLS connection to the board at `addr` as a teacher's device has it after checking the
/// fingerprint once: trusting only the board's own certificate (pinned from its data
/// folder `data`). Returns the stream and the certificate the board presented.
fn tls(addr: &str, data: &std::path::Path) -> (Box<dyn Io>, Vec<u8>) {
    use rustls::pki_types::pem::PemObject as _;
    let pem = std::fs::read(data.join("keys/https.pem")).unwrap();
    let cert = rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    // The certificate names the board `localhost` (its addresses change with DHCP).
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), name).unwrap();
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).unwrap();
    }
    let presented = conn.peer_certificates().unwrap()[0].to_vec();
    (Box::new(rustls::StreamOwned::new(conn, sock)), presented)
}

/// One request over TLS from this machine's LAN address (see [`tls`]).
fn raw_tls(addr: &str, data: &std::path::Path, request: &str) -> (u16, String) {
    let (mut s, _) = tls(addr, data);
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    // A TLS peer may close without close_notify after `Connection: close`.
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, answer)
}

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

/// Issue 16, finding 3: 1,100 connections from one LAN device that never finish their
/// headers. Main served each one until the daemon ran out of file descriptors and
/// `/healthz` timed out (an update on trial would have been rolled back). Now one device
/// holds at most 16 connections, each closed 10 s after it stops sending, and the board's
/// own `/healthz` answers at once throughout.
#[test]
fn slow_clients_on_the_lan_cannot_starve_the_board_of_connections() {
    let Some((_dir, demo, lan, port)) = lan_demo() else {
        return;
    };
    let mut held = Vec::new();
    for _ in 0..1100 {
        if let Ok(mut s) = std::net::TcpStream::connect(&lan) {
            let _ = s.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: ");
            held.push(s);
        }
    }
    // The server closed all but its per-device cap at once.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for s in &held {
        s.set_nonblocking(true).unwrap();
    }
    let open = held.iter().filter(|s| still_open(s)).count();
    assert!(
        open <= 16,
        "{open} slow connections from one device are held"
    );
    // The board's own health check answers at once.
    let t = std::time::Instant::now();
    let (code, _) = raw(
        &format!("127.0.0.1:{port}"),
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 200);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        t.elapsed()
    );
    // The held ones are closed once their header deadline passes.
    std::thread::sleep(std::time::Duration::from_secs(13));
    let still = held.iter().filter(|s| still_open(s)).count();
    assert_eq!(still, 0, "{still} connections outlived the header deadline");
    drop(demo);
}

/// Whether the server still holds `s` open (a non-blocking read would block, no EOF).
fn still_open(mut s: &std::net::TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Logs in with a PIN from `addr` (a raw request, so the source address is this
/// machine's LAN address), sending `cookie` if given: (cookie, csrf token).
fn login_from(addr: &str, data: &std::path::Path, cookie: Option<&str>) -> (String, String) {
    let body = format!(r#"{{"staff_id":"T01","pin":"{DEMO_PIN}"}}"#);
    let extra = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
    let (code, answer) = raw_tls(
        addr,
        data,
        &format!(
            "POST /api/v1/session HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(code, 200, "{answer}");
    let cookie = answer
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .unwrap();
    // A session made over TLS is a Secure cookie: a browser never sends it in clear.
    assert!(cookie.contains("; Secure"), "{cookie}");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let csrf = answer.split("\"csrf_token\":\"").nth(1).unwrap();
    (cookie, csrf[..csrf.find('"').unwrap()].to_owned())
}

fn get_with(addr: &str, data: &std::path::Path, path: &str, cookie: &str) -> u16 {
    raw_tls(
        addr,
        data,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        ),
    )
    .0
}

/// Issue 16, finding 6: logging in again replaces the old session, and a teacher's live
/// event stream on another device stops carrying names the moment she logs out.
#[test]
fn sessions_rotate_on_login_and_the_live_stream_forgets_names_after_logout() {
    let Some((dir, demo, lan, _)) = lan_demo() else {
        return;
    };
    let data = dir.path().join("data");
    let (first, _) = login_from(&lan, &data, None);
    assert_eq!(get_with(&lan, &data, "/api/v1/lesson", &first), 200);
    let (second, csrf) = login_from(&lan, &data, Some(&first));
    assert_eq!(
        get_with(&lan, &data, "/api/v1/lesson", &first),
        401,
        "the old session still works"
    );
    assert_eq!(get_with(&lan, &data, "/api/v1/lesson", &second), 200);

    // The live stream on the teacher's device, unlocked.
    let (mut stream, _) = tls(&lan, &data);
    write!(
        stream,
        "GET /api/v1/events HTTP/1.1\r\nHost: {lan}\r\nCookie: {second}\r\n\r\n"
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let mut next_checkin = || -> String {
        use std::io::BufRead as _;
        let mut line = String::new();
        loop {
            line.clear();
            assert!(reader.read_line(&mut line).unwrap() > 0, "the stream ended");
            if line.starts_with("data:") && line.contains("checked_in") {
                return line;
            }
        }
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    demo.tap(CARD_1);
    let named = next_checkin();
    assert!(named.contains("\"name\""), "{named}");
    // She locks (logs out) on her device; the page stays open.
    let (code, body) = raw_tls(
        &lan,
        &data,
        &format!(
            "DELETE /api/v1/session HTTP/1.1\r\nHost: {lan}\r\nCookie: {second}\r\nX-CSRF-Token: {csrf}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(code, 204, "{body}");
    demo.tap(CARD_2);
    let anonymous = next_checkin();
    assert!(
        !anonymous.contains("\"name\""),
        "names after logout: {anonymous}"
    );
}

/// Issue 16, finding 5: no credential crosses the LAN in clear. Over plain HTTP from
/// another device a login and a request with a session cookie are refused and the board's
/// pages redirect to https; over TLS the same login works, and the certificate the board
/// presents is the one whose fingerprint its technician page shows.
#[test]
fn no_pin_password_or_session_crosses_the_lan_in_clear() {
    let Some((dir, demo, lan, _)) = lan_demo() else {
        return;
    };
    let data = dir.path().join("data");
    let login = format!(r#"{{"staff_id":"T01","pin":"{DEMO_PIN}"}}"#);
    let (code, body) = post(&lan, &lan, "/api/v1/session", "application/json", &login);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains(&format!("https://{lan}/")), "{body}");
    let (code, body) = raw(
        &lan,
        &format!(
            "GET /api/v1/lesson HTTP/1.1\r\nHost: {lan}\r\nCookie: ketang_session=x\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(code, 403, "{body}");
    let (code, body) = raw(
        &lan,
        &format!("GET /tech HTTP/1.1\r\nHost: {lan}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(code, 308, "{body}");
    assert!(
        body.to_lowercase()
            .contains(&format!("location: https://{lan}/tech")),
        "{body}"
    );
    // Public reads stay plain (the status page, the health check).
    let (code, _) = raw(
        &lan,
        &format!("GET /api/v1/status HTTP/1.1\r\nHost: {lan}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(code, 200);
    // Over TLS the login works; the certificate is the board's, as /tech shows it.
    let (cookie, _) = login_from(&lan, &data, None);
    assert!(cookie.starts_with("ketang_session="));
    let (_, presented) = tls(&lan, &data);
    let fingerprint: String = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&presented)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let (code, tech) = demo.technician().get("/api/v1/tech");
    assert_eq!(code, 200);
    assert_eq!(
        tech["config"]["http"]["https_fingerprint_sha256"], fingerprint,
        "{}",
        tech["config"]["http"]
    );
}

/// The demo listening on all addresses, and its address on this machine's LAN interface:
/// (data folder, demo, "ip:port", port); `None` (said on stderr) without such an interface.
fn lan_demo() -> Option<(tempfile::TempDir, Demo, String, u16)> {
    let Some(ip) = lan_address() else {
        eprintln!("no non-loopback address on this machine: not run");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let demo = Demo::start_on(
        &dir.path().join("data"),
        Some(MONDAY_0755),
        &format!("0.0.0.0:{port}"),
    );
    Some((dir, demo, format!("{ip}:{port}"), port))
}
