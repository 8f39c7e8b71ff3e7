//! Outbox records: the uplink streams, their lanes, and the JSON envelope.
//!
//! Invariants:
//! * `seq` is assigned inside the same transaction that stores the domain change, from the
//!   persisted counter `meta['outbox.next_seq']`, so it is strictly increasing and gap-free
//!   across restarts. A gap seen by the cloud can only mean loss.
//! * The envelope is built once, at capture, and stored verbatim: a retry publishes the very
//!   same bytes (same `id`, same `seq`, same `captured_at`).

use chrono::{DateTime, FixedOffset, SecondsFormat};
use rusqlite::{Transaction, params};
use serde::{Deserialize, Serialize};

use crate::Identity;
use crate::error::{Result, SqlContext};

/// Version tag of the envelope format, carried in every payload as `schema`.
pub const ENVELOPE_SCHEMA: &str = "ketang.v1";

/// Largest envelope (the whole JSON payload) a record may have: 64 KiB.
///
/// Design: the largest real record (a lesson report of a 60-student class with its
/// behaviour and talk-time figures) is under 8 KiB, so this leaves room eight times over,
/// while staying under the smallest packet limit of the brokers a region may run (AWS IoT
/// Core 128 KiB, Azure IoT Hub 256 KiB, EMQX and HiveMQ 1 MiB by default). A record over
/// it is refused at enqueue ([`crate::Error::RecordTooLarge`]) together with the domain
/// change it belongs to, so it can never reach the outbox and block a lane.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// An uplink stream: the last segment of `ketang/v1/{school}/{device}/up/{stream}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Emergency alarms (highest lane, never evicted).
    Alarm,
    /// Attendance changes.
    Attendance,
    /// 晨午检 health-check results.
    HealthCheck,
    /// Same-day follow-up of absence due to illness.
    Followup,
    /// Per-lesson reports.
    LessonReport,
    /// What teachers did to lessons (started or ended early, cancelled).
    Lesson,
    /// Class-level behaviour aggregates.
    Behaviour,
    /// Whiteboard usage.
    Whiteboard,
    /// Device health and counters.
    Telemetry,
    /// Records of evicted outbox ranges.
    Dropped,
    /// Acknowledgements of downlink messages.
    Ack,
    /// System update progress (a bundle received, installed, refused, rolled back).
    Update,
    /// Records the client or the broker refused for good, moved aside (seq, stream, reason).
    Rejected,
}

impl Stream {
    /// Every stream, in lane order.
    pub const ALL: [Stream; 13] = [
        Stream::Alarm,
        Stream::Attendance,
        Stream::HealthCheck,
        Stream::Followup,
        Stream::Ack,
        Stream::Lesson,
        Stream::Update,
        Stream::Rejected,
        Stream::LessonReport,
        Stream::Whiteboard,
        Stream::Behaviour,
        Stream::Telemetry,
        Stream::Dropped,
    ];

    /// The topic segment and database value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stream::Alarm => "alarm",
            Stream::Attendance => "attendance",
            Stream::HealthCheck => "health_check",
            Stream::Followup => "followup",
            Stream::LessonReport => "lesson_report",
            Stream::Lesson => "lesson",
            Stream::Behaviour => "behaviour",
            Stream::Whiteboard => "whiteboard",
            Stream::Telemetry => "telemetry",
            Stream::Dropped => "dropped",
            Stream::Ack => "ack",
            Stream::Update => "update",
            Stream::Rejected => "rejected",
        }
    }

    /// The drain lane: lower goes first. Alarms always first; then what a school is
    /// accountable for (attendance, health, follow-up, acks of cloud commands); then the rest.
    pub const fn priority(self) -> u8 {
        match self {
            Stream::Alarm => 0,
            Stream::Attendance
            | Stream::HealthCheck
            | Stream::Followup
            | Stream::Ack
            | Stream::Lesson
            | Stream::Update
            | Stream::Rejected => 1,
            Stream::LessonReport
            | Stream::Behaviour
            | Stream::Whiteboard
            | Stream::Telemetry
            | Stream::Dropped => 2,
        }
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a domain change hands to the store to be synced.
#[derive(Debug, Clone)]
pub struct OutboxRecord {
    /// Which stream.
    pub stream: Stream,
    /// When the event happened, with the local offset.
    pub captured_at: DateTime<FixedOffset>,
    /// Whether the clock was synchronised at capture.
    pub clock_synced: bool,
    /// The stream-specific body.
    pub body: serde_json::Value,
}

/// The JSON envelope every uplink payload carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Always [`ENVELOPE_SCHEMA`].
    pub schema: String,
    /// Unique id (UUIDv7), the same across retries.
    pub id: String,
    /// The school the device belongs to.
    pub school_id: String,
    /// The device.
    pub device_id: String,
    /// The classroom the device serves (so the cloud can place an alarm without a device
    /// registry). Empty in records stored by versions before it was added.
    #[serde(default)]
    pub classroom_id: String,
    /// Per-device sequence number: persisted, strictly increasing, gap-free.
    pub seq: u64,
    /// The stream (also the topic's last segment).
    pub stream: Stream,
    /// Capture time, RFC 3339 with offset.
    pub captured_at: String,
    /// Whether the board's clock was synchronised at capture.
    pub clock_synced: bool,
    /// The stream-specific body.
    pub body: serde_json::Value,
}

