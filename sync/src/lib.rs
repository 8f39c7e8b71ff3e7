//! Ketang's durable local store and the outbox that feeds the regional cloud.
//!
//! * [`StoreHandle`] is the clonable, async front of the store. One dedicated thread
//!   (`ketang-store`) owns the SQLite connection and runs closures sent to it over a
//!   bounded channel (docs/development.md §2), so no async task ever blocks on disk I/O.
//! * At open the file is checked with `PRAGMA quick_check`; a corrupt file is moved aside
//!   with a timestamp (never deleted) and the daemon starts on a fresh database.
//! * Schema changes are versioned migrations (`PRAGMA user_version`), see [`schema`].
//! * Every domain write that the cloud needs is committed in the same transaction as its
//!   outbox record, with `synchronous = FULL` in WAL mode: when a write call returns, the
//!   row and its outbox record are on disk.
//!
//! * The MQTT side ([`mqtt`]) drains the outbox. The drain calls are crate-private: only the
//!   worker moves the outbox cursor. Benchmarks and tests reach them through [`drain`], which
//!   exists only with the `drain-api` feature (the crate's own dev-dependency turns it on).

pub mod calendar;
pub mod content;
mod contract;
mod error;
pub mod limits;
pub mod mqtt;
mod outbox;
mod records;
pub mod schema;
mod store;

pub use contract::Body;
pub use error::{Error, Result};
/// The wire contract as types (the `ketang-contract` crate): domain enums and uplink bodies.
pub use ketang_contract::{
    AckBody, AlarmBody, AttendanceBody, AttendanceCounts, BehaviourBody, ClassScope, DroppedBody,
    FollowupBody, FollowupOutcome, HealthCheckBody, HealthWindow, Illness, LessonBody, LessonEvent,
    LessonReport, LessonState, RejectedBody, RemoteCommand, ReportAttendance, ReportBehaviour,
    ReportHeadCount, ReportHealth, ReportTalkTime, SchoolAlarm, SchoolAlarmState, SchoolRole,
    TelemetryBody, TelemetryCounters, TelemetryHardware, TelemetryInference, TelemetrySync,
    UpdateBody, WhiteboardBody, WhiteboardEvent, WhiteboardSource,
};

/// The worker's drain calls, for benchmarks and tests only (feature `drain-api`).
#[cfg(feature = "drain-api")]
#[doc(hidden)]
pub mod drain {
    use crate::{PendingRecord, Result, StoreHandle};

    /// Up to `limit` pending records after `cursor` (per lane), lane order.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn fetch(
        store: &StoreHandle,
        cursor: [u64; 3],
        limit: usize,
    ) -> Result<Vec<PendingRecord>> {
        store.outbox_fetch(cursor, limit).await
    }

    /// Acknowledges (deletes) delivered records.
    ///
    /// # Errors
    /// The store thread is gone.
    pub async fn ack(store: &StoreHandle, seqs: Vec<u64>) -> Result<()> {
        store.outbox_ack(seqs).await
    }
}
pub use outbox::{
    ENVELOPE_SCHEMA, Envelope, MAX_RECORD_BYTES, OutboxRecord, Stream, unsequenced_envelope,
};
pub use records::{
    AlarmRecord, AttendanceSource, AttendanceStatus, CardTapOutcome, CheckIn, CheckInOutcome,
    HealthCheckRecord, LessonRow, LessonSummary, NoticeRow, Period, Roster, SchoolSnapshot,
    StaffRow, StudentRow, TapRecord,
};
pub use store::{
    AUDIT_FLOOR, Audit, AuditRow, BoardContent, CardTap, CardTapResult, ConsentRow, DB_FILE,
    DayHealth, DayPresence, DownlinkData, DownlinkOutcome, Eviction, ExpressionTotals, FollowupRow,
    Identity, LeaveKind, LeaveRow, LessonControl, LessonEnd, LessonTimeline, MAX_CARDS_PER_PERSON,
    MAX_DOWNLINKS_KEPT, MAX_ID_CHARS, MAX_NAME_CHARS, MAX_NOTICE_CHARS, MAX_PIN_HASH_COST,
    MAX_REJECTED_KEPT, MAX_TEXT_CHARS, Mark, OpenReport, PRUNE_STEP_DAYS, PendingRecord,
    REFUSED_AFTER_PROBES, Retention, RollEntry, SealedTemplate, SealedVoiceprint, StaffLogin,
    StatusSnapshot, StoreHandle, StreamBudget, StudentTap, VoiceprintInfo, pin_hash_cost_ok,
};
