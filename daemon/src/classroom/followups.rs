//! Follow-ups of students absent or feverish at a health check, opened when the window
//! closes and resolved by staff.

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, TimeZone};
use ketang_sync::{FollowupBody, OutboxRecord};
use ketang_web::Actor;

use crate::engine::followup;

use super::ActionError;
use super::Classroom;
use super::Reply;
use super::actions::AuditDetail;
use super::actions::text;

impl Classroom {
    /// Once a day after each health-check window closes (morning, then noon): opens the
    /// follow-ups. Whether follow-ups were opened (or tried) now.
    pub(super) async fn followups_due(&mut self) -> bool {
        let mut any = false;
        for noon in [false, true] {
            any |= self.followups_due_for(noon).await;
        }
        any
    }

    async fn followups_due_for(&mut self, noon: bool) -> bool {
        let now = self.clock.now();
        let date = now.date_naive();
        let (window, done) = if noon {
            (self.school.noon_check, self.noon_followups_done)
        } else {
            (self.school.morning_check, self.followups_done)
        };
        if done == Some(date) || now.time() < window.1 {
            return false;
        }
        let mark = |room: &mut Self| {
            if noon {
                room.noon_followups_done = Some(date);
            } else {
                room.followups_done = Some(date);
            }
        };
        let tz = now.timezone();
        let local = |t: chrono::NaiveTime| {
            tz.from_local_datetime(&date.and_time(t))
                .earliest()
                .map(|d| d.fixed_offset())
        };
        let (Some(start), Some(end)) = (local(window.0), local(window.1)) else {
            mark(self);
            return false;
        };
        let school_day = !self
            .timetable
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .slots_on(date, tz)
            .is_empty();
        // Design: not on days without lessons, and not when this board first ran only after
        // the window closed (it saw nobody).
        if !school_day || self.since >= end {
            mark(self);
            return false;
        }
        match self.open_followups(date, (start, end), noon).await {
            Ok(n) => {
                let check = if noon { "Noon" } else { "Morning" };
                tracing::info!(%date, opened = n, "{check} check closed; follow-ups opened for students unseen without leave.");
                mark(self);
            }
            Err(e) => self.store_health.failed("opening follow-ups", &e),
        }
        true
    }

    /// Opens the follow-ups of one window. At noon "seen" means a noon health check or a
    /// check-in since the window opened (who was there in the morning may have gone home);
    /// a student already followed up that day is not followed up twice.
    pub(super) async fn open_followups(
        &self,
        date: chrono::NaiveDate,
        window: (DateTime<FixedOffset>, DateTime<FixedOffset>),
        noon: bool,
    ) -> Result<usize, ketang_sync::Error> {
        let since = noon.then_some(window.0);
        let presence = self.store.day_presence_since(date, window, since).await?;
        let unseen = followup::unseen(&presence);
        let mut on_leave = HashSet::new();
        for s in &unseen {
            if self.store.on_leave(s.clone(), window.1).await?.is_some() {
                on_leave.insert(s.clone());
            }
        }
        let list = followup::to_follow_up(unseen, &on_leave);
        self.store
            .open_followups(
                date,
                list,
                if noon {
                    followup::ABSENT_AT_NOON_CHECK
                } else {
                    followup::ABSENT_AT_MORNING_CHECK
                }
                .to_owned(),
                self.clock.now_fixed(),
                self.clock.synced(),
            )
            .await
    }

    pub(super) async fn resolve_followup(
        &mut self,
        actor: &Actor,
        id: String,
        resolution: &str,
        contacted_guardian: bool,
    ) -> Result<Reply, ActionError> {
        let resolution = text("resolution", resolution, 500)?;
        let audit = self.audit(
            actor,
            "followup.resolve",
            &id,
            &AuditDetail::Followup { contacted_guardian },
        );
        let student = id
            .split_once('/')
            .map(|(_, s)| s.to_owned())
            .unwrap_or_default();
        let body = FollowupBody::Resolved {
            followup_id: id.clone(),
            student_id: student,
            resolution: resolution.clone(),
            contacted_guardian,
            resolved_by: actor.id.clone(),
        };
        let out = OutboxRecord::new(&body, self.clock.now_fixed(), self.clock.synced());
        let r = self
            .store
            .resolve_followup(id.clone(), resolution, contacted_guardian, audit, out)
            .await;
        match self.stored("resolving a follow-up", r)? {
            None => Err(ActionError::NotFound(format!("follow-up {id:?}"))),
            Some(Err(by)) => Err(ActionError::Conflict(format!(
                "follow-up {id:?} was already resolved (by {by})"
            ))),
            Some(Ok(seq)) => {
                tracing::info!(seq, "Follow-up resolved.");
                Ok(Reply::Followup {
                    followup_id: id,
                    state: "resolved",
                })
            }
        }
    }
}
