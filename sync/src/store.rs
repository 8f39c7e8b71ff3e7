//! The store thread and its async handle.
//!
//! Design: one `std::thread` owns the `rusqlite::Connection`; async callers send closures over
//! a bounded tokio channel and await a oneshot reply (the tokio-rusqlite design). The channel
//! bound gives back-pressure instead of unbounded memory when the disk is slow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result, SqlContext};
use crate::limits::excerpt;
use crate::outbox::enqueue;
use crate::records::*;
use crate::{OutboxRecord, schema};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "ketang.db";

/// Who this device is: stamped into every outbox envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// School id.
    pub school_id: String,
    /// Device id.
    pub device_id: String,
    /// The classroom the device serves (in every uplink envelope).
    pub classroom_id: String,
}

/// What happened when the store was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// The database file.
    pub path: PathBuf,
    /// Where a corrupt database was moved, and why.
    pub quarantined: Option<(PathBuf, String)>,
    /// Schema version before migrating (0 = new database).
    pub from_version: usize,
    /// Schema version now.
    pub to_version: usize,
    /// SQLite library version.
    pub sqlite_version: String,
}

type Job = Box<dyn FnOnce(&mut Db) + Send>;

enum Msg {
    Job(Job),
    /// Delete acknowledged outbox rows (group-committed with the acks queued after it).
    Acked(Vec<u64>),
    Close(oneshot::Sender<Result<()>>),
}

pub(crate) struct Db {
    pub(crate) conn: Connection,
    pub(crate) identity: Identity,
}

/// Clonable async handle to the store thread.
#[derive(Debug, Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Msg>,
    /// Woken after every commit that appended to the outbox (the sync worker waits on it).
    pub(crate) outbox_changed: std::sync::Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Job(_) => "Job",
            Msg::Acked(_) => "Acked",
            Msg::Close(_) => "Close",
        })
    }
}

impl StoreHandle {
    /// Opens (creating, checking and migrating) the database in `data_dir` and starts the
    /// store thread.
    ///
    /// # Errors
    /// The data directory cannot be created or written; a corrupt database cannot be moved
    /// aside; SQLite refuses to open or migrate the file. A corrupt database that *can* be
    /// moved aside is not an error: see [`OpenReport::quarantined`].
    pub fn open(data_dir: &Path, identity: Identity) -> Result<(Self, OpenReport)> {
        Self::open_capped(data_dir, identity, None)
    }

