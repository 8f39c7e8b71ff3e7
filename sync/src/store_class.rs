//! What teachers (and technicians) do to the classroom's state: lesson control, attendance
//! overrides, follow-up resolution, alarm clearing, local notices and leave. Each action is
//! one transaction holding the state change, its audit row and, where the cloud needs it,
//! its outbox record: no state without its record, no record without its state.
//!
//! The store keeps what it is told; the rules (who may do what, when) live in the daemon's
//! engine.

use chrono::{DateTime, FixedOffset, NaiveDate};
use rusqlite::{OptionalExtension as _, params};
use serde::Serialize;
use serde_json::json;

use crate::error::SqlContext as _;
use crate::outbox::{Enqueuer, enqueue};
use crate::store::{Db, now_utc, rfc3339, upsert_lesson};
use crate::{AttendanceSource, AttendanceStatus, Error, LessonRow, OutboxRecord, Result, Stream};
use crate::{NoticeRow, StoreHandle};

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

/// What a teacher did to a lesson (stored with it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LessonControl {
    /// Started (early) by the teacher at.
    pub started_at: Option<DateTime<FixedOffset>>,
    /// Ended (early) by the teacher at.
    pub ended_at: Option<DateTime<FixedOffset>>,
    /// Cancelled.
    pub cancelled: bool,
    /// Finalised (its report exists).
    pub finalised: bool,
}

/// A teacher, for login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffLogin {
    /// Staff id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Argon2 PHC hash of the PIN, if any.
    pub pin_hash: Option<String>,
}

/// One student on a lesson's roll, for the teacher's roster grid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollEntry {
    /// Student id.
    pub student_id: String,
    /// Name.
    pub name: String,
    /// Status, if marked.
    pub status: Option<AttendanceStatus>,
    /// card / face / manual / system.
    pub source: Option<String>,
    /// Who recorded it (manual).
    pub recorded_by: Option<String>,
}

/// A follow-up (因病缺勤追踪) with the student's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FollowupRow {
    /// "YYYY-MM-DD/student".
    pub id: String,
    /// Student id.
    pub student_id: String,
    /// Name.
    pub name: String,
    /// Why it was opened.
    pub reason: String,
    /// open / resolved.
    pub state: String,
    /// The teacher's resolution.
    pub resolution: Option<String>,
    /// Whether the guardian was contacted.
    pub contacted_guardian: Option<bool>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
}

/// A health-check result of a day, for lesson reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayHealth {
    /// Student id.
    pub student_id: String,
    /// morning / noon / evening / other.
    pub window: String,
    /// Temperature.
    pub temp_c: Option<f64>,
    /// Fever.
    pub fever: bool,
    /// Symptoms entered.
    pub symptoms: Vec<String>,
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

fn staff_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StaffLogin> {
    Ok(StaffLogin {
        id: r.get(0)?,
        name: r.get(1)?,
        pin_hash: r.get(2)?,
    })
}

fn opt_time(s: Option<String>) -> Result<Option<DateTime<FixedOffset>>> {
    s.map(|s| {
        DateTime::parse_from_rfc3339(&s)
            .map_err(|e| Error::Invalid(format!("stored time {s:?} does not parse: {e}")))
    })
    .transpose()
}

