//! Morning and noon health checks, and the follow-ups they open.

use chrono::{DateTime, FixedOffset, NaiveDate};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::error::{Result, SqlContext};
use crate::outbox::{Enqueuer, enqueue};
use crate::records::HealthCheckRecord;
use crate::{FollowupBody, OutboxRecord};

use super::audit::{Audit, insert_audit};
use super::handle::{Db, StoreHandle, rfc3339};

impl StoreHandle {
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
                    check.window.as_str(),
                    check.temp_c,
                    check.fever,
                    rfc3339(&check.at),
                    check.clock_synced,
                    (!check.symptoms.is_empty()).then(|| check.symptoms.join(",")),
                ],
            )
            .ctx("recording a health check")?;
            if let Some(a) = &audit {
                insert_audit(&tx, a)?;
            }
            let seq = enqueue(&tx, identity, outbox)?;
            tx.commit().ctx("committing a health check")?;
            Ok(seq)
        })
        .await
        .inspect(|_| self.notify_outbox())
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
                        e.push(OutboxRecord::new(
                            &FollowupBody::Open {
                                followup_id: id.clone(),
                                student_id: s.clone(),
                                date,
                                reason: reason.to_owned(),
                            },
                            at,
                            clock_synced,
                        ))?;
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
                    let window: String = r.get(1)?;
                    Ok(DayHealth {
                        student_id: r.get(0)?,
                        window: crate::HealthWindow::parse(&window).ok_or_else(|| {
                            rusqlite::Error::FromSqlConversionFailure(
                                1,
                                rusqlite::types::Type::Text,
                                format!("stored health check window {window:?} is unknown").into(),
                            )
                        })?,
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
    /// The check it belongs to.
    pub window: crate::HealthWindow,
    /// Temperature.
    pub temp_c: Option<f64>,
    /// Fever.
    pub fever: bool,
    /// Symptoms entered.
    pub symptoms: Vec<String>,
}
