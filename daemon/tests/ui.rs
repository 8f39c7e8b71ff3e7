#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
//! The class board in real headless Chromium (Debian `chromium` + `chromium-driver`, driven
//! over WebDriver with fantoccini) against the real `ketangd demo`.
//!
//! With `KETANG_SCREENSHOTS=DIR` the tests also write the screenshots of `docs/screens/`
//! (`scripts/screenshots` regenerates them). `tap_to_screen_latency` is a benchmark
//! (`bench/tap-to-screen.sh`), ignored in normal runs.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Student 1's name (the owner of CARD_1) in the demo school.
const NAME_1: &str = "姜芷若";

struct Driver {
    child: Child,
    url: String,
    /// Every browser profile this driver's sessions used (removed with it).
    profiles: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A browser whose test panicked before closing it outlives chromedriver: end each
        // Chromium started with one of this driver's profiles.
        let mark = format!("--user-data-dir={}/", self.profiles.path().display());
        for pid in pids_with_arg(&mark) {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    }
}

/// The processes with an argument starting with `prefix` (from /proc).
fn pids_with_arg(prefix: &str) -> Vec<String> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    procs
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().into_string().ok()?;
            pid.parse::<u32>().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            cmdline
                .split(|b| *b == 0)
                .any(|a| a.starts_with(prefix.as_bytes()))
                .then_some(pid)
        })
        .collect()
}

/// Starts chromedriver on a free port; fails clearly when it is not installed.
fn chromedriver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is not installed (apt-get install chromium chromium-driver; ./scripts/test does)");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&format!("{url}/status")).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not answer within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver {
        child,
        url,
        profiles: tempfile::tempdir().unwrap(),
    }
}

async fn browser(driver: &Driver, width: u32, height: u32) -> Client {
    let profile = tempfile::tempdir_in(driver.profiles.path()).unwrap().keep();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic", "--hide-scrollbars", "--force-device-scale-factor=1",
                format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
    // Make the viewport (not the window) the board's resolution.
    let extra = c
        .execute("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];", vec![])
        .await
        .unwrap();
    let dx = u32::try_from(extra[0].as_u64().unwrap_or(0)).unwrap_or(0);
    let dy = u32::try_from(extra[1].as_u64().unwrap_or(0)).unwrap_or(0);
    c.set_window_size(width + dx, height + dy).await.unwrap();
    c
}

/// A browser with the board's viewport on `path` of the demo.
async fn open(driver: &Driver, demo: &Demo, path: &str, width: u32, height: u32) -> Client {
    let c = browser(driver, width, height).await;
    c.goto(&format!("{}{path}", demo.base)).await.unwrap();
    c
}

