//! Staff actions (teacher, technician, the cloud's remote commands), done by the classroom
//! actor in order with hardware events. Every action is checked here (the HTTP layer checked
//! the role), stored with its audit row, and answered with what happened.

use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use ketang_sync::{AttendanceStatus, HealthWindow};
use ketang_sync::{Audit, StaffLogin};
use ketang_web::{Action, Actor, Role};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::engine::lesson::LessonAction;

use super::ActionError;
use super::Classroom;
use super::Reply;

/// How long a tapped staff card stays claimable by the board's screen.
pub(crate) const UNLOCK_CLAIM: Duration = Duration::from_secs(10);

/// An action for the classroom actor, with where to send the answer.
#[derive(Debug)]
pub(crate) struct Cmd {
    pub(crate) actor: Actor,
    pub(crate) action: Action,
    pub(crate) reply: oneshot::Sender<Result<Reply, ActionError>>,
}

/// Hands `action` to the classroom actor and waits for its answer.
///
/// # Errors
/// The action's own error, or [`ActionError::Unavailable`] when the daemon is shutting down.
pub(crate) async fn send(
    commands: &tokio::sync::mpsc::Sender<Cmd>,
    actor: Actor,
    action: Action,
) -> Result<Reply, ActionError> {
    let gone = || ActionError::Unavailable("the device is shutting down".to_owned());
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

pub(super) fn internal(e: &ketang_sync::Error) -> ActionError {
    ActionError::Internal(e.to_string())
}

pub(super) fn parse_time(field: &str, s: &str) -> Result<DateTime<FixedOffset>, ActionError> {
    DateTime::parse_from_rfc3339(s).map_err(|e| {
        ActionError::Invalid(format!(
            "{field}: {s:?} is not an RFC 3339 time (e.g. 2026-11-23T17:00:00+08:00): {e}"
        ))
    })
}

/// An RFC 3339 time, or a date `YYYY-MM-DD` of the school's local days: its start, or with
/// `end_of_day` its end (the next midnight), so a range of dates reads as a teacher means it.
pub(super) fn parse_time_or_day(
    field: &str,
    s: &str,
    tz: chrono_tz::Tz,
    end_of_day: bool,
) -> Result<DateTime<FixedOffset>, ActionError> {
    use chrono::TimeZone as _;
    let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") else {
        return parse_time(field, s);
    };
    let d = if end_of_day { d.succ_opt() } else { Some(d) };
    d.and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map(|t| t.fixed_offset())
        .ok_or_else(|| ActionError::Invalid(format!("{field}: no such local day")))
}

pub(super) fn text(field: &str, s: &str, max: usize) -> Result<String, ActionError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(ActionError::Invalid(format!("{field} is empty")));
    }
    if t.chars().count() > max {
        return Err(ActionError::Invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(t.to_owned())
}

/// What an audit row records beyond who did what to which target: one variant per kind of
/// staff action, each serialised as a plain object (never a name or a card UID).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum AuditDetail<'a> {
    /// Nothing more (`{}`).
    None {},
    /// A follow-up resolved.
    Followup { contacted_guardian: bool },
    /// A notice posted.
    Notice { priority: i64 },
    /// An alarm cleared.
    Alarm { drill: bool },
    /// Symptoms entered.
    Symptoms { window: HealthWindow },
    /// A lesson started, ended or cancelled early.
    Lesson { reason: Option<&'a str> },
    /// A status set by hand.
    Attendance {
        student_id: &'a str,
        status: AttendanceStatus,
        previous: Option<AttendanceStatus>,
    },
    /// Leave entered on the board.
    Leave { leave_id: &'a str, until: String },
    /// Face consent recorded.
    ConsentGranted { granted_at: &'a str },
    /// Face consent withdrawn.
    ConsentWithdrawn { source: &'a str },
    /// A face enrolled with this embedder.
    Enrolled { model: &'a str },
}

impl Classroom {
    pub(crate) async fn command(&mut self, cmd: Cmd) {
        // A voice enrolment listens for up to 45 s: it answers from its own task.
        if matches!(cmd.action, Action::VoiceEnrol) {
            if !cmd.action.allowed(cmd.actor.role) {
                let _ = cmd.reply.send(Err(ActionError::Invalid(
                    "voice_enrol needs teacher mode".to_owned(),
                )));
                return;
            }
            return self.voice_enrol(cmd.actor, cmd.reply);
        }
        let name = cmd.action.name();
        let result = self.act(cmd.actor, cmd.action).await;
        if let Err(e) = &result {
            tracing::info!(action = name, error = %e, "Action refused or failed.");
        }
        self.changed();
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

    /// An audit row of `actor` doing `action` to `target`, with `detail`: an
    /// [`AuditDetail`], or the typed answer of a device action (never names or card UIDs).
    pub(crate) fn audit(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        detail: &impl serde::Serialize,
    ) -> Audit {
        Audit::new(
            (&actor.id, actor.role.as_str()),
            action,
            target,
            detail,
            self.clock.now_fixed(),
            self.clock.synced(),
        )
    }

    pub(crate) fn stored<T>(
        &self,
        what: &str,
        r: Result<T, ketang_sync::Error>,
    ) -> Result<T, ActionError> {
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

    pub(super) async fn act(&mut self, actor: Actor, action: Action) -> Result<Reply, ActionError> {
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
                self.set_attendance(&actor, &lesson_id, student_id, status)
                    .await
            }
            Action::ResolveFollowup {
                followup_id,
                resolution,
                outcome,
                illness,
                return_date,
                contacted_guardian,
            } => {
                let found = super::followups::Found::parse(
                    &resolution,
                    outcome.as_deref(),
                    illness.as_deref(),
                    return_date.as_deref(),
                )?;
                self.resolve_followup(&actor, followup_id, found, contacted_guardian)
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
                let audit =
                    self.audit(&actor, "notice.withdraw", &notice_id, &AuditDetail::None {});
                let r = self.store.withdraw_notice(notice_id.clone(), audit).await;
                if self.stored("withdrawing a notice", r)? {
                    Ok(Reply::Notice {
                        notice_id,
                        withdrawn: Some(true),
                    })
                } else {
                    Err(ActionError::NotFound(format!(
                        "local notice {notice_id:?} (cloud notices are withdrawn by the cloud)"
                    )))
                }
            }
            Action::EnterLeave {
                student_id,
                from,
                until,
                kind,
                reason,
            } => {
                self.enter_leave(
                    &actor,
                    student_id,
                    (from.as_deref(), &until),
                    kind.as_deref(),
                    reason,
                )
                .await
            }
            Action::Whiteboard { power, input } => {
                let input = input
                    .map(|i| {
                        ketang_drivers::panel::Input::from_name(&i).ok_or_else(|| {
                            ActionError::Invalid(format!(
                                "input {i:?} is not one of hdmi1, hdmi2, dp, vga, ops"
                            ))
                        })
                    })
                    .transpose()?;
                if power.is_none() && input.is_none() {
                    return Err(ActionError::Invalid(
                        "give power, input, or both".to_owned(),
                    ));
                }
                // Design: remote commands arrive as the actor "cloud" (see uplink.rs).
                let source = if actor.id == "cloud" {
                    ketang_sync::WhiteboardSource::Cloud
                } else {
                    ketang_sync::WhiteboardSource::Teacher
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
            Action::VoiceEnrol => Err(ActionError::Invalid(
                "voice_enrol answers from its own task".to_owned(),
            )),
            Action::VoiceEnrolCancel => self.voice_enrol_cancel().await,
            Action::VoiceDelete => self.voice_delete(&actor).await,
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
}
