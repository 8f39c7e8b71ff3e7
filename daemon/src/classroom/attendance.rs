//! Attendance: a card tap, a recognised face and a teacher's correction, and leave.

use chrono::TimeDelta;
use ketang_sync::{
    AttendanceSource, AttendanceStatus, CardTap, CardTapResult, CheckIn, CheckInOutcome, LeaveRow,
    LessonRow, OutboxRecord, StudentTap,
};
use ketang_web::{Actor, BoardEvent, TapOutcome};

use crate::engine::timetable::{LessonState, Slot};

use super::ActionError;
use super::Reply;
use super::actions::AuditDetail;
use super::actions::{parse_time_or_day, text};
use super::lessons::{CORRECTION_DAYS, lesson_row};
use super::{Classroom, bump};

impl Classroom {
    /// A check-in of `student_id` recognised by the camera in `slot` at `now`: the status
    /// from the timetable and the outbox record, ready for the store.
    fn face_check_in(
        &self,
        slot: &Slot,
        now: chrono::DateTime<chrono_tz::Tz>,
        student_id: String,
        confidence: f64,
    ) -> (CheckIn, AttendanceStatus) {
        let (lesson, status) = self.check_in_now(slot, now);
        let mut body = lesson.attendance(&student_id, status, AttendanceSource::Face);
        body.reader = Some("camera".to_owned());
        body.confidence = Some(confidence);
        let outbox = OutboxRecord::new(&body, now.fixed_offset(), self.clock.synced());
        let check_in = CheckIn {
            lesson,
            student_id,
            status,
            source: AttendanceSource::Face,
            recorded_by: None,
            tap: None,
            outbox,
        };
        (check_in, status)
    }

    /// The lesson as stored now and the status a check-in in it gets now (the engine's rule).
    fn check_in_now(
        &self,
        slot: &Slot,
        now: chrono::DateTime<chrono_tz::Tz>,
    ) -> (LessonRow, AttendanceStatus) {
        let status = slot.check_in_status(now, self.school.late_after);
        let lesson = lesson_row(slot, self.tt().state(slot, now, self.school.checkin_opens));
        (lesson, status)
    }

    /// The board's answer to a check-in, the same for a card and a face: the live event,
    /// the counter, the log line. A face seen again is not announced again.
    fn announce_check_in(
        &mut self,
        source: AttendanceSource,
        outcome: CheckInOutcome,
        status: AttendanceStatus,
        name: &str,
        lesson_id: &str,
    ) {
        match outcome {
            CheckInOutcome::Recorded { seq } => {
                bump(&self.counters.check_ins);
                self.emit(BoardEvent::Tap {
                    outcome: TapOutcome::CheckedIn,
                    status: Some(status),
                    face: source == AttendanceSource::Face,
                    name: Some(name.to_owned()),
                });
                tracing::info!(lesson = %lesson_id, source = source.as_str(), status = status.as_str(), seq, "Check-in recorded.");
            }
            CheckInOutcome::AlreadyRecorded { status } => {
                if source == AttendanceSource::Card {
                    self.emit(BoardEvent::Tap {
                        outcome: TapOutcome::Repeat,
                        status: Some(status),
                        face: false,
                        name: Some(name.to_owned()),
                    });
                }
                tracing::debug!(lesson = %lesson_id, source = source.as_str(), "Repeated check-in; the first one stands.");
            }
        }
    }

    /// A card tapped on `reader`: decided by the store in one call (whose card, on the
    /// roster?, the check-in with its record), then answered on the board.
    pub(super) async fn card_tap(&mut self, reader: String, uid: String) {
        bump(&self.counters.card_taps);
        let now = self.clock.now();
        let slot = self.current_slot();
        let lesson = slot.as_ref().map(|s| self.check_in_now(s, now));
        let status = lesson.as_ref().map(|(_, s)| *s);
        let tap = CardTap {
            reader: reader.clone(),
            uid,
            at: now.fixed_offset(),
            clock_synced: self.clock.synced(),
            lesson,
        };
        let result = match self.store.card_tap(tap).await {
            Ok(r) => {
                self.store_health.ok();
                r
            }
            Err(e) => return self.store_health.failed("recording a card tap", &e),
        };
        let (student_id, name, outcome) = match result {
            CardTapResult::Unknown => {
                bump(&self.counters.unknown_cards);
                self.emit(BoardEvent::Tap {
                    outcome: TapOutcome::UnknownCard,
                    status: None,
                    face: false,
                    name: None,
                });
                tracing::info!(%reader, "Unknown card tapped; kept in the local tap log.");
                return;
            }
            CardTapResult::Staff(staff) => {
                self.emit(BoardEvent::StaffCard {
                    name: staff.name.clone(),
                });
                self.offer_unlock(staff);
                tracing::info!(%reader, "Staff card tapped; teacher mode offered to the board's screen.");
                return;
            }
            CardTapResult::Student {
                student_id,
                name,
                outcome,
            } => (student_id, name, outcome),
        };
        match (outcome, slot, status) {
            (StudentTap::CheckedIn(o), Some(slot), Some(status)) => {
                self.announce_check_in(AttendanceSource::Card, o, status, &name, &slot.id());
            }
            (StudentTap::NotOnRoster, Some(slot), _) => {
                self.emit(BoardEvent::Tap {
                    outcome: TapOutcome::NotOnRoster,
                    status: None,
                    face: false,
                    name: Some(name),
                });
                tracing::info!(%reader, lesson = %slot.id(), "Card of a student not on this lesson's roster.");
            }
            _ => {
                self.emit(BoardEvent::Tap {
                    outcome: TapOutcome::NoLesson,
                    status: None,
                    face: false,
                    name: Some(name),
                });
                tracing::debug!(%reader, "Card tapped with no lesson open for check-in.");
            }
        }
        // The tap's half of a health check (docs/domain.md, "Health checks").
        let outcome = self.pairing.on_tap(&student_id, now);
        self.paired(outcome).await;
    }

