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
