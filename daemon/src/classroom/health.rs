//! Health checks (晨午检): thermometer readings paired with the card tapped next, and the
//! symptoms a teacher records.

use ketang_sync::{HealthCheckBody, HealthCheckRecord, OutboxRecord};
use ketang_web::{Actor, BoardEvent};

use crate::engine::health;

use super::ActionError;
use super::Reply;
use super::actions::AuditDetail;
use super::{Classroom, bump};

/// Symptoms a teacher can record (晨午检 symptom list).
pub(crate) const SYMPTOMS: [&str; 9] = [
    "fever",
    "cough",
    "sore_throat",
    "headache",
    "vomiting",
    "diarrhea",
    "rash",
    "fatigue",
    "other",
];

impl Classroom {
    pub(super) async fn temperature(&mut self, sensor: String, celsius: f64) {
        if !health::PLAUSIBLE_C.contains(&celsius) {
            tracing::warn!(%sensor, celsius, "Thermometer reading outside 30-45 °C; treated as a sensor fault, not a fever.");
            self.hw.set_health(
                &sensor,
                false,
                Some(format!(
                    "implausible reading {celsius:.1} °C (expected 30-45 °C): check the sensor"
                )),
            );
            // Counted after the health is set, so status never shows one without the other.
            bump(&self.counters.rejected_inputs);
            return;
        }
        self.hw.set_health(&sensor, true, None);
        let now = self.clock.now();
        if self.pairing.order() == health::Order::ReadingFirst {
            // The student measured is at the thermometer now and has not tapped yet: the
            // result shows at once, without a name (a fever stays red when the tap follows).
            let fever = celsius >= self.school.fever_threshold_c;
            let window = health::window_of(
                now.time(),
                self.school.morning_check,
                self.school.noon_check,
                self.school.evening_check,
            );
            self.emit(BoardEvent::Health {
                fever,
                window,
                name: None,
                temp_c: celsius,
            });
        }
        let outcome = self.pairing.on_reading(celsius, now);
        self.paired(outcome).await;
    }

    /// What the pairing made of a reading or a tap: a check to store, or an ambiguity the
    /// board says aloud (nothing is stored under a guess).
    pub(super) async fn paired(&mut self, outcome: health::Outcome) {
        match outcome {
            health::Outcome::Paired(p) => self.health_check(p).await,
            health::Outcome::Nothing => {}
            health::Outcome::Ambiguous => {
                tracing::info!(
                    order = self.pairing.order().as_str(),
                    "A thermometer reading could not be told apart between students; not recorded."
                );
                self.emit(BoardEvent::HealthAmbiguous);
            }
        }
    }

    pub(super) async fn health_check(&mut self, p: health::Paired) {
        let fever = p.temp_c >= self.school.fever_threshold_c;
        let window = health::window_of(
            p.at.time(),
            self.school.morning_check,
            self.school.noon_check,
            self.school.evening_check,
        );
        let at = p.at.fixed_offset();
        let synced = self.clock.synced();
        let body = HealthCheckBody {
            student_id: p.student_id.clone(),
            window,
            temp_c: Some((p.temp_c * 10.0).round() / 10.0),
            fever,
            threshold_c: self.school.fever_threshold_c,
            symptoms: None,
            source: None,
            recorded_by: None,
        };
        let (student_id, temp_c) = (p.student_id.clone(), p.temp_c);
        let rec = HealthCheckRecord {
            symptoms: Vec::new(),
            student_id: p.student_id,
            window,
            temp_c: Some(p.temp_c),
            fever,
            at,
            clock_synced: synced,
        };
        let out = OutboxRecord::new(&body, at, synced);
        match self.store.record_health_check(rec, out, None).await {
            Ok(seq) => {
                self.store_health.ok();
                bump(&self.counters.health_checks);
                if fever {
                    self.fever_followup(&student_id, p.at.date_naive()).await;
                }
                if self.pairing.order() == health::Order::CardFirst {
                    // The reading completes the check of the student who tapped: named.
                    let name = self.store.student_name(student_id).await.ok().flatten();
                    self.emit(BoardEvent::Health {
                        fever,
                        window,
                        name,
                        temp_c,
                    });
                } else {
                    // Shown when it was measured; the teacher's views re-read.
                    let _ = (student_id, temp_c);
                    self.emit(BoardEvent::Changed);
                }
                tracing::info!(
                    window = window.as_str(),
                    fever,
                    seq,
                    "Health check recorded."
                );
            }
            Err(e) => self.store_health.failed("recording a health check", &e),
        }
    }

