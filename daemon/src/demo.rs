//! The bundled demo school used by `ketangd demo`: one class of 40 students with invented
//! names and random card UIDs, a week's timetable, a few notices (`daemon/demo/school.toml`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use ketang_sync::SchoolSnapshot;
use serde::Deserialize;

use crate::config::{Config, DeviceIdentity, HardwareConfig, HttpConfig, SchoolConfig, SyncConfig};

const SCHOOL: &str = include_str!("../demo/school.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoSchool {
    class_name: String,
    #[serde(flatten)]
    snapshot: SchoolSnapshot,
}

/// The demo's school data.
pub(crate) fn snapshot() -> anyhow::Result<(String, SchoolSnapshot)> {
    let d: DemoSchool = toml::from_str(SCHOOL).context("the bundled demo school does not parse")?;
    Ok((d.class_name, d.snapshot))
}

/// Where the demo's clock starts by default: 07:55 (check-in for period 1 is open) on
/// `now`'s date if it is a weekday, else on the next Monday.
pub(crate) fn default_start(
    now: chrono::DateTime<chrono_tz::Tz>,
) -> chrono::DateTime<chrono::FixedOffset> {
    use chrono::{Datelike, TimeZone};
    let mut date = now.date_naive();
    while date.weekday().number_from_monday() > 5 {
        date = date.succ_opt().unwrap_or(date);
    }
    let t = date.and_hms_opt(7, 55, 0).unwrap_or_default();
    now.timezone()
        .from_local_datetime(&t)
        .earliest()
        .map_or_else(|| now.fixed_offset(), |d| d.fixed_offset())
}

/// The demo's configuration: all hardware simulated, no config file.
pub(crate) fn config(
    class_name: String,
    listen: SocketAddr,
    data_dir: PathBuf,
    broker: Option<crate::config::BrokerUrl>,
    models_dir: PathBuf,
) -> Config {
    let t = |h, m| chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default();
    let inference = demo_inference(&data_dir, models_dir);
    let mut hardware = HardwareConfig::all_simulated();
    hardware.devices.extend(inference.camera.clone());
    hardware.devices.extend(inference.microphone.clone());
    Config {
        device: DeviceIdentity {
            school_id: "demo-school".into(),
            classroom_id: "g7-c3".into(),
            device_id: "demo-board-1".into(),
            class_name,
        },
        inference,
        update: crate::config::UpdateConfig::detect(&data_dir),
        data_dir,
        data_max_bytes: None,
        http: HttpConfig { listen },
        sync: SyncConfig {
            broker,
            ca_file: None,
            client_cert: None,
            client_key: None,
            credentials: None,
            proxy: None,
            keep_alive: Duration::from_secs(30),
            max_publish_per_s: std::num::NonZeroU32::new(100),
            telemetry_every: Some(Duration::from_secs(300)),
        },
        hardware,
        school: SchoolConfig {
            timezone: chrono_tz::Asia::Shanghai,
            checkin_opens: Duration::from_secs(600),
            late_after: Duration::from_secs(300),
            fever_threshold_c: 37.3,
            calendar: crate::engine::calendar::Calendar::default(),
            morning_check: (t(7, 0), t(8, 30)),
            noon_check: (t(12, 30), t(14, 30)),
            evening_check: None,
            health_pairing: Duration::from_secs(10),
            health_order: crate::engine::health::Order::ReadingFirst,
            screen_sleep: true,
        },
        school_link: None,
        alarm: crate::config::AlarmConfig::default(),
    }
}

/// A demo board's identity, school path and alarm SMS, so several demo boards can be one
/// school (`ketangd demo --help`).
#[derive(clap::Args, Debug, Default)]
pub(crate) struct BoardFlags {
    /// This board's device id (default demo-board-1).
    #[arg(long, value_name = "ID")]
    device_id: Option<String>,
    /// This board's classroom id (default g7-c3).
    #[arg(long, value_name = "ID")]
    classroom_id: Option<String>,
    /// The class or room name on screen and on the other boards.
    #[arg(long, value_name = "NAME")]
    class_name: Option<String>,
    /// The school's local broker (`school_link.broker_url`): other boards and the duty
    /// room learn of this board's alarms there.
    #[arg(long, value_name = "URL")]
    school_link: Option<String>,
    /// This board's login on the school broker (`school_link.credentials_file`).
    #[arg(long, value_name = "FILE", requires = "school_link")]
    school_credentials: Option<PathBuf>,
    /// CA of the school broker's certificate (`school_link.ca_file`, with mqtts://).
    #[arg(long, value_name = "FILE", requires = "school_link")]
    school_ca: Option<PathBuf>,
    /// This board is the duty room's (`school_link.role = "duty_room"`).
    #[arg(long, requires = "school_link")]
    duty_room: bool,
    /// Text this number when an alarm is acknowledged by neither the region nor the
    /// school path in time (`alarm.sms_numbers`; repeatable).
    #[arg(long, value_name = "NUMBER")]
    sms_to: Vec<String>,
    /// Seconds to wait for an acknowledgement before texting (`alarm.sms_after_s`).
    #[arg(long, value_name = "S")]
    sms_after_s: Option<i64>,
    /// The face embedding model (`inference.face_model`: dlib_resnet_v1, the default, or
    /// mobilefacenet_192_b1), with its own thresholds.
    #[arg(long, value_name = "NAME")]
    face_model: Option<String>,
    /// The opt-in class-level share of engaged faces on the lesson report
    /// (`inference.expressions`; off by default, docs/privacy.md "Emotion recognition").
    #[arg(long)]
    expressions: bool,
}

