//! Follow-ups of students absent or feverish at a health check, opened when the window
//! closes and resolved by staff.

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, TimeZone};
use ketang_sync::{FollowupBody, FollowupOutcome, Illness, OutboxRecord};
use ketang_web::Actor;

use crate::engine::followup;

use super::ActionError;
use super::Classroom;
use super::Reply;
use super::actions::AuditDetail;
use super::actions::text;

impl Classroom {
    /// Once a day after each health-check window closes (morning, noon, and the evening
    /// check where a boarding school has one): opens the follow-ups. Whether follow-ups were
    /// opened (or tried) now.
    pub(super) async fn followups_due(&mut self) -> bool {
        let mut any = false;
        for check in [Check::Morning, Check::Noon, Check::Evening] {
            any |= self.followups_due_for(check).await;
        }
        any
    }

    async fn followups_due_for(&mut self, check: Check) -> bool {
        let now = self.clock.now();
        let date = now.date_naive();
        let window = match check {
            Check::Morning => self.school.morning_check,
            Check::Noon => self.school.noon_check,
            Check::Evening => match self.school.evening_check {
                Some(w) => w,
                None => return false,
            },
        };
        let i = check as usize;
        if self.followups_done[i] == Some(date) || now.time() < window.1 {
            return false;
        }
        let mark = |room: &mut Self| room.followups_done[i] = Some(date);
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
        match self.open_followups(date, (start, end), check).await {
            Ok(n) => {
                let check = check.reason();
                tracing::info!(%date, opened = n, check, "A check closed; follow-ups opened for students unseen without leave.");
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
        check: Check,
    ) -> Result<usize, ketang_sync::Error> {
        // After the morning, "seen" is seen since this window opened.
        let since = (check != Check::Morning).then_some(window.0);
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
                check.reason().to_owned(),
                self.clock.now_fixed(),
                self.clock.synced(),
            )
            .await
    }

    pub(super) async fn resolve_followup(
        &mut self,
        actor: &Actor,
        id: String,
        found: Found,
        contacted_guardian: bool,
    ) -> Result<Reply, ActionError> {
        let resolution = found.resolution.clone();
        let date = id
            .split_once('/')
            .and_then(|(d, _)| d.parse::<chrono::NaiveDate>().ok());
        if let (Some(back), Some(day)) = (found.return_date, date)
            && (back <= day || back > day + chrono::Days::new(30))
        {
            return Err(ActionError::Invalid(format!(
                "return_date {back} is not within 30 days after the follow-up's day {day}"
            )));
        }
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
            student_id: student.clone(),
            resolution: resolution.clone(),
            outcome: found.outcome,
            illness: found.illness,
            return_date: found.return_date,
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
                // A leave reason is leave: the rest of the day's lessons (to the return day)
                // end as sick or leave instead of absent.
                let kind = match found.outcome {
                    Some(FollowupOutcome::SickLeave) => Some(ketang_sync::LeaveKind::Sick),
                    Some(FollowupOutcome::PersonalLeave) => Some(ketang_sync::LeaveKind::Personal),
                    _ => None,
                };
                if let (Some(kind), Some(day)) = (kind, date) {
                    let until = found.return_date.unwrap_or(day + chrono::Days::new(1));
                    let _ = self
                        .enter_leave(
                            actor,
                            student,
                            (Some(&day.to_string()), &(until - chrono::Days::new(1)).to_string()),
                            Some(kind.as_str()),
                            Some(found.resolution.clone()),
                        )
                        .await
                        .inspect_err(|e| tracing::warn!(error = %e, "The follow-up's leave could not be entered."));
                }
                Ok(Reply::Followup {
                    followup_id: id,
                    state: "resolved",
                })
            }
        }
    }
}

/// The checks that open follow-ups when their window closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Morning = 0,
    Noon = 1,
    /// 晚检, only with `school.evening_check`.
    Evening = 2,
}

impl Check {
    /// The follow-up's reason (a contract value).
    const fn reason(self) -> &'static str {
        match self {
            Self::Morning => followup::ABSENT_AT_MORNING_CHECK,
            Self::Noon => followup::ABSENT_AT_NOON_CHECK,
            Self::Evening => followup::ABSENT_AT_EVENING_CHECK,
        }
    }
}

/// What the teacher found out about a followed-up student: a ready-made reason, the illness
/// behind a sick leave, a return day, and words (the reason's own when none are typed).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found {
    pub(crate) resolution: String,
    pub(crate) outcome: Option<FollowupOutcome>,
    pub(crate) illness: Option<Illness>,
    pub(crate) return_date: Option<chrono::NaiveDate>,
}

