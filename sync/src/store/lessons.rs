//! Lessons: a teacher's start, end and cancel, and a lesson's end for good (its marks, its
//! report and its behaviour record in one transaction).

use chrono::{DateTime, FixedOffset, NaiveDate};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result, SqlContext};
use crate::outbox::{Enqueuer, enqueue};
use crate::records::{AttendanceStatus, LessonRow, LessonSummary};
use crate::{AttendanceSource, LessonReport, OutboxRecord};

use super::audit::{Audit, insert_audit};
use super::handle::{Db, StoreHandle, now_utc, rfc3339};

/// Everything a lesson's end writes, committed as one transaction by
/// [`StoreHandle::finalise_lesson`].
#[derive(Debug, Clone)]
pub struct LessonEnd {
    /// The lesson, with its final state (`ended` or `cancelled`).
    pub lesson: crate::LessonRow,
    /// Statuses for students still unmarked (a status already there wins).
    pub marks: Vec<Mark>,
    /// The lesson report (stored, and queued on `lesson_report`).
    pub report: LessonReport,
    /// The class's behaviour aggregates, queued on `behaviour` when there are any.
    pub behaviour: Option<crate::BehaviourBody>,
    /// How the lesson went over its course (stored for the board's report, never synced).
    pub timeline: Option<LessonTimeline>,
    /// When the lesson was finalised.
    pub at: DateTime<FixedOffset>,
    /// Whether the board's clock was synchronised then.
    pub clock_synced: bool,
}

/// How a lesson went over its course, class-level only: what the board's lesson report
/// draws (heads down and hands raised per bucket, the S-T sequence). Kept on the board,
/// never synced.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LessonTimeline {
    /// Minutes per bucket, from the lesson's start.
    pub bucket_min: u32,
    /// Frames looked at, per bucket.
    pub frames: Vec<u32>,
    /// Share of those frames where most heads were down (`None`: no frame), per bucket.
    pub heads_down: Vec<Option<f64>>,
    /// Hands that went up, per bucket.
    pub hand_raises: Vec<u32>,
    /// Seconds between S-T samples.
    pub st_interval_s: u32,
    /// One letter per S-T sample: `T` the teacher spoke, `S` otherwise (empty: no
    /// microphone).
    pub st: String,
    /// Faces by expression over the lesson, when the school opted in
    /// (`inference.expressions`): the class's totals, never per student.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expressions: Option<ExpressionTotals>,
}

/// Faces seen over a lesson by expression (fer's seven, grouped): class totals only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExpressionTotals {
    /// happy or surprise.
    pub engaged: u64,
    /// neutral.
    pub neutral: u64,
    /// angry, disgust, fear or sad.
    pub negative: u64,
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
            timeline,
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
                upsert_lesson(&tx, &lesson)?;
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
                        e.push(OutboxRecord::new(
                            &lesson.attendance(&m.student_id, m.status, AttendanceSource::System),
                            at,
                            clock_synced,
                        ))?;
                    }
                }
                tx.execute(
                    "INSERT INTO lesson_reports (lesson_id, report, created_at) VALUES (?1, ?2, ?3)",
                    params![lesson.id, serde_json::to_string(&report)?, now_utc()],
                )
                .ctx("storing a lesson report")?;
                if let Some(t) = &timeline {
                    tx.execute(
                        "INSERT OR REPLACE INTO lesson_timelines (lesson_id, timeline) VALUES (?1, ?2)",
                        params![lesson.id, serde_json::to_string(t)?],
                    )
                    .ctx("storing a lesson's timeline")?;
                }
                let seq = e.push(OutboxRecord::new(&report, at, clock_synced))?;
                if let Some(body) = behaviour {
                    // Same transaction as the report (docs/development.md §3): a crash cannot
                    // keep one and lose the other.
                    e.push(OutboxRecord::new(&body, at, clock_synced))?;
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

    /// How lesson `lesson_id` went over its course, if the camera or microphone observed it.
    ///
    /// # Errors
    /// SQLite fails or the stored timeline does not parse.
    pub async fn lesson_timeline(&self, lesson_id: String) -> Result<Option<LessonTimeline>> {
        self.call(move |db| {
            let text: Option<String> = db
                .conn
                .query_row(
                    "SELECT timeline FROM lesson_timelines WHERE lesson_id = ?1",
                    [lesson_id],
                    |r| r.get(0),
                )
                .optional()
                .ctx("reading a lesson's timeline")?;
            Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
        })
        .await
    }

    /// The stored reports of the lessons dated `from` to `to` (inclusive), in time order.
    ///
    /// # Errors
    /// SQLite fails or a stored report is not JSON.
    pub async fn reports_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<serde_json::Value>> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare_cached(
                    "SELECT r.report FROM lesson_reports r JOIN lessons l ON l.id = r.lesson_id
                     WHERE l.date >= ?1 AND l.date <= ?2 ORDER BY l.date, l.starts_at",
                )
                .ctx("reading lesson reports")?;
            let rows = stmt
                .query_map([from.to_string(), to.to_string()], |r| {
                    r.get::<_, String>(0)
                })
                .ctx("reading lesson reports")?;
            let mut out = Vec::new();
            for text in rows {
                out.push(serde_json::from_str(&text.ctx("reading lesson reports")?)?);
            }
            Ok(out)
        })
        .await
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
                    lesson.state.as_str(),
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

pub(super) fn q_summary(
    conn: &Connection,
    lesson_id: &str,
    roster_id: &str,
) -> Result<LessonSummary> {
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
            l.state.as_str(),
            now_utc()
        ],
    )
    .ctx("storing a lesson")?;
    Ok(())
}

pub(super) fn opt_time(s: Option<String>) -> Result<Option<DateTime<FixedOffset>>> {
    s.map(|s| {
        DateTime::parse_from_rfc3339(&s)
            .map_err(|e| Error::Invalid(format!("stored time {s:?} does not parse: {e}")))
    })
    .transpose()
}