    /// Like [`Self::open`], with the database file capped at `max_bytes`: past it, writes
    /// fail with [`Error::DiskFull`] exactly as on a full disk, and everything stored stays.
    ///
    /// # Errors
    /// As [`Self::open`].
    pub fn open_capped(
        data_dir: &Path,
        identity: Identity,
        max_bytes: Option<u64>,
    ) -> Result<(Self, OpenReport)> {
        std::fs::create_dir_all(data_dir).map_err(|source| Error::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        probe_writable(data_dir)?;
        let path = data_dir.join(DB_FILE);
        let quarantined = match check_existing(&path) {
            Ok(()) => None,
            Err(reason) => {
                let moved = quarantine(&path, &reason)?;
                tracing::error!(
                    corrupt = %path.display(),
                    moved_to = %moved.display(),
                    %reason,
                    "Database failed its integrity check and was moved aside; starting on a fresh database. Recover or report the moved file."
                );
                Some((moved, reason))
            }
        };
        let mut conn = Connection::open(&path).ctx("opening the database")?;
        configure(&conn)?;
        if let Some(max) = max_bytes {
            let page: i64 = conn
                .pragma_query_value(None, "page_size", |r| r.get(0))
                .ctx("reading the page size")?;
            let pages = (max / page.unsigned_abs().max(1)).max(1);
            conn.pragma_update(None, "max_page_count", pages.cast_signed())
                .ctx("capping the database size")?;
        }
        let from_version = user_version(&conn)?;
        schema::migrations().to_latest(&mut conn)?;
        let to_version = user_version(&conn)?;
        let report = OpenReport {
            path: path.clone(),
            quarantined,
            from_version,
            to_version,
            sqlite_version: rusqlite::version().to_owned(),
        };
        let (tx, rx) = mpsc::channel(256);
        let db = Db { conn, identity };
        std::thread::Builder::new()
            .name("ketang-store".into())
            .spawn(move || run(db, rx))
            .map_err(|source| Error::DataDir {
                path: data_dir.to_owned(),
                source,
            })?;
        Ok((
            Self {
                tx,
                outbox_changed: std::sync::Arc::default(),
            },
            report,
        ))
    }

    /// Runs `f` on the store thread.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |db| {
            let _ = reply.send(f(db));
        });
        self.tx
            .send(Msg::Job(job))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Queues `f` on the store thread without waiting for it to run. Jobs run in order, so a
    /// later [`Self::call`] sees its effect. Errors are logged.
    pub(crate) async fn call_nowait<F>(&self, what: &'static str, f: F) -> Result<()>
    where
        F: FnOnce(&mut Db) -> Result<()> + Send + 'static,
    {
        let job: Job = Box::new(move |db| {
            if let Err(e) = f(db) {
                tracing::error!(error = %e, what, "Store job failed.");
            }
        });
        self.tx.send(Msg::Job(job)).await.map_err(|_| Error::Closed)
    }

    /// Queues the deletion of acknowledged outbox rows without waiting.
    pub(crate) async fn send_acked(&self, seqs: Vec<u64>) -> Result<()> {
        self.tx
            .send(Msg::Acked(seqs))
            .await
            .map_err(|_| Error::Closed)
    }

    /// Wakes outbox waiters (after a commit that appended records).
    pub(crate) fn notify_outbox(&self) {
        self.outbox_changed.notify_one();
    }

    /// Flushes the WAL into the main file and stops the store thread. Later calls on any
    /// clone of this handle return [`Error::Closed`].
    ///
    /// # Errors
    /// The checkpoint failed (the data is still safe in the WAL).
    pub async fn shutdown(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Close(reply))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Checks that the store thread answers and the database reads.
    ///
    /// # Errors
    /// The thread is gone or SQLite fails.
    pub async fn ping(&self) -> Result<()> {
        self.call(|db| {
            db.conn
                .query_row("SELECT 1", [], |_| Ok(()))
                .ctx("pinging the database")
        })
        .await
    }

    /// Replaces students, cards, rosters, timetable and cloud notices in one transaction.
    /// Students who disappear are kept (their history refers to them) but lose their cards
    /// and roster places.
    ///
    /// # Errors
    /// [`Error::Invalid`] lists every problem found (duplicate card UIDs, unknown roster
    /// members or rosters, duplicate periods); nothing is changed then.
    pub async fn replace_school(&self, snapshot: SchoolSnapshot) -> Result<()> {
        let problems = check_snapshot(&snapshot);
        if !problems.is_empty() {
            return Err(Error::Invalid(problems.join("; ")));
        }
        self.call(move |db| {
            let now = now_utc();
            let tx = db.conn.transaction().ctx("starting a transaction")?;
            tx.execute_batch(
                "DELETE FROM timetable_periods; DELETE FROM roster_members; DELETE FROM rosters;
                 DELETE FROM cards; DELETE FROM notices WHERE origin = 'cloud';",
            )
            .ctx("clearing the previous school data")?;
            insert_students(&tx, &snapshot.students, &now)?;
            insert_rosters(&tx, &snapshot.rosters)?;
            insert_periods(&tx, &snapshot.periods)?;
            replace_staff(&tx, &snapshot.staff, &now)?;
            for n in &snapshot.notices {
                upsert_notice(&tx, n, &now)?;
            }
            tx.commit().ctx("committing the school data")
        })
        .await
    }

    /// How many students, cards and timetable periods are stored.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn school_counts(&self) -> Result<(u64, u64, u64)> {
        self.call(|db| {
            db.conn
                .query_row(
                    "SELECT (SELECT count(*) FROM students), (SELECT count(*) FROM cards),
                            (SELECT count(*) FROM timetable_periods)",
                    [],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )
                .map(|(a, b, c)| (a.unsigned_abs(), b.unsigned_abs(), c.unsigned_abs()))
                .ctx("counting school data")
        })
        .await
    }

    /// The weekly timetable, ordered by weekday and period.
    ///
    /// # Errors
    /// SQLite fails, or a stored time does not parse.
    pub async fn timetable(&self) -> Result<Vec<Period>> {
        self.call(|db| {
            let mut stmt = db
                .conn
                .prepare(
                    "SELECT weekday, period, starts, ends, subject, teacher, room, roster_id
                     FROM timetable_periods ORDER BY weekday, period",
                )
                .ctx("reading the timetable")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, u8>(0)?,
                        r.get::<_, u8>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, String>(7)?,
                    ))
                })
                .ctx("reading the timetable")?;
            let mut out = Vec::new();
            for row in rows {
                let (weekday, period, starts, ends, subject, teacher, room, roster_id) =
                    row.ctx("reading the timetable")?;
                let parse = |s: &str| {
                    chrono::NaiveTime::parse_from_str(s, "%H:%M").map_err(|e| {
                        Error::Invalid(format!("stored period time {s:?} does not parse: {e}"))
                    })
                };
                out.push(Period {
                    weekday,
                    period,
                    starts: parse(&starts)?,
                    ends: parse(&ends)?,
                    subject,
                    teacher,
                    room,
                    roster_id,
                });
            }
            Ok(out)
        })
        .await
    }

    /// The student who owns card `uid`, as (id, name).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn card_owner(&self, uid: String) -> Result<Option<(String, String)>> {
        self.call(move |db| {
            db.conn
                .query_row(
                    "SELECT s.id, s.name FROM cards c JOIN students s ON s.id = c.student_id WHERE c.uid = ?1",
                    [uid],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .ctx("looking up a card")
        })
        .await
    }

    /// Whether `student_id` is on roster `roster_id`.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn on_roster(&self, roster_id: String, student_id: String) -> Result<bool> {
        self.call(move |db| {
            db.conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM roster_members WHERE roster_id = ?1 AND student_id = ?2)",
                    [roster_id, student_id],
                    |r| r.get(0),
                )
                .ctx("checking a roster")
        })
        .await
    }

    /// Records a check-in if the student has no status for the lesson yet, together with its
    /// tap and its outbox record, in one durable transaction. A repeat changes nothing but the
    /// tap log.
    ///
    /// # Errors
    /// SQLite fails (nothing is written then), e.g. [`Error::DiskFull`].
    pub async fn check_in(&self, check_in: CheckIn) -> Result<CheckInOutcome> {
        self.call(move |db| {
            let Db { conn, identity } = db;
            let tx = conn.transaction().ctx("starting a transaction")?;
            upsert_lesson(&tx, &check_in.lesson)?;
            let existing: Option<String> = tx
                .query_row(
                    "SELECT status FROM attendance WHERE lesson_id = ?1 AND student_id = ?2",
                    [&check_in.lesson.id, &check_in.student_id],
                    |r| r.get(0),
                )
                .optional()
                .ctx("reading attendance")?;
            let outcome = if let Some(status) = existing {
                let status = AttendanceStatus::parse(&status).ok_or_else(|| {
                    Error::Invalid(format!("stored attendance status {status:?} is unknown"))
                })?;
                if let Some(mut tap) = check_in.tap {
                    tap.outcome = CardTapOutcome::Repeat;
                    insert_tap(&tx, &tap)?;
                }
                CheckInOutcome::AlreadyRecorded { status }
            } else {
                tx.execute(
                    "INSERT INTO attendance (lesson_id, student_id, status, source, recorded_at, clock_synced, recorded_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        check_in.lesson.id,
                        check_in.student_id,
                        check_in.status.as_str(),
                        check_in.source.as_str(),
                        rfc3339(&check_in.outbox.captured_at),
                        check_in.outbox.clock_synced,
                        check_in.recorded_by,
                    ],
                )
                .ctx("recording attendance")?;
                if let Some(tap) = &check_in.tap {
                    insert_tap(&tx, tap)?;
                }
                let seq = enqueue(&tx, identity, check_in.outbox)?;
                CheckInOutcome::Recorded { seq }
            };
            tx.commit().ctx("committing a check-in")?;
            Ok(outcome)
        })
        .await
        .inspect(|o| {
            if matches!(o, CheckInOutcome::Recorded { .. }) {
                self.notify_outbox();
            }
        })
    }

    /// Logs a tap that recorded no attendance (unknown card, not on roster, no lesson).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn record_tap(&self, tap: TapRecord) -> Result<()> {
        self.call(move |db| {
            let tx = db.conn.transaction().ctx("starting a transaction")?;
            insert_tap(&tx, &tap)?;
            tx.commit().ctx("committing a card tap")
        })
        .await
    }

    /// Stores a health-check result and its outbox record; returns the seq.
    ///
    /// # Errors
    /// SQLite fails (nothing is written then).
    pub async fn record_health_check(
        &self,
        check: HealthCheckRecord,
        outbox: OutboxRecord,
        audit: Option<crate::Audit>,
    ) -> Result<u64> {
        self.call(move |db| {
            let Db { conn, identity } = db;
            let tx = conn.transaction().ctx("starting a transaction")?;
            tx.execute(
                "INSERT INTO health_checks (student_id, check_window, temp_c, fever, checked_at, clock_synced, symptoms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    check.student_id,
                    check.window,
                    check.temp_c,
                    check.fever,
                    rfc3339(&check.at),
                    check.clock_synced,
                    (!check.symptoms.is_empty()).then(|| check.symptoms.join(",")),
                ],
            )
            .ctx("recording a health check")?;
            if let Some(a) = &audit {
                crate::store_class::insert_audit(&tx, a)?;
            }
            let seq = enqueue(&tx, identity, outbox)?;
            tx.commit().ctx("committing a health check")?;
            Ok(seq)
        })
        .await
        .inspect(|_| self.notify_outbox())
    }

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

    /// Rows waiting in the outbox, per stream.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn outbox_pending(&self) -> Result<BTreeMap<String, u64>> {
        self.call(|db| q_pending(&db.conn)).await
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

    /// Attendance counts for a lesson against its roster.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn lesson_summary(
        &self,
        lesson_id: String,
        roster_id: String,
    ) -> Result<LessonSummary> {
        self.call(move |db| q_summary(&db.conn, &lesson_id, &roster_id))
            .await
    }

    /// Notices valid at `now`, highest priority first.
    ///
    /// # Errors
    /// SQLite fails or a stored time does not parse.
    pub async fn active_notices(&self, now: DateTime<FixedOffset>) -> Result<Vec<NoticeRow>> {
        self.call(move |db| q_notices(&db.conn, now)).await
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

fn q_alarms(conn: &Connection) -> Result<Vec<AlarmRecord>> {
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

fn q_pending(conn: &Connection) -> Result<BTreeMap<String, u64>> {
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

fn q_summary(conn: &Connection, lesson_id: &str, roster_id: &str) -> Result<LessonSummary> {
    let roster: u32 = conn
        .query_row(
            "SELECT count(*) FROM roster_members WHERE roster_id = ?1",
            [roster_id],
            |r| r.get(0),
        )
        .ctx("counting a roster")?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT status, count(*) FROM attendance WHERE lesson_id = ?1 GROUP BY status",
        )
        .ctx("counting attendance")?;
    let rows = stmt
        .query_map([lesson_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?))
        })
        .ctx("counting attendance")?;
    let mut s = LessonSummary {
        roster,
        ..LessonSummary::default()
    };
    let mut marked = 0;
    for row in rows {
        let (status, n) = row.ctx("counting attendance")?;
        marked += n;
        match AttendanceStatus::parse(&status) {
            Some(AttendanceStatus::Present) => s.present = n,
            Some(AttendanceStatus::Late) => s.late = n,
            Some(AttendanceStatus::Absent) => s.absent = n,
            Some(AttendanceStatus::Leave) => s.leave = n,
            Some(AttendanceStatus::Sick) => s.sick = n,
            None => {}
        }
    }
    s.unmarked = roster.saturating_sub(marked);
    Ok(s)
}

