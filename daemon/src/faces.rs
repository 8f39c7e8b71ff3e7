//! Face attendance in the classroom engine: a recognised student is checked in like a card
//! tap (source `face`, with its confidence); consent and enrolment are technician actions,
//! each audited; the gallery the inference thread matches against is rebuilt from the
//! sealed templates whenever they change.
//!
//! Rules (docs/privacy.md): no template without a consent record (the store refuses it);
//! withdrawal deletes the templates at once and the gallery forgets the student; images
//! are never stored, only the sealed embedding; the uplink carries the check-in (student
//! id, status, `source: "face"`, `confidence`), never an image or a template.

use base64::Engine as _;
use ketang_models::Frame;
use ketang_sync::{AttendanceSource, CheckInOutcome, SealedTemplate};
use ketang_web::{Actor, ApiError};
use serde_json::{Value, json};

use chrono::{DateTime, FixedOffset, Utc};
use ketang_models::behaviour::{LessonBehaviour, Posture};
use ketang_models::vad::{Segment, StAnalysis};
use ketang_sync::AttendanceStatus;

use crate::classroom::{Classroom, bump};

/// S-T analysis samples the lesson this often.
const ST_INTERVAL_S: f32 = 30.0;

/// Rounds to three decimals for reports.
fn r3(x: f32) -> f64 {
    (f64::from(x) * 1000.0).round() / 1000.0
}

/// Class-level observations of one lesson, kept in memory while it runs (a restart
/// mid-lesson starts them again): never who, only how many and how much.
#[derive(Debug)]
pub(crate) struct LessonObs {
    lesson_id: String,
    people_max: u32,
    behaviour: LessonBehaviour,
    speech: Vec<(DateTime<Utc>, DateTime<Utc>, bool)>,
    heard: bool,
    method: &'static str,
}

impl LessonObs {
    fn new(lesson_id: String) -> Self {
        Self {
            lesson_id,
            people_max: 0,
            behaviour: LessonBehaviour::default(),
            speech: Vec::new(),
            heard: false,
            method: "room_mic",
        }
    }

