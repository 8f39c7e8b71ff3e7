//! Wiring of the MQTT sync worker: settings from the config, and the daemon's side of the
//! [`CommandHandler`] (clock, timetable reload after a downlink, remote commands).

use std::sync::{Arc, RwLock};

use chrono::{DateTime, FixedOffset};
use ketang_sync::mqtt::{Command, CommandHandler, MqttSettings, TlsSettings, default_budgets};
use ketang_sync::{RemoteCommand, StoreHandle};

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
    s.proxy = cfg
        .sync
        .proxy
        .as_ref()
        .map(|p| ketang_sync::mqtt::ProxySettings {
            host: p.host.clone(),
            port: p.port,
            credentials: p
                .credentials
                .as_ref()
                .map(|c| (c.username.clone(), c.password.expose().to_owned())),
        });
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
    /// Remote commands go to the classroom actor, like a teacher's.
    pub(crate) commands: tokio::sync::mpsc::Sender<crate::classroom::Cmd>,
    /// `system.update` hands a bundle to the installer.
    pub(crate) updater: crate::system::update::Updater,
    pub(crate) stop: tokio_util::sync::CancellationToken,
    /// This board's device id (`system.factory_reset` must echo it).
    pub(crate) device_id: String,
    /// The data directory (where a factory-reset request is left for the next start).
    pub(crate) data_dir: std::path::PathBuf,
    /// Ends the daemon for systemd to start it again.
    pub(crate) restart: std::sync::Arc<tokio::sync::Notify>,
    /// The daemon (set once it exists), for the diagnostics bundle.
    pub(crate) daemon: std::sync::OnceLock<std::sync::Weak<crate::api::Daemon>>,
    /// CA for uploads (`update.ca_file`); `None`: the Web PKI.
    pub(crate) ca_file: Option<std::path::PathBuf>,
    /// The school's HTTP proxy (`sync.proxy_url`).
    pub(crate) proxy: Option<crate::config::ProxyUrl>,
}

/// Checks `system.update`'s values (the types were checked by parsing): an https URL
/// and a SHA-256 of 64 hex digits; returns the URL as parsed and the digest in lowercase.
fn check_update(url: &str, sha256: &str) -> Result<(String, String), Vec<String>> {
    let mut problems = Vec::new();
    let url = match url::Url::parse(url) {
        Ok(p) if p.scheme() == "https" && p.host().is_some() => Some(p.to_string()),
        _ => {
            problems.push("system.update: \"url\" must be an https:// URL".to_owned());
            None
        }
    };
    if !(sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit())) {
        problems.push(
            "system.update: \"sha256\" must be the bundle's SHA-256 as 64 hex digits".to_owned(),
        );
    }
    match url {
        Some(url) if problems.is_empty() => Ok((url, sha256.to_ascii_lowercase())),
        _ => Err(problems),
    }
}

impl SyncHooks {
    /// `system.factory_reset`: only with the board's own device id echoed in `confirm`.
    /// Leaves a request in the data directory and restarts; the next start removes the
    /// school's data before it opens the store (`crate::system::reset::pending`), as
    /// `ketangd factory-reset` does. The ack (sent before the restart) is the cloud's record.
    fn factory_reset(&self, confirm: &str) -> Result<(), Vec<String>> {
        if confirm != self.device_id {
            return Err(vec![
                "system.factory_reset: \"confirm\" must be this board's device id; nothing was removed"
                    .to_owned(),
            ]);
        }
        crate::system::reset::request(&self.data_dir)
            .map_err(|e| vec![format!("system.factory_reset: {e:#}")])?;
        tracing::warn!(
            "Factory reset on the cloud's command: restarting to remove the school's data."
        );
        let restart = self.restart.clone();
        tokio::spawn(async move {
            // The ack goes out first.
            tokio::time::sleep(crate::system::power::REBOOT_AFTER).await;
            restart.notify_one();
        });
        Ok(())
    }

    /// `system.diagnostics`: the bundle, PUT to an https URL; acked when the server took it
    /// (2xx), refused naming why otherwise.
    async fn upload_diagnostics(&self, url: &str) -> Result<(), Vec<String>> {
        let fail = |e: String| vec![format!("system.diagnostics: {e}")];
        let url = match url::Url::parse(url) {
            Ok(u) if u.scheme() == "https" && u.host().is_some() => u.to_string(),
            _ => return Err(fail("\"url\" must be an https:// URL".into())),
        };
        let daemon = self
            .daemon
            .get()
            .and_then(std::sync::Weak::upgrade)
            .ok_or_else(|| fail("the board is still starting".into()))?;
        let bundle = daemon
            .diagnostics()
            .await
            .map_err(|e| fail(format!("making the bundle: {e:?}")))?;
        let body = serde_json::to_vec(&bundle).map_err(|e| fail(e.to_string()))?;
        let agent = crate::system::download::agent(self.ca_file.as_deref(), self.proxy.as_ref())
            .map_err(fail)?;
        let size = body.len();
        let host = url::Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let answer = tokio::task::spawn_blocking(move || {
            agent
                .put(&url)
                .content_type("application/json")
                .send(&body[..])
                .map(|r| r.status().as_u16())
        })
        .await
        .map_err(|e| fail(e.to_string()))?;
        match answer {
            Ok(code) if (200..300).contains(&code) => {
                tracing::info!(%host, bytes = size, "Diagnostics bundle uploaded.");
                Ok(())
            }
            Ok(code) => Err(fail(format!("{host} answered HTTP {code}"))),
            Err(e) => Err(fail(format!("uploading to {host}: {e}"))),
        }
    }

