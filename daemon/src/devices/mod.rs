//! The board's hardware as the rest of the daemon sees it: a registry of configured devices
//! with their health, one event channel that every input device (real or simulated) feeds,
//! and the outputs (siren, LED) the engine drives.
//!
//! Simulated devices are twins of the real ones: a simulated card tap enters the very
//! channel a real reader's task writes to, as the same [`HwEvent`]. Real devices are driven
//! by the Linux glue in `linux/` (spidev, evdev, i2c-dev, GPIO cdev, serial); a device
//! whose hardware cannot be opened is reported with the reason and retried.

pub(crate) mod epaper;
pub(crate) mod folders;
pub(crate) mod linux;
mod supervisor;
pub(crate) mod whiteboard;

pub(crate) use supervisor::{Session, supervise};

/// Spawns a named device thread. One that cannot start is logged (naming `what`) and the
/// daemon goes on without it.
pub(crate) fn spawn(thread: &str, what: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().name(thread.to_owned()).spawn(f) {
        tracing::error!(error = %e, what, "A device thread could not start.");
    }
}

use std::sync::Mutex;

use ketang_drivers::Uid;
use ketang_web::{HardwareStatus, SimError};
use tokio::sync::mpsc;

use crate::config::{DeviceConfig, DeviceDriver, DeviceKind, HardwareConfig};

/// Input from the hardware.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HwEvent {
    CardTap {
        reader: String,
        uid: Uid,
    },
    Temperature {
        sensor: String,
        celsius: f64,
    },
    Button {
        name: String,
    },
    /// The inference thread recognised an enrolled student (cosine similarity).
    FaceMatch {
        student_id: String,
        similarity: f32,
    },
    /// People the classroom camera sees in its latest frame (persons, plus faces outside them).
    HeadCount {
        people: u32,
    },
    /// Postures of sampled people in one frame (no identities).
    Behaviour {
        postures: Vec<ketang_models::behaviour::Posture>,
    },
    /// Faces of one frame by expression: engaged, neutral, negative (opt-in; counts only).
    Expressions {
        counts: [u32; 3],
    },
    /// Speech heard in a recording: (start, end, is the teacher) in wall-clock time.
    Speech {
        segments: Vec<(
            chrono::DateTime<chrono::Utc>,
            chrono::DateTime<chrono::Utc>,
            bool,
        )>,
        /// `teacher_mic` (channel 0 is the teacher's) or `room_mic` (all speech counted as T).
        method: &'static str,
    },
}

/// The camera's device name (`[inference] camera`).
pub(crate) const CAMERA: &str = "camera";
/// The microphone's device name (`[inference] microphone`).
pub(crate) const MICROPHONE: &str = "microphone";

/// Where a camera thread sends its frames (the inference thread's one-slot queue). Capture
/// glue depends on this, not on inference.
pub(crate) trait FrameSink: Send + Sync {
    /// A new frame; it may replace one not yet looked at.
    fn frame(&self, frame: ketang_models::Frame);
}

/// Where a microphone thread sends its audio blocks.
pub(crate) trait AudioSink: Send + Sync {
    /// A block of samples per channel, ending at `ends_at`.
    fn audio(&self, channels: Vec<Vec<f32>>, ends_at: chrono::DateTime<chrono::Utc>);
}

/// Where a device stands, as its thread sees it (shown on `/status`, sent in telemetry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceState {
    /// Its thread is opening it.
    Starting,
    /// Working.
    Ok,
    /// There, but misbehaving (e.g. implausible readings); retried.
    Fault,
    /// Configured but not driven (missing, unplugged, or its model missing); `detail` says
    /// why.
    Absent,
}

impl DeviceState {
    /// Its name on the status page and in telemetry.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Ok => "ok",
            Self::Fault => "fault",
            Self::Absent => "absent",
        }
    }
}

#[derive(Debug)]
struct Device {
    cfg: DeviceConfig,
    state: Mutex<Reported>,
}

/// What a device's thread last reported.
#[derive(Debug, Clone)]
struct Reported {
    state: DeviceState,
    detail: Option<String>,
    /// Inference cannot use it (a model is missing or broken): its capture glue leaves
    /// the reason standing.
    degraded: bool,
}

#[derive(Debug)]
pub(crate) struct Hardware {
    devices: Vec<Device>,
    events: mpsc::Sender<HwEvent>,
    /// Real GPIO outputs (siren, LED), attached at start.
    outputs: std::sync::OnceLock<std::sync::Arc<crate::devices::linux::gpio::Outputs>>,
}

