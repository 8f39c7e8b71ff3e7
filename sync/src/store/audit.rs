//! The audit trail of what staff did, and the pruning of history past its retention.

use chrono::{DateTime, FixedOffset, NaiveDate};
use rusqlite::params;
use serde::Serialize;

use crate::error::{Result, SqlContext};

use super::handle::{StoreHandle, rfc3339};

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

    /// Deletes local history past its retention: card taps dated before `taps_before`, and
    /// lessons (with their attendance and reports), health checks, follow-ups, leave, the
    /// audit log and whiteboard changes dated before `records_before` (local dates). The
    /// outbox is never touched (its rows leave by acknowledgement or budget). Returns how
    /// many rows went, per table.
    ///
    /// # Errors
    /// SQLite fails (nothing is deleted then).
    pub async fn prune_history(
        &self,
        taps_before: NaiveDate,
        records_before: NaiveDate,
    ) -> Result<Vec<(&'static str, usize)>> {
        self.call(move |db| {
            let tx = db.conn.transaction().ctx("starting a transaction")?;
            let (t, r) = (taps_before.to_string(), records_before.to_string());
            let steps: [(&'static str, &str, &String); 9] = [
                ("card_taps", "DELETE FROM card_taps WHERE substr(tapped_at, 1, 10) < ?1", &t),
                ("attendance", "DELETE FROM attendance WHERE lesson_id IN (SELECT id FROM lessons WHERE date < ?1)", &r),
                ("lesson_reports", "DELETE FROM lesson_reports WHERE lesson_id IN (SELECT id FROM lessons WHERE date < ?1)", &r),
                ("lessons", "DELETE FROM lessons WHERE date < ?1", &r),
                ("health_checks", "DELETE FROM health_checks WHERE substr(checked_at, 1, 10) < ?1", &r),
                ("followups", "DELETE FROM followups WHERE date < ?1", &r),
                ("leaves", "DELETE FROM leaves WHERE substr(ends_at, 1, 10) < ?1", &r),
                ("audit_log", "DELETE FROM audit_log WHERE substr(at, 1, 10) < ?1", &r),
                ("whiteboard_events", "DELETE FROM whiteboard_events WHERE substr(at, 1, 10) < ?1", &r),
            ];
            let mut out = Vec::new();
            for (table, sql, date) in steps {
                let n = tx.execute(sql, [date]).ctx("pruning local history")?;
                out.push((table, n));
            }
            tx.commit().ctx("committing a prune")?;
            Ok(out)
        })
        .await
    }
}