    /// A student recognised by the camera: a check-in with source `face`.
    pub(crate) async fn face_match(&mut self, student_id: String, similarity: f32) {
        let now = self.clock.now();
        let Some(slot) = self.current_slot() else {
            tracing::debug!("A face was recognised with no lesson open for check-in.");
            return;
        };
        let confidence = (f64::from(similarity) * 1000.0).round() / 1000.0;
        let (check_in, status) = self.face_check_in(&slot, now, student_id, confidence);
        // One store call: on the roster?, the name, the check-in with its record.
        match self.store.roster_check_in(check_in).await {
            Ok(Some((name, outcome))) => {
                self.store_health.ok();
                self.announce_check_in(AttendanceSource::Face, outcome, status, &name, &slot.id());
            }
            Ok(None) => {
                self.store_health.ok();
                tracing::debug!(lesson = %slot.id(), "A recognised student is not on this lesson's roster.");
            }
            Err(e) => self.store_health.failed("recording a face check-in", &e),
        }
    }

    pub(super) async fn set_attendance(
        &mut self,
        actor: &Actor,
        lesson_id: &str,
        student_id: String,
        status: AttendanceStatus,
    ) -> Result<Reply, ActionError> {
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
        let row = lesson_row(&slot, state);
        let mut body = row.attendance(&student_id, status, AttendanceSource::Manual);
        body.recorded_by = Some(actor.id.clone());
        body.previous = Some(previous);
        let audit = self.audit(
            actor,
            "attendance.override",
            lesson_id,
            &AuditDetail::Attendance {
                student_id: &student_id,
                status,
                previous,
            },
        );
        let out = OutboxRecord::new(&body, now.fixed_offset(), self.clock.synced());
        let r = self
            .store
            .override_attendance(row, student_id.clone(), status, audit, out, report)
            .await;
        let (_, seq) = self.stored("recording an override", r)?;
        tracing::info!(lesson = %lesson_id, status = status.as_str(), seq, "Attendance set by the teacher.");
        Ok(Reply::Attendance {
            lesson_id: lesson_id.to_owned(),
            student_id,
            status,
            previous,
            report_revised: finalised,
        })
    }

    /// Leave entered by the teacher: from `range.0` (default now; not before today) until
    /// `range.1` (in the future, at most 30 days after the start), of `kind`.
    pub(super) async fn enter_leave(
        &mut self,
        actor: &Actor,
        student_id: String,
        range: (Option<&str>, &str),
        kind: Option<&str>,
        reason: Option<String>,
    ) -> Result<Reply, ActionError> {
        let tz = self.school.timezone;
        let until = parse_time_or_day("until", range.1, tz, true)?;
        let now = self.clock.now_fixed();
        let from = match range.0 {
            None => now,
            Some(f) => parse_time_or_day("from", f, tz, false)?,
        };
        let today = self.clock.now().date_naive();
        if from.with_timezone(&self.school.timezone).date_naive() < today {
            return Err(ActionError::Invalid(
                "from is before today: leave is entered for today or later".to_owned(),
            ));
        }
        if until <= now || until <= from {
            return Err(ActionError::Invalid(
                "until is not in the future, or not after from".to_owned(),
            ));
        }
        if until > from + TimeDelta::days(30) {
            return Err(ActionError::Invalid(
                "leave longer than 30 days is approved in the cloud".to_owned(),
            ));
        }
        let kind = match kind {
            None | Some("other") => ketang_sync::LeaveKind::Other,
            Some("sick") => ketang_sync::LeaveKind::Sick,
            Some("personal") => ketang_sync::LeaveKind::Personal,
            Some(k) => {
                return Err(ActionError::Invalid(format!(
                    "kind {} is not sick, personal or other",
                    ketang_sync::limits::excerpt(k)
                )));
            }
        };
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
            &AuditDetail::Leave {
                leave_id: &id,
                until: until.to_rfc3339(),
            },
        );
        let leave = LeaveRow {
            id: id.clone(),
            student_id,
            starts_at: from,
            ends_at: until,
            reason,
            kind,
        };
        let r = self.store.enter_leave(leave, audit).await;
        self.stored("entering leave", r)?;
        Ok(Reply::Leave { leave_id: id })
    }
}