    /// A fever at a check puts the student on the day's follow-up list (因病缺勤追踪: the
    /// teacher records what came of it), once a day like every follow-up: one already open
    /// for the student that day stands.
    async fn fever_followup(&mut self, student_id: &str, date: chrono::NaiveDate) {
        let r = self
            .store
            .open_followups(
                date,
                vec![student_id.to_owned()],
                crate::engine::followup::FEVER_AT_CHECK.to_owned(),
                self.clock.now_fixed(),
                self.clock.synced(),
            )
            .await;
        match r {
            Ok(n) => tracing::info!(opened = n, "A fever at a check: followed up."),
            Err(e) => self.store_health.failed("opening a fever follow-up", &e),
        }
    }

    pub(super) async fn record_symptoms(
        &mut self,
        actor: &Actor,
        student_id: String,
        symptoms: Vec<String>,
        temp_c: Option<f64>,
    ) -> Result<Reply, ActionError> {
        if let Some(bad) = symptoms.iter().find(|s| !SYMPTOMS.contains(&s.as_str())) {
            return Err(ActionError::Invalid(format!(
                "symptom {} is not one of {}",
                ketang_sync::limits::excerpt(bad),
                SYMPTOMS.join(", ")
            )));
        }
        if let Some((i, dup)) = symptoms
            .iter()
            .enumerate()
            .find(|(i, s)| symptoms[..*i].contains(s))
        {
            return Err(ActionError::Invalid(format!(
                "symptoms[{i}]: {dup:?} is listed twice; give each symptom once"
            )));
        }
        if symptoms.is_empty() && temp_c.is_none() {
            return Err(ActionError::Invalid(
                "give symptoms, a temperature, or both".to_owned(),
            ));
        }
        if let Some(t) = temp_c
            && !health::PLAUSIBLE_C.contains(&t)
        {
            return Err(ActionError::Invalid(format!(
                "temp_c {t} is outside 30-45 °C; measure again"
            )));
        }
        let r = self.store.student_name(student_id.clone()).await;
        if self.stored("reading a student", r)?.is_none() {
            return Err(ActionError::NotFound(format!("student {student_id:?}")));
        }
        let now = self.clock.now();
        let window = health::window_of(
            now.time(),
            self.school.morning_check,
            self.school.noon_check,
            self.school.evening_check,
        );
        let fever = temp_c.is_some_and(|t| t >= self.school.fever_threshold_c)
            || symptoms.iter().any(|s| s == "fever");
        let rec = HealthCheckRecord {
            symptoms: symptoms.clone(),
            student_id: student_id.clone(),
            window,
            temp_c,
            fever,
            at: now.fixed_offset(),
            clock_synced: self.clock.synced(),
        };
        let body = HealthCheckBody {
            student_id: student_id.clone(),
            window,
            temp_c: temp_c.map(|t| (t * 10.0).round() / 10.0),
            fever,
            threshold_c: self.school.fever_threshold_c,
            symptoms: Some(symptoms.clone()),
            source: Some("manual".to_owned()),
            recorded_by: Some(actor.id.clone()),
        };
        let out = OutboxRecord::new(&body, now.fixed_offset(), self.clock.synced());
        let audit = self.audit(
            actor,
            "health.symptoms",
            &student_id,
            &AuditDetail::Symptoms { window },
        );
        let r = self.store.record_health_check(rec, out, Some(audit)).await;
        let seq = self.stored("recording symptoms", r)?;
        crate::classroom::bump(&self.counters.health_checks);
        if fever {
            self.fever_followup(&student_id, now.date_naive()).await;
        }
        tracing::info!(
            window = window.as_str(),
            fever,
            seq,
            "Symptoms recorded by the teacher."
        );
        Ok(Reply::Symptoms {
            student_id,
            window,
            fever,
        })
    }
}
