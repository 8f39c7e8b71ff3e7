//! Attendance: a card tap, a recognised face and a teacher's correction, and leave.

use chrono::TimeDelta;
use ketang_sync::{
    AttendanceSource, AttendanceStatus, CardTapOutcome, CheckIn, CheckInOutcome, LeaveRow,
    OutboxRecord, Stream, TapRecord,
};
use ketang_web::Actor;
use serde_json::{Value, json};

use crate::engine::timetable::{LessonState, Slot};

use super::ActionError;
use super::actions::{parse_time, text};
use super::lessons::{CORRECTION_DAYS, lesson_row};
use super::{Classroom, bump};

impl Classroom {
    /// A check-in of `student_id` by a sensor (`source` card or face) in `slot` at `now`:
    /// the status from the timetable, the uplink body (with `extra` fields such as the
    /// reader), and the outbox record, ready for the store.
    pub(crate) fn sensor_check_in(
        &self,
        slot: &Slot,
        now: chrono::DateTime<chrono_tz::Tz>,
        student_id: String,
        source: AttendanceSource,
        extra: serde_json::Value,
        tap: Option<TapRecord>,
    ) -> (CheckIn, AttendanceStatus) {
        let status = slot.check_in_status(now, self.school.late_after);
        let lesson = lesson_row(
            slot,
            self.tt()
                .state(slot, now, self.school.checkin_opens)
                .as_str(),
        );
        let mut body = json!({
            "lesson_id": lesson.id,
            "date": lesson.date,
            "period": lesson.period,
            "subject": lesson.subject,
            "roster_id": lesson.roster_id,
            "student_id": student_id,
            "status": status,
            "source": source,
        });
        if let (Some(b), Some(x)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(x.clone());
        }
        let check_in = CheckIn {
            lesson,
            student_id,
            status,
            source,
            recorded_by: None,
            tap,
            outbox: OutboxRecord {
                stream: Stream::Attendance,
                captured_at: now.fixed_offset(),
                clock_synced: self.clock.synced(),
                body,
            },
        };
        (check_in, status)
    }