impl Hardware {
    pub(crate) fn new(cfg: &HardwareConfig, events: mpsc::Sender<HwEvent>) -> Self {
        let devices = cfg
            .devices
            .iter()
            .map(|d| {
                let state = match d.driver {
                    DeviceDriver::Simulated => Reported {
                        state: DeviceState::Ok,
                        detail: None,
                        degraded: false,
                    },
                    // Driven by its own thread (crate::whiteboard), which reports.
                    DeviceDriver::Serial { .. }
                    | DeviceDriver::Mlx90614 { .. }
                    | DeviceDriver::Evdev { .. }
                    | DeviceDriver::Mfrc522 { .. }
                    | DeviceDriver::Waveshare { .. }
                    | DeviceDriver::Frames { .. }
                    | DeviceDriver::V4l2 { .. }
                    | DeviceDriver::Alsa { .. }
                    | DeviceDriver::Wav { .. }
                    | DeviceDriver::Gpio(_) => Reported {
                        state: DeviceState::Starting,
                        detail: Some("opening the bus".to_owned()),
                        degraded: false,
                    },
                };
                Device {
                    cfg: d.clone(),
                    state: Mutex::new(state),
                }
            })
            .collect();
        Self {
            devices,
            events,
            outputs: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn statuses(&self) -> Vec<HardwareStatus> {
        self.devices
            .iter()
            .map(|d| {
                let s = lock(&d.state).clone();
                HardwareStatus {
                    name: d.cfg.name.clone(),
                    kind: d.cfg.kind.as_str().to_owned(),
                    driver: d.cfg.driver.name().to_owned(),
                    state: s.state.as_str().to_owned(),
                    detail: s.detail,
                }
            })
            .collect()
    }

    /// Sets a device's state as its driver thread sees it.
    pub(crate) fn set_state(&self, name: &str, state: DeviceState, detail: Option<String>) {
        if let Some(d) = self.devices.iter().find(|d| d.cfg.name == name) {
            *lock(&d.state) = Reported {
                state,
                detail,
                degraded: false,
            };
        }
    }

    /// The state `name` last reported, if it is configured.
    pub(crate) fn state(&self, name: &str) -> Option<DeviceState> {
        self.devices
            .iter()
            .find(|d| d.cfg.name == name)
            .map(|d| lock(&d.state).state)
    }

    /// Marks a device absent because inference cannot use it (`reason`: the missing or
    /// broken model); see [`Self::degraded`].
    pub(crate) fn set_degraded(&self, name: &str, reason: &str) {
        if let Some(d) = self.devices.iter().find(|d| d.cfg.name == name) {
            *lock(&d.state) = Reported {
                state: DeviceState::Absent,
                detail: Some(format!("inference degraded: {reason}")),
                degraded: true,
            };
        }
    }

    /// Whether `name` is marked degraded by inference: its capture glue then leaves that
    /// reason standing rather than reporting itself ok.
    pub(crate) fn degraded(&self, name: &str) -> bool {
        self.devices
            .iter()
            .any(|d| d.cfg.name == name && lock(&d.state).degraded)
    }

    /// Records a device's health (e.g. a thermometer returning garbage).
    pub(crate) fn set_health(&self, name: &str, ok: bool, detail: Option<String>) {
        if let Some(d) = self.devices.iter().find(|d| d.cfg.name == name) {
            let mut s = lock(&d.state);
            if s.state != DeviceState::Absent {
                *s = Reported {
                    state: if ok {
                        DeviceState::Ok
                    } else {
                        DeviceState::Fault
                    },
                    detail,
                    degraded: false,
                };
            }
        }
    }

    /// Switches every output of `kind` (siren, status LED). Simulated outputs show their
    /// state in the status detail.
    pub(crate) fn set_output(&self, kind: DeviceKind, on: bool) {
        let word = if on { "on" } else { "off" };
        for d in self.devices.iter().filter(|d| d.cfg.kind == kind) {
            if d.cfg.driver == DeviceDriver::Simulated {
                lock(&d.state).detail = Some(word.to_owned());
                continue;
            }
            match self.outputs.get().and_then(|o| o.set(&d.cfg.name, on)) {
                Some(Ok(())) => self.set_state(
                    &d.cfg.name,
                    crate::devices::DeviceState::Ok,
                    Some(word.to_owned()),
                ),
                Some(Err(e)) => {
                    tracing::error!(device = %d.cfg.name, error = %e, on, "Switching an output failed.");
                    self.set_state(&d.cfg.name, crate::devices::DeviceState::Fault, Some(e));
                }
                None => {}
            }
        }
    }

    /// Attaches the real GPIO outputs (once, at start).
    pub(crate) fn attach_outputs(
        &self,
        outputs: std::sync::Arc<crate::devices::linux::gpio::Outputs>,
    ) {
        let _ = self.outputs.set(outputs);
    }

    pub(crate) fn simulated(&self) -> bool {
        self.devices
            .iter()
            .any(|d| d.cfg.driver == DeviceDriver::Simulated)
    }

    fn sim_device(&self, kind: DeviceKind, name: Option<&str>) -> Result<&Device, SimError> {
        let of_kind: Vec<&Device> = self.devices.iter().filter(|d| d.cfg.kind == kind).collect();
        let found = match name {
            Some(n) => of_kind.iter().find(|d| d.cfg.name == n).copied(),
            None => of_kind.first().copied(),
        };
        let Some(dev) = found else {
            let known: Vec<&str> = of_kind.iter().map(|d| d.cfg.name.as_str()).collect();
            let what = kind.as_str().replace('_', " ");
            return Err(SimError::BadInput(match name {
                Some(n) => format!(
                    "unknown {what} {n:?}; configured: {}",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
                None => format!("no {what} is configured"),
            }));
        };
        if dev.cfg.driver != DeviceDriver::Simulated {
            return Err(SimError::BadInput(format!(
                "{} {:?} is a real device ({}); simulated input is refused",
                kind.as_str(),
                dev.cfg.name,
                dev.cfg.driver.name()
            )));
        }
        Ok(dev)
    }

    fn inject(&self, ev: HwEvent) -> Result<(), SimError> {
        self.events.try_send(ev).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                SimError::Unavailable("the hardware input queue is full; retry".into())
            }
            mpsc::error::TrySendError::Closed(_) => {
                SimError::Unavailable("the daemon is shutting down".into())
            }
        })
    }

