//! The outbox as the MQTT worker drains it: fetching by lane, acknowledging, moving aside
//! what can never be delivered, and evicting detail under disk budgets. Writing records
//! happens with each domain change (see `crate::outbox::Enqueuer`), not here.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use crate::error::{Error, Result, SqlContext};
use crate::outbox::{Enqueuer, enqueue};
use crate::{DroppedBody, OutboxRecord, RejectedBody, Stream};

use super::downlink::MAX_DOWNLINKS_KEPT;
use super::handle::{Db, StoreHandle, rfc3339, with_normal_sync};

/// One outbox row, as the sync worker publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRecord {
    /// Sequence number.
    pub seq: u64,
    /// Drain lane (the stream's priority).
    pub lane: u8,
    /// Stream (topic suffix).
    pub stream: String,
    /// The envelope, exactly as stored.
    pub payload: Vec<u8>,
    /// The broker closed a session while this row was the only one unacknowledged: the
    /// worker sends it alone until it is acknowledged or moved aside.
    pub suspect: bool,
}

/// Sessions the broker closes while a row is the only one unacknowledged before the row is
/// moved aside as refused.
pub const REFUSED_AFTER_PROBES: u32 = 2;

/// Most refused records kept on the board (oldest removed first).
pub const MAX_REJECTED_KEPT: u32 = 1000;

/// How much of an evictable stream the outbox may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamBudget {
    /// The stream; only [`Stream::evictable`] streams are ever evicted.
    pub stream: Stream,
    /// Most rows kept.
    pub max_rows: u64,
    /// Most payload bytes kept.
    pub max_bytes: u64,
    /// Oldest capture kept (by enqueue time).
    pub max_age: Duration,
}

/// A range of records evicted from one stream (also sent as a `dropped` record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Eviction {
    /// The stream.
    pub stream: Stream,
    /// Lowest evicted seq.
    pub first_seq: u64,
    /// Highest evicted seq.
    pub last_seq: u64,
    /// How many (seqs of other streams may lie between first and last).
    pub count: u64,
    /// Which budget was exceeded.
    pub reason: String,
}

impl Stream {
    /// Streams the budget may evict: detail that a school can live without, and acks (the
    /// cloud resends a message it got no ack for).
    pub const fn evictable(self) -> bool {
        matches!(self, Stream::Telemetry | Stream::Behaviour | Stream::Ack)
    }
}

impl StoreHandle {
    /// Appends one record to the outbox (durable on return); returns its seq.
    ///
    /// # Errors
    /// SQLite fails (nothing is written then).
    pub async fn enqueue(&self, record: OutboxRecord) -> Result<u64> {
        let seqs = self.enqueue_batch(vec![record]).await?;
        seqs.first().copied().ok_or(Error::Closed)
    }

    /// Appends records in one transaction; returns their seqs.
    ///
    /// # Errors
    /// SQLite fails (nothing is written then).
    pub async fn enqueue_batch(&self, records: Vec<OutboxRecord>) -> Result<Vec<u64>> {
        let seqs = self
            .call(move |db| {
                let Db { conn, identity } = db;
                let tx = conn.transaction().ctx("starting a transaction")?;
                let mut seqs = Vec::with_capacity(records.len());
                let mut e = Enqueuer::new(&tx, identity)?;
                for r in records {
                    seqs.push(e.push(r)?);
                }
                e.finish()?;
                tx.commit().ctx("committing outbox records")?;
                Ok(seqs)
            })
            .await?;
        self.notify_outbox();
        Ok(seqs)
    }

    /// Waits until a commit appends to the outbox (or returns at once if one happened since
    /// the last wait).
    pub(crate) async fn outbox_changed(&self) {
        self.outbox_changed.notified().await;
    }

