//! Plain data that crosses the store's boundary. No rules live here: the daemon's engine
//! decides what a tap means, the store keeps what it is told, atomically.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

use crate::OutboxRecord;
pub use ketang_contract::{AttendanceSource, AttendanceStatus};

/// A student, with the card UIDs they own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudentRow {
    /// School-issued student number.
    pub id: String,
    /// Full name (never logged).
    pub name: String,
    /// Home class.
    pub class_id: String,
    /// "F" or "M", if known.
    #[serde(default)]
    pub gender: Option<String>,
    /// Card UIDs, uppercase hex (never logged).
    #[serde(default)]
    pub cards: Vec<String>,
    /// When a guardian consented to face recognition (RFC 3339), as the school's records
    /// say. Absent: no consent from the roster (a consent entered on the board by a
    /// technician stands; one that came from an earlier roster is withdrawn, with its
    /// templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_consent: Option<String>,
}

/// A class roster or a 走班 elective group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    /// Roster id.
    pub id: String,
    /// Display name, e.g. 七年级(3)班.
    pub name: String,
    /// "class" or "elective".
    pub kind: String,
    /// Student ids.
    pub members: Vec<String>,
}

/// One period of the weekly timetable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// 1 = Monday .. 7 = Sunday.
    pub weekday: u8,
    /// Period number within the day, from 1.
    pub period: u8,
    /// Local start time.
    pub starts: NaiveTime,
    /// Local end time.
    pub ends: NaiveTime,
    /// Subject, e.g. 数学.
    pub subject: String,
    /// Teacher's display name.
    pub teacher: String,
    /// Room, when it is not the home classroom.
    #[serde(default)]
    pub room: Option<String>,
    /// Which roster attends.
    pub roster_id: String,
}

/// A notice for the class board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeRow {
    /// Notice id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// Higher shows first.
    #[serde(default)]
    pub priority: i64,
    /// An emergency broadcast takes over the screen.
    #[serde(default)]
    pub emergency: bool,
    /// Shown from (inclusive).
    #[serde(default)]
    pub valid_from: Option<DateTime<FixedOffset>>,
    /// Shown until (exclusive).
    #[serde(default)]
    pub valid_until: Option<DateTime<FixedOffset>>,
}

/// Everything that defines a school for one board, applied atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolSnapshot {
    /// Students and their cards.
    pub students: Vec<StudentRow>,
    /// Rosters.
    pub rosters: Vec<Roster>,
    /// The weekly timetable.
    pub periods: Vec<Period>,
    /// Notices from the cloud.
    #[serde(default)]
    pub notices: Vec<NoticeRow>,
    /// Teachers who may unlock teacher mode on the board.
    #[serde(default)]
    pub staff: Vec<StaffRow>,
}

/// A teacher who may unlock teacher mode: by PIN (its Argon2 hash, PHC string, set in the
/// cloud; the PIN itself never reaches the device) or by staff card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffRow {
    /// Staff number.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Argon2 hash of the PIN (`$argon2id$...`); without one, only the card unlocks.
    #[serde(default)]
    pub pin_hash: Option<String>,
    /// Staff card UIDs, uppercase hex (never logged).
    #[serde(default)]
    pub cards: Vec<String>,
}

/// One lesson (a period on a date).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LessonRow {
    /// "YYYY-MM-DD/P".
    pub id: String,
    /// Local date.
    pub date: NaiveDate,
    /// Period number.
    pub period: u8,
    /// Subject.
    pub subject: String,
    /// Teacher.
    pub teacher: String,
    /// Roster.
    pub roster_id: String,
    /// Start.
    pub starts_at: DateTime<FixedOffset>,
    /// End.
    pub ends_at: DateTime<FixedOffset>,
    /// Where it stands.
    pub state: ketang_contract::LessonState,
}

/// What a card tap turned out to be (kept locally in `card_taps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CardTapOutcome {
    /// It checked the student in.
    CheckedIn,
    /// The student was already checked in for this lesson.
    Repeat,
    /// No student owns this card.
    UnknownCard,
    /// A known student who is not on this lesson's roster.
    NotOnRoster,
    /// A known student, with no lesson open for check-in.
    NoLesson,
    /// A teacher's staff card (offers teacher mode to the board's screen).
    Staff,
}

impl CardTapOutcome {
    /// Database value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CheckedIn => "checked_in",
            Self::Repeat => "repeat",
            Self::UnknownCard => "unknown_card",
            Self::NotOnRoster => "not_on_roster",
            Self::NoLesson => "no_lesson",
            Self::Staff => "staff",
        }
    }
}

/// One card tap as the device saw it.
#[derive(Debug, Clone)]
pub struct TapRecord {
    /// Reader name from the config.
    pub reader: String,
    /// UID, uppercase hex.
    pub uid: String,
    /// The owner, if known.
    pub student_id: Option<String>,
    /// The lesson it was for, if any.
    pub lesson_id: Option<String>,
    /// What it meant.
    pub outcome: CardTapOutcome,
    /// When.
    pub at: DateTime<FixedOffset>,
    /// Whether the clock was synced.
    pub clock_synced: bool,
}

/// A check-in to record: the first valid one per student and lesson wins.
#[derive(Debug, Clone)]
pub struct CheckIn {
    /// The lesson (created on first use).
    pub lesson: LessonRow,
    /// The student.
    pub student_id: String,
    /// Status to record.
    pub status: AttendanceStatus,
    /// Source.
    pub source: AttendanceSource,
    /// Who recorded it (teacher id for manual entries).
    pub recorded_by: Option<String>,
    /// The tap behind it, logged in the same transaction.
    pub tap: Option<TapRecord>,
    /// The uplink record, enqueued only if the check-in is recorded.
    pub outbox: OutboxRecord,
}

/// The result of [`CheckIn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckInOutcome {
    /// Recorded, with the outbox seq of its uplink record.
    Recorded {
        /// Outbox sequence number.
        seq: u64,
    },
    /// The student already had a status for this lesson; nothing changed.
    AlreadyRecorded {
        /// The status that stands.
        status: AttendanceStatus,
    },
}

/// A health-check result.
#[derive(Debug, Clone)]
pub struct HealthCheckRecord {
    /// Symptoms entered by the teacher (e.g. "cough"), if any.
    pub symptoms: Vec<String>,
    /// The student.
    pub student_id: String,
    /// The check it belongs to.
    pub window: crate::HealthWindow,
    /// Temperature, if measured.
    pub temp_c: Option<f64>,
    /// At or above the fever threshold.
    pub fever: bool,
    /// When.
    pub at: DateTime<FixedOffset>,
    /// Whether the clock was synced.
    pub clock_synced: bool,
}

/// An emergency alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmRecord {
    /// Alarm id (UUID).
    pub id: String,
    /// What raised it: a button name or "ui".
    pub source: String,
    /// A drill, marked as such everywhere.
    pub drill: bool,
    /// When.
    pub raised_at: DateTime<FixedOffset>,
    /// Whether the clock was synced.
    pub clock_synced: bool,
}

/// Attendance counts for one lesson (the contract's [`ketang_contract::AttendanceCounts`]).
pub type LessonSummary = ketang_contract::AttendanceCounts;
