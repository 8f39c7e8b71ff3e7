#![allow(clippy::unwrap_used)]
//! Level 1: the MLX90614 driver against embedded-hal-mock I2C transactions.

use embedded_hal::i2c::ErrorKind;
use embedded_hal_mock::eh1::i2c::{Mock, Transaction};
use ketang_drivers::thermometer::{DEFAULT_ADDRESS, Thermometer, ThermometerError};

/// SMBus PEC: CRC-8, polynomial 0x07, over every byte of the transfer.
fn pec(bytes: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &b in bytes {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The bytes the sensor sends for `celsius` from register `reg`, with a valid PEC.
fn reading(reg: u8, celsius: f32) -> Vec<u8> {
    let raw = ((celsius + 273.15) * 50.0).round() as u16;
    let [lo, hi] = raw.to_le_bytes();
    let a = DEFAULT_ADDRESS << 1;
    vec![lo, hi, pec(&[a, reg, a | 1, lo, hi])]
}

#[test]
fn an_object_temperature_is_read_with_its_pec_checked() {
    let expect = [
        Transaction::write_read(DEFAULT_ADDRESS, vec![0x07], reading(0x07, 36.6)),
        Transaction::write_read(DEFAULT_ADDRESS, vec![0x06], reading(0x06, 22.0)),
    ];
    let mut t = Thermometer::new(Mock::new(&expect), DEFAULT_ADDRESS).unwrap();
    assert!((t.object_c().unwrap() - 36.6).abs() < 0.02);
    assert!((t.ambient_c().unwrap() - 22.0).abs() < 0.02);
    t.destroy().done();
}

#[test]
fn a_corrupted_transfer_is_a_pec_error_not_a_temperature() {
    let mut bytes = reading(0x07, 36.6);
    bytes[0] ^= 0x10; // a bit flipped on the wire
    let expect = [Transaction::write_read(DEFAULT_ADDRESS, vec![0x07], bytes)];
    let mut t = Thermometer::new(Mock::new(&expect), DEFAULT_ADDRESS).unwrap();
    let e = t.object_c().unwrap_err();
    assert_eq!(e, ThermometerError::Pec);
    assert!(e.to_string().contains("packet error code"), "{e}");
    t.destroy().done();
}

#[test]
fn nothing_at_the_address_is_an_i2c_error() {
    let expect = [
        Transaction::write_read(DEFAULT_ADDRESS, vec![0x07], vec![0, 0, 0]).with_error(
            ErrorKind::NoAcknowledge(embedded_hal::i2c::NoAcknowledgeSource::Address),
        ),
    ];
    let mut t = Thermometer::new(Mock::new(&expect), DEFAULT_ADDRESS).unwrap();
    assert!(matches!(
        t.object_c(),
        Err(ThermometerError::I2c(ErrorKind::NoAcknowledge(_)))
    ));
    t.destroy().done();
}

#[test]
fn an_unusable_address_is_refused_at_once() {
    let mut bus = Mock::new(&[]);
    let e = Thermometer::new(bus.clone(), 0x80).map(|_| ()).unwrap_err();
    assert_eq!(e, ThermometerError::Address(0x80));
    bus.done();
}
