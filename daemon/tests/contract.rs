//! The uplink contract as the daemon really speaks it (issue 15 part 3): `ketangd demo`
//! against a real Mosquitto, driven through a lesson (card taps, a fever reading, symptoms,
//! overrides, the whiteboard, an alarm, the lesson's end, follow-ups), sent downlinks it
//! accepts and refuses, a system update command, with telemetry every 10 s. Every message
//! on `ketang/#` is captured into `target/contract/daemon-demo.txt`, which `./scripts/test`
//! validates against docs/asyncapi.yaml with @asyncapi/parser and ajv
//! (scripts/contract/validate.mjs), together with the sync tests' captures of the streams
//! the sync layer makes itself (`ack`, `rejected`, `dropped`).
#![cfg(feature = "mqtt-integration-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::mqtt::*;
use common::*;

#[test]
fn every_stream_the_demo_sends_is_captured_for_the_contract_check() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = mosquitto(&dir.path().join("mosq"), port);
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/contract");
    std::fs::create_dir_all(&out).unwrap();
    let capture = dir.path().join("capture.txt");
    let sub = capture_all(port, &capture);
    let broker = format!("mqtt://127.0.0.1:{port}");
    let models = models_dir();
    let demo = Demo::start_args(
        &dir.path().join("data"),
        Some("2026-11-23T07:20:00+08:00"),
        &[
            "--broker".as_ref(),
            broker.as_ref(),
            "--max-publish-per-s".as_ref(),
            "0".as_ref(),
            "--telemetry-every-s".as_ref(),
            "10".as_ref(),
            "--accept-updates".as_ref(),
            "--models".as_ref(),
            models.as_os_str(),
        ],
    );
    // Morning check: a fever reading paired with a tap.
    let (code, body) = demo.post("/api/v1/sim/temperature", r#"{"celsius":38.2}"#);
    assert_eq!(code, 202, "{body}");
    demo.tap(CARD_1);
    // Period 1 opens at 07:50: card check-ins, a teacher's override and symptoms.
    set_clock(&demo, "2026-11-23T07:56:00+08:00");
    demo.tap(CARD_2);
    let t = demo.login("T01", DEMO_PIN).unwrap();
    // Issue 15's teacher trigger, with the broker there: refused, and nothing wedges.
    let many = vec!["cough"; 190_000];
    let huge = serde_json::json!({"action": "record_symptoms", "student_id": "2025070301", "symptoms": many});
    let (code, v) = t.act(&huge.to_string());
    assert_eq!(code, 400, "{v}");
    for body in [
        r#"{"action":"set_attendance","lesson_id":"2026-11-23/1","student_id":"2025070303","status":"sick"}"#,
        r#"{"action":"record_symptoms","student_id":"2025070303","symptoms":["cough"],"temp_c":37.9}"#,
        r#"{"action":"whiteboard","power":true,"input":"hdmi1"}"#,
    ] {
        let (code, v) = t.act(body);
        assert_eq!(code, 200, "{body}: {v}");
    }
    // An alarm, cleared by the teacher.
    let (code, v) = demo.act(r#"{"action":"raise_alarm"}"#);
    assert_eq!(code, 200, "{v}");
    let id = v["alarm_id"].as_str().unwrap().to_owned();
    let (code, v) = t.act(&format!(r#"{{"action":"clear_alarm","alarm_id":"{id}"}}"#));
    assert_eq!(code, 200, "{v}");
    // The camera sees a person (the behaviour stream at the lesson's end).
    set_clock(&demo, "2026-11-23T08:05:00+08:00");
    demo.wait_models("camera");
    let png = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tests/data/astronaut.png"),
    )
    .unwrap();
    assert_eq!(
        post_bytes(&demo, "/api/v1/sim/frame", "image/png", &png),
        202
    );
    demo.wait_secs("the frame looked at", 120, |s| {
        camera(s)["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("1 faces"))
    });
    // The lesson ends early; after the morning check window the follow-ups open.
    let (code, v) = t.act(r#"{"action":"end_lesson","lesson_id":"2026-11-23/1"}"#);
    assert_eq!(code, 200, "{v}");
    set_clock(&demo, "2026-11-23T08:31:00+08:00");
    demo.wait_secs("the follow-ups", 15, |s| {
        pending(s, "followup") > 0 || s["outbox"]["total"] == 0
    });
    let (code, f) = t.get("/api/v1/followups");
    assert_eq!(code, 200, "{f}");
    if let Some(first) = f["followups"].as_array().and_then(|l| l.first()) {
        let id = first["id"]
            .as_str()
            .or(first["followup_id"].as_str())
            .unwrap();
        let (code, v) = t.act(&format!(
            r#"{{"action":"resolve_followup","followup_id":"{id}","resolution":"发烧在家休息","contacted_guardian":true}}"#
        ));
        assert_eq!(code, 200, "{v}");
    }
    // Downlinks: accepted, refused, a command, and an update whose download cannot work.
    send_down(
        port,
        "notice",
        "dl-n1",
        r#"{"id":"n1","title":"明天带画笔","body":"美术课需要水彩笔。"}"#,
    );
    send_down(port, "notice", "dl-n2", r#"{"id":"n2","title":"x"}"#);
    send_down(
        port,
        "calendar",
        "dl-cal-1",
        r#"{"version":1,"term":{"start":"2026-09-01","end":"2027-01-22"},"holidays":[{"from":"2027-01-01","name":"元旦"}],"makeup_days":[{"date":"2026-10-10","runs":1}],"days_off":[{"from":"2026-11-27","name":"运动会"}],"changes":[{"date":"2026-11-24","roster_id":"g7-c3","period":1,"kind":"substitute","teacher":"林雅","teacher_id":"T10"},{"date":"2026-11-24","roster_id":"g7-c3","period":8,"kind":"extra","subject":"英语","teacher":"李雪梅","starts":"16:45:00","ends":"17:30:00"}]}"#,
    );
    send_down(
        port,
        "honours",
        "dl-h1",
        r#"{"version":1,"items":[{"id":"h1","title":"流动红旗","text":"第十二周卫生评比第一名","date":"2026-11-20"}]}"#,
    );
    send_down(
        port,
        "duty",
        "dl-d1",
        r#"{"version":1,"days":[{"weekday":1,"students":["2025070301","2025070302"],"task":"擦黑板"}]}"#,
    );
    send_down(
        port,
        "homework",
        "dl-w1",
        r#"{"date":"2026-11-23","items":[{"subject":"数学","text":"练习册第12页","due":"2026-11-24"}]}"#,
    );
    send_command(
        port,
        "dl-c1",
        r#"{"name":"whiteboard.power","args":{"on":false}}"#,
    );
    send_command(
        port,
        "dl-u1",
        &format!(
            r#"{{"name":"system.update","args":{{"url":"https://127.0.0.1:{}/none.raucb","sha256":"{}"}}}}"#,
            free_port(),
            "0".repeat(64)
        ),
    );
    // Telemetry comes every 10 s; wait for two and an empty outbox.
    std::thread::sleep(Duration::from_secs(21));
    demo.wait_secs("the outbox to drain", 30, |s| s["outbox"]["total"] == 0);
    std::thread::sleep(Duration::from_millis(500));
    drop(sub);
    let text = std::fs::read_to_string(&capture).unwrap();
    for stream in [
        "alarm",
        "attendance",
        "health_check",
        "followup",
        "lesson",
        "lesson_report",
        "whiteboard",
        "telemetry",
        "ack",
        "update",
        "behaviour",
    ] {
        assert!(
            text.lines().any(|l| l.contains(&format!("/up/{stream} "))),
            "no {stream} message was captured"
        );
    }
    std::fs::write(out.join("daemon-demo.txt"), text).unwrap();
}