    /// `system.reboot`: acked once logind agrees, audited, then the board goes down
    /// [`REBOOT_AFTER`](crate::system::power::REBOOT_AFTER) later (the ack goes out first).
    async fn reboot(&self) -> Result<(), Vec<String>> {
        let conn = crate::system::power::may_reboot()
            .await
            .map_err(|e| vec![format!("system.reboot: {e}")])?;
        let (at, clock_synced) = (self.clock.now_fixed(), self.clock.synced());
        let audit = ketang_sync::Audit {
            actor: "cloud".into(),
            role: "cloud".into(),
            action: "system.reboot".into(),
            target: "board".into(),
            detail: serde_json::json!({"after_s": crate::system::power::REBOOT_AFTER.as_secs()}),
            at,
            clock_synced,
        };
        self.store.audit(audit).await.map_err(|e| {
            vec![format!(
                "system.reboot: not rebooting: the audit row could not be written: {e}"
            )]
        })?;
        tracing::warn!(
            after_s = crate::system::power::REBOOT_AFTER.as_secs(),
            "Rebooting on the cloud's command."
        );
        tokio::spawn(async move {
            tokio::time::sleep(crate::system::power::REBOOT_AFTER).await;
            if let Err(e) = crate::system::power::reboot(&conn).await {
                tracing::error!(error = %e, "The reboot the cloud asked for failed.");
            }
        });
        Ok(())
    }
}

impl CommandHandler for SyncHooks {
    fn now(&self) -> (DateTime<FixedOffset>, bool) {
        (self.clock.now_fixed(), self.clock.synced())
    }

    async fn command(&self, cmd: Command) -> Result<(), Vec<String>> {
        let action = match RemoteCommand::parse(&cmd.name, &cmd.args).map_err(|e| vec![e])? {
            RemoteCommand::SystemUpdate { url, sha256 } => {
                let (url, sha256) = check_update(&url, &sha256)?;
                return self
                    .updater
                    .start_download(url, sha256, self.stop.clone())
                    .map_err(|e| vec![format!("system.update: {e}")]);
            }
            RemoteCommand::SystemReboot => return self.reboot().await,
            RemoteCommand::SystemFactoryReset { confirm } => return self.factory_reset(&confirm),
            RemoteCommand::SystemDiagnostics { url } => return self.upload_diagnostics(&url).await,
            RemoteCommand::WhiteboardPower { on } => ketang_web::Action::Whiteboard {
                power: Some(on),
                input: None,
            },
            RemoteCommand::WhiteboardInput { input } => ketang_web::Action::Whiteboard {
                power: None,
                input: Some(input),
            },
        };
        let actor = ketang_web::Actor {
            id: "cloud".to_owned(),
            name: "cloud".to_owned(),
            role: ketang_web::Role::Technician,
        };
        crate::classroom::send(&self.commands, actor, action)
            .await
            .map(|_| ())
            .map_err(|e| vec![format!("{}: {e}", cmd.name)])
    }

    async fn applied(&self, kind: &str) {
        if kind == "calendar" {
            match self.store.calendars().await {
                Ok(docs) => {
                    self.timetable
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .calendar
                        .set_history(&docs);
                    tracing::info!(
                        versions = docs.len(),
                        "School calendar reloaded after a downlink."
                    );
                }
                Err(e) => {
                    tracing::error!(error = %e, "Reading the school calendar failed; the previous one stays in force.")
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_needs_an_https_url_and_a_sha256_and_says_which_is_wrong() {
        let sha = "AB".repeat(32);
        assert_eq!(
            check_update("https://cdn.example.cn/k.raucb", &sha),
            Ok(("https://cdn.example.cn/k.raucb".to_owned(), "ab".repeat(32)))
        );
        for url in ["ftp://x/k.raucb", "http://cdn.example.cn/k.raucb"] {
            let e = check_update(url, &sha).unwrap_err();
            assert_eq!(e.len(), 1);
            assert!(
                e[0].contains("\"url\"") && e[0].contains("https://"),
                "{e:?}"
            );
        }
        // Globbing characters are the URL's, passed on as parsed (curl made four requests
        // of b[1-4].raucb).
        let (u, _) = check_update("https://cdn.example.cn/b[1-4].raucb", &sha).unwrap();
        assert_eq!(u, "https://cdn.example.cn/b[1-4].raucb");
        let e = check_update("https://cdn.example.cn/k.raucb", "abc").unwrap_err();
        assert!(e[0].contains("64 hex digits"), "{e:?}");
        assert_eq!(check_update("nonsense", "xyz").unwrap_err().len(), 2);
    }
}