impl StoreHandle {
    /// What teachers did to lessons dated `from` or later, by lesson id.
    ///
    /// # Errors
    /// SQLite fails or a stored time does not parse.
    pub async fn lesson_controls(&self, from: NaiveDate) -> Result<Vec<(String, LessonControl)>> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare_cached(
                    "SELECT l.id, l.started_at_actual, l.ended_at_actual, l.state,
                            EXISTS (SELECT 1 FROM lesson_reports r WHERE r.lesson_id = l.id)
                     FROM lessons l WHERE l.date >= ?1",
                )
                .ctx("reading lessons")?;
            let rows = stmt
                .query_map([from.to_string()], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, bool>(4)?,
                    ))
                })
                .ctx("reading lessons")?;
            let mut out = Vec::new();
            for row in rows {
                let (id, started, ended, state, finalised) = row.ctx("reading lessons")?;
                out.push((
                    id,
                    LessonControl {
                        started_at: opt_time(started)?,
                        ended_at: opt_time(ended)?,
                        cancelled: state == "cancelled",
                        finalised,
                    },
                ));
            }
            Ok(out)
        })
        .await
    }

    /// Stores a teacher's lesson action (start early, end early, cancel): the lesson row with
    /// its new state and times, the audit row and a `lesson` outbox record. Returns the seq.
    ///
    /// # Errors
    /// SQLite fails (nothing is written then).
    pub async fn control_lesson(
        &self,
        lesson: LessonRow,
        control: LessonControl,
        audit: Audit,
        outbox: OutboxRecord,
    ) -> Result<u64> {
        self.call(move |db| {
            let Db { conn, identity } = db;
            let tx = conn.transaction().ctx("starting a transaction")?;
            upsert_lesson(&tx, &lesson)?;
            tx.execute(
                "UPDATE lessons SET started_at_actual = ?2, ended_at_actual = ?3, changed_by = ?4,
                   state = ?5 WHERE id = ?1",
                params![
                    lesson.id,
                    control.started_at.as_ref().map(rfc3339),
                    control.ended_at.as_ref().map(rfc3339),
                    audit.actor,
                    lesson.state,
                ],
            )
            .ctx("storing a lesson action")?;
            insert_audit(&tx, &audit)?;
            let seq = enqueue(&tx, identity, outbox)?;
            tx.commit().ctx("committing a lesson action")?;
            Ok(seq)
        })
        .await
        .inspect(|_| self.notify_outbox())
    }

    /// A teacher's status for a student in a lesson: wins over whatever was recorded (card,
    /// face, system, an earlier override). With `report`, the lesson was already finalised
    /// and its report is replaced by this new revision (also queued). Returns the previous
    /// status and the attendance record's seq.
    ///
    /// # Errors
    /// SQLite fails (nothing is written then).
    #[allow(clippy::too_many_arguments)]
    pub async fn override_attendance(
        &self,
        lesson: LessonRow,
        student_id: String,
        status: AttendanceStatus,
        audit: Audit,
        outbox: OutboxRecord,
        report: Option<serde_json::Value>,
    ) -> Result<(Option<AttendanceStatus>, u64)> {
        self.call(move |db| {
            let Db { conn, identity } = db;
            let tx = conn.transaction().ctx("starting a transaction")?;
            upsert_lesson(&tx, &lesson)?;
            let previous: Option<String> = tx
                .query_row(
                    "SELECT status FROM attendance WHERE lesson_id = ?1 AND student_id = ?2",
                    [&lesson.id, &student_id],
                    |r| r.get(0),
                )
                .optional()
                .ctx("reading attendance")?;
            tx.execute(
                "INSERT INTO attendance (lesson_id, student_id, status, source, recorded_at, clock_synced, recorded_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (lesson_id, student_id) DO UPDATE SET status = ?3, source = ?4,
                   recorded_at = ?5, clock_synced = ?6, recorded_by = ?7",
                params![
                    lesson.id,
                    student_id,
                    status.as_str(),
                    AttendanceSource::Manual.as_str(),
                    rfc3339(&audit.at),
                    audit.clock_synced,
                    audit.actor
                ],
            )
            .ctx("recording an attendance override")?;
            insert_audit(&tx, &audit)?;
            let mut e = Enqueuer::new(&tx, identity)?;
            let captured_at = outbox.captured_at;
            let clock_synced = outbox.clock_synced;
            let seq = e.push(outbox)?;
            if let Some(report) = report {
                let n = tx
                    .execute(
                        "UPDATE lesson_reports SET report = ?2, revision = revision + 1 WHERE lesson_id = ?1",
                        params![lesson.id, serde_json::to_string(&report)?],
                    )
                    .ctx("revising a lesson report")?;
                if n == 1 {
                    e.push(OutboxRecord {
                        stream: Stream::LessonReport,
                        captured_at,
                        clock_synced,
                        body: report,
                    })?;
                }
            }
            e.finish()?;
            tx.commit().ctx("committing an attendance override")?;
            let previous = previous.and_then(|s| AttendanceStatus::parse(&s));
            Ok((previous, seq))
        })
        .await
        .inspect(|_| self.notify_outbox())
    }

    /// The current revision of a lesson's report (0: none).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn report_revision(&self, lesson_id: String) -> Result<u32> {
        self.call(move |db| {
            db.conn
                .query_row(
                    "SELECT coalesce((SELECT revision FROM lesson_reports WHERE lesson_id = ?1), 0)",
                    [lesson_id],
                    |r| r.get(0),
                )
                .ctx("reading a report revision")
        })
        .await
    }

    /// Resolves an open follow-up with the teacher's reason and whether the guardian was
    /// contacted; queues a `followup` record. `Ok(None)`: no such follow-up; `Ok(Some(Err))`:
    /// it was resolved already (by whom).
    ///
    /// # Errors
    /// SQLite fails (nothing is written then).
    pub async fn resolve_followup(
        &self,
        id: String,
        resolution: String,
        contacted_guardian: bool,
        audit: Audit,
        outbox: OutboxRecord,
    ) -> Result<Option<std::result::Result<u64, String>>> {
        self.call(move |db| {
            let Db { conn, identity } = db;
            let tx = conn.transaction().ctx("starting a transaction")?;
            let row: Option<(String, Option<String>)> = tx
                .query_row(
                    "SELECT state, resolved_by FROM followups WHERE id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .ctx("reading a follow-up")?;
            let Some((state, by)) = row else {
                return Ok(None);
            };
            if state != "open" {
                return Ok(Some(Err(by.unwrap_or_default())));
            }
            tx.execute(
                "UPDATE followups SET state = 'resolved', resolution = ?2, contacted_guardian = ?3,
                   resolved_by = ?4, resolved_at = ?5 WHERE id = ?1",
                params![
                    id,
                    resolution,
                    contacted_guardian,
                    audit.actor,
                    rfc3339(&audit.at)
                ],
            )
            .ctx("resolving a follow-up")?;
            insert_audit(&tx, &audit)?;
            let seq = enqueue(&tx, identity, outbox)?;
            tx.commit().ctx("committing a follow-up")?;
            Ok(Some(Ok(seq)))
        })
        .await
        .inspect(|r| {
            if matches!(r, Some(Ok(_))) {
                self.notify_outbox();
            }
        })
    }

    /// The follow-ups of `date` with names, open first.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn followups(&self, date: NaiveDate) -> Result<Vec<FollowupRow>> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare_cached(
                    "SELECT f.id, f.student_id, s.name, f.reason, f.state, f.resolution,
                            f.contacted_guardian, f.resolved_by
                     FROM followups f JOIN students s ON s.id = f.student_id
                     WHERE f.date = ?1 ORDER BY f.state = 'resolved', f.student_id",
                )
                .ctx("reading follow-ups")?;
            let rows = stmt
                .query_map([date.to_string()], |r| {
                    Ok(FollowupRow {
                        id: r.get(0)?,
                        student_id: r.get(1)?,
                        name: r.get(2)?,
                        reason: r.get(3)?,
                        state: r.get(4)?,
                        resolution: r.get(5)?,
                        contacted_guardian: r.get(6)?,
                        resolved_by: r.get(7)?,
                    })
                })
                .ctx("reading follow-ups")?;
            rows.collect::<rusqlite::Result<_>>()
                .ctx("reading follow-ups")
        })
        .await
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

    /// Stores leave entered by the teacher (origin `local`) with its audit row.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn enter_leave(&self, leave: crate::LeaveRow, audit: Audit) -> Result<()> {
        self.call(move |db| {
            let tx = db.conn.transaction().ctx("starting a transaction")?;
            tx.execute(
                "INSERT INTO leaves (id, student_id, starts_at, ends_at, reason, origin, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'local', ?6)",
                params![
                    leave.id,
                    leave.student_id,
                    rfc3339(&leave.starts_at),
                    rfc3339(&leave.ends_at),
                    leave.reason,
                    now_utc()
                ],
            )
            .ctx("storing leave")?;
            insert_audit(&tx, &audit)?;
            tx.commit().ctx("committing leave")
        })
        .await
    }

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

    /// A teacher by staff id, for a PIN login.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn staff_login(&self, id: String) -> Result<Option<StaffLogin>> {
        self.call(move |db| {
            db.conn
                .query_row(
                    "SELECT id, name, pin_hash FROM staff WHERE id = ?1",
                    [id],
                    staff_row,
                )
                .optional()
                .ctx("reading staff")
        })
        .await
    }

    /// The teacher who owns staff card `uid`.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn staff_by_card(&self, uid: String) -> Result<Option<StaffLogin>> {
        self.call(move |db| {
            db.conn
                .query_row(
                    "SELECT s.id, s.name, s.pin_hash FROM staff_cards c JOIN staff s ON s.id = c.staff_id
                     WHERE c.uid = ?1",
                    [uid],
                    staff_row,
                )
                .optional()
                .ctx("looking up a staff card")
        })
        .await
    }

    /// All teachers as (id, name), by name.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn staff_list(&self) -> Result<Vec<(String, String)>> {
        self.call(|db| {
            let mut stmt = db
                .conn
                .prepare_cached("SELECT id, name FROM staff ORDER BY name, id")
                .ctx("reading staff")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .ctx("reading staff")?;
            rows.collect::<rusqlite::Result<_>>().ctx("reading staff")
        })
        .await
    }

    /// A lesson's roll with names and how each status was recorded, in student id order.
    ///
    /// # Errors
    /// SQLite fails or a stored status is unknown.
    pub async fn lesson_roll_named(
        &self,
        lesson_id: String,
        roster_id: String,
    ) -> Result<Vec<RollEntry>> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare_cached(
                    "SELECT m.student_id, s.name, a.status, a.source, a.recorded_by
                     FROM roster_members m JOIN students s ON s.id = m.student_id
                     LEFT JOIN attendance a ON a.lesson_id = ?1 AND a.student_id = m.student_id
                     WHERE m.roster_id = ?2 ORDER BY m.student_id",
                )
                .ctx("reading a lesson's roll")?;
            let rows = stmt
                .query_map([&lesson_id, &roster_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                })
                .ctx("reading a lesson's roll")?;
            let mut out = Vec::new();
            for row in rows {
                let (student_id, name, status, source, recorded_by) =
                    row.ctx("reading a lesson's roll")?;
                let status = status
                    .map(|s| {
                        AttendanceStatus::parse(&s).ok_or_else(|| {
                            Error::Invalid(format!("stored attendance status {s:?} is unknown"))
                        })
                    })
                    .transpose()?;
                out.push(RollEntry {
                    student_id,
                    name,
                    status,
                    source,
                    recorded_by,
                });
            }
            Ok(out)
        })
        .await
    }

    /// The health checks of `date` (local date of `checked_at`) of the members of
    /// `roster_id`, oldest first.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn day_health(&self, date: NaiveDate, roster_id: String) -> Result<Vec<DayHealth>> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare_cached(
                    "SELECT h.student_id, h.check_window, h.temp_c, h.fever, h.symptoms
                     FROM health_checks h JOIN roster_members m ON m.student_id = h.student_id AND m.roster_id = ?2
                     WHERE substr(h.checked_at, 1, 10) = ?1 ORDER BY h.id",
                )
                .ctx("reading health checks")?;
            let rows = stmt
                .query_map(params![date.to_string(), roster_id], |r| {
                    Ok(DayHealth {
                        student_id: r.get(0)?,
                        window: r.get(1)?,
                        temp_c: r.get(2)?,
                        fever: r.get(3)?,
                        symptoms: r
                            .get::<_, Option<String>>(4)?
                            .map(|s| s.split(',').map(str::to_owned).collect())
                            .unwrap_or_default(),
                    })
                })
                .ctx("reading health checks")?;
            rows.collect::<rusqlite::Result<_>>()
                .ctx("reading health checks")
        })
        .await
    }

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

    /// Students' names by id (for the board's check-in feedback and the teacher's lists).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn student_name(&self, id: String) -> Result<Option<String>> {
        self.call(move |db| {
            db.conn
                .query_row("SELECT name FROM students WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()
                .ctx("reading a student")
        })
        .await
    }
}

/// The body of a `lesson` record: what happened to a lesson and who did it.
#[must_use]
pub fn lesson_event_body(lesson: &LessonRow, action: &str, by: &str) -> serde_json::Value {
    json!({
        "lesson_id": lesson.id, "date": lesson.date, "period": lesson.period,
        "subject": lesson.subject, "roster_id": lesson.roster_id,
        "action": action, "state": lesson.state, "by": by,
    })
}