impl Found {
    /// Checks the action's fields: an outcome or words (or both); an illness only with
    /// `sick_leave`; a return day only with a leave.
    pub(crate) fn parse(
        resolution: &str,
        outcome: Option<&str>,
        illness: Option<&str>,
        return_date: Option<&str>,
    ) -> Result<Self, ActionError> {
        let outcome: Option<FollowupOutcome> = outcome
            .map(|o| {
                enum_of(
                    "outcome",
                    o,
                    "sick_leave, personal_leave, arrived, guardian_knows, unreachable",
                )
            })
            .transpose()?;
        let illness: Option<Illness> = illness
            .map(|i| {
                enum_of(
                    "illness",
                    i,
                    "fever, cough, diarrhoea_vomiting, rash, other",
                )
            })
            .transpose()?;
        if illness.is_some() && outcome != Some(FollowupOutcome::SickLeave) {
            return Err(ActionError::Invalid(
                "illness goes with the outcome sick_leave".to_owned(),
            ));
        }
        let return_date = return_date
            .map(|d| {
                d.parse::<chrono::NaiveDate>().map_err(|_| {
                    ActionError::Invalid(format!(
                        "return_date {} is not a date (YYYY-MM-DD)",
                        ketang_sync::limits::excerpt(d)
                    ))
                })
            })
            .transpose()?;
        if return_date.is_some()
            && !matches!(
                outcome,
                Some(FollowupOutcome::SickLeave | FollowupOutcome::PersonalLeave)
            )
        {
            return Err(ActionError::Invalid(
                "return_date goes with a leave outcome (sick_leave, personal_leave)".to_owned(),
            ));
        }
        let resolution = if resolution.trim().is_empty() {
            match outcome {
                Some(o) => outcome_words(o).to_owned(),
                None => {
                    return Err(ActionError::Invalid(
                        "give an outcome or a resolution".to_owned(),
                    ));
                }
            }
        } else {
            text("resolution", resolution, 500)?
        };
        Ok(Self {
            resolution,
            outcome,
            illness,
            return_date,
        })
    }
}

/// `v` as one of the names of a snake_case enum, or an error listing `names`.
fn enum_of<T: serde::de::DeserializeOwned>(
    field: &str,
    v: &str,
    names: &str,
) -> Result<T, ActionError> {
    serde_json::from_value(serde_json::Value::String(v.to_owned())).map_err(|_| {
        ActionError::Invalid(format!(
            "{field} {} is not one of {names}",
            ketang_sync::limits::excerpt(v)
        ))
    })
}

/// The words of a ready-made reason, as the school reads them.
const fn outcome_words(o: FollowupOutcome) -> &'static str {
    match o {
        FollowupOutcome::SickLeave => "病假",
        FollowupOutcome::PersonalLeave => "事假",
        FollowupOutcome::Arrived => "已到校",
        FollowupOutcome::GuardianKnows => "家长已知",
        FollowupOutcome::Unreachable => "联系不上",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_made_reason_needs_no_typing_and_the_fields_go_together() {
        let f = Found::parse("", Some("sick_leave"), Some("fever"), Some("2026-11-25")).unwrap();
        assert_eq!(f.resolution, "病假");
        assert_eq!(f.outcome, Some(FollowupOutcome::SickLeave));
        assert_eq!(f.illness, Some(Illness::Fever));
        assert_eq!(f.return_date.unwrap().to_string(), "2026-11-25");
        let f = Found::parse("在门卫室等家长", Some("arrived"), None, None).unwrap();
        assert_eq!(f.resolution, "在门卫室等家长");
        let err = |r: Result<Found, ActionError>| match r {
            Err(ActionError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(err(Found::parse("", None, None, None)).contains("outcome or a resolution"));
        assert!(err(Found::parse("", Some("arrived"), Some("fever"), None)).contains("sick_leave"));
        assert!(
            err(Found::parse("", Some("arrived"), None, Some("2026-11-25")))
                .contains("leave outcome")
        );
        let e = err(Found::parse("", Some("holiday<script>"), None, None));
        assert!(e.contains("sick_leave, personal_leave"), "{e}");
        assert!(
            err(Found::parse("", Some("sick_leave"), Some("flu"), None))
                .contains("diarrhoea_vomiting")
        );
        assert!(
            err(Found::parse("", Some("sick_leave"), None, Some("tomorrow")))
                .contains("YYYY-MM-DD")
        );
    }
}
