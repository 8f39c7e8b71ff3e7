//! A stand-in for systemd-logind on a private D-Bus, for the `system.reboot` test
//! (`daemon/tests/sync.rs`): `CanReboot` answers what it is told, `Reboot` appends a line
//! `{"reboot": true, "interactive": false}` to a file instead of rebooting.
//!
//!   DBUS_SYSTEM_BUS_ADDRESS=unix:path=/tmp/bus fake-logind CALLS.jsonl [yes|no|challenge]
#![allow(clippy::print_stderr, reason = "a test tool reports on stderr")]

use std::io::Write as _;
use std::path::PathBuf;

struct Manager {
    log: PathBuf,
    can: String,
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl Manager {
    fn can_reboot(&self) -> String {
        self.can.clone()
    }

    fn reboot(&self, interactive: bool) -> zbus::fdo::Result<()> {
        let line = serde_json::json!({"reboot": true, "interactive": interactive}).to_string();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .and_then(|mut f| writeln!(f, "{line}"))
            .map_err(|e| zbus::fdo::Error::Failed(format!("{}: {e}", self.log.display())))?;
        eprintln!("fake-logind: reboot requested");
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> zbus::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let log = args
        .next()
        .map(PathBuf::from)
        .ok_or_else(|| zbus::Error::Failure("usage: fake-logind CALLS.jsonl [yes|no]".into()))?;
    let can = args
        .next()
        .map_or_else(|| "yes".to_owned(), |a| a.to_string_lossy().into_owned());
    let _conn = zbus::connection::Builder::system()?
        .name("org.freedesktop.login1")?
        .serve_at("/org/freedesktop/login1", Manager { log, can })?
        .build()
        .await?;
    eprintln!("fake-logind: serving");
    std::future::pending::<()>().await;
    Ok(())
}
