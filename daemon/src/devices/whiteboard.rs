//! The interactive flat panel (whiteboard): one thread owns the serial link, so blocking
//! I/O never runs on the async runtime; requests arrive over a channel and answers go back
//! over a oneshot. The thread reports the panel's health to [`Hardware`] (naming the port
//! and config key when it cannot be opened), re-opens the port after a failure (every
//! 30 s, or at the next request), and keeps the last state it read for the status page.
//!
//! The simulated twin (`driver = "simulated"`, the demo) keeps the same state in memory and
//! answers the same requests.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

use ketang_drivers::panel::{Dialect, Input, Panel, PanelError, Reply, Request};
use tokio::sync::oneshot;

use crate::config::{DeviceConfig, DeviceDriver, DeviceKind, HardwareConfig, WhiteboardDialect};
use crate::devices::DeviceState;
use crate::devices::Hardware;
use crate::devices::linux::serial::SerialPort;

/// How long one exchange with the panel may take.
const EXCHANGE_TIMEOUT_MS: u32 = 1500;
/// How often a panel that cannot be reached is tried again.
const REOPEN_EVERY: Duration = Duration::from_secs(30);

struct Job {
    req: Request,
    reply: oneshot::Sender<Result<Reply, String>>,
}

/// The handle the rest of the daemon uses.
#[derive(Debug, Clone)]
pub(crate) struct Whiteboard {
    tx: SyncSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({:?})", self.req)
    }
}

/// The last known state, for the status page.
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    power: Option<bool>,
    input: Option<Input>,
}

impl Known {
    fn note(&mut self, r: Reply) {
        match r {
            Reply::Power(p) => self.power = Some(p),
            Reply::Input(i) => self.input = Some(i),
            _ => {}
        }
    }

    fn detail(&self) -> Option<String> {
        let p = self.power.map(|p| if p { "on" } else { "standby" });
        match (p, self.input) {
            (None, None) => None,
            (p, i) => Some(format!(
                "{}{}",
                p.unwrap_or("?"),
                i.map(|i| format!(" · {}", i.name())).unwrap_or_default()
            )),
        }
    }
}

impl Whiteboard {
    /// Starts the panel's thread if a whiteboard is configured.
    pub(crate) fn start(cfg: &HardwareConfig, hw: Arc<Hardware>) -> Option<Self> {
        let dev = cfg
            .devices
            .iter()
            .find(|d| d.kind == DeviceKind::Whiteboard)?
            .clone();
        let (tx, rx) = sync_channel(16);
        let spawned = std::thread::Builder::new()
            .name("ketang-whiteboard".into())
            .spawn(move || run(&dev, &hw, &rx));
        match spawned {
            Ok(_) => Some(Self { tx }),
            Err(e) => {
                tracing::error!(error = %e, "The whiteboard thread could not start; the panel is not controlled.");
                None
            }
        }
    }

    /// Sends `req` to the panel; for a setting, the answer is the state read back.
    ///
    /// # Errors
    /// Why the panel could not be reached or did not do it (a sentence for the teacher's
    /// screen and the log).
    pub(crate) async fn request(&self, req: Request) -> Result<Reply, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Job { req, reply })
            .map_err(|_| "the whiteboard is busy; try again".to_owned())?;
        rx.await
            .map_err(|_| "the whiteboard thread stopped".to_owned())?
    }
}

fn dialect(d: WhiteboardDialect, set_id: u8) -> Dialect {
    match d {
        WhiteboardDialect::Benq => Dialect::Benq,
        WhiteboardDialect::Smart => Dialect::Smart,
        WhiteboardDialect::Lg => Dialect::Lg { set_id },
    }
}

fn run(dev: &DeviceConfig, hw: &Hardware, rx: &Receiver<Job>) {
    match &dev.driver {
        DeviceDriver::Serial {
            port,
            dialect: d,
            baud,
            set_id,
        } => run_serial(dev, hw, rx, port, dialect(*d, *set_id), *baud),
        _ => run_simulated(dev, hw, rx),
    }
}

