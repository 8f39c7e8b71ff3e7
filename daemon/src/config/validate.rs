//! From TOML text to a checked [`Config`], collecting every problem.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime};
use serde::de::DeserializeOwned;
use toml::Spanned;

use super::raw::*;
use super::resolve;
use super::validate_sync::sync;
use super::*;

const SECTIONS: [&str; 11] = [
    "device",
    "data_dir",
    "data_max_mb",
    "http",
    "school_link",
    "alarm",
    "sync",
    "hardware",
    "school",
    "inference",
    "update",
];

/// Whether `s` is a valid id: 1-64 of `A-Z a-z 0-9 - _ .`.
pub(crate) fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

pub(super) fn validate(text: &str, base: &Path) -> Result<Config, Vec<ConfigError>> {
    let top: BTreeMap<String, Spanned<toml::Value>> = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!("line {}: ", line_of(text, s.start)))
            .unwrap_or_default();
        vec![ConfigError::new(
            "",
            format!("{at}not valid TOML: {}", e.message().trim()),
        )]
    })?;
    let mut errs = Vec::new();
    for key in top.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            errs.push(ConfigError::new(
                key.clone(),
                format!("unknown key; expected one of: {}", SECTIONS.join(", ")),
            ));
        }
    }
    let section = |name: &str| -> Option<(usize, toml::Value)> {
        top.get(name)
            .map(|v| (line_of(text, v.span().start), v.get_ref().clone()))
    };
    fn typed<T: DeserializeOwned + Default>(
        name: &str,
        sec: Option<(usize, toml::Value)>,
        errs: &mut Vec<ConfigError>,
    ) -> Option<T> {
        let Some((line, value)) = sec else {
            return Some(T::default());
        };
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(v) => Some(v),
            Err(e) => {
                let inner = e.path().to_string();
                let path = if inner == "." {
                    name.to_owned()
                } else {
                    format!("{name}.{inner}")
                };
                errs.push(ConfigError::new(
                    path,
                    format!(
                        "{} (in the section at line {line})",
                        e.inner()
                            .to_string()
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .trim()
                    ),
                ));
                None
            }
        }
    }

    // [device] is required.
    let device = match section("device") {
        None => {
            errs.push(ConfigError::new(
                "device",
                "missing; add a [device] section with school_id, classroom_id, device_id and class_name",
            ));
            None
        }
        Some(sec) => typed::<RawDeviceOpt>("device", Some(sec), &mut errs).map(|d| d.0),
    };
    let device = device.map(|d| identity(d, &mut errs));

    let data_dir = match top.get("data_dir") {
        None => Some(PathBuf::from("/var/lib/ketang")),
        Some(v) => match v.get_ref().as_str() {
            Some(s) if !s.trim().is_empty() => Some(resolve(base, s)),
            _ => {
                errs.push(ConfigError::new(
                    "data_dir",
                    "expected a non-empty path string, e.g. \"/var/lib/ketang\"",
                ));
                None
            }
        },
    };
    let data_max_bytes = match top.get("data_max_mb").map(|v| v.get_ref().as_integer()) {
        None => None,
        Some(Some(mb)) if (16..=1_000_000).contains(&mb) => Some(mb.unsigned_abs() * 1024 * 1024),
        Some(_) => {
            errs.push(ConfigError::new(
                "data_max_mb",
                "expected an integer number of MiB, 16-1000000",
            ));
            None
        }
    };
    let http = typed::<RawHttp>("http", section("http"), &mut errs).map(|h| http(h, &mut errs));
    let sync =
        typed::<RawSync>("sync", section("sync"), &mut errs).map(|s| sync(s, base, &mut errs));
    let school_link = typed::<super::school_link::RawSchoolLink>(
        "school_link",
        section("school_link"),
        &mut errs,
    )
    .map(|r| super::school_link::school_link(r, base, &mut errs));
    if let (Some(d), Some(Some(link))) = (&device, &school_link) {
        super::school_link::check_login(link, &d.device_id, &mut errs);
    }
    let alarm = typed::<super::school_link::RawAlarm>("alarm", section("alarm"), &mut errs)
        .map(|r| super::school_link::alarm(r, &mut errs));
    let hardware = typed::<RawHardware>("hardware", section("hardware"), &mut errs)
        .map(|h| hardware::validate(h, &mut errs));
    let school =
        typed::<RawSchool>("school", section("school"), &mut errs).map(|s| school(s, &mut errs));
    let inference = match (
        &data_dir,
        typed::<inference::RawInference>("inference", section("inference"), &mut errs),
    ) {
        (Some(d), Some(r)) => Some(inference::validate(r, base, d, &mut errs)),
        _ => None,
    };
    let update = match (
        &data_dir,
        typed::<update::RawUpdate>("update", section("update"), &mut errs),
    ) {
        (Some(d), Some(r)) => Some(update::validate(r, base, d, &mut errs)),
        _ => None,
    };
    // Bundles come through the school's proxy like the broker's traffic.
    let update = update.map(|mut u| {
        u.proxy = sync.as_ref().and_then(|s| s.proxy.clone());
        u
    });
    // The camera is a device like the others (status page, health).
    let hardware = hardware.map(|mut h| {
        if let Some(i) = &inference {
            h.devices.extend(i.camera.clone());
            h.devices.extend(i.microphone.clone());
        }
        h
    });

    match (
        device,
        data_dir,
        http,
        sync,
        hardware,
        school,
        inference,
        update,
        school_link,
        alarm,
    ) {
        (
            Some(device),
            Some(data_dir),
            Some(http),
            Some(sync),
            Some(hardware),
            Some(school),
            Some(inference),
            Some(update),
            Some(school_link),
            Some(alarm),
        ) if errs.is_empty() => Ok(Config {
            school_link,
            alarm,
            device,
            data_dir,
            data_max_bytes,
            http,
            sync,
            hardware,
            school,
            inference,
            update,
        }),
        _ => Err(errs),
    }
}

