#![allow(clippy::unwrap_used)]
//! Level 1: the MFRC522 card reader driver against embedded-hal-mock SPI transactions, and
//! against a register-level simulated chip with ISO 14443A cards in its field.

use embedded_hal::delay::DelayNs;
use embedded_hal_mock::eh1::spi::{Mock, Transaction};
use ketang_drivers::Uid;
use ketang_drivers::mfrc522::{Mfrc522, Mfrc522Error};
use ketang_hw_tests::rfid::{RfidFault, SimMfrc522};

/// A delay that only adds up how long the driver would have slept.
#[derive(Debug, Default)]
struct Slept(u64);

impl DelayNs for Slept {
    fn delay_ns(&mut self, ns: u32) {
        self.0 += u64::from(ns);
    }
}

fn write(bytes: &[u8]) -> [Transaction<u8>; 3] {
    [
        Transaction::transaction_start(),
        Transaction::write_vec(bytes.to_vec()),
        Transaction::transaction_end(),
    ]
}

fn read(reg: u8, value: u8) -> [Transaction<u8>; 3] {
    [
        Transaction::transaction_start(),
        Transaction::transfer_in_place(vec![0x80 | (reg << 1), 0], vec![0, value]),
        Transaction::transaction_end(),
    ]
}

fn reader() -> (Mfrc522<SimMfrc522>, SimMfrc522) {
    let sim = SimMfrc522::new();
    let mut r = Mfrc522::new(sim.clone());
    assert_eq!(r.init(&mut Slept::default()).unwrap(), 0x92);
    (r, sim)
}

#[test]
fn a_missing_chip_is_reported_with_the_version_it_read() {
    let expect = read(0x37, 0x00);
    let mut spi = Mock::new(&expect);
    let mut r = Mfrc522::new(spi.clone());
    let e = r.init(&mut Slept::default()).unwrap_err();
    assert_eq!(e, Mfrc522Error::NotFound(0x00));
    assert!(e.to_string().contains("version register reads 0x00"), "{e}");
    spi.done();
}

#[test]
fn a_poll_without_a_card_is_one_short_exchange_ended_by_the_chips_timer() {
    let mut expect = Vec::new();
    expect.extend(write(&[0x01 << 1, 0x00])); // Idle
    expect.extend(write(&[0x04 << 1, 0x7F])); // clear interrupts
    expect.extend(write(&[0x0A << 1, 0x80])); // flush FIFO
    expect.extend(write(&[0x09 << 1, 0x26])); // REQA into the FIFO
    expect.extend(write(&[0x01 << 1, 0x0C])); // Transceive
    expect.extend(write(&[0x0D << 1, 0x87])); // StartSend, 7-bit frame, RxAlign 0
    expect.extend(read(0x04, 0x01)); // TimerIRq: nobody answered
    expect.extend(write(&[0x0D << 1, 0x00]));
    expect.extend(read(0x06, 0x00)); // no error
    let mut spi = Mock::new(&expect);
    let mut r = Mfrc522::new(spi.clone());
    assert_eq!(r.poll(&mut Slept::default()).unwrap(), None);
    spi.done();
}

#[test]
fn a_card_is_read_once_per_presentation() {
    let (mut r, sim) = reader();
    let mut d = Slept::default();
    assert_eq!(r.poll(&mut d).unwrap(), None);
    sim.present(&[0x04, 0x0A, 0x9E, 0x95], 0x08);
    assert_eq!(
        r.poll(&mut d).unwrap(),
        Some(Uid::from_hex("040A9E95").unwrap())
    );
    // Halted while it rests on the reader.
    for _ in 0..5 {
        assert_eq!(r.poll(&mut d).unwrap(), None);
    }
    // Taken away and tapped again: a second tap.
    sim.remove(&[0x04, 0x0A, 0x9E, 0x95]);
    assert_eq!(r.poll(&mut d).unwrap(), None);
    sim.present(&[0x04, 0x0A, 0x9E, 0x95], 0x08);
    assert_eq!(
        r.poll(&mut d).unwrap(),
        Some(Uid::from_hex("040A9E95").unwrap())
    );
}

#[test]
fn double_and_triple_size_uids_are_read_through_the_cascade_levels() {
    let (mut r, sim) = reader();
    let mut d = Slept::default();
    let seven = [0x04, 0x51, 0x2C, 0x7A, 0x13, 0x5E, 0x80];
    sim.present(&seven, 0x00);
    assert_eq!(
        r.poll(&mut d).unwrap(),
        Some(Uid::from_bytes(&seven).unwrap())
    );
    sim.remove(&seven);
    let ten = [0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99];
    sim.present(&ten, 0x20);
    assert_eq!(
        r.poll(&mut d).unwrap(),
        Some(Uid::from_bytes(&ten).unwrap())
    );
}

