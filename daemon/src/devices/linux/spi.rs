//! SPI devices through spidev (`/dev/spidevB.C`, linux-embedded-hal `SpidevDevice`): the
//! MFRC522 card reader and the door's e-paper panel.
//!
//! * **MFRC522**: one thread per reader polls ten times a second (each empty poll is about
//!   ten register accesses and at most 5 ms of the chip's timer, so the bus stays free);
//!   a card read is one `CardTap`, the same event a keyboard-wedge reader or the simulator
//!   produces. A reader that cannot be opened or found shows `absent` naming the device
//!   node and config key; one that stops answering shows `fault` and is re-initialised;
//!   both are retried every 5 s.
//! * **E-paper**: refreshing a panel takes seconds, so the classroom hands the newest
//!   frame to a panel thread ([`PanelHandle::show`]); a newer frame replaces one not yet
//!   shown. A failed refresh shows `fault` with the reason and is retried after 60 s
//!   unless a newer frame comes first.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use embedded_hal::digital::OutputPin as _;
use ketang_drivers::epaper::{EpdModel, show};
use ketang_drivers::mfrc522::Mfrc522;
use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
use linux_embedded_hal::{CdevPin, Delay, SpidevDevice};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::GpioLine;
use crate::devices::DeviceState;
use crate::devices::{Hardware, HwEvent, Session};

const POLL_EVERY: Duration = Duration::from_millis(100);
const RETRY_EVERY: Duration = Duration::from_secs(5);
const PANEL_RETRY: Duration = Duration::from_secs(60);
/// A full refresh of the largest panel takes about 5 s; BUSY longer than this is a fault.
const BUSY_TIMEOUT_MS: u32 = 20_000;

fn open_spi(path: &Path, hz: u32, key: &str) -> Result<SpidevDevice, String> {
    let mut dev = SpidevDevice::open(path)
        .map_err(|e| format!("cannot open {} ({key}): {e}", path.display()))?;
    let opts = SpidevOptions::new()
        .bits_per_word(8)
        .max_speed_hz(hz)
        .mode(SpiModeFlags::SPI_MODE_0)
        .build();
    dev.0
        .configure(&opts)
        .map_err(|e| format!("cannot configure {} ({key}): {e}", path.display()))?;
    Ok(dev)
}

/// Starts the polling thread of MFRC522 reader `name` on `spi`.
pub(crate) fn start_mfrc522(
    name: String,
    spi: PathBuf,
    reset: Option<GpioLine>,
    hw: Arc<Hardware>,
    events: mpsc::Sender<HwEvent>,
    stop: CancellationToken,
) {
    crate::devices::spawn("ketang-mfrc522", "a card reader", move || {
        run_mfrc522(&name, &spi, reset.as_ref(), &hw, &events, &stop);
    });
}

fn run_mfrc522(
    name: &str,
    spi: &Path,
    reset: Option<&GpioLine>,
    hw: &Hardware,
    events: &mpsc::Sender<HwEvent>,
    stop: &CancellationToken,
) {
    // Held for the thread's life: NRSTPD high keeps the chip out of hard power-down.
    let mut reset_pin: Option<CdevPin> = None;
    crate::devices::supervise(hw, name, RETRY_EVERY, stop, || {
        mfrc522_session(name, spi, reset, &mut reset_pin, hw, events, stop)
    });
}

/// One session with the reader: reset it (once), open and initialise it, then poll until
/// three polls in a row fail (`Fault`, re-initialised) or the daemon stops.
fn mfrc522_session(
    name: &str,
    spi: &Path,
    reset: Option<&GpioLine>,
    reset_pin: &mut Option<CdevPin>,
    hw: &Hardware,
    events: &mpsc::Sender<HwEvent>,
    stop: &CancellationToken,
) -> Session {
    const KEY: &str = "hardware.card_readers spi";
    let mut delay = Delay;
    if let Some(l) = reset
        && reset_pin.is_none()
    {
        let mut p = crate::devices::linux::gpio::request(l, true).map_err(|e| {
            (
                DeviceState::Absent,
                format!("{e} (hardware.card_readers reset_line)"),
            )
        })?;
        let _ = p.set_low();
        std::thread::sleep(Duration::from_millis(2));
        let _ = p.set_high();
        std::thread::sleep(Duration::from_millis(50));
        *reset_pin = Some(p);
    }
    let dev = open_spi(spi, 1_000_000, KEY).map_err(|e| (DeviceState::Absent, e))?;
    let mut reader = Mfrc522::new(dev);
    let v = reader.init(&mut delay).map_err(|e| {
        (
            DeviceState::Absent,
            format!("{} ({KEY}): {e}", spi.display()),
        )
    })?;
    hw.set_state(
        name,
        DeviceState::Ok,
        Some(format!("MFRC522 version {v:#04x} on {}", spi.display())),
    );
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        match reader.poll(&mut delay) {
            Ok(Some(uid)) => {
                failures = 0;
                let ev = HwEvent::CardTap {
                    reader: name.to_owned(),
                    uid,
                };
                if events.blocking_send(ev).is_err() {
                    return Ok(());
                }
            }
            Ok(None) => failures = 0,
            Err(
                ketang_drivers::mfrc522::Mfrc522Error::Receive(_)
                | ketang_drivers::mfrc522::Mfrc522Error::Frame(_)
                | ketang_drivers::mfrc522::Mfrc522Error::Collision,
            ) => {
                // A card moved away mid-read, or two at once: not a reader fault. The
                // UID is never logged.
                tracing::debug!(device = name, "A card read was incomplete; polling on.");
            }
            Err(e) => {
                failures += 1;
                if failures >= 3 {
                    return Err((
                        DeviceState::Fault,
                        format!("{} ({KEY}): {e}; re-initialising", spi.display()),
                    ));
                }
            }
        }
        std::thread::sleep(POLL_EVERY);
    }
    Ok(())
}