/// `[device]` has no sensible default, so it is wrapped to tell "absent" from "empty".
#[derive(Default, serde::Deserialize)]
#[serde(transparent)]
struct RawDeviceOpt(RawDevice);

fn identity(d: RawDevice, errs: &mut Vec<ConfigError>) -> DeviceIdentity {
    let mut id = |field: &str, v: Option<String>| -> String {
        match v {
            None => {
                errs.push(ConfigError::new(
                    format!("device.{field}"),
                    "missing; every board needs it (it is part of its MQTT topics)",
                ));
                String::new()
            }
            Some(s) if !is_id(&s) => {
                errs.push(ConfigError::new(
                    format!("device.{field}"),
                    format!("{s:?} is not valid: use 1-64 characters of A-Z a-z 0-9 - _ . (no spaces, no / + #)"),
                ));
                String::new()
            }
            Some(s) => s,
        }
    };
    let school_id = id("school_id", d.school_id);
    let classroom_id = id("classroom_id", d.classroom_id);
    let device_id = id("device_id", d.device_id);
    let class_name = match d.class_name {
        Some(n) if !n.trim().is_empty() && n.chars().count() <= 40 => n,
        Some(_) => {
            errs.push(ConfigError::new(
                "device.class_name",
                "expected 1-40 characters, e.g. \"七年级(3)班\"",
            ));
            String::new()
        }
        None => classroom_id.clone(),
    };
    DeviceIdentity {
        school_id,
        classroom_id,
        device_id,
        class_name,
    }
}

fn http(h: RawHttp, errs: &mut Vec<ConfigError>) -> HttpConfig {
    let listen = h.listen.as_deref().unwrap_or("0.0.0.0:8080");
    let listen = match listen.parse::<SocketAddr>() {
        Ok(a) if a.port() == 0 => {
            errs.push(ConfigError::new(
                "http.listen",
                "port 0 is not allowed: the board's UI needs a fixed port, e.g. \"0.0.0.0:8080\"",
            ));
            a
        }
        Ok(a) => a,
        Err(_) => {
            errs.push(ConfigError::new(
                "http.listen",
                format!(
                    "{listen:?} is not an IP:port address, e.g. \"0.0.0.0:8080\" or \"[::]:8080\""
                ),
            ));
            SocketAddr::from(([0, 0, 0, 0], 8080))
        }
    };
    HttpConfig { listen }
}

