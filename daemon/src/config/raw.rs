//! The config as written: serde structs with `deny_unknown_fields`. Types are loose where
//! validation can say more than serde (numbers as i64, paths as strings).

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDevice {
    pub(super) school_id: Option<String>,
    pub(super) classroom_id: Option<String>,
    pub(super) device_id: Option<String>,
    pub(super) class_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSync {
    pub(super) broker_url: Option<String>,
    pub(super) ca_file: Option<String>,
    pub(super) client_cert: Option<String>,
    pub(super) client_key: Option<String>,
    pub(super) credentials_file: Option<String>,
    pub(super) proxy_url: Option<String>,
    pub(super) proxy_credentials_file: Option<String>,
    pub(super) keep_alive_s: Option<i64>,
    pub(super) max_publish_per_s: Option<i64>,
    pub(super) telemetry_every_s: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchool {
    pub(super) timezone: Option<String>,
    pub(super) checkin_opens_min: Option<i64>,
    pub(super) late_after_min: Option<i64>,
    pub(super) fever_threshold_c: Option<f64>,
    pub(super) term_start: Option<String>,
    pub(super) term_end: Option<String>,
    pub(super) morning_check: Option<String>,
    pub(super) noon_check: Option<String>,
    pub(super) evening_check: Option<String>,
    pub(super) health_pairing_s: Option<i64>,
    pub(super) health_order: Option<String>,
    /// The board's screen sleeps outside school hours (default true).
    pub(super) screen_sleep: Option<bool>,
    /// Dates ("2026-10-01") or ranges ("2026-10-01/2026-10-07") without lessons.
    pub(super) holidays: Option<Vec<String>>,
    /// 调休: days that run another weekday's timetable.
    pub(super) makeup_days: Option<Vec<RawMakeup>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMakeup {
    pub(super) date: String,
    pub(super) runs: String,
}

/// `[hardware]`. `simulated = true` gives the standard classroom set, all simulated.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHardware {
    pub(super) simulated: Option<bool>,
    #[serde(default)]
    pub(super) card_readers: Vec<RawHw>,
    pub(super) thermometer: Option<RawHw>,
    #[serde(default)]
    pub(super) buttons: Vec<RawHw>,
    pub(super) siren: Option<RawHw>,
    pub(super) status_led: Option<RawHw>,
    pub(super) pir: Option<RawHw>,
    pub(super) whiteboard: Option<RawHw>,
    pub(super) epaper: Option<RawHw>,
}

/// One device. Which fields apply depends on `driver`; validation says which are missing or
/// do not apply.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHw {
    pub(super) name: Option<String>,
    pub(super) driver: Option<String>,
    pub(super) spi: Option<String>,
    pub(super) i2c: Option<String>,
    pub(super) address: Option<i64>,
    pub(super) device: Option<String>,
    pub(super) chip: Option<String>,
    pub(super) line: Option<i64>,
    pub(super) active_low: Option<bool>,
    pub(super) debounce_ms: Option<i64>,
    pub(super) long_press_ms: Option<i64>,
    pub(super) port: Option<String>,
    pub(super) dialect: Option<String>,
    pub(super) baud: Option<i64>,
    pub(super) set_id: Option<i64>,
    pub(super) reset_line: Option<i64>,
    pub(super) dc_line: Option<i64>,
    pub(super) rst_line: Option<i64>,
    pub(super) busy_line: Option<i64>,
    pub(super) model: Option<String>,
    pub(super) format: Option<String>,
}
