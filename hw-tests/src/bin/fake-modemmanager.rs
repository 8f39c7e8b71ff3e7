//! A stand-in for ModemManager on a private D-Bus, for the alarm's SMS fallback test
//! (`hw-tests/school-alarm/run.sh`): it implements the calls the daemon uses
//! (`ObjectManager.GetManagedObjects`, `Modem.Messaging.Create`/`Delete`, `Sms.Send`) with
//! one modem, and appends each sent message to a file as a JSON line
//! `{"number": "...", "text": "..."}`.
//!
//!   DBUS_SYSTEM_BUS_ADDRESS=unix:path=/tmp/bus fake-modemmanager SENT.jsonl
#![allow(clippy::print_stderr, reason = "a test tool reports on stderr")]

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use zbus::object_server::ObjectServer;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

struct Messaging {
    next: Arc<AtomicU32>,
    log: PathBuf,
}

#[zbus::interface(name = "org.freedesktop.ModemManager1.Modem.Messaging")]
impl Messaging {
    async fn create(
        &self,
        props: HashMap<String, OwnedValue>,
        #[zbus(object_server)] server: &ObjectServer,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        let get = |k: &str| -> zbus::fdo::Result<String> {
            props
                .get(k)
                .and_then(|v| String::try_from(v.clone()).ok())
                .ok_or_else(|| {
                    zbus::fdo::Error::InvalidArgs(format!("{k} is missing or not a string"))
                })
        };
        let (number, text) = (get("number")?, get("text")?);
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = OwnedObjectPath::try_from(format!("/org/freedesktop/ModemManager1/SMS/{n}"))
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        server
            .at(
                &path,
                Sms {
                    number,
                    text,
                    log: self.log.clone(),
                    sent: false,
                },
            )
            .await?;
        Ok(path)
    }

    async fn delete(
        &self,
        path: OwnedObjectPath,
        #[zbus(object_server)] server: &ObjectServer,
    ) -> zbus::fdo::Result<()> {
        server.remove::<Sms, _>(&path).await?;
        Ok(())
    }

    #[zbus(property)]
    fn messages(&self) -> Vec<OwnedObjectPath> {
        Vec::new()
    }
}

struct Sms {
    number: String,
    text: String,
    log: PathBuf,
    sent: bool,
}

#[zbus::interface(name = "org.freedesktop.ModemManager1.Sms")]
impl Sms {
    async fn send(&mut self) -> zbus::fdo::Result<()> {
        let line = serde_json::json!({"number": self.number, "text": self.text}).to_string();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .and_then(|mut f| writeln!(f, "{line}"))
            .map_err(|e| zbus::fdo::Error::Failed(format!("{}: {e}", self.log.display())))?;
        self.sent = true;
        eprintln!("fake-modemmanager: sent one message");
        Ok(())
    }

    #[zbus(property)]
    fn number(&self) -> String {
        self.number.clone()
    }

    #[zbus(property)]
    fn text(&self) -> String {
        self.text.clone()
    }

    /// MMSmsState: 5 = sent, 0 = unknown.
    #[zbus(property)]
    fn state(&self) -> u32 {
        if self.sent { 5 } else { 0 }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> zbus::Result<()> {
    let log = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or_else(|| zbus::Error::Failure("usage: fake-modemmanager SENT.jsonl".into()))?;
    let messaging = Messaging {
        next: Arc::new(AtomicU32::new(0)),
        log,
    };
    let _conn = zbus::connection::Builder::system()?
        .name("org.freedesktop.ModemManager1")?
        .serve_at("/org/freedesktop/ModemManager1", zbus::fdo::ObjectManager)?
        .serve_at("/org/freedesktop/ModemManager1/Modem/0", messaging)?
        .build()
        .await?;
    eprintln!("fake-modemmanager: serving one modem");
    std::future::pending::<()>().await;
    Ok(())
}