    pub(crate) fn sim_card(&self, reader: &str, uid: &str) -> Result<(), SimError> {
        let dev = self.sim_device(DeviceKind::CardReader, Some(reader))?;
        let uid = Uid::from_hex(uid).map_err(|e| SimError::BadInput(format!("uid: {e}")))?;
        self.inject(HwEvent::CardTap {
            reader: dev.cfg.name.clone(),
            uid,
        })
    }

    pub(crate) fn sim_temperature(&self, celsius: f64) -> Result<(), SimError> {
        let dev = self.sim_device(DeviceKind::Thermometer, None)?;
        if !celsius.is_finite() {
            return Err(SimError::BadInput("celsius must be a finite number".into()));
        }
        self.inject(HwEvent::Temperature {
            sensor: dev.cfg.name.clone(),
            celsius,
        })
    }

    pub(crate) fn sim_button(&self, button: &str) -> Result<(), SimError> {
        let dev = self.sim_device(DeviceKind::Button, Some(button))?;
        self.inject(HwEvent::Button {
            name: dev.cfg.name.clone(),
        })
    }
}

/// Locks a device state; a poisoned lock still holds valid plain data.
fn lock(m: &Mutex<Reported>) -> std::sync::MutexGuard<'_, Reported> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hw() -> (Hardware, mpsc::Receiver<HwEvent>) {
        let (tx, rx) = mpsc::channel(4);
        (Hardware::new(&HardwareConfig::all_simulated(), tx), rx)
    }

    #[test]
    fn a_simulated_tap_enters_the_event_channel_as_a_card_tap() {
        let (hw, mut rx) = hw();
        hw.sim_card("door", "04a1b2c3").unwrap();
        assert_eq!(
            rx.try_recv().unwrap(),
            HwEvent::CardTap {
                reader: "door".into(),
                uid: Uid::from_hex("04A1B2C3").unwrap()
            }
        );
    }

    #[test]
    fn unknown_readers_buttons_and_bad_uids_are_refused_with_reasons() {
        let (hw, _rx) = hw();
        let e = hw.sim_card("back", "04A1B2C3").unwrap_err().to_string();
        assert!(
            e.contains("unknown card reader \"back\"; configured: door"),
            "{e}"
        );
        let e = hw.sim_card("door", "XYZ").unwrap_err().to_string();
        assert!(e.contains("uid: a card UID is written in hex"), "{e}");
        let e = hw.sim_button("doorbell").unwrap_err().to_string();
        assert!(e.contains("unknown button \"doorbell\""), "{e}");
        assert!(hw.sim_temperature(f64::NAN).is_err());
    }

    #[test]
    fn real_devices_refuse_simulated_input() {
        let mut cfg = HardwareConfig::all_simulated();
        cfg.devices[0].driver = DeviceDriver::Mfrc522 {
            spi: "/dev/spidev0.0".into(),
            reset: None,
        };
        let (tx, _rx) = mpsc::channel(4);
        let hw = Hardware::new(&cfg, tx);
        let e = hw.sim_card("door", "04A1B2C3").unwrap_err().to_string();
        assert!(e.contains("real device (mfrc522)"), "{e}");
        let st = &hw.statuses()[0];
        assert_eq!(st.state, "starting");
        assert_eq!(st.driver, "mfrc522");
    }

    #[test]
    fn a_full_input_queue_is_unavailable_not_lost_silently() {
        let (tx, _rx) = mpsc::channel(1);
        let hw = Hardware::new(&HardwareConfig::all_simulated(), tx);
        hw.sim_button("alarm").unwrap();
        assert!(matches!(
            hw.sim_button("alarm"),
            Err(SimError::Unavailable(_))
        ));
    }
}
