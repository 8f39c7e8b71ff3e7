//! The status snapshot the UI polls: alarms, pending records, the current lesson's counts
//! and the notices, read in one call.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};

use crate::error::Result;
use crate::records::{AlarmRecord, LessonSummary, NoticeRow};

use super::alarms::q_alarms;
use super::handle::StoreHandle;
use super::lessons::q_summary;
use super::notices::q_notices;
use super::outbox::q_pending;

/// A consistent read of what the status page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSnapshot {
    /// Outbox rows per stream.
    pub pending: BTreeMap<String, u64>,
    /// Attendance of the lesson asked for.
    pub lesson: Option<LessonSummary>,
    /// Alarms not yet cleared.
    pub alarms: Vec<AlarmRecord>,
    /// Notices valid now.
    pub notices: Vec<NoticeRow>,
}

impl StoreHandle {
    /// What the status page shows, read in one job so it is consistent: an alarm is never
    /// listed without its outbox record, nor the reverse. `lesson` is (lesson id, roster id).
    ///
    /// # Errors
    /// SQLite fails or stored data does not parse.
    pub async fn status_snapshot(
        &self,
        lesson: Option<(String, String)>,
        now: DateTime<FixedOffset>,
    ) -> Result<StatusSnapshot> {
        self.call(move |db| {
            Ok(StatusSnapshot {
                pending: q_pending(&db.conn)?,
                lesson: lesson
                    .map(|(l, r)| q_summary(&db.conn, &l, &r))
                    .transpose()?,
                alarms: q_alarms(&db.conn)?,
                notices: q_notices(&db.conn, now)?,
            })
        })
        .await
    }
}
