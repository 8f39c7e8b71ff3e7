//! Face attendance data in the classroom: consent and enrolment are technician actions,
//! each audited; the gallery the inference thread matches against is rebuilt from the
//! sealed templates whenever they change.
//!
//! Rules (docs/privacy.md): no template without a consent record (the store refuses it);
//! withdrawal deletes the templates at once and the gallery forgets the student; images
//! are never stored, only the sealed embedding; the uplink carries the check-in (student
//! id, status, `source: "face"`, `confidence`), never an image or a template.

use base64::Engine as _;
use ketang_models::Frame;
use ketang_sync::SealedTemplate;
use ketang_web::Actor;

use super::ActionError;
use super::Classroom;
use super::Reply;
use super::actions::AuditDetail;

/// Decodes a PNG or JPEG photo.
pub(crate) fn decode_image(bytes: &[u8]) -> Result<Frame, String> {
    Frame::decode(bytes).map_err(|e| e.to_string())
}

/// [`decode_image`] on the blocking pool: a photo is never decoded on the async runtime
/// or in the classroom actor.
pub(crate) async fn decode_image_off(bytes: Vec<u8>) -> Result<Frame, String> {
    tokio::task::spawn_blocking(move || decode_image(&bytes))
        .await
        .map_err(|e| format!("decoding the image failed: {e}"))?
}

impl Classroom {
    /// Rebuilds the inference thread's gallery from the stored templates.
    pub(crate) async fn reload_gallery(&self) {
        let (Some(inf), Some(key)) = (&self.inference, &self.face_key) else {
            return;
        };
        let sealed = match self.store.face_templates(inf.model().to_owned()).await {
            Ok(t) => t,
            Err(e) => return self.store_health.failed("reading face templates", &e),
        };
        let mut open = Vec::with_capacity(sealed.len());
        let mut bad = 0usize;
        for t in sealed {
            match key.open(&t.student_id, &t.model, &t.nonce, &t.sealed) {
                Ok(v) => open.push((t.student_id, v)),
                Err(_) => bad += 1,
            }
        }
        if bad > 0 {
            tracing::warn!(
                bad,
                "Face templates that do not open with this board's key were skipped."
            );
        }
        let other_models = match self
            .store
            .face_templates_of_other_models(inf.model().to_owned())
            .await
        {
            Ok(n) => n,
            Err(e) => return self.store_health.failed("counting face templates", &e),
        };
        inf.set_gallery(open, other_models);
    }

    pub(super) fn faces_ready(
        &self,
    ) -> Result<
        (
            crate::inference::Inference,
            std::sync::Arc<crate::facekey::FaceKey>,
        ),
        ActionError,
    > {
        match (&self.inference, &self.face_key) {
            (Some(i), Some(k)) => Ok((i.clone(), k.clone())),
            _ => Err(ActionError::Conflict(
                "face attendance is off on this board (inference.enabled, inference.key_file)"
                    .to_owned(),
            )),
        }
    }

    /// Records or withdraws consent (technician), audited; withdrawal deletes templates.
    pub(crate) async fn face_consent(
        &mut self,
        actor: &Actor,
        student_id: String,
        granted: bool,
        granted_at: Option<String>,
    ) -> Result<Reply, ActionError> {
        if granted {
            let at = match granted_at {
                Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
                    .map_err(|e| {
                        ActionError::Invalid(format!(
                            "granted_at {t:?} is not an RFC 3339 time: {e}"
                        ))
                    })?
                    .to_rfc3339(),
                None => self.clock.now_fixed().to_rfc3339(),
            };
            let audit = self.audit(
                actor,
                "face.consent_granted",
                &student_id,
                &AuditDetail::ConsentGranted { granted_at: &at },
            );
            match self
                .store
                .face_consent_grant(
                    student_id.clone(),
                    at.clone(),
                    "technician".into(),
                    Some(actor.id.clone()),
                    audit,
                )
                .await
            {
                Ok(()) => Ok(Reply::Consent {
                    student_id,
                    consent: true,
                    granted_at: Some(at),
                    templates_deleted: None,
                }),
                Err(ketang_sync::Error::Invalid(m)) => Err(ActionError::NotFound(m)),
                Err(e) => self.stored("recording consent", Err(e)),
            }
        } else {
            let audit = self.audit(
                actor,
                "face.consent_withdrawn",
                &student_id,
                &AuditDetail::ConsentWithdrawn {
                    source: "technician",
                },
            );
            let n = match self
                .store
                .face_consent_withdraw(student_id.clone(), audit)
                .await
            {
                Err(ketang_sync::Error::Invalid(m)) => return Err(ActionError::NotFound(m)),
                r => self.stored("withdrawing consent", r)?,
            };
            self.reload_gallery().await;
            tracing::info!(templates = n, "Face consent withdrawn; templates deleted.");
            Ok(Reply::Consent {
                student_id,
                consent: false,
                granted_at: None,
                templates_deleted: Some(n),
            })
        }
    }

    /// Enrols a face from a photo (technician), audited; needs consent.
    pub(crate) async fn face_enrol(
        &mut self,
        actor: &Actor,
        student_id: String,
        image_base64: &str,
    ) -> Result<Reply, ActionError> {
        let (inf, key) = self.faces_ready()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(image_base64.trim())
            .map_err(|e| ActionError::Invalid(format!("image_base64 is not base64: {e}")))?;
        let frame = decode_image_off(bytes)
            .await
            .map_err(ActionError::Invalid)?;
        let embedding = inf.enrol(frame).await.map_err(ActionError::Conflict)?;
        let (nonce, sealed) = key
            .seal(&student_id, inf.model(), &embedding)
            .map_err(|e| ActionError::Internal(format!("{e:#}")))?;
        let audit = self.audit(
            actor,
            "face.enrol",
            &student_id,
            &AuditDetail::Enrolled { model: inf.model() },
        );
        let t = SealedTemplate {
            student_id: student_id.clone(),
            model: inf.model().to_owned(),
            nonce,
            sealed,
        };
        match self.store.face_enrol(t, audit).await {
            Ok(()) => {}
            Err(ketang_sync::Error::Invalid(m)) => return Err(ActionError::Conflict(m)),
            Err(e) => return self.stored("storing a face template", Err(e)),
        }
        self.reload_gallery().await;
        tracing::info!("Face enrolled.");
        Ok(Reply::Enrolled {
            student_id,
            enrolled: true,
            model: inf.model(),
        })
    }
}
