#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
//! Level 3: the same drivers on a real bench (a Raspberry Pi-class board wired as
//! `docs/hardware.md` shows). Every test is `#[ignore]`d and runs only when
//! `KETANG_BENCH` names a bench config file (TOML, keys below; a device whose key is
//! missing is skipped with a message):
//!
//! ```toml
//! mfrc522_spi = "/dev/spidev0.0"     # card reader
//! expect_uid = "040A9E95"            # optional: the test card's UID
//! mlx90614_i2c = "/dev/i2c-1"        # thermometer at 0x5A
//! panel_port = "/dev/ttyUSB0"        # flat panel over RS-232
//! panel_dialect = "benq"             # benq | smart | lg
//! panel_baud = 9600
//! epaper_spi = "/dev/spidev0.1"      # door sign
//! epaper_model = "epd7in5_v2"
//! gpio_chip = "/dev/gpiochip0"
//! epaper_dc_line = 25
//! epaper_rst_line = 17
//! epaper_busy_line = 24
//! button_line = 5                    # emergency button to ground, pull-up
//! siren_line = 6                     # relay (clicks twice)
//! ```
//!
//! ```sh
//! KETANG_BENCH=bench.toml cargo test -p ketang-hw-tests --test bench -- --ignored --nocapture
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use embedded_hal::digital::{InputPin as _, OutputPin as _};
use ketang_drivers::epaper::{EpdModel, show};
use ketang_drivers::mfrc522::Mfrc522;
use ketang_drivers::panel::{Dialect, Panel};
use ketang_drivers::thermometer::{DEFAULT_ADDRESS, Thermometer};
use ketang_drivers::{Uid, sign};
use ketang_hw_tests::{PtyLink, StdDelay};
use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
use linux_embedded_hal::{CdevPin, Delay, I2cdev, SpidevDevice};

/// The bench config, or `None` (with a message) when `KETANG_BENCH` is unset or `key` is
/// missing.
fn bench(key: &str) -> Option<toml::Table> {
    let Ok(path) = std::env::var("KETANG_BENCH") else {
        println!("KETANG_BENCH is not set: no bench, nothing to test");
        return None;
    };
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("KETANG_BENCH={path}: {e}"));
    let t: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("KETANG_BENCH={path}: {e}"));
    if t.contains_key(key) {
        Some(t)
    } else {
        println!("{path} has no {key}: this device is not on the bench");
        None
    }
}

fn s(t: &toml::Table, k: &str) -> String {
    t[k].as_str()
        .unwrap_or_else(|| panic!("bench key {k} must be a string"))
        .to_owned()
}

fn n(t: &toml::Table, k: &str) -> u32 {
    let v = t[k]
        .as_integer()
        .unwrap_or_else(|| panic!("bench key {k} must be a number"));
    u32::try_from(v).unwrap_or_else(|_| panic!("bench key {k} out of range"))
}

fn spi(path: &str, hz: u32) -> SpidevDevice {
    let mut d = SpidevDevice::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    d.0.configure(
        &SpidevOptions::new()
            .bits_per_word(8)
            .max_speed_hz(hz)
            .mode(SpiModeFlags::SPI_MODE_0)
            .build(),
    )
    .unwrap_or_else(|e| panic!("{path}: {e}"));
    d
}

fn line(t: &toml::Table, key: &str, output: bool) -> CdevPin {
    let chip = s(t, "gpio_chip");
    let mut c = Chip::new(&chip).unwrap_or_else(|e| panic!("{chip}: {e}"));
    let l = c
        .get_line(n(t, key))
        .unwrap_or_else(|e| panic!("{chip} {key}: {e}"));
    let flags = if output {
        LineRequestFlags::OUTPUT
    } else {
        LineRequestFlags::INPUT
    };
    CdevPin::new(
        l.request(flags, 0, "ketang-bench")
            .unwrap_or_else(|e| panic!("{key}: {e}")),
    )
    .unwrap_or_else(|e| panic!("{key}: {e}"))
}

