//! `system.reboot` (the `command` downlink): the daemon has no privilege of its own, so it
//! asks systemd-logind over the system D-Bus; the image's polkit rule
//! (`image/rootfs/50-ketang.rules`) lets its user, and only it, reboot.

use std::time::Duration;

const LOGIN1: &str = "org.freedesktop.login1";
const PATH: &str = "/org/freedesktop/login1";
const MANAGER: &str = "org.freedesktop.login1.Manager";

/// How long after the command's acknowledgement the board goes down (the ack and the
/// audit row go out first; systemd then stops the daemon cleanly).
pub(crate) const REBOOT_AFTER: Duration = Duration::from_secs(3);

/// Whether this board may reboot now; the connection to use, or why not.
///
/// # Errors
/// No system bus, no logind, or logind says no (named).
pub(crate) async fn may_reboot() -> Result<zbus::Connection, String> {
    let conn = zbus::Connection::system()
        .await
        .map_err(|e| format!("no system D-Bus to ask systemd-logind: {e}"))?;
    let m = zbus::Proxy::new(&conn, LOGIN1, PATH, MANAGER)
        .await
        .map_err(|e| format!("systemd-logind: {e}"))?;
    let answer: String = m
        .call("CanReboot", &())
        .await
        .map_err(|e| format!("systemd-logind is not answering: {e}"))?;
    if answer == "yes" {
        Ok(conn)
    } else {
        Err(format!(
            "systemd-logind does not let this board's daemon reboot (CanReboot: {answer}); the Ketang image's polkit rule allows it"
        ))
    }
}

/// Reboots through logind.
///
/// # Errors
/// logind refused or did not answer (named).
pub(crate) async fn reboot(conn: &zbus::Connection) -> Result<(), String> {
    let m = zbus::Proxy::new(conn, LOGIN1, PATH, MANAGER)
        .await
        .map_err(|e| format!("systemd-logind: {e}"))?;
    m.call::<_, _, ()>("Reboot", &(false,))
        .await
        .map_err(|e| format!("systemd-logind refused to reboot: {e}"))
}
