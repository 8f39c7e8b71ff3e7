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
    /// Remote commands go to the classroom actor, like a teacher's.
    pub(crate) commands: tokio::sync::mpsc::Sender<crate::classroom::Cmd>,
    /// `system.update` hands a bundle to the installer.
    pub(crate) updater: crate::update::Updater,
    pub(crate) stop: tokio_util::sync::CancellationToken,
}

/// The remote commands this version executes (`docs/mqtt.md`).
pub(crate) const COMMANDS: [&str; 3] = ["whiteboard.power", "whiteboard.input", "system.update"];

/// `system.update`'s arguments: where the signed bundle is and its SHA-256.
fn update_args(cmd: &Command) -> Result<(String, String), Vec<String>> {
    let args = cmd.args.as_object().cloned().unwrap_or_default();
    let mut problems: Vec<String> = args
        .keys()
        .filter(|k| k.as_str() != "url" && k.as_str() != "sha256")
        .map(|k| format!("system.update: unknown argument {k:?}"))
        .collect();
    let url = match args.get("url").and_then(serde_json::Value::as_str) {
        Some(u) => match url::Url::parse(u) {
            Ok(p) if (p.scheme() == "https" || p.scheme() == "http") && p.host().is_some() => {
                Some(u.to_owned())
            }
            _ => {
                problems.push("system.update: \"url\" must be an http(s) URL".to_owned());
                None
            }
        },
        None => {
            problems.push("system.update: missing argument \"url\" (a string)".to_owned());
            None
        }
    };
    let sha = match args.get("sha256").and_then(serde_json::Value::as_str) {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(h.to_ascii_lowercase())
        }
        _ => {
            problems.push(
                "system.update: \"sha256\" must be the bundle's SHA-256 as 64 hex digits"
                    .to_owned(),
            );
            None
        }
    };
    match (url, sha) {
        (Some(u), Some(h)) if problems.is_empty() => Ok((u, h)),
        _ => Err(problems),
    }
}

/// The action a remote command asks for, or why it is refused.
fn action_of(cmd: &Command) -> Result<ketang_web::Action, Vec<String>> {
    let args = cmd.args.as_object().cloned().unwrap_or_default();
    let only = |key: &str| -> Result<serde_json::Value, Vec<String>> {
        let extra: Vec<String> = args
            .keys()
            .filter(|k| k.as_str() != key)
            .map(|k| format!("{}: unknown argument {k:?}", cmd.name))
            .collect();
        if !extra.is_empty() {
            return Err(extra);
        }
        args.get(key)
            .cloned()
            .ok_or_else(|| vec![format!("{}: missing argument {key:?}", cmd.name)])
    };
    match cmd.name.as_str() {
        "whiteboard.power" => match only("on")? {
            serde_json::Value::Bool(on) => Ok(ketang_web::Action::Whiteboard {
                power: Some(on),
                input: None,
            }),
            v => Err(vec![format!(
                "whiteboard.power: \"on\" must be true or false, not {v}"
            )]),
        },
        "whiteboard.input" => match only("input")? {
            serde_json::Value::String(i) => Ok(ketang_web::Action::Whiteboard {
                power: None,
                input: Some(i),
            }),
            v => Err(vec![format!(
                "whiteboard.input: \"input\" must be a string, not {v}"
            )]),
        },
        other => Err(vec![format!(
            "unknown command {other:?}; this version executes {}",
            COMMANDS.join(", ")
        )]),
    }
}

impl CommandHandler for SyncHooks {
    fn now(&self) -> (DateTime<FixedOffset>, bool) {
        (self.clock.now_fixed(), self.clock.synced())
    }

    async fn command(&self, cmd: Command) -> Result<(), Vec<String>> {
        if cmd.name == "system.update" {
            let (url, sha256) = update_args(&cmd)?;
            return self
                .updater
                .start_download(url, sha256, self.stop.clone())
                .map_err(|e| vec![format!("system.update: {e}")]);
        }
        let action = action_of(&cmd)?;
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

    fn cmd(name: &str, args: serde_json::Value) -> Command {
        Command {
            name: name.to_owned(),
            args,
        }
    }

    #[test]
    fn whiteboard_commands_become_actions_and_bad_ones_say_why() {
        assert_eq!(
            action_of(&cmd("whiteboard.power", serde_json::json!({"on": true}))).unwrap(),
            ketang_web::Action::Whiteboard {
                power: Some(true),
                input: None
            }
        );
        let e = action_of(&cmd(
            "whiteboard.input",
            serde_json::json!({"input": "hdmi1", "x": 1}),
        ))
        .unwrap_err();
        assert!(e[0].contains("unknown argument \"x\""), "{e:?}");
        let e = action_of(&cmd("whiteboard.power", serde_json::json!({}))).unwrap_err();
        assert!(e[0].contains("missing argument \"on\""), "{e:?}");
        let e = action_of(&cmd("reboot", serde_json::json!({}))).unwrap_err();
        assert!(e[0].contains("whiteboard.power, whiteboard.input"), "{e:?}");
    }
}
