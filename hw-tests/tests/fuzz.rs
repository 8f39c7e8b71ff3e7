#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Fuzzing the drivers' parsers of outside input (docs/development.md, "Fuzzing"): what a
//! card reader, a keyboard-wedge reader, a thermometer and a flat panel send is arbitrary
//! bytes here. Property: no panic, no hang, and every outcome is a value or an error.
//! proptest over arbitrary bytes and over mutations of the committed seeds in
//! `hw-tests/fuzz/corpus/`; `PROPTEST_CASES` sets the length (CI: the default 256 per
//! target; longer: `PROPTEST_CASES=200000 cargo test -p ketang-hw-tests --test fuzz`).

use std::collections::VecDeque;

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::{self, I2c};
use embedded_hal::spi::{self, Operation, SpiDevice};
use ketang_drivers::Uid;
use ketang_drivers::mfrc522::Mfrc522;
use ketang_drivers::panel::{self as protocol, Dialect, Input, Panel, Request};
use ketang_drivers::thermometer::Thermometer;
use ketang_drivers::wedge::{WedgeDecoder, WedgeFormat};
use proptest::prelude::*;

/// Seeds of `hw-tests/fuzz/corpus/<name>/`.
fn seeds(name: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

/// A seed with random edits: byte flips, inserts, deletes, a cut.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    (
        0..n,
        prop::collection::vec((0usize..4, any::<usize>(), any::<u8>()), 0..8),
    )
        .prop_map(move |(i, edits)| {
            let mut b = seeds[i].clone();
            for (op, at, byte) in edits {
                let at = if b.is_empty() { 0 } else { at % (b.len() + 1) };
                match op {
                    0 if at < b.len() => b[at] ^= byte | 1,
                    1 => b.insert(at, byte),
                    2 if at < b.len() => {
                        b.remove(at);
                    }
                    _ => b.truncate(at),
                }
            }
            b
        })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..512)
}

/// A bus that answers with the fuzz input (then zeros), and fails where it says.
struct Noise {
    data: VecDeque<u8>,
    fail_every: u8,
    n: u8,
}

impl Noise {
    fn new(data: Vec<u8>, fail_every: u8) -> Self {
        Self {
            data: data.into(),
            fail_every,
            n: 0,
        }
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.data.pop_front().unwrap_or(0);
        }
    }

    fn failing(&mut self) -> bool {
        self.n = self.n.wrapping_add(1);
        self.fail_every != 0 && self.n.is_multiple_of(self.fail_every)
    }
}

#[derive(Debug)]
struct BusError;

impl spi::Error for BusError {
    fn kind(&self) -> spi::ErrorKind {
        spi::ErrorKind::Other
    }
}

impl i2c::Error for BusError {
    fn kind(&self) -> i2c::ErrorKind {
        i2c::ErrorKind::Other
    }
}

impl spi::ErrorType for Noise {
    type Error = BusError;
}

impl SpiDevice for Noise {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), BusError> {
        if self.failing() {
            return Err(BusError);
        }
        for op in ops {
            match op {
                Operation::Read(b) | Operation::TransferInPlace(b) => self.fill(b),
                Operation::Transfer(r, _) => self.fill(r),
                Operation::Write(_) | Operation::DelayNs(_) => {}
            }
        }
        Ok(())
    }
}

impl i2c::ErrorType for Noise {
    type Error = BusError;
}

impl I2c for Noise {
    fn transaction(
        &mut self,
        _address: u8,
        ops: &mut [i2c::Operation<'_>],
    ) -> Result<(), BusError> {
        if self.failing() {
            return Err(BusError);
        }
        for op in ops {
            if let i2c::Operation::Read(b) = op {
                self.fill(b);
            }
        }
        Ok(())
    }
}

impl embedded_io::Error for BusError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

impl embedded_io::ErrorType for Noise {
    type Error = BusError;
}

impl embedded_io::Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, BusError> {
        if self.failing() {
            return Err(BusError);
        }
        let n = buf.len().min(self.data.len()).min(7);
        for b in &mut buf[..n] {
            *b = self.data.pop_front().unwrap_or(0);
        }
        Ok(n)
    }
}

