//! Teacher (and technician) actions, done by the classroom actor in order with hardware
//! events: lesson control, attendance overrides, follow-up resolution, alarms, local
//! notices, leave and symptoms. Every action is checked here (the HTTP layer checked the
//! role), stored with its audit row, and answered with what happened.

use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, TimeDelta, TimeZone as _};
use ketang_sync::{
    AttendanceStatus, Audit, HealthCheckRecord, LeaveRow, NoticeRow, OutboxRecord, StaffLogin,
    Stream,
};
use ketang_web::{Action, Actor, ApiError, Role};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::classroom::{Classroom, lesson_row};
use crate::config::DeviceKind;
use crate::engine::health;
use crate::engine::lesson::{self, LessonAction};
use crate::engine::timetable::{LessonState, Slot};

/// How long a tapped staff card stays claimable by the board's screen.
pub(crate) const UNLOCK_CLAIM: Duration = Duration::from_secs(10);

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

/// How far back a teacher may correct attendance.
const CORRECTION_DAYS: u64 = 7;

/// An action for the classroom actor, with where to send the answer.
#[derive(Debug)]
pub(crate) struct Cmd {
    pub(crate) actor: Actor,
    pub(crate) action: Action,
    pub(crate) reply: oneshot::Sender<Result<Value, ApiError>>,
}

/// Hands `action` to the classroom actor and waits for its answer.
///
/// # Errors
/// The action's own error, or [`ApiError::Unavailable`] when the daemon is shutting down.
pub(crate) async fn send(
    commands: &tokio::sync::mpsc::Sender<Cmd>,
    actor: Actor,
    action: Action,
) -> Result<Value, ApiError> {
    let gone = || ApiError::Unavailable("the device is shutting down".to_owned());
    let (reply, rx) = oneshot::channel();
    commands
        .send(Cmd {
            actor,
            action,
            reply,
        })
        .await
        .map_err(|_| gone())?;
    rx.await.map_err(|_| gone())?
}

/// A staff card tapped on the board.
#[derive(Debug, Clone)]
pub(crate) struct PendingUnlock {
    pub(crate) actor: Actor,
    pub(crate) at: Instant,
}

fn internal(e: &ketang_sync::Error) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn parse_time(field: &str, s: &str) -> Result<DateTime<FixedOffset>, ApiError> {
    DateTime::parse_from_rfc3339(s).map_err(|e| {
        ApiError::BadRequest(format!(
            "{field}: {s:?} is not an RFC 3339 time (e.g. 2026-11-23T17:00:00+08:00): {e}"
        ))
    })
}

