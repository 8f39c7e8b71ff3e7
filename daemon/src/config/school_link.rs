//! `[school_link]` (the school's own alarm path, `docs/technician.md`) and `[alarm]` (the
//! SMS fallback), every problem with its field path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::validate_sync::{credentials, parse_broker, readable};
use super::{BrokerUrl, ConfigError, Credentials, resolve};

/// The link to the school's local broker; `None` when the school has none.
#[derive(Debug, Clone)]
pub(crate) struct SchoolLinkConfig {
    pub(crate) broker: BrokerUrl,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) client_cert: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) keep_alive: Duration,
    /// This board is the duty room's: its screen shows the whole school's alarms.
    pub(crate) duty_room: bool,
}

/// The last fallback of an alarm: SMS through a cellular modem (ModemManager).
#[derive(Debug, Clone, Default)]
pub(crate) struct AlarmConfig {
    /// Numbers to text; empty = no SMS fallback.
    pub(crate) sms_numbers: Vec<String>,
    /// How long to wait for the region or the school path to have the alarm.
    pub(crate) sms_after: Duration,
    /// Text for drills too (off: a drill is not an emergency).
    pub(crate) sms_on_drill: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchoolLink {
    broker_url: Option<String>,
    ca_file: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
    credentials_file: Option<String>,
    keep_alive_s: Option<i64>,
    role: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlarm {
    sms_numbers: Option<Vec<String>>,
    sms_after_s: Option<i64>,
    sms_on_drill: Option<bool>,
}

pub(super) fn school_link(
    r: RawSchoolLink,
    base: &Path,
    errs: &mut Vec<ConfigError>,
) -> Option<SchoolLinkConfig> {
    let Some(url) = r.broker_url else {
        if r.ca_file.is_some() || r.credentials_file.is_some() || r.client_cert.is_some() {
            errs.push(ConfigError::new(
                "school_link.broker_url",
                "missing, but other school_link settings are set; give the school broker's URL",
            ));
        }
        return None;
    };
    let broker = match parse_broker(&url) {
        Ok(b) => Some(b),
        Err(m) => {
            errs.push(ConfigError::new("school_link.broker_url", m));
            None
        }
    };
    let ca_file = readable("school_link.ca_file", base, r.ca_file, errs);
    let client_cert = readable("school_link.client_cert", base, r.client_cert, errs);
    let client_key = readable("school_link.client_key", base, r.client_key, errs);
    if client_cert.is_some() != client_key.is_some() {
        errs.push(ConfigError::new(
            "school_link.client_cert",
            "mutual TLS needs both client_cert and client_key",
        ));
    }
    if broker.as_ref().is_some_and(|b| !b.tls) && (ca_file.is_some() || client_cert.is_some()) {
        errs.push(ConfigError::new(
            "school_link.broker_url",
            "TLS files are set but the URL is mqtt://; use mqtts://",
        ));
    }
    let credentials = r
        .credentials_file
        .and_then(|f| credentials("school_link.credentials_file", &resolve(base, &f), errs));
    // Design: the school broker's per-board logins are what keep a laptop on the LAN from
    // raising alarms on every board, so a board never joins a school path without its own.
    if credentials.is_none()
        && client_cert.is_none()
        && !errs.iter().any(|e| e.path.starts_with("school_link.c"))
    {
        errs.push(ConfigError::new(
            "school_link.credentials_file",
            "missing: the school path needs this board's own login (credentials_file) or client certificate (client_cert, client_key), so that only provisioned boards can raise alarms there",
        ));
    }
    let keep_alive = match r.keep_alive_s {
        None => Duration::from_secs(5),
        Some(n) if (2..=60).contains(&n) => Duration::from_secs(n.unsigned_abs()),
        Some(n) => {
            errs.push(ConfigError::new(
                "school_link.keep_alive_s",
                format!("{n} is out of range (2-60 seconds)"),
            ));
            Duration::from_secs(5)
        }
    };
    let duty_room = match r.role.as_deref() {
        None | Some("classroom") => false,
        Some("duty_room") => true,
        Some(other) => {
            errs.push(ConfigError::new(
                "school_link.role",
                format!("{other:?} is not a role; expected \"classroom\" or \"duty_room\""),
            ));
            false
        }
    };
    Some(SchoolLinkConfig {
        broker: broker?,
        ca_file,
        client_cert,
        client_key,
        credentials,
        keep_alive,
        duty_room,
    })
}

/// The school broker's ACL lets each board write only the topic named by its login, so
/// the login must be the board's device id.
pub(crate) fn check_login(link: &SchoolLinkConfig, device_id: &str, errs: &mut Vec<ConfigError>) {
    if let Some(c) = &link.credentials
        && c.username != device_id
    {
        errs.push(ConfigError::new(
            "school_link.credentials_file",
            format!(
                "{}: the username must be this board's device id ({device_id:?}): the school broker lets each board write only its own topic",
                c.file.display()
            ),
        ));
    }
}

/// A phone number as ModemManager takes it: an optional `+`, then 3-20 digits.
fn is_phone_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    (3..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

pub(super) fn alarm(r: RawAlarm, errs: &mut Vec<ConfigError>) -> AlarmConfig {
    let numbers = r.sms_numbers.unwrap_or_default();
    if numbers.len() > 10 {
        errs.push(ConfigError::new(
            "alarm.sms_numbers",
            format!("{} numbers; at most 10", numbers.len()),
        ));
    }
    for (i, n) in numbers.iter().enumerate() {
        if !is_phone_number(n) {
            // The number itself is not echoed: it is a person's.
            errs.push(ConfigError::new(
                format!("alarm.sms_numbers[{i}]"),
                "not a phone number; expected digits with an optional leading +, e.g. \"+8613800000000\"",
            ));
        }
    }
    let sms_after = match r.sms_after_s {
        None => Duration::from_secs(10),
        Some(n) if (2..=600).contains(&n) => Duration::from_secs(n.unsigned_abs()),
        Some(n) => {
            errs.push(ConfigError::new(
                "alarm.sms_after_s",
                format!("{n} is out of range (2-600 seconds)"),
            ));
            Duration::from_secs(10)
        }
    };
    AlarmConfig {
        sms_numbers: numbers,
        sms_after,
        sms_on_drill: r.sms_on_drill.unwrap_or(false),
    }
}

/// `[school_link]` and `[alarm]` from the demo's flags, checked like the file's.
///
/// # Errors
/// Every problem, named by the config field it stands for.
pub(crate) fn school_sections(
    broker_url: Option<String>,
    credentials_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    duty_room: bool,
    sms_numbers: Vec<String>,
    sms_after_s: Option<i64>,
) -> Result<(Option<SchoolLinkConfig>, AlarmConfig), Vec<ConfigError>> {
    let mut errs = Vec::new();
    let path = |p: Option<PathBuf>| p.map(|p| p.display().to_string());
    let link = school_link(
        RawSchoolLink {
            broker_url,
            ca_file: path(ca_file),
            credentials_file: path(credentials_file),
            role: duty_room.then(|| "duty_room".to_owned()),
            ..RawSchoolLink::default()
        },
        Path::new("."),
        &mut errs,
    );
    let alarm = alarm(
        RawAlarm {
            sms_numbers: Some(sms_numbers),
            sms_after_s,
            sms_on_drill: None,
        },
        &mut errs,
    );
    if errs.is_empty() {
        Ok((link, alarm))
    } else {
        Err(errs)
    }
}