impl embedded_io::ReadReady for Noise {
    fn read_ready(&mut self) -> Result<bool, BusError> {
        Ok(!self.data.is_empty())
    }
}

impl embedded_io::Write for Noise {
    fn write(&mut self, buf: &[u8]) -> Result<usize, BusError> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), BusError> {
        Ok(())
    }
}

struct NoDelay;

impl DelayNs for NoDelay {
    fn delay_ns(&mut self, _ns: u32) {}
}

const REQUESTS: [Request; 6] = [
    Request::SetPower(true),
    Request::GetPower,
    Request::SetInput(Input::Hdmi1),
    Request::GetInput,
    Request::SetVolume(30),
    Request::GetVolume,
];

fn dialect(i: u8) -> Dialect {
    match i % 3 {
        0 => Dialect::Benq,
        1 => Dialect::Smart,
        _ => Dialect::Lg { set_id: i },
    }
}

proptest! {
    #[test]
    fn an_mfrc522_answering_noise_gives_a_card_nothing_or_an_error(data in bytes(), fail in 0u8..8) {
        let mut chip = Mfrc522::new(Noise::new(data, fail));
        let _ = chip.init(&mut NoDelay);
        for _ in 0..4 {
            let _ = chip.poll(&mut NoDelay);
        }
    }

    #[test]
    fn a_thermometer_answering_noise_gives_a_reading_or_an_error(data in bytes(), fail in 0u8..8) {
        if let Ok(mut t) = Thermometer::new(Noise::new(data, fail), 0x5A) {
            for _ in 0..4 {
                if let Ok(c) = t.object_c() {
                    prop_assert!(c.is_finite(), "a reading that is not a number: {c}");
                }
                let _ = t.ambient_c();
            }
        }
    }

    #[test]
    fn any_key_sequence_decodes_to_cards_or_errors(
        keys in prop::collection::vec((any::<u16>(), 0u64..300), 0..200),
        format in 0u8..3,
    ) {
        let format = match format {
            0 => WedgeFormat::Hex,
            1 => WedgeFormat::Decimal,
            _ => WedgeFormat::DecimalReversed,
        };
        let mut d = WedgeDecoder::new(format);
        let mut now = 0u64;
        for (code, gap) in keys {
            now += gap;
            if let Some(Ok(uid)) = d.key(code, now) {
                prop_assert!(matches!(uid.as_bytes().len(), 4 | 7 | 10));
            }
        }
    }

    #[test]
    fn any_bytes_are_a_uid_or_a_length_error(b in bytes()) {
        match Uid::from_bytes(&b) {
            Ok(u) => prop_assert_eq!(u.as_bytes(), &b[..]),
            Err(_) => prop_assert!(!matches!(b.len(), 4 | 7 | 10)),
        }
    }

    #[test]
    fn a_panel_answering_noise_gives_a_reply_or_an_error(
        data in prop_oneof![bytes(), mutated(seeds("panel"))],
        d in any::<u8>(),
        r in 0usize..6,
        fail in 0u8..16,
    ) {
        let mut panel = Panel::new(Noise::new(data, fail), dialect(d), 50);
        let _ = panel.request(REQUESTS[r], &mut NoDelay);
    }

    #[test]
    fn any_panel_line_parses_to_a_reply_noise_or_garbage(
        line in prop_oneof![bytes(), mutated(seeds("panel"))],
        d in any::<u8>(),
        r in 0usize..6,
    ) {
        let (dialect, req) = (dialect(d), REQUESTS[r]);
        let sent = protocol::encode(dialect, req);
        let _ = protocol::parse(dialect, req, sent.as_bytes(), &line);
    }
}
