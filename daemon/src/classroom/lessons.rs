//! Lessons: the teacher's start, end and cancel, and a lesson's end for good (marks for
//! the unmarked, the report, the behaviour aggregates).

use std::collections::HashMap;

use ketang_sync::{AttendanceStatus, LessonEnd, LessonReport, LessonRow, OutboxRecord};
use ketang_web::Actor;

use crate::engine::lesson::LessonAction;
use crate::engine::timetable::{LessonState, Slot};
use crate::engine::{finalise, lesson};

use super::ActionError;
use super::Classroom;
use super::Reply;
use super::actions::AuditDetail;

/// How far back a teacher may correct attendance.
pub(super) const CORRECTION_DAYS: u64 = 7;

/// The stored form of a lesson slot.
pub(crate) fn lesson_row(slot: &Slot, state: LessonState) -> LessonRow {
    LessonRow {
        id: slot.id(),
        date: slot.date,
        period: slot.period.period,
        subject: slot.period.subject.clone(),
        teacher: slot.period.teacher.clone(),
        roster_id: slot.period.roster_id.clone(),
        starts_at: slot.starts_at.fixed_offset(),
        ends_at: slot.ends_at.fixed_offset(),
        state,
    }
}

/// Days of lessons finalised after the board was off or its clock jumped (the lesson
/// controls in memory reach this far back).
pub(super) const CATCH_UP_DAYS: i64 = 7;

