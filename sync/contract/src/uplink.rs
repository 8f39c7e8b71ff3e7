//! One body type per uplink stream (`ketang/v1/{school}/{device}/up/{stream}`), as
//! `docs/mqtt.md` describes them. `sync/tests/contract_schema.rs` compares the JSON Schema
//! generated from these types with `docs/asyncapi.yaml`, so the two cannot drift.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{AttendanceSource, AttendanceStatus, HealthWindow, LessonState};

/// `attendance`: a student's status in a lesson.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct AttendanceBody {
    /// "YYYY-MM-DD/P".
    pub lesson_id: String,
    /// The lesson's local date.
    pub date: NaiveDate,
    /// Period number.
    pub period: u8,
    /// Subject.
    pub subject: String,
    /// The lesson's roster.
    pub roster_id: String,
    /// The student.
    pub student_id: String,
    /// The status.
    pub status: AttendanceStatus,
    /// Where it came from.
    pub source: AttendanceSource,
    /// Card: the reader; face: "camera".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader: Option<String>,
    /// Face matches only: cosine similarity 0–1, three decimals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Manual only: the staff id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_by: Option<String>,
    /// Manual only: the status it replaced (`null`: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<Option<AttendanceStatus>>,
}

/// `health_check`: a morning, noon or other health check.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct HealthCheckBody {
    /// The student.
    pub student_id: String,
    /// The check it belongs to.
    pub window: HealthWindow,
    /// The temperature, one decimal (`null`: a teacher entered symptoms only).
    pub temp_c: Option<f64>,
    /// At or above the threshold, or a teacher said fever.
    pub fever: bool,
    /// The fever threshold in force.
    pub threshold_c: f64,
    /// Symptoms a teacher entered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symptoms: Option<Vec<String>>,
    /// "manual" when a teacher entered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The teacher, when entered by one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_by: Option<String>,
}

/// `alarm`: raised or cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AlarmBody {
    /// An alarm was raised.
    Raised {
        /// The alarm.
        alarm_id: String,
        /// What raised it (button name, "ui", "ui-drill").
        source: String,
        /// A drill, not an emergency.
        drill: bool,
        /// The staff id, when a logged-in teacher raised it.
        #[serde(skip_serializing_if = "Option::is_none")]
        raised_by: Option<String>,
    },
    /// An alarm was cleared by staff.
    Cleared {
        /// The alarm.
        alarm_id: String,
        /// What raised it.
        source: String,
        /// A drill, not an emergency.
        drill: bool,
        /// The staff id.
        cleared_by: String,
    },
}

/// `ack`: the answer to a downlink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AckBody {
    /// The downlink's id (`null`: it had none that could be read).
    pub downlink_id: Option<String>,
    /// Its kind (at most 32 characters).
    pub kind: String,
    /// Applied.
    pub ok: bool,
    /// Why not (bounded: see `ketang_sync::limits`).
    pub problems: Vec<String>,
    /// Seen before: this repeats the first answer.
    pub duplicate: bool,
}

/// `dropped`: records evicted under a budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DroppedBody {
    /// The stream.
    pub stream: String,
    /// Lowest evicted seq.
    pub first_seq: u64,
    /// Highest evicted seq.
    pub last_seq: u64,
    /// How many (seqs of other streams may lie between first and last).
    pub count: u64,
    /// Which budget was exceeded: max_age, max_rows or max_bytes.
    pub reason: String,
}

/// `rejected`: a record moved aside because it can never be delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct RejectedBody {
    /// Its seq.
    pub seq: u64,
    /// Its envelope id.
    pub id: String,
    /// Its stream.
    pub stream: String,
    /// Its envelope's size.
    pub bytes: u64,
    /// Why.
    pub reason: String,
}

/// `followup`: a follow-up opened or resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FollowupBody {
    /// Opened when a health-check window closed.
    Open {
        /// "YYYY-MM-DD/student".
        followup_id: String,
        /// The student.
        student_id: String,
        /// The day.
        date: NaiveDate,
        /// Why (absent_at_check, fever).
        reason: String,
    },
    /// Resolved by staff.
    Resolved {
        /// "YYYY-MM-DD/student".
        followup_id: String,
        /// The student.
        student_id: String,
        /// What the teacher found out (a ready-made reason's words, or the teacher's own).
        resolution: String,
        /// The ready-made reason, when the teacher picked one.
        #[serde(skip_serializing_if = "Option::is_none")]
        outcome: Option<FollowupOutcome>,
        /// For `sick_leave`: the illness, from a fixed list (因病缺勤追踪).
        #[serde(skip_serializing_if = "Option::is_none")]
        illness: Option<Illness>,
        /// When the student is expected back (leave outcomes).
        #[serde(skip_serializing_if = "Option::is_none")]
        return_date: Option<NaiveDate>,
        /// Whether the guardian was contacted.
        contacted_guardian: bool,
        /// The staff id.
        resolved_by: String,
    },
}

/// Why a followed-up student was not there: the ready-made reasons of the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FollowupOutcome {
    /// 病假.
    SickLeave,
    /// 事假.
    PersonalLeave,
    /// 已到校: arrived after the check.
    Arrived,
    /// 家长已知: the guardian knows where the student is.
    GuardianKnows,
    /// 联系不上: nobody could be reached (the school takes it further).
    Unreachable,
}

