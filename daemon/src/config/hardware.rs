//! `[hardware]`: which devices exist, on which bus, pin or port, or simulated.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;
use super::raw::{RawHardware, RawHw};
use ketang_drivers::epaper::EpdModel;
use ketang_drivers::wedge::WedgeFormat;

/// What a device is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DeviceKind {
    CardReader,
    Thermometer,
    Button,
    Siren,
    StatusLed,
    Pir,
    Whiteboard,
    Epaper,
    /// The classroom camera of face attendance (configured in `[inference]`).
    Camera,
    /// The classroom microphone of talk-time analysis (configured in `[inference]`).
    Microphone,
}

impl DeviceKind {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::CardReader => "card_reader",
            Self::Thermometer => "thermometer",
            Self::Button => "button",
            Self::Siren => "siren",
            Self::StatusLed => "status_led",
            Self::Pir => "pir",
            Self::Whiteboard => "whiteboard",
            Self::Epaper => "epaper",
            Self::Camera => "camera",
            Self::Microphone => "microphone",
        }
    }

    /// Drivers this kind accepts.
    const fn drivers(self) -> &'static [&'static str] {
        match self {
            Self::CardReader => &["simulated", "mfrc522", "evdev"],
            Self::Thermometer => &["simulated", "mlx90614"],
            Self::Button | Self::Siren | Self::StatusLed | Self::Pir => &["simulated", "gpio"],
            Self::Whiteboard => &["simulated", "serial"],
            Self::Epaper => &["simulated", "waveshare"],
            Self::Camera => &["simulated", "frames"],
            Self::Microphone => &["simulated", "wav"],
        }
    }
}

/// A GPIO line on a character device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GpioLine {
    pub(crate) chip: PathBuf,
    pub(crate) line: u32,
    pub(crate) active_low: bool,
}

/// RS-232 control dialects of interactive flat panels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhiteboardDialect {
    Benq,
    Smart,
    Lg,
}

/// How a device is reached.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DeviceDriver {
    Simulated,
    Mfrc522 {
        spi: PathBuf,
        reset: Option<GpioLine>,
    },
    Evdev {
        device: PathBuf,
        /// How the reader types card numbers.
        format: WedgeFormat,
    },
    Mlx90614 {
        i2c: PathBuf,
        address: u8,
    },
    Gpio(GpioLine),
    Serial {
        port: PathBuf,
        dialect: WhiteboardDialect,
        baud: u32,
        set_id: u8,
    },
    /// Frames from image files in a folder (the newest is the current frame).
    Frames {
        dir: PathBuf,
    },
    /// A V4L2 camera (`/dev/video0`), asked for about `width` × `height`.
    V4l2 {
        device: PathBuf,
        width: u32,
        height: u32,
    },
    /// Recordings from WAV files in a folder (each finished file once).
    Wav {
        dir: PathBuf,
    },
    /// An ALSA capture device (a PCM name such as `default` or `plughw:1,0`), via arecord.
    Alsa {
        device: String,
        channels: u16,
    },
    Waveshare {
        spi: PathBuf,
        model: EpdModel,
        dc: GpioLine,
        rst: GpioLine,
        busy: GpioLine,
    },
}

impl DeviceDriver {
    pub(crate) const fn name(&self) -> &'static str {
        match self {
            Self::Simulated => "simulated",
            Self::Mfrc522 { .. } => "mfrc522",
            Self::Evdev { .. } => "evdev",
            Self::Mlx90614 { .. } => "mlx90614",
            Self::Gpio(_) => "gpio",
            Self::Serial { .. } => "serial",
            Self::Waveshare { .. } => "waveshare",
            Self::Frames { .. } => "frames",
            Self::V4l2 { .. } => "v4l2",
            Self::Wav { .. } => "wav",
            Self::Alsa { .. } => "alsa",
        }
    }
}

/// One configured device.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeviceConfig {
    pub(crate) name: String,
    pub(crate) kind: DeviceKind,
    pub(crate) driver: DeviceDriver,
    /// Buttons and PIR: debounce time.
    pub(crate) debounce: Duration,
    /// Buttons: a press must last this long to count (guards against bumps); zero = any press.
    pub(crate) long_press: Duration,
}

/// All configured devices.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct HardwareConfig {
    pub(crate) devices: Vec<DeviceConfig>,
}