/// Hands frames to the e-paper panel's thread.
#[derive(Debug, Clone)]
pub(crate) struct PanelHandle {
    slot: Arc<(Mutex<Option<Vec<u8>>>, Condvar)>,
}

impl PanelHandle {
    /// Queues `ink` (the sign's framebuffer) for the panel, replacing a frame not yet shown.
    pub(crate) fn show(&self, ink: Vec<u8>) {
        let (m, cv) = &*self.slot;
        *m.lock().unwrap_or_else(PoisonError::into_inner) = Some(ink);
        cv.notify_one();
    }
}

/// The lines and bus of a Waveshare panel.
#[derive(Debug, Clone)]
pub(crate) struct PanelWiring {
    pub(crate) spi: PathBuf,
    pub(crate) model: EpdModel,
    pub(crate) dc: GpioLine,
    pub(crate) rst: GpioLine,
    pub(crate) busy: GpioLine,
}

/// Starts the panel thread of e-paper device `name`.
pub(crate) fn start_panel(
    name: String,
    wiring: PanelWiring,
    hw: Arc<Hardware>,
    stop: CancellationToken,
) -> PanelHandle {
    let handle = PanelHandle {
        slot: Arc::new((Mutex::new(None), Condvar::new())),
    };
    let slot = handle.slot.clone();
    crate::devices::spawn("ketang-epaper", "the e-paper panel", move || {
        run_panel(&name, &wiring, &slot, &hw, &stop);
    });
    handle
}

struct Lines {
    spi: SpidevDevice,
    dc: CdevPin,
    rst: CdevPin,
    busy: CdevPin,
}

fn open_panel(w: &PanelWiring) -> Result<Lines, String> {
    let line = |l: &GpioLine, output: bool, key: &str| {
        crate::devices::linux::gpio::request(l, output)
            .map_err(|e| format!("{e} (hardware.epaper.{key})"))
    };
    Ok(Lines {
        spi: open_spi(&w.spi, 4_000_000, "hardware.epaper.spi")?,
        dc: line(&w.dc, true, "dc_line")?,
        rst: line(&w.rst, true, "rst_line")?,
        busy: line(&w.busy, false, "busy_line")?,
    })
}

fn run_panel(
    name: &str,
    w: &PanelWiring,
    slot: &(Mutex<Option<Vec<u8>>>, Condvar),
    hw: &Hardware,
    stop: &CancellationToken,
) {
    let (m, cv) = slot;
    let (width, height) = w.model.size();
    let mut lines: Option<Lines> = None;
    let mut pending: Option<Vec<u8>> = None;
    let mut refreshes = 0u64;
    let mut delay = Delay;
    hw.set_state(
        name,
        DeviceState::Starting,
        Some("waiting for the first frame".into()),
    );
    while !stop.is_cancelled() {
        {
            let mut g = m.lock().unwrap_or_else(PoisonError::into_inner);
            let wait = if pending.is_some() {
                PANEL_RETRY
            } else {
                Duration::from_secs(1)
            };
            if g.is_none() {
                g = cv
                    .wait_timeout(g, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if let Some(f) = g.take() {
                pending = Some(f);
            } else if pending.is_none() {
                continue;
            }
        }
        let Some(frame) = pending.as_ref() else {
            continue;
        };
        if lines.is_none() {
            match open_panel(w) {
                Ok(l) => lines = Some(l),
                Err(e) => {
                    tracing::warn!(device = name, error = %e, "E-paper panel unavailable; retrying in 60 s.");
                    hw.set_state(name, DeviceState::Absent, Some(e));
                    continue;
                }
            }
        }
        let Some(l) = lines.as_mut() else { continue };
        let mut scratch = vec![0u8; frame.len()];
        match show(
            w.model,
            &mut l.spi,
            &mut l.busy,
            &mut l.dc,
            &mut l.rst,
            &mut delay,
            frame,
            &mut scratch,
            BUSY_TIMEOUT_MS,
        ) {
            Ok(()) => {
                refreshes += 1;
                pending = None;
                hw.set_state(
                    name,
                    DeviceState::Ok,
                    Some(format!("{width}×{height} · refreshed {refreshes}×")),
                );
            }
            Err(e) => {
                let msg = format!("{} (hardware.epaper): {e}", w.spi.display());
                tracing::warn!(device = name, error = %msg, "E-paper refresh failed; retrying in 60 s.");
                hw.set_state(name, DeviceState::Fault, Some(msg));
                lines = None;
            }
        }
    }
}
