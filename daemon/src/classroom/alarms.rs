//! Alarms: the physical path (siren, takeover) first, then the store; alarms kept in memory
//! while the disk is full; clearing by staff.

use ketang_sync::{AlarmBody, AlarmRecord, OutboxRecord, Stream};
use ketang_web::Actor;

use crate::config::DeviceKind;

use super::ActionError;
use super::actions::AuditDetail;
use super::{AlarmReply, Reply};
use super::{Classroom, bump};

impl Classroom {
    /// Raises an alarm (the button, or the UI with `by`): the siren first, then the record
    /// in the highest lane. A second real alarm while one is active raises nothing new; a
    /// real alarm during a drill is raised.
    pub(crate) async fn raise_alarm(
        &mut self,
        source: String,
        drill: bool,
        by: Option<&ketang_web::Actor>,
    ) -> Result<Reply, ActionError> {
        match self.store.active_alarms().await {
            Ok(active) => {
                if let Some(a) = active.iter().find(|a| a.drill == drill) {
                    tracing::warn!(source = %source, drill, "Alarm raised again; it is already active.");
                    return Ok(Reply::Alarm(AlarmReply {
                        alarm_id: a.id.clone(),
                        state: "already_active",
                        drill: Some(drill),
                        siren: None,
                        stored: None,
                        sent_direct: None,
                    }));
                }
            }
            // Design: a failing read must not stop an alarm; try to raise it anyway.
            Err(e) => {
                tracing::error!(error = %e, "Reading active alarms failed; raising the alarm anyway.")
            }
        }
        let at = self.clock.now_fixed();
        let synced = self.clock.synced();
        let id = uuid::Uuid::new_v4().to_string();
        // The siren goes first: it must not wait for the disk.
        self.hw.set_output(DeviceKind::Siren, true);
        bump(&self.counters.alarms);
        // Then the other boards and the duty room, over the school LAN: not waiting for
        // the disk or the region either.
        self.announced.push(ketang_sync::SchoolAlarm {
            alarm_id: id.clone(),
            drill,
            source: source.clone(),
            raised_at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        });
        self.announce();
        let alarm = AlarmRecord {
            id: id.clone(),
            source: source.clone(),
            drill,
            raised_at: at,
            clock_synced: synced,
        };
        let body = AlarmBody::Raised {
            alarm_id: id.clone(),
            source: source.clone(),
            drill,
            raised_by: by.map(|a| a.id.clone()),
        };
        let out = OutboxRecord::new(&body, at, synced);
        let (alarm_kept, out_direct) = (alarm.clone(), out.clone());
        let mut result = self.store.raise_alarm(alarm.clone(), out.clone()).await;
        if matches!(result, Err(ketang_sync::Error::DiskFull { .. })) {
            // Design: an alarm must not be lost to a full disk. Evict all evictable detail
            // (telemetry, behaviour; reported on the dropped stream) and try once more.
            tracing::error!(
                "Disk full while recording an alarm; evicting telemetry and behaviour detail to make room."
            );
            let (now, synced) = (self.clock.now_fixed(), self.clock.synced());
            if let Err(e) = self.store.make_room(now, synced).await {
                tracing::error!(error = %e, "Making room failed.");
            }
            result = self.store.raise_alarm(alarm, out).await;
        }
        match result {
            Ok(seq) => {
                self.store_health.ok();
                tracing::warn!(source = %source, drill, seq, "Emergency alarm raised.");
                self.sms_fallback(&id, Some(seq), drill, at);
                Ok(Reply::Alarm(AlarmReply {
                    alarm_id: id,
                    state: "raised",
                    drill: Some(drill),
                    siren: None,
                    stored: None,
                    sent_direct: None,
                }))
            }
            Err(e @ ketang_sync::Error::DiskFull { .. }) => {
                // Design: the region must still hear of it. Publish it directly (seq 0,
                // docs/mqtt.md "Alarms on a full disk") and keep it in memory until it can
                // be stored; the siren is already on.
                self.store_health.failed("recording an alarm", &e);
                let sent = self.urgent.as_ref().is_some_and(|u| {
                    match ketang_sync::unsequenced_envelope(&self.identity, &out_direct) {
                        Ok(env) => u.publish(Stream::Alarm, env),
                        Err(err) => {
                            tracing::error!(error = %err, "The alarm's direct envelope could not be made.");
                            false
                        }
                    }
                });
                tracing::error!(source = %source, drill, sent_direct = sent, "Emergency alarm raised on a full disk: published directly, stored when there is room.");
                self.unstored_alarms.push((alarm_kept, out_direct));
                self.sms_fallback(&id, None, drill, at);
                Ok(Reply::Alarm(AlarmReply {
                    alarm_id: id,
                    state: "raised",
                    drill: Some(drill),
                    siren: None,
                    stored: Some(false),
                    sent_direct: Some(sent),
                }))
            }
            Err(e) => {
                self.store_health.failed("recording an alarm", &e);
                Err(ActionError::Internal(format!(
                    "the siren is on but the alarm could not be stored: {e}"
                )))
            }
        }
    }

