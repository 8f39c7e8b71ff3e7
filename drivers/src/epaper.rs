//! Waveshare-class SPI e-paper panels for the door sign, through `epd-waveshare`.
//!
//! A refresh is one whole cycle: reset and init the controller, send the frame, refresh,
//! wait, deep sleep (Waveshare's advice: a panel left powered between updates wears). The
//! frame comes from [`crate::sign::Framebuffer`] (1 = ink) and is sent in the panels'
//! polarity (1 = white).
//!
//! Design: `epd-waveshare` waits for the BUSY line without a bound, so a panel that is not
//! connected (BUSY floating at its busy level) would hang the caller forever. The BUSY pin
//! is handed to it through [`BusyDeadline`], which counts how long the line stayed busy
//! and, past the deadline, reports idle and marks the refresh timed out: the refresh then
//! fails with [`EpaperError::Busy`] and the caller tries again later.

use core::cell::Cell;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;
use epd_waveshare::prelude::WaveshareDisplay;

/// Panels the sign supports: landscape-native controllers of the UC8176/UC8179 family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpdModel {
    /// 7.5" V2, 800 × 480.
    Epd7in5V2,
    /// 5.83" V2, 648 × 480.
    Epd5in83V2,
    /// 4.2", 400 × 300.
    Epd4in2,
}

impl EpdModel {
    /// Model names as the config writes them (Waveshare's, with or without `epd`).
    pub const NAMES: [&'static str; 3] = ["epd7in5_v2", "epd5in83_v2", "epd4in2"];

    /// The model called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name.strip_prefix("epd").unwrap_or(name) {
            "7in5_v2" => Some(Self::Epd7in5V2),
            "5in83_v2" => Some(Self::Epd5in83V2),
            "4in2" => Some(Self::Epd4in2),
            _ => None,
        }
    }

    /// Width and height in pixels.
    #[must_use]
    pub const fn size(self) -> (u32, u32) {
        match self {
            Self::Epd7in5V2 => (800, 480),
            Self::Epd5in83V2 => (648, 480),
            Self::Epd4in2 => (400, 300),
        }
    }

    /// Bytes of one frame (rows padded to whole bytes).
    #[must_use]
    pub const fn frame_bytes(self) -> usize {
        let (w, h) = self.size();
        (w as usize).div_ceil(8) * h as usize
    }
}

/// Why a refresh failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpaperError<E> {
    /// The SPI bus failed.
    Spi(E),
    /// The panel stayed busy past the deadline (not connected, or BUSY miswired).
    Busy,
    /// A control line (DC, RST, BUSY) could not be driven or read.
    Pin,
    /// The frame does not have the model's size (bytes given, bytes wanted).
    FrameSize(usize, usize),
}

impl<E: core::fmt::Debug> core::fmt::Display for EpaperError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EpaperError::Spi(e) => write!(f, "spi error: {e:?}"),
            EpaperError::Busy => f.write_str(
                "the panel stayed busy past the deadline (not connected, or BUSY miswired)",
            ),
            EpaperError::Pin => f.write_str("a control line (DC, RST or BUSY) failed"),
            EpaperError::FrameSize(got, want) => {
                write!(f, "a frame of {got} bytes for a panel of {want}")
            }
        }
    }
}

impl<E: core::fmt::Debug> core::error::Error for EpaperError<E> {}

/// A BUSY input with a deadline: reports idle once the line has been busy for more than
/// `limit` consecutive reads, and remembers that it did.
#[derive(Debug)]
pub struct BusyDeadline<'a, P> {
    pin: &'a mut P,
    busy_low: bool,
    limit: u32,
    run: u32,
    timed_out: &'a Cell<bool>,
    failed: &'a Cell<bool>,
}

impl<P: InputPin> BusyDeadline<'_, P> {
    fn busy(&mut self) -> bool {
        let level_low = match self.pin.is_low() {
            Ok(l) => l,
            Err(_) => {
                self.failed.set(true);
                return false;
            }
        };
        if level_low != self.busy_low {
            self.run = 0;
            return false;
        }
        self.run += 1;
        if self.run > self.limit {
            self.timed_out.set(true);
            return false;
        }
        true
    }
}

