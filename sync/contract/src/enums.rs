//! The domain's enums, each defined once: stored as these strings, sent as these strings,
//! accepted from the HTTP API as these strings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A value that is not one of an enum's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What was being parsed ("attendance status").
    pub what: &'static str,
    /// The names it accepts.
    pub expected: &'static str,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a {} (one of {})", self.what, self.expected)
    }
}

impl std::error::Error for ParseError {}

/// An attendance status of a student in a lesson.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttendanceStatus {
    /// On time.
    Present,
    /// After the grace period.
    Late,
    /// Not there, no leave.
    Absent,
    /// Approved leave.
    Leave,
    /// Sick.
    Sick,
}

impl AttendanceStatus {
    /// Every status, in the order the UI lists them.
    pub const ALL: [Self; 5] = [
        Self::Present,
        Self::Late,
        Self::Absent,
        Self::Leave,
        Self::Sick,
    ];

    /// Its name (database and wire).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Present => "present",
            Self::Late => "late",
            Self::Absent => "absent",
            Self::Leave => "leave",
            Self::Sick => "sick",
        }
    }

    /// Parses its name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::str::FromStr for AttendanceStatus {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::parse(s).ok_or(ParseError {
            what: "attendance status",
            expected: "present, late, absent, leave, sick",
        })
    }
}

/// Where an attendance status came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttendanceSource {
    /// A card reader.
    Card,
    /// Face recognition.
    Face,
    /// The teacher.
    Manual,
    /// A rule of the engine (e.g. absent at lesson end).
    System,
}

impl AttendanceSource {
    /// Its name (database and wire).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Face => "face",
            Self::Manual => "manual",
            Self::System => "system",
        }
    }

    /// Parses its name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Card, Self::Face, Self::Manual, Self::System]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// Attendance counts of one lesson (the status page, the board, the lesson summary).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AttendanceCounts {
    /// Students on the lesson's roster.
    pub roster: u32,
    /// Present.
    pub present: u32,
    /// Late.
    pub late: u32,
    /// Absent.
    pub absent: u32,
    /// On leave.
    pub leave: u32,
    /// Sick.
    pub sick: u32,
    /// No status yet.
    pub unmarked: u32,
}

/// Where a lesson stands at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LessonState {
    /// Before check-in opens.
    Upcoming,
    /// Check-in is open, before the start.
    Open,
    /// Started.
    InProgress,
    /// Over.
    Ended,
    /// Cancelled by the teacher.
    Cancelled,
}

impl LessonState {
    /// Every state.
    pub const ALL: [Self; 5] = [
        Self::Upcoming,
        Self::Open,
        Self::InProgress,
        Self::Ended,
        Self::Cancelled,
    ];

    /// Its name (database, wire, status page).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Upcoming => "upcoming",
            Self::Open => "open",
            Self::InProgress => "in_progress",
            Self::Ended => "ended",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses its name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for LessonState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_match_serde() {
        for s in AttendanceStatus::ALL {
            assert_eq!(AttendanceStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(serde_json::json!(s.as_str()))
            );
        }
        for s in LessonState::ALL {
            assert_eq!(LessonState::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(serde_json::json!(s.as_str()))
            );
        }
        for s in ["card", "face", "manual", "system"] {
            assert_eq!(
                AttendanceSource::parse(s).map(AttendanceSource::as_str),
                Some(s)
            );
        }
        assert!("tardy".parse::<AttendanceStatus>().is_err());
    }
}

/// The health check a reading belongs to (晨午检): by the time of day and the school's
/// configured windows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum HealthWindow {
    /// The morning check (晨检).
    Morning,
    /// The noon check (午检).
    Noon,
    /// The evening check of boarding schools (晚检), when the school has one.
    Evening,
    /// Outside the windows (a re-check, a teacher's entry later in the day).
    Other,
}

impl HealthWindow {
    /// Every window, in the day's order.
    pub const ALL: [Self; 4] = [Self::Morning, Self::Noon, Self::Evening, Self::Other];

    /// Its name (database and wire).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Morning => "morning",
            Self::Noon => "noon",
            Self::Evening => "evening",
            Self::Other => "other",
        }
    }

    /// Parses its name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for HealthWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for HealthWindow {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::parse(s).ok_or(ParseError {
            what: "health check window",
            expected: "morning, noon, evening, other",
        })
    }
}
