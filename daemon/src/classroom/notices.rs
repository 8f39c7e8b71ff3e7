//! Notices posted by staff on the board.

use chrono::TimeZone;
use ketang_sync::NoticeRow;
use ketang_web::Actor;

use super::ActionError;
use super::Classroom;
use super::Reply;
use super::actions::AuditDetail;
use super::actions::{parse_time_or_day, text};

impl Classroom {
    pub(super) async fn post_notice(
        &mut self,
        actor: &Actor,
        title: &str,
        body: &str,
        priority: i64,
        valid_from: Option<String>,
        valid_until: Option<String>,
    ) -> Result<Reply, ActionError> {
        let title = text("title", title, 60)?;
        let body = text("body", body, 1000)?;
        if !(0..=100).contains(&priority) {
            return Err(ActionError::Invalid("priority is not 0..=100".to_owned()));
        }
        let now = self.clock.now();
        let tz = self.school.timezone;
        let from = valid_from
            .map(|s| parse_time_or_day("valid_from", &s, tz, false))
            .transpose()?
            .unwrap_or_else(|| now.fixed_offset());
        let until = match valid_until {
            Some(s) => parse_time_or_day("valid_until", &s, tz, true)?,
            None => {
                let end = now.date_naive().and_hms_opt(23, 59, 59).unwrap_or_default();
                now.timezone()
                    .from_local_datetime(&end)
                    .earliest()
                    .map_or_else(|| now.fixed_offset(), |d| d.fixed_offset())
            }
        };
        if until <= from || until <= now.fixed_offset() {
            return Err(ActionError::Invalid(
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
        let audit = self.audit(actor, "notice.post", &id, &AuditDetail::Notice { priority });
        let r = self.store.post_notice(notice, audit).await;
        self.stored("posting a notice", r)?;
        Ok(Reply::Notice {
            notice_id: id,
            withdrawn: None,
        })
    }
}
