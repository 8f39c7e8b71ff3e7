//! The classroom's devices as staff use them: the whiteboard (power, input, schedule) and
//! device self-tests.

use ketang_sync::{OutboxRecord, WhiteboardBody, WhiteboardEvent, WhiteboardSource};
use ketang_web::Actor;

use super::ActionError;
use super::Classroom;
use super::Reply;

impl Classroom {
    /// Switches the panel (power, then input), records each change that took with its
    /// `whiteboard` record, and answers the state read back.
    pub(crate) async fn whiteboard(
        &mut self,
        power: Option<bool>,
        input: Option<ketang_drivers::panel::Input>,
        source: WhiteboardSource,
        actor: Option<&Actor>,
    ) -> Result<Reply, ActionError> {
        use ketang_drivers::panel::{Reply as PanelReply, Request};
        let Some(wb) = self.whiteboard.clone() else {
            return Err(ActionError::NotFound(
                "a whiteboard (none is configured: hardware.whiteboard)".to_owned(),
            ));
        };
        let (mut power_now, mut input_now) = (None, None);
        for req in power
            .map(Request::SetPower)
            .into_iter()
            .chain(input.map(Request::SetInput))
        {
            let reply = wb.request(req).await.map_err(ActionError::Unavailable)?;
            let (p, i) = match reply {
                PanelReply::Power(p) => {
                    power_now = Some(p);
                    (Some(p), None)
                }
                PanelReply::Input(i) => {
                    input_now = Some(i.name().to_owned());
                    (None, Some(i.name().to_owned()))
                }
                _ => (None, None),
            };
            let now = self.clock.now();
            let lesson = self.current_lesson_id();
            let body = WhiteboardBody {
                event: if p.is_some() {
                    WhiteboardEvent::Power
                } else {
                    WhiteboardEvent::Input
                },
                power: p,
                input: i.clone(),
                source,
                by: actor.map(|a| a.id.clone()),
                lesson_id: lesson,
            };
            let out = OutboxRecord::new(&body, now.fixed_offset(), self.clock.synced());
            let r = self
                .store
                .record_whiteboard(
                    p,
                    i,
                    source.as_str().to_owned(),
                    actor.map(|a| a.id.clone()),
                    out,
                )
                .await;
            self.stored("recording a whiteboard change", r)?;
        }
        let reply = Reply::Whiteboard {
            power: power_now,
            input: input_now,
        };
        if let Some(a) = actor {
            let audit = self.audit(a, "whiteboard", "whiteboard", &reply);
            let r = self.store.audit(audit).await;
            self.stored("writing the audit log", r)?;
        }
        Ok(reply)
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
        match self
            .whiteboard(Some(want), None, WhiteboardSource::Schedule, None)
            .await
        {
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

    /// Self-test of a device other than the flat panel: the siren and the status LED are
    /// switched on for 300 ms and off again (the siren not while an alarm sounds); every
    /// other device reports its live health as its driver thread last saw it (the readers,
    /// sensors and the camera are polled continuously, so that is a fresh test).
    pub(super) async fn device_self_test(
        &mut self,
        status: &ketang_web::HardwareStatus,
    ) -> Result<Reply, ActionError> {
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
                    return Err(ActionError::Conflict(
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
        Ok(Reply::SelfTest {
            ok: now.state == crate::devices::DeviceState::Ok.as_str(),
            detail: format!(
                "{what}{}{}",
                now.state,
                now.detail.map(|d| format!(" · {d}")).unwrap_or_default()
            ),
            device: now.name,
            ms,
        })
    }

    /// A device's self-test, for the technician page. The whiteboard is asked for its power
    /// and input (a real exchange with the panel, or its simulated twin); every other device
    /// gets [`Self::device_self_test`].
    pub(super) async fn self_test(
        &mut self,
        actor: &Actor,
        device: &str,
    ) -> Result<Reply, ActionError> {
        use ketang_drivers::panel::{Reply as PanelReply, Request};
        let Some(status) = self.hw.statuses().into_iter().find(|d| d.name == device) else {
            return Err(ActionError::NotFound(format!("device {device:?}")));
        };
        if status.kind != "whiteboard" {
            let answer = self.device_self_test(&status).await?;
            let audit = self.audit(actor, "hardware.self_test", device, &answer);
            let r = self.store.audit(audit).await;
            self.stored("writing the audit log", r)?;
            return Ok(answer);
        }
        let Some(wb) = self.whiteboard.clone() else {
            return Err(ActionError::NotFound("a whiteboard".to_owned()));
        };
        let started = std::time::Instant::now();
        let result = async {
            let p = wb.request(Request::GetPower).await?;
            let i = wb.request(Request::GetInput).await?;
            Ok::<_, String>((p, i))
        }
        .await;
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (ok, detail) = match result {
            Ok((PanelReply::Power(p), PanelReply::Input(i))) => (
                true,
                format!("{} · {}", if p { "on" } else { "standby" }, i.name()),
            ),
            Ok(other) => (false, format!("unexpected answers {other:?}")),
            Err(e) => (false, e),
        };
        let answer = Reply::SelfTest {
            device: device.to_owned(),
            ok,
            ms,
            detail,
        };
        let audit = self.audit(actor, "hardware.self_test", device, &answer);
        let r = self.store.audit(audit).await;
        self.stored("writing the audit log", r)?;
        Ok(answer)
    }
}
