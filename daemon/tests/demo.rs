//! The demo, end to end, through the real binary: simulated hardware → engine → SQLite →
//! status and outbox.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

#[test]
fn the_demo_serves_healthz_within_10_s_and_a_tap_becomes_one_more_outbox_row() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(MONDAY_0755));
    assert!(
        demo.ready_after < Duration::from_secs(10),
        "{:?}",
        demo.ready_after
    );

    let before = demo.status();
    assert_eq!(before["mode"], "demo");
    assert_eq!(before["sync"]["connected"], false);
    assert_eq!(before["lesson"]["subject"], "语文");
    assert_eq!(before["lesson"]["attendance"]["roster"], 40);
    // The board colours re-taken temperatures by the school's threshold, not a constant.
    assert_eq!(before["fever_threshold_c"], 37.3);
    let total = domain_records(&before);

    demo.tap(CARD_1);
    let after = demo.wait_for("the check-in", |s| {
        domain_records(s) == total + 1 && s["counters"]["check_ins"] == 1
    });
    assert_eq!(
        pending(&after, "attendance"),
        pending(&before, "attendance") + 1
    );
    assert_eq!(after["lesson"]["attendance"]["present"], 1);
    assert_eq!(after["counters"]["check_ins"], 1);

    // A repeated tap is idempotent: no new row.
    demo.tap(CARD_1);
    let again = demo.wait_for("the second tap", |s| s["counters"]["card_taps"] == 2);
    assert_eq!(domain_records(&again), total + 1);
}

#[test]
fn an_unknown_card_is_recorded_as_such_and_not_synced() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(MONDAY_0755));
    demo.tap(UNKNOWN_CARD);
    let s = demo.wait_for("the unknown card", |s| s["counters"]["unknown_cards"] == 1);
    assert_eq!(domain_records(&s), 0, "{s:#}");
    assert_eq!(s["lesson"]["attendance"]["present"], 0);
    // UIDs never reach the log.
    assert!(!demo.log_text().contains(UNKNOWN_CARD));
}

#[test]
fn sim_endpoints_reply_400_with_a_message_on_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(MONDAY_0755));
    for (path, body, expect) in [
        ("/api/v1/sim/card", "{\"reader\":", "invalid JSON body"),
        (
            "/api/v1/sim/card",
            r#"{"reader":"window","uid":"04A1B2C3"}"#,
            "unknown card reader \\\"window\\\"",
        ),
        (
            "/api/v1/sim/card",
            r#"{"reader":"door","uid":"04A1B2"}"#,
            "4, 7 or 10 bytes",
        ),
        (
            "/api/v1/sim/temperature",
            r#"{"celsius":null}"#,
            "invalid type",
        ),
        (
            "/api/v1/sim/button",
            r#"{"button":"fire"}"#,
            "unknown button",
        ),
    ] {
        let (code, text) = demo.post(path, body);
        assert_eq!(code, 400, "{path} {body}: {text}");
        assert!(text.contains(expect), "{path} {body}: {text}");
    }
    let s = demo.status();
    assert_eq!(s["counters"]["card_taps"], 0);
    assert_eq!(domain_records(&s), 0, "{s:#}");
}

#[test]
fn a_fever_reading_paired_with_a_tap_and_the_alarm_button_reach_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(MONDAY_0755));
    let (code, _) = demo.post("/api/v1/sim/temperature", r#"{"celsius":37.9}"#);
    assert_eq!(code, 202);
    demo.tap(CARD_2);
    let s = demo.wait_for("the health check", |s| {
        pending(s, "health_check") == 1 && s["counters"]["health_checks"] == 1
    });
    assert_eq!(s["counters"]["health_checks"], 1);

    // Sensor garbage is a fault, not a fever.
    let (code, _) = demo.post("/api/v1/sim/temperature", r#"{"celsius":85.0}"#);
    assert_eq!(code, 202);
    let s = demo.wait_for("the sensor fault", |s| {
        s["counters"]["rejected_inputs"] == 1
    });
    let thermo = s["hardware"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "thermometer")
        .unwrap()
        .clone();
    assert_eq!(thermo["state"], "fault", "{thermo}");

    let (code, _) = demo.post("/api/v1/sim/button", r#"{"button":"alarm"}"#);
    assert_eq!(code, 202);
    let s = demo.wait_for("the alarm", |s| {
        s["alarms"].as_array().is_some_and(|a| a.len() == 1)
    });
    assert_eq!(pending(&s, "alarm"), 1);
    let siren = s["hardware"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "siren")
        .unwrap()
        .clone();
    assert_eq!(siren["detail"], "on");
    let (code, metrics) = get(&format!("{}/metrics", demo.base)).unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("ketang_alarms_active 1"), "{metrics}");
}

#[test]
fn sigterm_shuts_down_within_5_s_and_everything_recorded_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let demo = Demo::start(&data, Some(MONDAY_0755));
    demo.tap(CARD_1);
    demo.tap(CARD_2);
    demo.wait_for("two check-ins", |s| pending(s, "attendance") == 2);
    let (status, took) = demo.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    // The WAL was checkpointed into the main file.
    let wal = data.join("ketang.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);

    let demo = Demo::start(&data, Some(MONDAY_0755));
    let s = demo.status();
    assert_eq!(pending(&s, "attendance"), 2);
    assert_eq!(s["lesson"]["attendance"]["present"], 2);
    assert!(s["store"]["quarantined"].is_null());
}

#[test]
fn a_corrupt_database_is_moved_aside_and_the_demo_starts_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("ketang.db"), vec![0x5Au8; 64 * 1024]).unwrap();
    let demo = Demo::start(&data, Some(MONDAY_0755));
    let s = demo.status();
    let moved = s["store"]["quarantined"]
        .as_str()
        .expect("quarantine reported in status")
        .to_owned();
    assert!(moved.contains("ketang.db.corrupt-"), "{moved}");
    assert_eq!(std::fs::read(&moved).unwrap(), vec![0x5Au8; 64 * 1024]);
    assert!(
        demo.log_text().contains("moved aside"),
        "{}",
        demo.log_text()
    );
    // The fresh store works.
    demo.tap(CARD_1);
    demo.wait_for("the check-in", |s| pending(s, "attendance") == 1);
}

