//! Downlink messages: parsing and validation. Nothing here changes state; every message,
//! valid or not, is answered on `up/ack` by the worker.

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;

use super::topics::Target;
use crate::limits::excerpt;
use crate::{DownlinkData, ENVELOPE_SCHEMA, LeaveRow, NoticeRow, Period, Roster, StudentRow};
use ketang_contract::bounded_serde_message;

/// Largest downlink payload accepted (a roster of a large school fits easily).
pub const MAX_DOWNLINK_BYTES: usize = 1024 * 1024;

/// The kinds a device understands.
pub const KINDS: [&str; 10] = [
    "roster",
    "timetable",
    "calendar",
    "honours",
    "duty",
    "homework",
    "leave",
    "notice",
    "config",
    "command",
];

/// A validated downlink message.
#[derive(Debug, Clone, PartialEq)]
pub struct Downlink {
    /// Message id, unique per message; the ack names it.
    pub id: String,
    /// The kind (the topic's last segment).
    pub kind: String,
    /// What it carries.
    pub body: DownlinkBody,
}

/// What a downlink carries.
#[derive(Debug, Clone, PartialEq)]
pub enum DownlinkBody {
    /// Data the store applies (roster, timetable, leave, notice).
    Data(DownlinkData),
    /// A configuration change (not applied remotely by this version).
    Config(serde_json::Value),
    /// An action for the daemon.
    Command(Command),
}

/// A command for the daemon, e.g. `whiteboard.power` with `{"on": true}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// Command name.
    pub name: String,
    /// Arguments.
    #[serde(default)]
    pub args: serde_json::Value,
}