fn q_notices(conn: &Connection, now: DateTime<FixedOffset>) -> Result<Vec<NoticeRow>> {
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

fn run(mut db: Db, mut rx: mpsc::Receiver<Msg>) {
    let mut next = None;
    while let Some(msg) = next.take().or_else(|| rx.blocking_recv()) {
        match msg {
            Msg::Job(job) => {
                // Design: a panicking job must not take the store down with it. Its
                // transaction rolls back on unwind and its caller gets `Error::Closed`
                // for that one call; the thread goes on serving the rest.
                let run = std::panic::AssertUnwindSafe(|| job(&mut db));
                if std::panic::catch_unwind(run).is_err() {
                    tracing::error!("A store job panicked; its transaction was rolled back.");
                }
            }
            Msg::Acked(mut seqs) => {
                // Group commit: take every ack job already queued behind this one, so a
                // fast broker costs one transaction per burst, not per PUBACK batch.
                while let Ok(m) = rx.try_recv() {
                    match m {
                        Msg::Acked(more) => seqs.extend(more),
                        other => {
                            next = Some(other);
                            break;
                        }
                    }
                }
                if let Err(e) = crate::store_sync::delete_acked(&mut db, &seqs) {
                    tracing::error!(error = %e, "Deleting acknowledged outbox rows failed; they will be sent again.");
                }
            }
            Msg::Close(reply) => {
                let result = db
                    .conn
                    .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                    .ctx("checkpointing the WAL");
                let result = result.and_then(|()| {
                    db.conn
                        .close()
                        .map_err(|(_, e)| e)
                        .ctx("closing the database")
                });
                tracing::info!(ok = result.is_ok(), "Store flushed and closed.");
                let _ = reply.send(result);
                return;
            }
        }
    }
    // All handles dropped without a shutdown: the connection closes on drop; committed
    // transactions are durable already (synchronous = FULL).
}

fn user_version(conn: &Connection) -> Result<usize> {
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .ctx("reading the schema version")?;
    usize::try_from(v).map_err(|_| Error::Invalid(format!("schema version {v} is negative")))
}

fn configure(conn: &Connection) -> Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")
        .ctx("enabling WAL")?;
    // Design: FULL makes every commit durable on return in WAL mode (NORMAL may lose the last
    // commits on power loss). Schools cut power every night; attendance must survive it.
    conn.pragma_update(None, "synchronous", "FULL")
        .ctx("setting synchronous = FULL")?;
    // Deleted rows (face templates above all) are zeroed where that costs no extra I/O.
    conn.pragma_update(None, "secure_delete", "FAST")
        .ctx("setting secure_delete")?;
    conn.pragma_update(None, "foreign_keys", true)
        .ctx("enabling foreign keys")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .ctx("setting the busy timeout")?;
    Ok(())
}

