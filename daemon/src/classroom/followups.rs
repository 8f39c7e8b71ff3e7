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
    /// Once a day, when the morning check window closes: opens the follow-ups.
    /// Whether follow-ups were opened (or tried) now.
    pub(super) async fn followups_due(&mut self) -> bool {
        let now = self.clock.now();
        let date = now.date_naive();
        if self.followups_done == Some(date) || now.time() < self.school.morning_check.1 {
            return false;
        }
        let tz = now.timezone();
        let local = |t: chrono::NaiveTime| {
            tz.from_local_datetime(&date.and_time(t))
                .earliest()
                .map(|d| d.fixed_offset())
        };
        let (Some(start), Some(end)) = (
            local(self.school.morning_check.0),
            local(self.school.morning_check.1),
        ) else {
            self.followups_done = Some(date);
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
            self.followups_done = Some(date);
            return false;
        }
        match self.open_followups(date, (start, end)).await {
            Ok(n) => {
                tracing::info!(%date, opened = n, "Morning check closed; follow-ups opened for students unseen without leave.");
                self.followups_done = Some(date);
            }
            Err(e) => self.store_health.failed("opening follow-ups", &e),
        }
        true
    }

    pub(super) async fn open_followups(
        &self,
        date: chrono::NaiveDate,
        window: (DateTime<FixedOffset>, DateTime<FixedOffset>),
    ) -> Result<usize, ketang_sync::Error> {
        let presence = self.store.day_presence(date, window).await?;
        let unseen = followup::unseen(&presence);
        let mut on_leave = HashSet::new();
        for s in &unseen {
            if self.store.on_leave(s.clone(), window.1).await? {
                on_leave.insert(s.clone());
            }
        }
        let list = followup::to_follow_up(unseen, &on_leave);
        self.store
            .open_followups(
                date,
                list,
                followup::ABSENT_AT_MORNING_CHECK.to_owned(),
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