fn text(field: &str, s: &str, max: usize) -> Result<String, ApiError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(ApiError::BadRequest(format!("{field} is empty")));
    }
    if t.chars().count() > max {
        return Err(ApiError::BadRequest(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(t.to_owned())
}

impl Classroom {
    pub(crate) async fn command(&mut self, cmd: Cmd) {
        let name = cmd.action.name();
        let result = self.act(cmd.actor, cmd.action).await;
        if let Err(e) = &result {
            tracing::info!(action = name, error = %e, "Action refused or failed.");
        }
        self.emit("changed", json!({}), json!({}));
        let _ = cmd.reply.send(result);
    }

    pub(crate) fn offer_unlock(&self, staff: StaffLogin) {
        let actor = Actor {
            id: staff.id,
            name: staff.name,
            role: Role::Teacher,
        };
        *self
            .unlock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(PendingUnlock {
            actor,
            at: Instant::now(),
        });
    }

    pub(crate) fn audit(&self, actor: &Actor, action: &str, target: &str, detail: Value) -> Audit {
        Audit {
            actor: actor.id.clone(),
            role: actor.role.as_str().to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail,
            at: self.clock.now_fixed(),
            clock_synced: self.clock.synced(),
        }
    }

    pub(crate) fn stored<T>(
        &self,
        what: &str,
        r: Result<T, ketang_sync::Error>,
    ) -> Result<T, ApiError> {
        match r {
            Ok(v) => {
                self.store_health.ok();
                Ok(v)
            }
            Err(e) => {
                self.store_health.failed(what, &e);
                Err(internal(&e))
            }
        }
    }

    async fn act(&mut self, actor: Actor, action: Action) -> Result<Value, ApiError> {
        match action {
            Action::StartLesson { lesson_id } => {
                self.lesson_action(&actor, &lesson_id, LessonAction::Start, None)
                    .await
            }
            Action::EndLesson { lesson_id } => {
                self.lesson_action(&actor, &lesson_id, LessonAction::End, None)
                    .await
            }
            Action::CancelLesson { lesson_id, reason } => {
                let reason = reason.map(|r| text("reason", &r, 200)).transpose()?;
                self.lesson_action(&actor, &lesson_id, LessonAction::Cancel, reason)
                    .await
            }
            Action::SetAttendance {
                lesson_id,
                student_id,
                status,
            } => {
                self.set_attendance(&actor, &lesson_id, student_id, &status)
                    .await
            }
            Action::ResolveFollowup {
                followup_id,
                resolution,
                contacted_guardian,
            } => {
                self.resolve_followup(&actor, followup_id, &resolution, contacted_guardian)
                    .await
            }
            Action::RaiseAlarm { drill } => {
                let source = if drill { "ui-drill" } else { "ui" };
                let by = (actor.role != Role::Kiosk).then_some(&actor);
                self.raise_alarm(source.to_owned(), drill, by).await
            }
            Action::ClearAlarm { alarm_id } => self.clear_alarm(&actor, alarm_id).await,
            Action::PostNotice {
                title,
                body,
                priority,
                valid_from,
                valid_until,
            } => {
                self.post_notice(&actor, &title, &body, priority, valid_from, valid_until)
                    .await
            }
            Action::WithdrawNotice { notice_id } => {
                let audit = self.audit(&actor, "notice.withdraw", &notice_id, json!({}));
                let r = self.store.withdraw_notice(notice_id.clone(), audit).await;
                if self.stored("withdrawing a notice", r)? {
                    Ok(json!({"notice_id": notice_id, "withdrawn": true}))
                } else {
                    Err(ApiError::NotFound(format!(
                        "local notice {notice_id:?} (cloud notices are withdrawn by the cloud)"
                    )))
                }
            }
            Action::EnterLeave {
                student_id,
                until,
                reason,
            } => self.enter_leave(&actor, student_id, &until, reason).await,
            Action::Whiteboard { power, input } => {
                let input = input
                    .map(|i| {
                        ketang_drivers::panel::Input::from_name(&i).ok_or_else(|| {
                            ApiError::BadRequest(format!(
                                "input {i:?} is not one of hdmi1, hdmi2, dp, vga, ops"
                            ))
                        })
                    })
                    .transpose()?;
                if power.is_none() && input.is_none() {
                    return Err(ApiError::BadRequest(
                        "give power, input, or both".to_owned(),
                    ));
                }
                // Design: remote commands arrive as the actor "cloud" (see uplink.rs).
                let source = if actor.id == "cloud" {
                    "cloud"
                } else {
                    "teacher"
                };
                self.whiteboard(power, input, source, Some(&actor)).await
            }
            Action::SelfTest { device } => self.self_test(&actor, &device).await,
            Action::FaceConsent {
                student_id,
                granted,
                granted_at,
            } => {
                self.face_consent(&actor, student_id, granted, granted_at)
                    .await
            }
            Action::FaceEnrol {
                student_id,
                image_base64,
            } => self.face_enrol(&actor, student_id, &image_base64).await,
            Action::RecordSymptoms {
                student_id,
                symptoms,
                temp_c,
            } => {
                self.record_symptoms(&actor, student_id, symptoms, temp_c)
                    .await
            }
        }
    }

    fn lesson(&self, lesson_id: &str) -> Result<Slot, ApiError> {
        self.tt()
            .slot(lesson_id, self.clock.timezone())
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "lesson {lesson_id:?} (ids are YYYY-MM-DD/P for a period in the timetable)"
                ))
            })
    }

    async fn lesson_action(
        &mut self,
        actor: &Actor,
        lesson_id: &str,
        action: LessonAction,
        reason: Option<String>,
    ) -> Result<Value, ApiError> {
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
            return Err(ApiError::Conflict(format!(
                "period {} is still in progress; end it first",
                o.period.period
            )));
        }
        let next =
            lesson::apply(action, &slot, &control, now, opens).map_err(ApiError::Conflict)?;
        let state = lesson::state(&slot, Some(&next), now, opens);
        let row = lesson_row(&slot, state.as_str());
        let mut body = ketang_sync::lesson_event_body(&row, action.as_str(), &actor.id);
        if let Some(r) = &reason {
            body["reason"] = json!(r);
        }
        let audit = self.audit(
            actor,
            &format!("lesson.{}", action.as_str()),
            lesson_id,
            json!({"reason": reason}),
        );
        let out = OutboxRecord {
            stream: Stream::Lesson,
            captured_at: now.fixed_offset(),
            clock_synced: self.clock.synced(),
            body,
        };
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
        Ok(json!({"lesson_id": lesson_id, "state": state.as_str()}))
    }

    async fn set_attendance(
        &mut self,
        actor: &Actor,
        lesson_id: &str,
        student_id: String,
        status: &str,
    ) -> Result<Value, ApiError> {
        let status = AttendanceStatus::parse(status).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "status {status:?} is not one of present, late, absent, leave, sick"
            ))
        })?;
        let slot = self.lesson(lesson_id)?;
        let now = self.clock.now();
        if slot.date > now.date_naive() {
            return Err(ApiError::Conflict(
                "the lesson is on a later day; enter leave instead".to_owned(),
            ));
        }
        if slot.date + chrono::Days::new(CORRECTION_DAYS) < now.date_naive() {
            return Err(ApiError::Conflict(format!(
                "lessons older than {CORRECTION_DAYS} days are corrected in the cloud"
            )));
        }
        let (state, finalised) = {
            let tt = self.tt();
            let finalised = tt.controls.get(lesson_id).is_some_and(|c| c.finalised);
            (tt.state(&slot, now, self.school.checkin_opens), finalised)
        };
        if state == LessonState::Cancelled {
            return Err(ApiError::Conflict("the lesson was cancelled".to_owned()));
        }
        let r = self
            .store
            .lesson_roll(lesson_id.to_owned(), slot.period.roster_id.clone())
            .await;
        let mut roll = self.stored("reading a lesson's roll", r)?;
        let Some(entry) = roll.iter_mut().find(|(s, _)| *s == student_id) else {
            return Err(ApiError::NotFound(format!(
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

    async fn resolve_followup(
        &mut self,
        actor: &Actor,
        id: String,
        resolution: &str,
        contacted_guardian: bool,
    ) -> Result<Value, ApiError> {
        let resolution = text("resolution", resolution, 500)?;
        let audit = self.audit(
            actor,
            "followup.resolve",
            &id,
            json!({"contacted_guardian": contacted_guardian}),
        );
        let student = id.split_once('/').map(|(_, s)| s.to_owned());
        let out = OutboxRecord {
            stream: Stream::Followup,
            captured_at: self.clock.now_fixed(),
            clock_synced: self.clock.synced(),
            body: json!({
                "followup_id": id, "student_id": student, "state": "resolved",
                "resolution": resolution, "contacted_guardian": contacted_guardian,
                "resolved_by": actor.id,
            }),
        };
        let r = self
            .store
            .resolve_followup(id.clone(), resolution, contacted_guardian, audit, out)
            .await;
        match self.stored("resolving a follow-up", r)? {
            None => Err(ApiError::NotFound(format!("follow-up {id:?}"))),
            Some(Err(by)) => Err(ApiError::Conflict(format!(
                "follow-up {id:?} was already resolved (by {by})"
            ))),
            Some(Ok(seq)) => {
                tracing::info!(seq, "Follow-up resolved.");
                Ok(json!({"followup_id": id, "state": "resolved"}))
            }
        }
    }

    async fn clear_alarm(&mut self, actor: &Actor, id: String) -> Result<Value, ApiError> {
        let r = self.store.active_alarms().await;
        let active = self.stored("reading alarms", r)?;
        let Some(alarm) = active.iter().find(|a| a.id == id) else {
            return Err(ApiError::NotFound(format!("active alarm {id:?}")));
        };
        let audit = self.audit(actor, "alarm.clear", &id, json!({"drill": alarm.drill}));
        let out = OutboxRecord {
            stream: Stream::Alarm,
            captured_at: self.clock.now_fixed(),
            clock_synced: self.clock.synced(),
            body: json!({
                "alarm_id": id, "state": "cleared", "source": alarm.source,
                "drill": alarm.drill, "cleared_by": actor.id,
            }),
        };
        let r = self.store.clear_alarm(id.clone(), audit, out).await;
        match self.stored("clearing an alarm", r)? {
            None => Err(ApiError::NotFound(format!("active alarm {id:?}"))),
            Some((remaining, seq)) => {
                if !remaining {
                    self.hw.set_output(DeviceKind::Siren, false);
                }
                tracing::warn!(seq, drill = alarm.drill, "Alarm cleared.");
                Ok(json!({"alarm_id": id, "state": "cleared", "siren": remaining}))
            }
        }
    }

    async fn post_notice(
        &mut self,
        actor: &Actor,
        title: &str,
        body: &str,
        priority: i64,
        valid_from: Option<String>,
        valid_until: Option<String>,
    ) -> Result<Value, ApiError> {
        let title = text("title", title, 60)?;
        let body = text("body", body, 1000)?;
        if !(0..=100).contains(&priority) {
            return Err(ApiError::BadRequest("priority is not 0..=100".to_owned()));
        }
        let now = self.clock.now();
        let from = valid_from
            .map(|s| parse_time("valid_from", &s))
            .transpose()?
            .unwrap_or_else(|| now.fixed_offset());
        let until = match valid_until {
            Some(s) => parse_time("valid_until", &s)?,
            None => {
                let end = now.date_naive().and_hms_opt(23, 59, 59).unwrap_or_default();
                now.timezone()
                    .from_local_datetime(&end)
                    .earliest()
                    .map_or_else(|| now.fixed_offset(), |d| d.fixed_offset())
            }
        };
        if until <= from || until <= now.fixed_offset() {
            return Err(ApiError::BadRequest(
                "valid_until must be after valid_from and in the future".to_owned(),
            ));
        }
        let id = format!("local-{}", uuid::Uuid::new_v4());
        let notice = NoticeRow {
            id: id.clone(),
            title,
            body,
            priority,
            // Design: emergency broadcasts come from the cloud (education bureau), not a board.
            emergency: false,
            valid_from: Some(from),
            valid_until: Some(until),
        };
        let audit = self.audit(actor, "notice.post", &id, json!({"priority": priority}));
        let r = self.store.post_notice(notice, audit).await;
        self.stored("posting a notice", r)?;
        Ok(json!({"notice_id": id}))
    }

    async fn enter_leave(
        &mut self,
        actor: &Actor,
        student_id: String,
        until: &str,
        reason: Option<String>,
    ) -> Result<Value, ApiError> {
        let until = parse_time("until", until)?;
        let now = self.clock.now_fixed();
        if until <= now {
            return Err(ApiError::BadRequest(
                "until is not in the future".to_owned(),
            ));
        }
        if until > now + TimeDelta::days(30) {
            return Err(ApiError::BadRequest(
                "leave longer than 30 days is approved in the cloud".to_owned(),
            ));
        }
        let reason = reason.map(|r| text("reason", &r, 200)).transpose()?;
        let r = self.store.student_name(student_id.clone()).await;
        if self.stored("reading a student", r)?.is_none() {
            return Err(ApiError::NotFound(format!("student {student_id:?}")));
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

    async fn record_symptoms(
        &mut self,
        actor: &Actor,
        student_id: String,
        symptoms: Vec<String>,
        temp_c: Option<f64>,
    ) -> Result<Value, ApiError> {
        if let Some(bad) = symptoms.iter().find(|s| !SYMPTOMS.contains(&s.as_str())) {
            return Err(ApiError::BadRequest(format!(
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
            return Err(ApiError::BadRequest(format!(
                "symptoms[{i}]: {dup:?} is listed twice; give each symptom once"
            )));
        }
        if symptoms.is_empty() && temp_c.is_none() {
            return Err(ApiError::BadRequest(
                "give symptoms, a temperature, or both".to_owned(),
            ));
        }
        if let Some(t) = temp_c
            && !health::PLAUSIBLE_C.contains(&t)
        {
            return Err(ApiError::BadRequest(format!(
                "temp_c {t} is outside 30-45 °C; measure again"
            )));
        }
        let r = self.store.student_name(student_id.clone()).await;
        if self.stored("reading a student", r)?.is_none() {
            return Err(ApiError::NotFound(format!("student {student_id:?}")));
        }
        let now = self.clock.now();
        let window = health::window_of(
            now.time(),
            self.school.morning_check,
            self.school.noon_check,
        );
        let fever = temp_c.is_some_and(|t| t >= self.school.fever_threshold_c)
            || symptoms.iter().any(|s| s == "fever");
        let rec = HealthCheckRecord {
            symptoms: symptoms.clone(),
            student_id: student_id.clone(),
            window: window.to_owned(),
            temp_c,
            fever,
            at: now.fixed_offset(),
            clock_synced: self.clock.synced(),
        };
        let out = OutboxRecord {
            stream: Stream::HealthCheck,
            captured_at: now.fixed_offset(),
            clock_synced: self.clock.synced(),
            body: json!({
                "student_id": student_id, "window": window,
                "temp_c": temp_c.map(|t| (t * 10.0).round() / 10.0), "fever": fever,
                "threshold_c": self.school.fever_threshold_c, "symptoms": symptoms,
                "source": "manual", "recorded_by": actor.id,
            }),
        };
        let audit = self.audit(
            actor,
            "health.symptoms",
            &student_id,
            json!({"window": window}),
        );
        let r = self.store.record_health_check(rec, out, Some(audit)).await;
        let seq = self.stored("recording symptoms", r)?;
        crate::classroom::bump(&self.counters.health_checks);
        tracing::info!(window, fever, seq, "Symptoms recorded by the teacher.");
        Ok(json!({"student_id": student_id, "window": window, "fever": fever}))
    }
}

impl Classroom {
    /// Switches the panel (power, then input), records each change that took with its
    /// `whiteboard` record, and answers the state read back.
    pub(crate) async fn whiteboard(
        &mut self,
        power: Option<bool>,
        input: Option<ketang_drivers::panel::Input>,
        source: &str,
        actor: Option<&Actor>,
    ) -> Result<Value, ApiError> {
        use ketang_drivers::panel::{Reply, Request};
        let Some(wb) = self.whiteboard.clone() else {
            return Err(ApiError::NotFound(
                "a whiteboard (none is configured: hardware.whiteboard)".to_owned(),
            ));
        };
        let mut answer = json!({});
        for req in power
            .map(Request::SetPower)
            .into_iter()
            .chain(input.map(Request::SetInput))
        {
            let reply = wb.request(req).await.map_err(ApiError::Unavailable)?;
            let (p, i) = match reply {
                Reply::Power(p) => {
                    answer["power"] = json!(p);
                    (Some(p), None)
                }
                Reply::Input(i) => {
                    answer["input"] = json!(i.name());
                    (None, Some(i.name().to_owned()))
                }
                _ => (None, None),
            };
            let now = self.clock.now();
            let lesson = self.current_lesson_id();
            let out = OutboxRecord {
                stream: Stream::Whiteboard,
                captured_at: now.fixed_offset(),
                clock_synced: self.clock.synced(),
                body: json!({
                    "event": if p.is_some() { "power" } else { "input" },
                    "power": p, "input": i, "source": source,
                    "by": actor.map(|a| a.id.clone()), "lesson_id": lesson,
                }),
            };
            let r = self
                .store
                .record_whiteboard(p, i, source.to_owned(), actor.map(|a| a.id.clone()), out)
                .await;
            self.stored("recording a whiteboard change", r)?;
        }
        if let Some(a) = actor {
            let audit = self.audit(a, "whiteboard", "whiteboard", answer.clone());
            let r = self.store.audit(audit).await;
            self.stored("writing the audit log", r)?;
        }
        Ok(answer)
    }

    fn current_lesson_id(&self) -> Option<String> {
        let now = self.clock.now();
        self.tt()
            .current(now, self.school.checkin_opens)
            .map(|s| s.id())
    }

    /// The timetable's power schedule: on from when the first lesson's check-in opens
    /// (minus 5 minutes) until 10 minutes after the last lesson ends, on school days only
    /// (holidays and 调休 come from the calendar). Applied when the wanted state changes,
    /// so a teacher's switch in between is not undone until the next change; a failure is
    /// retried a minute later.
    pub(crate) async fn whiteboard_schedule(&mut self) {
        if self.whiteboard.is_none() {
            return;
        }
        let now = self.clock.now();
        let (last, retry_at) = self.wb_schedule;
        if retry_at.is_some_and(|t| now.fixed_offset() < t) {
            return;
        }
        let slots = self.tt().slots_on(now.date_naive(), now.timezone());
        let want = match (slots.first(), slots.last()) {
            (Some(first), Some(last)) => {
                let on_at = first.starts_at
                    - chrono::TimeDelta::from_std(self.school.checkin_opens).unwrap_or_default()
                    - chrono::TimeDelta::minutes(5);
                let off_at = last.ends_at + chrono::TimeDelta::minutes(10);
                now >= on_at && now < off_at
            }
            _ => false,
        };
        if last == Some(want) {
            return;
        }
        match self.whiteboard(Some(want), None, "schedule", None).await {
            Ok(_) => {
                tracing::info!(on = want, "Whiteboard switched by the timetable schedule.");
                self.wb_schedule = (Some(want), None);
                self.changed();
            }
            Err(e) => {
                tracing::warn!(error = %e, "The timetable schedule could not switch the whiteboard; retrying in a minute.");
                self.wb_schedule = (
                    last,
                    Some(now.fixed_offset() + chrono::TimeDelta::minutes(1)),
                );
            }
        }
    }
}

impl Classroom {
    /// Self-test of a device other than the flat panel: the siren and the status LED are
    /// switched on for 300 ms and off again (the siren not while an alarm sounds); every
    /// other device reports its live health as its driver thread last saw it (the readers,
    /// sensors and the camera are polled continuously, so that is a fresh test).
    async fn device_self_test(
        &mut self,
        status: &ketang_web::HardwareStatus,
    ) -> Result<Value, ApiError> {
        let started = std::time::Instant::now();
        let kind = match status.kind.as_str() {
            "siren" => Some(crate::config::DeviceKind::Siren),
            "status_led" => Some(crate::config::DeviceKind::StatusLed),
            _ => None,
        };
        if let Some(kind) = kind {
            if kind == crate::config::DeviceKind::Siren {
                let r = self.store.active_alarms().await;
                if !self.stored("reading alarms", r)?.is_empty() {
                    return Err(ApiError::Conflict(
                        "an alarm is active: the siren stays on; clear the alarm first".to_owned(),
                    ));
                }
            }
            self.hw.set_output(kind, true);
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            self.hw.set_output(kind, false);
        }
        let now = self
            .hw
            .statuses()
            .into_iter()
            .find(|d| d.name == status.name)
            .unwrap_or_else(|| status.clone());
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let what = if kind.is_some() {
            "switched on for 300 ms, then off · "
        } else {
            ""
        };
        Ok(json!({
            "device": now.name,
            "ok": now.state == "ok",
            "ms": ms,
            "detail": format!("{what}{}{}", now.state, now.detail.map(|d| format!(" · {d}")).unwrap_or_default()),
        }))
    }

    /// A device's self-test, for the technician page. The whiteboard is asked for its power
    /// and input (a real exchange with the panel, or its simulated twin); every other device
    /// gets [`Self::device_self_test`].
    async fn self_test(&mut self, actor: &Actor, device: &str) -> Result<Value, ApiError> {
        use ketang_drivers::panel::{Reply, Request};
        let Some(status) = self.hw.statuses().into_iter().find(|d| d.name == device) else {
            return Err(ApiError::NotFound(format!("device {device:?}")));
        };
        if status.kind != "whiteboard" {
            let answer = self.device_self_test(&status).await?;
            let audit = self.audit(actor, "hardware.self_test", device, answer.clone());
            let r = self.store.audit(audit).await;
            self.stored("writing the audit log", r)?;
            return Ok(answer);
        }
        let Some(wb) = self.whiteboard.clone() else {
            return Err(ApiError::NotFound("a whiteboard".to_owned()));
        };
        let started = std::time::Instant::now();
        let result = async {
            let p = wb.request(Request::GetPower).await?;
            let i = wb.request(Request::GetInput).await?;
            Ok::<_, String>((p, i))
        }
        .await;
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let answer = match result {
            Ok((Reply::Power(p), Reply::Input(i))) => json!({
                "device": device, "ok": true, "ms": ms,
                "detail": format!("{} · {}", if p { "on" } else { "standby" }, i.name()),
            }),
            Ok(other) => {
                json!({"device": device, "ok": false, "ms": ms, "detail": format!("unexpected answers {other:?}")})
            }
            Err(e) => json!({"device": device, "ok": false, "ms": ms, "detail": e}),
        };
        let audit = self.audit(actor, "hardware.self_test", device, answer.clone());
        let r = self.store.audit(audit).await;
        self.stored("writing the audit log", r)?;
        Ok(answer)
    }
}
