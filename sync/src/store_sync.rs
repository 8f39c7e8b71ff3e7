//! Store operations of the sync side: draining the outbox, eviction under budgets, and
//! applying validated downlink data atomically with its acknowledgement.

use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::json;

use crate::error::{Error, Result, SqlContext};
use crate::limits::excerpt;
use crate::outbox::{Enqueuer, enqueue};
use crate::records::{NoticeRow, Period, Roster, StudentRow};
use crate::store::{
    Db, MAX_ID_CHARS, MAX_NOTICE_CHARS, MAX_TEXT_CHARS, check_periods, check_snapshot,
    insert_periods, insert_rosters, insert_students, now_utc, rfc3339, too_long, upsert_notice,
};
use crate::{OutboxRecord, SchoolSnapshot, StoreHandle, Stream};

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

/// Downlink ids remembered for duplicate detection: those of the last 30 days, at most
/// this many.
pub const MAX_DOWNLINKS_KEPT: u32 = 20_000;

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

/// Approved leave.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LeaveRow {
    /// Leave id (from the cloud).
    pub id: String,
    /// The student.
    pub student_id: String,
    /// From.
    pub starts_at: DateTime<FixedOffset>,
    /// Until.
    pub ends_at: DateTime<FixedOffset>,
    /// Reason (病假, 事假, ...).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Downlink data the store applies itself.
#[derive(Debug, Clone, PartialEq)]
pub enum DownlinkData {
    /// Students, cards and rosters, replacing the previous ones.
    Roster {
        /// Must be newer than the applied version.
        version: u64,
        /// Students with cards.
        students: Vec<StudentRow>,
        /// Rosters.
        rosters: Vec<Roster>,
        /// Teachers; `None` keeps the current list.
        staff: Option<Vec<crate::StaffRow>>,
    },
    /// The weekly timetable, replacing the previous one.
    Timetable {
        /// Must be newer than the applied version.
        version: u64,
        /// Periods.
        periods: Vec<Period>,
    },
    /// Approved leave.
    Leave(LeaveRow),
    /// A notice (insert or replace by id).
    Notice(NoticeRow),
}

/// What became of a downlink message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownlinkOutcome {
    /// Applied (or, for a duplicate, applied before).
    pub ok: bool,
    /// Why not.
    pub problems: Vec<String>,
    /// The id was seen before: nothing was applied again.
    pub duplicate: bool,
    /// Seq of the `ack` record.
    pub ack_seq: u64,
}

impl Stream {
    /// Streams the budget may evict: detail that a school can live without, and acks (the
    /// cloud resends a message it got no ack for).
    pub const fn evictable(self) -> bool {
        matches!(self, Stream::Telemetry | Stream::Behaviour | Stream::Ack)
    }
}