impl HardwareConfig {
    /// The standard classroom set, all simulated (`[hardware] simulated = true`, and the demo).
    pub(crate) fn all_simulated() -> Self {
        let dev = |name: &str, kind| DeviceConfig {
            name: name.to_owned(),
            kind,
            driver: DeviceDriver::Simulated,
            debounce: Duration::from_millis(30),
            long_press: Duration::ZERO,
        };
        Self {
            devices: vec![
                dev("door", DeviceKind::CardReader),
                dev("thermometer", DeviceKind::Thermometer),
                dev("alarm", DeviceKind::Button),
                dev("siren", DeviceKind::Siren),
                dev("status_led", DeviceKind::StatusLed),
                dev("pir", DeviceKind::Pir),
                dev("whiteboard", DeviceKind::Whiteboard),
                dev("epaper", DeviceKind::Epaper),
            ],
        }
    }

    #[cfg(test)]
    pub(crate) fn of_kind(&self, kind: DeviceKind) -> impl Iterator<Item = &DeviceConfig> {
        self.devices.iter().filter(move |d| d.kind == kind)
    }
}

pub(super) fn validate(raw: RawHardware, errs: &mut Vec<ConfigError>) -> HardwareConfig {
    let mut hw = HardwareConfig::default();
    let explicit = !raw.card_readers.is_empty()
        || raw.thermometer.is_some()
        || !raw.buttons.is_empty()
        || raw.siren.is_some()
        || raw.status_led.is_some()
        || raw.pir.is_some()
        || raw.whiteboard.is_some()
        || raw.epaper.is_some();
    if raw.simulated == Some(true) {
        if explicit {
            errs.push(ConfigError::new(
                "hardware.simulated",
                "`simulated = true` gives the whole standard set; remove it or the device entries",
            ));
        }
        return HardwareConfig::all_simulated();
    }
    let mut one = |path: String, kind, raw: RawHw, default_name: Option<&str>| {
        if let Some(d) = device(&path, kind, raw, default_name, errs) {
            hw.devices.push(d);
        }
    };
    for (i, r) in raw.card_readers.into_iter().enumerate() {
        one(
            format!("hardware.card_readers[{i}]"),
            DeviceKind::CardReader,
            r,
            None,
        );
    }
    for (i, r) in raw.buttons.into_iter().enumerate() {
        one(
            format!("hardware.buttons[{i}]"),
            DeviceKind::Button,
            r,
            None,
        );
    }
    for (key, kind, r) in [
        ("thermometer", DeviceKind::Thermometer, raw.thermometer),
        ("siren", DeviceKind::Siren, raw.siren),
        ("status_led", DeviceKind::StatusLed, raw.status_led),
        ("pir", DeviceKind::Pir, raw.pir),
        ("whiteboard", DeviceKind::Whiteboard, raw.whiteboard),
        ("epaper", DeviceKind::Epaper, raw.epaper),
    ] {
        if let Some(r) = r {
            one(format!("hardware.{key}"), kind, r, Some(key));
        }
    }
    let mut names = HashSet::new();
    for d in &hw.devices {
        if !names.insert(d.name.clone()) {
            errs.push(ConfigError::new(
                "hardware",
                format!(
                    "device name {:?} is used twice; names must be unique",
                    d.name
                ),
            ));
        }
    }
    hw
}

fn present(r: &RawHw) -> Vec<&'static str> {
    let mut v = Vec::new();
    let mut f = |name, is: bool| {
        if is {
            v.push(name);
        }
    };
    f("spi", r.spi.is_some());
    f("i2c", r.i2c.is_some());
    f("address", r.address.is_some());
    f("device", r.device.is_some());
    f("chip", r.chip.is_some());
    f("line", r.line.is_some());
    f("active_low", r.active_low.is_some());
    f("debounce_ms", r.debounce_ms.is_some());
    f("long_press_ms", r.long_press_ms.is_some());
    f("port", r.port.is_some());
    f("dialect", r.dialect.is_some());
    f("baud", r.baud.is_some());
    f("set_id", r.set_id.is_some());
    f("reset_line", r.reset_line.is_some());
    f("dc_line", r.dc_line.is_some());
    f("rst_line", r.rst_line.is_some());
    f("busy_line", r.busy_line.is_some());
    f("model", r.model.is_some());
    f("format", r.format.is_some());
    v
}

