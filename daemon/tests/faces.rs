#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Face attendance through the real binary and the real models: consent before enrolment,
//! a check-in with source `face` from a camera frame, nothing but the check-in queued for
//! the cloud, withdrawal deleting the templates, and a camera without models degraded while
//! cards keep working.

mod common;

use std::path::Path;

use base64::Engine as _;
use common::{CARD_1, Demo, MONDAY_0755, camera, get, mic, pending};
use serde_json::Value;

const STUDENT: &str = "2025070305";

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models/tests/data")
            .join(name),
    )
    .unwrap()
}

fn post_frame(demo: &Demo, png: &[u8]) -> u16 {
    common::post_bytes(demo, "/api/v1/sim/frame", "image/png", png)
}

#[test]
fn a_consented_enrolled_student_is_checked_in_by_face_and_withdrawal_forgets_them() {
    let dir = tempfile::tempdir().unwrap();
    let models = common::models_dir();
    let demo = Demo::start_args(
        &dir.path().join("data"),
        Some(MONDAY_0755),
        &["--models".as_ref(), models.as_os_str()],
    );
    demo.wait_models("camera");
    let tech = demo.technician();
    let b64 = base64::engine::general_purpose::STANDARD.encode(photo("astronaut.png"));
    let enrol =
        format!(r#"{{"action":"face_enrol","student_id":"{STUDENT}","image_base64":"{b64}"}}"#);

    // No consent, no enrolment.
    let (code, v) = tech.act(&enrol);
    assert_eq!(code, 409, "{v}");
    assert!(v.to_string().contains("no guardian consent record"), "{v}");
    // A teacher may not record consent; a technician may.
    let consent = format!(
        r#"{{"action":"face_consent","student_id":"{STUDENT}","granted":true,"granted_at":"2026-09-01T09:00:00+08:00"}}"#
    );
    let (code, v) = demo.act(&consent);
    assert_eq!(code, 401);
    assert!(v.to_string().contains("needs the technician"), "{v}");
    let (code, v) = tech.act(&consent);
    assert_eq!(code, 200, "{v}");
    // A photo without one clear face is refused with the reason.
    let mosaic = base64::engine::general_purpose::STANDARD.encode(photo("mosaic.png"));
    let (code, v) = tech.act(&format!(
        r#"{{"action":"face_enrol","student_id":"{STUDENT}","image_base64":"{mosaic}"}}"#
    ));
    assert_eq!(code, 409, "{v}");
    assert!(v.to_string().contains("faces in the photo"), "{v}");
    let (code, v) = tech.act(&enrol);
    assert_eq!(code, 200, "{v}");
    let (code, f) = tech.get("/api/v1/tech/faces");
    assert_eq!(code, 200);
    assert_eq!(f["consents"][0]["student_id"], STUDENT, "{f}");
    assert_eq!(f["consents"][0]["templates"], 1, "{f}");
    // The template is sealed at rest: the key sits outside the database, private.
    let key = dir.path().join("data/keys/face.key");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The camera sees the student (mirrored, as a different frame would): checked in by face.
    let before = demo.status()["counters"]["check_ins"].as_u64().unwrap();
    let mirrored = {
        let img = image::load_from_memory(&photo("astronaut.png"))
            .unwrap()
            .fliph();
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    assert_eq!(post_frame(&demo, &mirrored), 202);
    demo.wait_for("a face check-in", |s| {
        s["counters"]["check_ins"].as_u64() == Some(before + 1)
    });
    let (_, lesson) = demo
        .login("T01", common::DEMO_PIN)
        .unwrap()
        .get("/api/v1/lesson");
    let row = lesson["roll"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["student_id"] == STUDENT)
        .cloned()
        .unwrap();
    assert_eq!(row["source"], "face", "{row}");
    // The camera's status: counts only (it is updated after the events are sent).
    let s = demo.wait_for("the camera's counts", |s| {
        camera(s)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("1 faces · 1 recognised"))
    });
    let cam = camera(&s);
    assert!(
        !cam.to_string().contains(STUDENT),
        "no student ids on the status page: {cam}"
    );
    assert!(
        cam["detail"].as_str().unwrap().contains("· 1 embedded ·"),
        "{cam}"
    );
    // The next frame with the student in the same place: still recognised, without
    // embedding the face again (ketang_models::track).
    let frames_now = |s: &Value| {
        camera(s)["detail"]
            .as_str()
            .and_then(|d| d.split("frames ").nth(1))
            .and_then(|d| d.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let seen = frames_now(&s);
    assert_eq!(post_frame(&demo, &mirrored), 202);
    let s = demo.wait_for("the next frame looked at", |s| frames_now(s) > seen);
    let d = camera(&s)["detail"].as_str().unwrap().to_owned();
    assert!(
        d.contains("1 faces · 1 recognised") && d.contains("· 0 embedded ·"),
        "{d}"
    );

    // A restart (a power cut, a reboot, an update) keeps face attendance: the gallery is
    // loaded at start, and the status says how many templates of which model it holds.
    let _ = demo.terminate();
    let demo = Demo::start_args(
        &dir.path().join("data"),
        Some(MONDAY_0755),
        &["--models".as_ref(), models.as_os_str()],
    );
    let s = demo.wait_for("the gallery loaded at start", |s| {
        camera(s)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("gallery 1 (dlib_resnet_v1)"))
    });
    assert_eq!(camera(&s)["state"], "ok", "{s}");
    assert_eq!(post_frame(&demo, &mirrored), 202);
    demo.wait_for("the student recognised after the restart", |s| {
        camera(s)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("1 faces · 1 recognised"))
    });
    // Another face model cannot use these templates: the status says so, never silently.
    let _ = demo.terminate();
    let other = Demo::start_args(
        &dir.path().join("data"),
        Some(MONDAY_0755),
        &[
            "--models".as_ref(),
            models.as_os_str(),
            "--face-model".as_ref(),
            "mobilefacenet_192_b1".as_ref(),
        ],
    );
    other.wait_for("templates of another model named", |s| {
        camera(s)["detail"].as_str().is_some_and(|d| {
            d.contains("gallery 0 (mobilefacenet_192_b1)")
                && d.contains("1 templates of another face model: enrol again")
        })
    });
    let _ = other.terminate();
    let demo = Demo::start_args(
        &dir.path().join("data"),
        Some(MONDAY_0755),
        &["--models".as_ref(), models.as_os_str()],
    );
    demo.wait_for("the gallery loaded again", |s| {
        camera(s)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("gallery 1 (dlib_resnet_v1)"))
    });
    let tech = demo.technician();
    let before = demo.status()["counters"]["check_ins"].as_u64().unwrap();

    // Cards still work next to the camera.
    demo.tap(CARD_1);
    demo.wait_for("the card check-in", |s| {
        s["counters"]["check_ins"].as_u64() == Some(before + 1)
    });

    // Withdrawal: templates deleted, and the student is no longer recognised.
    let (code, v) = tech.act(&format!(
        r#"{{"action":"face_consent","student_id":"{STUDENT}","granted":false}}"#
    ));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["templates_deleted"], 1, "{v}");
    let (_, f) = tech.get("/api/v1/tech/faces");
    assert_eq!(f["consents"], serde_json::json!([]), "{f}");
    // Withdrawing again: there is nothing to withdraw (404), and no audit row says so.
    let (code, v) = tech.act(&format!(
        r#"{{"action":"face_consent","student_id":"{STUDENT}","granted":false}}"#
    ));
    assert_eq!(code, 404, "{v}");
    assert!(v.to_string().contains("no face consent to withdraw"), "{v}");
    assert_eq!(post_frame(&demo, &photo("astronaut.png")), 202);
    demo.wait_for("the frame looked at, nobody recognised", |s| {
        camera(s)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("1 faces · 0 recognised"))
    });
    let (_, audit) = tech.get("/api/v1/audit");
    let actions: Vec<&str> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    for a in [
        "face.consent_granted",
        "face.enrol",
        "face.consent_withdrawn",
    ] {
        assert!(actions.contains(&a), "{a} audited: {actions:?}");
    }
    // The withdrawal is audited once (the empty second one is not).
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "face.consent_withdrawn")
            .count(),
        1,
        "{actions:?}"
    );
    // Bad frames are refused with a reason.
    assert_eq!(post_frame(&demo, b"not an image"), 400);
}

