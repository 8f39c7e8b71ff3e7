//! Device drivers for Ketang's classroom hardware, generic over the embedded-hal 1.0 traits.
//!
//! `#![no_std]`: nothing here knows about Linux. The daemon's `hw` module opens the Linux
//! buses (spidev, i2c-dev, GPIO character devices, serial ports) and hands them to these
//! drivers; tests hand them mocks. The drivers themselves arrive with issue 5; this release
//! holds the types every card reader shares.

#![no_std]
#![deny(unsafe_code, missing_docs)]

mod card;

pub use card::{Uid, UidError};