fn probe_writable(dir: &Path) -> Result<()> {
    let probe = dir.join(".ketang-write-probe");
    std::fs::write(&probe, b"ok")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|source| Error::DataDir {
            path: dir.to_owned(),
            source,
        })
}

/// `Ok` when `path` is absent or passes `PRAGMA quick_check`; otherwise the reason.
fn check_existing(path: &Path) -> std::result::Result<(), String> {
    if !path.exists() {
        return Ok(());
    }
    let conn = match Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE) {
        Ok(c) => c,
        Err(e) if is_corruption(&e) => return Err(e.to_string()),
        // Not corruption (permissions, I/O): let the real open report it.
        Err(_) => return Ok(()),
    };
    let rows = conn.prepare("PRAGMA quick_check").and_then(|mut stmt| {
        stmt.query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()
    });
    match rows {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Ok(()),
        Ok(rows) => Err(rows.into_iter().take(5).collect::<Vec<_>>().join("; ")),
        Err(e) if is_corruption(&e) => Err(e.to_string()),
        Err(_) => Ok(()),
    }
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if matches!(f.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt))
}

/// Moves `path` (and its -wal/-shm) to `path.corrupt-<UTC timestamp>`; returns the new path.
fn quarantine(path: &Path, reason: &str) -> Result<PathBuf> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let moved = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    std::fs::rename(path, &moved).map_err(|source| Error::Quarantine {
        path: path.to_owned(),
        reason: reason.to_owned(),
        source,
    })?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            let to = PathBuf::from(format!("{}{suffix}", moved.display()));
            std::fs::rename(&side, &to).map_err(|source| Error::Quarantine {
                path: side.clone(),
                reason: reason.to_owned(),
                source,
            })?;
        }
    }
    Ok(moved)
}