/// The illness behind a sick leave, for the 因病缺勤追踪 statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Illness {
    /// 发热.
    Fever,
    /// 咳嗽.
    Cough,
    /// 腹泻/呕吐.
    DiarrhoeaVomiting,
    /// 皮疹.
    Rash,
    /// 其他.
    Other,
}

/// What a teacher did to a lesson.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LessonEvent {
    /// Started early.
    Started,
    /// Ended now.
    Ended,
    /// Cancelled.
    Cancelled,
}

impl LessonEvent {
    /// Its name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Ended => "ended",
            Self::Cancelled => "cancelled",
        }
    }
}

/// `lesson`: what a teacher did to a lesson.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct LessonBody {
    /// "YYYY-MM-DD/P".
    pub lesson_id: String,
    /// Local date.
    pub date: NaiveDate,
    /// Period number.
    pub period: u8,
    /// Subject.
    pub subject: String,
    /// The lesson's roster.
    pub roster_id: String,
    /// What was done.
    pub action: LessonEvent,
    /// The lesson's state after it.
    pub state: LessonState,
    /// The staff id.
    pub by: Option<String>,
    /// Why (cancelling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `whiteboard`: a power or input change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WhiteboardEvent {
    /// Power on or standby.
    Power,
    /// Input source.
    Input,
}

/// Who changed the whiteboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WhiteboardSource {
    /// A teacher on the board.
    Teacher,
    /// The timetable's schedule.
    Schedule,
    /// A remote command.
    Cloud,
}

impl WhiteboardSource {
    /// Its name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Teacher => "teacher",
            Self::Schedule => "schedule",
            Self::Cloud => "cloud",
        }
    }
}

/// `whiteboard`: a power or input change of the flat panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct WhiteboardBody {
    /// Which.
    pub event: WhiteboardEvent,
    /// The new power state (power events).
    pub power: Option<bool>,
    /// The new input (input events).
    pub input: Option<String>,
    /// Who.
    pub source: WhiteboardSource,
    /// The staff id, if a person.
    pub by: Option<String>,
    /// The lesson then, if any.
    pub lesson_id: Option<String>,
}

/// `update`: a step of a system update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct UpdateBody {
    /// receiving, received, failed, installing, installed, refused, marked_good, rolled_back.
    pub state: String,
    /// upload, cloud or usb.
    pub source: Option<String>,
    /// SHA-256 of the bundle, when known.
    pub sha256: Option<String>,
    /// The slot it concerns, when known.
    pub slot: Option<String>,
    /// Why, for failures; what happened otherwise.
    pub detail: Option<String>,
}

/// The scope of class-level aggregates: always the class, never a student.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClassScope {
    /// The whole class.
    Class,
}

/// `behaviour`: a lesson's class-level behaviour aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct BehaviourBody {
    /// "YYYY-MM-DD/P".
    pub lesson_id: String,
    /// Local date.
    pub date: NaiveDate,
    /// Period number.
    pub period: u8,
    /// The lesson's roster.
    pub roster_id: String,
    /// Always the class.
    pub scope: ClassScope,
    /// Frames looked at.
    pub frames: u64,
    /// Hands raised (rising edges).
    pub hand_raise_events: u64,
    /// Share of frames where most heads were down (`null`: unknown).
    pub share_most_heads_down: Option<f64>,
    /// Heads-up rate (`null`: unknown).
    pub heads_up_rate: Option<f64>,
    /// Most people standing at once.
    pub standing_max: Option<u64>,
}

/// The sync figures in a telemetry record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TelemetrySync {
    /// connected, disconnected or off.
    pub state: String,
    /// Records published since start.
    pub published: u64,
    /// Records acknowledged since start.
    pub acked: u64,
    /// Connections made since start.
    pub connections: u64,
    /// Connection attempts since start.
    pub attempts: u64,
    /// Records moved aside since start.
    pub rejected: u64,
    /// Downlinks handled since start.
    pub downlinks: u64,
}

/// The inference figures in a telemetry record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TelemetryInference {
    /// Whether inference runs.
    pub enabled: bool,
    /// Frames looked at since start.
    pub camera_frames: u64,
}

/// Event counters since start in a telemetry record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TelemetryCounters {
    /// Card taps.
    pub card_taps: u64,
    /// Check-ins recorded.
    pub check_ins: u64,
    /// Health checks recorded.
    pub health_checks: u64,
    /// Alarms raised.
    pub alarms: u64,
    /// Inputs refused as malformed.
    pub rejected_inputs: u64,
}

/// One device in a telemetry record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TelemetryHardware {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// ok, fault, absent…
    pub state: String,
}