    /// Up to `limit` rows in drain order (lane, then seq) that come after `cursor`: for each
    /// lane (priority 0, 1, 2), the highest seq already taken in this session.
    ///
    /// # Errors
    /// SQLite fails.
    pub(crate) async fn outbox_fetch(
        &self,
        cursor: [u64; 3],
        limit: usize,
    ) -> Result<Vec<PendingRecord>> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare_cached(
                    "SELECT seq, stream, payload, solo_failures FROM outbox WHERE priority = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )
                .ctx("reading the outbox")?;
            let mut out = Vec::with_capacity(limit);
            for (lane, after) in cursor.iter().enumerate() {
                if out.len() == limit {
                    break;
                }
                let left = i64::try_from(limit - out.len()).unwrap_or(i64::MAX);
                let rows = stmt
                    .query_map(params![lane as i64, after.cast_signed(), left], |r| {
                        Ok(PendingRecord {
                            seq: r.get::<_, i64>(0)?.unsigned_abs(),
                            lane: lane as u8,
                            stream: r.get(1)?,
                            payload: r.get(2)?,
                            suspect: r.get::<_, i64>(3)? > 0,
                        })
                    })
                    .ctx("reading the outbox")?;
                for row in rows {
                    out.push(row.ctx("reading the outbox")?);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Deletes acknowledged rows in one transaction. Queued without waiting; a later call
    /// sees the deletion (the store runs jobs in order).
    ///
    /// # Errors
    /// The store thread is gone.
    pub(crate) async fn outbox_ack(&self, seqs: Vec<u64>) -> Result<()> {
        self.send_acked(seqs).await
    }

    /// Counts one failed delivery attempt for rows that were sent in a session that ended
    /// before their PUBACK.
    ///
    /// # Errors
    /// The store thread is gone.
    pub(crate) async fn outbox_attempted(&self, seqs: Vec<u64>) -> Result<()> {
        self.call_nowait("counting delivery attempts", move |db| {
            with_normal_sync(db, |db| {
                let tx = db.conn.transaction().ctx("starting a transaction")?;
                {
                    let mut st = tx
                        .prepare_cached("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?1")
                        .ctx("counting delivery attempts")?;
                    for seq in seqs {
                        st.execute([seq.cast_signed()])
                            .ctx("counting delivery attempts")?;
                    }
                }
                tx.commit().ctx("counting delivery attempts")
            })
        })
        .await
    }

    /// The broker closed the session while row `seq` was the only one unacknowledged.
    /// After [`REFUSED_AFTER_PROBES`] such closes the row is moved aside as refused (see
    /// [`Self::outbox_reject`]); returns the seq of the `rejected` record then.
    ///
    /// # Errors
    /// SQLite fails (nothing changes then).
    pub(crate) async fn outbox_refused(
        &self,
        seq: u64,
        cause: String,
        now: DateTime<FixedOffset>,
        clock_synced: bool,
    ) -> Result<Option<u64>> {
        let out = self
            .call(move |db| {
                let Db { conn, identity } = db;
                let tx = conn.transaction().ctx("starting a transaction")?;
                tx.execute(
                    "UPDATE outbox SET solo_failures = solo_failures + 1 WHERE seq = ?1",
                    [seq.cast_signed()],
                )
                .ctx("counting a refusal")?;
                let probes: Option<i64> = tx
                    .query_row(
                        "SELECT solo_failures FROM outbox WHERE seq = ?1",
                        [seq.cast_signed()],
                        |r| r.get(0),
                    )
                    .optional()
                    .ctx("counting a refusal")?;
                let mut rejected = None;
                if probes.is_some_and(|p| p >= i64::from(REFUSED_AFTER_PROBES)) {
                    let reason = format!(
                        "the broker closed the connection each of the {REFUSED_AFTER_PROBES} times this record was sent alone ({cause})"
                    );
                    rejected = reject_row(&tx, identity, seq, &reason, now, clock_synced)?;
                }
                tx.commit().ctx("committing a refusal")?;
                Ok(rejected)
            })
            .await?;
        if out.is_some() {
            self.notify_outbox();
        }
        Ok(out)
    }

    /// Moves row `seq` out of the outbox into the `outbox_rejected` table and reports it on
    /// the `rejected` stream (seq, id, stream, bytes, reason), in one transaction. For a
    /// record that no retry can deliver, e.g. one larger than the client's packet limit.
    /// Returns the seq of the `rejected` record (`None` if the row was already gone).
    ///
    /// # Errors
    /// SQLite fails (nothing changes then).
    pub(crate) async fn outbox_reject(
        &self,
        seq: u64,
        reason: String,
        now: DateTime<FixedOffset>,
        clock_synced: bool,
    ) -> Result<Option<u64>> {
        let out = self
            .call(move |db| {
                let Db { conn, identity } = db;
                let tx = conn.transaction().ctx("starting a transaction")?;
                let r = reject_row(&tx, identity, seq, &reason, now, clock_synced)?;
                tx.commit().ctx("committing a rejected record")?;
                Ok(r)
            })
            .await?;
        self.notify_outbox();
        Ok(out)
    }

    /// Records moved aside as refused, newest first: (seq, stream, bytes, reason).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn rejected_records(&self) -> Result<Vec<(u64, String, u64, String)>> {
        self.call(|db| {
            let mut st = db
                .conn
                .prepare("SELECT seq, stream, length(payload), reason FROM outbox_rejected ORDER BY seq DESC")
                .ctx("reading rejected records")?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?.unsigned_abs(),
                        r.get(1)?,
                        r.get::<_, i64>(2)?.unsigned_abs(),
                        r.get(3)?,
                    ))
                })
                .ctx("reading rejected records")?
                .collect::<rusqlite::Result<Vec<_>>>()
                .ctx("reading rejected records")?;
            Ok(rows)
        })
        .await
    }

    /// Evicts the oldest rows of evictable streams over their budget, and for each stream
    /// that lost rows enqueues a `dropped` record naming the seq range and count, in the
    /// same transaction. Alarms, attendance and health checks are never touched.
    ///
    /// # Errors
    /// SQLite fails (nothing is evicted then).
    pub async fn enforce_budgets(
        &self,
        budgets: Vec<StreamBudget>,
        now: DateTime<FixedOffset>,
        clock_synced: bool,
    ) -> Result<Vec<Eviction>> {
        let evictions = self
            .call(move |db| {
                let Db { conn, identity } = db;
                let tx = conn.transaction().ctx("starting a transaction")?;
                let mut evictions = Vec::new();
                prune_bookkeeping(&tx, now)?;
                for b in budgets.iter().filter(|b| b.stream.evictable()) {
                    if let Some(e) = evict_stream(&tx, b, now)? {
                        enqueue(
                            &tx,
                            identity,
                            OutboxRecord::new(&DroppedBody::from(&e), now, clock_synced),
                        )?;
                        evictions.push(e);
                    }
                }
                tx.commit().ctx("committing an eviction")?;
                Ok(evictions)
            })
            .await?;
        if !evictions.is_empty() {
            self.notify_outbox();
        }
        Ok(evictions)
    }

    /// Frees space inside the database for records that must not be lost: evicts every row
    /// of the evictable streams (telemetry, behaviour), reported on the `dropped` stream.
    /// For a full disk, not for routine use.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn make_room(
        &self,
        now: DateTime<FixedOffset>,
        clock_synced: bool,
    ) -> Result<Vec<Eviction>> {
        let budgets = Stream::ALL
            .into_iter()
            .filter(|s| s.evictable())
            .map(|stream| StreamBudget {
                stream,
                max_rows: 0,
                max_bytes: 0,
                max_age: Duration::MAX,
            })
            .collect();
        // The dropped records themselves need a little room: deleting first frees pages
        // that SQLite reuses within the same transaction.
        self.enforce_budgets(budgets, now, clock_synced).await
    }

    /// Rows waiting in the outbox, per stream.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn outbox_pending(&self) -> Result<BTreeMap<String, u64>> {
        self.call(|db| q_pending(&db.conn)).await
    }

    /// Whether record `seq` still waits in the outbox (it leaves on the broker's PUBACK,
    /// or when it is moved aside as refused).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn outbox_has(&self, seq: u64) -> Result<bool> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        self.call(move |db| {
            db.conn
                .query_row(
                    "SELECT EXISTS(SELECT 1 FROM outbox WHERE seq = ?1)",
                    [seq],
                    |r| r.get::<_, bool>(0),
                )
                .ctx("reading the outbox")
        })
        .await
    }

    /// The stored envelopes of the outbox in drain order (lane, then seq), at most `limit`.
    ///
    /// # Errors
    /// SQLite fails or a stored payload is not an envelope.
    pub async fn outbox_peek(&self, limit: u32) -> Result<Vec<crate::Envelope>> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare("SELECT payload FROM outbox ORDER BY priority, seq LIMIT ?1")
                .ctx("reading the outbox")?;
            let rows = stmt
                .query_map([limit], |r| r.get::<_, Vec<u8>>(0))
                .ctx("reading the outbox")?;
            let mut out = Vec::new();
            for row in rows {
                out.push(serde_json::from_slice(&row.ctx("reading the outbox")?)?);
            }
            Ok(out)
        })
        .await
    }
}

