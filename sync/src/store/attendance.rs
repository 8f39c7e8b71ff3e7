//! Attendance: check-ins, card taps, teachers' corrections, the roll of a lesson, leave,
//! and who was present on a day.

use chrono::{DateTime, FixedOffset};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::OutboxRecord;
use crate::error::{Error, Result, SqlContext};
use crate::outbox::{Enqueuer, enqueue};
use crate::records::{
    AttendanceSource, AttendanceStatus, CardTapOutcome, CheckIn, CheckInOutcome, LessonRow,
    TapRecord,
};

use super::audit::{Audit, insert_audit};
use super::handle::{Db, StoreHandle, now_utc, rfc3339};
use super::lessons::upsert_lesson;
use super::school::on_roster;
use super::staff::{StaffLogin, staff_with_card};

impl StoreHandle {
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
            let outcome = record_check_in(&tx, identity, check_in)?;
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

    /// A student recognised by the camera, in one call and one transaction: if they are on
    /// the lesson's roster, the check-in (as [`Self::check_in`]); `None` when they are not.
    /// Returns the student's name (for the board's screen) with the outcome.
    ///
    /// # Errors
    /// SQLite fails (nothing is written then).
    pub async fn roster_check_in(
        &self,
        check_in: CheckIn,
    ) -> Result<Option<(String, CheckInOutcome)>> {
        self.call(move |db| {
            let Db { conn, identity } = db;
            let tx = conn.transaction().ctx("starting a transaction")?;
            let lesson = &check_in.lesson;
            if !on_roster(&tx, &lesson.roster_id, &check_in.student_id)? {
                return Ok(None);
            }
            let name: String = tx
                .query_row(
                    "SELECT name FROM students WHERE id = ?1",
                    [&check_in.student_id],
                    |r| r.get(0),
                )
                .optional()
                .ctx("looking up a student")?
                .unwrap_or_default();
            let outcome = record_check_in(&tx, identity, check_in)?;
            tx.commit().ctx("committing a check-in")?;
            Ok(Some((name, outcome)))
        })
        .await
        .inspect(|o| {
            if matches!(o, Some((_, CheckInOutcome::Recorded { .. }))) {
                self.notify_outbox();
            }
        })
    }

    /// Decides a card tap in one call and one transaction: whose card it is (a student's or
    /// a staff member's), whether the student is on the open lesson's roster, and, if so,
    /// the check-in with its outbox record. Every tap is logged locally with what it turned
    /// out to be.
    ///
    /// # Errors
    /// SQLite fails (nothing is written then), e.g. [`Error::DiskFull`].
    pub async fn card_tap(&self, tap: CardTap) -> Result<CardTapResult> {
        self.call(move |db| {
            let Db { conn, identity } = db;
            let tx = conn.transaction().ctx("starting a transaction")?;
            let result = decide_card_tap(&tx, identity, tap)?;
            tx.commit().ctx("committing a card tap")?;
            Ok(result)
        })
        .await
        .inspect(|r| {
            if let CardTapResult::Student {
                outcome: StudentTap::CheckedIn(CheckInOutcome::Recorded { .. }),
                ..
            } = r
            {
                self.notify_outbox();
            }
        })
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
        report: Option<crate::LessonReport>,
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
                    e.push(OutboxRecord::new(
                        &report,
                        captured_at,
                        clock_synced,
                    ))?;
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
        self.day_presence_since(date, window, None).await
    }

