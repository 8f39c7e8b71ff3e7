//! What the sync examples share: command-line flags and a daemon stand-in.
#![allow(dead_code, unreachable_pub)]

use chrono::{DateTime, FixedOffset};
use ketang_sync::mqtt::{Command, CommandHandler};

/// The value after flag `name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The daemon's part for the worker: the real clock, no commands.
pub struct Hooks;

impl CommandHandler for Hooks {
    fn now(&self) -> (DateTime<FixedOffset>, bool) {
        (chrono::Utc::now().fixed_offset(), true)
    }
    async fn command(&self, c: Command) -> Result<(), Vec<String>> {
        Err(vec![format!("unknown command {:?}", c.name)])
    }
    async fn applied(&self, _: &str) {}
}
