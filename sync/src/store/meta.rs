//! Small device facts kept in the `meta` table, and the status snapshot the UI polls.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use rusqlite::{OptionalExtension, params};

use crate::error::{Result, SqlContext};
use crate::records::{AlarmRecord, LessonSummary, NoticeRow};

use super::alarms::q_alarms;
use super::handle::StoreHandle;
use super::lessons::q_summary;
use super::notices::q_notices;
use super::outbox::q_pending;

impl StoreHandle {
    /// Sets a value of the store's meta table (insert or replace).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn meta_set(&self, key: String, value: String) -> Result<()> {
        self.call(move |db| {
            db.conn
                .execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = ?2",
                    [key, value],
                )
                .ctx("writing meta")?;
            Ok(())
        })
        .await
    }

    /// A value of the store's meta table.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn meta_get(&self, key: String) -> Result<Option<String>> {
        self.call(move |db| {
            db.conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .ctx("reading meta")
        })
        .await
    }

    /// A value kept in the store's meta table, set once: the first `value` offered wins and
    /// is returned ever after (e.g. when the engine first ran on this board).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn meta_once(&self, key: String, value: String) -> Result<String> {
        self.call(move |db| {
            db.conn
                .execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                    [&key, &value],
                )
                .ctx("writing meta")?;
            db.conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| {
                    r.get(0)
                })
                .ctx("reading meta")
        })
        .await
    }

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

pub(super) fn meta_u64(conn: &rusqlite::Connection, key: &str) -> Result<u64> {
    let v: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .ctx("reading meta")?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

pub(super) fn set_meta(tx: &rusqlite::Connection, key: &str, value: u64) -> Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
        params![key, value.to_string()],
    )
    .ctx("writing meta")?;
    Ok(())
}

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
