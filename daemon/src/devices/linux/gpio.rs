//! GPIO through the character device (`/dev/gpiochipN`, linux-embedded-hal `CdevPin`):
//! buttons and the PIR sensor are sampled every 5 ms and debounced (`ketang_drivers::
//! debounce`); the siren relay and the status LED are outputs the engine switches.
//!
//! Active-low lines are requested as plain lines and inverted here (`active_low` in the
//! config), so the logical level is what the rest of the daemon sees. A line that cannot
//! be requested (chip missing, line busy, permission denied) shows `absent` with the chip,
//! line and device named, and is requested again every 10 s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use embedded_hal::digital::{InputPin as _, OutputPin as _};
use ketang_drivers::debounce::{ButtonEvent, Debouncer};
use linux_embedded_hal::CdevPin;
use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{DeviceConfig, DeviceDriver, DeviceKind, GpioLine};
use crate::devices::DeviceState;
use crate::devices::{Hardware, HwEvent};

const SAMPLE_EVERY: Duration = Duration::from_millis(5);
const RETRY_EVERY: Duration = Duration::from_secs(10);
const CONSUMER: &str = "ketangd";

/// Where a GPIO device is configured.
const fn config_key(kind: DeviceKind) -> &'static str {
    match kind {
        DeviceKind::Button => "hardware.buttons",
        DeviceKind::Siren => "hardware.siren",
        DeviceKind::StatusLed => "hardware.status_led",
        _ => "hardware.pir",
    }
}

pub(crate) fn request(l: &GpioLine, output: bool) -> Result<CdevPin, String> {
    let what = format!("{} line {}", l.chip.display(), l.line);
    let mut chip = Chip::new(&l.chip).map_err(|e| format!("cannot open {what}: {e}"))?;
    let line = chip
        .get_line(l.line)
        .map_err(|e| format!("no {what}: {e}"))?;
    let flags = if output {
        LineRequestFlags::OUTPUT
    } else {
        LineRequestFlags::INPUT
    };
    // Outputs start inactive (siren off).
    let initial = u8::from(output && l.active_low);
    let handle = line
        .request(flags, initial, CONSUMER)
        .map_err(|e| format!("cannot request {what} (in use, or permission denied?): {e}"))?;
    CdevPin::new(handle).map_err(|e| format!("{what}: {e}"))
}

/// The real GPIO outputs, by device name.
#[derive(Default)]
pub(crate) struct Outputs {
    lines: Mutex<HashMap<String, (GpioLine, Option<CdevPin>)>>,
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outputs")
    }
}

impl Outputs {
    /// Requests the output lines of `devices` (siren, status LED) now; failures are shown
    /// and retried at the next switch.
    pub(crate) fn open(devices: &[DeviceConfig], hw: &Hardware) -> Arc<Self> {
        let out = Self::default();
        {
            let mut lines = out
                .lines
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for d in devices {
                if let (DeviceKind::Siren | DeviceKind::StatusLed, DeviceDriver::Gpio(l)) =
                    (d.kind, &d.driver)
                {
                    let pin = match request(l, true) {
                        Ok(p) => {
                            hw.set_state(&d.name, DeviceState::Ok, Some("off".into()));
                            Some(p)
                        }
                        Err(e) => {
                            tracing::warn!(device = %d.name, error = %e, "GPIO output unavailable.");
                            hw.set_state(
                                &d.name,
                                DeviceState::Absent,
                                Some(format!("{e} ({})", config_key(d.kind))),
                            );
                            None
                        }
                    };
                    lines.insert(d.name.clone(), (l.clone(), pin));
                }
            }
        }
        Arc::new(out)
    }