#[test]
fn without_models_the_camera_is_degraded_naming_the_file_and_cards_still_check_in() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("no-models");
    std::fs::create_dir_all(&empty).unwrap();
    let demo = Demo::start_args(
        &dir.path().join("data"),
        Some(MONDAY_0755),
        &["--models".as_ref(), empty.as_os_str()],
    );
    let s = demo.wait_for("the camera degraded", |s| camera(s)["state"] == "absent");
    let detail = camera(&s)["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("face_detection_full_range.onnx")
            && detail.contains("inference.models_dir"),
        "{detail}"
    );
    demo.tap(CARD_1);
    demo.wait_for("the card check-in", |s| s["counters"]["check_ins"] == 1);
    let (code, _) = get(&format!("{}/healthz", demo.base)).unwrap();
    assert_eq!(code, 200);
}

fn post_audio(demo: &Demo, wav: &[u8]) -> u16 {
    common::post_bytes(demo, "/api/v1/sim/audio", "audio/wav", wav)
}

#[test]
fn the_lesson_report_carries_head_count_behaviour_and_talk_time_as_class_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    let models = common::models_dir();
    let demo = Demo::start_args(
        &dir.path().join("data"),
        Some(MONDAY_0755),
        &["--models".as_ref(), models.as_os_str()],
    );
    demo.wait_models("camera");
    common::set_clock(&demo, "2026-11-23T08:10:00+08:00");
    // The camera sees one person, looking ahead; the microphone hears the speech sample.
    assert_eq!(post_frame(&demo, &photo("astronaut.png")), 202);
    demo.wait_for("the frame looked at", |s| {
        camera(s)["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("1 faces"))
    });
    let wav = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tests/data/speech.wav"),
    )
    .unwrap();
    assert_eq!(post_audio(&demo, &wav), 202);
    let s = demo.wait_for("the recording heard", |s| {
        mic(s)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("s speech"))
    });
    assert_eq!(mic(&s)["state"], "ok", "{}", mic(&s));
    assert_eq!(post_audio(&demo, b"RIFF not really"), 400);
    // An image bomb (a tiny PNG declaring 16,000×16,000 pixels) is refused, not decoded.
    assert_eq!(
        post_frame(&demo, &ketang_models::png_header_only(16_000, 16_000)),
        400
    );

    let t = demo.login("T01", common::DEMO_PIN).unwrap();
    let (code, v) = t.act(r#"{"action":"end_lesson","lesson_id":"2026-11-23/1"}"#);
    assert_eq!(code, 200, "{v}");
    let (code, r) = t.get("/api/v1/reports/2026-11-23/1");
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["head_count"]["people_max"], 1, "{r}");
    assert_eq!(r["head_count"]["present"], 0, "{r}");
    assert_eq!(r["head_count"]["mismatch"], true, "{r}");
    let b = &r["behaviour"];
    assert!(b["frames"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(b["hand_raise_events"], 0, "{r}");
    assert!(b["heads_up_rate"].as_f64().unwrap() > 0.99, "{r}");
    let tt = &r["talk_time"];
    assert!(tt["speech_s"].as_f64().unwrap() > 3.0, "{r}");
    assert_eq!(tt["method"], "room_mic", "{r}");
    assert!(tt["samples"].as_u64().unwrap() >= 19, "{r}");
    // Class aggregates only: no student id, no face data in these parts of the report.
    for part in [&r["head_count"], &r["behaviour"], &r["talk_time"]] {
        assert!(!part.to_string().contains("2025070"), "{part}");
    }
    // The board's own view adds how the lesson went (never synced) and the class's week.
    let tl = &r["timeline"];
    assert_eq!(tl["bucket_min"], 5, "{r}");
    let frames: u64 = tl["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_u64().unwrap())
        .sum();
    assert_eq!(frames, b["frames"].as_u64().unwrap(), "{tl}");
    // The frame came at 08:10 of a lesson from 08:00: the third bucket; heads up there.
    assert!(tl["frames"][2].as_u64().unwrap() >= 1, "{tl}");
    assert_eq!(tl["heads_down"][2], 0.0, "{tl}");
    assert_eq!(
        tl["heads_down"][0],
        Value::Null,
        "no frame, no figure: {tl}"
    );
    let st = tl["st"].as_str().unwrap();
    assert_eq!(st.len() as u64, tt["samples"].as_u64().unwrap(), "{tl}");
    assert!(st.chars().all(|c| c == 'T' || c == 'S'), "{st}");
    assert_eq!(
        st.matches('T').count() as f64 / st.len() as f64,
        tt["rt"].as_f64().unwrap(),
        "the sequence is the report's Rt: {st}"
    );
    assert_eq!(r["week"][0]["date"], "2026-11-23", "{r}");
    assert_eq!(r["week"][0]["lessons"], 1, "{r}");
    assert_eq!(r["week"][0]["hand_raises"], 0, "{r}");
    for part in [&r["timeline"], &r["week"]] {
        assert!(!part.to_string().contains("2025070"), "{part}");
    }
    // The same aggregates, once, on the behaviour stream (class scope), and no timeline.
    let s = demo.wait_for("a behaviour record", |s| pending(s, "behaviour") == 1);
    assert_eq!(pending(&s, "behaviour"), 1, "{}", s["outbox"]);
}

#[test]
fn run_reads_frames_and_recordings_from_their_folders_and_deletes_them() {
    let dir = tempfile::tempdir().unwrap();
    let models = common::models_dir();
    let (frames, audio) = (dir.path().join("frames"), dir.path().join("audio"));
    std::fs::create_dir_all(&frames).unwrap();
    std::fs::create_dir_all(&audio).unwrap();
    let port = common::free_port();
    let cfg = dir.path().join("ketang.toml");
    std::fs::write(
        &cfg,
        common::board_config(
            &dir.path().join("data"),
            port,
            &format!(
                r#"[inference]
enabled = true
models_dir = "{models}"
camera = "frames"
frames_dir = "{frames}"
sample_every_ms = 200
microphone = "wav"
audio_dir = "{audio}"
"#,
                models = models.display(),
                frames = frames.display(),
                audio = audio.display(),
            ),
        ),
    )
    .unwrap();
    // Killed on drop, also when a wait below fails.
    let _child = common::mqtt::Proc(
        std::process::Command::new(common::BIN)
            .args(["run", "--config"])
            .arg(&cfg)
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let status = || -> Option<Value> {
        let (c, b) = get(&format!("http://127.0.0.1:{port}/api/v1/status")).ok()?;
        (c == 200).then(|| serde_json::from_str(&b).unwrap())
    };
    let wait = |what: &str, f: &dyn Fn(&Value) -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(s) = status()
                && f(&s)
            {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: {:?}",
                status()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let dev = |s: &Value, kind: &str| {
        s["hardware"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["kind"] == kind)
            .cloned()
            .unwrap()
    };
    wait("camera ready", &|s| dev(s, "camera")["state"] == "ok");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tests/data/astronaut.png"),
        frames.join("f-0001.png"),
    )
    .unwrap();
    wait("the frame seen", &|s| {
        dev(s, "camera")["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("1 faces"))
    });
    wait("the frame deleted", &|_| {
        !frames.join("f-0001.png").exists()
    });
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tests/data/speech.wav"),
        audio.join("r-0001.wav"),
    )
    .unwrap();
    wait("the recording heard", &|s| {
        dev(s, "microphone")["detail"]
            .as_str()
            .is_some_and(|d| d.contains("s speech"))
    });
    assert!(
        !audio.join("r-0001.wav").exists(),
        "recordings are deleted once heard"
    );
    // A black frame: the camera says so.
    let black = image::RgbImage::new(320, 240);
    black.save(frames.join("f-0002.png")).unwrap();
    wait("the black frame flagged", &|s| {
        dev(s, "camera")["detail"]
            .as_str()
            .is_some_and(|d| d.contains("only black"))
    });
}

#[test]
fn a_v4l2_camera_or_alsa_microphone_that_is_not_there_is_named_and_the_board_stays_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let models = common::models_dir();
    let port = common::free_port();
    let cfg = dir.path().join("ketang.toml");
    std::fs::write(
        &cfg,
        common::board_config(
            &dir.path().join("data"),
            port,
            &format!(
                r#"[inference]
enabled = true
models_dir = "{models}"
camera = "v4l2"
camera_device = "/dev/video-none"
microphone = "alsa"
audio_device = "hw:9,0"
"#,
                models = models.display(),
            ),
        ),
    )
    .unwrap();
    let child = std::process::Command::new(common::BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
        .spawn()
        .unwrap();
    let board = common::Demo {
        child,
        base: format!("http://127.0.0.1:{port}"),
        data_dir: dir.path().join("data"),
        log: dir.path().join("log"),
        started: std::time::Instant::now(),
        ready_after: std::time::Duration::ZERO,
    };
    let dev = |s: &Value, name: &str| {
        s["hardware"]
            .as_array()
            .and_then(|a| a.iter().find(|d| d["name"] == name).cloned())
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !matches!(get(&format!("{}/healthz", board.base)), Ok((200, _))) {
        assert!(std::time::Instant::now() < deadline, "{}", board.log_text());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let s = board.wait_secs("camera and microphone named as absent", 30, |s| {
        let (c, m) = (dev(s, "camera"), dev(s, "microphone"));
        c["state"] == "absent"
            && c["detail"]
                .as_str()
                .is_some_and(|d| d.contains("/dev/video-none"))
            && m["state"] == "absent"
            && m["detail"].as_str().is_some_and(|d| d.contains("hw:9,0"))
    });
    let m = dev(&s, "microphone");
    assert!(
        m["detail"].as_str().unwrap().contains("arecord"),
        "arecord's own words: {m}"
    );
    // The daemon itself stays healthy (cards with a degraded camera: the test above).
    assert_eq!(get(&format!("{}/healthz", board.base)).unwrap().0, 200);
}

/// A tight crop (a face filling the frame, as a student leaning into a door-side camera)
/// is found on the camera path too (#20): the classroom detector (full range) misses faces
/// that fill the frame, so the near detector (the enrolment one) is tried when it finds none.
#[test]
fn a_face_filling_the_frame_still_checks_in() {
    let dir = tempfile::tempdir().unwrap();
    let models = common::models_dir();
    let demo = Demo::start_args(
        &dir.path().join("data"),
        Some(MONDAY_0755),
        &["--models".as_ref(), models.as_os_str()],
    );
    demo.wait_models("camera");
    let tech = demo.technician();
    let (code, v) = tech.act(&format!(
        r#"{{"action":"face_consent","student_id":"{STUDENT}","granted":true,"granted_at":"2026-09-01T09:00:00+08:00"}}"#
    ));
    assert_eq!(code, 200, "{v}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(photo("astronaut.png"));
    let (code, v) = tech.act(&format!(
        r#"{{"action":"face_enrol","student_id":"{STUDENT}","image_base64":"{b64}"}}"#
    ));
    assert_eq!(code, 200, "{v}");
    // Her face, cropped tight (forehead to chin, 100 × 100 px) and mirrored (another frame
    // than the enrolment photo): the classroom detector alone found no face in it.
    let tight = {
        let img = image::load_from_memory(&photo("astronaut.png"))
            .unwrap()
            .crop_imm(175, 80, 100, 100)
            .fliph();
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    assert_eq!(post_frame(&demo, &tight), 202);
    demo.wait_for("a face check-in from the tight crop", |s| {
        s["counters"]["check_ins"].as_u64() == Some(1)
    });
    demo.wait_for("the camera's counts", |s| {
        camera(s)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("1 faces · 1 recognised"))
    });
    // Someone not enrolled: the technician sees how close they came (a number, not who),
    // to tune the threshold on site.
    assert_eq!(post_frame(&demo, &photo("camera.png")), 202);
    let s = demo.wait_for("the closest miss", |s| {
        camera(s)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("0 recognised · best unmatched 0."))
    });
    assert!(
        camera(&s)["detail"]
            .as_str()
            .unwrap()
            .contains("(threshold 0."),
        "{}",
        camera(&s)
    );
}
