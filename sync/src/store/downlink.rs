//! Downlinks from the cloud: each one applied atomically with its acknowledgement, once
//! (by id), and the bookkeeping of what was seen kept bounded.

use chrono::{DateTime, FixedOffset};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::error::{Result, SqlContext};
use crate::limits::excerpt;
use crate::outbox::enqueue;
use crate::records::{NoticeRow, Period, Roster, SchoolSnapshot, StudentRow};
use crate::{AckBody, OutboxRecord};

use super::handle::{Db, StoreHandle, now_utc, rfc3339};
use super::meta::{meta_u64, set_meta};
use super::notices::upsert_notice;
use super::school::{
    MAX_ID_CHARS, MAX_NOTICE_CHARS, MAX_TEXT_CHARS, check_periods, check_snapshot, insert_periods,
    insert_rosters, insert_students, replace_staff, too_long,
};

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
    /// Reason (free text, kept on the device).
    #[serde(default)]
    pub reason: Option<String>,
    /// 病假 (`sick`), 事假 (`personal`) or `other` (the default).
    #[serde(default)]
    pub kind: LeaveKind,
}

/// The kind of a leave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveKind {
    /// 病假: a lesson it covers ends as `sick`.
    Sick,
    /// 事假: a lesson it covers ends as `leave`.
    Personal,
    /// Anything else: `leave`.
    #[default]
    Other,
}

impl LeaveKind {
    /// The stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sick => "sick",
            Self::Personal => "personal",
            Self::Other => "other",
        }
    }

    /// From the stored name (unknown: `other`).
    #[must_use]
    pub fn from_stored(s: &str) -> Self {
        match s {
            "sick" => Self::Sick,
            "personal" => Self::Personal,
            _ => Self::Other,
        }
    }
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
    /// The school calendar and dated lesson changes, replacing the previous version
    /// (which is kept in the history).
    Calendar(crate::calendar::CalendarDoc),
    /// The class's honours (班级荣誉), replacing the previous snapshot.
    Honours(crate::content::HonoursDoc),
    /// The duty roster (值日生), replacing the previous snapshot.
    Duty(crate::content::DutyDoc),
    /// One day's homework (作业), replacing what that day had.
    Homework(crate::content::HomeworkDoc),
}

/// What the school shows on the board today (see [`StoreHandle::board_content`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardContent {
    /// Honours, in order, without their images.
    pub honours: Vec<crate::content::Honour>,
    /// Whether each honour has an image.
    pub honour_images: Vec<bool>,
    /// Today's duty: the task and the names of those on duty.
    pub duty: Option<(Option<String>, Vec<String>)>,
    /// Homework still due.
    pub homework: Option<crate::content::HomeworkDoc>,
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

/// Calendar versions are kept this many days after they were replaced (a board that was
/// off longer finalises its missed days against the calendar in force before them).
pub(crate) const CALENDAR_HISTORY_DAYS: i64 = 60;

/// Downlink ids remembered for duplicate detection: those of the last 30 days, at most
/// this many.
pub const MAX_DOWNLINKS_KEPT: u32 = 20_000;

impl StoreHandle {
    /// The answer given to downlink `id` before, if any: (ok, problems).
    ///
    /// # Errors
    /// SQLite fails.
    pub(crate) async fn downlink_seen(&self, id: String) -> Result<Option<(bool, Vec<String>)>> {
        self.call(move |db| seen(&db.conn, &id)).await
    }