fn with_normal_sync<T>(db: &mut Db, f: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
    // Design: outbox deletions and attempt counters are committed with synchronous=NORMAL.
    // In WAL mode that survives a process crash (kill -9) and only a power cut can lose
    // the last of them, which at worst re-sends an acknowledged record: a duplicate the
    // cloud detects by id. Domain writes stay FULL.
    db.conn
        .pragma_update(None, "synchronous", "NORMAL")
        .ctx("relaxing synchronous")?;
    let r = f(db);
    db.conn
        .pragma_update(None, "synchronous", "FULL")
        .ctx("restoring synchronous = FULL")?;
    r
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
    pub async fn outbox_changed(&self) {
        self.outbox_changed.notified().await;
    }

    /// Up to `limit` rows in drain order (lane, then seq) that come after `cursor`: for each
    /// lane (priority 0, 1, 2), the highest seq already taken in this session.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn outbox_fetch(&self, cursor: [u64; 3], limit: usize) -> Result<Vec<PendingRecord>> {
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
    pub async fn outbox_ack(&self, seqs: Vec<u64>) -> Result<()> {
        self.send_acked(seqs).await
    }

    /// Counts one failed delivery attempt for rows that were sent in a session that ended
    /// before their PUBACK.
    ///
    /// # Errors
    /// The store thread is gone.
    pub async fn outbox_attempted(&self, seqs: Vec<u64>) -> Result<()> {
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
    pub async fn outbox_refused(
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
    pub async fn outbox_reject(
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
                        let body = serde_json::to_value(&e)?;
                        enqueue(
                            &tx,
                            identity,
                            OutboxRecord {
                                stream: Stream::Dropped,
                                captured_at: now,
                                clock_synced,
                                body,
                            },
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

    /// The answer given to downlink `id` before, if any: (ok, problems).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn downlink_seen(&self, id: String) -> Result<Option<(bool, Vec<String>)>> {
        self.call(move |db| seen(&db.conn, &id)).await
    }

    /// Records downlink `id` and its `ack` record in one transaction, applying `data` first
    /// when there are no `problems` yet. A data problem rolls the data back and is reported
    /// in the ack. A repeated id applies nothing and is acknowledged again as a duplicate.
    ///
    /// # Errors
    /// SQLite fails (nothing is written then).
    pub async fn apply_downlink(
        &self,
        id: String,
        kind: String,
        data: Option<DownlinkData>,
        problems: Vec<String>,
        at: DateTime<FixedOffset>,
        clock_synced: bool,
    ) -> Result<DownlinkOutcome> {
        let out = self
            .call(move |db| {
                let Db { conn, identity } = db;
                let mut tx = conn.transaction().ctx("starting a transaction")?;
                // The kind comes from the topic: known kinds are short, others are cut.
                let kind: String = kind.chars().take(32).collect();
                let ack = |ok: bool, problems: &[String], duplicate: bool| OutboxRecord {
                    stream: Stream::Ack,
                    captured_at: at,
                    clock_synced,
                    body: json!({
                        "downlink_id": id, "kind": kind, "ok": ok, "problems": problems, "duplicate": duplicate,
                    }),
                };
                if let Some((ok, problems)) = seen(&tx, &id)? {
                    let ack_seq = enqueue(&tx, identity, ack(ok, &problems, true))?;
                    tx.commit().ctx("committing a duplicate ack")?;
                    return Ok(DownlinkOutcome { ok, problems, duplicate: true, ack_seq });
                }
                let mut problems = crate::limits::bound_problems(&problems);
                if problems.is_empty()
                    && let Some(data) = data
                {
                    let sp = tx.savepoint().ctx("starting a savepoint")?;
                    match apply_data(&sp, data)? {
                        Ok(()) => sp.commit().ctx("applying downlink data")?,
                        Err(p) => {
                            problems = crate::limits::bound_problems(&p);
                            drop(sp); // rolls back
                        }
                    }
                }
                let ok = problems.is_empty();
                tx.execute(
                    "INSERT INTO downlinks (id, kind, received_at, ok, problems) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, kind, rfc3339(&at), ok, serde_json::to_string(&problems)?],
                )
                .ctx("recording a downlink")?;
                let ack_seq = enqueue(&tx, identity, ack(ok, &problems, false))?;
                tx.commit().ctx("committing a downlink")?;
                Ok(DownlinkOutcome { ok, problems, duplicate: false, ack_seq })
            })
            .await?;
        self.notify_outbox();
        Ok(out)
    }

    /// The applied roster and timetable versions (0 = none yet).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn snapshot_versions(&self) -> Result<(u64, u64)> {
        self.call(|db| {
            Ok((
                meta_u64(&db.conn, "roster.version")?,
                meta_u64(&db.conn, "timetable.version")?,
            ))
        })
        .await
    }

    /// Approved leave covering `at` for `student_id`.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn on_leave(&self, student_id: String, at: DateTime<FixedOffset>) -> Result<bool> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare_cached("SELECT starts_at, ends_at FROM leaves WHERE student_id = ?1")
                .ctx("reading leave")?;
            let rows = stmt
                .query_map([student_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .ctx("reading leave")?;
            for row in rows {
                let (a, b) = row.ctx("reading leave")?;
                let (Ok(a), Ok(b)) = (
                    DateTime::parse_from_rfc3339(&a),
                    DateTime::parse_from_rfc3339(&b),
                ) else {
                    continue;
                };
                if a <= at && at < b {
                    return Ok(true);
                }
            }
            Ok(false)
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
    let body = json!({
        "seq": seq, "id": id, "stream": stream, "bytes": bytes, "reason": reason,
    });
    let r = enqueue(
        tx,
        identity,
        OutboxRecord {
            stream: Stream::Rejected,
            captured_at: now,
            clock_synced,
            body,
        },
    )?;
    Ok(Some(r))
}

/// Keeps the bookkeeping tables bounded: the newest [`MAX_REJECTED_KEPT`] refused records,
/// and the downlink ids of the last 30 days (at most [`MAX_DOWNLINKS_KEPT`]).
fn prune_bookkeeping(tx: &Transaction<'_>, now: DateTime<FixedOffset>) -> Result<()> {
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

/// Deletes acknowledged rows in one transaction (synchronous = NORMAL, see above).
pub(crate) fn delete_acked(db: &mut Db, seqs: &[u64]) -> Result<()> {
    with_normal_sync(db, |db| {
        let tx = db.conn.transaction().ctx("starting a transaction")?;
        {
            // PUBACKs mostly come in order: runs of consecutive seqs are deleted with one
            // range statement each (only seqs that were all acknowledged form a run).
            let mut st = tx
                .prepare_cached("DELETE FROM outbox WHERE seq BETWEEN ?1 AND ?2")
                .ctx("deleting acknowledged outbox rows")?;
            let mut sorted = seqs.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            let mut i = 0;
            while i < sorted.len() {
                let mut j = i;
                while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
                    j += 1;
                }
                st.execute([sorted[i].cast_signed(), sorted[j].cast_signed()])
                    .ctx("deleting acknowledged outbox rows")?;
                i = j + 1;
            }
        }
        tx.commit().ctx("deleting acknowledged outbox rows")
    })
}

fn seen(conn: &rusqlite::Connection, id: &str) -> Result<Option<(bool, Vec<String>)>> {
    let row: Option<(bool, String)> = conn
        .query_row(
            "SELECT ok, problems FROM downlinks WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .ctx("reading downlinks")?;
    row.map(|(ok, p)| Ok((ok, serde_json::from_str(&p)?)))
        .transpose()
}

fn meta_u64(conn: &rusqlite::Connection, key: &str) -> Result<u64> {
    let v: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .ctx("reading meta")?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

fn set_meta(tx: &rusqlite::Connection, key: &str, value: u64) -> Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
        params![key, value.to_string()],
    )
    .ctx("writing meta")?;
    Ok(())
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

/// Applies data inside a savepoint. `Ok(Err(problems))` means the data was refused.
fn apply_data(
    tx: &rusqlite::Connection,
    data: DownlinkData,
) -> Result<std::result::Result<(), Vec<String>>> {
    match data {
        DownlinkData::Roster {
            version,
            students,
            rosters,
            staff,
        } => {
            let current = meta_u64(tx, "roster.version")?;
            if version <= current {
                return Ok(Err(vec![format!(
                    "roster version {version} is not newer than the applied version {current}"
                )]));
            }
            let keep_staff = staff.is_none();
            let snap = SchoolSnapshot {
                students,
                rosters,
                periods: vec![],
                notices: vec![],
                staff: staff.unwrap_or_default(),
            };
            let mut problems = check_snapshot(&snap);
            let keep: std::collections::HashSet<&str> =
                snap.rosters.iter().map(|r| r.id.as_str()).collect();
            let mut stmt = tx
                .prepare("SELECT DISTINCT roster_id FROM timetable_periods")
                .ctx("reading the timetable")?;
            let used: Vec<String> = stmt
                .query_map([], |r| r.get(0))
                .ctx("reading the timetable")?
                .collect::<rusqlite::Result<_>>()
                .ctx("reading the timetable")?;
            for r in used {
                if !keep.contains(r.as_str()) {
                    problems.push(format!("the timetable uses roster {r:?}, which this snapshot removes; update the timetable first"));
                }
            }
            if !problems.is_empty() {
                return Ok(Err(problems));
            }
            let now = now_utc();
            tx.execute_batch("DELETE FROM roster_members; DELETE FROM cards; DELETE FROM rosters WHERE id NOT IN (SELECT roster_id FROM timetable_periods);")
                .ctx("clearing rosters")?;
            insert_students(tx, &snap.students, &now)?;
            insert_rosters(tx, &snap.rosters)?;
            if !keep_staff {
                crate::store::replace_staff(tx, &snap.staff, &now)?;
            }
            set_meta(tx, "roster.version", version)?;
            Ok(Ok(()))
        }
        DownlinkData::Timetable { version, periods } => {
            let current = meta_u64(tx, "timetable.version")?;
            if version <= current {
                return Ok(Err(vec![format!(
                    "timetable version {version} is not newer than the applied version {current}"
                )]));
            }
            let mut stmt = tx
                .prepare("SELECT id FROM rosters")
                .ctx("reading rosters")?;
            let known: std::collections::HashSet<String> = stmt
                .query_map([], |r| r.get(0))
                .ctx("reading rosters")?
                .collect::<rusqlite::Result<_>>()
                .ctx("reading rosters")?;
            drop(stmt);
            let problems = check_periods(&periods, |r| known.contains(r));
            if !problems.is_empty() {
                return Ok(Err(problems));
            }
            tx.execute("DELETE FROM timetable_periods", [])
                .ctx("clearing the timetable")?;
            insert_periods(tx, &periods)?;
            set_meta(tx, "timetable.version", version)?;
            Ok(Ok(()))
        }
        DownlinkData::Leave(l) => {
            let mut p = Vec::new();
            too_long(&mut p, "id", &l.id, MAX_ID_CHARS);
            too_long(&mut p, "student_id", &l.student_id, MAX_ID_CHARS);
            too_long(
                &mut p,
                "reason",
                l.reason.as_deref().unwrap_or(""),
                MAX_TEXT_CHARS,
            );
            if !p.is_empty() {
                return Ok(Err(p));
            }
            if l.ends_at <= l.starts_at {
                return Ok(Err(vec!["leave ends_at is not after starts_at".into()]));
            }
            let known: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM students WHERE id = ?1)",
                    [&l.student_id],
                    |r| r.get(0),
                )
                .ctx("checking a student")?;
            if !known {
                return Ok(Err(vec![format!(
                    "student {} is unknown",
                    excerpt(&l.student_id)
                )]));
            }
            tx.execute(
                "INSERT INTO leaves (id, student_id, starts_at, ends_at, reason, origin, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'cloud', ?6)
                 ON CONFLICT (id) DO UPDATE SET student_id = ?2, starts_at = ?3, ends_at = ?4, reason = ?5",
                params![l.id, l.student_id, rfc3339(&l.starts_at), rfc3339(&l.ends_at), l.reason, now_utc()],
            )
            .ctx("storing leave")?;
            Ok(Ok(()))
        }
        DownlinkData::Notice(n) => {
            let mut p = Vec::new();
            too_long(&mut p, "id", &n.id, MAX_ID_CHARS);
            too_long(&mut p, "title", &n.title, MAX_TEXT_CHARS);
            too_long(&mut p, "body", &n.body, MAX_NOTICE_CHARS);
            if !p.is_empty() {
                return Ok(Err(p));
            }
            if let (Some(a), Some(b)) = (n.valid_from, n.valid_until)
                && b <= a
            {
                return Ok(Err(vec![
                    "notice valid_until is not after valid_from".into(),
                ]));
            }
            upsert_notice(tx, &n, &now_utc())?;
            Ok(Ok(()))
        }
    }
}

/// Everything a lesson's end writes, committed as one transaction by
/// [`StoreHandle::finalise_lesson`].
#[derive(Debug, Clone)]
pub struct LessonEnd {
    /// The lesson, with its final state (`ended` or `cancelled`).
    pub lesson: crate::LessonRow,
    /// Statuses for students still unmarked (a status already there wins).
    pub marks: Vec<Mark>,
    /// The lesson report (stored, and queued on `lesson_report`).
    pub report: serde_json::Value,
    /// The class's behaviour aggregates, queued on `behaviour` when there are any.
    pub behaviour: Option<serde_json::Value>,
    /// When the lesson was finalised.
    pub at: DateTime<FixedOffset>,
    /// Whether the board's clock was synchronised then.
    pub clock_synced: bool,
}

/// A status the engine sets at lesson end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// The student.
    pub student_id: String,
    /// Absent or leave.
    pub status: crate::AttendanceStatus,
}

impl StoreHandle {
    /// The roster of a lesson with each student's status so far (`None`: unmarked), in
    /// student id order.
    ///
    /// # Errors
    /// SQLite fails or a stored status is unknown.
    pub async fn lesson_roll(
        &self,
        lesson_id: String,
        roster_id: String,
    ) -> Result<Vec<(String, Option<crate::AttendanceStatus>)>> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare_cached(
                    "SELECT m.student_id, a.status FROM roster_members m
                     LEFT JOIN attendance a ON a.lesson_id = ?1 AND a.student_id = m.student_id
                     WHERE m.roster_id = ?2 ORDER BY m.student_id",
                )
                .ctx("reading a lesson's roll")?;
            let rows = stmt
                .query_map([&lesson_id, &roster_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
                })
                .ctx("reading a lesson's roll")?;
            let mut out = Vec::new();
            for row in rows {
                let (student, status) = row.ctx("reading a lesson's roll")?;
                let status = status
                    .map(|s| {
                        crate::AttendanceStatus::parse(&s).ok_or_else(|| {
                            Error::Invalid(format!("stored attendance status {s:?} is unknown"))
                        })
                    })
                    .transpose()?;
                out.push((student, status));
            }
            Ok(out)
        })
        .await
    }

    /// Whether a lesson already has its report (it was finalised).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn lesson_finalised(&self, lesson_id: String) -> Result<bool> {
        self.call(move |db| {
            db.conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM lesson_reports WHERE lesson_id = ?1)",
                    [lesson_id],
                    |r| r.get(0),
                )
                .ctx("checking a lesson report")
        })
        .await
    }

    /// Finalises a lesson in one transaction: marks the lesson ended, records `marks` (only
    /// for students still unmarked: a status already there wins) each with an `attendance`
    /// outbox record, and stores `report` with a `lesson_report` outbox record and the
    /// behaviour aggregates (if any) with a `behaviour` one. Returns the report's seq, or `None` if the lesson was finalised before (nothing changes then).
    ///
    /// # Errors
    /// SQLite fails (nothing is written then).
    pub async fn finalise_lesson(&self, end: LessonEnd) -> Result<Option<u64>> {
        let LessonEnd {
            lesson,
            marks,
            report,
            behaviour,
            at,
            clock_synced,
        } = end;
        let out = self
            .call(move |db| {
                let Db { conn, identity } = db;
                let tx = conn.transaction().ctx("starting a transaction")?;
                let done: bool = tx
                    .query_row("SELECT EXISTS (SELECT 1 FROM lesson_reports WHERE lesson_id = ?1)", [&lesson.id], |r| r.get(0))
                    .ctx("checking a lesson report")?;
                if done {
                    return Ok(None);
                }
                crate::store::upsert_lesson(&tx, &lesson)?;
                let mut e = Enqueuer::new(&tx, identity)?;
                for m in &marks {
                    let n = tx
                        .execute(
                            "INSERT INTO attendance (lesson_id, student_id, status, source, recorded_at, clock_synced)
                             VALUES (?1, ?2, ?3, 'system', ?4, ?5) ON CONFLICT DO NOTHING",
                            params![lesson.id, m.student_id, m.status.as_str(), rfc3339(&at), clock_synced],
                        )
                        .ctx("recording attendance")?;
                    if n == 1 {
                        e.push(OutboxRecord {
                            stream: Stream::Attendance,
                            captured_at: at,
                            clock_synced,
                            body: json!({
                                "lesson_id": lesson.id, "date": lesson.date, "period": lesson.period,
                                "subject": lesson.subject, "roster_id": lesson.roster_id,
                                "student_id": m.student_id, "status": m.status, "source": "system",
                            }),
                        })?;
                    }
                }
                tx.execute(
                    "INSERT INTO lesson_reports (lesson_id, report, created_at) VALUES (?1, ?2, ?3)",
                    params![lesson.id, serde_json::to_string(&report)?, now_utc()],
                )
                .ctx("storing a lesson report")?;
                let seq = e.push(OutboxRecord { stream: Stream::LessonReport, captured_at: at, clock_synced, body: report })?;
                if let Some(body) = behaviour {
                    // Same transaction as the report (docs/development.md): a crash cannot
                    // keep one and lose the other.
                    e.push(OutboxRecord { stream: Stream::Behaviour, captured_at: at, clock_synced, body })?;
                }
                e.finish()?;
                tx.commit().ctx("committing a lesson's end")?;
                Ok(Some(seq))
            })
            .await?;
        if out.is_some() {
            self.notify_outbox();
        }
        Ok(out)
    }

    /// The stored report of a lesson.
    ///
    /// # Errors
    /// SQLite fails or the stored report is not JSON.
    pub async fn lesson_report(&self, lesson_id: String) -> Result<Option<serde_json::Value>> {
        self.call(move |db| {
            let text: Option<String> = db
                .conn
                .query_row(
                    "SELECT report FROM lesson_reports WHERE lesson_id = ?1",
                    [lesson_id],
                    |r| r.get(0),
                )
                .optional()
                .ctx("reading a lesson report")?;
            Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
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
}

/// Who was seen on a day, for the morning-check follow-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayPresence {
    /// Members of the class rosters (kind `class`).
    pub class_members: Vec<String>,
    /// Students with a health check in the morning window.
    pub checked: std::collections::HashSet<String>,
    /// Students checked in (present or late) to any lesson that day.
    pub checked_in: std::collections::HashSet<String>,
    /// Students the teacher marked `leave` in a lesson that day.
    pub excused: std::collections::HashSet<String>,
}

impl StoreHandle {
    /// Who was seen on `date`: class roster members, morning health checks between
    /// `window` (inclusive, exclusive; local RFC 3339 bounds compared as instants), and
    /// check-ins to that day's lessons.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn day_presence(
        &self,
        date: chrono::NaiveDate,
        window: (DateTime<FixedOffset>, DateTime<FixedOffset>),
    ) -> Result<DayPresence> {
        self.call(move |db| {
            let conn = &db.conn;
            let strings = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<Vec<String>> {
                let mut stmt = conn.prepare_cached(sql).ctx("reading the day")?;
                let rows = stmt.query_map(p, |r| r.get::<_, String>(0)).ctx("reading the day")?;
                rows.collect::<rusqlite::Result<_>>().ctx("reading the day")
            };
            let class_members = strings(
                "SELECT DISTINCT m.student_id FROM roster_members m JOIN rosters r ON r.id = m.roster_id
                 WHERE r.kind = 'class' ORDER BY m.student_id",
                &[],
            )?;
            let mut checked = std::collections::HashSet::new();
            let mut stmt = conn
                .prepare_cached("SELECT student_id, checked_at FROM health_checks WHERE checked_at >= ?1")
                .ctx("reading health checks")?;
            let day_start = date.to_string();
            let rows = stmt
                .query_map([&day_start], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .ctx("reading health checks")?;
            for row in rows {
                let (student, at) = row.ctx("reading health checks")?;
                if DateTime::parse_from_rfc3339(&at).is_ok_and(|t| window.0 <= t && t < window.1) {
                    checked.insert(student);
                }
            }
            let checked_in = strings(
                "SELECT DISTINCT a.student_id FROM attendance a JOIN lessons l ON l.id = a.lesson_id
                 WHERE l.date = ?1 AND a.status IN ('present', 'late')",
                &[&day_start],
            )?
            .into_iter()
            .collect();
            let excused = strings(
                "SELECT DISTINCT a.student_id FROM attendance a JOIN lessons l ON l.id = a.lesson_id
                 WHERE l.date = ?1 AND a.status = 'leave'",
                &[&day_start],
            )?
            .into_iter()
            .collect();
            Ok(DayPresence { class_members, checked, checked_in, excused })
        })
        .await
    }

    /// Opens follow-ups for `students` on `date` (one per student per day: repeats change
    /// nothing), each with a `followup` outbox record, in one transaction. Returns how many
    /// were opened.
    ///
    /// # Errors
    /// SQLite fails (nothing is written then).
    pub async fn open_followups(
        &self,
        date: chrono::NaiveDate,
        students: Vec<String>,
        reason: String,
        at: DateTime<FixedOffset>,
        clock_synced: bool,
    ) -> Result<usize> {
        let n = self
            .call(move |db| {
                let Db { conn, identity } = db;
                let tx = conn.transaction().ctx("starting a transaction")?;
                let mut e = Enqueuer::new(&tx, identity)?;
                let mut opened = 0;
                for s in &students {
                    let id = format!("{date}/{s}");
                    let n = tx
                        .execute(
                            "INSERT INTO followups (id, student_id, date, reason, state, created_at)
                             VALUES (?1, ?2, ?3, ?4, 'open', ?5) ON CONFLICT DO NOTHING",
                            params![id, s, date.to_string(), reason, rfc3339(&at)],
                        )
                        .ctx("opening a follow-up")?;
                    if n == 1 {
                        opened += 1;
                        e.push(OutboxRecord {
                            stream: Stream::Followup,
                            captured_at: at,
                            clock_synced,
                            body: json!({"followup_id": id, "student_id": s, "date": date, "reason": reason, "state": "open"}),
                        })?;
                    }
                }
                e.finish()?;
                tx.commit().ctx("committing follow-ups")?;
                Ok(opened)
            })
            .await?;
        if n > 0 {
            self.notify_outbox();
        }
        Ok(n)
    }

    /// Open follow-ups of `date`: (follow-up id, student id).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn open_followup_list(
        &self,
        date: chrono::NaiveDate,
    ) -> Result<Vec<(String, String)>> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare_cached("SELECT id, student_id FROM followups WHERE date = ?1 AND state = 'open' ORDER BY id")
                .ctx("reading follow-ups")?;
            let rows = stmt
                .query_map([date.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                .ctx("reading follow-ups")?;
            rows.collect::<rusqlite::Result<_>>().ctx("reading follow-ups")
        })
        .await
    }
}
