//! A simulated Waveshare e-paper panel (UC8176/UC8179-class controller) on SPI plus its
//! DC, RST and BUSY lines: it records each command with its data as the controller sees
//! them (DC low = command byte, DC high = data), pulls BUSY low for a while after power
//! and refresh commands, and can be made to stay busy (a panel that is not connected).

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use embedded_hal::digital::{self, InputPin, OutputPin};
use embedded_hal::spi::{self, Operation, SpiDevice};

use crate::rfid::SimSpiError;

#[derive(Debug)]
struct Panel {
    dc_data: bool,
    rst_high: bool,
    resets: u32,
    commands: Vec<(u8, Vec<u8>)>,
    busy_left: u32,
    stuck_busy: bool,
    spi_fails: bool,
}

/// The panel; [`SimEpd::spi`], [`SimEpd::dc`], [`SimEpd::rst`] and [`SimEpd::busy`] hand
/// out its four connections.
#[derive(Debug, Clone)]
pub struct SimEpd {
    p: Arc<Mutex<Panel>>,
}

/// One of the panel's connections.
#[derive(Debug, Clone)]
pub struct SimEpdPort {
    p: Arc<Mutex<Panel>>,
    line: Line,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    Spi,
    Dc,
    Rst,
    Busy,
}

impl Default for SimEpd {
    fn default() -> Self {
        Self::new()
    }
}

impl SimEpd {
    /// A panel that answers like a connected one.
    #[must_use]
    pub fn new() -> Self {
        Self {
            p: Arc::new(Mutex::new(Panel {
                dc_data: false,
                // Pulled up: the first low-high is the first reset.
                rst_high: false,
                resets: 0,
                commands: Vec::new(),
                busy_left: 0,
                stuck_busy: false,
                spi_fails: false,
            })),
        }
    }

    fn p(&self) -> MutexGuard<'_, Panel> {
        self.p.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn port(&self, line: Line) -> SimEpdPort {
        SimEpdPort {
            p: self.p.clone(),
            line,
        }
    }

    /// The SPI connection.
    #[must_use]
    pub fn spi(&self) -> SimEpdPort {
        self.port(Line::Spi)
    }
    /// The DC line.
    #[must_use]
    pub fn dc(&self) -> SimEpdPort {
        self.port(Line::Dc)
    }
    /// The RST line.
    #[must_use]
    pub fn rst(&self) -> SimEpdPort {
        self.port(Line::Rst)
    }
    /// The BUSY line.
    #[must_use]
    pub fn busy(&self) -> SimEpdPort {
        self.port(Line::Busy)
    }

    /// BUSY stays low forever (nothing connected, line pulled down).
    pub fn set_stuck_busy(&self, stuck: bool) {
        self.p().stuck_busy = stuck;
    }

    /// Every SPI transfer fails.
    pub fn set_spi_fails(&self, fails: bool) {
        self.p().spi_fails = fails;
    }

    /// Commands received so far, with their data.
    #[must_use]
    pub fn commands(&self) -> Vec<(u8, Vec<u8>)> {
        self.p().commands.clone()
    }

    /// Reset pulses seen (RST low, then high).
    #[must_use]
    pub fn resets(&self) -> u32 {
        self.p().resets
    }
}

impl SimEpdPort {
    fn p(&self) -> MutexGuard<'_, Panel> {
        self.p.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl spi::ErrorType for SimEpdPort {
    type Error = SimSpiError;
}

impl SpiDevice for SimEpdPort {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), SimSpiError> {
        let mut p = self.p();
        if p.spi_fails {
            return Err(SimSpiError);
        }
        for op in ops.iter_mut() {
            let bytes: Vec<u8> = match op {
                Operation::Write(w) => w.to_vec(),
                Operation::Transfer(_, w) => w.to_vec(),
                Operation::TransferInPlace(b) => b.to_vec(),
                Operation::Read(_) | Operation::DelayNs(_) => Vec::new(),
            };
            for b in bytes {
                if p.dc_data {
                    if let Some(last) = p.commands.last_mut() {
                        last.1.push(b);
                    }
                } else {
                    p.commands.push((b, Vec::new()));
                    // Power on/off and refresh keep the controller busy for a while.
                    if matches!(b, 0x04 | 0x02 | 0x12) {
                        p.busy_left = 25;
                    }
                }
            }
        }
        Ok(())
    }
}

impl digital::ErrorType for SimEpdPort {
    type Error = Infallible;
}

impl OutputPin for SimEpdPort {
    fn set_low(&mut self) -> Result<(), Infallible> {
        let line = self.line;
        let mut p = self.p();
        match line {
            Line::Dc => p.dc_data = false,
            Line::Rst => p.rst_high = false,
            Line::Spi | Line::Busy => {}
        }
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        let line = self.line;
        let mut p = self.p();
        match line {
            Line::Dc => p.dc_data = true,
            Line::Rst => {
                if !p.rst_high {
                    p.resets += 1;
                }
                p.rst_high = true;
            }
            Line::Spi | Line::Busy => {}
        }
        Ok(())
    }
}

impl InputPin for SimEpdPort {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        let line = self.line;
        let mut p = self.p();
        if line != Line::Busy {
            return Ok(false);
        }
        if p.stuck_busy {
            return Ok(false);
        }
        if p.busy_left > 0 {
            p.busy_left -= 1;
            return Ok(false);
        }
        Ok(true)
    }

    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|h| !h)
    }
}
