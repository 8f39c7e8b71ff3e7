//! A real Mosquitto for the daemon's tests, and downlinks to the demo board.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command};
use std::time::Duration;

pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real Mosquitto on `port` (`ketang_testkit::Broker`), killed on drop.
pub fn mosquitto(dir: &std::path::Path, port: u16) -> ketang_testkit::Broker {
    ketang_testkit::Broker::start_on(dir, port, "")
}

/// Publishes a `command` downlink `id` with `body` to the demo board through `port`.
pub fn send_command(port: u16, id: &str, body: &str) {
    send_down(port, "command", id, body);
}

/// Publishes a downlink of `kind` with message id `id` and `body` to the demo board.
pub fn send_down(port: u16, kind: &str, id: &str, body: &str) {
    let msg = format!(
        r#"{{"schema":"ketang.v1","id":"{id}","kind":"{kind}","school_id":"demo-school","device_id":"demo-board-1","issued_at":"2026-11-23T07:50:00+08:00","body":{body}}}"#
    );
    let st = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args([
            "-t",
            &format!("ketang/v1/demo-school/demo-board-1/down/{kind}"),
            "-m",
            &msg,
        ])
        .status()
        .unwrap();
    assert!(st.success());
}

/// `mosquitto_sub -v` on every Ketang topic into `file`: each line "<topic> <payload>",
/// the capture format of scripts/contract/validate.mjs.
pub fn capture_all(port: u16, file: &std::path::Path) -> Proc {
    let p = Proc(
        Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-v"])
            .args(["-t", "ketang/#"])
            .stdout(std::fs::File::create(file).unwrap())
            .spawn()
            .expect("mosquitto_sub is installed"),
    );
    std::thread::sleep(Duration::from_millis(300));
    p
}
