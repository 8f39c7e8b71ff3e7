//! PIN guessing against the real `ketangd demo` (issue 16, findings 1 and 2): concurrent
//! guesses from one address, one account guessed from many addresses, and the memory a
//! crowd of logins takes. Other source addresses come from 127.0.0.0/8 (all local).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};

use common::*;

/// POSTs `body` to `path` from source address `from`; the HTTP status.
fn post_from(demo: &Demo, from: Ipv4Addr, path: &str, body: &str) -> u16 {
    let port: u16 = demo.base.rsplit(':').next().unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(SocketAddr::from((from, 0))).unwrap();
        s.connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .unwrap()
    });
    let mut stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn pin(staff: &str, pin: &str) -> String {
    format!(r#"{{"staff_id":"{staff}","pin":"{pin}"}}"#)
}

/// Peak resident memory of a process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

#[test]
fn concurrent_wrong_pins_from_one_address_are_counted_before_they_are_verified() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(MONDAY_0755));
    let codes: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let demo = &demo;
                s.spawn(move || {
                    post_from(
                        demo,
                        Ipv4Addr::new(127, 0, 0, 7),
                        "/api/v1/session",
                        &pin(&format!("T0{}", 1 + i % 5), "0000"),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let verified = codes.iter().filter(|c| **c == 401).count();
    let refused = codes.iter().filter(|c| **c == 429).count();
    assert!(
        verified <= 5,
        "{verified} wrong PINs were verified: {codes:?}"
    );
    assert_eq!(verified + refused, 40, "{codes:?}");
}

#[test]
fn one_teacher_guessed_from_twenty_addresses_is_locked_and_her_staff_card_unlocks_her() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(MONDAY_0755));
    let mut verified = 0;
    for a in 0..20u8 {
        for g in 0..5 {
            let code = post_from(
                &demo,
                Ipv4Addr::new(127, 0, 1, 10 + a),
                "/api/v1/session",
                &pin("T01", &format!("{:04}", 1000 + u32::from(a) * 5 + g)),
            );
            assert!(code == 401 || code == 429, "{code}");
            verified += usize::from(code == 401);
        }
    }
    assert!(
        verified <= 5,
        "{verified} guesses against T01 were verified"
    );
    // The right PIN from yet another address: still locked, and the answer says how long.
    let (code, body) = {
        let r = common::post(
            &format!("{}/api/v1/session", demo.base),
            &pin("T01", DEMO_PIN),
        );
        r.unwrap()
    };
    assert_eq!(code, 429, "{body}");
    assert!(
        body.contains("locked") && body.contains("staff card"),
        "{body}"
    );
    // Another teacher is not affected.
    assert!(demo.login("T02", DEMO_PIN).is_ok());
    // T01 taps her staff card and unlocks on the board: her PIN works again.
    demo.tap("0E7A11C3");
    // The tap is handled by the classroom a moment after the simulator accepted it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (code, body) = demo.post("/api/v1/session", r#"{"card":true}"#);
        if code == 200 {
            break;
        }
        assert!(
            code == 401 && std::time::Instant::now() < deadline,
            "{code} {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(demo.login("T01", DEMO_PIN).is_ok());
}

#[test]
fn a_crowd_of_logins_takes_at_most_two_verifications_of_memory() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(MONDAY_0755));
    // One login first, so the allocator holds one verification's memory already.
    assert!(demo.login("T02", DEMO_PIN).is_ok());
    let before = peak_rss(demo.child.id());
    let codes: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..150u32)
            .map(|i| {
                let demo = &demo;
                s.spawn(move || {
                    post_from(
                        demo,
                        Ipv4Addr::new(127, 0, 2, (1 + i % 250) as u8),
                        "/api/v1/session",
                        &pin(&format!("X{i}"), "1234"),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let after = peak_rss(demo.child.id());
    let grown = after.saturating_sub(before) / (1024 * 1024);
    assert!(codes.iter().all(|c| *c == 401 || *c == 429), "{codes:?}");
    // Each Argon2 check takes 19 MiB; two at a time, with allocator slack.
    assert!(
        grown <= 64,
        "peak memory grew by {grown} MiB for 150 concurrent logins"
    );
}