/// [`Envelope`] borrowed, for serialising without copies (same fields, same order).
#[derive(Serialize)]
struct EnvelopeRef<'a> {
    schema: &'a str,
    id: &'a str,
    school_id: &'a str,
    device_id: &'a str,
    classroom_id: &'a str,
    seq: u64,
    stream: Stream,
    captured_at: &'a str,
    clock_synced: bool,
    body: &'a serde_json::Value,
}

/// `t` as RFC 3339 with milliseconds and its offset, e.g. `2026-11-23T07:55:01.520+08:00`,
/// exactly as chrono's `to_rfc3339_opts(SecondsFormat::Millis, false)` writes it, without
/// its formatting machinery (a fixed cost of every record).
pub(crate) fn rfc3339_millis(t: &DateTime<FixedOffset>) -> String {
    use chrono::{Datelike, Timelike};
    let year = t.year();
    let ms = t.nanosecond() / 1_000_000;
    if !(0..=9999).contains(&year) || ms > 999 {
        // Out of the four-digit years, or a leap second: chrono's own way.
        return t.to_rfc3339_opts(SecondsFormat::Millis, false);
    }
    let off = t.offset().local_minus_utc();
    let (sign, off) = if off < 0 { (b'-', -off) } else { (b'+', off) };
    let (oh, om) = ((off / 3600) as u32, ((off / 60) % 60) as u32);
    let mut b = *b"0000-00-00T00:00:00.000+00:00";
    let mut put = |at: usize, v: u32, digits: usize| {
        let mut v = v;
        for i in (0..digits).rev() {
            b[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year.unsigned_abs(), 4);
    put(5, t.month(), 2);
    put(8, t.day(), 2);
    put(11, t.hour(), 2);
    put(14, t.minute(), 2);
    put(17, t.second(), 2);
    put(20, ms, 3);
    put(24, oh, 2);
    put(27, om, 2);
    b[23] = sign;
    String::from_utf8_lossy(&b).into_owned()
}

/// Appends records inside one transaction: reads the seq counter once, writes it back
/// once ([`Enqueuer::finish`]), with one prepared statement.
///
/// Design: the envelope is written by hand, in [`EnvelopeRef`]'s field order (a unit test
/// checks it is byte for byte what serde writes): the identity part is escaped once per
/// transaction, only the body goes through serde. This and the time formatter above are the
/// fixed per-record cost that capture pays over a raw SQLite insert (docs/benchmarks.md).
pub(crate) struct Enqueuer<'t, 'c> {
    tx: &'t Transaction<'c>,
    insert: rusqlite::CachedStatement<'t>,
    /// `,"school_id":…,"device_id":…,"classroom_id":…`, escaped.
    identity_json: String,
    next: i64,
    enqueued_at: String,
    buf: Vec<u8>,
}

impl<'t, 'c> Enqueuer<'t, 'c> {
    pub(crate) fn new(tx: &'t Transaction<'c>, identity: &'t Identity) -> Result<Self> {
        let next: i64 = tx
            .query_row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'outbox.next_seq'",
                [],
                |r| r.get(0),
            )
            .ctx("reading the outbox sequence counter")?;
        if next < 1 {
            return Err(crate::Error::Invalid(format!(
                "outbox sequence counter is {next}"
            )));
        }
        let insert = tx
            .prepare_cached(
                "INSERT INTO outbox (seq, id, stream, priority, captured_at, clock_synced, payload, enqueued_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .ctx("appending to the outbox")?;
        let identity_json = format!(
            ",\"school_id\":{},\"device_id\":{},\"classroom_id\":{}",
            serde_json::to_string(&identity.school_id)?,
            serde_json::to_string(&identity.device_id)?,
            serde_json::to_string(&identity.classroom_id)?,
        );
        Ok(Self {
            tx,
            insert,
            identity_json,
            next,
            enqueued_at: chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            buf: Vec::with_capacity(512),
        })
    }

    pub(crate) fn push(&mut self, record: OutboxRecord) -> Result<u64> {
        use std::io::Write as _;
        let seq = self.next;
        let seq_u = seq.unsigned_abs();
        let mut id_buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let id: &str = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut id_buf);
        let captured_at = rfc3339_millis(&record.captured_at);
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(b"{\"schema\":\"");
        b.extend_from_slice(ENVELOPE_SCHEMA.as_bytes());
        b.extend_from_slice(b"\",\"id\":\"");
        b.extend_from_slice(id.as_bytes());
        b.push(b'"');
        b.extend_from_slice(self.identity_json.as_bytes());
        // Writing into a Vec cannot fail.
        let _ = write!(
            b,
            ",\"seq\":{seq_u},\"stream\":\"{}\",\"captured_at\":\"{captured_at}\",\"clock_synced\":{},\"body\":",
            record.stream.as_str(),
            record.clock_synced
        );
        serde_json::to_writer(&mut *b, &record.body)?;
        b.push(b'}');
        if b.len() > MAX_RECORD_BYTES {
            return Err(crate::Error::RecordTooLarge {
                stream: record.stream,
                bytes: b.len(),
                limit: MAX_RECORD_BYTES,
            });
        }
        self.insert
            .execute(params![
                seq,
                id,
                record.stream.as_str(),
                record.stream.priority(),
                captured_at,
                record.clock_synced,
                &self.buf,
                self.enqueued_at,
            ])
            .ctx("appending to the outbox")?;
        self.next += 1;
        Ok(seq_u)
    }

    /// Writes the counter back. Must be called before the transaction commits.
    pub(crate) fn finish(self) -> Result<()> {
        self.tx
            .execute(
                "UPDATE meta SET value = CAST(?1 AS TEXT) WHERE key = 'outbox.next_seq'",
                params![self.next],
            )
            .ctx("advancing the outbox sequence counter")?;
        Ok(())
    }
}

/// The envelope of `record` for a direct publish that bypasses the outbox (an alarm when
/// the disk is full): `seq` 0, because no seq can be taken without writing. The same event
/// arrives again with its real seq once it could be stored (same body, e.g. `alarm_id`).
///
/// # Errors
/// The envelope is larger than [`MAX_RECORD_BYTES`] or cannot be encoded.
pub fn unsequenced_envelope(identity: &Identity, record: &OutboxRecord) -> Result<Vec<u8>> {
    let mut id_buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id: &str = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut id_buf);
    let captured_at = record
        .captured_at
        .to_rfc3339_opts(SecondsFormat::Millis, false);
    let buf = serde_json::to_vec(&EnvelopeRef {
        schema: ENVELOPE_SCHEMA,
        id,
        school_id: &identity.school_id,
        device_id: &identity.device_id,
        classroom_id: &identity.classroom_id,
        seq: 0,
        stream: record.stream,
        captured_at: &captured_at,
        clock_synced: record.clock_synced,
        body: &record.body,
    })?;
    if buf.len() > MAX_RECORD_BYTES {
        return Err(crate::Error::RecordTooLarge {
            stream: record.stream,
            bytes: buf.len(),
            limit: MAX_RECORD_BYTES,
        });
    }
    Ok(buf)
}

