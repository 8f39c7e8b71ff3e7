//! Starting every configured device from the config, in one place: the whiteboard, the
//! e-paper sign, the GPIO outputs and inputs, the card readers, the thermometer, and the
//! inference thread with the capture threads that feed it. Each real device gets its own
//! thread (docs/development.md §2), which reports its state to the registry. It sits above
//! both `devices` and `inference`, so neither imports the other's start-up.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, DeviceDriver, InferenceConfig};
use crate::inference::Inference;

use crate::devices::epaper::Sign;
use crate::devices::whiteboard::Whiteboard;
use crate::devices::{Hardware, HwEvent, folders, linux, spawn};

/// The started devices the classroom talks to.
pub(crate) struct Started {
    /// The flat panel, when one is configured.
    pub(crate) whiteboard: Option<Whiteboard>,
    /// The door sign, when one is configured.
    pub(crate) sign: Option<Arc<Sign>>,
    /// Inference, when a camera is configured.
    pub(crate) inference: Option<Inference>,
}

/// Starts every device of `cfg`; simulated ones need no thread.
pub(crate) fn start(
    cfg: &Config,
    hw: &Arc<Hardware>,
    events: &mpsc::Sender<HwEvent>,
    stop: &CancellationToken,
) -> Started {
    let whiteboard = Whiteboard::start(&cfg.hardware, hw.clone());
    let panel = cfg.hardware.devices.iter().find_map(|d| match &d.driver {
        DeviceDriver::Waveshare {
            spi,
            model,
            dc,
            rst,
            busy,
        } => Some(linux::spi::start_panel(
            d.name.clone(),
            linux::spi::PanelWiring {
                spi: spi.clone(),
                model: *model,
                dc: dc.clone(),
                rst: rst.clone(),
                busy: busy.clone(),
            },
            hw.clone(),
            stop.clone(),
        )),
        _ => None,
    });
    let sign = Sign::new(&cfg.hardware, panel).map(Arc::new);
    hw.attach_outputs(linux::gpio::Outputs::open(&cfg.hardware.devices, hw));
    linux::gpio::start_inputs(
        &cfg.hardware.devices,
        hw.clone(),
        events.clone(),
        stop.clone(),
    );
    for d in &cfg.hardware.devices {
        match &d.driver {
            DeviceDriver::Evdev { device, format } => linux::wedge::start(
                d.name.clone(),
                device.clone(),
                *format,
                hw.clone(),
                events.clone(),
                stop.clone(),
            ),
            DeviceDriver::Mfrc522 { spi, reset } => linux::spi::start_mfrc522(
                d.name.clone(),
                spi.clone(),
                reset.clone(),
                hw.clone(),
                events.clone(),
                stop.clone(),
            ),
            DeviceDriver::Mlx90614 { i2c, address } => linux::thermometer::start(
                d.name.clone(),
                i2c.clone(),
                *address,
                hw.clone(),
                events.clone(),
                stop.clone(),
            ),
            _ => {}
        }
    }
    let inference = Inference::start(&cfg.inference, hw.clone(), events.clone(), stop.clone());
    if let Some(inf) = &inference {
        start_capture(&cfg.inference, inf, hw, stop);
    }
    Started {
        whiteboard,
        sign,
        inference,
    }
}

/// The camera and microphone threads that feed `inf`.
fn start_capture(
    cfg: &InferenceConfig,
    inf: &Inference,
    hw: &Arc<Hardware>,
    stop: &CancellationToken,
) {
    match cfg.microphone.as_ref().map(|m| &m.driver) {
        Some(DeviceDriver::Wav { dir }) => {
            let (dir, inf, hw, stop) = (dir.clone(), inf.clone(), hw.clone(), stop.clone());
            spawn("ketang-audio", "the recordings watcher", move || {
                folders::watch_recordings(&dir, &inf, &hw, &stop);
            });
        }
        Some(DeviceDriver::Alsa { device, channels }) => {
            let (device, ch) = (device.clone(), *channels);
            let (inf, hw, stop) = (inf.clone(), hw.clone(), stop.clone());
            spawn("ketang-microphone", "the microphone", move || {
                linux::microphone::run(&device, ch, &inf, &hw, &stop);
            });
        }
        _ => {}
    }
    match cfg.camera.as_ref().map(|c| &c.driver) {
        Some(DeviceDriver::V4l2 {
            device,
            width,
            height,
        }) => {
            let (device, w, h, every) = (device.clone(), *width, *height, cfg.sample_every);
            let (inf, hw, stop) = (inf.clone(), hw.clone(), stop.clone());
            spawn("ketang-camera", "the camera", move || {
                linux::camera::run(&device, w, h, every, &inf, &hw, &stop);
            });
        }
        Some(DeviceDriver::Frames { dir }) => {
            let (dir, every) = (dir.clone(), cfg.sample_every);
            let (inf, hw, stop) = (inf.clone(), hw.clone(), stop.clone());
            spawn("ketang-frames", "the camera folder watcher", move || {
                folders::watch_folder(&dir, every, &inf, &hw, &stop);
            });
        }
        _ => {}
    }
}