fn device(
    path: &str,
    kind: DeviceKind,
    r: RawHw,
    default_name: Option<&str>,
    errs: &mut Vec<ConfigError>,
) -> Option<DeviceConfig> {
    let start = errs.len();
    let name = device_name(path, r.name.clone(), default_name, errs);
    let driver = driver_name(path, kind, r.driver.clone(), errs)?;
    let input = matches!(kind, DeviceKind::Button | DeviceKind::Pir);
    check_fields(path, kind, &driver, &r, errs);
    let mut f = Fields {
        path,
        driver: &driver,
        errs,
    };
    let chip = r
        .chip
        .clone()
        .map_or_else(|| PathBuf::from("/dev/gpiochip0"), PathBuf::from);
    let driver = match driver.as_str() {
        "simulated" => DeviceDriver::Simulated,
        "mfrc522" => DeviceDriver::Mfrc522 {
            spi: f.device_path("spi", &r.spi),
            reset: r.reset_line.map(|_| GpioLine {
                chip: chip.clone(),
                line: f.line("reset_line", r.reset_line),
                active_low: true,
            }),
        },
        "evdev" => DeviceDriver::Evdev {
            device: f.device_path("device", &r.device),
            format: f.wedge_format(r.format.as_deref()),
        },
        "mlx90614" => DeviceDriver::Mlx90614 {
            i2c: f.device_path("i2c", &r.i2c),
            address: f.i2c_address(r.address),
        },
        "gpio" => DeviceDriver::Gpio(GpioLine {
            chip,
            line: f.line("line", r.line),
            active_low: r.active_low.unwrap_or(input),
        }),
        "serial" => f.serial(&r),
        "waveshare" => f.waveshare(&r, &chip),
        _ => return None,
    };
    let debounce = f.ms("debounce_ms", r.debounce_ms, 30, 1000);
    let long_press = f.ms("long_press_ms", r.long_press_ms, 0, 10_000);
    (errs.len() == start).then_some(DeviceConfig {
        name,
        kind,
        driver,
        debounce,
        long_press,
    })
}

/// The device's name: given, or the kind's default; checked as an id.
fn device_name(
    path: &str,
    given: Option<String>,
    default_name: Option<&str>,
    errs: &mut Vec<ConfigError>,
) -> String {
    let name = match (given, default_name) {
        (Some(n), _) => n,
        (None, Some(d)) => d.to_owned(),
        (None, None) => {
            errs.push(ConfigError::new(
                format!("{path}.name"),
                "missing; give the device a name, e.g. \"door\"",
            ));
            String::new()
        }
    };
    if !name.is_empty() && !super::validate::is_id(&name) {
        errs.push(ConfigError::new(
            format!("{path}.name"),
            format!("{name:?} is not a valid name: use 1-64 of A-Z a-z 0-9 - _ ."),
        ));
    }
    name
}

/// The driver named for a device of `kind`, if it is one that kind takes.
fn driver_name(
    path: &str,
    kind: DeviceKind,
    driver: Option<String>,
    errs: &mut Vec<ConfigError>,
) -> Option<String> {
    let Some(driver) = driver else {
        errs.push(ConfigError::new(
            format!("{path}.driver"),
            format!("missing; expected one of {}", kind.drivers().join(", ")),
        ));
        return None;
    };
    if !kind.drivers().contains(&driver.as_str()) {
        errs.push(ConfigError::new(
            format!("{path}.driver"),
            format!(
                "{driver:?} is not a {} driver; expected one of {}",
                kind.as_str(),
                kind.drivers().join(", ")
            ),
        ));
        return None;
    }
    Some(driver)
}

/// Every field given that the driver does not take is an error naming what it takes.
fn check_fields(
    path: &str,
    kind: DeviceKind,
    driver: &str,
    r: &RawHw,
    errs: &mut Vec<ConfigError>,
) {
    let mut allowed: Vec<&str> = match driver {
        "mfrc522" => vec!["spi", "chip", "reset_line"],
        "evdev" => vec!["device", "format"],
        "mlx90614" => vec!["i2c", "address"],
        "gpio" => vec!["chip", "line", "active_low"],
        "serial" => vec!["port", "dialect", "baud", "set_id"],
        "waveshare" => vec!["spi", "model", "chip", "dc_line", "rst_line", "busy_line"],
        _ => vec![],
    };
    if matches!(kind, DeviceKind::Button | DeviceKind::Pir) {
        allowed.push("debounce_ms");
    }
    if kind == DeviceKind::Button {
        allowed.push("long_press_ms");
    }
    for field in present(r) {
        if !allowed.contains(&field) {
            errs.push(ConfigError::new(
                format!("{path}.{field}"),
                format!(
                    "does not apply to driver {driver:?} (it takes: {})",
                    if allowed.is_empty() {
                        "no settings".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                ),
            ));
        }
    }
}

/// One device's fields being checked: each reader records its error with the field's
/// path and returns a placeholder, so every problem is reported at once.
struct Fields<'a> {
    path: &'a str,
    driver: &'a str,
    errs: &'a mut Vec<ConfigError>,
}