/// Longest id (student, roster, staff, card UID, class) the board accepts: ids travel in
/// outbox records, so they must stay small.
pub const MAX_ID_CHARS: usize = 64;
/// Longest name (student, staff, roster) the board accepts.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest free text (a reason, a notice title) the board accepts.
pub const MAX_TEXT_CHARS: usize = 500;
/// Longest notice body the board accepts.
pub const MAX_NOTICE_CHARS: usize = 5000;
/// Most cards one person may own.
pub const MAX_CARDS_PER_PERSON: usize = 8;

/// Bounds on the Argon2 parameters of a PIN hash: memory (KiB), iterations, lanes. The
/// board's own hashes use 19 MiB, 2, 1 (argon2's defaults); a check may cost at most
/// 64 MiB and a few hundred milliseconds on a board.
pub const MAX_PIN_HASH_COST: (u32, u32, u32) = (64 * 1024, 8, 4);

/// Whether the PHC string `hash` (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) stays within
/// [`MAX_PIN_HASH_COST`]; `Err` says which parameter does not.
///
/// # Errors
/// A parameter is missing, malformed or too high.
pub fn pin_hash_cost_ok(hash: &str) -> std::result::Result<(), String> {
    let params = hash
        .split('$')
        .find(|part| part.contains("m="))
        .ok_or_else(|| "has no m=,t=,p= parameters".to_owned())?;
    let (max_m, max_t, max_p) = MAX_PIN_HASH_COST;
    for (key, max) in [("m", max_m), ("t", max_t), ("p", max_p)] {
        let value = params
            .split(',')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .ok_or_else(|| format!("has no {key}= parameter"))?;
        let n: u32 = value
            .parse()
            .map_err(|_| format!("has a malformed {key}= parameter"))?;
        if n > max {
            return Err(format!(
                "asks for {key}={n}, at most {key}={max} is accepted"
            ));
        }
    }
    Ok(())
}