/// Moves row `seq` aside and enqueues its `rejected` record inside `tx`.
fn reject_row(
    tx: &Transaction<'_>,
    identity: &crate::Identity,
    seq: u64,
    reason: &str,
    now: DateTime<FixedOffset>,
    clock_synced: bool,
) -> Result<Option<u64>> {
    let row: Option<(String, String, i64)> = tx
        .query_row(
            "SELECT id, stream, length(payload) FROM outbox WHERE seq = ?1",
            [seq.cast_signed()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .ctx("reading a refused record")?;
    let Some((id, stream, bytes)) = row else {
        return Ok(None);
    };
    tx.execute(
        "INSERT OR REPLACE INTO outbox_rejected (seq, id, stream, captured_at, payload, reason, rejected_at)
         SELECT seq, id, stream, captured_at, payload, ?2, ?3 FROM outbox WHERE seq = ?1",
        params![seq.cast_signed(), reason, rfc3339(&now)],
    )
    .ctx("moving a refused record aside")?;
    tx.execute("DELETE FROM outbox WHERE seq = ?1", [seq.cast_signed()])
        .ctx("moving a refused record aside")?;
    let body = RejectedBody {
        seq,
        id,
        stream,
        bytes: u64::try_from(bytes).unwrap_or(0),
        reason: reason.to_owned(),
    };
    let r = enqueue(tx, identity, OutboxRecord::new(&body, now, clock_synced))?;
    Ok(Some(r))
}

fn evict_stream(
    tx: &Transaction<'_>,
    b: &StreamBudget,
    now: DateTime<FixedOffset>,
) -> Result<Option<Eviction>> {
    let stream = b.stream.as_str();
    let (rows, bytes): (i64, i64) = tx
        .query_row(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox WHERE stream = ?1",
            [stream],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ctx("measuring a stream")?;
    let (rows, bytes) = (rows.unsigned_abs(), bytes.unsigned_abs());
    // Oldest first: by age, then by count, then by bytes.
    // No cutoff when the age budget reaches before any representable time.
    let cutoff = chrono::TimeDelta::from_std(b.max_age)
        .ok()
        .and_then(|d| now.checked_sub_signed(d));
    let mut victims: Vec<(i64, i64)> = Vec::new(); // (seq, bytes)
    {
        let mut stmt = tx
            .prepare_cached("SELECT seq, length(payload), captured_at FROM outbox WHERE stream = ?1 ORDER BY seq")
            .ctx("scanning a stream")?;
        let mut q = stmt.query([stream]).ctx("scanning a stream")?;
        let (mut left_rows, mut left_bytes) = (rows, bytes);
        let mut reason = String::new();
        while let Some(r) = q.next().ctx("scanning a stream")? {
            let seq: i64 = r.get(0).ctx("scanning a stream")?;
            let len: i64 = r.get(1).ctx("scanning a stream")?;
            let captured: String = r.get(2).ctx("scanning a stream")?;
            let old = cutoff
                .is_some_and(|c| DateTime::parse_from_rfc3339(&captured).is_ok_and(|t| t < c));
            let over = if old {
                "max_age"
            } else if left_rows > b.max_rows {
                "max_rows"
            } else if left_bytes > b.max_bytes {
                "max_bytes"
            } else {
                break;
            };
            if reason.is_empty() {
                reason = over.to_owned();
            }
            victims.push((seq, len));
            left_rows -= 1;
            left_bytes = left_bytes.saturating_sub(len.unsigned_abs());
        }
        if victims.is_empty() {
            return Ok(None);
        }
        let mut del = tx
            .prepare_cached("DELETE FROM outbox WHERE seq = ?1")
            .ctx("evicting")?;
        for (seq, _) in &victims {
            del.execute([seq]).ctx("evicting")?;
        }
        let first = victims.first().map_or(0, |v| v.0.unsigned_abs());
        let last = victims.last().map_or(0, |v| v.0.unsigned_abs());
        Ok(Some(Eviction {
            stream: b.stream,
            first_seq: first,
            last_seq: last,
            count: victims.len() as u64,
            reason,
        }))
    }
}

pub(super) fn q_pending(conn: &Connection) -> Result<BTreeMap<String, u64>> {
    let mut stmt = conn
        .prepare_cached("SELECT stream, count(*) FROM outbox GROUP BY stream")
        .ctx("counting the outbox")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.unsigned_abs()))
        })
        .ctx("counting the outbox")?;
    rows.collect::<rusqlite::Result<BTreeMap<_, _>>>()
        .ctx("counting the outbox")
}

/// Keeps the bookkeeping tables bounded: the newest [`MAX_REJECTED_KEPT`] refused records,
/// and the downlink ids of the last 30 days (at most [`MAX_DOWNLINKS_KEPT`]).
pub(super) fn prune_bookkeeping(tx: &Transaction<'_>, now: DateTime<FixedOffset>) -> Result<()> {
    tx.execute(
        "DELETE FROM outbox_rejected WHERE seq NOT IN
           (SELECT seq FROM outbox_rejected ORDER BY seq DESC LIMIT ?1)",
        [MAX_REJECTED_KEPT],
    )
    .ctx("pruning refused records")?;
    tx.execute(
        "DELETE FROM downlinks WHERE julianday(received_at) < julianday(?1) - 30
           OR rowid NOT IN (SELECT rowid FROM downlinks ORDER BY rowid DESC LIMIT ?2)",
        params![rfc3339(&now), MAX_DOWNLINKS_KEPT],
    )
    .ctx("pruning downlink ids")?;
    Ok(())
}
