//! The NXP MFRC522 contactless reader IC over SPI: ISO/IEC 14443-3 type A card UIDs
//! (REQA, bit-level anticollision over cascade levels 1–3, SELECT, HLTA).
//!
//! Datasheet: NXP MFRC522 "Standard performance MIFARE and NTAG frontend", rev. 3.9,
//! §9 (registers), §10 (commands); ISO/IEC 14443-3 §6 (type A initialisation and
//! anticollision).
//!
//! Design: our own driver rather than the `mfrc522` crate (0.8, embedded-hal 1.0). That crate
//! spins without bound when the chip stops answering (its soft reset loops while
//! `CommandReg` reads PowerDown, as a floating MISO line reading 0xFF does; its transceive
//! loops while `ComIrqReg` reads 0x00, as a dead chip does), busy-reads the bus for the
//! whole 25 ms timer on every poll without a card, and drops the bus when `init` fails. A
//! classroom reader must poll forever, never hang the daemon, and say when it stopped
//! answering. Here every wait is bounded and sleeps between register reads
//! ([`DelayNs`]), the chip's timer gives up after 5 ms, and CRC_A is computed in software
//! (no coprocessor round trips).
//!
//! A card that was read is sent to HALT: it stays silent to REQA until it leaves the field
//! and comes back, so a card resting on the reader is one tap, not one tap per poll.

use embedded_hal::delay::DelayNs;
use embedded_hal::spi::SpiDevice;

use crate::card::Uid;

// Registers (datasheet §9.2).
const COMMAND: u8 = 0x01;
const COM_IRQ: u8 = 0x04;
const ERROR: u8 = 0x06;
const FIFO_DATA: u8 = 0x09;
const FIFO_LEVEL: u8 = 0x0A;
const BIT_FRAMING: u8 = 0x0D;
const COLL: u8 = 0x0E;
const MODE: u8 = 0x11;
const TX_MODE: u8 = 0x12;
const RX_MODE: u8 = 0x13;
const TX_CONTROL: u8 = 0x14;
const TX_ASK: u8 = 0x15;
const MOD_WIDTH: u8 = 0x24;
const T_MODE: u8 = 0x2A;
const T_PRESCALER: u8 = 0x2B;
const T_RELOAD_H: u8 = 0x2C;
const T_RELOAD_L: u8 = 0x2D;
const VERSION: u8 = 0x37;

// Commands (datasheet §10.3).
const CMD_IDLE: u8 = 0x00;
const CMD_TRANSCEIVE: u8 = 0x0C;
const CMD_SOFT_RESET: u8 = 0x0F;
const POWER_DOWN: u8 = 0x10;

// ComIrqReg bits.
const IRQ_RX: u8 = 0x20;
const IRQ_IDLE: u8 = 0x10;
const IRQ_ERR: u8 = 0x02;
const IRQ_TIMER: u8 = 0x01;

// ErrorReg bits.
const ERR_COLL: u8 = 0x08;
/// BufferOvfl, CRCErr, ParityErr, ProtocolErr (CRC is off in hardware: checked here).
const ERR_FATAL: u8 = 0x10 | 0x04 | 0x02 | 0x01;

// PICC commands (ISO/IEC 14443-3).
const PICC_REQA: u8 = 0x26;
const PICC_HLTA: u8 = 0x50;
const PICC_SEL: [u8; 3] = [0x93, 0x95, 0x97];
/// Cascade tag: the first byte of an incomplete cascade level.
const CASCADE_TAG: u8 = 0x88;

/// Register reads between two sleeps while waiting for the chip; each wait sleeps
/// [`WAIT_STEP_US`] between reads and gives up after [`WAIT_STEPS`].
const WAIT_STEP_US: u32 = 200;
/// 50 × 200 µs = 10 ms: twice the chip's own 5 ms timer.
const WAIT_STEPS: u32 = 50;

/// Version register values of parts that speak this register set: NXP MFRC522 v0.0, v1.0,
/// v2.0, and the Fudan FM17522 clones common on Chinese reader boards (0x88, 0x12, 0xB2).
pub const KNOWN_VERSIONS: [u8; 6] = [0x90, 0x91, 0x92, 0x88, 0x12, 0xB2];