    /// Switches output `name` (logical level); `Err` says why it could not.
    pub(crate) fn set(&self, name: &str, on: bool) -> Option<Result<(), String>> {
        let mut lines = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (cfg, pin) = lines.get_mut(name)?;
        if pin.is_none() {
            match request(cfg, true) {
                Ok(p) => *pin = Some(p),
                Err(e) => return Some(Err(e)),
            }
        }
        let p = pin.as_mut()?;
        let high = on != cfg.active_low;
        let r = if high { p.set_high() } else { p.set_low() };
        Some(r.map_err(|e| {
            *pin = None;
            format!("{} line {}: {e}", cfg.chip.display(), cfg.line)
        }))
    }
}

struct Input {
    name: String,
    kind: DeviceKind,
    cfg: GpioLine,
    pin: Option<CdevPin>,
    debounce: Debouncer,
    retry_at: Instant,
}

/// Starts the sampling thread for the GPIO inputs (buttons, PIR) among `devices`.
pub(crate) fn start_inputs(
    devices: &[DeviceConfig],
    hw: Arc<Hardware>,
    events: mpsc::Sender<HwEvent>,
    stop: CancellationToken,
) {
    let inputs: Vec<Input> = devices
        .iter()
        .filter_map(|d| match (&d.kind, &d.driver) {
            (DeviceKind::Button | DeviceKind::Pir, DeviceDriver::Gpio(l)) => Some(Input {
                name: d.name.clone(),
                kind: d.kind,
                cfg: l.clone(),
                pin: None,
                debounce: Debouncer::new(
                    u32::try_from(d.debounce.as_millis()).unwrap_or(30),
                    (!d.long_press.is_zero())
                        .then(|| u32::try_from(d.long_press.as_millis()).unwrap_or(u32::MAX)),
                ),
                retry_at: Instant::now(),
            }),
            _ => None,
        })
        .collect();
    if inputs.is_empty() {
        return;
    }
    crate::devices::spawn("ketang-gpio", "the GPIO inputs", move || {
        run_inputs(inputs, &hw, &events, &stop);
    });
}

fn run_inputs(
    mut inputs: Vec<Input>,
    hw: &Hardware,
    events: &mpsc::Sender<HwEvent>,
    stop: &CancellationToken,
) {
    let t0 = Instant::now();
    while !stop.is_cancelled() {
        let now_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        for i in &mut inputs {
            if i.pin.is_none() {
                if Instant::now() < i.retry_at {
                    continue;
                }
                match request(&i.cfg, false) {
                    Ok(p) => {
                        i.pin = Some(p);
                        hw.set_state(&i.name, DeviceState::Ok, None);
                    }
                    Err(e) => {
                        hw.set_state(
                            &i.name,
                            DeviceState::Absent,
                            Some(format!("{e} ({})", config_key(i.kind))),
                        );
                        i.retry_at = Instant::now() + RETRY_EVERY;
                        continue;
                    }
                }
            }
            let Some(pin) = i.pin.as_mut() else { continue };
            let level = match pin.is_high() {
                Ok(h) => h != i.cfg.active_low,
                Err(e) => {
                    hw.set_state(
                        &i.name,
                        DeviceState::Fault,
                        Some(format!("{} line {}: {e}", i.cfg.chip.display(), i.cfg.line)),
                    );
                    i.pin = None;
                    i.retry_at = Instant::now() + RETRY_EVERY;
                    continue;
                }
            };
            let Some(ev) = i.debounce.update(level, now_ms) else {
                continue;
            };
            match (i.kind, ev) {
                (DeviceKind::Button, ButtonEvent::Pressed | ButtonEvent::LongPress) => {
                    // With a long press configured, only the long press raises the alarm.
                    let fires = (ev == ButtonEvent::LongPress) == i.debounce.has_long_press();
                    let event = HwEvent::Button {
                        name: i.name.clone(),
                    };
                    if fires && events.blocking_send(event).is_err() {
                        return;
                    }
                }
                (DeviceKind::Pir, ButtonEvent::Pressed) => {
                    hw.set_state(&i.name, DeviceState::Ok, Some("occupied".into()));
                }
                (DeviceKind::Pir, ButtonEvent::Released) => {
                    hw.set_state(&i.name, DeviceState::Ok, Some("empty".into()));
                }
                _ => {}
            }
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
}
