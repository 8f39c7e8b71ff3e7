//! The database schema, as versioned migrations.
//!
//! The version lives in `PRAGMA user_version` (rusqlite_migration). Migrations are only ever
//! appended: a shipped migration is never edited, because boards in the field have run it.
//!
//! Conventions: tables are `STRICT`; times are RFC 3339 strings with the local offset, as
//! captured; `clock_synced` says whether the board's clock was NTP-synchronised when the
//! row was captured (a board may boot with a wrong clock).

use rusqlite_migration::{M, Migrations};

/// Version 1: the domain tables and the outbox.
const V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Who is in the school. `id` is the school-issued student number.
CREATE TABLE students (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    class_id   TEXT NOT NULL,
    gender     TEXT CHECK (gender IN ('F', 'M')),
    updated_at TEXT NOT NULL
) STRICT;

-- IC card UIDs (uppercase hex) to students. A UID belongs to at most one student.
CREATE TABLE cards (
    uid        TEXT PRIMARY KEY,
    student_id TEXT NOT NULL REFERENCES students(id) ON DELETE CASCADE
) STRICT;

-- A class roster or a 走班 elective group: the roster depends on the lesson, not the room.
CREATE TABLE rosters (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('class', 'elective'))
) STRICT;

CREATE TABLE roster_members (
    roster_id  TEXT NOT NULL REFERENCES rosters(id) ON DELETE CASCADE,
    student_id TEXT NOT NULL REFERENCES students(id) ON DELETE CASCADE,
    PRIMARY KEY (roster_id, student_id)
) STRICT;

-- The weekly timetable: `weekday` 1 = Monday .. 7 = Sunday; times are local HH:MM.
CREATE TABLE timetable_periods (
    weekday   INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    period    INTEGER NOT NULL CHECK (period >= 1),
    starts    TEXT NOT NULL,
    ends      TEXT NOT NULL,
    subject   TEXT NOT NULL,
    teacher   TEXT NOT NULL,
    room      TEXT,
    roster_id TEXT NOT NULL REFERENCES rosters(id),
    PRIMARY KEY (weekday, period)
) STRICT;

-- A lesson is one period on one date: id "YYYY-MM-DD/P".
CREATE TABLE lessons (
    id         TEXT PRIMARY KEY,
    date       TEXT NOT NULL,
    period     INTEGER NOT NULL,
    subject    TEXT NOT NULL,
    teacher    TEXT NOT NULL,
    roster_id  TEXT NOT NULL,
    starts_at  TEXT NOT NULL,
    ends_at    TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('upcoming', 'open', 'in_progress', 'ended', 'cancelled')),
    updated_at TEXT NOT NULL
) STRICT;

-- One status per student per lesson; the first valid check-in wins.
CREATE TABLE attendance (
    lesson_id    TEXT NOT NULL REFERENCES lessons(id),
    student_id   TEXT NOT NULL REFERENCES students(id),
    status       TEXT NOT NULL CHECK (status IN ('present', 'late', 'absent', 'leave', 'sick')),
    source       TEXT NOT NULL CHECK (source IN ('card', 'face', 'manual')),
    recorded_at  TEXT NOT NULL,
    clock_synced INTEGER NOT NULL,
    recorded_by  TEXT,
    PRIMARY KEY (lesson_id, student_id)
) STRICT;

-- Every card tap, kept on the device (UIDs never leave it unless an issue says so).
CREATE TABLE card_taps (
    id           INTEGER PRIMARY KEY,
    reader       TEXT NOT NULL,
    uid          TEXT NOT NULL,
    student_id   TEXT,
    lesson_id    TEXT,
    outcome      TEXT NOT NULL,
    tapped_at    TEXT NOT NULL,
    clock_synced INTEGER NOT NULL
) STRICT;

-- 晨午检: morning / noon (/ evening) health checks.
CREATE TABLE health_checks (
    id           INTEGER PRIMARY KEY,
    student_id   TEXT NOT NULL REFERENCES students(id),
    check_window TEXT NOT NULL CHECK (check_window IN ('morning', 'noon', 'evening', 'other')),
    temp_c       REAL,
    fever        INTEGER NOT NULL,
    symptoms     TEXT,
    checked_at   TEXT NOT NULL,
    clock_synced INTEGER NOT NULL
) STRICT;

CREATE TABLE alarms (
    id           TEXT PRIMARY KEY,
    source       TEXT NOT NULL,
    drill        INTEGER NOT NULL,
    raised_at    TEXT NOT NULL,
    clock_synced INTEGER NOT NULL,
    cleared_at   TEXT,
    cleared_by   TEXT
) STRICT;

CREATE TABLE notices (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    priority    INTEGER NOT NULL DEFAULT 0,
    emergency   INTEGER NOT NULL DEFAULT 0,
    valid_from  TEXT,
    valid_until TEXT,
    origin      TEXT NOT NULL CHECK (origin IN ('cloud', 'local')),
    created_at  TEXT NOT NULL
) STRICT;