/// Why the reader failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mfrc522Error<E> {
    /// The SPI bus failed.
    Spi(E),
    /// No MFRC522 answers: the version register read this value (0x00 or 0xFF: nothing on
    /// the bus, or wiring).
    NotFound(u8),
    /// The chip stopped answering: a command it was given never finished (reset, brown-out
    /// or a loose wire).
    NoResponse,
    /// The chip reported an error receiving a card's answer (`ErrorReg` bits): a card moved
    /// away mid-read, or interference.
    Receive(u8),
    /// Cards answered in a way that cannot be resolved (collision without a valid
    /// position, or no progress).
    Collision,
    /// A card's answer was malformed: wrong length, BCC or CRC_A.
    Frame(&'static str),
}

impl<E: core::fmt::Debug> core::fmt::Display for Mfrc522Error<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Mfrc522Error::Spi(e) => write!(f, "spi error: {e:?}"),
            Mfrc522Error::NotFound(v) => write!(
                f,
                "no MFRC522 answers (version register reads {v:#04x}; check wiring and chip select)"
            ),
            Mfrc522Error::NoResponse => {
                f.write_str("the MFRC522 stopped answering (a command never finished)")
            }
            Mfrc522Error::Receive(bits) => {
                write!(f, "receive error from a card (ErrorReg {bits:#04x})")
            }
            Mfrc522Error::Collision => f.write_str("several cards at once could not be told apart"),
            Mfrc522Error::Frame(what) => write!(f, "malformed card answer: {what}"),
        }
    }
}

impl<E: core::fmt::Debug> core::error::Error for Mfrc522Error<E> {}

type Result<T, E> = core::result::Result<T, Mfrc522Error<E>>;

/// What the chip received for one transceive.
struct Rx {
    buf: [u8; 16],
    len: usize,
    collision: bool,
}

/// ISO/IEC 14443-3 CRC_A (CRC-16/ISO-IEC-14443-3-A: reflected 0x1021, initial 0x6363), low
/// byte first as sent.
#[must_use]
pub fn crc_a(data: &[u8]) -> [u8; 2] {
    let mut crc: u16 = 0x6363;
    for &b in data {
        let mut x = b ^ (crc as u8);
        x ^= x << 4;
        let x = u16::from(x);
        crc = (crc >> 8) ^ (x << 8) ^ (x << 3) ^ (x >> 4);
    }
    crc.to_le_bytes()
}

/// An MFRC522 on an SPI device (mode 0, up to 10 MHz; chip select by the bus).
pub struct Mfrc522<SPI> {
    spi: SPI,
}

impl<SPI> core::fmt::Debug for Mfrc522<SPI> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Mfrc522")
    }
}

impl<SPI: SpiDevice<Error = E>, E> Mfrc522<SPI> {
    /// The reader on `spi`. Call [`Mfrc522::init`] before polling.
    pub fn new(spi: SPI) -> Self {
        Self { spi }
    }

    /// Gives the bus back.
    pub fn destroy(self) -> SPI {
        self.spi
    }

    fn read(&mut self, reg: u8) -> Result<u8, E> {
        let mut b = [0x80 | (reg << 1), 0];
        self.spi
            .transfer_in_place(&mut b)
            .map_err(Mfrc522Error::Spi)?;
        Ok(b[1])
    }

    fn write(&mut self, reg: u8, val: u8) -> Result<(), E> {
        self.spi.write(&[reg << 1, val]).map_err(Mfrc522Error::Spi)
    }

    /// The chip's version register.
    ///
    /// # Errors
    /// The bus failed.
    pub fn version(&mut self) -> Result<u8, E> {
        self.read(VERSION)
    }

    /// Checks the chip is there, resets it, and configures it for ISO 14443A at 106 kbit/s
    /// with a 5 ms receive timeout and the antenna on. Returns the version register.
    ///
    /// # Errors
    /// [`Mfrc522Error::NotFound`] when the version is not one of [`KNOWN_VERSIONS`];
    /// [`Mfrc522Error::NoResponse`] when the reset never finishes; bus errors.
    pub fn init(&mut self, delay: &mut impl DelayNs) -> Result<u8, E> {
        let v = self.version()?;
        if !KNOWN_VERSIONS.contains(&v) {
            return Err(Mfrc522Error::NotFound(v));
        }
        self.write(COMMAND, CMD_SOFT_RESET)?;
        // The oscillator restarts within ~37.74 µs; the datasheet asks to wait for PowerDown
        // to clear.
        delay.delay_ms(1);
        let mut steps = 0;
        while self.read(COMMAND)? & POWER_DOWN != 0 {
            steps += 1;
            if steps > WAIT_STEPS {
                return Err(Mfrc522Error::NoResponse);
            }
            delay.delay_us(WAIT_STEP_US);
        }
        for (reg, val) in [
            (TX_MODE, 0x00),
            (RX_MODE, 0x00),
            (MOD_WIDTH, 0x26),
            // Timer starts at the end of each transmission (TAuto); 13.56 MHz / (2·0xA9 + 1)
            // = 40 kHz, 25 µs ticks; reload 200 → 5 ms. A card answers REQA in ~90 µs.
            (T_MODE, 0x80),
            (T_PRESCALER, 0xA9),
            (T_RELOAD_H, 0x00),
            (T_RELOAD_L, 200),
            // 100 % ASK modulation; CRC preset 0x6363 (ISO 14443-3).
            (TX_ASK, 0x40),
            (MODE, 0x3D),
        ] {
            self.write(reg, val)?;
        }
        let tx = self.read(TX_CONTROL)?;
        self.write(TX_CONTROL, tx | 0x03)?;
        Ok(v)
    }