impl Fields<'_> {
    fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errs
            .push(ConfigError::new(format!("{}.{field}", self.path), message));
    }

    fn device_path(&mut self, field: &str, v: &Option<String>) -> PathBuf {
        match v {
            Some(p) if !p.trim().is_empty() => PathBuf::from(p),
            _ => {
                let driver = self.driver;
                self.error(
                    field,
                    format!("missing; driver {driver:?} needs a device path"),
                );
                PathBuf::new()
            }
        }
    }

    fn line(&mut self, field: &str, v: Option<i64>) -> u32 {
        match v {
            Some(n) if (0..=4095).contains(&n) => u32::try_from(n).unwrap_or_default(),
            Some(n) => {
                self.error(field, format!("{n} is not a GPIO line offset (0-4095)"));
                0
            }
            None => {
                self.error(field, "missing; give the GPIO line offset");
                0
            }
        }
    }

    fn ms(&mut self, field: &str, v: Option<i64>, default: u64, max: u64) -> Duration {
        match v {
            None => Duration::from_millis(default),
            Some(n) if n >= 0 && n.unsigned_abs() <= max => Duration::from_millis(n.unsigned_abs()),
            Some(n) => {
                self.error(field, format!("{n} ms is out of range (0-{max})"));
                Duration::from_millis(default)
            }
        }
    }

    fn wedge_format(&mut self, v: Option<&str>) -> WedgeFormat {
        match v {
            None | Some("decimal") => WedgeFormat::Decimal,
            Some("decimal_reversed") => WedgeFormat::DecimalReversed,
            Some("hex") => WedgeFormat::Hex,
            Some(other) => {
                self.error(
                    "format",
                    format!(
                        "{other:?} is not a card number format; expected decimal, decimal_reversed or hex"
                    ),
                );
                WedgeFormat::Decimal
            }
        }
    }

    fn i2c_address(&mut self, v: Option<i64>) -> u8 {
        match v {
            None => 0x5A,
            Some(a) if (0x01..=0x7F).contains(&a) => u8::try_from(a).unwrap_or(0x5A),
            Some(a) => {
                self.error(
                    "address",
                    format!("{a:#x} is not a 7-bit I2C address (0x01-0x7f)"),
                );
                0x5A
            }
        }
    }

    fn serial(&mut self, r: &RawHw) -> DeviceDriver {
        let dialect = match r.dialect.as_deref() {
            Some("benq") => WhiteboardDialect::Benq,
            Some("smart") => WhiteboardDialect::Smart,
            Some("lg") => WhiteboardDialect::Lg,
            other => {
                self.error(
                    "dialect",
                    format!(
                        "{} ; expected \"benq\", \"smart\" or \"lg\"",
                        other.map_or("missing".to_owned(), |o| format!("{o:?} is unknown"))
                    ),
                );
                WhiteboardDialect::Benq
            }
        };
        let default_baud = match dialect {
            WhiteboardDialect::Smart => 19_200,
            WhiteboardDialect::Benq | WhiteboardDialect::Lg => 9_600,
        };
        let baud = match r.baud {
            None => default_baud,
            Some(b) if [1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200].contains(&b) => {
                u32::try_from(b).unwrap_or(default_baud)
            }
            Some(b) => {
                self.error(
                    "baud",
                    format!("{b} is not a standard RS-232 baud rate (1200-115200)"),
                );
                default_baud
            }
        };
        let set_id = match r.set_id {
            None => 1,
            Some(n) if (0..=99).contains(&n) => u8::try_from(n).unwrap_or(1),
            Some(n) => {
                self.error("set_id", format!("{n} is not a set ID (0-99)"));
                1
            }
        };
        DeviceDriver::Serial {
            port: self.device_path("port", &r.port),
            dialect,
            baud,
            set_id,
        }
    }

    fn waveshare(&mut self, r: &RawHw, chip: &std::path::Path) -> DeviceDriver {
        let spi = self.device_path("spi", &r.spi);
        let model = match r.model.as_deref() {
            None => EpdModel::Epd7in5V2,
            Some(m) => EpdModel::from_name(m).unwrap_or_else(|| {
                self.error(
                    "model",
                    format!(
                        "{m:?} is not a supported panel; expected one of {}",
                        EpdModel::NAMES.join(", ")
                    ),
                );
                EpdModel::Epd7in5V2
            }),
        };
        let dc = self.pin(chip, "dc_line", r.dc_line);
        let rst = self.pin(chip, "rst_line", r.rst_line);
        let busy = self.pin(chip, "busy_line", r.busy_line);
        DeviceDriver::Waveshare {
            spi,
            model,
            dc,
            rst,
            busy,
        }
    }

    /// An output line of `chip` (active high).
    fn pin(&mut self, chip: &std::path::Path, field: &str, v: Option<i64>) -> GpioLine {
        GpioLine {
            chip: chip.to_owned(),
            line: self.line(field, v),
            active_low: false,
        }
    }
}
