//! The audit trail of what staff did, and the pruning of history past its retention.

use chrono::{DateTime, FixedOffset, NaiveDate};
use rusqlite::{OptionalExtension as _, params};
use serde::Serialize;

use crate::error::{Result, SqlContext};

use super::handle::{StoreHandle, rfc3339};

/// How long local history is kept on the device, in days (docs/privacy.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Card taps (with card UIDs).
    pub taps_days: u64,
    /// Lessons, attendance, reports, health checks, follow-ups, leave, the audit log,
    /// whiteboard changes.
    pub records_days: u64,
}

/// How far a retention cut-off may move in one prune (the daemon prunes once a day).
pub const PRUNE_STEP_DAYS: u64 = 7;

/// The newest audit rows kept whatever their dates.
pub const AUDIT_FLOOR: u32 = 5_000;

/// Who did what, for the audit log.
#[derive(Debug, Clone)]
pub struct Audit {
    /// Staff id (or "technician", "kiosk").
    pub actor: String,
    /// teacher / technician / kiosk.
    pub role: String,
    /// What was done, e.g. "attendance.override".
    pub action: String,
    /// What it was done to, e.g. a lesson id.
    pub target: String,
    /// Details (JSON; never names or card UIDs).
    pub detail: serde_json::Value,
    /// When.
    pub at: DateTime<FixedOffset>,
    /// Whether the clock was synced.
    pub clock_synced: bool,
}

impl Audit {
    /// An audit row of `actor` (`role`) doing `action` to `target`, with `detail`
    /// serialised (a detail that cannot be serialised is kept as `null`; details are
    /// structs of plain fields, so none is).
    #[must_use]
    pub fn new(
        (actor, role): (&str, &str),
        action: &str,
        target: &str,
        detail: &impl Serialize,
        at: DateTime<FixedOffset>,
        clock_synced: bool,
    ) -> Self {
        Self {
            actor: actor.to_owned(),
            role: role.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail: serde_json::to_value(detail).unwrap_or(serde_json::Value::Null),
            at,
            clock_synced,
        }
    }
}

/// A stored audit row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRow {
    /// Row id.
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Who.
    pub actor: String,
    /// Role.
    pub role: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// Details.
    pub detail: serde_json::Value,
}

pub(crate) fn insert_audit(tx: &rusqlite::Connection, a: &Audit) -> Result<()> {
    tx.execute(
        "INSERT INTO audit_log (at, clock_synced, actor, role, action, target, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            rfc3339(&a.at),
            a.clock_synced,
            a.actor,
            a.role,
            a.action,
            a.target,
            serde_json::to_string(&a.detail)?
        ],
    )
    .ctx("writing the audit log")?;
    Ok(())
}

