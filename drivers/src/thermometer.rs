//! The MLX90614 infrared thermometer (SMBus, PEC-checked), through the `mlx9061x` crate.
//!
//! Datasheet: Melexis MLX90614 family, "Single and Dual Zone Infra Red Thermometer in
//! TO-39". The object temperature register (0x07) holds kelvin × 50; every read carries an
//! SMBus packet error code that `mlx9061x` checks. Whether a reading is plausible for a
//! forehead (30–45 °C) is the engine's rule, not the driver's.

use embedded_hal::i2c::I2c;
use mlx9061x::{Mlx9061x, SlaveAddr, ic::Mlx90614};

/// The factory address.
pub const DEFAULT_ADDRESS: u8 = 0x5A;

/// Why a reading failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThermometerError<E> {
    /// The I2C bus failed (NACK: nothing at the address, or wiring).
    I2c(E),
    /// The packet error code did not match: a corrupted transfer.
    Pec,
    /// The address is not a valid 7-bit SMBus address for this part.
    Address(u8),
}

impl<E: core::fmt::Debug> core::fmt::Display for ThermometerError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ThermometerError::I2c(e) => write!(f, "i2c error: {e:?}"),
            ThermometerError::Pec => {
                f.write_str("packet error code mismatch (noisy bus or loose wire)")
            }
            ThermometerError::Address(a) => write!(f, "address {a:#04x} is not usable (0x01-0x7f)"),
        }
    }
}

impl<E: core::fmt::Debug> core::error::Error for ThermometerError<E> {}

fn map<E>(e: mlx9061x::Error<E>, address: u8) -> ThermometerError<E> {
    match e {
        mlx9061x::Error::I2C(e) => ThermometerError::I2c(e),
        mlx9061x::Error::ChecksumMismatch => ThermometerError::Pec,
        mlx9061x::Error::InvalidInputData => ThermometerError::Address(address),
    }
}

/// An MLX90614 on an I2C bus.
pub struct Thermometer<I2C> {
    dev: Mlx9061x<I2C, Mlx90614>,
    address: u8,
}

impl<I2C> core::fmt::Debug for Thermometer<I2C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Thermometer(MLX90614 at {:#04x})", self.address)
    }
}

impl<I2C: I2c<Error = E>, E> Thermometer<I2C> {
    /// The thermometer at `address` (usually [`DEFAULT_ADDRESS`]).
    ///
    /// # Errors
    /// [`ThermometerError::Address`] for an address outside 0x01–0x7f.
    pub fn new(i2c: I2C, address: u8) -> Result<Self, ThermometerError<E>> {
        let slave = if address == DEFAULT_ADDRESS {
            SlaveAddr::Default
        } else {
            SlaveAddr::Alternative(address)
        };
        let dev = Mlx9061x::new_mlx90614(i2c, slave, 5).map_err(|e| map(e, address))?;
        Ok(Self { dev, address })
    }

    /// The object (forehead, wrist) temperature in °C.
    ///
    /// # Errors
    /// [`ThermometerError::I2c`] or [`ThermometerError::Pec`].
    pub fn object_c(&mut self) -> Result<f32, ThermometerError<E>> {
        self.dev
            .object1_temperature()
            .map_err(|e| map(e, self.address))
    }

    /// The sensor's own (ambient) temperature in °C: a cheap self-test.
    ///
    /// # Errors
    /// [`ThermometerError::I2c`] or [`ThermometerError::Pec`].
    pub fn ambient_c(&mut self) -> Result<f32, ThermometerError<E>> {
        self.dev
            .ambient_temperature()
            .map_err(|e| map(e, self.address))
    }

    /// Gives the bus back.
    pub fn destroy(self) -> I2C {
        self.dev.destroy()
    }
}