/// `telemetry`: the board's health, every `sync.telemetry_every_s`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TelemetryBody {
    /// Seconds since the daemon started.
    pub uptime_s: u64,
    /// CPU temperature.
    pub cpu_temp_c: Option<f64>,
    /// Share of CPU time busy since the last record (0–1).
    pub cpu_share: Option<f64>,
    /// Load average over a minute.
    pub load_1m: Option<f64>,
    /// The daemon's resident memory.
    pub rss_bytes: Option<u64>,
    /// Free space on the data partition.
    pub disk_free_bytes: Option<u64>,
    /// Whether the store found the disk full.
    pub store_disk_full: bool,
    /// Pending records per stream.
    pub outbox: BTreeMap<String, u64>,
    /// The link to the cloud.
    pub sync: TelemetrySync,
    /// Whether the clock is synchronised.
    pub clock_synced: bool,
    /// Inference.
    pub inference: TelemetryInference,
    /// Event counters since start.
    pub counters: TelemetryCounters,
    /// Every configured device.
    pub hardware: Vec<TelemetryHardware>,
}

/// `lesson_report`: the lesson report of `docs/domain.md` (学情报告): class-level numbers and
/// id lists only, made when a lesson is finalised and again (a new `revision`) when a teacher
/// corrects its attendance afterwards.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct LessonReport {
    /// "YYYY-MM-DD/P".
    pub lesson_id: String,
    /// The lesson's local date.
    pub date: NaiveDate,
    /// Period number.
    pub period: u8,
    /// Subject.
    pub subject: String,
    /// The teacher's display name from the timetable.
    pub teacher: String,
    /// The lesson's roster.
    pub roster_id: String,
    /// Timetabled start.
    pub starts_at: DateTime<FixedOffset>,
    /// Timetabled end.
    pub ends_at: DateTime<FixedOffset>,
    /// Counts and id lists by status.
    pub attendance: ReportAttendance,
    /// The day's health checks of the roster, by window (only windows with checks).
    pub health: BTreeMap<HealthWindow, ReportHealth>,
    /// The teacher cancelled the lesson.
    pub cancelled: bool,
    /// When the teacher started it early (`null`: on time).
    pub started_early_at: Option<DateTime<FixedOffset>>,
    /// When the teacher ended it early (`null`: on time).
    pub ended_early_at: Option<DateTime<FixedOffset>>,
    /// 1 at the end; +1 for each correction after it.
    pub revision: u32,
    /// Class-level behaviour (`null`: no camera frames were looked at).
    pub behaviour: Option<ReportBehaviour>,
    /// Talk time (`null`: no microphone).
    pub talk_time: Option<ReportTalkTime>,
    /// People seen against students marked in the room (absent: no camera frames).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_count: Option<ReportHeadCount>,
    /// Seconds the whiteboard was on during the lesson (absent: no whiteboard).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whiteboard_on_s: Option<u64>,
}

/// A lesson report's attendance: counts by status, and who was late, absent, on leave or sick.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ReportAttendance {
    /// Students on the roster.
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
    /// Without a status (only in a cancelled lesson).
    pub unmarked: u32,
    /// Who was late.
    pub late_ids: Vec<String>,
    /// Who was absent.
    pub absent_ids: Vec<String>,
    /// Who was on leave.
    pub leave_ids: Vec<String>,
    /// Who was sick.
    pub sick_ids: Vec<String>,
}

/// One health-check window of the roster in a lesson report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ReportHealth {
    /// Students of the roster checked.
    pub checked: u32,
    /// Of them, with a fever.
    pub fever: u32,
    /// Who had a fever.
    pub fever_ids: Vec<String>,
    /// Symptoms a teacher entered, by student.
    pub symptoms: BTreeMap<String, Vec<String>>,
    /// Who of the roster was not checked.
    pub unchecked_ids: Vec<String>,
}

/// A lesson report's behaviour figures (the class, never a student).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ReportBehaviour {
    /// Frames looked at.
    pub frames: u64,
    /// Hands raised (rising edges).
    pub hand_raise_events: u64,
    /// Share of frames where most heads were down, three decimals (`null`: unknown).
    pub share_most_heads_down: Option<f64>,
    /// Heads-up rate, three decimals (`null`: unknown).
    pub heads_up_rate: Option<f64>,
    /// Most people standing at once.
    pub standing_max: u64,
}

/// A lesson report's talk time (S-T analysis of who spoke).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ReportTalkTime {
    /// Seconds of speech.
    pub speech_s: f64,
    /// Of them, the teacher's.
    pub teacher_s: f64,
    /// S-T samples taken.
    pub samples: u64,
    /// Teacher share of samples (Rt).
    pub rt: f64,
    /// Changes between teacher and students per sample (Ch).
    pub ch: f64,
    /// lecture, practice, dialogue or mixed.
    pub lesson_type: String,
    /// How the teacher was told apart: `room_mic` (all speech counts as hers),
    /// `teacher_mic` (her wireless microphone on channel 0) or `voiceprint` (one room
    /// microphone, the enrolled teachers' voiceprints).
    pub method: String,
    /// Students' speaking turns (absent with `room_mic`: students cannot be told apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student_turns: Option<u64>,
}

/// A lesson report's head count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ReportHeadCount {
    /// Most people seen at once.
    pub people_max: u64,
    /// Students marked present or late.
    pub present: u64,
    /// The two differ: worth a look, never an accusation of anyone.
    pub mismatch: bool,
}