fn hhmm(field: &str, s: &str, errs: &mut Vec<ConfigError>) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M")
        .map_err(|_| {
            errs.push(ConfigError::new(
                field,
                format!("{s:?} is not a time HH:MM"),
            ))
        })
        .ok()
}

fn window(
    field: &str,
    v: Option<String>,
    default: (u32, u32, u32, u32),
    errs: &mut Vec<ConfigError>,
) -> (NaiveTime, NaiveTime) {
    let d = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default();
    let fallback = (d(default.0, default.1), d(default.2, default.3));
    let Some(s) = v else { return fallback };
    let Some((a, b)) = s.split_once('-') else {
        errs.push(ConfigError::new(
            field,
            format!("{s:?} is not a window \"HH:MM-HH:MM\""),
        ));
        return fallback;
    };
    match (hhmm(field, a.trim(), errs), hhmm(field, b.trim(), errs)) {
        (Some(a), Some(b)) if a < b => (a, b),
        (Some(_), Some(_)) => {
            errs.push(ConfigError::new(
                field,
                format!("{s:?} ends before it starts"),
            ));
            fallback
        }
        _ => fallback,
    }
}

fn school(s: RawSchool, errs: &mut Vec<ConfigError>) -> SchoolConfig {
    let timezone = match s
        .timezone
        .as_deref()
        .unwrap_or("Asia/Shanghai")
        .parse::<chrono_tz::Tz>()
    {
        Ok(tz) => tz,
        Err(_) => {
            errs.push(ConfigError::new(
                "school.timezone",
                format!(
                    "{:?} is not an IANA time zone, e.g. \"Asia/Shanghai\"",
                    s.timezone.unwrap_or_default()
                ),
            ));
            chrono_tz::Asia::Shanghai
        }
    };
    let minutes = |field: &str,
                   v: Option<i64>,
                   default: u64,
                   max: i64,
                   errs: &mut Vec<ConfigError>| match v {
        None => Duration::from_secs(default * 60),
        Some(n) if (0..=max).contains(&n) => Duration::from_secs(n.unsigned_abs() * 60),
        Some(n) => {
            errs.push(ConfigError::new(
                field,
                format!("{n} is out of range (0-{max} minutes)"),
            ));
            Duration::from_secs(default * 60)
        }
    };
    let checkin_opens = minutes(
        "school.checkin_opens_min",
        s.checkin_opens_min,
        10,
        60,
        errs,
    );
    let late_after = minutes("school.late_after_min", s.late_after_min, 5, 45, errs);
    let fever_threshold_c = match s.fever_threshold_c {
        None => 37.3,
        Some(t) if (37.0..=38.5).contains(&t) => t,
        Some(t) => {
            errs.push(ConfigError::new(
                "school.fever_threshold_c",
                format!("{t} °C is implausible; expected 37.0-38.5 (default 37.3)"),
            ));
            37.3
        }
    };
    let date = |field: &str, v: Option<String>, errs: &mut Vec<ConfigError>| {
        v.and_then(|s| {
            NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .map_err(|_| {
                    errs.push(ConfigError::new(
                        field,
                        format!("{s:?} is not a date YYYY-MM-DD"),
                    ))
                })
                .ok()
        })
    };
    let start = date("school.term_start", s.term_start, errs);
    let end = date("school.term_end", s.term_end, errs);
    let term = match (start, end) {
        (Some(a), Some(b)) if a < b => Some((a, b)),
        (Some(_), Some(_)) => {
            errs.push(ConfigError::new(
                "school.term_end",
                "is not after term_start",
            ));
            None
        }
        (None, None) => None,
        (Some(_), None) => {
            errs.push(ConfigError::new(
                "school.term_end",
                "missing; term_start needs term_end",
            ));
            None
        }
        (None, Some(_)) => {
            errs.push(ConfigError::new(
                "school.term_start",
                "missing; term_end needs term_start",
            ));
            None
        }
    };
    let mut holidays = std::collections::BTreeSet::new();
    for (i, h) in s.holidays.unwrap_or_default().iter().enumerate() {
        let field = format!("school.holidays[{i}]");
        let (a, b) = h.split_once('/').unwrap_or((h, h));
        match (
            date(&field, Some(a.trim().to_owned()), errs),
            date(&field, Some(b.trim().to_owned()), errs),
        ) {
            (Some(a), Some(b)) if a <= b && (b - a).num_days() <= 366 => {
                holidays.extend(a.iter_days().take_while(|d| *d <= b));
            }
            (Some(_), Some(_)) => errs.push(ConfigError::new(
                field,
                format!("{h:?} must run forwards and span at most a year"),
            )),
            _ => {}
        }
    }
    let mut makeup = std::collections::BTreeMap::new();
    for (i, m) in s.makeup_days.unwrap_or_default().into_iter().enumerate() {
        let field = format!("school.makeup_days[{i}]");
        let d = date(&format!("{field}.date"), Some(m.date.clone()), errs);
        let w = crate::engine::calendar::weekday(&m.runs);
        if w.is_none() {
            errs.push(ConfigError::new(
                format!("{field}.runs"),
                format!("{:?} is not a weekday, e.g. \"monday\" or \"周一\"", m.runs),
            ));
        }
        if let (Some(d), Some(w)) = (d, w) {
            if holidays.contains(&d) {
                errs.push(ConfigError::new(
                    format!("{field}.date"),
                    format!("{d} is also a holiday"),
                ));
            }
            makeup.insert(d, w);
        }
    }
    let calendar = crate::engine::calendar::Calendar {
        term,
        holidays,
        makeup,
        ..crate::engine::calendar::Calendar::default()
    };
    let morning_check = window("school.morning_check", s.morning_check, (7, 0, 8, 30), errs);
    let noon_check = window("school.noon_check", s.noon_check, (12, 30, 14, 30), errs);
    // 晚检 (boarding schools): only when given, and apart from the other two.
    let evening_check = s.evening_check.map(|e| {
        let w = window("school.evening_check", Some(e), (18, 30, 20, 30), errs);
        for (name, other) in [("morning_check", morning_check), ("noon_check", noon_check)] {
            if w.0 < other.1 && other.0 < w.1 {
                errs.push(ConfigError::new(
                    "school.evening_check",
                    format!("overlaps school.{name}"),
                ));
            }
        }
        w
    });
    let health_pairing = match s.health_pairing_s {
        None => Duration::from_secs(10),
        Some(n) if (1..=60).contains(&n) => Duration::from_secs(n.unsigned_abs()),
        Some(n) => {
            errs.push(ConfigError::new(
                "school.health_pairing_s",
                format!("{n} is out of range (1-60 seconds)"),
            ));
            Duration::from_secs(10)
        }
    };
    let health_order = match s.health_order.as_deref() {
        None | Some("reading_first") => crate::engine::health::Order::ReadingFirst,
        Some("card_first") => crate::engine::health::Order::CardFirst,
        Some(other) => {
            errs.push(ConfigError::new(
                "school.health_order",
                format!("{other:?} is not \"reading_first\" (measure, then tap) or \"card_first\" (tap, then measure)"),
            ));
            crate::engine::health::Order::ReadingFirst
        }
    };
    SchoolConfig {
        timezone,
        checkin_opens,
        late_after,
        fever_threshold_c,
        calendar,
        morning_check,
        noon_check,
        evening_check,
        health_pairing,
        health_order,
        screen_sleep: s.screen_sleep.unwrap_or(true),
    }
}
