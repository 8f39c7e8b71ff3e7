//! The school data the cloud owns: students, rosters, the timetable, and the checks a
//! snapshot passes before it replaces what the board has.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result, SqlContext};
use crate::limits::excerpt;
use crate::records::{Period, Roster, SchoolSnapshot, StudentRow};

use super::handle::{StoreHandle, now_utc};
use super::notices::upsert_notice;

impl StoreHandle {
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
            remove_departed(&tx, &snapshot.students, &now)?;
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
        self.call(move |db| on_roster(&db.conn, &roster_id, &student_id))
            .await
    }
}

/// Whether `student_id` is on roster `roster_id`.
pub(super) fn on_roster(conn: &Connection, roster_id: &str, student_id: &str) -> Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM roster_members WHERE roster_id = ?1 AND student_id = ?2)",
        [roster_id, student_id],
        |r| r.get(0),
    )
    .ctx("checking a roster")
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
    // A teacher who left the staff list leaves no voiceprint behind.
    tx.execute(
        "DELETE FROM voiceprints WHERE teacher_id NOT IN (SELECT id FROM staff)",
        [],
    )
    .ctx("deleting the voiceprints of former staff")?;
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

/// Students the snapshot no longer lists have left (docs/privacy.md, "Retention"): their
/// guardian's consent and face templates, cards, roster places and name are deleted, with
/// an audit row each (`student.departed`). The school number stays on the records the
/// school keeps (attendance, health checks, follow-ups) until retention prunes them; a
/// departed student's row has an empty name, so a later snapshot does not audit them again.
pub(crate) fn remove_departed(
    tx: &Connection,
    students: &[StudentRow],
    now: &str,
) -> Result<usize> {
    let listed: std::collections::HashSet<&str> = students.iter().map(|s| s.id.as_str()).collect();
    let mut stmt = tx
        .prepare("SELECT id FROM students WHERE name != ''")
        .ctx("reading students")?;
    let stored: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .ctx("reading students")?
        .collect::<rusqlite::Result<_>>()
        .ctx("reading students")?;
    drop(stmt);
    let mut n = 0;
    for id in stored.iter().filter(|id| !listed.contains(id.as_str())) {
        let templates = tx
            .execute("DELETE FROM face_templates WHERE student_id = ?1", [id])
            .ctx("deleting a departed student's face templates")?;
        let consent = tx
            .execute("DELETE FROM face_consent WHERE student_id = ?1", [id])
            .ctx("deleting a departed student's consent")?;
        tx.execute("DELETE FROM cards WHERE student_id = ?1", [id])
            .ctx("deleting a departed student's cards")?;
        tx.execute("DELETE FROM roster_members WHERE student_id = ?1", [id])
            .ctx("deleting a departed student's roster places")?;
        tx.execute(
            "UPDATE students SET name = '', class_id = '', gender = NULL, updated_at = ?2 WHERE id = ?1",
            params![id, now],
        )
        .ctx("removing a departed student's name")?;
        tx.execute(
            "INSERT INTO audit_log (at, clock_synced, actor, role, action, target, detail)
             VALUES (?1, 1, 'cloud', 'roster', 'student.departed', ?2, ?3)",
            params![
                now,
                id,
                format!(
                    "{{\"templates_deleted\":{templates},\"consent_deleted\":{}}}",
                    consent > 0
                )
            ],
        )
        .ctx("writing the audit log")?;
        n += 1;
    }
    Ok(n)
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
