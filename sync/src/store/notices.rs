//! Notices on the class board: from the cloud (downlink) or posted by staff.

use chrono::{DateTime, FixedOffset};
use rusqlite::{Connection, params};

use crate::error::{Error, Result, SqlContext};
use crate::records::NoticeRow;

use super::audit::{Audit, insert_audit};
use super::handle::{StoreHandle, now_utc, parse_time};

impl StoreHandle {
    /// Notices valid at `now`, highest priority first.
    ///
    /// # Errors
    /// SQLite fails or a stored time does not parse.
    pub async fn active_notices(&self, now: DateTime<FixedOffset>) -> Result<Vec<NoticeRow>> {
        self.call(move |db| q_notices(&db.conn, now)).await
    }

    /// Stores a local notice (origin `local`) with its audit row.
    ///
    /// # Errors
    /// SQLite fails, or `notice.id` is taken by a cloud notice.
    pub async fn post_notice(&self, notice: NoticeRow, audit: Audit) -> Result<()> {
        self.call(move |db| {
            let tx = db.conn.transaction().ctx("starting a transaction")?;
            let n = tx
                .execute(
                    "INSERT INTO notices (id, title, body, priority, emergency, valid_from, valid_until, origin, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'local', ?8) ON CONFLICT DO NOTHING",
                    params![
                        notice.id,
                        notice.title,
                        notice.body,
                        notice.priority,
                        notice.emergency,
                        notice.valid_from.map(|t| t.to_rfc3339()),
                        notice.valid_until.map(|t| t.to_rfc3339()),
                        now_utc()
                    ],
                )
                .ctx("storing a notice")?;
            if n == 0 {
                return Err(Error::Invalid(format!("notice id {:?} is taken", notice.id)));
            }
            insert_audit(&tx, &audit)?;
            tx.commit().ctx("committing a notice")
        })
        .await
    }

    /// Withdraws a local notice; `false`: no such local notice (cloud notices are withdrawn
    /// by the cloud).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn withdraw_notice(&self, id: String, audit: Audit) -> Result<bool> {
        self.call(move |db| {
            let tx = db.conn.transaction().ctx("starting a transaction")?;
            let n = tx
                .execute(
                    "DELETE FROM notices WHERE id = ?1 AND origin = 'local'",
                    [&id],
                )
                .ctx("withdrawing a notice")?;
            if n == 0 {
                return Ok(false);
            }
            insert_audit(&tx, &audit)?;
            tx.commit().ctx("committing a notice withdrawal")?;
            Ok(true)
        })
        .await
    }
}

pub(super) fn q_notices(conn: &Connection, now: DateTime<FixedOffset>) -> Result<Vec<NoticeRow>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, title, body, priority, emergency, valid_from, valid_until
             FROM notices ORDER BY emergency DESC, priority DESC, created_at DESC",
        )
        .ctx("reading notices")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })
        .ctx("reading notices")?;
    let mut out = Vec::new();
    for row in rows {
        let (id, title, body, priority, emergency, from, until) = row.ctx("reading notices")?;
        let valid_from = from.as_deref().map(parse_time).transpose()?;
        let valid_until = until.as_deref().map(parse_time).transpose()?;
        if valid_from.is_some_and(|f| now < f) || valid_until.is_some_and(|u| now >= u) {
            continue;
        }
        out.push(NoticeRow {
            id,
            title,
            body,
            priority,
            emergency,
            valid_from,
            valid_until,
        });
    }
    Ok(out)
}

/// Inserts or replaces a cloud notice.
pub(crate) fn upsert_notice(tx: &Connection, n: &NoticeRow, now: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO notices (id, title, body, priority, emergency, valid_from, valid_until, origin, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'cloud', ?8)
         ON CONFLICT (id) DO UPDATE SET title = ?2, body = ?3, priority = ?4, emergency = ?5,
           valid_from = ?6, valid_until = ?7, origin = 'cloud'",
        params![
            n.id,
            n.title,
            n.body,
            n.priority,
            n.emergency,
            n.valid_from.map(|t| t.to_rfc3339()),
            n.valid_until.map(|t| t.to_rfc3339()),
            now
        ],
    )
    .ctx("storing a notice")?;
    Ok(())
}
