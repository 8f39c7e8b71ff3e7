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
mod store_class;
mod store_face;
mod store_sync;

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
    DB_FILE, Identity, MAX_CARDS_PER_PERSON, MAX_ID_CHARS, MAX_NAME_CHARS, MAX_NOTICE_CHARS,
    MAX_PIN_HASH_COST, MAX_TEXT_CHARS, OpenReport, StatusSnapshot, StoreHandle, pin_hash_cost_ok,
};
pub use store_class::{
    Audit, AuditRow, DayHealth, FollowupRow, LessonControl, RollEntry, StaffLogin,
    lesson_event_body,
};
pub use store_face::{ConsentRow, SealedTemplate};
pub use store_sync::{
    DayPresence, DownlinkData, DownlinkOutcome, Eviction, LeaveRow, LessonEnd, MAX_DOWNLINKS_KEPT,
    MAX_REJECTED_KEPT, Mark, PendingRecord, REFUSED_AFTER_PROBES, StreamBudget,
};