/// Polls `js` (a function body returning a truthy value when ready) for up to 10 s.
async fn wait_js(c: &Client, what: &str, js: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    // A predicate that throws (an element not rendered yet: `null.textContent`) is "not
    // yet", like one that returns false; the last error is shown if it never holds.
    let mut last_error = String::new();
    loop {
        let v = match c.execute(js, vec![]).await {
            Ok(v) => v,
            Err(fantoccini::error::CmdError::Standard(e))
                if e.error == fantoccini::error::ErrorStatus::JavascriptError =>
            {
                last_error = e.message.to_string();
                Value::Null
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        };
        if !(v.is_null() || v == json!(false) || v == json!("")) {
            return v;
        }
        if Instant::now() > deadline {
            let html = c
                .execute("return document.body.innerText", vec![])
                .await
                .unwrap_or_default();
            panic!(
                "timed out waiting for {what} (last script error: {last_error:?}); page text: {html}"
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Clicks the element; a page that re-renders it meanwhile (a stale element) is retried.
/// Presses `testid` with a touch pointer for `hold`; returns how long after the press the
/// daemon's status first showed an alarm (polled every 20 ms while the finger is down).
async fn hold_until_alarm(c: &Client, demo: &Demo, testid: &str, hold: Duration) -> Duration {
    use fantoccini::actions::{InputSource as _, MOUSE_BUTTON_LEFT, PointerAction, TouchActions};
    let element = c
        .find(Locator::Css(&format!("[data-testid='{testid}']")))
        .await
        .unwrap();
    let finger = TouchActions::new("finger".into())
        .then(PointerAction::MoveToElement {
            element,
            duration: None,
            x: 0.0,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Pause { duration: hold })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    let url = format!("{}/api/v1/status", demo.base);
    let t0 = Instant::now();
    let watch = tokio::task::spawn_blocking(move || {
        loop {
            let (_, body) = get(&url).unwrap();
            let s: Value = serde_json::from_str(&body).unwrap();
            if s["alarms"].as_array().is_some_and(|a| !a.is_empty()) {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no alarm after holding"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    c.perform_actions(finger).await.unwrap();
    watch.await.unwrap()
}

async fn click(c: &Client, testid: &str) {
    // A re-render replaces the element (stale), and a tab shown a moment ago may not be
    // laid out yet (not interactable): both pass by themselves, so try again a few times.
    for attempt in 0..10 {
        let e = c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(&format!("[data-testid='{testid}']")))
            .await
            .unwrap_or_else(|e| panic!("no {testid}: {e}"));
        match e.click().await {
            Ok(()) => return,
            Err(err)
                if attempt < 9
                    && ["stale element", "not interactable"]
                        .iter()
                        .any(|m| err.to_string().contains(m)) =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!(
                "clicking {testid}: {err:?}; the element and the page then: {}",
                why_not_clickable(c, testid).await
            ),
        }
    }
}

/// What the page says about an element a click was refused on: its box, the hidden or
/// undisplayed ancestors, what covers its centre, the board's session and tab.
async fn why_not_clickable(c: &Client, testid: &str) -> Value {
    c.execute(
        &format!(
            r#"const e = document.querySelector("[data-testid='{testid}']");
if (!e) return "gone";
const r = e.getBoundingClientRect();
const hidden = [];
for (let a = e; a; a = a.parentElement) {{
  const cs = getComputedStyle(a);
  if (a.classList.contains('hidden') || cs.display === 'none' || cs.visibility !== 'visible')
    hidden.push((a.id || a.tagName) + ' ' + a.className + ' ' + cs.display + ' ' + cs.visibility);
}}
const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
return {{ rect: [r.x, r.y, r.width, r.height], viewport: [innerWidth, innerHeight, scrollX, scrollY],
  hidden, top: top ? (top.id || top.tagName) + ' ' + top.className : null,
  session: typeof S === 'undefined' ? null : !!S.session, tab: typeof S === 'undefined' ? null : S.tab,
  panel_msg: (document.getElementById('panel-msg') || {{}}).textContent }};"#
        ),
        vec![],
    )
    .await
    .unwrap_or_else(|e| json!(format!("(could not ask the page: {e})")))
}

/// The element's rendered text, read in one step (no stale element between find and read).
async fn text(c: &Client, testid: &str) -> String {
    let v = c
        .execute(
            &format!("const e = document.querySelector(\"[data-testid='{testid}']\"); return e ? e.innerText : null;"),
            vec![],
        )
        .await
        .unwrap();
    v.as_str()
        .unwrap_or_else(|| panic!("no {testid}"))
        .to_owned()
}

async fn visible(c: &Client, testid: &str) -> bool {
    c.execute(
        &format!("const e = document.querySelector(\"[data-testid='{testid}']\"); return !!e && !e.classList.contains('hidden');"),
        vec![],
    )
    .await
    .unwrap()
        == json!(true)
}

async fn shot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("KETANG_SCREENSHOTS") {
        // Let transitions settle.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let png = c.screenshot().await.unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
    }
}

/// axe-core (`scripts/contract/node_modules`, installed by `./scripts/test`) on the page as
/// it is now: fails on any critical or serious WCAG 2.1 A/AA violation, naming each.
async fn axe(c: &Client, page: &str) {
    let path =
        ketang_testkit::repo_root().join("scripts/contract/node_modules/axe-core/axe.min.js");
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run npm ci in scripts/contract; ./scripts/test does)",
            path.display()
        )
    });
    c.execute(&src, vec![]).await.unwrap();
    // A transition under way has colours that are neither its start nor its end: axe once
    // measured a half-faded check-in toast's contrast. So wait for finite animations and
    // transitions to end (an endless one, such as a pulse, never does) and for a check-in
    // toast to be gone (it starts fading by itself, perhaps while axe runs; no check here is
    // about the toast, which is on screen for 2.9 s).
    wait_js(
        c,
        "the page's transitions to end and the toast to go before axe-core",
        "const t = document.getElementById('toast'); return (!t || t.classList.contains('hidden')) && document.getAnimations().every(a => a.playState !== 'running' || a.effect.getComputedTiming().endTime === Infinity);",
    )
    .await;
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
               .then(r => done(r.violations.filter(v => v.impact === 'critical' || v.impact === 'serious')
                 .map(v => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.slice(0, 4).map(n => n.target.join(' ')).join(', ')}`)))
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .unwrap();
    let found = found.as_array().cloned().unwrap_or_default();
    assert!(
        found.is_empty(),
        "axe-core on {page}: {}",
        found
            .iter()
            .map(|v| v.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The teacher-mode tabs do not move under a finger: not when the lock countdown first
/// shows (a second after the unlock it used to push the tabs aside, and a tap meant for
/// 通知 landed on the tab beside it) and not as it counts down from three digits to one.
async fn tabs_hold_still(c: &Client) {
    let at = "const r = document.querySelector(\"[data-testid='tab-notice']\").getBoundingClientRect(); return [r.x, r.y, r.width, r.height];";
    let first = c.execute(at, vec![]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let later = c.execute(at, vec![]).await.unwrap();
    assert_eq!(first, later, "the tabs moved after the unlock (x, y, w, h)");
    for left in [120, 5] {
        let moved = c
            .execute(
                &format!("document.getElementById('panel-lock-in').textContent = t('lock_in', {left}); {at}"),
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            first, moved,
            "the tabs moved with the countdown at {left} s"
        );
    }
}

/// The board in Chinese at `width` × `height`, once it shows the class, with teacher
/// mode unlocked by touch (T01's PIN).
async fn teacher_mode(driver: &Driver, demo: &Demo, width: u32, height: u32) -> Client {
    let c = open(driver, demo, "/?lang=zh", width, height).await;
    wait_js(
        &c,
        "the board",
        "return document.getElementById('class-name').textContent === '七年级(3)班';",
    )
    .await;
    click(&c, "teacher-button").await;
    unlock(&c).await;
    c
}

async fn unlock(c: &Client) {
    click(c, "staff-T01").await;
    for k in ["2", "4", "6", "8"] {
        click(c, &format!("key-{k}")).await;
    }
    click(c, "key-ok").await;
    wait_js(
        c,
        "teacher mode",
        "const p = document.getElementById('panel'); return !p.classList.contains('hidden') && document.getElementById('panel-who').textContent.includes('王丽华');",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_board_in_chromium_landscape() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(MONDAY_0755));
    let c = open(&driver, &demo, "/?lang=zh", 1920, 1080).await;
    wait_js(
        &c,
        "the class name",
        "return document.getElementById('class-name').textContent === '七年级(3)班';",
    )
    .await;
    wait_js(
        &c,
        "the live connection",
        "return document.querySelector(\"[data-testid='subject']\")",
    )
    .await;
    assert_eq!(text(&c, "lesson-state").await, "签到中");
    shot(&c, "board-1920x1080").await;
    axe(&c, "the class board").await;

    // A simulated card tap appears on the board: name and status, then the count.
    demo.tap(CARD_1);
    wait_js(&c, "the check-in toast", &format!("const n = document.querySelector(\"[data-testid='toast-name']\"); return n && n.textContent === '{NAME_1}';")).await;
    assert!(text(&c, "toast-text").await.contains("已签到"));
    wait_js(
        &c,
        "the count",
        "return document.querySelector(\"[data-testid='count-in']\").textContent === '1';",
    )
    .await;
    shot(&c, "checkin-1920x1080").await;
    // A fever reading followed by the student's tap: the red 体温偏高 stays, the check-in is
    // added to it (it used to be painted over in green 5 ms later).
    let (code, body) = demo.post("/api/v1/sim/temperature", r#"{"celsius":38.2}"#);
    assert_eq!(code, 202, "{body}");
    demo.tap(CARD_2);
    wait_js(&c, "the fever toast with the check-in", "const e = document.getElementById('toast'); return e.classList.contains('fever') && e.textContent.includes('体温偏高') && e.textContent.includes('已签到');").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        c.execute(
            "return document.getElementById('toast').classList.contains('fever');",
            vec![]
        )
        .await
        .unwrap()
            == json!(true),
        "the fever toast was painted over"
    );
    demo.tap(UNKNOWN_CARD);
    wait_js(&c, "the unknown-card toast", "const n = document.querySelector(\"[data-testid='toast-text']\"); return n && n.textContent === '未登记的卡';").await;
    // Two students measured before either tapped: nothing stored under a guess, and the
    // board says so (docs/domain.md, "Health checks").
    for celsius in ["36.5", "36.9"] {
        let (code, body) = demo.post(
            "/api/v1/sim/temperature",
            &format!(r#"{{"celsius":{celsius}}}"#),
        );
        assert_eq!(code, 202, "{body}");
    }
    demo.tap(CARD_1);
    wait_js(
        &c,
        "the ambiguous-reading toast",
        "return document.getElementById('toast').textContent.includes('无法确定是谁的体温');",
    )
    .await;

    // Teacher mode: a wrong PIN is refused in Chinese, the right one unlocks.
    click(&c, "teacher-button").await;
    click(&c, "staff-T01").await;
    for k in ["1", "1", "1", "1", "ok"] {
        click(&c, &format!("key-{k}")).await;
    }
    wait_js(&c, "the wrong-PIN message", "return document.querySelector(\"[data-testid='unlock-error']\").textContent === 'PIN码错误';").await;
    shot(&c, "unlock-1920x1080").await;
    axe(&c, "the unlock dialog").await;
    unlock(&c).await;

    // Override a status in two taps: the tile changes.
    click(&c, "tile-2025070302").await;
    click(&c, "set-sick").await;
    wait_js(&c, "the sick tile", "return document.querySelector(\"[data-testid='tile-2025070302']\").classList.contains('sick');").await;
    // Whiteboard controls: the timetable has switched the panel on; pick HDMI 1.
    wait_js(
        &c,
        "the panel state",
        "return document.querySelector(\"[data-testid='wb-state']\").textContent.startsWith('一体机：开');",
    )
    .await;
    click(&c, "wb-hdmi1").await;
    wait_js(&c, "HDMI 1", "return document.querySelector(\"[data-testid='wb-state']\").textContent === '一体机：开 · HDMI 1';").await;
    assert_eq!(text(&c, "wb-on").await, "开一体机");
    // In Chinese: no raw state words of the panel's protocol.
    assert!(
        !text(&c, "wb-state").await.contains("on"),
        "{}",
        text(&c, "wb-state").await
    );
    // A check-in during teacher mode shows above the teacher's panel.
    demo.tap(CARD_1);
    wait_js(&c, "the toast above teacher mode", "const e = document.getElementById('toast'); if (e.classList.contains('hidden')) return false; const r = e.getBoundingClientRect(); const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2); return !!hit && !!hit.closest('#toast');").await;
    shot(&c, "teacher-roll-1920x1080").await;
    axe(&c, "teacher mode: the roll").await;

    // Start and end the lesson; see the report.
    click(&c, "start-lesson").await;
    wait_js(&c, "in progress", "return document.querySelector(\"[data-testid='roll-title']\").textContent.includes('上课中');").await;
    // 下课 with students unmarked asks first, in the board's own Chinese dialog (not the
    // browser's confirm(), whose buttons are English on the kiosk), saying how many.
    click(&c, "end-lesson").await;
    wait_js(&c, "the end-lesson question", "return !document.getElementById('confirm').classList.contains('hidden') && document.getElementById('confirm-title').textContent === '还有 38 名学生未签到';").await;
    assert!(text(&c, "confirm-body").await.contains("记为缺勤"));
    assert_eq!(text(&c, "confirm-yes").await, "仍然下课");
    shot(&c, "confirm-end-1920x1080").await;
    axe(&c, "the end-lesson question").await;
    click(&c, "confirm-no").await;
    wait_js(
        &c,
        "the question gone",
        "return document.getElementById('confirm').classList.contains('hidden');",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        text(&c, "roll-title").await.contains("上课中"),
        "backing out must not end the lesson"
    );
    click(&c, "end-lesson").await;
    click(&c, "confirm-yes").await;
    // Ended: the roll stays on the ended lesson (it used to jump to the next one).
    wait_js(&c, "ended", "const t = document.querySelector(\"[data-testid='roll-title']\").textContent; return t.includes('第1节') && t.includes('已下课');").await;
    click(&c, "tab-report").await;
    wait_js(&c, "the report", "const e = document.querySelector(\"[data-testid='report-present']\"); return e && e.textContent === '1';").await;
    assert_eq!(text(&c, "report-sick").await, "1");
    assert_eq!(text(&c, "report-absent").await, "38");
    shot(&c, "teacher-report-1920x1080").await;
    axe(&c, "teacher mode: the report").await;
    // Correcting an ended lesson from the screen, counted: the lesson (1), the student (2),
    // the status (3). 2025070303 was marked absent when the lesson ended; now late.
    click(&c, "tab-roll").await;
    click(&c, "roll-lesson-1").await;
    wait_js(&c, "the ended lesson's roll", "return document.querySelector(\"[data-testid='tile-2025070303']\").classList.contains('absent');").await;
    click(&c, "tile-2025070303").await;
    click(&c, "set-late").await;
    wait_js(&c, "the correction", "return document.querySelector(\"[data-testid='tile-2025070303']\").classList.contains('late');").await;
    assert!(text(&c, "roll-title").await.contains("第1节"));
    // And on to the next lesson with one tap.
    click(&c, "roll-lesson-2").await;
    wait_js(&c, "the next lesson", "return document.querySelector(\"[data-testid='roll-title']\").textContent.includes('第2节');").await;
    // 取消本节 asks in the board's own dialog too; backing out cancels nothing.
    click(&c, "cancel-lesson").await;
    wait_js(&c, "the cancel question", "return !document.getElementById('confirm').classList.contains('hidden') && document.getElementById('confirm-title').textContent === '确定取消本节课吗？';").await;
    assert_eq!(text(&c, "confirm-no").await, "返回");
    click(&c, "confirm-no").await;
    assert!(!text(&c, "roll-title").await.contains("已取消"));
    click(&c, "lock").await;
    wait_js(
        &c,
        "locked",
        "return document.getElementById('panel').classList.contains('hidden');",
    )
    .await;

    // A stray tap on the alarm button sends nothing; the board says to hold it.
    click(&c, "sos").await;
    wait_js(
        &c,
        "the hold hint",
        "const e = document.querySelector(\"[data-testid='toast-text']\"); return !!e && e.textContent.includes('1.5');",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        demo.status()["alarms"].as_array().unwrap().is_empty(),
        "a tap raised an alarm"
    );
    // Held as a finger would (a touch pointer), it raises after 1.5 s: measured from the
    // press to the alarm in the daemon's status. The takeover follows; clearing needs a
    // teacher.
    let raised_after = hold_until_alarm(&c, &demo, "sos", Duration::from_secs(3)).await;
    println!(
        "alarm raised {} ms after the press",
        raised_after.as_millis()
    );
    assert!(
        raised_after >= Duration::from_millis(1400) && raised_after < Duration::from_millis(2500),
        "raised after {raised_after:?}"
    );
    wait_js(
        &c,
        "the takeover",
        "return !document.getElementById('alarm').classList.contains('hidden');",
    )
    .await;
    assert!(
        !visible(&c, "alarm-drill").await,
        "a real alarm is not marked as a drill"
    );
    shot(&c, "alarm-1920x1080").await;
    axe(&c, "the alarm takeover").await;
    click(&c, "alarm-clear").await;
    unlock(&c).await;
    wait_js(
        &c,
        "the alarm cleared",
        "return document.getElementById('alarm').classList.contains('hidden');",
    )
    .await;
    assert!(demo.status()["alarms"].as_array().unwrap().is_empty());
    // A drill is marked as such.
    click(&c, "tab-roll").await;
    click(&c, "drill").await;
    wait_js(
        &c,
        "the drill",
        "return !document.getElementById('alarm-drill').classList.contains('hidden');",
    )
    .await;
    assert_eq!(text(&c, "alarm-drill").await, "演练 DRILL");
    click(&c, "alarm-clear").await;
    wait_js(
        &c,
        "the drill cleared",
        "return document.getElementById('alarm').classList.contains('hidden');",
    )
    .await;

    // English.
    click(&c, "lock").await;
    click(&c, "lang").await;
    wait_js(&c, "English", "return document.querySelector(\"[data-testid='teacher-button']\").textContent === 'Teacher';").await;
    shot(&c, "board-en-1920x1080").await;

    c.close().await.unwrap();
    let log = demo.log_text();
    assert!(
        !log.contains(NAME_1) && !log.contains(CARD_1),
        "names or UIDs in the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_portrait_door_board_and_a_restart_under_an_open_page() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let demo = Demo::start_on(&data, Some(MONDAY_0755), &listen);
    let c = open(&driver, &demo, "/", 1080, 1920).await;
    wait_js(
        &c,
        "the lesson",
        "return document.querySelector(\"[data-testid='subject']\")",
    )
    .await;
    demo.tap(CARD_2);
    wait_js(
        &c,
        "the count",
        "return document.querySelector(\"[data-testid='count-in']\").textContent === '1';",
    )
    .await;
    shot(&c, "board-1080x1920").await;
    // Words stay whole on the portrait board: the date, the class, and (in teacher mode)
    // the tabs and the lesson buttons each fit on one line.
    const LINES: &str = "const lines = el => { const r = document.createRange(); r.selectNodeContents(el); return new Set([...r.getClientRects()].filter(x => x.width > 0).map(x => Math.round(x.top))).size; };
         return [...document.querySelectorAll(arguments[0])].filter(e => e.offsetParent && lines(e) > 1).map(e => e.textContent);";
    let broken = c
        .execute(
            LINES,
            vec![json!("#date, #time, #class-name, #sync, .badge")],
        )
        .await
        .unwrap();
    assert_eq!(broken, json!([]), "broken across lines at 1080 px");
    click(&c, "teacher-button").await;
    unlock(&c).await;
    let broken = c
        .execute(
            LINES,
            vec![json!(".tabs button, [data-lesson-action], #panel-who")],
        )
        .await
        .unwrap();
    assert_eq!(
        broken,
        json!([]),
        "broken across lines at 1080 px in teacher mode"
    );
    click(&c, "lock").await;

    // The daemon restarts under the open page: it says so, reconnects, shows current state.
    let (st, _) = demo.terminate();
    assert!(st.success());
    wait_js(
        &c,
        "the offline banner",
        "return !document.getElementById('offline').classList.contains('hidden');",
    )
    .await;
    assert!(text(&c, "offline").await.contains("连接已断开"));
    let demo = Demo::start_on(&data, Some(MONDAY_0755), &listen);
    demo.tap(CARD_1);
    demo.wait_for("the check-in", |s| s["counters"]["check_ins"] == 1);
    wait_js(&c, "reconnected with the new count", "return document.getElementById('offline').classList.contains('hidden') && document.querySelector(\"[data-testid='count-in']\").textContent === '2';").await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn technician_provisioning_login_and_overview() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(MONDAY_0755));
    demo.tap(CARD_1);
    let c = open(&driver, &demo, "/tech", 1920, 1080).await;
    // No password yet: only the provisioning form.
    wait_js(
        &c,
        "the provisioning form",
        "return !document.getElementById('provision').classList.contains('hidden');",
    )
    .await;
    assert!(!visible(&c, "tech-login").await && !visible(&c, "tech-dash").await);
    axe(&c, "/tech: the provisioning form").await;
    let (code, _) = get(&format!("{}/api/v1/tech", demo.base)).unwrap();
    assert_eq!(code, 401, "the overview needs a technician");
    let fill = |id: &'static str, v: &'static str| {
        let c = &c;
        async move {
            let e = c
                .find(Locator::Css(&format!("[data-testid='{id}']")))
                .await
                .unwrap();
            e.clear().await.unwrap();
            e.send_keys(v).await.unwrap();
        }
    };
    fill("provision-p1", "short").await;
    fill("provision-p2", "short").await;
    click(&c, "provision-submit").await;
    // Refused by the device, in Chinese on a Chinese page.
    wait_js(&c, "the length rule", "return document.querySelector(\"[data-testid='provision-error']\").textContent === '技术员密码至少10个字符';").await;
    fill("provision-p1", "班牌-技术员-2026").await;
    fill("provision-p2", "班牌-技术员-2026").await;
    click(&c, "provision-submit").await;
    wait_js(
        &c,
        "the login form",
        "return !document.getElementById('login').classList.contains('hidden');",
    )
    .await;
    // Set once: a second provisioning is refused.
    let (code, body) = demo.post(
        "/api/v1/tech/provision",
        r#"{"password":"another-password-1"}"#,
    );
    assert_eq!(code, 409, "{body}");

    fill("tech-password", "wrong-password").await;
    click(&c, "tech-login-submit").await;
    wait_js(&c, "the refusal", "return document.querySelector(\"[data-testid='tech-login-error']\").textContent === '密码错误';").await;
    fill("tech-password", "班牌-技术员-2026").await;
    click(&c, "tech-login-submit").await;
    wait_js(&c, "the overview", "return !document.getElementById('dash').classList.contains('hidden') && document.getElementById('logs').textContent.includes('HTTP API listening');").await;
    let outbox = text(&c, "tech-outbox").await;
    assert!(outbox.contains("考勤"), "{outbox}");
    // The overview's labels and states are Chinese on a Chinese page.
    let device = text(&c, "tech-device").await;
    assert!(
        device.contains("设备编号") && device.contains("运行模式") && device.contains("演示"),
        "{device}"
    );
    let network = text(&c, "tech-network").await;
    assert!(
        network.contains("平台地址") && network.contains("无线网络（初始化文件）"),
        "{network}"
    );
    let config = text(&c, "tech-config").await;
    assert!(
        config.contains("demo-board-1") && config.contains("fever_threshold_c"),
        "{config}"
    );
    let hardware = text(&c, "tech-hardware").await;
    assert!(
        hardware.contains("simulated") && hardware.contains("正常"),
        "{hardware}"
    );
    // The door sign's face, drawn by the daemon, 400×300.
    wait_js(&c, "the e-paper preview", "const i = document.getElementById('epaper'); return i.complete && i.naturalWidth === 400 && i.naturalHeight === 300;").await;
    let (code, _) = get(&format!("{}/api/v1/tech/epaper.png", demo.base)).unwrap();
    assert_eq!(code, 401, "the preview needs a technician");
    if let Ok(dir) = std::env::var("KETANG_SCREENSHOTS") {
        let img = c
            .find(Locator::Css("[data-testid='tech-epaper']"))
            .await
            .unwrap();
        std::fs::write(
            format!("{dir}/epaper-400x300.png"),
            img.screenshot().await.unwrap(),
        )
        .unwrap();
    }
    // The panel's self-test talks to the (simulated) panel.
    click(&c, "selftest-whiteboard").await;
    wait_js(&c, "the self-test", "const r = document.querySelector(\"[data-testid='selftest-result-whiteboard']\"); return r && r.textContent.startsWith('通过');").await;
    // The siren's self-test switches it on and off again.
    click(&c, "selftest-siren").await;
    wait_js(&c, "the siren's self-test", "const r = document.querySelector(\"[data-testid='selftest-result-siren']\"); return r && r.textContent.startsWith('通过') && r.textContent.includes('300 ms');").await;
    shot(&c, "technician-1920x1080").await;
    axe(&c, "/tech: the overview").await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn technician_uploads_an_update_bundle_from_the_page() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let demo = Demo::start_args(&data, Some(MONDAY_0755), &["--accept-updates".as_ref()]);
    let _ = demo.technician(); // sets the password
    let c = open(&driver, &demo, "/tech", 1920, 1080).await;
    wait_js(
        &c,
        "the login form",
        "return !document.getElementById('login').classList.contains('hidden');",
    )
    .await;
    let fill = |id: &'static str, v: String| {
        let c = &c;
        async move {
            let e = c
                .find(Locator::Css(&format!("[data-testid='{id}']")))
                .await
                .unwrap();
            e.send_keys(&v).await.unwrap();
        }
    };
    fill("tech-password", "班牌-技术员-2026".to_owned()).await;
    click(&c, "tech-login-submit").await;
    wait_js(&c, "the system section", "return document.querySelector(\"[data-testid='system-table']\").textContent.includes('MiB');").await;
    // A 3 MiB "bundle" through the file input: the daemon streams it into the spool.
    let bundle: Vec<u8> = (0..3_145_728u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let path = dir.path().join("ketang-headless-amd64-test.raucb");
    std::fs::write(&path, &bundle).unwrap();
    fill("update-file", path.display().to_string()).await;
    click(&c, "update-submit").await;
    wait_js(&c, "the hand-over", "return document.querySelector(\"[data-testid='update-result']\").textContent.includes('已交给安装程序');").await;
    assert_eq!(
        std::fs::read(data.join("update/bundle.raucb")).unwrap(),
        bundle
    );
    wait_js(&c, "the step in the table", "return document.querySelector(\"[data-testid='system-table']\").textContent.includes('received · upload');").await;
    // The demo has no config file: entering a provisioning file says so.
    fill("provisioning-text", "school_id = \"hf-0042\"".to_owned()).await;
    click(&c, "provisioning-submit").await;
    wait_js(&c, "the demo's refusal", "return document.querySelector(\"[data-testid='provisioning-result']\").textContent.includes('no config file');").await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn technician_face_enrolment_is_gated_by_consent_and_withdrawal_deletes() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let models = models_dir();
    let demo = Demo::start_args(
        &dir.path().join("data"),
        Some(MONDAY_0755),
        &["--models".as_ref(), models.as_os_str()],
    );
    let _ = demo.technician(); // sets the password
    let c = open(&driver, &demo, "/tech", 1920, 1080).await;
    wait_js(
        &c,
        "the login form",
        "return !document.getElementById('login').classList.contains('hidden');",
    )
    .await;
    let fill = |id: &'static str, v: String| {
        let c = &c;
        async move {
            let e = c
                .find(Locator::Css(&format!("[data-testid='{id}']")))
                .await
                .unwrap();
            e.clear().await.ok();
            e.send_keys(&v).await.unwrap();
        }
    };
    fill("tech-password", "班牌-技术员-2026".into()).await;
    click(&c, "tech-login-submit").await;
    wait_js(&c, "the faces section", "return document.querySelector(\"[data-testid='faces-state']\").textContent.includes('dlib_resnet_v1');").await;
    let photo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/tests/data/astronaut.png")
        .canonicalize()
        .unwrap();
    // Enrolment without consent is refused, saying why.
    fill("enrol-student", "2025070305".into()).await;
    fill("enrol-photo", photo.display().to_string()).await;
    click(&c, "enrol-submit").await;
    wait_js(&c, "the refusal", "return document.querySelector(\"[data-testid='faces-result']\").textContent.includes('no guardian consent record');").await;
    // Consent, then enrolment: one template listed.
    fill("consent-student", "2025070305".into()).await;
    click(&c, "consent-submit").await;
    wait_js(&c, "the consent listed", "return document.querySelector(\"[data-testid='faces-table']\").textContent.includes('2025070305');").await;
    click(&c, "enrol-submit").await;
    wait_js(&c, "one template", "return document.querySelector(\"[data-testid='faces-table']\").textContent.includes('1 个模板');").await;
    shot(&c, "technician-faces-1920x1080").await;
    // Withdrawal deletes it.
    click(&c, "withdraw-2025070305").await;
    wait_js(&c, "deleted", "return document.querySelector(\"[data-testid='faces-result']\").textContent.includes('已删除模板: 1') && !document.querySelector(\"[data-testid='faces-table']\").textContent.includes('2025070305');").await;
    c.close().await.unwrap();
}

/// Benchmark (see `bench/tap-to-screen.sh`): card tap through the sim endpoint → the
/// student's name on the board, measured inside the browser, against a plain status
/// round trip in the same run. `KETANG_BENCH_BROKER` makes the demo drain its outbox to a
/// broker meanwhile.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run by bench/tap-to-screen.sh"]
async fn tap_to_screen_latency() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let broker = std::env::var("KETANG_BENCH_BROKER").ok();
    let demo = Demo::start_with(
        &dir.path().join("data"),
        Some(MONDAY_0755),
        None,
        broker.as_deref(),
    );
    let c = open(&driver, &demo, "/", 1920, 1080).await;
    wait_js(
        &c,
        "the lesson",
        "return document.querySelector(\"[data-testid='subject']\")",
    )
    .await;
    let script = r#"
        const [n, cards] = arguments;
        const done = arguments[arguments.length - 1];
        const toast = document.getElementById('toast');
        const taps = [], status = [];
        (async () => {
          for (let i = 0; i < n; i++) {
            const s0 = performance.now();
            await fetch('/api/v1/status').then(r => r.json());
            status.push(performance.now() - s0);
            const seen = new Promise(res => {
              const o = new MutationObserver(() => { if (toast.querySelector('.name')) { o.disconnect(); res(performance.now()); } });
              o.observe(toast, { childList: true, subtree: true });
            });
            toast.innerHTML = '';
            // A thermometer reading first: the tap pairs with it, so every tap also queues a
            // health-check record and the outbox keeps draining during the measurement.
            await fetch('/api/v1/sim/temperature', { method: 'POST', headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ celsius: 36.6 }) });
            const t0 = performance.now();
            await fetch('/api/v1/sim/card', { method: 'POST', headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ reader: 'door', uid: cards[i % cards.length] }) });
            taps.push((await seen) - t0);
            await new Promise(r => setTimeout(r, 20));
          }
          done({ taps, status });
        })();
    "#;
    let cards = json!(["040A9E95", "0458CBAA", "04BEAE80"]);
    let n = 200;
    let r = c
        .execute_async(script, vec![json!(n), cards])
        .await
        .unwrap();
    let pct = |v: &Value, p: f64| {
        let mut xs: Vec<f64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        xs.sort_by(f64::total_cmp);
        xs[((xs.len() as f64 - 1.0) * p).round() as usize]
    };
    let s = demo.status();
    println!(
        "tap-to-screen over {n} taps{}: p50 {:.1} ms, p99 {:.1} ms; reference status round trip: p50 {:.1} ms, p99 {:.1} ms; outbox now {} pending, {} published",
        if broker.is_some() {
            " while the outbox drains to the broker"
        } else {
            " (offline)"
        },
        pct(&r["taps"], 0.5),
        pct(&r["taps"], 0.99),
        pct(&r["status"], 0.5),
        pct(&r["status"], 0.99),
        s["outbox"]["total"],
        s["sync"]["published"],
    );
    c.close().await.unwrap();
}

/// The school's alarm path (issue 19) on screen: a second board shows a takeover naming the
/// classroom that raised the alarm (and no clear button: it is cleared where it was raised),
/// the duty-room board shows `/duty`, and clearing and drills follow the same path. The
/// school broker is the one `image/school-broker/setup.sh` makes, with a login per board.
#[cfg(feature = "mqtt-integration-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn the_school_alarm_on_a_second_board_and_in_the_duty_room() {
    let dir = tempfile::tempdir().unwrap();
    let school = dir.path().join("school");
    let port = free_port();
    let root = ketang_testkit::repo_root();
    let st = Command::new(root.join("image/school-broker/setup.sh"))
        .arg("demo-school")
        .arg(&school)
        .args(["127.0.0.1", &port.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let mut creds = Vec::new();
    for board in ["demo-board-1", "board-4", "duty"] {
        let out = Command::new(root.join("image/school-broker/add-board.sh"))
            .arg(&school)
            .arg(board)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file = dir.path().join(format!("{board}.toml"));
        std::fs::write(&file, &out.stdout).unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        creds.push(file);
    }
    let _broker = common::mqtt::Proc(
        Command::new("mosquitto")
            .arg("-c")
            .arg(school.join("mosquitto.conf"))
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed"),
    );
    std::thread::sleep(Duration::from_millis(400));
    let url = format!("mqtt://127.0.0.1:{port}");
    let board = |data: &str, creds: &std::path::Path, extra: &[&str]| {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--school-link".into(),
            url.clone().into(),
            "--school-credentials".into(),
            creds.into(),
        ];
        args.extend(extra.iter().map(Into::into));
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsString::as_os_str).collect();
        Demo::start_args(&dir.path().join(data), Some(MONDAY_0755), &refs)
    };
    let room3 = board("d1", &creds[0], &[]);
    let room4 = board(
        "d2",
        &creds[1],
        &[
            "--device-id",
            "board-4",
            "--classroom-id",
            "g7-c4",
            "--class-name",
            "七年级(4)班",
        ],
    );
    let duty = board(
        "d3",
        &creds[2],
        &[
            "--device-id",
            "duty",
            "--classroom-id",
            "duty-room",
            "--class-name",
            "门卫室",
            "--duty-room",
        ],
    );
    for d in [&room3, &room4, &duty] {
        d.wait_secs("the school path", 10, |s| {
            s["school"]["connected"] == json!(true)
        });
    }

    // What the school path carries, for the contract check of ./scripts/test (the duty
    // room's login may read the whole school).
    let out = root.join("target/contract");
    std::fs::create_dir_all(&out).unwrap();
    let duty_pw = std::fs::read_to_string(&creds[2]).unwrap();
    let duty_pw = duty_pw
        .lines()
        .find_map(|l| l.strip_prefix("password = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let _capture = common::mqtt::Proc(
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-v"])
            .args(["-u", "duty", "-P", &duty_pw])
            .args(["-t", "ketang/v1/demo-school/+/school/alarm"])
            .stdout(std::fs::File::create(out.join("school-path.txt")).unwrap())
            .spawn()
            .unwrap(),
    );
    let driver = chromedriver();
    let c = open(&driver, &room4, "/?lang=zh", 1920, 1080).await;
    wait_js(
        &c,
        "board 4",
        "return document.getElementById('class-name').textContent === '七年级(4)班';",
    )
    .await;
    // The duty room's board opens the duty-room view by itself.
    let d = open(&driver, &duty, "/", 1920, 1080).await;
    wait_js(&d, "the duty-room view", "return location.pathname === '/duty' && document.querySelectorAll(\"[data-testid='duty-board']\").length === 2;").await;
    assert!(!visible(&c, "alarm").await);

    // 七年级(3)班 raises an alarm: board 4 and the duty room show it, naming the classroom.
    let (code, raised) = room3.act(r#"{"action":"raise_alarm"}"#);
    assert_eq!(code, 200, "{raised}");
    let pressed = Instant::now();
    wait_js(&c, "the takeover on board 4", "const w = document.querySelector(\"[data-testid='alarm-where']\"); return !document.getElementById('alarm').classList.contains('hidden') && w.textContent.includes('七年级(3)班');").await;
    let shown = pressed.elapsed();
    assert!(
        shown < Duration::from_secs(2),
        "board 4 showed the alarm after {shown:?}"
    );
    assert!(
        !visible(&c, "alarm-clear").await,
        "another classroom's alarm is cleared where it was raised"
    );
    assert!(!visible(&c, "alarm-drill").await);
    shot(&c, "alarm-other-board-1920x1080").await;
    wait_js(&d, "the duty-room banner", "const b = document.querySelector(\"[data-testid='duty-banner']\"); return b.classList.contains('on') && b.textContent.includes('七年级(3)班') && b.textContent.includes('紧急报警');").await;
    shot(&d, "duty-room-1920x1080").await;
    axe(&d, "the duty-room view").await;
    axe(&c, "another classroom's alarm").await;

    // Cleared on 七年级(3)班: gone everywhere.
    let t = room3.login("T01", DEMO_PIN).unwrap();
    let (code, v) = t.act(&format!(
        r#"{{"action":"clear_alarm","alarm_id":{}}}"#,
        raised["alarm_id"]
    ));
    assert_eq!(code, 200, "{v}");
    wait_js(
        &c,
        "the takeover gone",
        "return document.getElementById('alarm').classList.contains('hidden');",
    )
    .await;
    wait_js(
        &d,
        "the banner gone",
        "return !document.querySelector(\"[data-testid='duty-banner']\").classList.contains('on');",
    )
    .await;

    // A drill (started in teacher mode) goes the same way, shown as a drill.
    let (code, v) = t.act(r#"{"action":"raise_alarm","drill":true}"#);
    assert_eq!(code, 200, "{v}");
    wait_js(&c, "the drill on board 4", "return !document.getElementById('alarm').classList.contains('hidden') && !document.getElementById('alarm-drill').classList.contains('hidden');").await;
    wait_js(&d, "the drill in the duty room", "const b = document.querySelector(\"[data-testid='duty-banner']\"); return b.classList.contains('drill') && b.textContent.includes('演练');").await;
    c.close().await.unwrap();
    d.close().await.unwrap();
}

/// The alarm button is never pushed off the screen (#18): with five long notices and the
/// offline banner, at 1920×1080 and at the portrait door board's 1080×1920, it is whole on
/// the screen and on top where it is pressed; the cards scroll inside instead.
#[tokio::test(flavor = "multi_thread")]
async fn the_alarm_button_stays_on_screen_with_many_notices_and_the_offline_banner() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(MONDAY_0755));
    let t = demo.login("T01", DEMO_PIN).unwrap();
    for i in 1..=5 {
        let body =
            "请各位家长注意：本周五下午举行家长会，地点在学校礼堂，请准时参加并带好学生的作业本。"
                .repeat(3);
        let (code, v) = t.act(&json!({"action": "post_notice", "title": format!("通知 {i}"), "body": body, "priority": 50}).to_string());
        assert_eq!(code, 200, "{v}");
    }
    for (w, h) in [(1920, 1080), (1080, 1920)] {
        let c = open(&driver, &demo, "/?lang=zh", w, h).await;
        // Four shown, highest priority first; the other four counted.
        wait_js(&c, "four notices and a count", "const m = document.querySelector(\"[data-testid='notices-more']\"); return document.querySelectorAll('#notices li:not(.more)').length === 4 && m && m.textContent === '另有 4 条通知';").await;
        // The banner the board shows when its daemon is unreachable.
        c.execute(
            "document.getElementById('offline').classList.remove('hidden');",
            vec![],
        )
        .await
        .unwrap();
        let v = c
            .execute(
                "const b = document.getElementById('sos').getBoundingClientRect();
                 const hit = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
                 return [b.top, b.bottom, window.innerHeight, !!hit && !!hit.closest('#sos'), document.body.scrollHeight];",
                vec![],
            )
            .await
            .unwrap();
        let (top, bottom, inner) = (
            v[0].as_f64().unwrap(),
            v[1].as_f64().unwrap(),
            v[2].as_f64().unwrap(),
        );
        assert!(
            top >= 0.0 && bottom <= inner,
            "{w}x{h}: the alarm button is at {top}..{bottom} of {inner} px"
        );
        assert_eq!(
            v[3],
            json!(true),
            "{w}x{h}: something covers the alarm button"
        );
        assert!(
            v[4].as_f64().unwrap() <= inner + 1.0,
            "{w}x{h}: the page scrolls: {v}"
        );
        c.close().await.unwrap();
    }
}

/// Posts `png` to the simulated camera as its `nth` frame and waits until the inference
/// thread has looked at it (the camera's line counts the frames).
fn look(demo: &Demo, png: &[u8], nth: usize) {
    assert_eq!(post_bytes(demo, "/api/v1/sim/frame", "image/png", png), 202);
    demo.wait_for("the frame looked at", |s| {
        camera(s)["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("frames {nth} ")))
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lesson_report_shows_what_the_camera_and_microphone_saw() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let models = models_dir();
    let demo = Demo::start_args(
        &dir.path().join("data"),
        Some(MONDAY_0755),
        &["--models".as_ref(), models.as_os_str()],
    );
    demo.wait_models("camera");
    let data = ketang_testkit::repo_root().join("models/tests/data");
    let astronaut = std::fs::read(data.join("astronaut.png")).unwrap();
    let mosaic = std::fs::read(data.join("mosaic.png")).unwrap();
    let wav = std::fs::read(data.join("speech.wav")).unwrap();
    // Two school days of period 1: frames through the lesson, and speech at moments that
    // cover S-T samples (every 30 s, taken at :15 and :45 past each minute).
    let mut frames = 0;
    for day in ["2026-11-23", "2026-11-24"] {
        for (at, frame) in [
            ("08:02:20", None),
            ("08:02:50", None),
            ("08:05:00", Some(&astronaut)),
            ("08:12:00", Some(&mosaic)),
            ("08:20:20", None),
            ("08:26:00", Some(&astronaut)),
            ("08:31:20", None),
            ("08:38:00", Some(&mosaic)),
        ] {
            set_clock(&demo, &format!("{day}T{at}+08:00"));
            match frame {
                Some(png) => {
                    frames += 1;
                    look(&demo, png, frames);
                }
                None => {
                    assert_eq!(
                        post_bytes(&demo, "/api/v1/sim/audio", "audio/wav", &wav),
                        202
                    );
                }
            }
        }
        set_clock(&demo, &format!("{day}T08:44:00+08:00"));
        let t = demo.login("T01", DEMO_PIN).unwrap();
        let (code, v) = t.act(&format!(
            r#"{{"action":"end_lesson","lesson_id":"{day}/1"}}"#
        ));
        assert_eq!(code, 200, "{v}");
    }

    // Tuesday's report on the board, by touch: teacher mode, the report tab.
    let c = teacher_mode(&driver, &demo, 1920, 1080).await;
    click(&c, "tab-report").await;
    wait_js(
        &c,
        "the analysis block",
        "return document.querySelector(\"[data-testid='ai-block']\")",
    )
    .await;
    // People seen against students in the room (nobody checked in: a difference to check).
    let hc = text(&c, "ai-headcount").await;
    assert!(
        hc.contains("看到人数 6") && hc.contains("在班人数 0") && hc.contains("不一致"),
        "{hc}"
    );
    assert!(text(&c, "ai-behaviour").await.contains("抬头率"));
    // The charts, each with its text alternative.
    let alt = |id: &str| {
        format!(
            "return document.querySelector(\"[data-testid='{id}'] svg\").getAttribute('aria-label');"
        )
    };
    let heads = c.execute(&alt("ai-heads-down"), vec![]).await.unwrap();
    assert!(
        heads
            .as_str()
            .unwrap()
            .starts_with("低头比例（每5分钟）：0分"),
        "{heads}"
    );
    let st = c.execute(&alt("ai-st-curve"), vec![]).await.unwrap();
    assert!(st.as_str().unwrap().contains("T "), "{st}");
    let (_, report) = demo
        .login("T01", DEMO_PIN)
        .unwrap()
        .get("/api/v1/reports/2026-11-24/1");
    let t_samples = report["timeline"]["st"]
        .as_str()
        .unwrap()
        .matches('T')
        .count();
    assert!(t_samples >= 3, "speech covered S-T samples: {report}");
    assert!(
        st.as_str().unwrap().contains(&format!("T {t_samples}，S ")),
        "the curve is the report's sequence: {st}"
    );
    let rtch = c.execute(&alt("ai-rtch"), vec![]).await.unwrap();
    assert!(
        rtch.as_str().unwrap().contains("练习型"),
        "Rt under 0.3: {rtch}"
    );
    assert_eq!(text(&c, "ai-st-type").await, "练习型");
    // The week: Monday and Tuesday, one row each.
    let rows = c
        .execute(
            "return [...document.querySelectorAll(\"[data-testid='ai-week'] tbody tr\")].map(r => r.cells[0].textContent);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(rows, json!(["11-23", "11-24"]));
    c.execute(
        "document.querySelector(\"[data-testid='ai-block']\").scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    shot(&c, "report-analysis-1920x1080").await;
    axe(&c, "the lesson report's analysis").await;
    // Portrait, at the door: the same block, words whole, nothing off the side.
    let p = teacher_mode(&driver, &demo, 1080, 1920).await;
    click(&p, "tab-report").await;
    wait_js(
        &p,
        "the analysis block",
        "const b = document.querySelector(\"[data-testid='ai-block']\"); return b && b.getBoundingClientRect().right <= window.innerWidth + 1;",
    )
    .await;
    p.execute(
        "document.querySelector(\"[data-testid='ai-block']\").scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    shot(&p, "report-analysis-1080x1920").await;
    axe(&p, "the lesson report's analysis, portrait").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_teacher_enrols_her_voice_by_touch_and_the_report_counts_students_turns() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let models = models_dir();
    let demo = Demo::start_args(
        &dir.path().join("data"),
        Some(MONDAY_0755),
        &["--models".as_ref(), models.as_os_str()],
    );
    demo.wait_models("camera");
    let x = two_speakers();
    // The report tab offers the enrolment; she taps it and reads the text shown.
    let c = teacher_mode(&driver, &demo, 1920, 1080).await;
    click(&c, "tab-report").await;
    wait_js(
        &c,
        "the voiceprint card",
        "const v = document.querySelector(\"[data-testid='voice']\"); return v && !v.classList.contains('hidden') && v.textContent.includes('尚未录入');",
    )
    .await;
    // A tap by mistake: she cancels, nothing is stored, and she can start again.
    click(&c, "voice-enrol").await;
    demo.wait_for("the board listening", |s| {
        mic_says(s, "listening for a teacher's voice enrolment")
    });
    click(&c, "voice-cancel").await;
    wait_js(
        &c,
        "the enrolment cancelled",
        "return document.body.textContent.includes('已取消录入') && document.querySelector(\"[data-testid='voice-cancel']\").classList.contains('hidden') && !document.querySelector(\"[data-testid='voice-enrol']\").disabled && document.querySelector(\"[data-testid='voice-state']\").textContent.includes('尚未录入');",
    )
    .await;
    click(&c, "voice-enrol").await;
    wait_js(
        &c,
        "the text to read",
        "const r = document.querySelector(\"[data-testid='voice-read']\"); return !r.classList.contains('hidden') && r.textContent.includes('正在聆听');",
    )
    .await;
    c.execute(
        "document.querySelector(\"[data-testid='voice']\").scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    shot(&c, "voice-enrol-listening-1920x1080").await;
    axe(&c, "the voice enrolment, listening").await;
    demo.wait_for("the board listening", |s| {
        mic_says(s, "listening for a teacher's voice enrolment")
    });
    assert_eq!(
        post_bytes(
            &demo,
            "/api/v1/sim/audio",
            "audio/wav",
            &wav16k(&teacher_reading())
        ),
        202
    );
    wait_js(
        &c,
        "the voiceprint enrolled",
        "return document.querySelector(\"[data-testid='voice-state']\").textContent.includes('已录入');",
    )
    .await;
    // The lesson: she and a student talk; the report counts the student's turns.
    set_clock(&demo, "2026-11-23T08:10:00+08:00");
    assert_eq!(
        post_bytes(&demo, "/api/v1/sim/audio", "audio/wav", &wav16k(&x)),
        202
    );
    demo.wait_for("the lesson's recording heard", |s| {
        s["hardware"].as_array().unwrap().iter().any(|d| {
            d["kind"] == "microphone"
                && d["detail"]
                    .as_str()
                    .is_some_and(|t| t.contains("s speech · voiceprint"))
        })
    });
    set_clock(&demo, "2026-11-23T08:44:00+08:00");
    let (code, v) = demo
        .login("T01", DEMO_PIN)
        .unwrap()
        .act(r#"{"action":"end_lesson","lesson_id":"2026-11-23/1"}"#);
    assert_eq!(code, 200, "{v}");
    c.close().await.unwrap();
    let c = teacher_mode(&driver, &demo, 1920, 1080).await;
    click(&c, "tab-report").await;
    wait_js(
        &c,
        "the students' turns",
        "return document.querySelector(\"[data-testid='ai-student-turns']\")",
    )
    .await;
    let turns = text(&c, "ai-student-turns").await;
    assert!(
        turns.starts_with("学生发言 ") && turns.ends_with(" 次"),
        "{turns}"
    );
    assert!(
        text(&c, "ai-talk-method").await.contains("教师声纹"),
        "the method is named"
    );
    c.execute(
        "document.querySelector(\"[data-testid='ai-block']\").scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    shot(&c, "report-voiceprint-1920x1080").await;
    axe(&c, "the lesson report with students' turns").await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_teacher_enters_leave_over_days_by_touch() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(MONDAY_0755));
    for (w, h) in [(1920u32, 1080u32), (1080, 1920)] {
        let c = teacher_mode(&driver, &demo, w, h).await;
        // Sick leave from today until Friday, because of a fever: four taps.
        let student = if w > h { "2025070305" } else { "2025070306" };
        let mut taps = 0;
        for id in [
            format!("tile-{student}"),
            "set-leave-range".to_owned(),
            "leave-to-5".to_owned(), // Monday: this Friday is 4 days on, the chip "本周五"
        ] {
            let id = if id == "leave-to-5" {
                "leave-to-4".to_owned()
            } else {
                id
            };
            click(&c, &id).await;
            taps += 1;
        }
        assert_eq!(
            text(&c, "leave-summary").await,
            "病假：2026-11-23 至 2026-11-27（含）"
        );
        assert_eq!(text(&c, "leave-reason-r_fever").await, "发烧");
        shot(&c, &format!("teacher-leave-{w}x{h}")).await;
        axe(&c, "the leave dialog").await;
        click(&c, "leave-yes").await;
        taps += 1;
        assert_eq!(taps, 4, "sick leave until Friday: four taps");
        // Today's lesson shows it at once.
        wait_js(&c, "the sick tile", &format!("return document.querySelector(\"[data-testid='tile-{student}']\").classList.contains('sick');")).await;
    }
    // Personal leave from tomorrow for one day: tile, 请假…, 事假, from 明天, 家中有事, 确定.
    let c = teacher_mode(&driver, &demo, 1920, 1080).await;
    for id in [
        "tile-2025070307",
        "set-leave-range",
        "leave-kind-personal",
        "leave-from-1",
        "leave-reason-r_family",
    ] {
        click(&c, id).await;
    }
    assert_eq!(
        text(&c, "leave-summary").await,
        "事假：2026-11-24 至 2026-11-24（含）"
    );
    click(&c, "leave-yes").await;
    wait_js(
        &c,
        "done",
        "return document.getElementById('panel').textContent.includes('已登记请假');",
    )
    .await;
    assert!(
        !c.execute(
            "return document.querySelector(\"[data-testid='tile-2025070307']\").className;",
            vec![]
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .contains("leave"),
        "leave from tomorrow leaves today's roll alone"
    );
    // Tuesday's first lesson ends with the first two sick and the third on leave.
    set_clock(&demo, "2026-11-24T08:50:00+08:00");
    let t = demo.login("T01", DEMO_PIN).unwrap();
    let report = demo.wait_for("Tuesday's lesson 1 ended", |_| {
        t.get("/api/v1/reports/2026-11-24/1").0 == 200
    });
    let _ = report;
    let (_, r) = t.get("/api/v1/reports/2026-11-24/1");
    let sick = r["attendance"]["sick_ids"].to_string();
    assert!(
        sick.contains("2025070305") && sick.contains("2025070306"),
        "{r}"
    );
    assert!(
        r["attendance"]["leave_ids"]
            .to_string()
            .contains("2025070307"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_ups_are_resolved_by_touch_with_ready_made_reasons() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    // The morning check closes at 08:30: the students not seen are followed up.
    let demo = Demo::start(&dir.path().join("data"), Some("2026-11-23T08:29:55+08:00"));
    demo.wait_secs("the follow-ups", 20, |s| pending(s, "followup") > 0);
    for (w, h) in [(1920u32, 1080u32), (1080, 1920)] {
        let c = teacher_mode(&driver, &demo, w, h).await;
        click(&c, "tab-followups").await;
        let student = if w > h { "2025070301" } else { "2025070302" };
        wait_js(
            &c,
            "the follow-ups",
            &format!("return document.querySelector(\"[data-testid='fu-resolve-{student}']\")"),
        )
        .await;
        // Sick with a fever, back the day after tomorrow, guardian reached: five taps.
        let mut taps = 0;
        for id in [
            format!("fu-outcome-sick_leave-{student}"),
            format!("fu-illness-fever-{student}"),
            format!("fu-back-2-{student}"),
            format!("fu-contacted-yes-{student}"),
        ] {
            click(&c, &id).await;
            taps += 1;
        }
        assert_eq!(
            text(&c, &format!("fu-illness-fever-{student}")).await,
            "发热"
        );
        shot(&c, &format!("teacher-followup-{w}x{h}")).await;
        axe(&c, "the follow-ups").await;
        click(&c, &format!("fu-resolve-{student}")).await;
        taps += 1;
        assert_eq!(taps, 5);
        wait_js(
            &c,
            "resolved",
            &format!("return !document.querySelector(\"[data-testid='fu-resolve-{student}']\")"),
        )
        .await;
    }
    let t = demo.login("T01", DEMO_PIN).unwrap();
    let (_, f) = t.get("/api/v1/followups");
    let resolved: Vec<&Value> = f["followups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["state"] == "resolved")
        .collect();
    assert_eq!(resolved.len(), 2, "{f}");
    assert!(
        resolved
            .iter()
            .all(|x| x["resolution"] == "病假" && x["contacted_guardian"] == true),
        "{f}"
    );
    // A reason that is leave is leave: lesson 1 ends with both sick, not absent.
    set_clock(&demo, "2026-11-23T08:46:00+08:00");
    demo.wait_for("lesson 1 ended", |_| {
        t.get("/api/v1/reports/2026-11-23/1").0 == 200
    });
    let (_, r) = t.get("/api/v1/reports/2026-11-23/1");
    let sick = r["attendance"]["sick_ids"].to_string();
    assert!(
        sick.contains("2025070301") && sick.contains("2025070302"),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn symptoms_and_a_retaken_temperature_for_a_named_student_by_touch() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(MONDAY_0755));
    let c = teacher_mode(&driver, &demo, 1920, 1080).await;
    // Cough and a re-taken 38.0 °C for one student: tile, 症状/复测…, 咳嗽, 38.0, 记录.
    let mut taps = 0;
    for id in [
        "tile-2025070304",
        "set-symptoms",
        "sym-cough",
        "sym-temp-38",
    ] {
        click(&c, id).await;
        taps += 1;
    }
    assert_eq!(text(&c, "sym-temp").await, "38.0 °C");
    click(&c, "sym-temp-up").await;
    taps += 1;
    assert_eq!(
        text(&c, "sym-temp").await,
        "38.1 °C",
        "the stepper moves by 0.1"
    );
    shot(&c, "teacher-symptoms-1920x1080").await;
    axe(&c, "the symptoms dialog").await;
    click(&c, "sym-yes").await;
    taps += 1;
    assert_eq!(taps, 6);
    // The roll flags the fever and names the symptom.
    wait_js(&c, "the fever flag", "const f = document.querySelector(\"[data-testid='fever-2025070304']\"); return f && f.textContent === '发热';").await;
    assert!(text(&c, "tile-2025070304").await.contains("咳嗽"));
    axe(&c, "the roll with a fever flag").await;
    // And on the follow-up list, flagged as a fever (因病缺勤追踪).
    click(&c, "tab-followups").await;
    wait_js(&c, "the fever follow-up", "const e = document.querySelector(\"[data-testid='fu-reason-2025070304']\"); return e && e.textContent === '发热';").await;
    axe(&c, "the follow-up list with a fever").await;
    click(&c, "tab-roll").await;
    // The lesson's report names the student with the fever, and the symptom.
    set_clock(&demo, "2026-11-23T08:46:00+08:00");
    let t = demo.login("T01", DEMO_PIN).unwrap();
    demo.wait_for("lesson 1 ended", |_| {
        t.get("/api/v1/reports/2026-11-23/1").0 == 200
    });
    click(&c, "tab-report").await;
    click(&c, "report-2026-11-23/1").await;
    wait_js(&c, "the named fever", "const e = document.querySelector(\"[data-testid='report-fever-names-morning']\"); return e && e.textContent.includes('咳嗽');").await;
    let names = text(&c, "report-fever-names-morning").await;
    assert!(
        names.starts_with("发热学生：") && !names.contains("2025070304"),
        "names, not ids: {names}"
    );
    // The same dialog on a portrait board: the student's tile, 症状/复测….
    let p = teacher_mode(&driver, &demo, 1080, 1920).await;
    // The flat panel's state wraps between words, not inside one (内置电/脑 did).
    wait_js(
        &p,
        "the panel's state in whole words",
        "const w = [...document.querySelectorAll('#wb-state .nb')]; return w.length >= 2 && w.every(e => e.getClientRects().length === 1);",
    )
    .await;
    for id in ["tile-2025070305", "set-symptoms", "sym-cough"] {
        click(&p, id).await;
    }
    shot(&p, "teacher-symptoms-1080x1920").await;
    axe(&p, "the symptoms dialog, portrait").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notice_is_posted_prioritised_and_withdrawn_by_touch() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(MONDAY_0755));
    let c = teacher_mode(&driver, &demo, 1920, 1080).await;
    // A ready-made notice, important, for three days: tab, phrase, 重要, 三天, 发布.
    let mut taps = 0;
    for id in [
        "tab-notice",
        "notice-phrase-np_pe_indoor",
        "notice-prio-80",
        "notice-until-2",
    ] {
        click(&c, id).await;
        taps += 1;
    }
    let title = c
        .execute(
            "return document.getElementById('notice-title').value;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(title, json!("体育课改在室内"));
    shot(&c, "teacher-notice-1920x1080").await;
    axe(&c, "the notice form").await;
    click(&c, "notice-post").await;
    taps += 1;
    assert_eq!(taps, 5);
    // On the board, first (important), and in the list of this board's notices.
    let s = demo.wait_for("the notice", |s| {
        s["notices"]
            .as_array()
            .is_some_and(|n| n.iter().any(|x| x["title"] == "体育课改在室内"))
    });
    assert_eq!(
        s["notices"][0]["title"], "体育课改在室内",
        "priority first: {}",
        s["notices"]
    );
    assert_eq!(s["notices"][0]["local"], true);
    assert!(
        s["notices"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["title"] != "体育课改在室内")
            .all(|n| n["local"] == false),
        "the cloud's are not the board's to withdraw"
    );
    wait_js(
        &c,
        "the withdraw button",
        "return document.querySelector(\"[data-testid='notice-withdraw-体育课改在室内']\")",
    )
    .await;
    // Shown for three days: still there on Wednesday evening, gone on Thursday.
    set_clock(&demo, "2026-11-25T20:00:00+08:00");
    let s = demo.status();
    assert!(
        s["notices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["title"] == "体育课改在室内"),
        "{}",
        s["notices"]
    );
    set_clock(&demo, "2026-11-23T08:00:00+08:00");
    // Withdrawn in one tap.
    click(&c, "notice-withdraw-体育课改在室内").await;
    demo.wait_for("the notice withdrawn", |s| {
        s["notices"]
            .as_array()
            .is_some_and(|n| n.iter().all(|x| x["title"] != "体育课改在室内"))
    });
}

/// The demo on Monday 07:55, connected to a real Mosquitto of its own (downlinks reach it
/// through `common::mqtt::send_down` on the returned port).
fn demo_on_a_broker(dir: &std::path::Path) -> (u16, ketang_testkit::Broker, Demo) {
    let port = free_port();
    let broker = common::mqtt::mosquitto(&dir.join("broker"), port);
    let url = format!("mqtt://127.0.0.1:{port}");
    let demo = Demo::start_args(
        &dir.join("data"),
        Some(MONDAY_0755),
        &["--broker".as_ref(), url.as_ref()],
    );
    demo.wait_for("the broker", |s| s["sync"]["connected"] == true);
    (port, broker, demo)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_school_calendar_from_the_cloud_changes_the_boards_day() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let (port, _broker, demo) = demo_on_a_broker(dir.path());
    // Monday: 林雅 (T10, who does not teach this class) substitutes period 1, period 3 is
    // cancelled (moved), period 5 is an exam, and a lesson is added after school; Friday is
    // the sports day.
    common::mqtt::send_down(
        port,
        "calendar",
        "dl-cal-1",
        r#"{"version": 1,
            "term": {"start": "2026-09-01", "end": "2027-01-22"},
            "days_off": [{"from": "2026-11-27", "name": "运动会"}],
            "changes": [
              {"date": "2026-11-23", "roster_id": "g7-c3", "period": 1, "kind": "substitute", "teacher": "林雅", "teacher_id": "T10"},
              {"date": "2026-11-23", "roster_id": "g7-c3", "period": 3, "kind": "cancel", "note": "移至周三第6节"},
              {"date": "2026-11-23", "roster_id": "g7-c3", "period": 5, "kind": "event", "subject": "期中考试", "note": "数学"},
              {"date": "2026-11-23", "roster_id": "g7-c3", "period": 8, "kind": "extra", "subject": "英语", "teacher": "李雪梅", "starts": "16:45:00", "ends": "17:30:00"}
            ]}"#,
    );
    let s = demo.wait_for("the calendar", |s| s["day"]["calendar_version"] == 1);
    let today = s["today"].as_array().unwrap();
    let by = |p: u64| today.iter().find(|l| l["period"] == p);
    assert_eq!(by(1).unwrap()["teacher"], "林雅");
    assert_eq!(by(1).unwrap()["change"]["kind"], "substitute");
    assert_eq!(by(1).unwrap()["change"]["was_teacher"], "王丽华");
    assert!(by(3).is_none(), "period 3 is cancelled: {today:#?}");
    assert_eq!(s["day"]["cancelled"][0]["period"], 3);
    assert_eq!(by(5).unwrap()["subject"], "期中考试");
    assert_eq!(by(5).unwrap()["change"]["was_subject"], "体育");
    assert_eq!(by(8).unwrap()["change"]["kind"], "extra");
    // On the board: the lesson now says 代课 and whom it replaces; the day's list shows
    // each change and the cancelled lesson.
    let c = open(&driver, &demo, "/?lang=zh", 1920, 1080).await;
    wait_js(
        &c,
        "the changes on the board",
        "return document.querySelector(\"[data-testid='cancelled-3']\") && document.querySelector(\"[data-testid='change-extra']\");",
    )
    .await;
    let meta = c
        .execute(
            "return document.querySelector('#lesson .meta').textContent;",
            vec![],
        )
        .await
        .unwrap();
    let meta = meta.as_str().unwrap();
    assert!(
        meta.contains("林雅") && meta.contains("代课") && meta.contains("原 王丽华"),
        "{meta}"
    );
    assert!(text(&c, "cancelled-3").await.contains("停课"));
    shot(&c, "calendar-changes-1920x1080").await;
    axe(&c, "the board with the calendar's changes").await;
    // The substitute is listed among today's teachers and unlocks teacher mode.
    click(&c, "teacher-button").await;
    let order = wait_js(
        &c,
        "the staff list",
        "const b = [...document.querySelectorAll('#staff button')].map(x => x.dataset.staff); return b.length ? b : null;",
    )
    .await;
    let order: Vec<&str> = order
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let at = |id: &str| order.iter().position(|x| *x == id).unwrap();
    assert!(
        at("T10") < at("T04"),
        "the substitute comes before teachers without a lesson today: {order:?}"
    );
    click(&c, "staff-T10").await;
    for k in ["2", "4", "6", "8"] {
        click(&c, &format!("key-{k}")).await;
    }
    click(&c, "key-ok").await;
    wait_js(
        &c,
        "teacher mode for the substitute",
        "const p = document.getElementById('panel'); return !p.classList.contains('hidden') && document.getElementById('panel-who').textContent.includes('林雅');",
    )
    .await;
    // Friday is the sports day: no lessons, and the board says why.
    set_clock(&demo, "2026-11-27T08:00:00+08:00");
    let s = demo.wait_for("Friday", |s| s["day"]["name"] == "运动会");
    assert_eq!(s["today"], json!([]));
    let p = open(&driver, &demo, "/?lang=zh", 1080, 1920).await;
    wait_js(
        &p,
        "the day's name",
        "const e = document.querySelector(\"[data-testid='no-lesson']\"); return e && e.textContent.includes('运动会');",
    )
    .await;
    // A day off: the board sleeps; a touch shows the day's name.
    click(&p, "sleep").await;
    shot(&p, "calendar-day-off-1080x1920").await;
    axe(&p, "a day off").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn honours_duty_and_homework_from_the_school_on_the_board() {
    use base64::Engine as _;
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let (port, _broker, demo) = demo_on_a_broker(dir.path());
    // A small picture for the first honour, made from a packaged photo.
    let photo = image::open(ketang_testkit::repo_root().join("models/tests/data/astronaut.png"))
        .unwrap()
        .thumbnail(160, 120);
    let mut png = Vec::new();
    photo
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    common::mqtt::send_down(
        port,
        "honours",
        "dl-h-1",
        &format!(
            r#"{{"version":1,"items":[{{"id":"h1","title":"流动红旗","text":"第十二周卫生评比第一名","date":"2026-11-20","image":"{b64}"}},{{"id":"h2","title":"校运会团体第二","text":"男子4×100米接力第一"}}]}}"#
        ),
    );
    common::mqtt::send_down(
        port,
        "duty",
        "dl-d-1",
        r#"{"version":1,"days":[{"weekday":1,"students":["2025070301","2025070302"],"task":"擦黑板、扫地"},{"weekday":2,"students":["2025070303"]}]}"#,
    );
    common::mqtt::send_down(
        port,
        "homework",
        "dl-w-1",
        r#"{"date":"2026-11-23","items":[{"subject":"数学","text":"练习册第12页","due":"2026-11-24"},{"subject":"语文","text":"背诵《春》第一段"}]}"#,
    );
    let s = demo.wait_for("the content", |s| {
        s["content"]["homework"]
            .as_array()
            .is_some_and(|h| h.len() == 2)
            && s["content"]["honours"]
                .as_array()
                .is_some_and(|h| h.len() == 2)
            && !s["content"]["duty"].is_null()
    });
    assert_eq!(s["content"]["duty"]["names"], json!(["姜芷若", "蔡天佑"]));
    assert_eq!(
        s["content"]["honours"][0]["image"],
        "/api/v1/honours/h1/image"
    );
    assert!(s["content"]["honours"][1]["image"].is_null());
    // The image is served as it came, with its type; an honour without one is a 404.
    let res = ureq::get(&format!("{}/api/v1/honours/h1/image", demo.base))
        .call()
        .unwrap();
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.into_body().read_to_vec().unwrap(), png);
    let (code, _) = get(&format!("{}/api/v1/honours/h2/image", demo.base))
        .map_err(|e| e.to_string())
        .unwrap_or((404, String::new()));
    assert_eq!(code, 404);
    for (w, h) in [(1920, 1080), (1080, 1920)] {
        let c = open(&driver, &demo, "/?lang=zh", w, h).await;
        wait_js(
            &c,
            "the school's content with the honour's picture loaded",
            "const i = document.querySelector(\"[data-testid='honour-h1'] img\"); return i && i.complete && i.naturalWidth > 0;",
        )
        .await;
        assert!(text(&c, "duty").await.contains("姜芷若"));
        assert!(text(&c, "duty").await.contains("擦黑板"));
        let hw = text(&c, "homework").await;
        assert!(
            hw.contains("练习册第12页") && hw.contains("11月24日交"),
            "{hw}"
        );
        assert!(text(&c, "honours").await.contains("流动红旗"));
        shot(&c, &format!("class-content-{w}x{h}")).await;
        axe(&c, "the school's content on the board").await;
    }
    // Tuesday: Tuesday's duty; the homework without a due date was Monday's only.
    set_clock(&demo, "2026-11-24T07:30:00+08:00");
    let s = demo.wait_for("Tuesday", |s| {
        s["content"]["duty"]["names"] == json!(["高诗涵"])
    });
    assert_eq!(s["content"]["homework"].as_array().unwrap().len(), 1);
    assert_eq!(s["content"]["homework"][0]["subject"], "数学");
}

/// Taps `letters` on the on-screen keyboard, then the candidate `word`; returns the taps.
async fn type_pinyin(c: &Client, letters: &str, word: &str) -> usize {
    for k in letters.chars() {
        click(c, &format!("kbd-{k}")).await;
    }
    let i = wait_js(
        c,
        &format!("the candidate {word}"),
        &format!(
            "const b = [...document.querySelectorAll('#kbd .cand')].find(x => x.textContent === '{word}'); return b ? b.dataset.k : null;"
        ),
    )
    .await;
    click(c, &format!("kbd-{}", i.as_str().unwrap())).await;
    letters.len() + 1
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notice_is_typed_in_chinese_on_the_on_screen_pinyin_keyboard() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("data"), Some(MONDAY_0755));
    for (w, h) in [(1920, 1080), (1080, 1920)] {
        let c = teacher_mode(&driver, &demo, w, h).await;
        tabs_hold_still(&c).await;
        click(&c, "tab-notice").await;
        // Touching the field opens the keyboard (the kiosk has no other).
        click(&c, "notice-title").await;
        wait_js(
            &c,
            "the keyboard",
            "return !document.getElementById('kbd').classList.contains('hidden') && document.querySelector(\"[data-testid='kbd-q']\");",
        )
        .await;
        // The engine: syllables, a partial last syllable, a phrase composed from words.
        let seg = wait_js(
            &c,
            "the lexicon",
            "return IME.dict ? [IME.segment('xian'), IME.segment('qingj'), IME.candidates('qingj')[0].used === 2 && IME.candidates('qingjia')[0].text === '请假', IME.candidates('zhongguo')[0].text, IME.candidates('woxihuanshuxue')[0].text] : null;",
        )
        .await;
        assert_eq!(
            seg,
            json!([["xian"], ["qing", "j"], true, "中国", "我喜欢数学"])
        );
        let mut taps = type_pinyin(&c, "mingtian", "明天").await;
        for k in ["t", "i", "n", "g", "k", "e"] {
            click(&c, &format!("kbd-{k}")).await;
            taps += 1;
        }
        assert_eq!(text(&c, "kbd-comp").await, "ting'ke");
        if w == 1920 {
            shot(&c, "pinyin-keyboard-1920x1080").await;
        } else {
            shot(&c, "pinyin-keyboard-1080x1920").await;
        }
        axe(&c, "the pinyin keyboard").await;
        let i = wait_js(
            &c,
            "停课",
            "const b = [...document.querySelectorAll('#kbd .cand')].find(x => x.textContent === '停课'); return b ? b.dataset.k : null;",
        )
        .await;
        click(&c, &format!("kbd-{}", i.as_str().unwrap())).await;
        taps += 1;
        // Punctuation, a backspace, and English for a room number.
        for k in ["p-0", "back", "mode", "b", "2", "mode"] {
            click(&c, &format!("kbd-{k}")).await;
            taps += 1;
        }
        let title = c
            .execute(
                "return document.getElementById('notice-title').value;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(title, json!("明天停课b2"));
        assert_eq!(taps, 9 + 7 + 6, "taps for 明天停课 and b2");
        // The body: a whole sentence as one phrase from its words.
        click(&c, "notice-body").await;
        type_pinyin(&c, "qingjiadexuesheng", "请假的学生").await;
        let body = c
            .execute(
                "return document.getElementById('notice-body').value;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(body, json!("请假的学生"));
        click(&c, "kbd-close").await;
        assert!(!visible(&c, "kbd").await);
        // A refusal reads in Chinese on a Chinese board (the device sends error_zh).
        let why = c
            .execute_async(
                "const done = arguments[arguments.length - 1]; act({action: 'post_notice', title: '', body: 'x'}).then(() => done('accepted')).catch(e => done(explain(e)));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(why, json!("标题不能为空"));
        click(&c, "lock").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_opt_in_expression_share_is_class_level_and_off_by_default() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let models = models_dir();
    let data = ketang_testkit::repo_root().join("models/tests/data");
    let astronaut = std::fs::read(data.join("astronaut.png")).unwrap();
    let mosaic = std::fs::read(data.join("mosaic.png")).unwrap();
    for opted_in in [true, false] {
        let mut args: Vec<&std::ffi::OsStr> = vec!["--models".as_ref(), models.as_os_str()];
        if opted_in {
            args.push("--expressions".as_ref());
        }
        let demo = Demo::start_args(
            &dir.path().join(format!("data-{opted_in}")),
            Some(MONDAY_0755),
            &args,
        );
        demo.wait_models("camera");
        for (i, (at, png)) in [("08:05:00", &astronaut), ("08:12:00", &mosaic)]
            .into_iter()
            .enumerate()
        {
            set_clock(&demo, &format!("2026-11-23T{at}+08:00"));
            look(&demo, png, i + 1);
        }
        set_clock(&demo, "2026-11-23T08:44:00+08:00");
        let t = demo.login("T01", DEMO_PIN).unwrap();
        let (code, v) = t.act(r#"{"action":"end_lesson","lesson_id":"2026-11-23/1"}"#);
        assert_eq!(code, 200, "{v}");
        let c = teacher_mode(&driver, &demo, 1920, 1080).await;
        click(&c, "tab-report").await;
        click(&c, "report-2026-11-23/1").await;
        wait_js(
            &c,
            "the analysis block",
            "return document.querySelector(\"[data-testid='ai-headcount']\")",
        )
        .await;
        let shown = c
            .execute(
                "const e = document.querySelector(\"[data-testid='ai-expressions']\"); return e ? e.textContent : null;",
                vec![],
            )
            .await
            .unwrap();
        if opted_in {
            let text = shown.as_str().unwrap_or_default().to_owned();
            // The smiling astronaut and the mosaic's faces: shares of all readings, no names.
            assert!(
                text.contains("投入") && text.contains("平静") && text.contains("张脸次"),
                "{text}"
            );
            assert!(!text.contains("投入 0%"), "the astronaut smiles: {text}");
            for name in ["姜芷若", "蔡天佑"] {
                assert!(!text.contains(name));
            }
            shot(&c, "report-expressions-1920x1080").await;
            axe(&c, "the report with expressions").await;
        } else {
            assert_eq!(shown, Value::Null, "off unless the school opts in");
        }
        // Nothing of it leaves the board: the report API is the board's own view.
        let (_, r) = t.get("/api/v1/reports/2026-11-23/1");
        assert_eq!(
            r["timeline"]["expressions"].is_object(),
            opted_in,
            "{}",
            r["timeline"]
        );
        c.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_screen_sleeps_outside_school_hours_wakes_on_touch_and_never_hides_an_alarm() {
    let driver = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    // 22:00 on a school day: after the last lesson (16:35) and its ten minutes.
    let demo = Demo::start(&dir.path().join("data"), Some("2026-11-23T22:00:00+08:00"));
    let s = demo.status();
    assert_eq!(s["screen"]["awake"], false, "{}", s["screen"]);
    assert_eq!(s["screen"]["awake_from"], "2026-11-23T06:50:00+08:00");
    let c = open(&driver, &demo, "/?lang=zh", 1920, 1080).await;
    wait_js(
        &c,
        "the sleeping screen",
        "return !document.getElementById('sleep').classList.contains('hidden');",
    )
    .await;
    // A touch wakes it, without pressing what is under it.
    click(&c, "sleep").await;
    assert!(!visible(&c, "sleep").await);
    assert!(!visible(&c, "unlock").await);
    // An alarm at night shows at once, over the sleeping screen.
    c.execute("S.wokeAt = 0; renderSleep(S.status);", vec![])
        .await
        .unwrap();
    assert!(visible(&c, "sleep").await);
    let (code, v) = demo.post("/api/v1/sim/button", r#"{"button":"alarm"}"#);
    assert_eq!(code, 202, "{v}");
    wait_js(
        &c,
        "the alarm over the sleeping screen",
        "return !document.getElementById('alarm').classList.contains('hidden') && document.getElementById('sleep').classList.contains('hidden');",
    )
    .await;
    // The morning: awake for 晨检 from 06:50, by itself.
    let t = demo.login("T01", DEMO_PIN).unwrap();
    let id = demo.status()["alarms"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, v) = t.act(&format!(r#"{{"action":"clear_alarm","alarm_id":"{id}"}}"#));
    assert_eq!(code, 200, "{v}");
    set_clock(&demo, "2026-11-24T06:55:00+08:00");
    demo.wait_for("awake for the morning check", |s| {
        s["screen"]["awake"] == true
    });
    wait_js(
        &c,
        "the board awake",
        "return document.getElementById('sleep').classList.contains('hidden');",
    )
    .await;
    // Saturday: no lessons, asleep all day.
    set_clock(&demo, "2026-11-28T10:00:00+08:00");
    let s = demo.wait_for("Saturday", |s| s["screen"]["awake"] == false);
    assert!(s["screen"]["awake_from"].is_null());
    // The kiosk opens the board with ?kiosk=1: no mouse pointer on its touch screen; a
    // browser elsewhere keeps its pointer.
    for (path, want) in [("/?kiosk=1", "none"), ("/", "auto")] {
        let k = open(&driver, &demo, path, 1280, 800).await;
        let cursor = wait_js(
            &k,
            "the board",
            "return document.getElementById('class-name').textContent === '七年级(3)班' && getComputedStyle(document.getElementById('lesson')).cursor;",
        )
        .await;
        assert_eq!(cursor, json!(want), "{path}");
        k.close().await.unwrap();
    }
}
