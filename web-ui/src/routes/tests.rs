use std::sync::Mutex;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::*;

#[derive(Default)]
struct Fake {
    simulated: bool,
    healthy: bool,
    taps: Mutex<Vec<(String, String)>>,
}

fn report() -> StatusReport {
    StatusReport {
        device: DeviceInfo {
            school_id: "s".into(),
            classroom_id: "c".into(),
            device_id: "d".into(),
            class_name: "七年级(3)班".into(),
        },
        version: "0.0.0".into(),
        mode: "demo".into(),
        boot_id: "b".into(),
        started_at: "2026-11-23T08:00:00+08:00".into(),
        uptime_s: 5,
        clock: ClockInfo {
            now: "x".into(),
            timezone: "Asia/Shanghai".into(),
            synced: true,
            simulated: false,
            source: "chrony: not synchronised".into(),
        },
        store: StoreInfo {
            path: "p".into(),
            schema_version: 1,
            quarantined: None,
            disk_full: false,
            last_error: None,
        },
        outbox: OutboxInfo {
            pending: [("attendance".to_owned(), 3)].into(),
            total: 3,
        },
        sync: SyncInfo {
            connected: false,
            broker: None,
            state: "offline".into(),
            insecure: false,
            published: 0,
            acked: 0,
            connections: 0,
        },
        hardware: vec![HardwareStatus {
            name: "door".into(),
            kind: "card_reader".into(),
            driver: "simulated".into(),
            state: "ok".into(),
            detail: None,
        }],
        lesson: None,
        next_lesson: None,
        today: vec![],
        content: ContentInfo::default(),
        screen: ScreenInfo::default(),
        fever_threshold_c: 37.3,
        day: DayInfo {
            name: None,
            calendar_version: 0,
            cancelled: vec![],
        },
        alarms: vec![],
        notices: vec![],
        school: None,
        alarm_sms: None,
        counters: Counters {
            card_taps: 4,
            ..Counters::default()
        },
        system: SystemInfo {
            slot: None,
            image: None,
            updates: false,
            update: None,
            data_free_mb: None,
            network: NetworkInfo::default(),
        },
    }
}

impl DeviceApi for Fake {
    async fn status(&self) -> Result<StatusReport, ApiError> {
        Ok(report())
    }
    async fn health(&self) -> Result<(), String> {
        if self.healthy {
            Ok(())
        } else {
            Err("store not answering".into())
        }
    }
    fn version(&self) -> String {
        "0.0.0".into()
    }
    fn simulated(&self) -> bool {
        self.simulated
    }
    async fn sim_card(&self, reader: String, uid: String) -> Result<(), SimError> {
        if reader != "door" {
            return Err(SimError::BadInput(format!("unknown reader {reader:?}")));
        }
        self.taps.lock().unwrap().push((reader, uid));
        Ok(())
    }
    async fn sim_temperature(&self, _c: f64) -> Result<(), SimError> {
        Ok(())
    }
    async fn sim_button(&self, b: String) -> Result<(), SimError> {
        if b == "alarm" {
            Ok(())
        } else {
            Err(SimError::BadInput(format!("unknown button {b:?}")))
        }
    }
}

async fn call(app: Router, method: &str, path: &str, body: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1:8080")
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    let code = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (code, String::from_utf8(bytes.to_vec()).unwrap())
}

fn sim() -> Arc<Fake> {
    Arc::new(Fake {
        simulated: true,
        healthy: true,
        ..Fake::default()
    })
}

#[tokio::test]
async fn healthz_answers_ok_when_the_device_is_healthy_and_503_when_not() {
    let (code, body) = call(router(sim()), "GET", "/healthz", "").await;
    assert_eq!(code, StatusCode::OK);
    assert!(body.contains("\"ok\""));
    let sick = Arc::new(Fake {
        healthy: false,
        ..Fake::default()
    });
    let (code, body) = call(router(sick), "GET", "/healthz", "").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("store not answering"));
}

#[tokio::test]
async fn status_is_json_with_pending_outbox_by_stream() {
    let (code, body) = call(router(sim()), "GET", "/api/v1/status", "").await;
    assert_eq!(code, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["outbox"]["pending"]["attendance"], 3);
    assert_eq!(v["sync"]["connected"], false);
    assert_eq!(v["hardware"][0]["name"], "door");
}

#[tokio::test]
async fn the_device_id_is_served_as_a_qr_code() {
    let (code, body) = call(router(sim()), "GET", "/api/v1/device/qr.svg", "").await;
    assert_eq!(code, StatusCode::OK);
    assert!(body.contains("<svg") && body.contains("<path"), "{body}");
}

#[tokio::test]
async fn metrics_are_openmetrics_text() {
    let (code, body) = call(router(sim()), "GET", "/metrics", "").await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        body.contains("ketang_outbox_pending{stream=\"attendance\"} 3"),
        "{body}"
    );
    assert!(body.contains("ketang_card_taps_total 4"), "{body}");
    assert!(
        body.contains("ketang_hardware_ok{device=\"door\""),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn a_valid_sim_card_tap_is_accepted_with_202() {
    let dev = sim();
    let (code, _) = call(
        router(dev.clone()),
        "POST",
        "/api/v1/sim/card",
        r#"{"reader":"door","uid":"04A1B2C3"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert_eq!(dev.taps.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn sim_endpoints_answer_400_with_a_message_on_bad_input() {
    for (path, body, expect) in [
        ("/api/v1/sim/card", "{not json", "invalid JSON body"),
        (
            "/api/v1/sim/card",
            r#"{"reader":"door"}"#,
            "missing field `uid`",
        ),
        (
            "/api/v1/sim/card",
            r#"{"reader":"back","uid":"04A1B2C3"}"#,
            "unknown reader",
        ),
        (
            "/api/v1/sim/card",
            r#"{"reader":"door","uid":"1","extra":1}"#,
            "unknown field `extra`",
        ),
        (
            "/api/v1/sim/temperature",
            r#"{"celsius":"hot"}"#,
            "invalid type",
        ),
        (
            "/api/v1/sim/button",
            r#"{"button":"doorbell"}"#,
            "unknown button",
        ),
        ("/api/v1/sim/button", "", "invalid JSON body"),
    ] {
        let (code, text) = call(router(sim()), "POST", path, body).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{path} {body}");
        assert!(text.contains(expect), "{path} {body}: {text}");
    }
}

#[tokio::test]
async fn sim_endpoints_do_not_exist_on_real_hardware() {
    let real = Arc::new(Fake {
        healthy: true,
        ..Fake::default()
    });
    let (code, _) = call(
        router(real),
        "POST",
        "/api/v1/sim/card",
        r#"{"reader":"door","uid":"04A1B2C3"}"#,
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let (code, body) = call(router(sim()), "GET", "/nope", "").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(body.contains("/nope"));
}