    /// As [`Self::day_presence`], counting only check-ins recorded at or after `since` when
    /// given (the noon check: who was seen since noon, not since the morning).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn day_presence_since(
        &self,
        date: chrono::NaiveDate,
        window: (DateTime<FixedOffset>, DateTime<FixedOffset>),
        since: Option<DateTime<FixedOffset>>,
    ) -> Result<DayPresence> {
        self.call(move |db| {
            let conn = &db.conn;
            let strings = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<Vec<String>> {
                let mut stmt = conn.prepare_cached(sql).ctx("reading the day")?;
                let rows = stmt.query_map(p, |r| r.get::<_, String>(0)).ctx("reading the day")?;
                rows.collect::<rusqlite::Result<_>>().ctx("reading the day")
            };
            // Design: the board's class is the class roster(s) its own timetable teaches. A
            // school-wide roster snapshot holds every class; following up all of them on
            // every board would flood each class teacher with other classes' absences.
            let class_members = strings(
                "SELECT DISTINCT m.student_id FROM roster_members m JOIN rosters r ON r.id = m.roster_id
                 WHERE r.kind = 'class' AND r.id IN (SELECT roster_id FROM timetable_periods)
                 ORDER BY m.student_id",
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
            let mut checked_in = std::collections::HashSet::new();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT a.student_id, a.recorded_at FROM attendance a JOIN lessons l ON l.id = a.lesson_id
                     WHERE l.date = ?1 AND a.status IN ('present', 'late')",
                )
                .ctx("reading check-ins")?;
            let rows = stmt
                .query_map([&day_start], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .ctx("reading check-ins")?;
            for row in rows {
                let (student, at) = row.ctx("reading check-ins")?;
                let recent = since.is_none_or(|since| {
                    DateTime::parse_from_rfc3339(&at).is_ok_and(|t| t >= since)
                });
                if recent {
                    checked_in.insert(student);
                }
            }
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

    /// The kind of approved leave covering `at` for `student_id` (a sick leave first, when
    /// two overlap), if any.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn on_leave(
        &self,
        student_id: String,
        at: DateTime<FixedOffset>,
    ) -> Result<Option<crate::LeaveKind>> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare_cached("SELECT starts_at, ends_at, kind FROM leaves WHERE student_id = ?1")
                .ctx("reading leave")?;
            let rows = stmt
                .query_map([student_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .ctx("reading leave")?;
            let mut found = None;
            for row in rows {
                let (a, b, kind) = row.ctx("reading leave")?;
                let (Ok(a), Ok(b)) = (
                    DateTime::parse_from_rfc3339(&a),
                    DateTime::parse_from_rfc3339(&b),
                ) else {
                    continue;
                };
                if a <= at && at < b {
                    let kind = crate::LeaveKind::from_stored(&kind);
                    if kind == crate::LeaveKind::Sick {
                        return Ok(Some(kind));
                    }
                    found = Some(kind);
                }
            }
            Ok(found)
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
                "INSERT INTO leaves (id, student_id, starts_at, ends_at, reason, origin, created_at, kind)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'local', ?6, ?7)",
                params![
                    leave.id,
                    leave.student_id,
                    rfc3339(&leave.starts_at),
                    rfc3339(&leave.ends_at),
                    leave.reason,
                    now_utc(),
                    leave.kind.as_str()
                ],
            )
            .ctx("storing leave")?;
            insert_audit(&tx, &audit)?;
            tx.commit().ctx("committing leave")
        })
        .await
    }
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

/// Who was seen on a day, for the morning-check follow-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayPresence {
    /// Members of the class rosters (kind `class`) that this board's timetable teaches.
    pub class_members: Vec<String>,
    /// Students with a health check in the morning window.
    pub checked: std::collections::HashSet<String>,
    /// Students checked in (present or late) to any lesson that day (since the given time).
    pub checked_in: std::collections::HashSet<String>,
    /// Students the teacher marked `leave` in a lesson that day.
    pub excused: std::collections::HashSet<String>,
}

/// A card tapped on a reader, for [`StoreHandle::card_tap`].
#[derive(Debug, Clone)]
pub struct CardTap {
    /// The reader's name.
    pub reader: String,
    /// The card's UID (never logged).
    pub uid: String,
    /// When.
    pub at: DateTime<FixedOffset>,
    /// Whether the clock was synchronised then.
    pub clock_synced: bool,
    /// The lesson open for check-in now and the status a check-in gets now (the engine's
    /// decision); `None` when no lesson is open.
    pub lesson: Option<(LessonRow, AttendanceStatus)>,
}