#[test]
#[ignore = "real bench: set KETANG_BENCH"]
fn bench_mfrc522_answers_and_reads_a_presented_card_once() {
    let Some(t) = bench("mfrc522_spi") else {
        return;
    };
    let mut r = Mfrc522::new(spi(&s(&t, "mfrc522_spi"), 1_000_000));
    let v = r.init(&mut Delay).unwrap();
    println!("MFRC522 version {v:#04x}; tap a card within 20 s");
    let deadline = Instant::now() + Duration::from_secs(20);
    let uid = loop {
        if let Some(u) = r.poll(&mut Delay).unwrap() {
            break u;
        }
        assert!(Instant::now() < deadline, "no card within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    if t.contains_key("expect_uid") {
        assert_eq!(uid, Uid::from_hex(&s(&t, "expect_uid")).unwrap());
    }
    // Resting on the reader: halted, not read again.
    for _ in 0..10 {
        assert_eq!(r.poll(&mut Delay).unwrap(), None);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "real bench: set KETANG_BENCH"]
fn bench_thermometer_reads_a_plausible_room() {
    let Some(t) = bench("mlx90614_i2c") else {
        return;
    };
    let bus = s(&t, "mlx90614_i2c");
    let mut th = Thermometer::new(I2cdev::new(&bus).unwrap(), DEFAULT_ADDRESS).unwrap();
    let ambient = th.ambient_c().unwrap();
    let object = th.object_c().unwrap();
    println!("ambient {ambient:.1} °C, object {object:.1} °C");
    assert!((5.0..45.0).contains(&ambient), "ambient {ambient}");
    assert!((-20.0..80.0).contains(&object), "object {object}");
}

#[test]
#[ignore = "real bench: set KETANG_BENCH"]
fn bench_panel_reports_power_and_input() {
    let Some(t) = bench("panel_port") else { return };
    let dialect = match s(&t, "panel_dialect").as_str() {
        "benq" => Dialect::Benq,
        "smart" => Dialect::Smart,
        "lg" => Dialect::Lg { set_id: 1 },
        d => panic!("panel_dialect {d:?}: benq, smart or lg"),
    };
    let baud = if t.contains_key("panel_baud") {
        n(&t, "panel_baud")
    } else {
        9600
    };
    let link = PtyLink::open_tty(&PathBuf::from(s(&t, "panel_port")), baud).unwrap();
    let mut p = Panel::new(link, dialect, 2000);
    let on = p.power(&mut StdDelay).unwrap();
    println!("panel power {on}");
    if on {
        println!("panel input {:?}", p.input(&mut StdDelay).unwrap());
    }
}

#[test]
#[ignore = "real bench: set KETANG_BENCH"]
fn bench_epaper_shows_the_sign() {
    let Some(t) = bench("epaper_spi") else { return };
    let model = EpdModel::from_name(&s(&t, "epaper_model")).expect("epaper_model");
    let (w, h) = model.size();
    let mut ink = vec![0u8; model.frame_bytes()];
    let c = sign::SignContent {
        class_name: "七年级(3)班",
        date: "测试 bench",
        ..sign::SignContent::default()
    };
    sign::render(&c, &mut sign::Framebuffer::new(&mut ink, w, h)).unwrap();
    let mut scratch = vec![0u8; ink.len()];
    show(
        model,
        &mut spi(&s(&t, "epaper_spi"), 4_000_000),
        &mut line(&t, "epaper_busy_line", false),
        &mut line(&t, "epaper_dc_line", true),
        &mut line(&t, "epaper_rst_line", true),
        &mut Delay,
        &ink,
        &mut scratch,
        20_000,
    )
    .unwrap();
}

#[test]
#[ignore = "real bench: set KETANG_BENCH"]
fn bench_button_idles_high_and_the_siren_relay_switches() {
    let Some(t) = bench("gpio_chip") else { return };
    if t.contains_key("button_line") {
        let mut b = line(&t, "button_line", false);
        assert!(
            b.is_high().unwrap(),
            "the button reads pressed at rest: wiring or pull-up"
        );
    }
    if t.contains_key("siren_line") {
        let mut s = line(&t, "siren_line", true);
        s.set_high().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        s.set_low().unwrap();
    }
}
