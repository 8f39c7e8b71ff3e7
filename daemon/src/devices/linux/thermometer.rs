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
use crate::devices::{Hardware, HwEvent, Session};
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
    crate::devices::supervise(hw, name, RETRY_EVERY, stop, || {
        session(name, bus, address, hw, events, stop)
    });
}

/// One session with the sensor: sample until it stops answering (`Absent`, naming the bus
/// and address) or the daemon stops.
fn session(
    name: &str,
    bus: &Path,
    address: u8,
    hw: &Hardware,
    events: &mpsc::Sender<HwEvent>,
    stop: &CancellationToken,
) -> Session {
    let absent = |why: String| (DeviceState::Absent, why);
    let dev = I2cdev::new(bus).map_err(|e| {
        absent(format!(
            "cannot open {} (hardware.thermometer.i2c): {e}",
            bus.display()
        ))
    })?;
    let mut sensor = Thermometer::new(dev, address)
        .map_err(|e| absent(format!("{e} (hardware.thermometer.address)")))?;
    let mut trigger = IrTrigger::default();
    let mut healthy = false;
    while !stop.is_cancelled() {
        let (object, ambient) = sensor
            .ambient_c()
            .and_then(|a| sensor.object_c().map(|o| (o, a)))
            .map_err(|e| {
                absent(format!(
                    "no reading from {} at {address:#04x}: {e}",
                    bus.display()
                ))
            })?;
        if !healthy {
            hw.set_state(name, DeviceState::Ok, None);
            healthy = true;
        }
        if let Some(c) = trigger.sample(object, ambient) {
            let ev = HwEvent::Temperature {
                sensor: name.to_owned(),
                celsius: f64::from(c),
            };
            if events.blocking_send(ev).is_err() {
                return Ok(());
            }
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    Ok(())
}
