//! Teachers' voiceprints (one room microphone: who speaks, docs/models.md): a teacher
//! enrols and deletes her own in teacher mode, each audited; the inference thread matches
//! lesson speech against the prints of every enrolled teacher of the board, loaded at
//! start and after each change.
//!
//! Rules (docs/privacy.md, "Voice"): the recording of an enrolment is never stored (only
//! the sealed print, with the board's face-template key); a print leaves with its teacher
//! (her own deletion, or the roster that drops her); nothing is synced.

use ketang_sync::SealedVoiceprint;
use ketang_web::Actor;

use super::ActionError;
use super::Classroom;
use super::Reply;
use super::actions::AuditDetail;
use crate::inference::{Inference, VOICE_MODEL};

/// The sealing context of a teacher's print (face templates use the student id).
fn subject(teacher_id: &str) -> String {
    format!("voice:{teacher_id}")
}

impl Classroom {
    /// Hands the inference thread the stored voiceprints.
    pub(crate) async fn reload_voiceprints(&self) {
        self.reloader().reload().await;
    }

    /// Starts a voice enrolment for the signed-in teacher; the answer is sent on `reply`
    /// when the board has heard enough (up to 45 s later). The classroom goes on meanwhile:
    /// the listening runs in its own task.
    pub(crate) fn voice_enrol(
        &self,
        actor: Actor,
        reply: tokio::sync::oneshot::Sender<Result<Reply, ActionError>>,
    ) {
        let (inf, key) = match self.faces_ready() {
            Ok(x) => x,
            Err(_) => {
                let _ = reply.send(Err(ActionError::Conflict(
                    "this board does not tell voices apart: inference is off (inference.enabled, inference.key_file)".to_owned(),
                )));
                return;
            }
        };
        let store = self.store.clone();
        let audit_at = (self.clock.now_fixed(), self.clock.synced());
        let me = self.reloader();
        tokio::spawn(async move {
            let r = async {
                let (print, speech_s) = inf.enrol_voice().await.map_err(ActionError::Conflict)?;
                let (nonce, sealed) = key
                    .seal(&subject(&actor.id), VOICE_MODEL, &print)
                    .map_err(|e| ActionError::Internal(format!("{e:#}")))?;
                let audit = ketang_sync::Audit::new(
                    (&actor.id, actor.role.as_str()),
                    "voice.enrol",
                    &actor.id,
                    &AuditDetail::Enrolled { model: VOICE_MODEL },
                    audit_at.0,
                    audit_at.1,
                );
                let p = SealedVoiceprint {
                    teacher_id: actor.id.clone(),
                    model: VOICE_MODEL.to_owned(),
                    nonce,
                    sealed,
                    speech_s: f64::from(speech_s),
                };
                match store.voice_enrol(p, audit).await {
                    Ok(()) => {}
                    Err(ketang_sync::Error::Invalid(m)) => return Err(ActionError::Conflict(m)),
                    Err(e) => return Err(ActionError::Internal(e.to_string())),
                }
                tracing::info!("A teacher enrolled her voice.");
                Ok(Reply::Voice {
                    enrolled: true,
                    speech_s: Some((f64::from(speech_s) * 10.0).round() / 10.0),
                })
            }
            .await;
            if r.is_ok() {
                me.reload().await;
            } else if let Err(e) = &r {
                tracing::info!(action = "voice_enrol", error = %e, "Action refused or failed.");
            }
            let _ = reply.send(r);
        });
    }

    /// Stops the voice enrolment that is listening: it answers 409 and stores nothing.
    pub(crate) async fn voice_enrol_cancel(&self) -> Result<Reply, ActionError> {
        let cancelled = match &self.inference {
            Some(inf) => inf.cancel_voice_enrolment().await,
            None => false,
        };
        if !cancelled {
            return Err(ActionError::Conflict(
                "no voice enrolment is listening on this board".to_owned(),
            ));
        }
        tracing::info!("A voice enrolment was cancelled.");
        Ok(Reply::VoiceEnrolCancelled { cancelled: true })
    }

    /// Deletes the signed-in teacher's voiceprint.
    pub(crate) async fn voice_delete(&mut self, actor: &Actor) -> Result<Reply, ActionError> {
        let audit = self.audit(
            actor,
            "voice.delete",
            &actor.id,
            &AuditDetail::Enrolled { model: VOICE_MODEL },
        );
        let deleted = self.stored(
            "deleting a voiceprint",
            self.store.voice_delete(actor.id.clone(), audit).await,
        )?;
        if !deleted {
            return Err(ActionError::Conflict(
                "you have no voiceprint on this board".to_owned(),
            ));
        }
        self.reload_voiceprints().await;
        Ok(Reply::Voice {
            enrolled: false,
            speech_s: None,
        })
    }

    /// What reloads the inference thread's voiceprints from another task.
    fn reloader(&self) -> Reloader {
        Reloader {
            store: self.store.clone(),
            inference: self.inference.clone(),
            key: self.face_key.clone(),
        }
    }
}

/// [`Classroom::reload_voiceprints`] for a task outside the classroom actor.
struct Reloader {
    store: ketang_sync::StoreHandle,
    inference: Option<Inference>,
    key: Option<std::sync::Arc<crate::facekey::FaceKey>>,
}

impl Reloader {
    async fn reload(&self) {
        let (Some(inf), Some(key)) = (&self.inference, &self.key) else {
            return;
        };
        let sealed = match self.store.voiceprints(VOICE_MODEL.to_owned()).await {
            Ok(s) => s,
            Err(e) => return tracing::error!(error = %e, "Reading voiceprints failed."),
        };
        let prints: Vec<Vec<f32>> = sealed
            .iter()
            .filter_map(|p| {
                key.open(&subject(&p.teacher_id), &p.model, &p.nonce, &p.sealed)
                    .ok()
            })
            .collect();
        if prints.len() < sealed.len() {
            tracing::warn!(
                bad = sealed.len() - prints.len(),
                "Voiceprints that do not open with this board's key were skipped."
            );
        }
        inf.set_voiceprints(prints);
    }
}
