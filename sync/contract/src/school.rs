//! The school's own alarm path (`docs/mqtt.md`, "The school path"): each board keeps its
//! alarms now as one retained message on the school's local broker, and every board and
//! the duty room read all of them. No cloud is involved.

use serde::{Deserialize, Serialize};

/// Most alarms one board announces at once (a real alarm and a drill: two).
pub const MAX_SCHOOL_ALARMS: usize = 8;
/// Largest school-alarm message a board reads; anything longer is refused unread.
pub const MAX_SCHOOL_ALARM_BYTES: usize = 8 * 1024;
/// Longest id or name in a school-alarm message, in characters.
const MAX_FIELD_CHARS: usize = 64;

/// `ketang/v1/{school_id}/{device_id}/school/alarm`, retained, QoS 1: the board's alarms
/// now. Each message replaces the board's previous one; an empty `alarms` means none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchoolAlarmState {
    /// Format version, 1.
    pub v: u8,
    /// The school (the same as in the topic).
    pub school_id: String,
    /// The board (the same as in the topic).
    pub device_id: String,
    /// The classroom the board is at.
    pub classroom_id: String,
    /// The class or room name shown on the other boards (e.g. "三年级2班").
    pub class_name: String,
    /// The board's role: a classroom board or the duty room's.
    pub role: SchoolRole,
    /// Alarms raised on this board and not cleared, at most 8.
    pub alarms: Vec<SchoolAlarm>,
    /// When the board wrote this state (RFC 3339).
    pub at: String,
}

/// A board's role on the school path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SchoolRole {
    /// A classroom's board.
    Classroom,
    /// The duty room's (门卫室) board or screen: shows every classroom's alarms.
    DutyRoom,
}

/// One active alarm on the school path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchoolAlarm {
    /// The alarm (the same id as on the `alarm` uplink stream).
    pub alarm_id: String,
    /// A drill, not an emergency.
    pub drill: bool,
    /// What raised it (button name, "ui", "ui-drill").
    pub source: String,
    /// When (RFC 3339).
    pub raised_at: String,
}

