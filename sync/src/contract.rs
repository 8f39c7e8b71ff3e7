//! The typed uplink contract (`ketang_contract`) bound to the outbox: each body type knows
//! its stream, so a record can only be made with the body its stream carries.

use chrono::{DateTime, FixedOffset};
use ketang_contract::{
    AckBody, AlarmBody, AttendanceBody, AttendanceSource, AttendanceStatus, BehaviourBody,
    DroppedBody, FollowupBody, HealthCheckBody, LessonBody, LessonEvent, LessonReport,
    RejectedBody, TelemetryBody, UpdateBody, WhiteboardBody,
};
use serde::Serialize;

use crate::{Eviction, LessonRow, OutboxRecord, Stream};

/// A body of one uplink stream.
pub trait Body: Serialize {
    /// The stream it goes on.
    const STREAM: Stream;
}

macro_rules! bodies {
    ($($t:ty => $s:ident),* $(,)?) => {
        $(impl Body for $t {
            const STREAM: Stream = Stream::$s;
        })*
    };
}

bodies! {
    AttendanceBody => Attendance,
    HealthCheckBody => HealthCheck,
    AlarmBody => Alarm,
    AckBody => Ack,
    DroppedBody => Dropped,
    RejectedBody => Rejected,
    FollowupBody => Followup,
    LessonBody => Lesson,
    WhiteboardBody => Whiteboard,
    UpdateBody => Update,
    BehaviourBody => Behaviour,
    TelemetryBody => Telemetry,
    LessonReport => LessonReport,
}

impl OutboxRecord {
    /// A record of `body` on its stream.
    #[must_use]
    #[allow(
        clippy::expect_used,
        reason = "serialising cannot fail: bodies are structs of strings, numbers, booleans, \
                  dates, options, vectors and string-keyed maps"
    )]
    pub fn new<B: Body>(body: &B, captured_at: DateTime<FixedOffset>, clock_synced: bool) -> Self {
        Self {
            stream: B::STREAM,
            captured_at,
            clock_synced,
            body: serde_json::to_value(body).expect("a contract body serialises"),
        }
    }
}

impl LessonRow {
    /// The attendance body of `student_id` in this lesson; the caller adds what its source
    /// carries (reader, confidence, recorded_by, previous).
    #[must_use]
    pub fn attendance(
        &self,
        student_id: &str,
        status: AttendanceStatus,
        source: AttendanceSource,
    ) -> AttendanceBody {
        AttendanceBody {
            lesson_id: self.id.clone(),
            date: self.date,
            period: self.period,
            subject: self.subject.clone(),
            roster_id: self.roster_id.clone(),
            student_id: student_id.to_owned(),
            status,
            source,
            reader: None,
            confidence: None,
            recorded_by: None,
            previous: None,
        }
    }

    /// The `lesson` body of what `by` did to this lesson (its state after it is the row's).
    #[must_use]
    pub fn event(&self, action: LessonEvent, by: &str) -> LessonBody {
        LessonBody {
            lesson_id: self.id.clone(),
            date: self.date,
            period: self.period,
            subject: self.subject.clone(),
            roster_id: self.roster_id.clone(),
            action,
            state: self.state,
            by: Some(by.to_owned()),
            reason: None,
        }
    }
}

impl From<&Eviction> for DroppedBody {
    fn from(e: &Eviction) -> Self {
        Self {
            stream: e.stream.as_str().to_owned(),
            first_seq: e.first_seq,
            last_seq: e.last_seq,
            count: e.count,
            reason: e.reason.clone(),
        }
    }
}
