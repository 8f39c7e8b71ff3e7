//! The regional broker through the school's HTTP proxy (HTTP CONNECT), against a real
//! tinyproxy and a real Mosquitto the test starts on 127.0.0.1 (docs/technician.md,
//! "Proxy"). Enabled by the `mqtt-integration-tests` feature (./scripts/test).
#![cfg(feature = "mqtt-integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::broker::{Broker, Collector, free_port};
use common::worker::*;
use ketang_sync::Stream;
use ketang_sync::mqtt::ProxySettings;
use ketang_testkit::Tinyproxy;

fn via(proxy: &Tinyproxy, credentials: Option<(&str, &str)>) -> Option<ProxySettings> {
    Some(ProxySettings {
        host: "127.0.0.1".into(),
        port: proxy.port,
        credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_the_broker_through_the_schools_proxy_and_only_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store
        .enqueue_batch(records(Stream::Attendance, 50, "2026-12-07T08:00:00+08:00"))
        .await
        .unwrap();
    let port = free_port();
    let _broker = Broker::start_on(&dir.path().join("broker"), port, "");
    let col = Collector::start(port, "ketang/#").await;
    let proxy = Tinyproxy::start(dir.path(), port, None);
    let mut s = settings(port);
    s.proxy = via(&proxy, None);
    let run = start(&store, s);
    col.wait_for("50 attendance records through the proxy", 30, |c| {
        c.up("attendance").len() >= 50
    })
    .await;
    run.stop().await;
    let log = proxy.log();
    drop(proxy);
    assert!(
        log.contains(&format!("CONNECT 127.0.0.1:{port} ")),
        "the proxy did not carry the session: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_wants_a_login_refuses_a_wrong_one_and_the_records_wait() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store
        .enqueue_batch(records(Stream::Attendance, 20, "2026-12-07T08:00:00+08:00"))
        .await
        .unwrap();
    let port = free_port();
    let _broker = Broker::start_on(&dir.path().join("broker"), port, "");
    let col = Collector::start(port, "ketang/#").await;
    let proxy = Tinyproxy::start(dir.path(), port, Some(("kt-0001", "proxy-secret-1")));
    // A wrong password: refused by the proxy, the status says so, nothing is lost.
    let mut s = settings(port);
    s.proxy = via(&proxy, Some(("kt-0001", "wrong")));
    let run = start(&store, s.clone());
    let state = state_when(&run, |st| st.to_lowercase().contains("proxy")).await;
    assert!(
        state.to_lowercase().contains("proxy"),
        "the status does not name the proxy: {state}"
    );
    assert!(
        !state.contains("wrong"),
        "the status shows the password: {state}"
    );
    run.stop().await;
    assert!(col.up("attendance").is_empty());
    // The right one: everything that waited arrives.
    s.proxy = via(&proxy, Some(("kt-0001", "proxy-secret-1")));
    let run = start(&store, s);
    col.wait_for("20 attendance records", 30, |c| {
        c.up("attendance").len() >= 20
    })
    .await;
    run.stop().await;
}
