//! Face attendance data: guardian consent records and sealed face templates.
//!
//! The store never sees a template in the clear: the daemon seals each one (authenticated
//! encryption, key outside the database) and hands over nonce and ciphertext. Rules kept
//! here, in the same transaction as each change and its audit row:
//!
//! * a template is stored only for a student with a consent record;
//! * withdrawing consent deletes the consent and every template of the student (real
//!   deletion: the store runs with `secure_delete = FAST`, which zeroes deleted content in
//!   the pages it rewrites), and the audit row says how many;
//! * nothing here is ever put in the outbox: templates and consent stay on the device.

use rusqlite::{OptionalExtension as _, params};

use crate::error::SqlContext as _;
use crate::{Error, Result, StoreHandle};

use super::audit::{Audit, insert_audit};
use super::handle::now_utc;

/// A consent record as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsentRow {
    /// The student.
    pub student_id: String,
    /// When consent was given (RFC 3339).
    pub granted_at: String,
    /// `roster` or `technician`.
    pub source: String,
    /// Who entered it (technician consents).
    pub recorded_by: Option<String>,
    /// Templates held for the student.
    pub templates: u32,
}

/// A sealed template.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedTemplate {
    /// The student.
    pub student_id: String,
    /// The embedding model's name.
    pub model: String,
    /// Encryption nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext with its tag.
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SealedTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedTemplate(..)")
    }
}

impl StoreHandle {
    /// Records consent for `student_id` (replacing an earlier record), with its audit row.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown student or source; SQLite fails.
    pub async fn face_consent_grant(
        &self,
        student_id: String,
        granted_at: String,
        source: String,
        recorded_by: Option<String>,
        audit: Audit,
    ) -> Result<()> {
        self.call(move |db| {
            let tx = db.conn.transaction().ctx("starting a transaction")?;
            let known: bool = tx
                .query_row(
                    "SELECT 1 FROM students WHERE id = ?1",
                    [&student_id],
                    |_| Ok(true),
                )
                .optional()
                .ctx("looking up a student")?
                .unwrap_or(false);
            if !known {
                return Err(Error::Invalid(format!(
                    "no student {student_id:?} on this board"
                )));
            }
            if source != "roster" && source != "technician" {
                return Err(Error::Invalid(format!("consent source {source:?}")));
            }
            tx.execute(
                "INSERT INTO face_consent (student_id, granted_at, source, recorded_by)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (student_id) DO UPDATE SET granted_at = excluded.granted_at,
                   source = excluded.source, recorded_by = excluded.recorded_by",
                params![student_id, granted_at, source, recorded_by],
            )
            .ctx("recording consent")?;
            insert_audit(&tx, &audit)?;
            tx.commit().ctx("committing consent")
        })
        .await
    }

    /// Withdraws consent for `student_id`: deletes the record and every template, with its
    /// audit row (detail gets `templates_deleted`). Returns how many templates went.
    ///
    /// # Errors
    /// SQLite fails (nothing is deleted then).
    pub async fn face_consent_withdraw(&self, student_id: String, mut audit: Audit) -> Result<u32> {
        self.call(move |db| {
            let tx = db.conn.transaction().ctx("starting a transaction")?;
            let n = tx
                .execute(
                    "DELETE FROM face_templates WHERE student_id = ?1",
                    [&student_id],
                )
                .ctx("deleting face templates")?;
            let consents = tx
                .execute(
                    "DELETE FROM face_consent WHERE student_id = ?1",
                    [&student_id],
                )
                .ctx("deleting consent")?;
            if consents == 0 && n == 0 {
                // Nothing to withdraw: no audit row for a withdrawal that did nothing.
                return Err(Error::Invalid(format!(
                    "student {} has no face consent to withdraw",
                    crate::limits::excerpt(&student_id)
                )));
            }
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            if let Some(o) = audit.detail.as_object_mut() {
                o.insert("templates_deleted".into(), n.into());
            }
            insert_audit(&tx, &audit)?;
            tx.commit().ctx("committing the withdrawal")?;
            Ok(n)
        })
        .await
    }

    /// Stores a sealed template, refused without consent.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the student has no consent record; SQLite fails.
    pub async fn face_enrol(&self, template: SealedTemplate, audit: Audit) -> Result<()> {
        self.call(move |db| {
            let tx = db.conn.transaction().ctx("starting a transaction")?;
            let consent: bool = tx
                .query_row(
                    "SELECT 1 FROM face_consent WHERE student_id = ?1",
                    [&template.student_id],
                    |_| Ok(true),
                )
                .optional()
                .ctx("looking up consent")?
                .unwrap_or(false);
            if !consent {
                return Err(Error::Invalid(format!(
                    "student {:?} has no guardian consent record: no face can be enrolled",
                    template.student_id
                )));
            }
            tx.execute(
                "INSERT INTO face_templates (student_id, model, nonce, sealed, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    template.student_id,
                    template.model,
                    template.nonce,
                    template.sealed,
                    now_utc()
                ],
            )
            .ctx("storing a face template")?;
            insert_audit(&tx, &audit)?;
            tx.commit().ctx("committing a face template")
        })
        .await
    }

    /// Every sealed template of `model`.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn face_templates(&self, model: String) -> Result<Vec<SealedTemplate>> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare_cached(
                    "SELECT student_id, model, nonce, sealed FROM face_templates
                     WHERE model = ?1 ORDER BY id",
                )
                .ctx("reading face templates")?;
            let rows = stmt
                .query_map([&model], |r| {
                    Ok(SealedTemplate {
                        student_id: r.get(0)?,
                        model: r.get(1)?,
                        nonce: r.get(2)?,
                        sealed: r.get(3)?,
                    })
                })
                .ctx("reading face templates")?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .ctx("reading face templates")
        })
        .await
    }

    /// How many stored templates were made by another model than `model` (they do not
    /// match with it: those students must enrol again, or the board go back to that model).
    ///
    /// # Errors
    /// The store failed.
    pub async fn face_templates_of_other_models(&self, model: String) -> Result<u64> {
        self.call(move |db| {
            db.conn
                .query_row(
                    "SELECT COUNT(*) FROM face_templates WHERE model <> ?1",
                    [&model],
                    |r| r.get::<_, i64>(0),
                )
                .ctx("counting face templates")
                .map(|n| n.unsigned_abs())
        })
        .await
    }

    /// Consent records with their template counts.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn face_consents(&self) -> Result<Vec<ConsentRow>> {
        self.call(move |db| {
            let mut stmt = db
                .conn
                .prepare_cached(
                    "SELECT c.student_id, c.granted_at, c.source, c.recorded_by,
                            (SELECT count(*) FROM face_templates t WHERE t.student_id = c.student_id)
                     FROM face_consent c ORDER BY c.student_id",
                )
                .ctx("reading consent")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(ConsentRow {
                        student_id: r.get(0)?,
                        granted_at: r.get(1)?,
                        source: r.get(2)?,
                        recorded_by: r.get(3)?,
                        templates: r.get(4)?,
                    })
                })
                .ctx("reading consent")?;
            rows.collect::<rusqlite::Result<Vec<_>>>().ctx("reading consent")
        })
        .await
    }
}