impl Classroom {
    /// Finalises the lessons that have ended or were cancelled (and, unless the teacher
    /// acted on them, ended after `since`): today's, and those of the days since the
    /// engine last ran, up to [`CATCH_UP_DAYS`] back (schools cut the power at night: the
    /// afternoon's last lessons end while the board is off). A longer gap is a holiday or a
    /// wrong clock, and only today is looked at. Each day's lessons come from the calendar
    /// that governed that day. Whether anything was finalised.
    pub(super) async fn finalise_due(&mut self) -> bool {
        let now = self.clock.now();
        let today = now.date_naive();
        let last = match self.last_day {
            Some(d) => d,
            None => {
                let d = match self.store.meta_get("engine.last_day".into()).await {
                    Ok(v) => v.and_then(|v| chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d").ok()),
                    Err(e) => {
                        self.store_health
                            .failed("reading the engine's last day", &e);
                        return false;
                    }
                };
                self.last_day = Some(d);
                d
            }
        };
        let first = last
            .filter(|d| *d < today && (today - *d).num_days() <= CATCH_UP_DAYS)
            .unwrap_or(today);
        let due: Vec<Slot> = {
            let tt = self.tt();
            first
                .iter_days()
                .take_while(|d| *d <= today)
                .flat_map(|d| tt.slots_on(d, now.timezone()))
                .filter(|slot| {
                    let c = tt.controls.get(&slot.id());
                    let acted = c.is_some_and(|c| c.cancelled || c.ended_at.is_some());
                    !c.is_some_and(|c| c.finalised)
                        && matches!(
                            tt.state(slot, now, self.school.checkin_opens),
                            LessonState::Ended | LessonState::Cancelled
                        )
                        && (acted || slot.ends_at.fixed_offset() > self.since)
                })
                .collect()
        };
        let any = !due.is_empty();
        for slot in due {
            if let Err(e) = self.finalise(&slot).await {
                self.store_health.failed("finalising a lesson", &e);
                return true;
            }
        }
        if last != Some(today) {
            match self
                .store
                .meta_set("engine.last_day".into(), today.to_string())
                .await
            {
                Ok(()) => self.last_day = Some(Some(today)),
                Err(e) => self.store_health.failed("recording the engine's day", &e),
            }
        }
        any
    }

    /// The report of `slot` from its roll (after `marks`) and the day's health checks.
    pub(crate) async fn make_report(
        &self,
        slot: &Slot,
        roll: &[(String, Option<AttendanceStatus>)],
        marks: &[ketang_sync::Mark],
        revision: u32,
    ) -> Result<LessonReport, ketang_sync::Error> {
        let health = self
            .store
            .day_health(slot.date, slot.period.roster_id.clone())
            .await?;
        let control = self
            .tt()
            .controls
            .get(&slot.id())
            .cloned()
            .unwrap_or_default();
        let mut report = finalise::report(slot, roll, marks, &health, &control, revision);
        if self.whiteboard.is_some() {
            // The lesson as it ran: from the teacher's early start, to the early end.
            let from = control.started_at.unwrap_or(slot.starts_at.fixed_offset());
            let to = control.ended_at.unwrap_or(slot.ends_at.fixed_offset());
            let changes = self.store.whiteboard_power(from, to).await?;
            let on = crate::engine::usage::on_seconds(&changes, from, to);
            report.whiteboard_on_s = Some(u64::try_from(on).unwrap_or(0));
        }
        if let Some(obs) = self.observed_in(&slot.id()) {
            let from = control.started_at.unwrap_or(slot.starts_at.fixed_offset());
            let to = control.ended_at.unwrap_or(slot.ends_at.fixed_offset());
            obs.fill_report(&mut report, roll, from, to);
        }
        Ok(report)
    }

    /// Ends a lesson for good: unmarked students become absent (or leave), and the report is
    /// made. A cancelled lesson marks nobody.
    pub(crate) async fn finalise(&mut self, slot: &Slot) -> Result<(), ketang_sync::Error> {
        let id = slot.id();
        let cancelled = self.tt().controls.get(&id).is_some_and(|c| c.cancelled);
        if self.store.lesson_finalised(id.clone()).await? {
            self.mark_finalised(&id);
            return Ok(());
        }
        let roll = self
            .store
            .lesson_roll(id.clone(), slot.period.roster_id.clone())
            .await?;
        let mut on_leave = HashMap::new();
        for (student, status) in &roll {
            if status.is_none()
                && let Some(kind) = self
                    .store
                    .on_leave(student.clone(), slot.starts_at.fixed_offset())
                    .await?
            {
                on_leave.insert(student.clone(), kind);
            }
        }
        let marks = if cancelled {
            Vec::new()
        } else {
            finalise::marks(&roll, &on_leave)
        };
        let report = self.make_report(slot, &roll, &marks, 1).await?;
        let absent = marks
            .iter()
            .filter(|m| m.status == AttendanceStatus::Absent)
            .count();
        let state = if cancelled {
            LessonState::Cancelled
        } else {
            LessonState::Ended
        };
        // The class's behaviour aggregates also go on their own stream (docs/mqtt.md):
        // class-level only, never a student.
        let behaviour = self.observed_in(&id).and_then(|o| o.behaviour_body(slot));
        // How it went over its course: kept for the board's report, never synced.
        let timeline = self.observed_in(&id).and_then(|o| {
            let control = self.tt().controls.get(&id).cloned().unwrap_or_default();
            o.timeline(
                control.started_at.unwrap_or(slot.starts_at.fixed_offset()),
                control.ended_at.unwrap_or(slot.ends_at.fixed_offset()),
            )
        });
        let seq = self
            .store
            .finalise_lesson(LessonEnd {
                lesson: lesson_row(slot, state),
                marks,
                report,
                behaviour,
                timeline,
                at: self.clock.now_fixed(),
                clock_synced: self.clock.synced(),
            })
            .await?;
        self.store_health.ok();
        self.mark_finalised(&id);
        tracing::info!(lesson = %id, state = state.as_str(), absent, leave = on_leave.len(), report_seq = ?seq, "Lesson finalised.");
        Ok(())
    }

    pub(super) fn mark_finalised(&self, id: &str) {
        self.tt_mut()
            .controls
            .entry(id.to_owned())
            .or_default()
            .finalised = true;
    }

    pub(super) fn lesson(&self, lesson_id: &str) -> Result<Slot, ActionError> {
        self.tt()
            .slot(lesson_id, self.clock.timezone())
            .ok_or_else(|| {
                ActionError::NotFound(format!(
                    "lesson {lesson_id:?} (ids are YYYY-MM-DD/P for a period in the timetable)"
                ))
            })
    }

    pub(super) async fn lesson_action(
        &mut self,
        actor: &Actor,
        lesson_id: &str,
        action: LessonAction,
        reason: Option<String>,
    ) -> Result<Reply, ActionError> {
        let slot = self.lesson(lesson_id)?;
        let now = self.clock.now();
        let opens = self.school.checkin_opens;
        let (control, other_in_progress) = {
            let tt = self.tt();
            let control = tt.controls.get(lesson_id).cloned().unwrap_or_default();
            let other = tt
                .slots_on(now.date_naive(), now.timezone())
                .into_iter()
                .find(|s| {
                    s.id() != lesson_id && tt.state(s, now, opens) == LessonState::InProgress
                });
            (control, other)
        };
        if action == LessonAction::Start
            && let Some(o) = other_in_progress
        {
            return Err(ActionError::Conflict(format!(
                "period {} is still in progress; end it first",
                o.period.period
            )));
        }
        let next =
            lesson::apply(action, &slot, &control, now, opens).map_err(ActionError::Conflict)?;
        let state = lesson::state(&slot, Some(&next), now, opens);
        let row = lesson_row(&slot, state);
        let mut body = row.event(action.event(), &actor.id);
        body.reason.clone_from(&reason);
        let audit = self.audit(
            actor,
            &format!("lesson.{}", action.as_str()),
            lesson_id,
            &AuditDetail::Lesson {
                reason: reason.as_deref(),
            },
        );
        let out = OutboxRecord::new(&body, now.fixed_offset(), self.clock.synced());
        let r = self
            .store
            .control_lesson(row, next.clone(), audit, out)
            .await;
        let seq = self.stored("storing a lesson action", r)?;
        self.tt_mut().controls.insert(lesson_id.to_owned(), next);
        tracing::info!(lesson = %lesson_id, action = action.as_str(), seq, "Lesson action recorded.");
        if matches!(state, LessonState::Ended | LessonState::Cancelled) {
            // Finalised at once, so the report is there when the teacher looks.
            let r = self.finalise(&slot).await;
            self.stored("finalising a lesson", r)?;
        }
        Ok(Reply::Lesson {
            lesson_id: lesson_id.to_owned(),
            state,
        })
    }

    pub(super) fn current_lesson_id(&self) -> Option<String> {
        let now = self.clock.now();
        self.tt()
            .current(now, self.school.checkin_opens)
            .map(|s| s.id())
    }
}
