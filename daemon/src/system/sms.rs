//! The alarm's last fallback: an SMS through the board's cellular modem, by ModemManager
//! on the system D-Bus (`docs/domain.md`, "Alarms"). Sent when neither the region nor the
//! school path has the alarm a configured time after the press.
//!
//! The calls are ModemManager's documented API: `GetManagedObjects` on
//! `/org/freedesktop/ModemManager1` to find a modem with the Messaging interface,
//! `Messaging.Create({number, text})`, `Sms.Send()`, then `Messaging.Delete` so the text
//! does not stay in the modem's storage.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

const MM: &str = "org.freedesktop.ModemManager1";
const MM_PATH: &str = "/org/freedesktop/ModemManager1";
const MESSAGING: &str = "org.freedesktop.ModemManager1.Modem.Messaging";
const SMS: &str = "org.freedesktop.ModemManager1.Sms";

type Managed = HashMap<OwnedObjectPath, HashMap<String, HashMap<String, OwnedValue>>>;

/// What the SMS fallback did last, for `/api/v1/status`.
#[derive(Debug, Default)]
pub(crate) struct SmsState {
    pub(crate) sent: u64,
    pub(crate) last: Option<String>,
}

pub(crate) type SharedSms = Arc<Mutex<SmsState>>;

/// Sends `text` to every number through the first modem that can send messages. Returns
/// how many were sent; each failure is named (without the number: it is a person's).
///
/// # Errors
/// No system bus, no ModemManager or no modem with messaging.
pub(crate) async fn send_all(
    numbers: &[String],
    text: &str,
) -> Result<(usize, Vec<String>), String> {
    let conn = zbus::Connection::system()
        .await
        .map_err(|e| format!("no system D-Bus for ModemManager: {e}"))?;
    let manager = zbus::Proxy::new(&conn, MM, MM_PATH, "org.freedesktop.DBus.ObjectManager")
        .await
        .map_err(|e| format!("ModemManager: {e}"))?;
    let objects: Managed = manager.call("GetManagedObjects", &()).await.map_err(|e| {
        format!("ModemManager is not answering (is it installed and running?): {e}")
    })?;
    let mut modems: Vec<_> = objects
        .into_iter()
        .filter(|(_, ifaces)| ifaces.contains_key(MESSAGING))
        .map(|(path, _)| path)
        .collect();
    modems.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let modem = modems
        .into_iter()
        .next()
        .ok_or("ModemManager knows no modem that can send SMS")?;
    let messaging = zbus::Proxy::new(&conn, MM, modem.clone(), MESSAGING)
        .await
        .map_err(|e| format!("modem {}: {e}", modem.as_str()))?;
    let mut sent = 0;
    let mut failures = Vec::new();
    for (i, number) in numbers.iter().enumerate() {
        match send_one(&conn, &messaging, number, text).await {
            Ok(()) => sent += 1,
            Err(e) => failures.push(format!("alarm.sms_numbers[{i}]: {e}")),
        }
    }
    Ok((sent, failures))
}

async fn send_one(
    conn: &zbus::Connection,
    messaging: &zbus::Proxy<'_>,
    number: &str,
    text: &str,
) -> Result<(), String> {
    let props: HashMap<&str, Value<'_>> =
        HashMap::from([("number", Value::from(number)), ("text", Value::from(text))]);
    let path: OwnedObjectPath = messaging
        .call("Create", &(props,))
        .await
        .map_err(|e| format!("the modem refused to create the message: {e}"))?;
    let sms = zbus::Proxy::new(conn, MM, path.clone(), SMS)
        .await
        .map_err(|e| format!("message {}: {e}", path.as_str()))?;
    let sent: Result<(), _> = sms.call("Send", &()).await;
    // The text is not left in the modem's storage, sent or not.
    let deleted: Result<(), _> = messaging.call("Delete", &(path.clone(),)).await;
    if let Err(e) = deleted {
        tracing::warn!(error = %e, "The alarm SMS could not be deleted from the modem.");
    }
    sent.map_err(|e| format!("sending failed: {e}"))
}

/// Records what happened, for the status page and the log.
pub(crate) fn record(state: &SharedSms, at: &str, outcome: &Result<(usize, Vec<String>), String>) {
    let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
    s.last = Some(match outcome {
        Ok((n, failures)) if failures.is_empty() => {
            s.sent += *n as u64;
            tracing::warn!(
                sent = n,
                "Alarm SMS sent: neither the region nor the school path had the alarm in time."
            );
            format!("{at}: sent to {n} numbers")
        }
        Ok((n, failures)) => {
            s.sent += *n as u64;
            tracing::error!(sent = n, failures = %failures.join("; "), "Alarm SMS: not every number could be texted.");
            format!("{at}: sent to {n} numbers; {}", failures.join("; "))
        }
        Err(e) => {
            tracing::error!(error = %e, "Alarm SMS could not be sent.");
            format!("{at}: not sent: {e}")
        }
    });
}