/// Adds a problem when `value` (at `field`) is longer than `max` characters.
pub(crate) fn too_long(problems: &mut Vec<String>, field: &str, value: &str, max: usize) {
    let n = value.chars().count();
    if n > max {
        problems.push(format!(
            "{field}: {} is {n} characters long, at most {max}",
            excerpt(value)
        ));
    }
}

pub(crate) fn check_snapshot(s: &SchoolSnapshot) -> Vec<String> {
    use std::collections::{HashMap, HashSet};
    let mut problems = Vec::new();
    let mut students = HashSet::new();
    let mut owners: HashMap<&str, &str> = HashMap::new();
    for (i, st) in s.students.iter().enumerate() {
        if st.id.trim().is_empty() {
            problems.push(format!("students[{i}]: empty student id"));
        }
        too_long(
            &mut problems,
            &format!("students[{i}].id"),
            &st.id,
            MAX_ID_CHARS,
        );
        too_long(
            &mut problems,
            &format!("students[{i}].name"),
            &st.name,
            MAX_NAME_CHARS,
        );
        too_long(
            &mut problems,
            &format!("students[{i}].class_id"),
            &st.class_id,
            MAX_ID_CHARS,
        );
        if st.cards.len() > MAX_CARDS_PER_PERSON {
            problems.push(format!(
                "students[{i}]: {} cards, at most {MAX_CARDS_PER_PERSON}",
                st.cards.len()
            ));
        }
        for uid in &st.cards {
            too_long(
                &mut problems,
                &format!("students[{i}].cards"),
                uid,
                MAX_ID_CHARS,
            );
        }
        if !students.insert(st.id.as_str()) {
            problems.push(format!(
                "students[{i}]: student id {} appears twice",
                excerpt(&st.id)
            ));
        }
        for uid in &st.cards {
            if let Some(prev) = owners.insert(uid.as_str(), st.id.as_str()) {
                // The UID itself is not repeated in the message: it may end up in logs.
                problems.push(format!(
                    "students[{i}]: a card UID of student {} is also owned by student {}",
                    excerpt(&st.id),
                    excerpt(prev)
                ));
            }
        }
    }
    let mut rosters = HashSet::new();
    for (i, r) in s.rosters.iter().enumerate() {
        rosters.insert(r.id.as_str());
        too_long(
            &mut problems,
            &format!("rosters[{i}].id"),
            &r.id,
            MAX_ID_CHARS,
        );
        too_long(
            &mut problems,
            &format!("rosters[{i}].name"),
            &r.name,
            MAX_NAME_CHARS,
        );
        if r.kind != "class" && r.kind != "elective" {
            problems.push(format!(
                "rosters[{i}]: kind {} is not \"class\" or \"elective\"",
                excerpt(&r.kind)
            ));
        }
        for m in &r.members {
            if !students.contains(m.as_str()) {
                problems.push(format!(
                    "rosters[{i}] ({}): member {} is not a known student",
                    excerpt(&r.id),
                    excerpt(m)
                ));
            }
        }
    }
    problems.extend(check_periods(&s.periods, |r| rosters.contains(r)));
    let mut staff = HashSet::new();
    for (i, t) in s.staff.iter().enumerate() {
        if t.id.trim().is_empty() || t.name.trim().is_empty() {
            problems.push(format!("staff[{i}]: empty staff id or name"));
        }
        too_long(
            &mut problems,
            &format!("staff[{i}].id"),
            &t.id,
            MAX_ID_CHARS,
        );
        too_long(
            &mut problems,
            &format!("staff[{i}].name"),
            &t.name,
            MAX_NAME_CHARS,
        );
        if t.cards.len() > MAX_CARDS_PER_PERSON {
            problems.push(format!(
                "staff[{i}]: {} cards, at most {MAX_CARDS_PER_PERSON}",
                t.cards.len()
            ));
        }
        if !staff.insert(t.id.as_str()) {
            problems.push(format!(
                "staff[{i}]: staff id {} appears twice",
                excerpt(&t.id)
            ));
        }
        if let Some(h) = &t.pin_hash {
            if !(h.starts_with("$argon2id$") || h.starts_with("$argon2i$")) {
                problems.push(format!(
                    "staff[{i}] ({}): pin_hash is not an Argon2 PHC string ($argon2id$...)",
                    excerpt(&t.id)
                ));
            } else if let Err(e) = pin_hash_cost_ok(h) {
                problems.push(format!("staff[{i}] ({}): pin_hash {e}", excerpt(&t.id)));
            }
        }
        for uid in &t.cards {
            if let Some(prev) = owners.insert(uid.as_str(), t.id.as_str()) {
                problems.push(format!(
                    "staff[{i}]: a card UID of staff {} is also owned by {}",
                    excerpt(&t.id),
                    excerpt(prev)
                ));
            }
        }
    }
    problems
}

