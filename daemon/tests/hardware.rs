#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The daemon's Linux glue for real, through `ketangd run`: `hardware.whiteboard` on a
//! pseudo-terminal with a BenQ-speaking panel on the other end (written here from the
//! protocol, not from the driver), a serial port and an I2C bus that do not exist.

mod common;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{BIN, free_port, get};
use serde_json::Value;

struct Daemon(Child, u16);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path, whiteboard: &str) -> Daemon {
    start_with(dir, &format!("[hardware.whiteboard]\n{whiteboard}"))
}

fn start_with(dir: &std::path::Path, hardware: &str) -> Daemon {
    let port = free_port();
    let cfg = common::board_config(&dir.join("data"), port, hardware);
    let f = dir.join("ketang.toml");
    std::fs::write(&f, cfg).unwrap();
    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&f)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Daemon(child, port)
}

fn whiteboard_status(d: &Daemon, want: impl Fn(&Value) -> bool) -> Value {
    device_status(d, "whiteboard", want)
}

fn device_status(d: &Daemon, kind: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok((200, body)) = get(&format!("http://127.0.0.1:{}/api/v1/status", d.1)) {
            let s: Value = serde_json::from_str(&body).unwrap();
            let wb = s["hardware"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h["kind"] == kind)
                .cloned()
                .unwrap();
            if want(&wb) {
                return wb;
            }
            assert!(
                Instant::now() < deadline,
                "whiteboard status never matched: {wb}"
            );
        }
        assert!(Instant::now() < deadline, "no status");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A BenQ-style panel on the master side of a pty: answers `*pow=?#` and `*pow=on#`.
fn benq_panel() -> (std::path::PathBuf, Arc<Mutex<u32>>) {
    let p = nix::pty::openpty(None, None).unwrap();
    for fd in [&p.master, &p.slave] {
        let mut t = nix::sys::termios::tcgetattr(fd).unwrap();
        nix::sys::termios::cfmakeraw(&mut t);
        nix::sys::termios::tcsetattr(fd, nix::sys::termios::SetArg::TCSANOW, &t).unwrap();
    }
    let path = std::fs::read_link(format!("/proc/self/fd/{}", p.slave.as_raw_fd())).unwrap();
    let seen = Arc::new(Mutex::new(0u32));
    let count = seen.clone();
    let slave = p.slave;
    std::thread::spawn(move || {
        // Keep the slave open so the pty stays up between the daemon's opens.
        let _slave = slave;
        let mut f = std::fs::File::from(p.master);
        let (mut line, mut on, mut buf) = (Vec::new(), false, [0u8; 64]);
        loop {
            let Ok(n) = f.read(&mut buf) else { return };
            for &b in &buf[..n] {
                if b != b'\r' {
                    line.push(b);
                    continue;
                }
                let req = String::from_utf8_lossy(&line).into_owned();
                line.clear();
                let answer = match req.as_str() {
                    "" => continue,
                    "*pow=?#" => format!("*POW={}#\r\n", if on { "ON" } else { "OFF" }),
                    "*pow=on#" => {
                        on = true;
                        "*POW=ON#\r\n".to_owned()
                    }
                    "*pow=off#" => {
                        on = false;
                        "*POW=OFF#\r\n".to_owned()
                    }
                    _ => "*Block item#\r\n".to_owned(),
                };
                *count.lock().unwrap() += 1;
                if f.write_all(answer.as_bytes()).is_err() {
                    return;
                }
            }
        }
    });
    (path, seen)
}

#[test]
fn a_panel_on_a_serial_port_is_opened_queried_and_shown_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let (path, seen) = benq_panel();
    let d = start(
        dir.path(),
        &format!(
            "driver = \"serial\"\nport = \"{}\"\ndialect = \"benq\"\nbaud = 9600\n",
            path.display()
        ),
    );
    let wb = whiteboard_status(&d, |w| w["state"] == "ok");
    assert_eq!(wb["driver"], "serial");
    assert!(
        wb["detail"].as_str().unwrap().starts_with("standby")
            || wb["detail"].as_str().unwrap().starts_with("on"),
        "{wb}"
    );
    assert!(*seen.lock().unwrap() >= 1, "the panel was asked");
}

