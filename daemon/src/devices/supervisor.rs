//! The loop every device thread runs: one session with the device at a time; when a
//! session ends with a problem, the registry shows it (the log says it once per distinct
//! problem), and after the device's retry time, cut short by shutdown, the next session
//! starts. A session returns `Ok(())` only when it should not be retried: the daemon is
//! stopping, or nobody listens to the device any more.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{DeviceState, Hardware};

/// How a session with a device ended: `Err((state, why))` to show and retry.
pub(crate) type Session = Result<(), (DeviceState, String)>;

/// Runs sessions of `device` until `stop` or a session's `Ok(())`.
pub(crate) fn supervise(
    hw: &Hardware,
    device: &str,
    retry: Duration,
    stop: &CancellationToken,
    mut session: impl FnMut() -> Session,
) {
    let mut last = String::new();
    while !stop.is_cancelled() {
        let Err((state, why)) = session() else {
            return;
        };
        if stop.is_cancelled() {
            return;
        }
        // A device that worked since its last problem logs the next one again.
        if hw.state(device) == Some(DeviceState::Ok) {
            last.clear();
        }
        if why != last {
            tracing::warn!(
                device,
                state = state.as_str(),
                error = %why,
                retry_s = retry.as_secs_f32(),
                "Device unavailable; retrying."
            );
            last.clone_from(&why);
        }
        hw.set_state(device, state, Some(why));
        wait(retry, stop);
    }
}

/// Sleeps `d`, or less if `stop` comes first.
fn wait(d: Duration, stop: &CancellationToken) {
    let until = Instant::now() + d;
    while !stop.is_cancelled() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HardwareConfig;

    #[test]
    fn a_failing_device_is_shown_retried_and_stops_with_the_daemon() {
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let hw = Hardware::new(&HardwareConfig::all_simulated(), tx);
        let stop = CancellationToken::new();
        let mut sessions = 0;
        supervise(&hw, "door", Duration::from_millis(1), &stop, || {
            sessions += 1;
            if sessions == 3 {
                // The third session works until the daemon stops.
                hw.set_state("door", DeviceState::Ok, None);
                stop.cancel();
                return Ok(());
            }
            Err((DeviceState::Absent, format!("gone ({sessions})")))
        });
        assert_eq!(sessions, 3);
        assert_eq!(hw.state("door"), Some(DeviceState::Ok));
        let mut again = 0;
        let stop = CancellationToken::new();
        supervise(&hw, "door", Duration::from_millis(1), &stop, || {
            again += 1;
            if again == 2 {
                stop.cancel();
            }
            Err((DeviceState::Fault, "broken".into()))
        });
        assert_eq!(again, 2);
        let door = hw
            .statuses()
            .into_iter()
            .find(|d| d.name == "door")
            .unwrap();
        assert_eq!(door.state, "fault");
        assert_eq!(door.detail.as_deref(), Some("broken"));
    }
}
