//! Ketang's durable local store and the outbox that feeds the regional cloud.
//!
//! * [`StoreHandle`] is the clonable, async front of the store. One dedicated thread
//!   (`ketang-store`) owns the SQLite connection and runs closures sent to it over a
//!   bounded channel (HOUSE_STYLE §6), so no async task ever blocks on disk I/O.
//! * At open the file is checked with `PRAGMA quick_check`; a corrupt file is moved aside
//!   with a timestamp (never deleted) and the daemon starts on a fresh database.
//! * Schema changes are versioned migrations (`PRAGMA user_version`), see [`schema`].
//! * Every domain write that the cloud needs is committed in the same transaction as its
//!   outbox record, with `synchronous = FULL` in WAL mode: when a write call returns, the
//!   row and its outbox record are on disk.
//!
//! The MQTT side of sync (draining the outbox) is issue 4 and will live beside this.

mod error;
pub mod limits;
pub mod mqtt;
mod outbox;
mod records;
pub mod schema;
mod store;

pub use error::{Error, Result};
pub use outbox::{
    ENVELOPE_SCHEMA, Envelope, MAX_RECORD_BYTES, OutboxRecord, Stream, unsequenced_envelope,
};
pub use records::{
    AlarmRecord, AttendanceSource, AttendanceStatus, CardTapOutcome, CheckIn, CheckInOutcome,
    HealthCheckRecord, LessonRow, LessonSummary, NoticeRow, Period, Roster, SchoolSnapshot,
    StaffRow, StudentRow, TapRecord,
};
pub use store::{
    Audit, AuditRow, ConsentRow, DB_FILE, DayHealth, DayPresence, DownlinkData, DownlinkOutcome,
    Eviction, FollowupRow, Identity, LeaveRow, LessonControl, LessonEnd, MAX_CARDS_PER_PERSON,
    MAX_DOWNLINKS_KEPT, MAX_ID_CHARS, MAX_NAME_CHARS, MAX_NOTICE_CHARS, MAX_PIN_HASH_COST,
    MAX_REJECTED_KEPT, MAX_TEXT_CHARS, Mark, OpenReport, PendingRecord, REFUSED_AFTER_PROBES,
    RollEntry, SealedTemplate, StaffLogin, StatusSnapshot, StoreHandle, StreamBudget,
    lesson_event_body, pin_hash_cost_ok,
};