/// What a card tap turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardTapResult {
    /// Nobody owns the card (logged on the board only).
    Unknown,
    /// A staff member's card.
    Staff(StaffLogin),
    /// A student's card.
    Student {
        /// The student.
        student_id: String,
        /// Their name (for the board's screen; never logged).
        name: String,
        /// What the tap did.
        outcome: StudentTap,
    },
}

/// What a student's tap did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StudentTap {
    /// No lesson open for check-in.
    NoLesson,
    /// The student is not on the open lesson's roster.
    NotOnRoster,
    /// A check-in, recorded or a repeat.
    CheckedIn(CheckInOutcome),
}

/// The check-in part of [`StoreHandle::check_in`], inside the caller's transaction.
fn record_check_in(
    tx: &rusqlite::Transaction<'_>,
    identity: &crate::Identity,
    check_in: CheckIn,
) -> Result<CheckInOutcome> {
    upsert_lesson(tx, &check_in.lesson)?;
    let existing: Option<String> = tx
        .query_row(
            "SELECT status FROM attendance WHERE lesson_id = ?1 AND student_id = ?2",
            [&check_in.lesson.id, &check_in.student_id],
            |r| r.get(0),
        )
        .optional()
        .ctx("reading attendance")?;
    if let Some(status) = existing {
        let status = AttendanceStatus::parse(&status).ok_or_else(|| {
            Error::Invalid(format!("stored attendance status {status:?} is unknown"))
        })?;
        if let Some(mut tap) = check_in.tap {
            tap.outcome = CardTapOutcome::Repeat;
            insert_tap(tx, &tap)?;
        }
        return Ok(CheckInOutcome::AlreadyRecorded { status });
    }
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
        insert_tap(tx, tap)?;
    }
    let seq = enqueue(tx, identity, check_in.outbox)?;
    Ok(CheckInOutcome::Recorded { seq })
}

/// [`StoreHandle::card_tap`] inside its transaction.
fn decide_card_tap(
    tx: &rusqlite::Transaction<'_>,
    identity: &crate::Identity,
    tap: CardTap,
) -> Result<CardTapResult> {
    let mut log = TapRecord {
        reader: tap.reader,
        uid: tap.uid,
        student_id: None,
        lesson_id: None,
        outcome: CardTapOutcome::UnknownCard,
        at: tap.at,
        clock_synced: tap.clock_synced,
    };
    let student: Option<(String, String)> = tx
        .query_row(
            "SELECT s.id, s.name FROM cards c JOIN students s ON s.id = c.student_id WHERE c.uid = ?1",
            [&log.uid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .ctx("looking up a card")?;
    let Some((student_id, name)) = student else {
        let staff = staff_with_card(tx, &log.uid)?;
        if staff.is_some() {
            log.outcome = CardTapOutcome::Staff;
        }
        insert_tap(tx, &log)?;
        return Ok(staff.map_or(CardTapResult::Unknown, CardTapResult::Staff));
    };
    log.student_id = Some(student_id.clone());
    let outcome = match tap.lesson {
        None => {
            log.outcome = CardTapOutcome::NoLesson;
            insert_tap(tx, &log)?;
            StudentTap::NoLesson
        }
        Some((lesson, status)) => {
            log.lesson_id = Some(lesson.id.clone());
            if on_roster(tx, &lesson.roster_id, &student_id)? {
                log.outcome = CardTapOutcome::CheckedIn;
                let mut body = lesson.attendance(&student_id, status, AttendanceSource::Card);
                body.reader = Some(log.reader.clone());
                let outbox = OutboxRecord::new(&body, log.at, log.clock_synced);
                StudentTap::CheckedIn(record_check_in(
                    tx,
                    identity,
                    CheckIn {
                        lesson,
                        student_id: student_id.clone(),
                        status,
                        source: AttendanceSource::Card,
                        recorded_by: None,
                        tap: Some(log),
                        outbox,
                    },
                )?)
            } else {
                log.outcome = CardTapOutcome::NotOnRoster;
                insert_tap(tx, &log)?;
                StudentTap::NotOnRoster
            }
        }
    };
    Ok(CardTapResult::Student {
        student_id,
        name,
        outcome,
    })
}