impl<P: InputPin> ErrorType for BusyDeadline<'_, P> {
    type Error = core::convert::Infallible;
}

impl<P: InputPin> InputPin for BusyDeadline<'_, P> {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        let busy = self.busy();
        Ok(busy != self.busy_low)
    }

    fn is_low(&mut self) -> Result<bool, Self::Error> {
        let busy = self.busy();
        Ok(busy == self.busy_low)
    }
}

/// Microseconds between two reads of BUSY while waiting.
pub const BUSY_POLL_US: u32 = 1000;

/// Shows `ink` (1 = ink, rows of `width` bits padded to bytes, as
/// [`crate::sign::Framebuffer`] holds them) on a `model` panel, then puts it into deep
/// sleep. `scratch` must be as long as `ink`. Waits at most `busy_timeout_ms` for each
/// BUSY phase.
///
/// # Errors
/// See [`EpaperError`].
#[allow(
    clippy::too_many_arguments,
    reason = "the bus, three lines, a delay and two buffers"
)]
pub fn show<SPI, BUSY, DC, RST, D>(
    model: EpdModel,
    spi: &mut SPI,
    busy: &mut BUSY,
    dc: &mut DC,
    rst: &mut RST,
    delay: &mut D,
    ink: &[u8],
    scratch: &mut [u8],
    busy_timeout_ms: u32,
) -> Result<(), EpaperError<SPI::Error>>
where
    SPI: SpiDevice,
    BUSY: InputPin,
    DC: OutputPin,
    RST: OutputPin,
    D: DelayNs,
{
    let want = model.frame_bytes();
    if ink.len() != want || scratch.len() != want {
        return Err(EpaperError::FrameSize(ink.len(), want));
    }
    for (s, i) in scratch.iter_mut().zip(ink) {
        *s = !i;
    }
    let timed_out = Cell::new(false);
    let failed = Cell::new(false);
    let pin = BusyDeadline {
        pin: busy,
        busy_low: true,
        limit: busy_timeout_ms.saturating_mul(1000) / BUSY_POLL_US,
        run: 0,
        timed_out: &timed_out,
        failed: &failed,
    };
    let check = |r: Result<(), SPI::Error>| -> Result<(), EpaperError<SPI::Error>> {
        r.map_err(EpaperError::Spi)?;
        if timed_out.get() {
            return Err(EpaperError::Busy);
        }
        if failed.get() {
            return Err(EpaperError::Pin);
        }
        Ok(())
    };
    macro_rules! cycle {
        ($ty:ty) => {{
            let mut epd = <$ty>::new(spi, pin, dc, rst, delay, Some(BUSY_POLL_US))
                .map_err(EpaperError::Spi)?;
            check(Ok(()))?;
            check(epd.update_and_display_frame(spi, &*scratch, delay))?;
            // sleep() waits for the refresh to finish, then powers the panel down.
            check(epd.sleep(spi, delay))?;
        }};
    }
    match model {
        EpdModel::Epd7in5V2 => cycle!(epd_waveshare::epd7in5_v2::Epd7in5<_, _, _, _, _>),
        EpdModel::Epd5in83V2 => cycle!(epd_waveshare::epd5in83_v2::Epd5in83<_, _, _, _, _>),
        EpdModel::Epd4in2 => cycle!(epd_waveshare::epd4in2::Epd4in2<_, _, _, _, _>),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::EpdModel;

    #[test]
    fn model_names_are_read_with_or_without_the_epd_prefix() {
        assert_eq!(EpdModel::from_name("epd7in5_v2"), Some(EpdModel::Epd7in5V2));
        assert_eq!(EpdModel::from_name("4in2"), Some(EpdModel::Epd4in2));
        assert_eq!(EpdModel::from_name("2in13_v3"), None);
        assert_eq!(EpdModel::Epd7in5V2.frame_bytes(), 48_000);
        for n in EpdModel::NAMES {
            assert!(EpdModel::from_name(n).is_some(), "{n}");
        }
    }
}