    /// Sends `tx` (the last byte with `last_bits` valid bits, 0 = all 8) and receives the
    /// answer aligned so its first bit lands at bit `align` of the first byte. `None` when
    /// no card answered before the timer ran out.
    fn transceive(
        &mut self,
        tx: &[u8],
        last_bits: u8,
        align: u8,
        delay: &mut impl DelayNs,
    ) -> Result<Option<Rx>, E> {
        self.write(COMMAND, CMD_IDLE)?;
        self.write(COM_IRQ, 0x7F)?;
        self.write(FIFO_LEVEL, 0x80)?;
        let mut frame = [0u8; 17];
        frame[0] = FIFO_DATA << 1;
        frame[1..=tx.len()].copy_from_slice(tx);
        self.spi
            .write(&frame[..=tx.len()])
            .map_err(Mfrc522Error::Spi)?;
        self.write(COMMAND, CMD_TRANSCEIVE)?;
        self.write(
            BIT_FRAMING,
            0x80 | ((align & 0x07) << 4) | (last_bits & 0x07),
        )?;
        let mut steps = 0;
        let irq = loop {
            let irq = self.read(COM_IRQ)?;
            if irq & (IRQ_RX | IRQ_IDLE | IRQ_ERR | IRQ_TIMER) != 0 {
                break irq;
            }
            steps += 1;
            if steps > WAIT_STEPS {
                self.write(COMMAND, CMD_IDLE)?;
                return Err(Mfrc522Error::NoResponse);
            }
            delay.delay_us(WAIT_STEP_US);
        };
        self.write(BIT_FRAMING, 0)?;
        let err = self.read(ERROR)?;
        if err & ERR_FATAL != 0 {
            return Err(Mfrc522Error::Receive(err));
        }
        let collision = err & ERR_COLL != 0;
        if irq & (IRQ_RX | IRQ_IDLE) == 0 && !collision {
            // Only the timer fired: nobody answered.
            return Ok(None);
        }
        let level = usize::from(self.read(FIFO_LEVEL)? & 0x7F);
        if level > 16 {
            return Err(Mfrc522Error::Frame("more than 16 bytes"));
        }
        let mut buf = [0u8; 16];
        if level > 0 {
            // One read transfer: each byte sent addresses the FIFO again; the last is 0.
            let mut xfer = [0x80 | (FIFO_DATA << 1); 17];
            xfer[level] = 0;
            self.spi
                .transfer_in_place(&mut xfer[..=level])
                .map_err(Mfrc522Error::Spi)?;
            buf[..level].copy_from_slice(&xfer[1..=level]);
        }
        Ok(Some(Rx {
            buf,
            len: level,
            collision,
        }))
    }

    /// Looks for a card entering the field. `Some(uid)` once per presentation: the card is
    /// halted after it is read.
    ///
    /// # Errors
    /// The chip stopped answering, a bus error, or a card answer that could not be read
    /// (moved away, two cards at once). A failed read is not retried here: the next poll
    /// tries again.
    pub fn poll(&mut self, delay: &mut impl DelayNs) -> Result<Option<Uid>, E> {
        // REQA is a 7-bit short frame. Cards of different types answer different ATQAs and
        // collide here; anticollision sorts that out.
        let Some(atqa) = self.transceive(&[PICC_REQA], 7, 0, delay)? else {
            return Ok(None);
        };
        if !atqa.collision && atqa.len != 2 {
            return Err(Mfrc522Error::Frame("ATQA is not 2 bytes"));
        }
        let uid = self.select(delay)?;
        // HLTA: a card that answers anything is not halted; silence is success.
        let mut hlta = [PICC_HLTA, 0, 0, 0];
        let crc = crc_a(&hlta[..2]);
        hlta[2..].copy_from_slice(&crc);
        let _ = self.transceive(&hlta, 0, 0, delay)?;
        Ok(Some(uid))
    }

