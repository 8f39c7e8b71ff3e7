//! Alarms: raised (alarm lane first), listed while active, cleared by staff.

use rusqlite::{Connection, params};

use crate::OutboxRecord;
use crate::error::{Result, SqlContext};
use crate::outbox::enqueue;
use crate::records::AlarmRecord;

use super::audit::{Audit, insert_audit};
use super::handle::{Db, StoreHandle, parse_time, rfc3339};

impl StoreHandle {
    /// Stores a raised alarm and its outbox record (highest lane); returns the seq.
    ///
    /// # Errors
    /// SQLite fails (nothing is written then).
    pub async fn raise_alarm(&self, alarm: AlarmRecord, outbox: OutboxRecord) -> Result<u64> {
        self.call(move |db| {
            let Db { conn, identity } = db;
            let tx = conn.transaction().ctx("starting a transaction")?;
            tx.execute(
                "INSERT INTO alarms (id, source, drill, raised_at, clock_synced) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    alarm.id,
                    alarm.source,
                    alarm.drill,
                    rfc3339(&alarm.raised_at),
                    alarm.clock_synced
                ],
            )
            .ctx("recording an alarm")?;
            let seq = enqueue(&tx, identity, outbox)?;
            tx.commit().ctx("committing an alarm")?;
            Ok(seq)
        })
        .await
        .inspect(|_| self.notify_outbox())
    }

    /// Alarms not yet cleared, oldest first.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn active_alarms(&self) -> Result<Vec<AlarmRecord>> {
        self.call(|db| q_alarms(&db.conn)).await
    }

    /// Clears an active alarm; queues an `alarm` record. Returns whether alarms remain
    /// active and the seq; `Ok(None)`: no such active alarm.
    ///
    /// # Errors
    /// SQLite fails (nothing is written then).
    pub async fn clear_alarm(
        &self,
        id: String,
        audit: Audit,
        outbox: OutboxRecord,
    ) -> Result<Option<(bool, u64)>> {
        self.call(move |db| {
            let Db { conn, identity } = db;
            let tx = conn.transaction().ctx("starting a transaction")?;
            let n = tx
                .execute(
                    "UPDATE alarms SET cleared_at = ?2, cleared_by = ?3 WHERE id = ?1 AND cleared_at IS NULL",
                    params![id, rfc3339(&audit.at), audit.actor],
                )
                .ctx("clearing an alarm")?;
            if n == 0 {
                return Ok(None);
            }
            insert_audit(&tx, &audit)?;
            let seq = enqueue(&tx, identity, outbox)?;
            let remaining: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM alarms WHERE cleared_at IS NULL)",
                    [],
                    |r| r.get(0),
                )
                .ctx("reading alarms")?;
            tx.commit().ctx("committing an alarm clear")?;
            Ok(Some((remaining, seq)))
        })
        .await
        .inspect(|r| {
            if r.is_some() {
                self.notify_outbox();
            }
        })
    }
}

pub(super) fn q_alarms(conn: &Connection) -> Result<Vec<AlarmRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, source, drill, raised_at, clock_synced FROM alarms
             WHERE cleared_at IS NULL ORDER BY raised_at",
        )
        .ctx("reading alarms")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })
        .ctx("reading alarms")?;
    let mut out = Vec::new();
    for row in rows {
        let (id, source, drill, raised_at, clock_synced) = row.ctx("reading alarms")?;
        out.push(AlarmRecord {
            id,
            source,
            drill,
            raised_at: parse_time(&raised_at)?,
            clock_synced,
        });
    }
    Ok(out)
}
