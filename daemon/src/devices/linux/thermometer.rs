//! The IR thermometer on an I2C bus (`/dev/i2c-N`, linux-embedded-hal): a thread samples
//! it five times a second and sends one `Temperature` event per approach (see
//! `engine::ir_trigger`). Health goes to the status page; a bus that cannot be opened or a
//! sensor that stops answering is retried every 10 s.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ketang_drivers::thermometer::Thermometer;
use linux_embedded_hal::I2cdev;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::devices::DeviceState;
use crate::devices::{Hardware, HwEvent};
use crate::engine::ir_trigger::IrTrigger;

const SAMPLE_EVERY: Duration = Duration::from_millis(200);
const RETRY_EVERY: Duration = Duration::from_secs(10);

/// Starts the sampling thread for the thermometer `name` at `bus`/`address`.
pub(crate) fn start(
    name: String,
    bus: std::path::PathBuf,
    address: u8,
    hw: Arc<Hardware>,
    events: mpsc::Sender<HwEvent>,
    stop: CancellationToken,
) {
    crate::devices::spawn("ketang-thermometer", "the thermometer", move || {
        run(&name, &bus, address, &hw, &events, &stop);
    });
}

fn run(
    name: &str,
    bus: &Path,
    address: u8,
    hw: &Hardware,
    events: &mpsc::Sender<HwEvent>,
    stop: &CancellationToken,
) {
    let mut last_problem = String::new();
    while !stop.is_cancelled() {
        let mut sensor = match I2cdev::new(bus) {
            Ok(dev) => match Thermometer::new(dev, address) {
                Ok(s) => s,
                Err(e) => {
                    report(
                        hw,
                        name,
                        &mut last_problem,
                        format!("{e} (hardware.thermometer.address)"),
                    );
                    std::thread::sleep(RETRY_EVERY);
                    continue;
                }
            },
            Err(e) => {
                report(
                    hw,
                    name,
                    &mut last_problem,
                    format!(
                        "cannot open {} (hardware.thermometer.i2c): {e}",
                        bus.display()
                    ),
                );
                std::thread::sleep(RETRY_EVERY);
                continue;
            }
        };
        let mut trigger = IrTrigger::default();
        let mut healthy = false;
        while !stop.is_cancelled() {
            let reading = sensor
                .ambient_c()
                .and_then(|a| sensor.object_c().map(|o| (o, a)));
            match reading {
                Ok((object, ambient)) => {
                    if !healthy {
                        hw.set_state(name, DeviceState::Ok, None);
                        healthy = true;
                        last_problem.clear();
                    }
                    if let Some(c) = trigger.sample(object, ambient) {
                        let ev = HwEvent::Temperature {
                            sensor: name.to_owned(),
                            celsius: f64::from(c),
                        };
                        if events.blocking_send(ev).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    report(
                        hw,
                        name,
                        &mut last_problem,
                        format!("no reading from {} at {address:#04x}: {e}", bus.display()),
                    );
                    break;
                }
            }
            std::thread::sleep(SAMPLE_EVERY);
        }
        std::thread::sleep(RETRY_EVERY);
    }
}

fn report(hw: &Hardware, name: &str, last: &mut String, problem: String) {
    if *last != problem {
        tracing::warn!(device = name, error = %problem, "Thermometer unavailable; retrying every 10 s.");
        *last = problem.clone();
    }
    hw.set_state(name, DeviceState::Absent, Some(problem));
}
