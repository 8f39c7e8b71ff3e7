//! Teachers' voiceprints: what tells the teacher's voice from the students' on a board
//! with one room microphone (docs/models.md, "Who speaks").
//!
//! Like face templates, the store never sees one in the clear: the daemon seals each
//! (authenticated encryption, the board's key outside the database). A teacher enrols and
//! deletes her own, each with its audit row; a teacher no longer on the staff list loses
//! hers with the roster that drops her; nothing here is ever put in the outbox.

use rusqlite::{OptionalExtension as _, params};

use crate::error::SqlContext as _;
use crate::{Result, StoreHandle};

use super::audit::{Audit, insert_audit};
use super::handle::now_utc;

/// A sealed voiceprint.
#[derive(Clone, PartialEq)]
pub struct SealedVoiceprint {
    /// The teacher (staff id).
    pub teacher_id: String,
    /// The voice model's name.
    pub model: String,
    /// Encryption nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext with its tag.
    pub sealed: Vec<u8>,
    /// Seconds of speech it was made from.
    pub speech_s: f64,
}

impl std::fmt::Debug for SealedVoiceprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedVoiceprint(..)")
    }
}

/// What a teacher may know of her own voiceprint.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VoiceprintInfo {
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// Seconds of speech it was made from.
    pub speech_s: f64,
    /// The voice model.
    pub model: String,
}

impl StoreHandle {
    /// Stores (or replaces) a teacher's voiceprint, with its audit row.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] when the teacher is not on the staff list; SQLite fails.
    pub async fn voice_enrol(&self, print: SealedVoiceprint, audit: Audit) -> Result<()> {
        self.call(move |db| {
            let tx = db.conn.transaction().ctx("starting a transaction")?;
            let staff: bool = tx
                .query_row(
                    "SELECT 1 FROM staff WHERE id = ?1",
                    [&print.teacher_id],
                    |_| Ok(true),
                )
                .optional()
                .ctx("looking up a teacher")?
                .unwrap_or(false);
            if !staff {
                return Err(crate::Error::Invalid(format!(
                    "{} is not on this board's staff list",
                    crate::limits::excerpt(&print.teacher_id)
                )));
            }
            tx.execute(
                "INSERT INTO voiceprints (teacher_id, model, nonce, sealed, speech_s, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (teacher_id) DO UPDATE SET model = excluded.model,
                   nonce = excluded.nonce, sealed = excluded.sealed,
                   speech_s = excluded.speech_s, created_at = excluded.created_at",
                params![
                    print.teacher_id,
                    print.model,
                    print.nonce,
                    print.sealed,
                    print.speech_s,
                    now_utc()
                ],
            )
            .ctx("storing a voiceprint")?;
            insert_audit(&tx, &audit)?;
            tx.commit().ctx("committing a voiceprint")
        })
        .await
    }

    /// Deletes a teacher's voiceprint, with its audit row; `false` (and no audit row) when
    /// she had none.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn voice_delete(&self, teacher_id: String, audit: Audit) -> Result<bool> {
        self.call(move |db| {
            let tx = db.conn.transaction().ctx("starting a transaction")?;
            let n = tx
                .execute(
                    "DELETE FROM voiceprints WHERE teacher_id = ?1",
                    [&teacher_id],
                )
                .ctx("deleting a voiceprint")?;
            if n == 0 {
                return Ok(false);
            }
            insert_audit(&tx, &audit)?;
            tx.commit().ctx("committing the deletion")?;
            Ok(true)
        })
        .await
    }

    /// Every sealed voiceprint of `model`.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn voiceprints(&self, model: String) -> Result<Vec<SealedVoiceprint>> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare_cached(
                    "SELECT teacher_id, model, nonce, sealed, speech_s FROM voiceprints
                     WHERE model = ?1 ORDER BY teacher_id",
                )
                .ctx("reading voiceprints")?;
            let rows = stmt
                .query_map([&model], |r| {
                    Ok(SealedVoiceprint {
                        teacher_id: r.get(0)?,
                        model: r.get(1)?,
                        nonce: r.get(2)?,
                        sealed: r.get(3)?,
                        speech_s: r.get(4)?,
                    })
                })
                .ctx("reading voiceprints")?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .ctx("reading voiceprints")
        })
        .await
    }

    /// A teacher's own voiceprint: when and from how much speech (never the print).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn voiceprint_info(&self, teacher_id: String) -> Result<Option<VoiceprintInfo>> {
        self.call(move |db| {
            db.conn
                .query_row(
                    "SELECT created_at, speech_s, model FROM voiceprints WHERE teacher_id = ?1",
                    [&teacher_id],
                    |r| {
                        Ok(VoiceprintInfo {
                            created_at: r.get(0)?,
                            speech_s: r.get(1)?,
                            model: r.get(2)?,
                        })
                    },
                )
                .optional()
                .ctx("reading a voiceprint")
        })
        .await
    }
}