#[test]
fn a_missing_serial_port_shows_absent_naming_the_port_and_key_and_the_daemon_runs_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(
        dir.path(),
        "driver = \"serial\"\nport = \"/dev/ttyKETANG-missing\"\ndialect = \"smart\"\n",
    );
    let wb = whiteboard_status(&d, |w| w["state"] == "absent");
    let detail = wb["detail"].as_str().unwrap();
    assert!(
        detail.contains("/dev/ttyKETANG-missing") && detail.contains("hardware.whiteboard.port"),
        "{detail}"
    );
    let (code, _) = get(&format!("http://127.0.0.1:{}/healthz", d.1)).unwrap();
    assert_eq!(code, 200);
}

#[test]
fn a_missing_i2c_bus_shows_the_thermometer_absent_naming_the_bus_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_with(
        dir.path(),
        "[hardware.thermometer]\ndriver = \"mlx90614\"\ni2c = \"/dev/i2c-ketang-missing\"\n",
    );
    let t = device_status(&d, "thermometer", |w| w["state"] == "absent");
    let detail = t["detail"].as_str().unwrap();
    assert!(
        detail.contains("/dev/i2c-ketang-missing") && detail.contains("hardware.thermometer.i2c"),
        "{detail}"
    );
    let (code, _) = get(&format!("http://127.0.0.1:{}/healthz", d.1)).unwrap();
    assert_eq!(code, 200);
}

#[test]
fn missing_gpio_chips_show_the_button_and_siren_absent_naming_chip_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_with(
        dir.path(),
        "[[hardware.buttons]]\nname = \"alarm\"\ndriver = \"gpio\"\nchip = \"/dev/gpiochip-ketang-missing\"\nline = 17\n\
         [hardware.siren]\ndriver = \"gpio\"\nchip = \"/dev/gpiochip-ketang-missing\"\nline = 22\n",
    );
    let b = device_status(&d, "button", |w| w["state"] == "absent");
    let detail = b["detail"].as_str().unwrap();
    assert!(
        detail.contains("/dev/gpiochip-ketang-missing line 17")
            && detail.contains("hardware.buttons"),
        "{detail}"
    );
    let s = device_status(&d, "siren", |w| w["state"] == "absent");
    assert!(s["detail"].as_str().unwrap().contains("line 22"), "{s}");
    let (code, _) = get(&format!("http://127.0.0.1:{}/healthz", d.1)).unwrap();
    assert_eq!(code, 200);
}

#[test]
fn a_missing_keyboard_wedge_reader_is_absent_naming_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_with(
        dir.path(),
        "[[hardware.card_readers]]\nname = \"door\"\ndriver = \"evdev\"\ndevice = \"/dev/input/ketang-missing-kbd\"\nformat = \"hex\"\n",
    );
    let r = device_status(&d, "card_reader", |w| w["state"] == "absent");
    let detail = r["detail"].as_str().unwrap();
    assert!(
        detail.contains("/dev/input/ketang-missing-kbd")
            && detail.contains("hardware.card_readers"),
        "{detail}"
    );
}

#[test]
fn a_missing_spi_card_reader_is_absent_naming_the_node_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_with(
        dir.path(),
        "[[hardware.card_readers]]\nname = \"door\"\ndriver = \"mfrc522\"\nspi = \"/dev/spidev-ketang-missing\"\n",
    );
    let r = device_status(&d, "card_reader", |w| w["state"] == "absent");
    let detail = r["detail"].as_str().unwrap();
    assert!(
        detail.contains("/dev/spidev-ketang-missing")
            && detail.contains("hardware.card_readers spi"),
        "{detail}"
    );
    let (code, _) = get(&format!("http://127.0.0.1:{}/healthz", d.1)).unwrap();
    assert_eq!(code, 200);
}

#[test]
fn a_missing_epaper_panel_is_absent_naming_its_bus_while_the_preview_still_renders() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_with(
        dir.path(),
        "[hardware.epaper]\ndriver = \"waveshare\"\nmodel = \"epd4in2\"\nspi = \"/dev/spidev-ketang-epd\"\n\
         chip = \"/dev/gpiochip-ketang-missing\"\ndc_line = 25\nrst_line = 17\nbusy_line = 24\n",
    );
    let r = device_status(&d, "epaper", |w| w["state"] == "absent");
    let detail = r["detail"].as_str().unwrap();
    assert!(
        detail.contains("/dev/spidev-ketang-epd") && detail.contains("hardware.epaper.spi"),
        "{detail}"
    );
}