#[test]
fn two_cards_at_once_are_told_apart_by_anticollision_and_both_read() {
    let (mut r, sim) = reader();
    let mut d = Slept::default();
    // Differ first in bit 3 of the second byte; then in the last byte.
    let a = [0x04, 0x0A, 0x9E, 0x95];
    let b = [0x04, 0x02, 0x9E, 0x11];
    sim.present(&a, 0x08);
    sim.present(&b, 0x08);
    let first = r.poll(&mut d).unwrap().unwrap();
    let second = r.poll(&mut d).unwrap().unwrap();
    let mut got = [first, second];
    got.sort_by_key(|u| u.as_bytes().to_vec());
    let mut want = [Uid::from_bytes(&a).unwrap(), Uid::from_bytes(&b).unwrap()];
    want.sort_by_key(|u| u.as_bytes().to_vec());
    assert_eq!(got, want);
    assert_eq!(r.poll(&mut d).unwrap(), None);
    // Three cards that share their first two bytes.
    sim.remove(&a);
    sim.remove(&b);
    let cards = [
        [0x04, 0x0A, 0x00, 0x01],
        [0x04, 0x0A, 0x00, 0x02],
        [0x04, 0x0A, 0x80, 0x03],
    ];
    for c in &cards {
        sim.present(c, 0x08);
    }
    let mut read: Vec<Vec<u8>> = (0..3)
        .map(|_| r.poll(&mut d).unwrap().unwrap().as_bytes().to_vec())
        .collect();
    read.sort();
    assert_eq!(read, cards.iter().map(|c| c.to_vec()).collect::<Vec<_>>());
}

#[test]
fn polling_an_empty_field_uses_the_bus_briefly_and_sleeps_between_waits() {
    let (mut r, sim) = reader();
    let mut d = Slept::default();
    let before = sim.accesses();
    for _ in 0..100 {
        assert_eq!(r.poll(&mut d).unwrap(), None);
    }
    let per_poll = (sim.accesses() - before) / 100;
    assert!(
        per_poll <= 10,
        "{per_poll} register accesses per empty poll"
    );
}

#[test]
fn dead_floating_failing_and_stuck_chips_are_errors_that_say_so_not_hangs() {
    for (fault, want) in [
        (RfidFault::Dead, "version register reads 0x00"),
        (RfidFault::Floating, "version register reads 0xff"),
        (RfidFault::BusError, "spi error"),
    ] {
        let sim = SimMfrc522::new();
        sim.set_fault(fault);
        let e = Mfrc522::new(sim).init(&mut Slept::default()).unwrap_err();
        assert!(e.to_string().contains(want), "{fault:?}: {e}");
    }
    // A chip that was fine, then stops finishing commands: bounded wait, then an error.
    let (mut r, sim) = reader();
    sim.present(&[0x04, 0x0A, 0x9E, 0x95], 0x08);
    sim.set_fault(RfidFault::Stuck);
    let mut d = Slept::default();
    let e = r.poll(&mut d).unwrap_err();
    assert_eq!(e, Mfrc522Error::NoResponse);
    assert!(d.0 <= 20_000_000, "waited {} ns", d.0);
    // Unplugged mid-use (MISO pulled high): garbage is an error, never a card.
    sim.set_fault(RfidFault::Floating);
    assert!(r.poll(&mut d).is_err());
    // Back to normal: the card is read.
    sim.set_fault(RfidFault::None);
    assert!(r.init(&mut d).is_ok());
    assert_eq!(
        r.poll(&mut d).unwrap(),
        Some(Uid::from_hex("040A9E95").unwrap())
    );
}

/// A bus that answers every byte with noise from a seeded generator: a loose wire or a
/// different chip on the select line.
struct Noise(u64);

impl embedded_hal::spi::ErrorType for Noise {
    type Error = core::convert::Infallible;
}

impl embedded_hal::spi::SpiDevice for Noise {
    fn transaction(
        &mut self,
        ops: &mut [embedded_hal::spi::Operation<'_, u8>],
    ) -> Result<(), Self::Error> {
        use embedded_hal::spi::Operation;
        let mut next = || {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 56) as u8
        };
        for op in ops.iter_mut() {
            match op {
                Operation::Read(b) | Operation::TransferInPlace(b) => {
                    b.iter_mut().for_each(|x| *x = next())
                }
                Operation::Transfer(r, _) => r.iter_mut().for_each(|x| *x = next()),
                Operation::Write(_) | Operation::DelayNs(_) => {}
            }
        }
        Ok(())
    }
}

proptest::proptest! {
    /// Garbage from the bus never panics the driver, never hangs it (every wait is bounded),
    /// and never becomes a card UID of an impossible length.
    #[test]
    fn a_noisy_bus_never_panics_hangs_or_invents_a_malformed_uid(seed in proptest::prelude::any::<u64>()) {
        let mut r = Mfrc522::new(Noise(seed));
        let mut d = Slept::default();
        let _ = r.init(&mut d);
        for _ in 0..20 {
            if let Ok(Some(uid)) = r.poll(&mut d) {
                proptest::prop_assert!(matches!(uid.as_bytes().len(), 4 | 7 | 10));
            }
        }
        // 20 polls, each at most a few bounded waits of 10 ms.
        proptest::prop_assert!(d.0 < 20 * 6 * 10_000_000, "slept {} ns", d.0);
    }
}
