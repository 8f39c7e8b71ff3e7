//! Wiring of the MQTT sync worker: settings from the config, and the daemon's side of the
//! [`CommandHandler`] (clock, timetable reload after a downlink, remote commands).

use std::sync::{Arc, RwLock};

use chrono::{DateTime, FixedOffset};
use ketang_sync::StoreHandle;
use ketang_sync::mqtt::{Command, CommandHandler, MqttSettings, TlsSettings, default_budgets};

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::timetable::Timetable;

/// MQTT settings, or `None` when no broker is configured (offline by design).
pub(crate) fn settings(cfg: &Config, boot_id: &str, config_hash: &str) -> Option<MqttSettings> {
    let b = cfg.sync.broker.as_ref()?;
    let mut s = MqttSettings::new(
        b.host.clone(),
        b.port,
        cfg.device.school_id.clone(),
        cfg.device.device_id.clone(),
    );
    s.tls = b.tls.then(|| TlsSettings {
        ca_file: cfg.sync.ca_file.clone(),
        client_auth: cfg
            .sync
            .client_cert
            .clone()
            .zip(cfg.sync.client_key.clone()),
    });
    s.credentials = cfg
        .sync
        .credentials
        .as_ref()
        .map(|c| (c.username.clone(), c.password.expose().to_owned()));
    s.keep_alive = cfg.sync.keep_alive;
    s.version = crate::api::VERSION.to_owned();
    s.boot_id = boot_id.to_owned();
    s.config_hash = config_hash.to_owned();
    s.max_publish_per_s = cfg.sync.max_publish_per_s;
    s.budgets = default_budgets();
    Some(s)
}

pub(crate) struct SyncHooks {
    pub(crate) clock: Clock,
    pub(crate) store: StoreHandle,
    pub(crate) timetable: Arc<RwLock<Timetable>>,
}

impl CommandHandler for SyncHooks {
    fn now(&self) -> (DateTime<FixedOffset>, bool) {
        (self.clock.now_fixed(), self.clock.synced())
    }

    async fn command(&self, cmd: Command) -> Result<(), Vec<String>> {
        // Design: no remote command is executed yet; whiteboard power/input commands arrive
        // with the whiteboard driver (issue 5). Refusing clearly beats pretending.
        Err(vec![format!(
            "unknown command {:?}: this version executes no remote commands",
            cmd.name
        )])
    }

    async fn applied(&self, kind: &str) {
        if kind == "timetable" || kind == "roster" {
            match self.store.timetable().await {
                Ok(periods) => {
                    self.timetable
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .periods = periods;
                    tracing::info!(kind, "Timetable reloaded after a downlink.");
                }
                Err(e) => {
                    tracing::error!(error = %e, "Reloading the timetable failed; the previous one stays in force.")
                }
            }
        }
    }
}