    /// Records downlink `id` and its `ack` record in one transaction, applying `data` first
    /// when there are no `problems` yet. A data problem rolls the data back and is reported
    /// in the ack. A repeated id applies nothing and is acknowledged again as a duplicate.
    ///
    /// # Errors
    /// SQLite fails (nothing is written then).
    pub(crate) async fn apply_downlink(
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
                let ack = |ok: bool, problems: &[String], duplicate: bool| {
                    OutboxRecord::new(
                        &AckBody {
                            downlink_id: Some(id.clone()),
                            kind: kind.clone(),
                            ok,
                            problems: problems.to_vec(),
                            duplicate,
                        },
                        at,
                        clock_synced,
                    )
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
                    match apply_data(&sp, data, &at)? {
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

    /// Every kept calendar version, oldest first, with when it was applied.
    ///
    /// # Errors
    /// SQLite fails, or a stored calendar does not parse.
    pub async fn calendars(
        &self,
    ) -> Result<Vec<(DateTime<FixedOffset>, crate::calendar::CalendarDoc)>> {
        self.call(|db| {
            let mut stmt = db
                .conn
                .prepare("SELECT applied_at, body FROM calendars ORDER BY version")
                .ctx("reading calendars")?;
            let rows: Vec<(String, String)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .ctx("reading calendars")?
                .collect::<rusqlite::Result<_>>()
                .ctx("reading calendars")?;
            rows.into_iter()
                .map(|(at, body)| {
                    let at = DateTime::parse_from_rfc3339(&at).map_err(|e| {
                        crate::Error::Invalid(format!("calendars.applied_at {at:?}: {e}"))
                    })?;
                    Ok((at, serde_json::from_str(&body)?))
                })
                .collect()
        })
        .await
    }

    /// What the board shows from the school on `date`, whose timetable is that of
    /// `weekday` (`None`: no lessons that day, so no duty): the honours (images left out:
    /// [`Self::honour_image`]), who is on duty with their names, and the homework still due
    /// (set on the latest day up to `date`: without a due date only on the day it was set).
    ///
    /// # Errors
    /// SQLite fails, or stored content does not parse.
    pub async fn board_content(
        &self,
        date: chrono::NaiveDate,
        weekday: Option<u8>,
    ) -> Result<BoardContent> {
        self.call(move |db| {
            let get = |kind: &str, key_max: &str| -> Result<Option<String>> {
                db.conn
                    .query_row(
                        "SELECT body FROM board_content WHERE kind = ?1 AND key <= ?2 ORDER BY key DESC LIMIT 1",
                        params![kind, key_max],
                        |r| r.get(0),
                    )
                    .optional()
                    .ctx("reading board content")
            };
            let mut out = BoardContent::default();
            if let Some(b) = get("honours", "")? {
                let mut h: crate::content::HonoursDoc = serde_json::from_str(&b)?;
                for i in &mut h.items {
                    out.honour_images.push(i.image.is_some());
                    i.image = None;
                }
                out.honours = h.items;
            }
            if let (Some(b), Some(w)) = (get("duty", "")?, weekday) {
                let d: crate::content::DutyDoc = serde_json::from_str(&b)?;
                if let Some(day) = d.days.into_iter().find(|x| x.weekday == w) {
                    let mut names = Vec::new();
                    for s in &day.students {
                        // A student who left since keeps no place on the board.
                        if let Some(n) = db
                            .conn
                            .query_row(
                                "SELECT name FROM students WHERE id = ?1 AND name <> ''",
                                [s],
                                |r| r.get::<_, String>(0),
                            )
                            .optional()
                            .ctx("reading students")?
                        {
                            names.push(n);
                        }
                    }
                    out.duty = Some((day.task, names));
                }
            }
            if let Some(b) = get("homework", &date.to_string())? {
                let mut h: crate::content::HomeworkDoc = serde_json::from_str(&b)?;
                let set = h.date;
                h.items
                    .retain(|i| i.due.map_or(set == date, |d| d >= date));
                if !h.items.is_empty() {
                    out.homework = Some(h);
                }
            }
            Ok(out)
        })
        .await
    }

    /// The image of honour `id` (MIME type and bytes), if it has one.
    ///
    /// # Errors
    /// SQLite fails, or stored content does not parse.
    pub async fn honour_image(&self, id: String) -> Result<Option<(&'static str, Vec<u8>)>> {
        self.call(move |db| {
            let b: Option<String> = db
                .conn
                .query_row(
                    "SELECT body FROM board_content WHERE kind = 'honours'",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .ctx("reading board content")?;
            let Some(b) = b else { return Ok(None) };
            let h: crate::content::HonoursDoc = serde_json::from_str(&b)?;
            Ok(h.items
                .into_iter()
                .find(|i| i.id == id)
                .and_then(|i| i.image)
                .and_then(|img| crate::content::honour_image(&img).ok()))
        })
        .await
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
}

/// The refusal of a snapshot of `what` whose `version` is not newer than the applied one.
fn not_newer(tx: &rusqlite::Connection, what: &str, version: u64) -> Result<Option<Vec<String>>> {
    let current = meta_u64(tx, &format!("{what}.version"))?;
    Ok((version <= current).then(|| {
        vec![format!(
            "{what} version {version} is not newer than the applied version {current}"
        )]
    }))
}

fn put_content(
    tx: &rusqlite::Connection,
    kind: &str,
    key: &str,
    body: &str,
    at: &DateTime<FixedOffset>,
) -> Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO board_content (kind, key, body, applied_at) VALUES (?1, ?2, ?3, ?4)",
        params![kind, key, body, rfc3339(at)],
    )
    .ctx("storing board content")?;
    Ok(())
}

pub(super) fn seen(conn: &rusqlite::Connection, id: &str) -> Result<Option<(bool, Vec<String>)>> {
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

/// Applies data inside a savepoint. `Ok(Err(problems))` means the data was refused.
fn apply_data(
    tx: &rusqlite::Connection,
    data: DownlinkData,
    at: &DateTime<FixedOffset>,
) -> Result<std::result::Result<(), Vec<String>>> {
    match data {
        DownlinkData::Calendar(doc) => {
            if let Some(refused) = not_newer(tx, "calendar", doc.version)? {
                return Ok(Err(refused));
            }
            let problems = crate::calendar::check_calendar(&doc);
            if !problems.is_empty() {
                return Ok(Err(problems));
            }
            tx.execute(
                "INSERT INTO calendars (version, applied_at, body) VALUES (?1, ?2, ?3)",
                params![
                    i64::try_from(doc.version).unwrap_or(i64::MAX),
                    rfc3339(at),
                    serde_json::to_string(&doc)?
                ],
            )
            .ctx("storing the calendar")?;
            // The history a board needs: the versions of the last CALENDAR_HISTORY_DAYS
            // days, and the one in force before them.
            tx.execute(
                "DELETE FROM calendars WHERE version < (SELECT COALESCE(MAX(version), 0) FROM calendars \
                 WHERE julianday(applied_at) < julianday(?2) - ?1)",
                params![CALENDAR_HISTORY_DAYS, rfc3339(at)],
            )
            .ctx("pruning old calendars")?;
            set_meta(tx, "calendar.version", doc.version)?;
            Ok(Ok(()))
        }
        DownlinkData::Honours(doc) => {
            if let Some(refused) = not_newer(tx, "honours", doc.version)? {
                return Ok(Err(refused));
            }
            let problems = crate::content::check_honours(&doc);
            if !problems.is_empty() {
                return Ok(Err(problems));
            }
            put_content(tx, "honours", "", &serde_json::to_string(&doc)?, at)?;
            set_meta(tx, "honours.version", doc.version)?;
            Ok(Ok(()))
        }
        DownlinkData::Duty(doc) => {
            if let Some(refused) = not_newer(tx, "duty", doc.version)? {
                return Ok(Err(refused));
            }
            let mut stmt = tx
                .prepare("SELECT student_id FROM roster_members")
                .ctx("reading rosters")?;
            let known: std::collections::HashSet<String> = stmt
                .query_map([], |r| r.get(0))
                .ctx("reading rosters")?
                .collect::<rusqlite::Result<_>>()
                .ctx("reading rosters")?;
            drop(stmt);
            let problems = crate::content::check_duty(&doc, |s| known.contains(s));
            if !problems.is_empty() {
                return Ok(Err(problems));
            }
            put_content(tx, "duty", "", &serde_json::to_string(&doc)?, at)?;
            set_meta(tx, "duty.version", doc.version)?;
            Ok(Ok(()))
        }
        DownlinkData::Homework(doc) => {
            let problems = crate::content::check_homework(&doc);
            if !problems.is_empty() {
                return Ok(Err(problems));
            }
            let key = doc.date.to_string();
            put_content(tx, "homework", &key, &serde_json::to_string(&doc)?, at)?;
            tx.execute(
                "DELETE FROM board_content WHERE kind = 'homework' AND key < date(?1, '-30 days')",
                [&key],
            )
            .ctx("pruning old homework")?;
            Ok(Ok(()))
        }
        DownlinkData::Roster {
            version,
            students,
            rosters,
            staff,
        } => {
            if let Some(refused) = not_newer(tx, "roster", version)? {
                return Ok(Err(refused));
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
            super::school::remove_departed(tx, &snap.students, &now)?;
            insert_rosters(tx, &snap.rosters)?;
            if !keep_staff {
                replace_staff(tx, &snap.staff, &now)?;
            }
            set_meta(tx, "roster.version", version)?;
            Ok(Ok(()))
        }
        DownlinkData::Timetable { version, periods } => {
            if let Some(refused) = not_newer(tx, "timetable", version)? {
                return Ok(Err(refused));
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
                "INSERT INTO leaves (id, student_id, starts_at, ends_at, reason, origin, created_at, kind)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'cloud', ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET student_id = ?2, starts_at = ?3, ends_at = ?4, reason = ?5, kind = ?7",
                params![l.id, l.student_id, rfc3339(&l.starts_at), rfc3339(&l.ends_at), l.reason, now_utc(), l.kind.as_str()],
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
