//! The whiteboard's power history (for the lesson report's on-time).

use chrono::{DateTime, FixedOffset};
use rusqlite::params;

use crate::OutboxRecord;
use crate::error::{Result, SqlContext};
use crate::outbox::enqueue;

use super::handle::{Db, StoreHandle, rfc3339};
use super::lessons::opt_time;

impl StoreHandle {
    /// Records a whiteboard change (power and/or input) with its `whiteboard` outbox record.
    ///
    /// # Errors
    /// SQLite fails (nothing is written then).
    pub async fn record_whiteboard(
        &self,
        power: Option<bool>,
        input: Option<String>,
        source: String,
        actor: Option<String>,
        outbox: OutboxRecord,
    ) -> Result<u64> {
        self.call(move |db| {
            let Db { conn, identity } = db;
            let tx = conn.transaction().ctx("starting a transaction")?;
            tx.execute(
                "INSERT INTO whiteboard_events (at, clock_synced, power, input, source, actor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    rfc3339(&outbox.captured_at),
                    outbox.clock_synced,
                    power,
                    input,
                    source,
                    actor
                ],
            )
            .ctx("recording a whiteboard change")?;
            let seq = enqueue(&tx, identity, outbox)?;
            tx.commit().ctx("committing a whiteboard change")?;
            Ok(seq)
        })
        .await
        .inspect(|_| self.notify_outbox())
    }

    /// The whiteboard's power changes up to `until`, oldest first, starting with the last
    /// one before `from` (the state at `from`).
    ///
    /// # Errors
    /// SQLite fails or a stored time does not parse.
    pub async fn whiteboard_power(
        &self,
        from: DateTime<FixedOffset>,
        until: DateTime<FixedOffset>,
    ) -> Result<Vec<(DateTime<FixedOffset>, bool)>> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare_cached(
                    "SELECT at, power FROM whiteboard_events WHERE power IS NOT NULL ORDER BY id",
                )
                .ctx("reading whiteboard changes")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))
                .ctx("reading whiteboard changes")?;
            let mut before = None;
            let mut out = Vec::new();
            for row in rows {
                let (at, on) = row.ctx("reading whiteboard changes")?;
                let Some(at) = opt_time(Some(at))? else {
                    continue;
                };
                if at < from {
                    before = Some((at, on));
                } else if at <= until {
                    out.push((at, on));
                }
            }
            if let Some(b) = before {
                out.insert(0, b);
            }
            Ok(out)
        })
        .await
    }
}
