//! USB keyboard-wedge card readers through evdev (`/dev/input/by-id/…-event-kbd`): the
//! device is grabbed exclusively, so the card numbers it types never reach the kiosk
//! browser or any other program, and its key presses are decoded into card taps
//! (`ketang_drivers::wedge`). A reader that is unplugged or cannot be opened shows
//! `absent` with the device and config key named, and is opened again every 5 s.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ketang_drivers::wedge::{WedgeDecoder, WedgeFormat};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::devices::DeviceState;
use crate::devices::{Hardware, HwEvent, Session};

const RETRY_EVERY: Duration = Duration::from_secs(5);

/// Starts the reader thread for card reader `name` on `device`.
pub(crate) fn start(
    name: String,
    device: PathBuf,
    format: WedgeFormat,
    hw: Arc<Hardware>,
    events: mpsc::Sender<HwEvent>,
    stop: CancellationToken,
) {
    crate::devices::spawn("ketang-wedge", "a card reader", move || {
        run(&name, &device, format, &hw, &events, &stop);
    });
}

fn open(device: &Path) -> Result<evdev::Device, String> {
    let mut d = evdev::Device::open(device).map_err(|e| {
        format!(
            "cannot open {} (hardware.card_readers device): {e}",
            device.display()
        )
    })?;
    d.grab().map_err(|e| {
        format!(
            "cannot grab {} exclusively (another program holds it?): {e}",
            device.display()
        )
    })?;
    Ok(d)
}

fn run(
    name: &str,
    device: &Path,
    format: WedgeFormat,
    hw: &Hardware,
    events: &mpsc::Sender<HwEvent>,
    stop: &CancellationToken,
) {
    let t0 = Instant::now();
    crate::devices::supervise(hw, name, RETRY_EVERY, stop, || {
        session(name, device, format, t0, hw, events, stop)
    });
}

/// One session with the reader: decode what it types until it is unplugged (`Absent`) or
/// the daemon stops.
fn session(
    name: &str,
    device: &Path,
    format: WedgeFormat,
    t0: Instant,
    hw: &Hardware,
    events: &mpsc::Sender<HwEvent>,
    stop: &CancellationToken,
) -> Session {
    let mut dev = open(device).map_err(|e| (DeviceState::Absent, e))?;
    hw.set_state(name, DeviceState::Ok, dev.name().map(str::to_owned));
    let mut decoder = WedgeDecoder::new(format);
    loop {
        // Blocks until the reader types; an unplugged reader ends with an error.
        let batch: Vec<(u16, i32)> = dev
            .fetch_events()
            .map_err(|e| {
                (
                    DeviceState::Absent,
                    format!("{} stopped answering (unplugged?): {e}", device.display()),
                )
            })?
            .filter(|e| e.event_type() == evdev::EventType::KEY)
            .map(|e| (e.code(), e.value()))
            .collect();
        for (code, value) in batch {
            // 1 = press; 0 release and 2 autorepeat are not characters.
            if value != 1 {
                continue;
            }
            let now_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
            match decoder.key(code, now_ms) {
                Some(Ok(uid)) => {
                    let ev = HwEvent::CardTap {
                        reader: name.to_owned(),
                        uid,
                    };
                    if events.blocking_send(ev).is_err() {
                        return Ok(());
                    }
                }
                Some(Err(e)) => {
                    // The typed number is not logged: it identifies a student.
                    tracing::warn!(device = name, error = %e, "A card read was not understood.");
                    hw.set_state(
                        name,
                        DeviceState::Ok,
                        Some(format!("last read not understood: {e}")),
                    );
                }
                None => {}
            }
        }
        if stop.is_cancelled() {
            return Ok(());
        }
    }
}
