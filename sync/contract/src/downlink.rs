//! Remote commands (the `command` downlink kind): each with its typed arguments, so a
//! command is either understood whole or refused naming what was wrong.

use serde::Deserialize;

/// A remote command this version executes (`docs/mqtt.md`, "command").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteCommand {
    /// `whiteboard.power`: switch the flat panel on (`true`) or to standby (`false`).
    WhiteboardPower {
        /// On or standby.
        on: bool,
    },
    /// `whiteboard.input`: switch the flat panel's input (hdmi1, hdmi2, dp, vga, ops).
    WhiteboardInput {
        /// The input's name.
        input: String,
    },
    /// `system.update`: fetch a signed update bundle from `url` and install it if its
    /// SHA-256 matches.
    SystemUpdate {
        /// Where the bundle is (https only).
        url: String,
        /// The bundle's SHA-256, 64 hex digits.
        sha256: String,
    },
    /// `system.reboot`: restart the board (no arguments). Acked when the system has agreed
    /// to reboot; the board goes down a few seconds later, cleanly.
    SystemReboot,
    /// `system.factory_reset`: remove the school's data from the board (as `ketangd
    /// factory-reset`: the identity stays). `confirm` must echo the board's device id.
    SystemFactoryReset {
        /// The board's device id, echoed back as a confirmation.
        confirm: String,
    },
    /// `system.diagnostics`: upload the diagnostics bundle (no student data) with an HTTPS
    /// PUT to `url`.
    SystemDiagnostics {
        /// Where to put it (https only).
        url: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UrlArgs {
    url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetArgs {
    confirm: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PowerArgs {
    on: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputArgs {
    input: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateArgs {
    url: String,
    sha256: String,
}

/// `args` as the arguments of command `name`; an error names the argument.
fn args<T: serde::de::DeserializeOwned>(name: &str, args: &serde_json::Value) -> Result<T, String> {
    let args = if args.is_null() {
        serde_json::json!({})
    } else {
        args.clone()
    };
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = e.path().to_string();
        let inner = crate::bounded_serde_message(&e.inner().to_string());
        if path == "." {
            format!("{name}: {inner}")
        } else {
            crate::bounded_serde_message(&format!("{name}: argument {path:?}: {inner}"))
        }
    })
}

impl RemoteCommand {
    /// The names of the commands this version executes.
    pub const NAMES: [&'static str; 6] = [
        "whiteboard.power",
        "whiteboard.input",
        "system.update",
        "system.reboot",
        "system.factory_reset",
        "system.diagnostics",
    ];

    /// The command `name` with its `args` (a JSON object), or why it is refused: an
    /// unknown command, a missing, unknown or mistyped argument.
    ///
    /// # Errors
    /// The reason, starting with the command's name.
    pub fn parse(name: &str, a: &serde_json::Value) -> Result<Self, String> {
        match name {
            "whiteboard.power" => {
                args::<PowerArgs>(name, a).map(|x| Self::WhiteboardPower { on: x.on })
            }
            "whiteboard.input" => {
                args::<InputArgs>(name, a).map(|x| Self::WhiteboardInput { input: x.input })
            }
            "system.update" => args::<UpdateArgs>(name, a).map(|x| Self::SystemUpdate {
                url: x.url,
                sha256: x.sha256,
            }),
            "system.reboot" => args::<NoArgs>(name, a).map(|NoArgs {}| Self::SystemReboot),
            "system.factory_reset" => {
                args::<ResetArgs>(name, a).map(|x| Self::SystemFactoryReset { confirm: x.confirm })
            }
            "system.diagnostics" => {
                args::<UrlArgs>(name, a).map(|x| Self::SystemDiagnostics { url: x.url })
            }
            _ => Err(crate::bounded_serde_message(&format!(
                "unknown command {name:?}; this version executes {}",
                Self::NAMES.join(", ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commands_parse_with_their_arguments_and_bad_ones_say_why() {
        assert_eq!(
            RemoteCommand::parse("whiteboard.power", &json!({"on": true})),
            Ok(RemoteCommand::WhiteboardPower { on: true })
        );
        let e = RemoteCommand::parse("whiteboard.input", &json!({"input": "hdmi1", "x": 1}))
            .unwrap_err();
        assert!(
            e.starts_with("whiteboard.input: ") && e.contains("`x`"),
            "{e}"
        );
        let e = RemoteCommand::parse("whiteboard.power", &json!({})).unwrap_err();
        assert!(e.contains("missing field `on`"), "{e}");
        let e = RemoteCommand::parse("whiteboard.power", &json!({"on": "yes"})).unwrap_err();
        assert!(
            e.starts_with("whiteboard.power: argument \"on\": invalid type"),
            "{e}"
        );
        assert_eq!(
            RemoteCommand::parse("system.reboot", &serde_json::Value::Null),
            Ok(RemoteCommand::SystemReboot)
        );
        let e = RemoteCommand::parse("system.reboot", &json!({"now": true})).unwrap_err();
        assert!(
            e.starts_with("system.reboot: ") && e.contains("`now`"),
            "{e}"
        );
        let e = RemoteCommand::parse("reboot", &json!({})).unwrap_err();
        assert!(
            e.contains("whiteboard.power, whiteboard.input, system.update, system.reboot, system.factory_reset, system.diagnostics"),
            "{e}"
        );
    }

    #[test]
    fn refusals_quote_a_long_name_or_argument_only_briefly() {
        let long = "w".repeat(700);
        for e in [
            RemoteCommand::parse(&long, &json!({})).unwrap_err(),
            RemoteCommand::parse("whiteboard.power", &json!({long.as_str(): 1})).unwrap_err(),
            RemoteCommand::parse("whiteboard.power", &json!({"on": long})).unwrap_err(),
        ] {
            assert!(e.chars().count() < 300, "{} chars: {e}", e.chars().count());
            assert!(e.contains("(700 characters)"), "{e}");
        }
    }
}