-- The outbox: what waits to be published. `seq` (the rowid) is per device, strictly
-- increasing and gap-free (see meta 'outbox.next_seq'); `id` is the envelope id (UUIDv7),
-- the same on every retry; `payload` is the complete JSON envelope exactly as it is
-- published; `attempts` counts sessions that sent the row without getting its PUBACK.
-- A row is deleted only after the broker acknowledged it.
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL,
    stream       TEXT NOT NULL,
    priority     INTEGER NOT NULL,
    captured_at  TEXT NOT NULL,
    clock_synced INTEGER NOT NULL,
    payload      BLOB NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    enqueued_at  TEXT NOT NULL
) STRICT;
CREATE INDEX outbox_drain ON outbox (priority, seq);
CREATE INDEX outbox_by_stream ON outbox (stream, seq);

INSERT INTO meta (key, value) VALUES ('outbox.next_seq', '1');
"#;

/// Version 2: downlink idempotence, approved leave, versions of cloud snapshots.
const V2: &str = r#"
-- Every downlink message id seen, with the answer given: a repeated id is acknowledged
-- again with the same answer and never applied twice.
CREATE TABLE downlinks (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    ok          INTEGER NOT NULL,
    problems    TEXT NOT NULL
) STRICT;

-- Approved leave (请假), from the cloud or entered by the teacher.
CREATE TABLE leaves (
    id         TEXT PRIMARY KEY,
    student_id TEXT NOT NULL,
    starts_at  TEXT NOT NULL,
    ends_at    TEXT NOT NULL,
    reason     TEXT,
    origin     TEXT NOT NULL CHECK (origin IN ('cloud', 'local')),
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX leaves_by_student ON leaves (student_id, starts_at);

INSERT INTO meta (key, value) VALUES ('roster.version', '0'), ('timetable.version', '0');
"#;

/// Version 3: statuses set by rules (`source = 'system'`, e.g. absent at lesson end), and
/// lesson reports. SQLite cannot alter a CHECK constraint, so `attendance` is rebuilt.
const V3: &str = r#"
CREATE TABLE attendance_v3 (
    lesson_id    TEXT NOT NULL REFERENCES lessons(id),
    student_id   TEXT NOT NULL REFERENCES students(id),
    status       TEXT NOT NULL CHECK (status IN ('present', 'late', 'absent', 'leave', 'sick')),
    source       TEXT NOT NULL CHECK (source IN ('card', 'face', 'manual', 'system')),
    recorded_at  TEXT NOT NULL,
    clock_synced INTEGER NOT NULL,
    recorded_by  TEXT,
    PRIMARY KEY (lesson_id, student_id)
) STRICT;
INSERT INTO attendance_v3 (lesson_id, student_id, status, source, recorded_at, clock_synced, recorded_by)
    SELECT lesson_id, student_id, status, source, recorded_at, clock_synced, recorded_by FROM attendance;
DROP TABLE attendance;
ALTER TABLE attendance_v3 RENAME TO attendance;

-- 学情报告: made once, at lesson end.
CREATE TABLE lesson_reports (
    lesson_id  TEXT PRIMARY KEY REFERENCES lessons(id),
    report     TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
"#;

/// Version 4: the same-day follow-up list (因病缺勤追踪).
const V4: &str = r#"
-- A student absent without leave at the morning check, to be followed up the same day.
-- `id` is "YYYY-MM-DD/student": one follow-up per student per day.
CREATE TABLE followups (
    id                 TEXT PRIMARY KEY,
    student_id         TEXT NOT NULL REFERENCES students(id),
    date               TEXT NOT NULL,
    reason             TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('open', 'resolved')),
    resolution         TEXT,
    contacted_guardian INTEGER,
    resolved_by        TEXT,
    resolved_at        TEXT,
    created_at         TEXT NOT NULL
) STRICT;
CREATE INDEX followups_by_date ON followups (date, state);
"#;

/// Version 5: teachers who unlock teacher mode, lesson control by the teacher, the audit log,
/// report revisions.
const V5: &str = r#"
-- Teachers, from the cloud's roster snapshot. `pin_hash` is an Argon2 PHC string.
CREATE TABLE staff (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    pin_hash   TEXT,
    updated_at TEXT NOT NULL
) STRICT;
CREATE TABLE staff_cards (
    uid      TEXT PRIMARY KEY,
    staff_id TEXT NOT NULL REFERENCES staff(id) ON DELETE CASCADE
) STRICT;

-- What the teacher did to a lesson: started it early, ended it early (or cancelled it:
-- state 'cancelled'), and who.
ALTER TABLE lessons ADD COLUMN started_at_actual TEXT;
ALTER TABLE lessons ADD COLUMN ended_at_actual TEXT;
ALTER TABLE lessons ADD COLUMN changed_by TEXT;

-- Every override and admin action: who (staff id, role), what, on what, when. Kept on the
-- device; `detail` is JSON and never holds names or card UIDs.
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    clock_synced INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    role         TEXT NOT NULL,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    detail       TEXT NOT NULL
) STRICT;

-- A correction after the lesson's end makes a new revision of its report.
ALTER TABLE lesson_reports ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
"#;