    /// Adds `head_count`, `behaviour` and `talk_time` to a lesson report.
    pub(crate) fn fill_report(
        &self,
        report: &mut Value,
        roll: &[(String, Option<AttendanceStatus>)],
        from: DateTime<FixedOffset>,
        to: DateTime<FixedOffset>,
    ) {
        if self.people_max > 0 {
            // People seen at once against who is marked in the room: a difference is worth a
            // look (someone unrecognised, or marked present but not there), never an
            // accusation of anyone.
            let present = roll
                .iter()
                .filter(|(_, s)| {
                    matches!(s, Some(AttendanceStatus::Present | AttendanceStatus::Late))
                })
                .count();
            report["head_count"] = json!({
                "people_max": self.people_max,
                "present": present,
                "mismatch": usize::try_from(self.people_max).unwrap_or(usize::MAX) != present,
            });
        }
        let b = &self.behaviour;
        if b.frames() > 0 {
            report["behaviour"] = json!({
                "frames": b.frames(),
                "hand_raise_events": b.hand_raise_events(),
                "share_most_heads_down": r3(b.share_most_heads_down()),
                "heads_up_rate": r3(b.heads_up_rate()),
                "standing_max": b.standing_max(),
            });
        }
        if self.heard {
            let secs = |t: &DateTime<Utc>| (t.fixed_offset() - from).as_seconds_f32();
            let inside: Vec<&(DateTime<Utc>, DateTime<Utc>, bool)> = self
                .speech
                .iter()
                .filter(|(s, e, _)| e.fixed_offset() > from && s.fixed_offset() < to)
                .collect();
            let seg = |(s, e, _): &&(DateTime<Utc>, DateTime<Utc>, bool)| Segment {
                start_s: secs(s).max(0.0),
                end_s: secs(e),
            };
            let all: Vec<Segment> = inside.iter().map(seg).collect();
            let teacher: Vec<Segment> = inside.iter().filter(|x| x.2).map(seg).collect();
            let duration = (to - from).as_seconds_f32().max(0.0);
            let st = StAnalysis::from_segments(&teacher, duration, ST_INTERVAL_S);
            report["talk_time"] = json!({
                "speech_s": r3(ketang_models::vad::speech_seconds(&all)),
                "teacher_s": r3(ketang_models::vad::speech_seconds(&teacher)),
                "samples": st.samples,
                "rt": r3(st.rt),
                "ch": r3(st.ch),
                "lesson_type": format!("{:?}", st.lesson_type()).to_lowercase(),
                "method": self.method,
            });
        }
    }
}

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
    /// A student recognised by the camera: a check-in with source `face`.
    pub(crate) async fn face_match(&mut self, student_id: String, similarity: f32) {
        let now = self.clock.now();
        let Some(slot) = self.current_slot() else {
            tracing::debug!("A face was recognised with no lesson open for check-in.");
            return;
        };
        match self
            .store
            .on_roster(slot.period.roster_id.clone(), student_id.clone())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(lesson = %slot.id(), "A recognised student is not on this lesson's roster.");
                return;
            }
            Err(e) => return self.store_health.failed("checking a roster", &e),
        }
        let name = match self.store.student_name(student_id.clone()).await {
            Ok(n) => n.unwrap_or_default(),
            Err(e) => return self.store_health.failed("looking up a student", &e),
        };
        let confidence = (f64::from(similarity) * 1000.0).round() / 1000.0;
        let (check_in, status) = self.sensor_check_in(
            &slot,
            now,
            student_id,
            AttendanceSource::Face,
            json!({"confidence": confidence, "reader": "camera"}),
            None,
        );
        match self.store.check_in(check_in).await {
            Ok(CheckInOutcome::Recorded { seq }) => {
                self.store_health.ok();
                bump(&self.counters.check_ins);
                self.emit(
                    "tap",
                    json!({"outcome": "checked_in", "status": status, "source": "face"}),
                    json!({"name": name}),
                );
                tracing::info!(lesson = %slot.id(), status = status.as_str(), seq, "Face check-in recorded.");
            }
            Ok(CheckInOutcome::AlreadyRecorded { .. }) => {
                tracing::debug!(lesson = %slot.id(), "A recognised student was already checked in.");
            }
            Err(e) => self.store_health.failed("recording a face check-in", &e),
        }
    }

    /// The observations of the lesson open now (started afresh when the lesson changes).
    fn observing(&mut self) -> Option<&mut LessonObs> {
        let id = self.current_slot()?.id();
        if self.observed.as_ref().is_none_or(|o| o.lesson_id != id) {
            self.observed = Some(LessonObs::new(id));
        }
        self.observed.as_mut()
    }

    /// The camera's head count: the lesson's is the most people seen at once.
    pub(crate) fn head_count_seen(&mut self, people: u32) {
        if let Some(o) = self.observing() {
            o.people_max = o.people_max.max(people);
        }
    }

    /// One frame's postures, into the lesson's behaviour aggregates.
    pub(crate) fn behaviour_seen(&mut self, postures: &[Posture]) {
        if let Some(o) = self.observing() {
            o.behaviour.add_frame(postures);
        }
    }

    /// Speech heard by the microphone, into the lesson's talk-time timeline.
    pub(crate) fn speech_heard(
        &mut self,
        segments: Vec<(DateTime<Utc>, DateTime<Utc>, bool)>,
        method: &'static str,
    ) {
        if let Some(o) = self.observing() {
            o.heard = true;
            o.method = method;
            o.speech.extend(segments);
        }
    }

    /// What was observed in lesson `lesson_id`, if anything.
    pub(crate) fn observed_in(&self, lesson_id: &str) -> Option<&LessonObs> {
        self.observed.as_ref().filter(|o| o.lesson_id == lesson_id)
    }

    /// Rebuilds the inference thread's gallery from the stored templates.
    pub(crate) async fn reload_gallery(&self) {
        let (Some(inf), Some(key)) = (&self.inference, &self.face_key) else {
            return;
        };
        let sealed = match self
            .store
            .face_templates(crate::inference::EMBEDDER_MODEL.to_owned())
            .await
        {
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
        inf.set_gallery(open);
    }

    fn faces_ready(
        &self,
    ) -> Result<
        (
            crate::inference::Inference,
            std::sync::Arc<crate::facekey::FaceKey>,
        ),
        ApiError,
    > {
        match (&self.inference, &self.face_key) {
            (Some(i), Some(k)) => Ok((i.clone(), k.clone())),
            _ => Err(ApiError::Conflict(
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
    ) -> Result<Value, ApiError> {
        if granted {
            let at = match granted_at {
                Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
                    .map_err(|e| {
                        ApiError::BadRequest(format!(
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
                json!({"granted_at": at}),
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
                Ok(()) => Ok(json!({"student_id": student_id, "consent": true, "granted_at": at})),
                Err(ketang_sync::Error::Invalid(m)) => Err(ApiError::NotFound(m)),
                Err(e) => self.stored("recording consent", Err(e)),
            }
        } else {
            let audit = self.audit(
                actor,
                "face.consent_withdrawn",
                &student_id,
                json!({"source": "technician"}),
            );
            let r = self
                .store
                .face_consent_withdraw(student_id.clone(), audit)
                .await;
            let n = self.stored("withdrawing consent", r)?;
            self.reload_gallery().await;
            tracing::info!(templates = n, "Face consent withdrawn; templates deleted.");
            Ok(json!({"student_id": student_id, "consent": false, "templates_deleted": n}))
        }
    }

    /// Enrols a face from a photo (technician), audited; needs consent.
    pub(crate) async fn face_enrol(
        &mut self,
        actor: &Actor,
        student_id: String,
        image_base64: &str,
    ) -> Result<Value, ApiError> {
        let (inf, key) = self.faces_ready()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(image_base64.trim())
            .map_err(|e| ApiError::BadRequest(format!("image_base64 is not base64: {e}")))?;
        let frame = decode_image_off(bytes)
            .await
            .map_err(ApiError::BadRequest)?;
        let embedding = inf.enrol(frame).await.map_err(ApiError::Conflict)?;
        let (nonce, sealed) = key
            .seal(&student_id, crate::inference::EMBEDDER_MODEL, &embedding)
            .map_err(|e| ApiError::Internal(format!("{e:#}")))?;
        let audit = self.audit(
            actor,
            "face.enrol",
            &student_id,
            json!({"model": crate::inference::EMBEDDER_MODEL}),
        );
        let t = SealedTemplate {
            student_id: student_id.clone(),
            model: crate::inference::EMBEDDER_MODEL.to_owned(),
            nonce,
            sealed,
        };
        match self.store.face_enrol(t, audit).await {
            Ok(()) => {}
            Err(ketang_sync::Error::Invalid(m)) => return Err(ApiError::Conflict(m)),
            Err(e) => return self.stored("storing a face template", Err(e)),
        }
        self.reload_gallery().await;
        tracing::info!("Face enrolled.");
        Ok(
            json!({"student_id": student_id, "enrolled": true, "model": crate::inference::EMBEDDER_MODEL}),
        )
    }
}