fn run_serial(
    dev: &DeviceConfig,
    hw: &Hardware,
    rx: &Receiver<Job>,
    port: &std::path::Path,
    dialect: Dialect,
    baud: u32,
) {
    let name = dev.name.as_str();
    let mut panel: Option<Panel<SerialPort>> = None;
    let mut why = String::new();
    let mut known = Known::default();
    loop {
        if panel.is_none() {
            match SerialPort::open(port, baud) {
                Ok(p) => {
                    tracing::info!(device = name, port = %port.display(), ?dialect, baud, "Whiteboard serial port open.");
                    let mut p = Panel::new(p, dialect, EXCHANGE_TIMEOUT_MS);
                    // A first query tells whether a panel answers at all.
                    match p.power(&mut Sleep) {
                        Ok(on) => {
                            known.power = Some(on);
                            hw.set_state(name, DeviceState::Ok, known.detail());
                        }
                        Err(e) => hw.set_state(name, DeviceState::Fault, Some(format!("{e}"))),
                    }
                    panel = Some(p);
                }
                Err(e) => {
                    let msg = format!(
                        "cannot open {} (hardware.whiteboard.port): {e}",
                        port.display()
                    );
                    if msg != why {
                        tracing::warn!(device = name, error = %msg, "Whiteboard unavailable; retrying every 30 s.");
                    }
                    hw.set_state(name, DeviceState::Absent, Some(msg.clone()));
                    why = msg;
                }
            }
        }
        let job = match rx.recv_timeout(REOPEN_EVERY) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let Some(p) = panel.as_mut() else {
            let _ = job
                .reply
                .send(Err(format!("the whiteboard is not reachable: {why}")));
            continue;
        };
        let result = p.request(job.req, &mut Sleep);
        match &result {
            Ok(r) => {
                known.note(*r);
                hw.set_state(name, DeviceState::Ok, known.detail());
            }
            Err(PanelError::Io(e)) => {
                let msg = format!("serial port {} failed: {e}", port.display());
                tracing::warn!(device = name, error = %msg, "Whiteboard link lost; re-opening.");
                hw.set_state(name, DeviceState::Fault, Some(msg));
                panel = None;
            }
            Err(e) => {
                tracing::warn!(device = name, error = %e, "Whiteboard request failed.");
                hw.set_state(name, DeviceState::Fault, Some(e.to_string()));
            }
        }
        let _ = job.reply.send(result.map_err(|e| e.to_string()));
    }
}

/// The simulated panel: answers at once, remembers its state.
fn run_simulated(dev: &DeviceConfig, hw: &Hardware, rx: &Receiver<Job>) {
    let mut power = false;
    let mut input = Input::Ops;
    let mut volume = 30u8;
    let mut mute = false;
    let mut lock = false;
    hw.set_state(&dev.name, DeviceState::Ok, Some("standby · ops".into()));
    while let Ok(job) = rx.recv() {
        let reply = match job.req {
            Request::SetPower(p) => {
                power = p;
                Reply::Power(p)
            }
            Request::GetPower => Reply::Power(power),
            Request::SetInput(i) => {
                input = i;
                Reply::Input(i)
            }
            Request::GetInput => Reply::Input(input),
            Request::SetVolume(v) => {
                volume = v.min(100);
                Reply::Volume(volume)
            }
            Request::GetVolume => Reply::Volume(volume),
            Request::SetMute(m) => {
                mute = m;
                Reply::Mute(m)
            }
            Request::GetMute => Reply::Mute(mute),
            Request::SetLock(l) => {
                lock = l;
                Reply::Lock(l)
            }
            Request::GetLock => Reply::Lock(lock),
        };
        let known = Known {
            power: Some(power),
            input: Some(input),
        };
        hw.set_state(&dev.name, DeviceState::Ok, known.detail());
        let _ = job.reply.send(Ok(reply));
    }
}

/// `DelayNs` for the panel thread.
struct Sleep;

impl embedded_hal::delay::DelayNs for Sleep {
    fn delay_ns(&mut self, ns: u32) {
        std::thread::sleep(Duration::from_nanos(u64::from(ns)));
    }
}
