//! The live events of the board's screen (`GET /api/v1/events`, `docs/api.md`): what the
//! classroom tells the screen as it happens. What anyone may see (outcomes) and what only the
//! board's own screen and unlocked sessions may see (names, temperatures) are decided here,
//! in one place.

use ketang_contract::{AttendanceStatus, HealthWindow};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// Something the board's screen shows as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum BoardEvent {
    /// Something changed: re-read the status.
    Changed,
    /// A card was tapped, or a face checked in.
    Tap {
        /// What came of it.
        outcome: TapOutcome,
        /// The student's status, when a check-in was recorded or repeated.
        status: Option<AttendanceStatus>,
        /// A face check-in (a card tap otherwise).
        face: bool,
        /// The student's name (trusted listeners only); `None` for an unknown card.
        name: Option<String>,
    },
    /// A health check was recorded.
    Health {
        /// At or above the threshold.
        fever: bool,
        /// The check it belongs to.
        window: HealthWindow,
        /// The student's name (trusted listeners only), if the store knows it.
        name: Option<String>,
        /// The reading, °C (trusted listeners only).
        temp_c: f64,
    },
    /// A thermometer reading could not be told apart between students (two of them were
    /// waiting at once): nothing was stored; the board asks them to go one at a time.
    HealthAmbiguous,
    /// A staff card was tapped: teacher mode is offered on the board's screen.
    StaffCard {
        /// The staff member's name (trusted listeners only).
        name: String,
    },
}

/// What came of a card tap or a face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TapOutcome {
    /// A check-in was recorded.
    CheckedIn,
    /// The student had checked in already; the first one stands.
    Repeat,
    /// Nobody's card.
    UnknownCard,
    /// A student who is not on this lesson's roster.
    NotOnRoster,
    /// No lesson is open for check-in.
    NoLesson,
}

impl BoardEvent {
    /// The SSE event name: `changed`, `tap`, `health`, `health_ambiguous`, `staff_card`.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Changed => "changed",
            Self::Tap { .. } => "tap",
            Self::Health { .. } => "health",
            Self::HealthAmbiguous => "health_ambiguous",
            Self::StaffCard { .. } => "staff_card",
        }
    }

    /// The event's data as JSON; names and temperatures only when `trusted`.
    #[must_use]
    pub fn to_json(&self, trusted: bool) -> String {
        let mut out = Map::new();
        let mut put = |k: &str, v: Value| {
            out.insert(k.to_owned(), v);
        };
        match self {
            Self::Changed | Self::HealthAmbiguous => {}
            Self::Tap {
                outcome,
                status,
                face,
                name,
            } => {
                put("outcome", json!(outcome));
                if let Some(s) = status {
                    put("status", json!(s));
                }
                if *face {
                    put("source", json!("face"));
                }
                if trusted && let Some(n) = name {
                    put("name", json!(n));
                }
            }
            Self::Health {
                fever,
                window,
                name,
                temp_c,
            } => {
                put("fever", json!(fever));
                put("window", json!(window));
                if trusted {
                    put("name", json!(name));
                    put("temp_c", json!((temp_c * 10.0).round() / 10.0));
                }
            }
            Self::StaffCard { name } => {
                if trusted {
                    put("name", json!(name));
                }
            }
        }
        Value::Object(out).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(e: &BoardEvent, trusted: bool) -> Value {
        serde_json::from_str(&e.to_json(trusted)).unwrap_or_default()
    }

    #[test]
    fn names_and_temperatures_reach_trusted_listeners_only() {
        let tap = BoardEvent::Tap {
            outcome: TapOutcome::CheckedIn,
            status: Some(AttendanceStatus::Late),
            face: true,
            name: Some("张三".into()),
        };
        assert_eq!(
            parsed(&tap, false),
            json!({"outcome": "checked_in", "status": "late", "source": "face"})
        );
        assert_eq!(parsed(&tap, true)["name"], "张三");
        let health = BoardEvent::Health {
            fever: true,
            window: HealthWindow::Morning,
            name: None,
            temp_c: 37.86,
        };
        assert_eq!(
            parsed(&health, false),
            json!({"fever": true, "window": "morning"})
        );
        assert_eq!(
            parsed(&health, true),
            json!({"fever": true, "window": "morning", "name": null, "temp_c": 37.9})
        );
        let staff = BoardEvent::StaffCard {
            name: "王老师".into(),
        };
        assert_eq!(parsed(&staff, false), json!({}));
        assert_eq!(staff.kind(), "staff_card");
        assert_eq!(BoardEvent::Changed.to_json(true), "{}");
    }

    #[test]
    fn a_card_tap_has_no_source_and_an_unknown_card_no_name() {
        let tap = BoardEvent::Tap {
            outcome: TapOutcome::UnknownCard,
            status: None,
            face: false,
            name: None,
        };
        assert_eq!(parsed(&tap, true), json!({"outcome": "unknown_card"}));
    }
}