/// Appends one `record` to the outbox inside `tx`; returns its seq.
pub(crate) fn enqueue(
    tx: &Transaction<'_>,
    identity: &Identity,
    record: OutboxRecord,
) -> Result<u64> {
    let mut e = Enqueuer::new(tx, identity)?;
    let seq = e.push(record)?;
    e.finish()?;
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_round_trip_through_their_names() {
        for s in Stream::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            let back: Stream = serde_json::from_str(&json).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn the_time_formatter_writes_what_chrono_writes() {
        for t in [
            "2026-11-23T07:55:01.520+08:00",
            "2026-01-01T00:00:00+00:00",
            "1999-12-31T23:59:59.999-05:30",
            "0001-02-03T04:05:06.007+14:00",
            "2026-06-30T12:00:00.000-00:45",
        ] {
            let t = DateTime::parse_from_rfc3339(t).unwrap();
            assert_eq!(
                rfc3339_millis(&t),
                t.to_rfc3339_opts(SecondsFormat::Millis, false)
            );
        }
    }

    #[test]
    fn the_hand_written_envelope_is_byte_for_byte_what_serde_writes() {
        let identity = Identity {
            school_id: "hf-\"0042\"\\班".into(),
            device_id: "kt-1".into(),
            classroom_id: "g7\tc3".into(),
        };
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::schema::migrations().to_latest(&mut conn).unwrap();
        let tx = conn.transaction().unwrap();
        let mut e = Enqueuer::new(&tx, &identity).unwrap();
        let record = OutboxRecord {
            stream: Stream::HealthCheck,
            captured_at: DateTime::parse_from_rfc3339("2026-11-23T07:55:01.5+08:00").unwrap(),
            clock_synced: false,
            body: serde_json::json!({"student_id": "S\u{0}1", "temp_c": 37.9, "symptoms": ["cough"]}),
        };
        let seq = e.push(record.clone()).unwrap();
        let ours = e.buf.clone();
        let parsed: Envelope = serde_json::from_slice(&ours).unwrap();
        let serde = serde_json::to_vec(&EnvelopeRef {
            schema: ENVELOPE_SCHEMA,
            id: &parsed.id,
            school_id: &identity.school_id,
            device_id: &identity.device_id,
            classroom_id: &identity.classroom_id,
            seq,
            stream: record.stream,
            captured_at: "2026-11-23T07:55:01.500+08:00",
            clock_synced: false,
            body: &record.body,
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(serde).unwrap()
        );
    }

    #[test]
    fn alarms_have_the_highest_lane_and_telemetry_the_lowest() {
        assert!(
            Stream::ALL
                .iter()
                .all(|s| Stream::Alarm.priority() <= s.priority())
        );
        assert!(Stream::Attendance.priority() < Stream::Telemetry.priority());
    }
}