/// Why a message was refused; `id` and `kind` when they could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The message id, if readable.
    pub id: Option<String>,
    /// The kind from the topic.
    pub kind: String,
    /// Every problem found.
    pub problems: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvelope {
    schema: String,
    id: String,
    kind: String,
    school_id: String,
    #[serde(default)]
    device_id: Option<String>,
    issued_at: DateTime<FixedOffset>,
    #[serde(default)]
    expires_at: Option<DateTime<FixedOffset>>,
    body: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RosterBody {
    version: u64,
    students: Vec<StudentRow>,
    rosters: Vec<Roster>,
    #[serde(default)]
    staff: Option<Vec<crate::StaffRow>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimetableBody {
    version: u64,
    periods: Vec<Period>,
}

fn valid_id(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Parses and validates a downlink on topic kind `kind` addressed to `target`.
///
/// # Errors
/// [`Rejected`] with every problem found.
pub fn parse_downlink(
    kind: &str,
    target: &Target,
    payload: &[u8],
    school_id: &str,
    device_id: &str,
    now: DateTime<FixedOffset>,
) -> Result<Downlink, Rejected> {
    let reject = |id: Option<String>, problems: Vec<String>| Rejected {
        id,
        kind: kind.to_owned(),
        problems,
    };
    // Recovers the id of a refused message so the ack can name it.
    let recover_id = || {
        serde_json::from_slice::<serde_json::Value>(payload)
            .ok()
            .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
            .filter(|i| valid_id(i))
    };
    if payload.len() > MAX_DOWNLINK_BYTES {
        return Err(reject(
            recover_id(),
            vec![format!(
                "payload of {} bytes exceeds the {MAX_DOWNLINK_BYTES}-byte limit",
                payload.len()
            )],
        ));
    }
    let raw: RawEnvelope = match serde_json::from_slice(payload) {
        Ok(r) => r,
        Err(e) => {
            return Err(reject(
                recover_id(),
                vec![format!(
                    "invalid envelope: {}",
                    bounded_serde_message(&e.to_string())
                )],
            ));
        }
    };
    if !valid_id(&raw.id) {
        return Err(reject(
            None,
            vec!["id must be 1-128 characters of A-Z a-z 0-9 - _ . :".into()],
        ));
    }
    let mut problems = Vec::new();
    if raw.schema != ENVELOPE_SCHEMA {
        problems.push(format!(
            "schema {} is not {ENVELOPE_SCHEMA:?}",
            excerpt(&raw.schema)
        ));
    }
    if !KINDS.contains(&kind) {
        problems.push(format!(
            "kind {} is unknown; expected one of {}",
            excerpt(kind),
            KINDS.join(", ")
        ));
    }
    if raw.kind != kind {
        problems.push(format!(
            "envelope kind {} does not match the topic's {}",
            excerpt(&raw.kind),
            excerpt(kind)
        ));
    }
    if raw.school_id != school_id {
        problems.push(format!(
            "school_id {} is not this device's school",
            excerpt(&raw.school_id)
        ));
    }
    match (&raw.device_id, target) {
        (Some(d), _) if d != device_id => {
            problems.push(format!("device_id {} is not this device", excerpt(d)))
        }
        (None, Target::Device) => problems.push("device_id is missing on a device topic".into()),
        _ => {}
    }
    if let Some(exp) = raw.expires_at {
        if exp <= now {
            problems.push(format!("expired at {exp}; not applied"));
        } else if exp <= raw.issued_at {
            problems.push("expires_at is not after issued_at".into());
        }
    }
    if !problems.is_empty() {
        return Err(reject(Some(raw.id), problems));
    }
    fn body<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
        serde_json::from_value(v)
            .map_err(|e| format!("invalid body: {}", bounded_serde_message(&e.to_string())))
    }
    let parsed = match kind {
        "roster" => body::<RosterBody>(raw.body).and_then(|b| {
            if b.version == 0 {
                return Err("version must be at least 1".into());
            }
            Ok(DownlinkBody::Data(DownlinkData::Roster {
                version: b.version,
                students: b.students,
                rosters: b.rosters,
                staff: b.staff,
            }))
        }),
        "timetable" => body::<TimetableBody>(raw.body).and_then(|b| {
            if b.version == 0 {
                return Err("version must be at least 1".into());
            }
            Ok(DownlinkBody::Data(DownlinkData::Timetable {
                version: b.version,
                periods: b.periods,
            }))
        }),
        "leave" => body::<LeaveRow>(raw.body).map(|l| DownlinkBody::Data(DownlinkData::Leave(l))),
        "notice" => {
            body::<NoticeRow>(raw.body).map(|n| DownlinkBody::Data(DownlinkData::Notice(n)))
        }
        "calendar" => body::<crate::calendar::CalendarDoc>(raw.body).and_then(|c| {
            if c.version == 0 {
                return Err("version must be at least 1".into());
            }
            Ok(DownlinkBody::Data(DownlinkData::Calendar(c)))
        }),
        "honours" => body::<crate::content::HonoursDoc>(raw.body)
            .map(|d| DownlinkBody::Data(DownlinkData::Honours(d))),
        "duty" => body::<crate::content::DutyDoc>(raw.body)
            .map(|d| DownlinkBody::Data(DownlinkData::Duty(d))),
        "homework" => body::<crate::content::HomeworkDoc>(raw.body)
            .map(|d| DownlinkBody::Data(DownlinkData::Homework(d))),
        "config" => Ok(DownlinkBody::Config(raw.body)),
        _ => body::<Command>(raw.body).map(DownlinkBody::Command),
    };
    match parsed {
        Ok(body) => Ok(Downlink {
            id: raw.id,
            kind: kind.to_owned(),
            body,
        }),
        Err(p) => Err(reject(Some(raw.id), vec![p])),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap()
    }

    fn env(kind: &str, body: serde_json::Value) -> serde_json::Value {
        json!({
            "schema": "ketang.v1", "id": "dl-1", "kind": kind, "school_id": "hf-1", "device_id": "kt-1",
            "issued_at": "2026-11-23T07:59:00+08:00", "body": body,
        })
    }

    fn parse(kind: &str, v: &serde_json::Value) -> Result<Downlink, Rejected> {
        parse_downlink(
            kind,
            &Target::Device,
            &serde_json::to_vec(v).unwrap(),
            "hf-1",
            "kt-1",
            now(),
        )
    }

    #[test]
    fn a_valid_notice_parses() {
        let d = parse(
            "notice",
            &env(
                "notice",
                json!({"id": "n1", "title": "停课", "body": "明天停课"}),
            ),
        )
        .unwrap();
        assert_eq!(d.id, "dl-1");
        assert!(matches!(
            d.body,
            DownlinkBody::Data(DownlinkData::Notice(_))
        ));
    }

    #[test]
    fn wrong_school_device_and_kind_are_all_reported_with_the_id() {
        let mut v = env("roster", json!({}));
        v["school_id"] = json!("hf-2");
        v["device_id"] = json!("kt-9");
        let r = parse("timetable", &v).unwrap_err();
        assert_eq!(r.id.as_deref(), Some("dl-1"));
        assert_eq!(r.problems.len(), 3, "{:?}", r.problems);
    }

    #[test]
    fn an_expired_command_is_not_applied() {
        let mut v = env(
            "command",
            json!({"name": "whiteboard.power", "args": {"on": true}}),
        );
        v["expires_at"] = json!("2026-11-23T07:59:30+08:00");
        let r = parse("command", &v).unwrap_err();
        assert!(r.problems[0].contains("expired"), "{:?}", r.problems);
    }

    #[test]
    fn malformed_json_is_rejected_and_the_id_recovered_when_possible() {
        let r = parse_downlink(
            "notice",
            &Target::Device,
            b"{not json",
            "hf-1",
            "kt-1",
            now(),
        )
        .unwrap_err();
        assert_eq!(r.id, None);
        let r = parse("notice", &json!({"id": "dl-7", "kind": "notice"})).unwrap_err();
        assert_eq!(r.id.as_deref(), Some("dl-7"));
        assert!(r.problems[0].contains("invalid envelope"));
    }

    #[test]
    fn serde_refusals_quote_names_and_values_only_as_short_excerpts() {
        // Found by the fuzz test in CI: an unknown field of 900 `{` came back whole in
        // the refusal (and so in the ack and the log).
        let long = "{".repeat(900);
        let mut v = env("notice", json!({"id": "n1", "title": "t", "body": "b"}));
        v[long.as_str()] = json!(1);
        let r = parse("notice", &v).unwrap_err();
        let p = &r.problems[0];
        assert!(p.contains("unknown field"), "{p}");
        assert!(p.contains("(900 characters)"), "{p}");
        assert!(p.chars().count() < 300, "{} chars: {p}", p.chars().count());
        // The same for a value inside the body.
        let v = env(
            "notice",
            json!({"id": "n1", "title": ["x"], "body": "b", "priority": "z".repeat(500)}),
        );
        let p = &parse("notice", &v).unwrap_err().problems[0];
        assert!(p.chars().count() < 300, "{} chars: {p}", p.chars().count());
    }

    #[test]
    fn oversized_payloads_are_rejected_before_parsing() {
        let big = vec![b' '; MAX_DOWNLINK_BYTES + 1];
        let r = parse_downlink("notice", &Target::Device, &big, "hf-1", "kt-1", now()).unwrap_err();
        assert!(r.problems[0].contains("exceeds"));
    }

    #[test]
    fn school_wide_messages_need_no_device_id() {
        let mut v = env("notice", json!({"id": "n1", "title": "t", "body": "b"}));
        v.as_object_mut().unwrap().remove("device_id");
        assert!(
            parse_downlink(
                "notice",
                &Target::School,
                &serde_json::to_vec(&v).unwrap(),
                "hf-1",
                "kt-1",
                now()
            )
            .is_ok()
        );
        assert!(parse("notice", &v).is_err());
    }

    #[test]
    fn a_bad_body_names_the_field() {
        let r = parse(
            "roster",
            &env(
                "roster",
                json!({"version": 2, "students": [{"id": "S1"}], "rosters": []}),
            ),
        )
        .unwrap_err();
        assert!(
            r.problems[0].contains("missing field `name`"),
            "{:?}",
            r.problems
        );
        let r = parse(
            "roster",
            &env(
                "roster",
                json!({"version": 0, "students": [], "rosters": []}),
            ),
        )
        .unwrap_err();
        assert!(r.problems[0].contains("version"), "{:?}", r.problems);
    }
}