    pub(super) async fn card_tap(&mut self, reader: String, uid: String) {
        bump(&self.counters.card_taps);
        let now = self.clock.now();
        let at = now.fixed_offset();
        let synced = self.clock.synced();
        let owner = match self.store.card_owner(uid.clone()).await {
            Ok(o) => o,
            Err(e) => return self.store_health.failed("looking up a card", &e),
        };
        let mut tap = TapRecord {
            reader: reader.clone(),
            uid,
            student_id: None,
            lesson_id: None,
            outcome: CardTapOutcome::UnknownCard,
            at,
            clock_synced: synced,
        };
        let Some((student_id, name)) = owner else {
            match self.store.staff_by_card(tap.uid.clone()).await {
                Ok(Some(staff)) => {
                    tap.outcome = CardTapOutcome::Staff;
                    self.emit("staff_card", json!({}), json!({"name": staff.name}));
                    self.offer_unlock(staff);
                    tracing::info!(%reader, "Staff card tapped; teacher mode offered to the board's screen.");
                    return self.store_tap(tap).await;
                }
                Ok(None) => {}
                Err(e) => return self.store_health.failed("looking up a staff card", &e),
            }
            bump(&self.counters.unknown_cards);
            self.emit("tap", json!({"outcome": "unknown_card"}), json!({}));
            tracing::info!(%reader, "Unknown card tapped; kept in the local tap log.");
            return self.store_tap(tap).await;
        };
        tap.student_id = Some(student_id.clone());
        if let Some(p) = self.pairing.on_tap(&student_id, now) {
            self.health_check(p).await;
        }
        let Some(slot) = self.current_slot() else {
            tap.outcome = CardTapOutcome::NoLesson;
            self.emit(
                "tap",
                json!({"outcome": "no_lesson"}),
                json!({"name": name}),
            );
            tracing::debug!(%reader, "Card tapped with no lesson open for check-in.");
            return self.store_tap(tap).await;
        };
        tap.lesson_id = Some(slot.id());
        match self
            .store
            .on_roster(slot.period.roster_id.clone(), student_id.clone())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tap.outcome = CardTapOutcome::NotOnRoster;
                self.emit(
                    "tap",
                    json!({"outcome": "not_on_roster"}),
                    json!({"name": name}),
                );
                tracing::info!(%reader, lesson = %slot.id(), "Card of a student not on this lesson's roster.");
                return self.store_tap(tap).await;
            }
            Err(e) => return self.store_health.failed("checking a roster", &e),
        }
        tap.outcome = CardTapOutcome::CheckedIn;
        let (check_in, status) = self.sensor_check_in(
            &slot,
            now,
            student_id,
            AttendanceSource::Card,
            json!({"reader": reader}),
            Some(tap),
        );
        match self.store.check_in(check_in).await {
            Ok(CheckInOutcome::Recorded { seq }) => {
                self.store_health.ok();
                self.emit(
                    "tap",
                    json!({"outcome": "checked_in", "status": status}),
                    json!({"name": name}),
                );
                bump(&self.counters.check_ins);
                tracing::info!(%reader, lesson = %slot.id(), status = status.as_str(), seq, "Check-in recorded.");
            }
            Ok(CheckInOutcome::AlreadyRecorded { status }) => {
                self.emit(
                    "tap",
                    json!({"outcome": "repeat", "status": status}),
                    json!({"name": name}),
                );
                tracing::debug!(%reader, lesson = %slot.id(), "Repeated tap; the first check-in stands.");
            }
            Err(e) => self.store_health.failed("recording a check-in", &e),
        }
    }

    pub(super) async fn store_tap(&self, tap: TapRecord) {
        match self.store.record_tap(tap).await {
            Ok(()) => self.store_health.ok(),
            Err(e) => self.store_health.failed("logging a card tap", &e),
        }
    }

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

    pub(super) async fn set_attendance(
        &mut self,
        actor: &Actor,
        lesson_id: &str,
        student_id: String,
        status: &str,
    ) -> Result<Value, ActionError> {
        let status = AttendanceStatus::parse(status).ok_or_else(|| {
            ActionError::Invalid(format!(
                "status {status:?} is not one of present, late, absent, leave, sick"
            ))
        })?;
        let slot = self.lesson(lesson_id)?;
        let now = self.clock.now();
        if slot.date > now.date_naive() {
            return Err(ActionError::Conflict(
                "the lesson is on a later day; enter leave instead".to_owned(),
            ));
        }
        if slot.date + chrono::Days::new(CORRECTION_DAYS) < now.date_naive() {
            return Err(ActionError::Conflict(format!(
                "lessons older than {CORRECTION_DAYS} days are corrected in the cloud"
            )));
        }
        let (state, finalised) = {
            let tt = self.tt();
            let finalised = tt.controls.get(lesson_id).is_some_and(|c| c.finalised);
            (tt.state(&slot, now, self.school.checkin_opens), finalised)
        };
        if state == LessonState::Cancelled {
            return Err(ActionError::Conflict("the lesson was cancelled".to_owned()));
        }
        let r = self
            .store
            .lesson_roll(lesson_id.to_owned(), slot.period.roster_id.clone())
            .await;
        let mut roll = self.stored("reading a lesson's roll", r)?;
        let Some(entry) = roll.iter_mut().find(|(s, _)| *s == student_id) else {
            return Err(ActionError::NotFound(format!(
                "student {student_id:?} on this lesson's roster"
            )));
        };
        let previous = entry.1.replace(status);
        let report = if finalised {
            let r = self.store.report_revision(lesson_id.to_owned()).await;
            let revision = self.stored("reading a report", r)? + 1;
            let r = self.make_report(&slot, &roll, &[], revision).await;
            Some(self.stored("making a report", r)?)
        } else {
            None
        };
        let row = lesson_row(&slot, state.as_str());
        let body = json!({
            "lesson_id": row.id, "date": row.date, "period": row.period,
            "subject": row.subject, "roster_id": row.roster_id,
            "student_id": student_id, "status": status, "source": "manual",
            "recorded_by": actor.id, "previous": previous,
        });
        let audit = self.audit(
            actor,
            "attendance.override",
            lesson_id,
            json!({"student_id": student_id, "status": status, "previous": previous}),
        );
        let out = OutboxRecord {
            stream: Stream::Attendance,
            captured_at: now.fixed_offset(),
            clock_synced: self.clock.synced(),
            body,
        };
        let r = self
            .store
            .override_attendance(row, student_id.clone(), status, audit, out, report)
            .await;
        let (_, seq) = self.stored("recording an override", r)?;
        tracing::info!(lesson = %lesson_id, status = status.as_str(), seq, "Attendance set by the teacher.");
        Ok(json!({
            "lesson_id": lesson_id, "student_id": student_id, "status": status,
            "previous": previous, "report_revised": finalised,
        }))
    }

    pub(super) async fn enter_leave(
        &mut self,
        actor: &Actor,
        student_id: String,
        until: &str,
        reason: Option<String>,
    ) -> Result<Value, ActionError> {
        let until = parse_time("until", until)?;
        let now = self.clock.now_fixed();
        if until <= now {
            return Err(ActionError::Invalid(
                "until is not in the future".to_owned(),
            ));
        }
        if until > now + TimeDelta::days(30) {
            return Err(ActionError::Invalid(
                "leave longer than 30 days is approved in the cloud".to_owned(),
            ));
        }
        let reason = reason.map(|r| text("reason", &r, 200)).transpose()?;
        let r = self.store.student_name(student_id.clone()).await;
        if self.stored("reading a student", r)?.is_none() {
            return Err(ActionError::NotFound(format!("student {student_id:?}")));
        }
        let id = format!("local-{}", uuid::Uuid::new_v4());
        let audit = self.audit(
            actor,
            "leave.enter",
            &student_id,
            json!({"leave_id": id, "until": until.to_rfc3339()}),
        );
        let leave = LeaveRow {
            id: id.clone(),
            student_id,
            starts_at: now,
            ends_at: until,
            reason,
        };
        let r = self.store.enter_leave(leave, audit).await;
        self.stored("entering leave", r)?;
        Ok(json!({"leave_id": id}))
    }
}
