//! Ketang's contract with the cloud and between its own crates, as types: the domain enums
//! (attendance status and source, lesson state) defined once, one body type per uplink
//! stream, and the remote commands with their typed arguments (`docs/mqtt.md`, `docs/asyncapi.yaml`).
//!
//! Pure data: serde for the wire, schemars for the JSON Schema that a test compares with
//! `docs/asyncapi.yaml`, no I/O. `ketang-sync` stores and sends these; `ketang-web` and the
//! daemon use the enums. A field that is absent from a body is `None` with
//! `skip_serializing_if`; a field that is sent as `null` is a plain `Option`.

mod downlink;
mod enums;
mod quote;
mod school;
mod uplink;

pub use downlink::RemoteCommand;
pub use enums::{
    AttendanceCounts, AttendanceSource, AttendanceStatus, HealthWindow, LessonState, ParseError,
};
pub use quote::{QUOTED_CHARS, bounded_serde_message};
pub use school::{
    MAX_SCHOOL_ALARM_BYTES, MAX_SCHOOL_ALARMS, SchoolAlarm, SchoolAlarmState, SchoolRole,
};
pub use uplink::{
    AckBody, AlarmBody, AttendanceBody, BehaviourBody, ClassScope, DroppedBody, FollowupBody,
    FollowupOutcome, HealthCheckBody, Illness, LessonBody, LessonEvent, LessonReport, RejectedBody,
    ReportAttendance, ReportBehaviour, ReportHeadCount, ReportHealth, ReportTalkTime,
    TelemetryBody, TelemetryCounters, TelemetryHardware, TelemetryInference, TelemetrySync,
    UpdateBody, WhiteboardBody, WhiteboardEvent, WhiteboardSource,
};
