//! The daemon's configuration: TOML parsed into raw sections with serde
//! (`deny_unknown_fields`), then validated into checked types. Validation reports **every**
//! problem at once, each with its field path, and touches no hardware or network.
//!
//! The format is documented in `docs/config.md`; `image/ketang.example.toml` is a full
//! example. Secrets (MQTT credentials) are held in [`Secret`] and never printed.

mod error;
mod hardware;
mod inference;
mod raw;
mod school_link;
#[cfg(test)]
mod tests;
mod update;
mod validate;
mod validate_sync;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveTime;

pub(crate) use error::{ConfigError, ConfigErrors};
pub(crate) use hardware::{
    DeviceConfig, DeviceDriver, DeviceKind, GpioLine, HardwareConfig, WhiteboardDialect,
};
pub(crate) use inference::InferenceConfig;
pub(crate) use school_link::{AlarmConfig, SchoolLinkConfig, check_login, school_sections};
pub(crate) use update::UpdateConfig;
pub(crate) use validate::is_id;
pub(crate) use validate_sync::{parse_broker, parse_proxy};

/// A validated configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) device: DeviceIdentity,
    pub(crate) data_dir: PathBuf,
    /// Cap on the database file (`data_max_mb`); past it writes fail as on a full disk.
    pub(crate) data_max_bytes: Option<u64>,
    pub(crate) http: HttpConfig,
    pub(crate) sync: SyncConfig,
    pub(crate) hardware: HardwareConfig,
    pub(crate) school: SchoolConfig,
    pub(crate) inference: InferenceConfig,
    pub(crate) update: UpdateConfig,
    /// The school's own alarm path; `None` when the school has no local broker.
    pub(crate) school_link: Option<SchoolLinkConfig>,
    /// The SMS fallback of alarms.
    pub(crate) alarm: AlarmConfig,
}

/// Who this board is. Each id is 1–64 characters of `A-Z a-z 0-9 - _ .` (they appear in MQTT
/// topics, so `/ + #` are refused).
#[derive(Debug, Clone)]
pub(crate) struct DeviceIdentity {
    pub(crate) school_id: String,
    pub(crate) classroom_id: String,
    pub(crate) device_id: String,
    pub(crate) class_name: String,
}

#[derive(Debug, Clone)]
pub(crate) struct HttpConfig {
    pub(crate) listen: SocketAddr,
}

/// The link to the regional cloud. `broker` is `None` when the board runs offline by design.
#[derive(Debug, Clone)]
pub(crate) struct SyncConfig {
    pub(crate) broker: Option<BrokerUrl>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) client_cert: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
    pub(crate) credentials: Option<Credentials>,
    /// The school's HTTP proxy (HTTP CONNECT) to the broker and update downloads.
    pub(crate) proxy: Option<ProxyUrl>,
    pub(crate) keep_alive: Duration,
    /// Publish rate limit; `None` = unlimited.
    pub(crate) max_publish_per_s: Option<std::num::NonZeroU32>,
    /// How often a `telemetry` record is written; `None` = never.
    pub(crate) telemetry_every: Option<Duration>,
}

/// The school's HTTP proxy: `http://HOST:PORT`, with Basic credentials from a 0600 file.
#[derive(Debug, Clone)]
pub(crate) struct ProxyUrl {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) credentials: Option<Credentials>,
}

impl PartialEq for ProxyUrl {
    fn eq(&self, o: &Self) -> bool {
        let who = |c: &Option<Credentials>| {
            c.as_ref()
                .map(|c| (c.username.clone(), c.password.expose().to_owned()))
        };
        self.host == o.host && self.port == o.port && who(&self.credentials) == who(&o.credentials)
    }
}

impl Eq for ProxyUrl {}

impl ProxyUrl {
    /// `http://host:port`, for ureq and the status page (never the credentials).
    pub(crate) fn url(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}", self.host, self.port)
        } else {
            format!("http://{}:{}", self.host, self.port)
        }
    }
}

/// A parsed `mqtt://` or `mqtts://` URL.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct BrokerUrl {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl BrokerUrl {
    /// The URL without any credentials, for logs and the status page.
    pub(crate) fn redacted(&self) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// MQTT username and password, read from the credentials file.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) password: Secret,
    pub(crate) file: PathBuf,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password)
            .field("file", &self.file)
            .finish()
    }
}

/// A secret string whose `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(s: String) -> Self {
        Self(s)
    }
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Timetable and term defaults a school can change.
#[derive(Debug, Clone)]
pub(crate) struct SchoolConfig {
    pub(crate) timezone: chrono_tz::Tz,
    /// Check-in opens this long before a lesson starts.
    pub(crate) checkin_opens: Duration,
    /// A check-in later than start + this is "late".
    pub(crate) late_after: Duration,
    pub(crate) fever_threshold_c: f64,
    /// Term, holidays and make-up days.
    pub(crate) calendar: crate::engine::calendar::Calendar,
    pub(crate) morning_check: (NaiveTime, NaiveTime),
    pub(crate) noon_check: (NaiveTime, NaiveTime),
    /// 晚检 of boarding schools (`evening_check`); none by default.
    pub(crate) evening_check: Option<(NaiveTime, NaiveTime)>,
    /// A temperature reading pairs with a card tap this close in time.
    pub(crate) health_pairing: Duration,
    /// Which comes first at the door: the reading or the card (`health_order`).
    pub(crate) health_order: crate::engine::health::Order,
    /// The board's screen sleeps outside school hours (`screen_sleep`, default true).
    pub(crate) screen_sleep: bool,
}

impl Config {
    /// Reads and validates `path`.
    ///
    /// # Errors
    /// Every problem found, each naming the file and the field.
    pub(crate) fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::new(
                path,
                vec![ConfigError::new(
                    "",
                    format!(
                        "cannot read the config file: {e}; pass an existing, readable TOML file"
                    ),
                )],
            )
        })?;
        Self::parse(&text, path)
    }

    /// Validates config `text`; `origin` is used in messages and to resolve relative paths.
    ///
    /// # Errors
    /// Every problem found.
    pub(crate) fn parse(text: &str, origin: &Path) -> Result<Config, ConfigErrors> {
        let base = origin.parent().unwrap_or(Path::new("."));
        validate::validate(text, base).map_err(|errs| ConfigErrors::new(origin, errs))
    }
}

/// `p` as written in the config file: absolute, or relative to the file's folder `base`.
fn resolve(base: &std::path::Path, p: &str) -> PathBuf {
    let p = std::path::Path::new(p);
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}
