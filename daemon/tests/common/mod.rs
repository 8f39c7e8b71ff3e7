#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]
//! Runs the real `ketangd` binary and talks to it over HTTP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod mqtt;

pub const BIN: &str = env!("CARGO_BIN_EXE_ketangd");

/// A Monday, five minutes before period 1 (08:00) of the demo timetable.
pub const MONDAY_0755: &str = "2026-11-23T07:55:00+08:00";

/// Card UIDs of the first two demo students, and one no student owns.
pub const CARD_1: &str = "040A9E95";
pub const CARD_2: &str = "0458CBAA";
pub const UNKNOWN_CARD: &str = "DEADBEEF";

pub struct Demo {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub started: Instant,
    pub ready_after: Duration,
}

impl Demo {
    /// Starts `ketangd demo` on a free port with its data in `data_dir`.
    pub fn start(data_dir: &Path, clock: Option<&str>) -> Demo {
        Self::start_with(data_dir, clock, None, None)
    }

    /// Starts `ketangd demo` listening on `listen`.
    pub fn start_on(data_dir: &Path, clock: Option<&str>, listen: &str) -> Demo {
        Self::start_with(data_dir, clock, Some(listen), None)
    }

    /// Starts `ketangd demo` with an optional listen address and broker URL.
    pub fn start_with(
        data_dir: &Path,
        clock: Option<&str>,
        listen: Option<&str>,
        broker: Option<&str>,
    ) -> Demo {
        Self::spawn(data_dir, clock, listen, broker, &[])
    }

    /// Starts `ketangd demo` with extra arguments (e.g. `--models DIR`).
    pub fn start_args(data_dir: &Path, clock: Option<&str>, extra: &[&std::ffi::OsStr]) -> Demo {
        Self::spawn(data_dir, clock, None, None, extra)
    }