impl SchoolAlarmState {
    /// Reads a message from `device` (the topic's) of `school`; every problem is named.
    ///
    /// # Errors
    /// Too long, not JSON of this shape, another school or device than the topic's, too
    /// many alarms or a field too long.
    pub fn parse(bytes: &[u8], school: &str, device: &str) -> Result<Self, String> {
        if bytes.len() > MAX_SCHOOL_ALARM_BYTES {
            return Err(format!(
                "{} bytes, over the {MAX_SCHOOL_ALARM_BYTES}-byte limit",
                bytes.len()
            ));
        }
        let s: Self = serde_json::from_slice(bytes).map_err(|e| {
            // serde names unknown fields and variants: keep only a short excerpt.
            format!(
                "not a school alarm state: {}",
                crate::bounded_serde_message(&e.to_string())
            )
        })?;
        if s.v != 1 {
            return Err(format!("version {} is not 1", s.v));
        }
        if s.school_id != school {
            return Err("school_id is not this school's".into());
        }
        if s.device_id != device {
            return Err("device_id differs from the topic's".into());
        }
        if s.alarms.len() > MAX_SCHOOL_ALARMS {
            return Err(format!(
                "{} alarms, over the limit of {MAX_SCHOOL_ALARMS}",
                s.alarms.len()
            ));
        }
        let fields = [
            ("classroom_id", &s.classroom_id),
            ("class_name", &s.class_name),
            ("at", &s.at),
        ]
        .into_iter()
        .chain(s.alarms.iter().flat_map(|a| {
            [
                ("alarm_id", &a.alarm_id),
                ("source", &a.source),
                ("raised_at", &a.raised_at),
            ]
        }));
        for (name, value) in fields {
            if value.chars().count() > MAX_FIELD_CHARS {
                return Err(format!(
                    "{name} is longer than {MAX_FIELD_CHARS} characters"
                ));
            }
            if value.chars().any(char::is_control) {
                return Err(format!("{name} holds control characters"));
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> SchoolAlarmState {
        SchoolAlarmState {
            v: 1,
            school_id: "hf-1".into(),
            device_id: "kt-1".into(),
            classroom_id: "room-204".into(),
            class_name: "三年级2班".into(),
            role: SchoolRole::Classroom,
            alarms: vec![SchoolAlarm {
                alarm_id: "a1".into(),
                drill: false,
                source: "button".into(),
                raised_at: "2026-12-06T09:00:00+08:00".into(),
            }],
            at: "2026-12-06T09:00:00+08:00".into(),
        }
    }

    #[test]
    fn a_state_reads_back_only_for_its_school_and_topic_device() {
        let bytes = serde_json::to_vec(&state()).unwrap();
        assert_eq!(
            SchoolAlarmState::parse(&bytes, "hf-1", "kt-1").unwrap(),
            state()
        );
        assert!(
            SchoolAlarmState::parse(&bytes, "hf-2", "kt-1")
                .unwrap_err()
                .contains("school_id")
        );
        assert!(
            SchoolAlarmState::parse(&bytes, "hf-1", "kt-2")
                .unwrap_err()
                .contains("topic")
        );
    }

    #[test]
    fn oversized_or_odd_states_are_refused_with_the_reason() {
        let mut s = state();
        s.class_name = "x".repeat(65);
        let e = SchoolAlarmState::parse(&serde_json::to_vec(&s).unwrap(), "hf-1", "kt-1");
        assert!(e.unwrap_err().contains("class_name"));
        let mut s = state();
        s.alarms = vec![s.alarms[0].clone(); 9];
        let e = SchoolAlarmState::parse(&serde_json::to_vec(&s).unwrap(), "hf-1", "kt-1");
        assert!(e.unwrap_err().contains("9 alarms"));
        let e = SchoolAlarmState::parse(&vec![b' '; 9000], "hf-1", "kt-1");
        assert!(e.unwrap_err().contains("9000 bytes"));
        let e = SchoolAlarmState::parse(br#"{"v":1}"#, "hf-1", "kt-1");
        assert!(e.unwrap_err().contains("not a school alarm state"));
        let long = format!(r#"{{"{}":1}}"#, "k".repeat(5000));
        let e = SchoolAlarmState::parse(long.as_bytes(), "hf-1", "kt-1").unwrap_err();
        assert!(e.chars().count() < 300, "{e}");
    }

    proptest::proptest! {
        /// Whatever arrives on the school path: no panic; a state that is read holds to
        /// the limits; a refusal is short and never quotes the message.
        #[test]
        fn any_message_is_read_within_limits_or_refused_briefly(
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..10_000),
            name in "\\PC{0,100}",
            n in 0usize..12,
            cut in 0usize..400,
        ) {
            let mut s = state();
            s.class_name = name.clone();
            s.alarms = vec![s.alarms[0].clone(); n];
            let bytes = serde_json::to_vec(&s).unwrap();
            let cut = bytes[..cut.min(bytes.len())].to_vec();
            for input in [junk, bytes, cut] {
                match SchoolAlarmState::parse(&input, "hf-1", "kt-1") {
                    Ok(s) => {
                        proptest::prop_assert!(s.alarms.len() <= MAX_SCHOOL_ALARMS);
                        proptest::prop_assert!(s.class_name.chars().count() <= 64);
                        proptest::prop_assert_eq!(&s.device_id, "kt-1");
                    }
                    Err(e) => {
                        proptest::prop_assert!(e.len() <= 300, "{} chars: {}", e.len(), e);
                        if name.chars().count() > 8 {
                            proptest::prop_assert!(!e.contains(&name), "the refusal quotes the input: {}", e);
                        }
                    }
                }
            }
        }
    }
}
