//! What the classroom answers to each staff action, as types. `api.rs` serialises them to
//! the JSON `docs/api.md` shows; nothing here knows HTTP.

use ketang_sync::{AttendanceStatus, LessonState};
use serde::Serialize;

/// The answer to a staff action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum Reply {
    /// A lesson was started, ended or cancelled.
    Lesson {
        /// The lesson.
        lesson_id: String,
        /// Its state now.
        state: LessonState,
    },
    /// A teacher set a student's status.
    Attendance {
        /// The lesson.
        lesson_id: String,
        /// The student.
        student_id: String,
        /// The status set.
        status: AttendanceStatus,
        /// The status it replaced.
        previous: Option<AttendanceStatus>,
        /// The lesson had ended: its report was made again.
        report_revised: bool,
    },
    /// A follow-up was resolved.
    Followup {
        /// The follow-up.
        followup_id: String,
        /// Always "resolved".
        state: &'static str,
    },
    /// An alarm was raised, found already active, or cleared.
    Alarm(AlarmReply),
    /// A notice was posted or withdrawn.
    Notice {
        /// The notice.
        notice_id: String,
        /// Present (true) when it was withdrawn.
        #[serde(skip_serializing_if = "Option::is_none")]
        withdrawn: Option<bool>,
    },
    /// Leave was entered.
    Leave {
        /// The leave record.
        leave_id: String,
    },
    /// The whiteboard was switched: what it reported back.
    Whiteboard {
        /// Power, if switched.
        #[serde(skip_serializing_if = "Option::is_none")]
        power: Option<bool>,
        /// Input, if switched.
        #[serde(skip_serializing_if = "Option::is_none")]
        input: Option<String>,
    },
    /// A device's self-test.
    SelfTest {
        /// The device.
        device: String,
        /// Whether it passed.
        ok: bool,
        /// How long it took.
        ms: u64,
        /// What was seen.
        detail: String,
    },
    /// Face-recognition consent recorded or withdrawn.
    Consent {
        /// The student.
        student_id: String,
        /// Granted (true) or withdrawn.
        consent: bool,
        /// When it was granted.
        #[serde(skip_serializing_if = "Option::is_none")]
        granted_at: Option<String>,
        /// Templates deleted by a withdrawal.
        #[serde(skip_serializing_if = "Option::is_none")]
        templates_deleted: Option<u32>,
    },
    /// A face template was enrolled.
    Enrolled {
        /// The student.
        student_id: String,
        /// Always true.
        enrolled: bool,
        /// The embedding model.
        model: &'static str,
    },
    /// A teacher's voiceprint was enrolled or deleted.
    Voice {
        /// Whether she has one now.
        enrolled: bool,
        /// Seconds of speech it was made from.
        #[serde(skip_serializing_if = "Option::is_none")]
        speech_s: Option<f64>,
    },
    /// A voice enrolment that was listening stopped; nothing was stored.
    VoiceEnrolCancelled {
        /// Always true (there was one, and it stopped).
        cancelled: bool,
    },
    /// Symptoms were recorded.
    Symptoms {
        /// The student.
        student_id: String,
        /// morning / noon / other.
        window: ketang_sync::HealthWindow,
        /// Whether it counts as fever.
        fever: bool,
    },
}

/// The answer to raising or clearing an alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AlarmReply {
    /// The alarm.
    pub(crate) alarm_id: String,
    /// raised, already_active or cleared.
    pub(crate) state: &'static str,
    /// A drill (raising).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) drill: Option<bool>,
    /// Whether the siren stays on (clearing: another alarm is active).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) siren: Option<bool>,
    /// `false` when the disk was full: kept in memory until there is room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stored: Option<bool>,
    /// On a full disk: whether it was published directly to the broker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sent_direct: Option<bool>,
}