impl BoardFlags {
    /// Applies the flags, checked as the config file's sections are.
    pub(crate) fn apply(&self, cfg: &mut Config) -> Result<(), String> {
        let d = &mut cfg.device;
        for (flag, value, field) in [
            ("--device-id", &self.device_id, &mut d.device_id),
            ("--classroom-id", &self.classroom_id, &mut d.classroom_id),
        ] {
            if let Some(v) = value {
                if !crate::config::is_id(v) {
                    return Err(format!("{flag}: {v:?} is not 1-64 of A-Z a-z 0-9 - _ ."));
                }
                v.clone_into(field);
            }
        }
        if let Some(n) = &self.class_name {
            n.clone_into(&mut d.class_name);
        }
        if let Some(name) = &self.face_model {
            let e = ketang_models::face::EmbedderSpec::named(name).ok_or_else(|| {
                format!(
                    "--face-model: {name:?} is not one of {}",
                    ketang_models::face::EMBEDDERS.map(|e| e.name).join(", ")
                )
            })?;
            cfg.inference.embedder = e;
            cfg.inference.match_threshold = e.threshold;
            cfg.inference.match_margin = e.margin;
        }
        if self.expressions {
            cfg.inference.expressions = true;
        }
        let (link, alarm) = crate::config::school_sections(
            self.school_link.clone(),
            self.school_credentials.clone(),
            self.school_ca.clone(),
            self.duty_room,
            self.sms_to.clone(),
            self.sms_after_s,
        )
        .and_then(|(link, alarm)| {
            let mut errs = Vec::new();
            if let Some(l) = &link {
                crate::config::check_login(l, &cfg.device.device_id, &mut errs);
            }
            if errs.is_empty() {
                Ok((link, alarm))
            } else {
                Err(errs)
            }
        })
        .map_err(|errs| {
            errs.iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        cfg.school_link = link;
        cfg.alarm = alarm;
        Ok(())
    }
}

/// Face attendance in the demo: a simulated camera (`POST /api/v1/sim/frame`) and the models
/// from `models_dir`; without them the camera shows why it is degraded.
fn demo_inference(
    data_dir: &std::path::Path,
    models_dir: PathBuf,
) -> crate::config::InferenceConfig {
    let mut i = crate::config::InferenceConfig::off(data_dir);
    i.enabled = true;
    i.models_dir = models_dir;
    let dev = |name: &str, kind| crate::config::DeviceConfig {
        name: name.into(),
        kind,
        driver: crate::config::DeviceDriver::Simulated,
        debounce: Duration::ZERO,
        long_press: Duration::ZERO,
    };
    i.camera = Some(dev("camera", crate::config::DeviceKind::Camera));
    i.microphone = Some(dev("microphone", crate::config::DeviceKind::Microphone));
    i
}

/// Where the demo finds the models: `--models`, else `KETANG_MODELS`, else `target/models`
/// (what `models/obtain.sh` writes), else the image's `/usr/share/ketang/models`.
pub(crate) fn models_dir(given: Option<PathBuf>) -> PathBuf {
    given
        .or_else(|| std::env::var_os("KETANG_MODELS").map(PathBuf::from))
        .or_else(|| {
            let t = PathBuf::from("target/models");
            t.join(ketang_models::face::DLIB_RESNET.file)
                .is_file()
                .then_some(t)
        })
        .unwrap_or_else(|| PathBuf::from("/usr/share/ketang/models"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_clock_starts_at_0755_on_a_school_day() {
        let at = |s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono_tz::Asia::Shanghai)
        };
        // Sunday evening → Monday 07:55.
        assert_eq!(
            default_start(at("2026-11-22T20:31:00+08:00")).to_rfc3339(),
            "2026-11-23T07:55:00+08:00"
        );
        // A Wednesday afternoon → that Wednesday 07:55.
        assert_eq!(
            default_start(at("2026-11-25T15:00:00+08:00")).to_rfc3339(),
            "2026-11-25T07:55:00+08:00"
        );
    }

    #[test]
    fn the_demo_school_is_a_full_class_with_a_week_of_lessons() {
        let (name, s) = snapshot().unwrap();
        assert_eq!(name, "七年级(3)班");
        assert_eq!(s.students.len(), 40);
        assert_eq!(s.rosters[0].members.len(), 40);
        assert_eq!(s.periods.len(), 35);
        assert!(s.students.iter().all(|st| st.cards.len() == 1));
        assert!(!s.notices.is_empty());
    }
}