    /// Anticollision and SELECT over up to three cascade levels.
    fn select(&mut self, delay: &mut impl DelayNs) -> Result<Uid, E> {
        let mut uid = [0u8; 10];
        let mut n = 0usize;
        for sel in PICC_SEL {
            // tx: SEL, NVB, then the 5 bytes (CLn + BCC) as they become known.
            let mut tx = [0u8; 9];
            tx[0] = sel;
            let mut known: u8 = 0;
            // At most one collision per bit of the 32 UID bits.
            let mut rounds = 0;
            while known < 40 {
                rounds += 1;
                if rounds > 33 {
                    return Err(Mfrc522Error::Collision);
                }
                let whole = known / 8;
                let bits = known % 8;
                tx[1] = ((2 + whole) << 4) | bits;
                let send = 2 + usize::from(whole) + usize::from(bits > 0);
                let Some(rx) = self.transceive(&tx[..send], bits, bits, delay)? else {
                    return Err(Mfrc522Error::Frame("the card left during anticollision"));
                };
                // The answer starts at bit `known`: merge the first byte under a mask.
                let at = 2 + usize::from(whole);
                let room = 5 - usize::from(whole);
                if rx.len == 0 || rx.len > room {
                    return Err(Mfrc522Error::Frame(
                        "anticollision answer of the wrong length",
                    ));
                }
                let mask = 0xFFu8 << bits;
                tx[at] = (tx[at] & !mask) | (rx.buf[0] & mask);
                tx[at + 1..at + rx.len].copy_from_slice(&rx.buf[1..rx.len]);
                if !rx.collision {
                    known = 40;
                    break;
                }
                let coll = self.read(COLL)?;
                if coll & 0x20 != 0 {
                    return Err(Mfrc522Error::Collision);
                }
                let pos = match coll & 0x1F {
                    0 => 32,
                    p => p,
                };
                if pos <= known {
                    return Err(Mfrc522Error::Collision);
                }
                // Keep the bits before the collision and choose the card with a 1 there.
                known = pos;
                let bit = (pos - 1) % 8;
                let byte = 2 + usize::from((pos - 1) / 8);
                tx[byte] = (tx[byte] & ((1u8 << bit) - 1)) | (1 << bit);
            }
            debug_assert_eq!(known, 40);
            if tx[2] ^ tx[3] ^ tx[4] ^ tx[5] != tx[6] {
                return Err(Mfrc522Error::Frame("BCC mismatch"));
            }
            tx[1] = 0x70;
            let crc = crc_a(&tx[..7]);
            tx[7..9].copy_from_slice(&crc);
            let Some(sak) = self.transceive(&tx, 0, 0, delay)? else {
                return Err(Mfrc522Error::Frame("no SAK: the card left"));
            };
            if sak.collision || sak.len != 3 {
                return Err(Mfrc522Error::Frame("SAK is not 3 bytes"));
            }
            if crc_a(&sak.buf[..1]) != [sak.buf[1], sak.buf[2]] {
                return Err(Mfrc522Error::Frame("SAK CRC_A mismatch"));
            }
            if sak.buf[0] & 0x04 != 0 {
                // Incomplete: CLn is CT + 3 UID bytes.
                if tx[2] != CASCADE_TAG || n + 3 > 6 {
                    return Err(Mfrc522Error::Frame("cascade without a cascade tag"));
                }
                uid[n..n + 3].copy_from_slice(&tx[3..6]);
                n += 3;
            } else {
                uid[n..n + 4].copy_from_slice(&tx[2..6]);
                n += 4;
                return Uid::from_bytes(&uid[..n])
                    .map_err(|_| Mfrc522Error::Frame("UID of an impossible length"));
            }
        }
        Err(Mfrc522Error::Frame("more than three cascade levels"))
    }
}

#[cfg(test)]
mod tests {
    use super::crc_a;

    #[test]
    fn crc_a_matches_the_standards_examples() {
        // ISO/IEC 14443-3 Annex B: 0x00 0x00 → 0x1EA0; 0x12 0x34 → 0xCF26.
        assert_eq!(crc_a(&[0x00, 0x00]), [0xA0, 0x1E]);
        assert_eq!(crc_a(&[0x12, 0x34]), [0x26, 0xCF]);
        // HLTA as every reader sends it.
        assert_eq!(crc_a(&[0x50, 0x00]), [0x57, 0xCD]);
    }
}
