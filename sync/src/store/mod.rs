//! The durable local store: one SQLite file, owned by one thread, split by concept.
//!
//! Every module adds methods to the one [`StoreHandle`]; each domain change that the cloud
//! needs is one method and one transaction, holding the change, its audit row (for staff
//! actions) and its outbox record (docs/development.md, "One transaction with its outbox
//! record").
//!
//! | module | what lives there |
//! |---|---|
//! | `handle` | the store thread, the call plumbing (with the group commit of acknowledged records), opening, corruption quarantine |
//! | `school` | students, rosters, timetable; snapshot checks and bounds |
//! | `staff` | staff logins by PIN or card |
//! | `attendance` | check-ins, taps, corrections, rolls, leave, day presence |
//! | `lessons` | lesson control, a lesson's end, reports |
//! | `health` | health checks and follow-ups |
//! | `alarms` | raising, listing, clearing alarms |
//! | `notices` | notices from the cloud or staff |
//! | `faces` | consent records and sealed face templates (never synced) |
//! | `audit` | the staff audit trail and history pruning |
//! | `meta` | device facts in `meta` |
//! | `status` | the status snapshot the UI polls |
//! | `whiteboard` | the whiteboard's power history |
//! | `downlink` | applying cloud downlinks with their acks |
//! | `outbox` | the drain side, for the MQTT worker |

mod alarms;
mod attendance;
mod audit;
mod downlink;
mod faces;
mod handle;
mod health;
mod lessons;
mod meta;
mod notices;
mod outbox;
mod school;
mod staff;
mod status;
mod voices;
mod whiteboard;

pub use attendance::{CardTap, CardTapResult, DayPresence, RollEntry, StudentTap};
pub use audit::{AUDIT_FLOOR, Audit, AuditRow, PRUNE_STEP_DAYS, Retention};
pub use downlink::{
    BoardContent, DownlinkData, DownlinkOutcome, LeaveKind, LeaveRow, MAX_DOWNLINKS_KEPT,
};
pub use faces::{ConsentRow, SealedTemplate};
pub use handle::{DB_FILE, Identity, OpenReport, StoreHandle};
pub use health::{DayHealth, FollowupRow};
pub use lessons::{ExpressionTotals, LessonControl, LessonEnd, LessonTimeline, Mark};
pub use outbox::{Eviction, MAX_REJECTED_KEPT, PendingRecord, REFUSED_AFTER_PROBES, StreamBudget};
pub use school::{
    MAX_CARDS_PER_PERSON, MAX_ID_CHARS, MAX_NAME_CHARS, MAX_NOTICE_CHARS, MAX_PIN_HASH_COST,
    MAX_TEXT_CHARS, pin_hash_cost_ok,
};
pub use staff::StaffLogin;
pub use status::StatusSnapshot;
pub use voices::{SealedVoiceprint, VoiceprintInfo};