/// Replaces the staff list: staff no longer listed lose access.
pub(crate) fn replace_staff(tx: &Connection, staff: &[crate::StaffRow], now: &str) -> Result<()> {
    tx.execute_batch("DELETE FROM staff_cards; DELETE FROM staff;")
        .ctx("clearing staff")?;
    for t in staff {
        tx.execute(
            "INSERT INTO staff (id, name, pin_hash, updated_at) VALUES (?1, ?2, ?3, ?4)",
            params![t.id, t.name, t.pin_hash, now],
        )
        .ctx("storing a teacher")?;
        for uid in &t.cards {
            tx.execute(
                "INSERT INTO staff_cards (uid, staff_id) VALUES (?1, ?2)",
                params![uid, t.id],
            )
            .ctx("storing a staff card")?;
        }
    }
    Ok(())
}

/// Inserts or updates students and inserts their cards (cards must have been cleared).
pub(crate) fn insert_students(tx: &Connection, students: &[StudentRow], now: &str) -> Result<()> {
    for s in students {
        tx.execute(
            "INSERT INTO students (id, name, class_id, gender, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET name = ?2, class_id = ?3, gender = ?4, updated_at = ?5",
            params![s.id, s.name, s.class_id, s.gender, now],
        )
        .ctx("storing a student")?;
        // The roster is authoritative for consents it gave (docs/privacy.md).
        match &s.face_consent {
            Some(at) => {
                tx.execute(
                    "INSERT INTO face_consent (student_id, granted_at, source) VALUES (?1, ?2, 'roster')
                     ON CONFLICT (student_id) DO UPDATE SET granted_at = excluded.granted_at
                     WHERE face_consent.source = 'roster'",
                    params![s.id, at],
                )
                .ctx("storing consent")?;
            }
            None => {
                let templates: i64 = tx
                    .query_row(
                        "SELECT count(*) FROM face_templates WHERE student_id = ?1",
                        [&s.id],
                        |r| r.get(0),
                    )
                    .ctx("counting face templates")?;
                let withdrawn = tx
                    .execute(
                        "DELETE FROM face_consent WHERE student_id = ?1 AND source = 'roster'",
                        [&s.id],
                    )
                    .ctx("withdrawing consent")?;
                if withdrawn > 0 {
                    // Templates went with the consent (ON DELETE CASCADE).
                    tx.execute(
                        "INSERT INTO audit_log (at, clock_synced, actor, role, action, target, detail)
                         VALUES (?1, 1, 'cloud', 'roster', 'face.consent_withdrawn', ?2, ?3)",
                        params![
                            now,
                            s.id,
                            format!("{{\"source\":\"roster\",\"templates_deleted\":{templates}}}")
                        ],
                    )
                    .ctx("writing the audit log")?;
                }
            }
        }
        for uid in &s.cards {
            tx.execute(
                "INSERT INTO cards (uid, student_id) VALUES (?1, ?2)",
                params![uid, s.id],
            )
            .ctx("storing a card")?;
        }
    }
    Ok(())
}