#[test]
fn an_unusable_data_dir_fails_clearly_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let out = std::process::Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(file.join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not-a-dir") && err.contains("data directory"),
        "{err}"
    );
}

#[test]
fn clock_now_runs_the_demo_on_the_system_clock() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some("now"));
    let s = demo.status();
    assert_eq!(s["clock"]["simulated"], false);
    assert_eq!(s["clock"]["timezone"], "Asia/Shanghai");
}

#[test]
fn without_a_clock_option_the_demo_starts_on_a_school_morning_with_check_in_open() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), None);
    let s = demo.status();
    assert_eq!(s["clock"]["simulated"], true);
    assert!(
        s["clock"]["now"].as_str().unwrap().contains("T07:55"),
        "{}",
        s["clock"]
    );
    assert_eq!(s["lesson"]["state"], "open");
    demo.tap(CARD_1);
    demo.wait_for("the check-in", |s| domain_records(s) == 1);
}

#[test]
fn at_lesson_end_the_unmarked_are_absent_and_a_report_is_queued_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Three seconds before period 1 (08:00-08:45) ends, on a Monday.
    let demo = Demo::start(&data, Some("2026-11-23T08:44:57+08:00"));
    demo.tap(CARD_1); // late: past 08:05
    demo.wait_for("the check-in", |s| s["counters"]["check_ins"] == 1);
    let s = demo.wait_secs("the lesson's end", 20, |s| pending(s, "lesson_report") == 1);
    // 1 late check-in + 39 absent, each an attendance record; one report.
    assert_eq!(pending(&s, "attendance"), 40, "{s:#}");
    assert!(demo.log_text().contains("Lesson finalised."));
    let (status, _) = demo.terminate();
    assert!(status.success());

    // After a restart nothing is finalised twice.
    let demo = Demo::start(&data, Some("2026-11-23T08:46:00+08:00"));
    std::thread::sleep(Duration::from_millis(1500));
    let s = demo.status();
    assert_eq!(pending(&s, "lesson_report"), 1);
    assert_eq!(pending(&s, "attendance"), 40);
}

#[test]
fn lessons_that_ended_before_the_board_first_ran_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    // Started at 10:00: periods 1 and 2 ended before this board ever ran.
    let demo = Demo::start(&dir.path().join("data"), Some("2026-11-23T10:00:00+08:00"));
    std::thread::sleep(Duration::from_millis(1500));
    let s = demo.status();
    assert_eq!(pending(&s, "lesson_report"), 0);
    assert_eq!(domain_records(&s), 0, "{s:#}");
}