impl StoreHandle {
    /// Writes an audit row on its own (for actions with no other state, e.g. a login).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn audit(&self, audit: Audit) -> Result<()> {
        self.call(move |db| insert_audit(&db.conn, &audit)).await
    }

    /// The last `limit` audit rows, newest first.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn audit_tail(&self, limit: u32) -> Result<Vec<AuditRow>> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare_cached(
                    "SELECT id, at, actor, role, action, target, detail FROM audit_log
                     ORDER BY id DESC LIMIT ?1",
                )
                .ctx("reading the audit log")?;
            let rows = stmt
                .query_map([limit], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                    ))
                })
                .ctx("reading the audit log")?;
            let mut out = Vec::new();
            for row in rows {
                let (id, at, actor, role, action, target, detail) =
                    row.ctx("reading the audit log")?;
                out.push(AuditRow {
                    id,
                    at,
                    actor,
                    role,
                    action,
                    target,
                    detail: serde_json::from_str(&detail)?,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Deletes local history past its retention: card taps older than `keep.taps_days`, and
    /// lessons (with their attendance and reports), health checks, follow-ups, leave, the
    /// audit log and whiteboard changes older than `keep.records_days`. The outbox is never
    /// touched (its rows leave by acknowledgement or budget). Returns how many rows went,
    /// per table.
    ///
    /// A wrong clock must not erase history (a bad RTC, a spoofed time server), so:
    /// * ages count from the newest date stored in the history, or `today` if that is
    ///   earlier: a clock that jumps years ahead finds nothing new that old;
    /// * each cut-off is kept (`meta`) and moves at most [`PRUNE_STEP_DAYS`] per call
    ///   (the daemon calls once a day): should the clock run ahead for days, history goes
    ///   a week at a time, never at once;
    /// * the newest [`AUDIT_FLOOR`] audit rows are kept whatever their dates.
    ///
    /// # Errors
    /// SQLite fails (nothing is deleted then).
    pub async fn prune_history(
        &self,
        today: NaiveDate,
        keep: Retention,
    ) -> Result<Vec<(&'static str, usize)>> {
        self.call(move |db| {
            let tx = db.conn.transaction().ctx("starting a transaction")?;
            let newest: Option<String> = tx
                .query_row(
                    "SELECT max(d) FROM (
                       SELECT max(substr(tapped_at, 1, 10)) AS d FROM card_taps
                       UNION ALL SELECT max(date) FROM lessons
                       UNION ALL SELECT max(substr(checked_at, 1, 10)) FROM health_checks
                       UNION ALL SELECT max(substr(at, 1, 10)) FROM audit_log
                       UNION ALL SELECT max(substr(at, 1, 10)) FROM whiteboard_events)",
                    [],
                    |r| r.get(0),
                )
                .ctx("reading the newest history date")?;
            let Some(newest) = newest.and_then(|d| d.parse::<NaiveDate>().ok()) else {
                return Ok(Vec::new());
            };
            let reference = newest.min(today);
            let cut = |key: &str, days: u64| -> Result<String> {
                let wanted = reference - chrono::Days::new(days);
                let last: Option<NaiveDate> = tx
                    .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
                        r.get::<_, String>(0)
                    })
                    .optional()
                    .ctx("reading a retention cut-off")?
                    .and_then(|d| d.parse().ok());
                let cutoff = match last {
                    Some(last) => wanted
                        .min(last + chrono::Days::new(PRUNE_STEP_DAYS))
                        .max(last),
                    None => wanted,
                };
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = ?2",
                    params![key, cutoff.to_string()],
                )
                .ctx("keeping a retention cut-off")?;
                Ok(cutoff.to_string())
            };
            let t = cut("retention.taps_before", keep.taps_days)?;
            let r = cut("retention.records_before", keep.records_days)?;
            let steps: [(&'static str, &str, &String); 10] = [
                ("card_taps", "DELETE FROM card_taps WHERE substr(tapped_at, 1, 10) < ?1", &t),
                ("attendance", "DELETE FROM attendance WHERE lesson_id IN (SELECT id FROM lessons WHERE date < ?1)", &r),
                ("lesson_reports", "DELETE FROM lesson_reports WHERE lesson_id IN (SELECT id FROM lessons WHERE date < ?1)", &r),
                ("lesson_timelines", "DELETE FROM lesson_timelines WHERE lesson_id IN (SELECT id FROM lessons WHERE date < ?1)", &r),
                ("lessons", "DELETE FROM lessons WHERE date < ?1", &r),
                ("health_checks", "DELETE FROM health_checks WHERE substr(checked_at, 1, 10) < ?1", &r),
                ("followups", "DELETE FROM followups WHERE date < ?1", &r),
                ("leaves", "DELETE FROM leaves WHERE substr(ends_at, 1, 10) < ?1", &r),
                ("audit_log", "DELETE FROM audit_log WHERE substr(at, 1, 10) < ?1
                               AND id < (SELECT coalesce(min(id), 0) FROM
                                         (SELECT id FROM audit_log ORDER BY id DESC LIMIT ?2))", &r),
                ("whiteboard_events", "DELETE FROM whiteboard_events WHERE substr(at, 1, 10) < ?1", &r),
            ];
            let mut out = Vec::new();
            for (table, sql, date) in steps {
                let n = if table == "audit_log" {
                    tx.execute(sql, params![date, AUDIT_FLOOR])
                } else {
                    tx.execute(sql, [date])
                }
                .ctx("pruning local history")?;
                out.push((table, n));
            }
            tx.commit().ctx("committing a prune")?;
            Ok(out)
        })
        .await
    }
}
