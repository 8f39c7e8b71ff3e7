#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Fuzzing the HTTP API's bodies (docs/development.md, "Fuzzing"): any bytes POSTed to any
//! route, from the board itself (loopback: the most that is accepted without a session)
//! and from the LAN. Property: no panic and no 500; every refusal is JSON `{"error": …}`; an
//! action reaches the device only when it parsed and passed `Action::check_limits`.
//! proptest over arbitrary bytes and mutations of the committed seeds in
//! `hw-tests/fuzz/corpus/action/`; `PROPTEST_CASES` sets the length.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use ketang_web::{Action, Actor, ApiError, SimError, StatusReport};
use proptest::prelude::*;
use tower::ServiceExt as _;

/// A device that accepts every action it is given, after checking it is within bounds.
struct Device;

impl ketang_web::DeviceApi for Device {
    async fn status(&self) -> Result<StatusReport, ApiError> {
        Err(ApiError::Unavailable("fuzzing".into()))
    }
    async fn health(&self) -> Result<(), String> {
        Ok(())
    }
    fn version(&self) -> String {
        "0.0.0".into()
    }
    fn simulated(&self) -> bool {
        true
    }
    async fn sim_card(&self, _reader: String, _uid: String) -> Result<(), SimError> {
        Ok(())
    }
    async fn sim_temperature(&self, _celsius: f64) -> Result<(), SimError> {
        Ok(())
    }
    async fn sim_button(&self, _button: String) -> Result<(), SimError> {
        Ok(())
    }
    async fn act(&self, _actor: Actor, action: Action) -> Result<serde_json::Value, ApiError> {
        assert!(
            action.check_limits().is_ok(),
            "an action over its bounds reached the device: {action:?}"
        );
        Ok(serde_json::json!({"ok": true}))
    }
}

const ROUTES: [&str; 8] = [
    "/api/v1/actions",
    "/api/v1/session",
    "/api/v1/sim/card",
    "/api/v1/sim/temperature",
    "/api/v1/sim/button",
    "/api/v1/sim/clock",
    "/api/v1/tech/provision",
    "/api/v1/tech/provisioning",
];

fn seeds() -> Vec<Vec<u8>> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../hw-tests/fuzz/corpus/action");
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    out.sort();
    out
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds();
    let n = seeds.len();
    (
        0..n,
        prop::collection::vec((0usize..4, any::<usize>(), any::<u8>()), 0..8),
    )
        .prop_map(move |(i, edits)| {
            let mut b = seeds[i].clone();
            for (op, at, byte) in edits {
                let at = if b.is_empty() { 0 } else { at % (b.len() + 1) };
                match op {
                    0 if at < b.len() => b[at] ^= byte | 1,
                    1 => b.insert(at, b"{}[]\",:0\\a"[usize::from(byte) % 10]),
                    2 => {
                        let span = b[at..].to_vec();
                        for _ in 0..usize::from(byte) % 32 {
                            b.splice(at..at, span.iter().copied());
                        }
                    }
                    _ => b.truncate(at),
                }
            }
            b
        })
}

async fn post(route: &str, body: Vec<u8>, from: &str) -> (StatusCode, Vec<u8>) {
    let peer: SocketAddr = from.parse().unwrap();
    let mut req = Request::builder()
        .method("POST")
        .uri(route)
        .header("host", "127.0.0.1:8080")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let res = ketang_web::router(Arc::new(Device))
        .oneshot(req)
        .await
        .unwrap();
    let code = res.status();
    (
        code,
        res.into_body().collect().await.unwrap().to_bytes().to_vec(),
    )
}

proptest! {
    #[test]
    fn any_body_on_any_route_is_answered_and_never_a_server_error(
        body in prop_oneof![prop::collection::vec(any::<u8>(), 0..2048), mutated()],
        route in prop::sample::select(ROUTES.to_vec()),
        from in prop::sample::select(vec!["127.0.0.1:50000", "192.168.1.23:50000"]),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (code, text) = rt.block_on(post(route, body, from));
        prop_assert!(code != StatusCode::INTERNAL_SERVER_ERROR, "{route}: 500 {}", String::from_utf8_lossy(&text));
        if code.is_client_error() {
            let v: serde_json::Value = serde_json::from_slice(&text)
                .map_err(|e| TestCaseError::fail(format!("{route}: {code} is not JSON ({e})")))?;
            prop_assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{route}: {v}");
        }
    }
}

#[test]
fn every_action_seed_is_accepted_from_the_board() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for seed in seeds() {
        if String::from_utf8_lossy(&seed).contains("\"action\"") {
            let (code, text) = rt.block_on(post("/api/v1/actions", seed.clone(), "127.0.0.1:1"));
            assert!(
                code.is_success() || code == StatusCode::UNAUTHORIZED,
                "{code} {}: {}",
                String::from_utf8_lossy(&seed),
                String::from_utf8_lossy(&text)
            );
        }
    }
}

/// Found by fuzzing: a body over axum's 2 MB limit was refused in plain text.
#[test]
fn a_body_over_the_limit_is_refused_in_json() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (code, text) = rt.block_on(post("/api/v1/actions", vec![b' '; 3 << 20], "127.0.0.1:1"));
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
    assert!(v["error"].as_str().unwrap().contains("too large"), "{v}");
}