#[test]
fn when_the_morning_check_closes_students_unseen_are_followed_up_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The morning check window is 07:00-08:30; period 1 (08:00-08:45) is in progress.
    let demo = Demo::start(&data, Some("2026-11-23T08:29:55+08:00"));
    demo.tap(CARD_1); // checked in (late)
    let (code, _) = demo.post("/api/v1/sim/temperature", r#"{"celsius":36.6}"#);
    assert_eq!(code, 202);
    demo.tap(CARD_2); // checked in and health-checked
    demo.wait_for("two check-ins", |s| s["counters"]["check_ins"] == 2);
    let s = demo.wait_secs("the follow-ups", 20, |s| pending(s, "followup") > 0);
    assert_eq!(pending(&s, "followup"), 38, "{s:#}");
    let (status, _) = demo.terminate();
    assert!(status.success());

    // Restarted the same morning: nobody is followed up twice.
    let demo = Demo::start(&data, Some("2026-11-23T08:31:00+08:00"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(pending(&demo.status(), "followup"), 38);
}

/// Issue 15, trigger 2: `record_symptoms` with 190,000 entries in a 1.7 MB body was
/// accepted and became a 1.5 MB record that wedged the outbox. Now every list and string
/// of an action is bounded: refused with 400 naming the field, nothing stored.
#[test]
fn oversized_actions_are_refused_with_the_field_named_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some("2026-11-23T07:20:00+08:00"));
    let t = demo.login("T01", DEMO_PIN).unwrap();
    let before = pending(&demo.status(), "health_check");
    let many = vec!["cough"; 190_000];
    let body = serde_json::json!({"action": "record_symptoms", "student_id": "2025070301", "symptoms": many});
    let (code, v) = t.act(&body.to_string());
    assert_eq!(code, 400, "{v}");
    let msg = v.to_string();
    assert!(msg.contains("symptoms has 190000 entries"), "{msg}");
    assert!(
        msg.len() < 1000,
        "the refusal echoes input: {} bytes",
        msg.len()
    );
    let (code, v) = t.act(
        r#"{"action":"record_symptoms","student_id":"2025070301","symptoms":["cough","cough"]}"#,
    );
    assert_eq!(code, 400, "{v}");
    assert!(v.to_string().contains("listed twice"), "{v}");
    let reason = "理".repeat(100_000);
    let (code, v) = t.act(&format!(
        r#"{{"action":"cancel_lesson","lesson_id":"2026-11-23/1","reason":"{reason}"}}"#
    ));
    assert_eq!(code, 400, "{v}");
    assert!(
        v.to_string().contains("reason is 100000 characters long"),
        "{v}"
    );
    assert!(v.to_string().len() < 1000);
    // An unknown action name of a megabyte is refused without being echoed whole.
    let (code, v) = t.act(&format!(r#"{{"action":"{}"}}"#, "x".repeat(1_000_000)));
    assert_eq!(code, 400);
    assert!(v.to_string().len() < 1000, "{} bytes", v.to_string().len());
    assert_eq!(pending(&demo.status(), "health_check"), before);
    // A sane one still works.
    let (code, v) =
        t.act(r#"{"action":"record_symptoms","student_id":"2025070301","symptoms":["cough"]}"#);
    assert_eq!(code, 200, "{v}");
    demo.wait_for("the health-check record", |s| {
        pending(s, "health_check") == before + 1
    });
}

#[test]
fn the_start_banner_names_the_class_board_and_its_curl_command_sends_json() {
    // The banner is what a new user reads first: `/` is the class board (the status page is
    // `/status`), and the simulated card tap it offers must be accepted as printed (the sim
    // routes take only application/json).
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(common::BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    for _ in 0..2 {
        std::io::BufRead::read_line(&mut out, &mut banner).unwrap();
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(banner.contains("/ (class board)"), "{banner}");
    assert!(banner.contains("/status (status page)"), "{banner}");
    let curl = banner
        .lines()
        .find_map(|l| l.strip_prefix("Simulate a card tap: "))
        .unwrap_or_else(|| panic!("no card tap command: {banner}"));
    assert!(
        curl.contains("-H 'Content-Type: application/json'"),
        "{curl}"
    );
}

#[test]
fn two_readings_before_one_tap_are_not_stored_under_a_guess() {
    // Measure-then-tap door (the default): A and B both measure, then A taps. The board
    // used to store B's reading (the later one) under A.
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some("2026-11-23T07:20:00+08:00"));
    for c in ["36.6", "38.4"] {
        let (code, _) = demo.post("/api/v1/sim/temperature", &format!(r#"{{"celsius":{c}}}"#));
        assert_eq!(code, 202);
    }
    demo.tap(CARD_1);
    demo.wait_for("the tap", |s| s["counters"]["card_taps"] == 1);
    // B's tap right after is refused too: it could pair with nobody's reading but its own,
    // and its own was dropped with A's.
    demo.tap(CARD_2);
    demo.wait_for("the second tap", |s| s["counters"]["card_taps"] == 2);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let s = demo.status();
    assert_eq!(s["counters"]["health_checks"], 0, "{s:#}");
    assert_eq!(pending(&s, "health_check"), 0);
    // A window later, one student at a time pairs again.
    set_clock(&demo, "2026-11-23T07:20:30+08:00");
    let (code, _) = demo.post("/api/v1/sim/temperature", r#"{"celsius":36.7}"#);
    assert_eq!(code, 202);
    demo.tap(CARD_2);
    demo.wait_for("one health check", |s| s["counters"]["health_checks"] == 1);
}