    fn spawn(
        data_dir: &Path,
        clock: Option<&str>,
        listen: Option<&str>,
        broker: Option<&str>,
        extra: &[&std::ffi::OsStr],
    ) -> Demo {
        let log = data_dir.with_extension("log");
        let started = Instant::now();
        let mut cmd = Command::new(BIN);
        cmd.args([
            "demo",
            "--listen",
            listen.unwrap_or("127.0.0.1:0"),
            "--data-dir",
        ])
        .arg(data_dir);
        if let Some(c) = clock {
            cmd.args(["--clock", c]);
        }
        if let Some(b) = broker {
            cmd.args(["--broker", b]);
        }
        cmd.args(extra);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| {
                panic!(
                    "no URL announced: {line:?}; log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .trim_end_matches('/')
            .to_owned();
        // Keep draining stdout so the daemon never blocks on a full pipe.
        std::thread::spawn(move || for _ in out.lines() {});
        let mut demo = Demo {
            child,
            base,
            data_dir: data_dir.to_owned(),
            log,
            started,
            ready_after: Duration::ZERO,
        };
        demo.wait_healthy();
        demo
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok((200, _)) = get(&format!("{}/healthz", self.base)) {
                self.ready_after = self.started.elapsed();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no healthz within 10 s; log: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn status(&self) -> Value {
        let (code, body) = get(&format!("{}/api/v1/status", self.base)).unwrap();
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn post(&self, path: &str, body: &str) -> (u16, String) {
        post(&format!("{}{path}", self.base), body).unwrap()
    }

    pub fn tap(&self, uid: &str) {
        let (code, body) = self.post(
            "/api/v1/sim/card",
            &format!(r#"{{"reader":"door","uid":"{uid}"}}"#),
        );
        assert_eq!(code, 202, "{body}");
    }

    /// Polls the status until `pred` holds (the sim endpoints answer 202 before the event is
    /// processed).
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_secs(what, 5, pred)
    }

    /// Waits until the models of `kind` (the camera, the microphone) are loaded. Loading
    /// takes seconds in a debug build and longer beside the other tests (a 5 s bound failed
    /// a full local run): this waits for readiness, it does not measure it.
    pub fn wait_models(&self, kind: &str) -> Value {
        self.wait_secs(&format!("the {kind}'s models loaded"), 60, |s| {
            device(s, kind)["state"] == "ok"
        })
    }

    pub fn wait_secs(&self, what: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.status();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; status: {s:#}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the exit; returns the status and how long it took.
    pub fn terminate(mut self) -> (ExitStatus, Duration) {
        let t = Instant::now();
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                if !st.success() {
                    // The test asserts on the status; the daemon's words say why.
                    eprintln!(
                        "daemon exited {st:?} after SIGTERM; log: {}",
                        self.log_text()
                    );
                }
                return (st, t.elapsed());
            }
            if t.elapsed() > Duration::from_secs(15) {
                let _ = self.child.kill();
                panic!(
                    "daemon did not exit within 15 s of SIGTERM; log: {}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    // A safety net, not a bound under test: the arm64 stage runs these tests under
    // qemu-user beside the x86 image tests, where an Argon2 PIN check took over 5 s.
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

pub fn get(url: &str) -> Result<(u16, String), ureq::Error> {
    let mut res = agent().get(url).call()?;
    let code = res.status().as_u16();
    Ok((code, res.body_mut().read_to_string()?))
}

pub fn post(url: &str, body: &str) -> Result<(u16, String), ureq::Error> {
    let mut res = agent()
        .post(url)
        .header("content-type", "application/json")
        .send(body)?;
    let code = res.status().as_u16();
    Ok((code, res.body_mut().read_to_string()?))
}

pub fn pending(s: &Value, stream: &str) -> u64 {
    s["outbox"]["pending"][stream].as_u64().unwrap_or(0)
}

/// Outbox records other than the whiteboard's (the timetable switches the simulated panel
/// on or off as the demo starts, which queues a `whiteboard` record).
pub fn domain_records(s: &Value) -> u64 {
    s["outbox"]["total"].as_u64().unwrap_or(0) - pending(s, "whiteboard")
}

/// A teacher's unlocked session: the cookie and the CSRF token the login answered.
pub struct Teacher {
    pub base: String,
    pub cookie: String,
    pub csrf: String,
}

/// The demo's teachers all have PIN 2468 (see README); T01 is 王丽华, the class teacher.
pub const DEMO_PIN: &str = "2468";

impl Demo {
    /// Logs in with a staff id and PIN: the session, or the HTTP code and body of the refusal.
    pub fn login(&self, staff_id: &str, pin: &str) -> Result<Teacher, (u16, String)> {
        let mut res = agent()
            .post(&format!("{}/api/v1/session", self.base))
            .header("content-type", "application/json")
            .send(format!(r#"{{"staff_id":"{staff_id}","pin":"{pin}"}}"#))
            .unwrap();
        let code = res.status().as_u16();
        let cookie = res
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap().to_owned());
        let body = res.body_mut().read_to_string().unwrap();
        if code != 200 {
            return Err((code, body));
        }
        let v: Value = serde_json::from_str(&body).unwrap();
        Ok(Teacher {
            base: self.base.clone(),
            cookie: cookie.expect("a session cookie"),
            csrf: v["csrf_token"].as_str().unwrap().to_owned(),
        })
    }

    /// Sets the technician password (from loopback, once) and logs in as the technician.
    pub fn technician(&self) -> Teacher {
        let (code, body) = self.post(
            "/api/v1/tech/provision",
            r#"{"password":"班牌-技术员-2026"}"#,
        );
        assert!(code == 200 || code == 204 || code == 409, "{code} {body}");
        let mut res = agent()
            .post(&format!("{}/api/v1/session", self.base))
            .header("content-type", "application/json")
            .send(r#"{"password":"班牌-技术员-2026"}"#)
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let cookie = res
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap().to_owned())
            .expect("a session cookie");
        let v: Value = serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
        Teacher {
            base: self.base.clone(),
            cookie,
            csrf: v["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    /// An action without a session (the kiosk).
    pub fn act(&self, body: &str) -> (u16, Value) {
        let (code, text) = self.post("/api/v1/actions", body);
        (code, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl Teacher {
    /// An action with this session's cookie and CSRF token.
    pub fn act(&self, body: &str) -> (u16, Value) {
        self.act_within(body, Duration::from_secs(30))
    }

    /// [`Teacher::act`] for an action that takes up to `limit` (a voice enrolment).
    pub fn act_within(&self, body: &str, limit: Duration) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(limit))
            .build()
            .into();
        let mut res = agent
            .post(&format!("{}/api/v1/actions", self.base))
            .header("content-type", "application/json")
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .send(body)
            .unwrap();
        let code = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap();
        (code, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POSTs raw bytes with this session's cookie and CSRF token: the status and JSON body.
    pub fn post_bytes(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
        let mut res = agent()
            .post(&format!("{}{path}", self.base))
            .header("content-type", content_type)
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .send(body)
            .unwrap();
        let code = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap();
        (code, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A GET with this session's cookie.
    pub fn get(&self, path: &str) -> (u16, Value) {
        let mut res = agent()
            .get(&format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .call()
            .unwrap();
        let code = res.status().as_u16();
        let text = res.body_mut().read_to_string().unwrap();
        (code, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Sets the demo's simulated clock.
pub fn set_clock(demo: &Demo, at: &str) {
    let (code, body) = demo.post("/api/v1/sim/clock", &format!(r#"{{"at":"{at}"}}"#));
    assert_eq!(code, 202, "{body}");
}

pub use ketang_testkit::free_port;

/// A board's config file (`ketangd run --config`): data in `data`, HTTP on
/// 127.0.0.1:`port`, the identity of 七年级(3)班's board kt-0001, then `extra` sections.
pub fn board_config(data: &Path, port: u16, extra: &str) -> String {
    format!(
        r#"data_dir = "{data}"
[device]
school_id = "hf-0042"
classroom_id = "g7-c3"
device_id = "kt-0001"
class_name = "七年级(3)班"
[http]
listen = "127.0.0.1:{port}"
{extra}
"#,
        data = data.display()
    )
}

/// The entry of the device of `kind` in the status's hardware list.
pub fn device(s: &Value, kind: &str) -> Value {
    s["hardware"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} in the status: {s}"))
}

/// The camera's entry in the status's hardware list.
pub fn camera(s: &Value) -> Value {
    device(s, "camera")
}

/// The microphone's entry in the status's hardware list.
pub fn mic(s: &Value) -> Value {
    device(s, "microphone")
}

/// Whether the microphone's status detail says `what`.
pub fn mic_says(s: &Value, what: &str) -> bool {
    mic(s)["detail"].as_str().is_some_and(|d| d.contains(what))
}

/// The model folder for tests that run the real models (`ketang_testkit::models_dir`:
/// `KETANG_MODELS`, else `target/models` from `models/obtain.sh`).
pub fn models_dir() -> PathBuf {
    ketang_testkit::models_dir("dlib_face_recognition_resnet_v1.onnx")
}

/// POSTs raw bytes (an image, a recording) to `path`; the HTTP status.
pub fn post_bytes(demo: &Demo, path: &str, content_type: &str, body: &[u8]) -> u16 {
    ureq::post(&format!("{}{path}", demo.base))
        .header("content-type", content_type)
        .config()
        .http_status_as_error(false)
        .build()
        .send(body)
        .unwrap()
        .status()
        .as_u16()
}

/// 16 kHz mono 16-bit WAV bytes of `samples` (−1…1), for the simulated microphone.
pub fn wav16k(samples: &[f32]) -> Vec<u8> {
    let data = u32::try_from(samples.len() * 2).unwrap();
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    for v in [16u32, 0x0001_0001, 16_000, 32_000, 0x0010_0002] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes());
    }
    out
}

/// Two real people talking, 30 s at 16 kHz (`models/tests/data/two_speakers.wav`, with its
/// reference of who speaks when in `two_speakers.rttm`).
pub fn two_speakers() -> Vec<f32> {
    let p = ketang_testkit::repo_root().join("models/tests/data/two_speakers.wav");
    ketang_models::vad::read_wav(&p).unwrap().remove(0)
}

/// What the teacher of `two_speakers` (speaker90) says alone, with short pauses: 9.5 s,
/// what a voice enrolment hears her read.
pub fn teacher_reading() -> Vec<f32> {
    let x = two_speakers();
    let mut out = Vec::new();
    for (a, b) in [
        (8.32f32, 9.92f32),
        (11.03, 14.49),
        (18.59, 21.49),
        (28.5, 30.0),
    ] {
        out.extend_from_slice(&x[(a * 16_000.0) as usize..(b * 16_000.0) as usize]);
        out.extend_from_slice(&[0.0; 4_800]);
    }
    out
}
