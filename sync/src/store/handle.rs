//! The store thread and its async handle.
//!
//! Design: one `std::thread` owns the `rusqlite::Connection`; async callers send closures over
//! a bounded tokio channel and await a oneshot reply (the tokio-rusqlite design). The channel
//! bound gives back-pressure instead of unbounded memory when the disk is slow. Opening checks
//! the file (`PRAGMA quick_check`), moves a corrupt one aside, and migrates the schema.

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result, SqlContext};
use crate::schema;

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
                if let Err(e) = delete_acked(&mut db, &seqs) {
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

pub(super) fn with_normal_sync<T>(db: &mut Db, f: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
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

pub(crate) fn rfc3339(t: &DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, false)
}

pub(crate) fn now_utc() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn parse_time(s: &str) -> Result<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s)
        .map_err(|e| Error::Invalid(format!("stored time {s:?} does not parse: {e}")))
}

/// Deletes acknowledged rows in one transaction (synchronous = NORMAL, see above).
fn delete_acked(db: &mut Db, seqs: &[u64]) -> Result<()> {
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
