//! Ketang's hardware tests, one suite on three levels (see `docs/hardware.md`):
//!
//! 1. **simulated** (always, in `./scripts/test`): drivers against embedded-hal-mock
//!    transactions, and the panel dialects against a simulated panel on a pseudo-terminal;
//! 2. **virtual kernel devices**: `hw-tests/virtual/run.sh` boots a QEMU VM with gpio-sim
//!    and uinput and runs the `ketang-virtual` binary there against `ketangd run`;
//! 3. **real bench**: `tests/bench.rs`, `#[ignore]`d tests selected by `KETANG_BENCH`.
//!
//! This library holds what the tests share: [`PtyLink`], a serial link on a pseudo-terminal
//! for the drivers' `embedded-io` traits, [`sim`], simulated devices, and [`rfid`], a
//! register-level simulated MFRC522 with cards in its field.

#![deny(missing_docs)]

pub mod epaper;
pub mod pty;
pub mod rfid;
pub mod sim;

pub use pty::PtyLink;

/// `DelayNs` on the host: sleeps the thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdDelay;

impl embedded_hal::delay::DelayNs for StdDelay {
    fn delay_ns(&mut self, ns: u32) {
        std::thread::sleep(std::time::Duration::from_nanos(u64::from(ns)));
    }
}