    pub(super) async fn clear_alarm(
        &mut self,
        actor: &Actor,
        id: String,
    ) -> Result<Reply, ActionError> {
        let r = self.store.active_alarms().await;
        let active = self.stored("reading alarms", r)?;
        let Some(alarm) = active.iter().find(|a| a.id == id) else {
            return Err(ActionError::NotFound(format!("active alarm {id:?}")));
        };
        let audit = self.audit(
            actor,
            "alarm.clear",
            &id,
            &AuditDetail::Alarm { drill: alarm.drill },
        );
        let body = AlarmBody::Cleared {
            alarm_id: id.clone(),
            source: alarm.source.clone(),
            drill: alarm.drill,
            cleared_by: actor.id.clone(),
        };
        let out = OutboxRecord::new(&body, self.clock.now_fixed(), self.clock.synced());
        let r = self.store.clear_alarm(id.clone(), audit, out).await;
        match self.stored("clearing an alarm", r)? {
            None => Err(ActionError::NotFound(format!("active alarm {id:?}"))),
            Some((remaining, seq)) => {
                if !remaining {
                    self.hw.set_output(DeviceKind::Siren, false);
                }
                self.announced.retain(|a| a.alarm_id != id);
                self.announce();
                tracing::warn!(seq, drill = alarm.drill, "Alarm cleared.");
                Ok(Reply::Alarm(AlarmReply {
                    alarm_id: id,
                    state: "cleared",
                    drill: None,
                    siren: Some(remaining),
                    stored: None,
                    sent_direct: None,
                }))
            }
        }
    }

    /// Stores the alarms raised while the disk was full, as soon as there is room (each
    /// tick; the outbox draining to the broker frees pages).
    pub(super) async fn store_unstored_alarms(&mut self) {
        while let Some((alarm, out)) = self.unstored_alarms.first().cloned() {
            match self.store.raise_alarm(alarm, out).await {
                Ok(seq) => {
                    self.unstored_alarms.remove(0);
                    self.store_health.ok();
                    tracing::warn!(seq, "An alarm raised on a full disk is stored now.");
                    self.changed();
                }
                Err(_) => return,
            }
        }
    }
}

impl Classroom {
    /// Announces this board's alarms on the school path (replacing its previous state).
    fn announce(&self) {
        let Some(link) = &self.alarm_path.school else {
            return;
        };
        link.announce(ketang_sync::SchoolAlarmState {
            v: 1,
            school_id: self.identity.school_id.clone(),
            device_id: self.identity.device_id.clone(),
            classroom_id: self.identity.classroom_id.clone(),
            class_name: self.class_name.chars().take(64).collect(),
            role: self
                .alarm_path
                .role
                .unwrap_or(ketang_sync::SchoolRole::Classroom),
            alarms: self.announced.clone(),
            at: self
                .clock
                .now_fixed()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        });
    }

    /// At start: the active alarms from the store are this board's state on the school
    /// path (an alarm survives a restart there as it does on the board).
    pub(super) async fn announce_loaded(&mut self) {
        if self.alarm_path.school.is_none() {
            return;
        }
        match self.store.active_alarms().await {
            Ok(active) => {
                self.announced = active
                    .into_iter()
                    .map(|a| ketang_sync::SchoolAlarm {
                        alarm_id: a.id,
                        drill: a.drill,
                        source: a.source,
                        raised_at: a
                            .raised_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
                    })
                    .collect();
            }
            Err(e) => {
                tracing::error!(error = %e, "Reading active alarms for the school path failed.")
            }
        }
        self.announce();
    }

    /// The last fallback: after `alarm.sms_after_s`, if the alarm is still active and
    /// neither the region (its record left the outbox on PUBACK) nor the school path (the
    /// school broker sent this board's state back with it) has it, text the configured
    /// numbers through the modem. Never delays the siren or the screens.
    fn sms_fallback(
        &self,
        id: &str,
        seq: Option<u64>,
        drill: bool,
        at: chrono::DateTime<chrono::FixedOffset>,
    ) {
        let cfg = &self.alarm_path.config;
        if cfg.sms_numbers.is_empty() || (drill && !cfg.sms_on_drill) {
            return;
        }
        let (numbers, after) = (cfg.sms_numbers.clone(), cfg.sms_after);
        let (store, school, state) = (
            self.store.clone(),
            self.alarm_path.school.clone(),
            self.alarm_path.sms.clone(),
        );
        let id = id.to_owned();
        let text = format!(
            "{}{}（{}，学校 {}）{} 一键报警。区域平台和校内网络均未确认收到，请立即处置。",
            if drill {
                "【演练】"
            } else {
                "【紧急报警】"
            },
            self.class_name,
            self.identity.classroom_id,
            self.identity.school_id,
            at.format("%m-%d %H:%M:%S"),
        );
        let clock = self.clock.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            match store.active_alarms().await {
                Ok(active) if !active.iter().any(|a| a.id == id) => return,
                _ => {}
            }
            let region = match seq {
                Some(seq) => matches!(store.outbox_has(seq).await, Ok(false)),
                None => false,
            };
            let school = school.as_ref().is_some_and(|s| s.delivered(&id));
            if region || school {
                tracing::info!(region, school, "Alarm acknowledged in time; no SMS.");
                return;
            }
            let outcome = crate::system::sms::send_all(&numbers, &text).await;
            let now = clock
                .now_fixed()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
            crate::system::sms::record(&state, &now, &outcome);
        });
    }
}