/// Version 6: whiteboard power and input changes (usage per lesson).
const V6: &str = r#"
-- Each change of the panel's power or input that the board made or saw: `source` is
-- teacher, schedule or cloud; `actor` the staff id for teacher changes.
CREATE TABLE whiteboard_events (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    clock_synced INTEGER NOT NULL,
    power        INTEGER,
    input        TEXT,
    source       TEXT NOT NULL,
    actor        TEXT
) STRICT;
"#;

/// Version 7: face attendance with consent. Templates are stored sealed (the daemon
/// encrypts them with a key kept outside the database); without a consent record no
/// template can be stored, and withdrawing consent deletes the templates.
const V7: &str = r#"
-- A guardian's consent to face recognition for one student: from the roster downlink
-- (source 'roster') or entered by a technician (source 'technician', with recorded_by).
CREATE TABLE face_consent (
    student_id   TEXT PRIMARY KEY REFERENCES students(id) ON DELETE CASCADE,
    granted_at   TEXT NOT NULL,
    source       TEXT NOT NULL CHECK (source IN ('roster', 'technician')),
    recorded_by  TEXT
) STRICT;

-- Sealed face templates (nonce + ciphertext of the embedding); `model` names the embedding
-- model, so templates of another model are never compared.
CREATE TABLE face_templates (
    id           INTEGER PRIMARY KEY,
    student_id   TEXT NOT NULL REFERENCES face_consent(student_id) ON DELETE CASCADE,
    model        TEXT NOT NULL,
    nonce        BLOB NOT NULL,
    sealed       BLOB NOT NULL,
    created_at   TEXT NOT NULL
) STRICT;
"#;

/// Version 8: records refused for good are moved aside, never lost and never blocking.
const V8: &str = r#"
-- `solo_failures` counts sessions the broker closed while this row was the only one
-- unacknowledged. See docs/mqtt.md "Records that cannot be delivered".
ALTER TABLE outbox ADD COLUMN solo_failures INTEGER NOT NULL DEFAULT 0;

-- Outbox rows that the client or the broker refused permanently (too large for a packet,
-- or the broker closed the connection every time the row was sent alone). Kept on the
-- device with the reason; each one is reported on the `rejected` stream.
CREATE TABLE outbox_rejected (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL,
    stream       TEXT NOT NULL,
    captured_at  TEXT NOT NULL,
    payload      BLOB NOT NULL,
    reason       TEXT NOT NULL,
    rejected_at  TEXT NOT NULL
) STRICT;
"#;

/// Version 9: how a lesson went over its course, for the teacher's report on the board.
const V9: &str = r#"
-- Class-level series of one lesson (heads down and hands raised per 5 minutes, who spoke
-- every 30 s): shown on the board's lesson report, never synced, never a person. Pruned
-- with the lesson.
CREATE TABLE lesson_timelines (
    lesson_id TEXT PRIMARY KEY REFERENCES lessons(id),
    timeline  TEXT NOT NULL
) STRICT;
"#;

/// Version 10: the kind of a leave (病假 / 事假 / other), so a sick leave ends a lesson as
/// `sick` for the 因病缺勤 statistics.
const V10: &str = r#"
ALTER TABLE leaves ADD COLUMN kind TEXT NOT NULL DEFAULT 'other'
    CHECK (kind IN ('sick', 'personal', 'other'));
"#;

/// Version 11: the school calendar from the cloud (`calendar` downlink), every version kept
/// with when it was applied, so a past day's lessons finalise against the calendar in force
/// that day.
const V11: &str = r#"
CREATE TABLE calendars (
    version    INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL,
    body       TEXT NOT NULL
) STRICT;
"#;

/// Version 12: what the school shows on the board (honours, the duty roster, homework),
/// display only, one row per kind (homework: per day, pruned after 30 days).
const V12: &str = r#"
CREATE TABLE board_content (
    kind       TEXT NOT NULL CHECK (kind IN ('honours', 'duty', 'homework')),
    key        TEXT NOT NULL,
    body       TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (kind, key)
) STRICT;
"#;

/// Version 13: teachers' voiceprints (one-microphone speaker separation, docs/models.md),
/// sealed like face templates; a teacher's goes when she leaves the staff list.
const V13: &str = r#"
CREATE TABLE voiceprints (
    teacher_id   TEXT PRIMARY KEY,
    model        TEXT NOT NULL,
    nonce        BLOB NOT NULL,
    sealed       BLOB NOT NULL,
    speech_s     REAL NOT NULL,
    created_at   TEXT NOT NULL
) STRICT;
"#;

/// All migrations, oldest first.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1),
        M::up(V2),
        M::up(V3),
        M::up(V4),
        M::up(V5),
        M::up(V6),
        M::up(V7),
        M::up(V8),
        M::up(V9),
        M::up(V10),
        M::up(V11),
        M::up(V12),
        M::up(V13),
    ])
}

/// The schema version this build migrates to.
pub const LATEST_VERSION: usize = 13;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn latest_version_matches_the_migration_count() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, LATEST_VERSION as i64);
    }
}
