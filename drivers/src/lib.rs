//! Device drivers for Ketang's classroom hardware, generic over the embedded-hal 1.0 traits.
//!
//! `#![no_std]`: nothing here knows about Linux. The daemon's `hw` module opens the Linux
//! buses (spidev, i2c-dev, GPIO character devices, serial ports) and hands them to these
//! drivers; tests hand them mocks.
//!
//! * [`Uid`]: card identifiers (ISO/IEC 14443-3).
//! * [`thermometer`]: the MLX90614 IR thermometer (through `mlx9061x`).
//! * [`panel`]: interactive flat panels over RS-232 (BenQ-, SMART- and LG-style dialects).
//! * [`debounce`]: push buttons, with long press.
//! * [`mfrc522`]: the MFRC522 contactless card reader over SPI (ISO 14443A UIDs).
//! * [`wedge`]: USB keyboard-wedge card readers (key codes → card UID).
//! * [`epaper`]: Waveshare-class SPI e-paper panels (through `epd-waveshare`), bounded waits.
//! * [`sign`]: the door-side e-paper sign's layout, with Chinese glyphs.

#![no_std]
#![deny(unsafe_code, missing_docs)]

mod card;
pub mod debounce;
pub mod epaper;
pub mod mfrc522;
pub mod panel;
pub mod sign;
pub mod thermometer;
pub mod wedge;

pub use card::{Uid, UidError};