/// Inserts or renames rosters and inserts their members (members must have been cleared).
pub(crate) fn insert_rosters(tx: &Connection, rosters: &[Roster]) -> Result<()> {
    for r in rosters {
        tx.execute(
            "INSERT INTO rosters (id, name, kind) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET name = ?2, kind = ?3",
            params![r.id, r.name, r.kind],
        )
        .ctx("storing a roster")?;
        for m in &r.members {
            tx.execute(
                "INSERT INTO roster_members (roster_id, student_id) VALUES (?1, ?2)",
                params![r.id, m],
            )
            .ctx("storing a roster member")?;
        }
    }
    Ok(())
}

/// Inserts timetable periods (the timetable must have been cleared).
pub(crate) fn insert_periods(tx: &Connection, periods: &[Period]) -> Result<()> {
    for p in periods {
        tx.execute(
            "INSERT INTO timetable_periods (weekday, period, starts, ends, subject, teacher, room, roster_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                p.weekday,
                p.period,
                p.starts.format("%H:%M").to_string(),
                p.ends.format("%H:%M").to_string(),
                p.subject,
                p.teacher,
                p.room,
                p.roster_id
            ],
        )
        .ctx("storing a timetable period")?;
    }
    Ok(())
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

/// Every problem of a timetable: unknown rosters, weekdays outside 1..7, periods that end
/// before they start, a (weekday, period) given twice, and periods that overlap in time.
pub(crate) fn check_periods(
    periods: &[Period],
    known_roster: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut slots = std::collections::HashSet::new();
    for (i, p) in periods.iter().enumerate() {
        if !known_roster(&p.roster_id) {
            problems.push(format!(
                "periods[{i}]: roster {} is unknown; send the roster first",
                excerpt(&p.roster_id)
            ));
        }
        if !(1..=7).contains(&p.weekday) {
            problems.push(format!("periods[{i}]: weekday {} is not 1..7", p.weekday));
        }
        if p.ends <= p.starts {
            problems.push(format!(
                "periods[{i}]: ends {} is not after starts {}",
                p.ends, p.starts
            ));
        }
        if !slots.insert((p.weekday, p.period)) {
            problems.push(format!(
                "periods[{i}]: weekday {} period {} appears twice",
                p.weekday, p.period
            ));
        }
    }
    let mut by_day: Vec<&Period> = periods.iter().collect();
    by_day.sort_by_key(|p| (p.weekday, p.starts));
    for w in by_day.windows(2) {
        if w[0].weekday == w[1].weekday && w[1].starts < w[0].ends {
            problems.push(format!(
                "weekday {}: period {} ({}-{}) overlaps period {} ({}-{})",
                w[0].weekday,
                w[0].period,
                w[0].starts,
                w[0].ends,
                w[1].period,
                w[1].starts,
                w[1].ends
            ));
        }
    }
    problems
}

pub(crate) fn upsert_lesson(tx: &rusqlite::Transaction<'_>, l: &LessonRow) -> Result<()> {
    tx.execute(
        "INSERT INTO lessons (id, date, period, subject, teacher, roster_id, starts_at, ends_at, state, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (id) DO UPDATE SET
           state = CASE WHEN lessons.state = 'cancelled' THEN 'cancelled' ELSE ?9 END, updated_at = ?10",
        params![
            l.id,
            l.date.to_string(),
            l.period,
            l.subject,
            l.teacher,
            l.roster_id,
            rfc3339(&l.starts_at),
            rfc3339(&l.ends_at),
            l.state,
            now_utc()
        ],
    )
    .ctx("storing a lesson")?;
    Ok(())
}

fn insert_tap(tx: &rusqlite::Transaction<'_>, t: &TapRecord) -> Result<()> {
    tx.execute(
        "INSERT INTO card_taps (reader, uid, student_id, lesson_id, outcome, tapped_at, clock_synced)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            t.reader,
            t.uid,
            t.student_id,
            t.lesson_id,
            t.outcome.as_str(),
            rfc3339(&t.at),
            t.clock_synced
        ],
    )
    .ctx("logging a card tap")?;
    Ok(())
}

pub(crate) fn rfc3339(t: &DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, false)
}

pub(crate) fn now_utc() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(s: &str) -> Result<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s)
        .map_err(|e| Error::Invalid(format!("stored time {s:?} does not parse: {e}")))
}
