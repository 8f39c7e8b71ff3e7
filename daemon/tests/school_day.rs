#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A simulated school day through the real `ketangd demo`: the morning health check, a
//! lesson started early with card check-ins and teacher overrides, ended early and corrected
//! after its end, the follow-up list resolved, a drill and a real alarm cleared by a teacher,
//! a lesson cancelled, a clock jump backwards, a local notice, the audit log.

mod common;

use common::*;
use serde_json::Value;

const DAY: &str = "2026-11-23";
/// Student 3's card (students are 2025070301..40; cards CARD_1, CARD_2 belong to 01, 02).
const CARD_3: &str = "04BEAE80";
const S: fn(u32) -> String = |n| format!("20250703{n:02}");

fn at(hm: &str) -> String {
    format!("{DAY}T{hm}:00+08:00")
}

fn entry<'a>(roll: &'a Value, student: &str) -> &'a Value {
    roll["roll"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["student_id"] == student)
        .unwrap()
}

#[test]
fn a_school_day() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(&at("07:20")));

    // --- Morning check (07:00-08:30): thermometer reading, then the card, within 10 s.
    for (celsius, card) in [("36.5", CARD_1), ("38.2", CARD_3)] {
        let (code, body) = demo.post(
            "/api/v1/sim/temperature",
            &format!(r#"{{"celsius":{celsius}}}"#),
        );
        assert_eq!(code, 202, "{body}");
        demo.tap(card);
    }
    demo.wait_for("two health checks", |s| s["counters"]["health_checks"] == 2);
    assert_eq!(
        demo.status()["counters"]["check_ins"],
        0,
        "no lesson open at 07:20"
    );

    // --- Teacher mode: the kiosk may not act; a wrong PIN is refused; the right one unlocks.
    let set = |student: &str, status: &str| {
        format!(
            r#"{{"action":"set_attendance","lesson_id":"{DAY}/1","student_id":"{student}","status":"{status}"}}"#
        )
    };
    let (code, _) = demo.act(&set(&S(3), "sick"));
    assert_eq!(code, 401);
    let (code, body) = demo.login("T01", "1111").err().unwrap();
    assert_eq!(code, 401, "{body}");
    let t = demo.login("T01", DEMO_PIN).unwrap();

    // The panel: the timetable switches it on as check-in nears (07:45).
    let wb = |s: &Value| {
        s["hardware"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["kind"] == "whiteboard")
            .unwrap()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    // --- Period 1 (08:00-08:45): check-in opens 07:50; started early at 07:52.
    set_clock(&demo, &at("07:52"));
    demo.wait_for("the panel on", |s| wb(s).starts_with("on"));
    demo.tap(CARD_1);
    demo.wait_for("the first check-in", |s| s["counters"]["check_ins"] == 1);
    let (code, v) = t.act(&format!(
        r#"{{"action":"start_lesson","lesson_id":"{DAY}/1"}}"#
    ));
    assert_eq!(
        (code, v["state"].as_str()),
        (200, Some("in_progress")),
        "{v}"
    );
    let (code, v) = t.act(&format!(
        r#"{{"action":"start_lesson","lesson_id":"{DAY}/1"}}"#
    ));
    assert_eq!(code, 409, "starting twice: {v}");
    let s = demo.status();
    assert_eq!(s["lesson"]["state"], "in_progress", "{s:#}");

    // Lateness counts from the timetable's 08:00 (+5 min grace), not the early start.
    set_clock(&demo, &at("08:07"));
    demo.tap(CARD_2);
    demo.wait_for("the late check-in", |s| {
        s["lesson"]["attendance"]["late"] == 1
    });
    // Overrides: 3 is sick, 2 was late but the teacher says present; they win over cards.
    assert_eq!(t.act(&set(&S(3), "sick")).0, 200);
    let (code, v) = t.act(&set(&S(2), "present"));
    assert_eq!((code, v["previous"].as_str()), (200, Some("late")), "{v}");
    demo.tap(CARD_2);
    let (code, roll) = t.get("/api/v1/lesson");
    assert_eq!(code, 200, "{roll}");
    let e = entry(&roll, &S(2));
    assert_eq!(
        (
            e["status"].as_str(),
            e["source"].as_str(),
            e["recorded_by"].as_str()
        ),
        (Some("present"), Some("manual"), Some("T01")),
        "{e}"
    );
    assert_eq!(t.act(&set(&S(2), "excellent")).0, 400);
    assert_eq!(t.act(&set("nobody", "present")).0, 404);

    assert_eq!(
        demo.act(r#"{"action":"whiteboard","input":"hdmi1"}"#).0,
        401
    );
    let (code, v) = t.act(r#"{"action":"whiteboard","input":"hdmi1"}"#);
    assert_eq!((code, v["input"].as_str()), (200, Some("hdmi1")), "{v}");
    assert_eq!(t.act(r#"{"action":"whiteboard","input":"tv"}"#).0, 400);
    assert_eq!(wb(&demo.status()), "on · hdmi1");

    // Ended early at 08:28: finalised at once, report with health and the early times.
    set_clock(&demo, &at("08:28"));
    let (code, v) = t.act(&format!(
        r#"{{"action":"end_lesson","lesson_id":"{DAY}/1"}}"#
    ));
    assert_eq!((code, v["state"].as_str()), (200, Some("ended")), "{v}");
    let (code, r) = t.get(&format!("/api/v1/reports/{DAY}/1"));
    assert_eq!(code, 200, "{r}");
    let a = &r["attendance"];
    assert_eq!(
        (
            a["present"].as_u64(),
            a["sick"].as_u64(),
            a["absent"].as_u64()
        ),
        (Some(2), Some(1), Some(37)),
        "{r:#}"
    );
    assert_eq!(r["health"]["morning"]["checked"], 2, "{r:#}");
    assert_eq!(
        r["health"]["morning"]["fever_ids"],
        serde_json::json!([S(3)])
    );
    assert!(r["started_early_at"].is_string() && r["ended_early_at"].is_string());
    assert_eq!(r["revision"], 1);
    // The panel was on for the whole lesson as it ran (07:52-08:28).
    let on_s = r["whiteboard_on_s"].as_i64().unwrap();
    assert!((2100..=2200).contains(&on_s), "{on_s} {r:#}");
    // A correction after the end makes revision 2.
    let (code, v) = t.act(&set(&S(4), "leave"));
    assert_eq!(
        (code, v["report_revised"].as_bool()),
        (200, Some(true)),
        "{v}"
    );
    let (_, r) = t.get(&format!("/api/v1/reports/{DAY}/1"));
    assert_eq!(
        (r["revision"].as_u64(), r["attendance"]["absent"].as_u64()),
        (Some(2), Some(36))
    );

    // --- The morning check closed at 08:30: the unseen without leave are followed up.
    // Seen: 1 (checked and in), 2 (in), 3 (checked); 4 is on leave: 36 follow-ups, and
    // 3's fever (38.2 °C at 07:20) opened one of its own: 37.
    set_clock(&demo, &at("08:31"));
    demo.wait_secs("the follow-ups", 10, |s| pending(s, "followup") == 37);
    let (code, f) = t.get("/api/v1/followups");
    assert_eq!(code, 200);
    let list = f["followups"].as_array().unwrap();
    assert_eq!(list.len(), 37);
    let fever: Vec<&Value> = list
        .iter()
        .filter(|x| x["reason"] == "fever_at_check")
        .collect();
    assert_eq!(fever.len(), 1, "{f}");
    assert_eq!(fever[0]["student_id"], S(3));
    assert!(
        list.iter()
            .all(|x| x["state"] == "open" && x["student_id"] != S(4))
    );
    let resolve = |id: &str, res: &str| {
        format!(
            r#"{{"action":"resolve_followup","followup_id":"{id}","resolution":"{res}","contacted_guardian":true}}"#
        )
    };
    let id = format!("{DAY}/{}", S(5));
    assert_eq!(t.act(&resolve(&id, "  ")).0, 400);
    assert_eq!(t.act(&resolve(&id, "发烧在家休息")).0, 200);
    assert_eq!(t.act(&resolve(&id, "again")).0, 409);
    assert_eq!(t.act(&resolve("2026-11-23/nobody", "x")).0, 404);

    // --- Alarms: a drill needs a teacher; anyone raises a real one; clearing needs a teacher.
    assert_eq!(demo.act(r#"{"action":"raise_alarm","drill":true}"#).0, 401);
    let (code, drill) = t.act(r#"{"action":"raise_alarm","drill":true}"#);
    assert_eq!(code, 200, "{drill}");
    let (code, real) = demo.act(r#"{"action":"raise_alarm"}"#);
    assert_eq!(code, 200, "{real}");
    let s = demo.wait_for("two alarms", |s| s["alarms"].as_array().unwrap().len() == 2);
    assert!(
        s["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["drill"] == true)
    );
    let clear = |v: &Value| format!(r#"{{"action":"clear_alarm","alarm_id":{}}}"#, v["alarm_id"]);
    assert_eq!(demo.act(&clear(&real)).0, 401);
    assert_eq!(t.act(&clear(&real)).0, 200);
    let (code, v) = t.act(&clear(&drill));
    assert_eq!((code, v["siren"].as_bool()), (200, Some(false)), "{v}");
    assert_eq!(t.act(&clear(&drill)).0, 404);
    assert!(demo.status()["alarms"].as_array().unwrap().is_empty());

    // --- Period 3 (10:00) cancelled: nobody is marked; taps during it check nobody in.
    let (code, v) = t.act(&format!(
        r#"{{"action":"cancel_lesson","lesson_id":"{DAY}/3","reason":"运动会"}}"#
    ));
    assert_eq!((code, v["state"].as_str()), (200, Some("cancelled")), "{v}");
    let (_, r) = t.get(&format!("/api/v1/reports/{DAY}/3"));
    assert_eq!(
        (r["cancelled"].as_bool(), r["attendance"]["absent"].as_u64()),
        (Some(true), Some(0))
    );
    set_clock(&demo, &at("10:10"));
    demo.tap(CARD_1);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let s = demo.status();
    assert!(s["lesson"].is_null(), "{s:#}");

    // Period 2 (08:55-09:40) ended meanwhile, unattended: finalised, all 40 absent.
    demo.wait_for("period 2's report", |s| pending(s, "lesson_report") == 4);

    // --- The clock jumps back to 08:10: periods 1 and 2 stay ended.
    set_clock(&demo, &at("08:10"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !demo.log_text().contains("The clock jumped backwards") {
        assert!(
            std::time::Instant::now() < deadline,
            "jump not flagged: {}",
            demo.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let s = demo.status();
    assert!(s["lesson"].is_null(), "period 1 must not reopen: {s:#}");
    demo.tap(CARD_1);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(demo.status()["counters"]["check_ins"], 2);

    // --- A local notice shows on the board; a bad one is refused.
    let (code, v) =
        t.act(r#"{"action":"post_notice","title":"明天带画笔","body":"美术课需要水彩笔。"}"#);
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        t.act(r#"{"action":"post_notice","title":"","body":"x"}"#).0,
        400
    );
    let s = demo.status();
    assert!(
        s["notices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["title"] == "明天带画笔"),
        "{s:#}"
    );

    // --- Everything the cloud needs is queued.
    let s = demo.status();
    assert_eq!(pending(&s, "lesson"), 3, "start, end, cancel: {s:#}");
    assert_eq!(
        pending(&s, "lesson_report"),
        4,
        "p1 twice (revision 2), p2, p3: {s:#}"
    );
    assert_eq!(pending(&s, "followup"), 38);
    assert_eq!(pending(&s, "alarm"), 4);
    assert_eq!(pending(&s, "health_check"), 2);
    // The schedule's off (07:20) and on (07:52), the teacher's input.
    assert_eq!(pending(&s, "whiteboard"), 3, "{s:#}");
    // p1: 2 card check-ins, 2 overrides, 37 finalised, 1 override after the end; p2: 40.
    assert_eq!(pending(&s, "attendance"), 2 + 2 + 37 + 1 + 40, "{s:#}");

    // --- The audit log names who did what; logout ends the session.
    let (code, audit) = t.get("/api/v1/audit");
    assert_eq!(code, 200);
    let actions: Vec<&str> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for want in [
        "lesson.started",
        "lesson.ended",
        "lesson.cancelled",
        "attendance.override",
        "followup.resolve",
        "alarm.clear",
        "notice.post",
        "whiteboard",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    assert!(
        audit["audit"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["actor"] == "T01")
    );

    // Nothing identifying reached the log.
    let log = demo.log_text();
    for secret in ["姜芷若", CARD_1, CARD_3] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
    // The PIN as a word of its own (a random port or temp dir may contain its digits).
    let pin_logged = log
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w == DEMO_PIN);
    assert!(!pin_logged, "the PIN in the log");
}

/// A board whose clock is set years ahead (a bad RTC, a spoofed time server) keeps its
/// history: nothing is pruned after a clock jump, and the store counts ages from its newest
/// record, not the wall clock. Main deleted every row older than the new date's retention.
#[test]
fn a_clock_set_years_ahead_erases_no_history() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(&at("07:52")));
    demo.tap(CARD_1);
    demo.wait_for("a check-in", |s| s["counters"]["check_ins"] == 1);
    let t = demo.login("T01", DEMO_PIN).unwrap();
    let (code, v) = t.act(&format!(
        r#"{{"action":"set_attendance","lesson_id":"{DAY}/1","student_id":"{}","status":"sick"}}"#,
        S(3)
    ));
    assert_eq!(code, 200, "{v}");
    let audit_rows = |t: &Teacher| {
        let (code, audit) = t.get("/api/v1/audit");
        assert_eq!(code, 200, "{audit}");
        audit["audit"].as_array().map_or(0, Vec::len)
    };
    let before = audit_rows(&t);
    assert!(before >= 1, "the override is audited: {before}");

    set_clock(&demo, "2029-11-23T07:52:00+08:00");
    demo.wait_for("the jump seen", |s| s["counters"]["clock_jumps"] == 1);
    // The classroom ticks every second; give it a few.
    std::thread::sleep(std::time::Duration::from_secs(3));
    set_clock(&demo, &at("08:20"));
    demo.wait_for("the jump back seen", |s| s["counters"]["clock_jumps"] == 2);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let t = demo.login("T01", DEMO_PIN).unwrap();
    assert!(audit_rows(&t) >= before, "the audit log kept its rows");
    let (code, roll) = t.get("/api/v1/lesson");
    assert_eq!(code, 200, "{roll}");
    assert_eq!(roll["lesson"]["id"], format!("{DAY}/1"), "{roll}");
    assert_eq!(entry(&roll, &S(3))["status"], "sick", "{roll}");
    assert_eq!(entry(&roll, &S(1))["status"], "present", "{roll}");
    assert!(
        !demo.log_text().contains("past its retention deleted"),
        "{}",
        demo.log_text()
    );
}

/// Schools cut the power at night: the afternoon's last lessons end while the board is off
/// (or its clock jumps to the next morning). They must still be finalised, from the
/// calendar of their own day, when the board is back.
#[test]
fn lessons_that_ended_while_the_board_was_off_are_finalised_the_next_morning() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let demo = Demo::start(&data, Some(&at("07:52")));
    set_clock(&demo, &at("15:00"));
    let t = demo.login("T01", DEMO_PIN).unwrap();
    demo.wait_for("period 5 finalised", |_| {
        t.get(&format!("/api/v1/reports/{DAY}/5")).0 == 200
    });
    assert_eq!(
        t.get(&format!("/api/v1/reports/{DAY}/7")).0,
        404,
        "not ended yet"
    );
    // Off at 15:00 (periods 6 and 7 end at 15:40 and 16:35), on the next morning.
    let (st, _) = demo.terminate();
    assert!(st.success(), "{st:?}");
    let demo = Demo::start(&data, Some("2026-11-24T07:30:00+08:00"));
    let t = demo.login("T01", DEMO_PIN).unwrap();
    for p in [6, 7] {
        demo.wait_for(&format!("Monday's period {p} finalised"), |_| {
            t.get(&format!("/api/v1/reports/{DAY}/{p}")).0 == 200
        });
    }
    let (_, r) = t.get(&format!("/api/v1/reports/{DAY}/7"));
    assert_eq!(r["attendance"]["absent"], 40, "{r}");
    // In the same run, a jump over the night finalises the day left behind as well.
    set_clock(&demo, "2026-11-24T15:00:00+08:00");
    set_clock(&demo, "2026-11-25T07:30:00+08:00");
    demo.wait_for("Tuesday's period 7 finalised", |_| {
        t.get("/api/v1/reports/2026-11-24/7").0 == 200
    });
}
