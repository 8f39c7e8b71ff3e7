//! The door-side e-paper sign: the classroom decides what it shows
//! (`ketang_drivers::sign::SignContent`); this module renders it only when the content
//! changed (e-paper wears with every refresh), keeps a PNG of the current face for the
//! technician page and tests, and counts refreshes. A real Waveshare panel gets each new
//! frame through its own thread (`linux::spi`), which reports the panel's health.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use ketang_drivers::sign::{Framebuffer, SignContent, render};

use crate::config::{DeviceDriver, DeviceKind, HardwareConfig};
use crate::devices::DeviceState;
use crate::devices::Hardware;

/// The sign.
#[derive(Debug)]
pub(crate) struct Sign {
    name: String,
    simulated: bool,
    width: u32,
    height: u32,
    last: Mutex<Option<String>>,
    png: Mutex<Option<Vec<u8>>>,
    refreshes: AtomicU64,
    /// The real panel's thread, when one is configured.
    panel: Option<crate::devices::linux::spi::PanelHandle>,
}

impl Sign {
    /// The sign, if one is configured; `panel` is the real panel's thread.
    pub(crate) fn new(
        cfg: &HardwareConfig,
        panel: Option<crate::devices::linux::spi::PanelHandle>,
    ) -> Option<Self> {
        let d = cfg.devices.iter().find(|d| d.kind == DeviceKind::Epaper)?;
        // The simulated sign is a 4.2" panel.
        let (width, height) = match &d.driver {
            DeviceDriver::Waveshare { model, .. } => model.size(),
            _ => (400, 300),
        };
        Some(Self {
            name: d.name.clone(),
            simulated: d.driver == DeviceDriver::Simulated,
            width,
            height,
            last: Mutex::new(None),
            png: Mutex::new(None),
            refreshes: AtomicU64::new(0),
            panel,
        })
    }

    /// Renders `content` if it differs from what the sign shows. Returns whether it
    /// refreshed.
    ///
    /// # Errors
    /// A character the sign's font lacks (named), or PNG encoding failed.
    pub(crate) fn update(&self, content: &SignContent<'_>, hw: &Hardware) -> Result<bool, String> {
        let key = format!("{content:?}");
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.as_deref() == Some(key.as_str()) {
            return Ok(false);
        }
        let mut buf = vec![0u8; Framebuffer::bytes(self.width, self.height)];
        let mut fb = Framebuffer::new(&mut buf, self.width, self.height);
        if let Err(e) = render(content, &mut fb) {
            hw.set_state(&self.name, DeviceState::Fault, Some(e.to_string()));
            return Err(e.to_string());
        }
        let png = encode_png(&buf, self.width, self.height)?;
        if let Some(p) = &self.panel {
            p.show(buf);
        }
        *self
            .png
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(png);
        *last = Some(key);
        let n = self.refreshes.fetch_add(1, Ordering::Relaxed) + 1;
        if self.simulated {
            hw.set_state(
                &self.name,
                DeviceState::Ok,
                Some(format!("{}×{} · refreshed {n}×", self.width, self.height)),
            );
        }
        Ok(true)
    }

    /// The current face as PNG.
    pub(crate) fn png(&self) -> Option<Vec<u8>> {
        self.png
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many times the face was redrawn since start.
    #[cfg(test)]
    pub(crate) fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }
}

/// A 1-bit grayscale PNG (ink black on white).
fn encode_png(bits: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        let mut w = enc
            .write_header()
            .map_err(|e| format!("encoding the sign preview: {e}"))?;
        // PNG gray 0 is black: invert ink bits.
        let inverted: Vec<u8> = bits.iter().map(|b| !b).collect();
        w.write_image_data(&inverted)
            .map_err(|e| format!("encoding the sign preview: {e}"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_redraws_only_when_its_content_changes() {
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let cfg = HardwareConfig::all_simulated();
        let hw = Hardware::new(&cfg, tx);
        let sign = Sign::new(&cfg, None).unwrap();
        let c = SignContent {
            class_name: "七年级(3)班",
            date: "11月23日 星期一",
            ..SignContent::default()
        };
        assert_eq!(sign.update(&c, &hw), Ok(true));
        assert_eq!(sign.update(&c, &hw), Ok(false));
        let later = SignContent {
            attendance: Some((1, 40)),
            lesson: Some(("语文", "第1节")),
            ..c
        };
        assert_eq!(sign.update(&later, &hw), Ok(true));
        assert_eq!(sign.refreshes(), 2);
        let png = sign.png().unwrap();
        assert_eq!(&png[1..4], b"PNG");
        // Width and height in the IHDR chunk.
        assert_eq!(
            u32::from_be_bytes([png[16], png[17], png[18], png[19]]),
            400
        );
        assert_eq!(
            u32::from_be_bytes([png[20], png[21], png[22], png[23]]),
            300
        );
        let bad = SignContent {
            class_name: "班\u{1F600}",
            ..c
        };
        assert!(sign.update(&bad, &hw).unwrap_err().contains("U+1F600"));
    }
}
