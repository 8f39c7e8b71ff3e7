//! A simulated MFRC522 on an SPI bus, at register level, with ISO/IEC 14443-3 type A cards
//! in its field.
//!
//! It implements the chip from the datasheet (NXP MFRC522 rev. 3.9), not from the driver:
//! SPI address bytes (`0x80 | reg << 1` to read, `reg << 1` to write, each following byte
//! in a read transfer addressing the next register), the FIFO, `CommandReg` (Idle,
//! Transceive, SoftReset), `BitFramingReg` StartSend with TxLastBits/RxAlign, `ComIrqReg`
//! with Set1 semantics, `ErrorReg` CollErr and `CollReg` CollPos. Cards follow the
//! ISO/IEC 14443-3 state machine (IDLE → READY on REQA, anticollision by bit position
//! with real collisions between cards, SELECT with BCC and CRC_A, ACTIVE → HALT on HLTA,
//! back to IDLE when taken off the field). Time is collapsed: a transmission completes at
//! StartSend, and a silent field sets TimerIRq at once.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use embedded_hal::spi::{self, ErrorKind, Operation, SpiDevice};

const COMMAND: usize = 0x01;
const COM_IRQ: usize = 0x04;
const ERROR: usize = 0x06;
const FIFO_DATA: usize = 0x09;
const FIFO_LEVEL: usize = 0x0A;
const CONTROL: usize = 0x0C;
const BIT_FRAMING: usize = 0x0D;
const COLL: usize = 0x0E;
const T_MODE: usize = 0x2A;
const VERSION: usize = 0x37;

/// How the simulated chip misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RfidFault {
    /// A working chip.
    None,
    /// Nothing on the bus: every byte reads 0x00.
    Dead,
    /// MISO floating high: every byte reads 0xFF.
    Floating,
    /// The SPI controller itself fails every transfer.
    BusError,
    /// The chip answers registers but never finishes a command (a brown-out left it
    /// half-configured).
    Stuck,
}

/// An ISO 14443A card.
#[derive(Debug, Clone)]
struct Card {
    uid: Vec<u8>,
    /// SAK of the last cascade level (0x08: MIFARE Classic 1K, 0x00: Ultralight).
    sak: u8,
    state: CardState,
    /// Cascade level reached in READY (0-based).
    level: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CardState {
    Idle,
    Ready,
    Active,
    Halt,
}

impl Card {
    /// The 5 bytes of cascade level `level`: CLn (with cascade tag when incomplete) + BCC.
    fn cln(&self, level: usize) -> Option<[u8; 5]> {
        let four: [u8; 4] = match (self.uid.len(), level) {
            (4, 0) => [self.uid[0], self.uid[1], self.uid[2], self.uid[3]],
            (7, 0) | (10, 0) => [0x88, self.uid[0], self.uid[1], self.uid[2]],
            (7, 1) => [self.uid[3], self.uid[4], self.uid[5], self.uid[6]],
            (10, 1) => [0x88, self.uid[3], self.uid[4], self.uid[5]],
            (10, 2) => [self.uid[6], self.uid[7], self.uid[8], self.uid[9]],
            _ => return None,
        };
        let bcc = four[0] ^ four[1] ^ four[2] ^ four[3];
        Some([four[0], four[1], four[2], four[3], bcc])
    }

    fn last_level(&self) -> usize {
        match self.uid.len() {
            4 => 0,
            7 => 1,
            _ => 2,
        }
    }

    fn atqa(&self) -> [u8; 2] {
        match self.uid.len() {
            4 => [0x04, 0x00],
            7 => [0x44, 0x00],
            _ => [0x84, 0x00],
        }
    }
}

/// CRC_A as ISO/IEC 14443-3 Annex B computes it (bitwise, reflected polynomial 0x8408).
fn crc_a(data: &[u8]) -> [u8; 2] {
    let mut crc: u16 = 0x6363;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    crc.to_le_bytes()
}

fn bit(bytes: &[u8], i: usize) -> u8 {
    (bytes[i / 8] >> (i % 8)) & 1
}

#[derive(Debug)]
struct Chip {
    regs: [u8; 64],
    fifo: Vec<u8>,
    cards: Vec<Card>,
    fault: RfidFault,
    /// Register transfers seen (reads + writes), to measure bus use.
    accesses: u64,
}

impl Chip {
    fn reset(&mut self) {
        self.regs = [0; 64];
        self.regs[COMMAND] = 0x20;
        self.regs[COM_IRQ] = 0x14;
        self.regs[VERSION] = 0x92;
        self.fifo.clear();
    }

    fn read(&mut self, reg: usize) -> u8 {
        self.accesses += 1;
        match reg {
            FIFO_DATA => {
                if self.fifo.is_empty() {
                    0
                } else {
                    self.fifo.remove(0)
                }
            }
            FIFO_LEVEL => u8::try_from(self.fifo.len().min(64)).unwrap_or(64),
            _ => self.regs[reg],
        }
    }

    fn write(&mut self, reg: usize, v: u8) {
        self.accesses += 1;
        match reg {
            COMMAND => {
                let cmd = v & 0x0F;
                if cmd == 0x0F {
                    self.reset();
                } else {
                    self.regs[COMMAND] = v & 0x3F;
                }
            }
            COM_IRQ => {
                let mask = v & 0x7F;
                if v & 0x80 != 0 {
                    self.regs[COM_IRQ] |= mask;
                } else {
                    self.regs[COM_IRQ] &= !mask;
                }
            }
            FIFO_DATA => {
                if self.fifo.len() < 64 {
                    self.fifo.push(v);
                }
            }
            FIFO_LEVEL => {
                if v & 0x80 != 0 {
                    self.fifo.clear();
                    self.regs[ERROR] &= !0x10;
                }
            }
            BIT_FRAMING => {
                self.regs[BIT_FRAMING] = v & 0x7F;
                if v & 0x80 != 0
                    && self.regs[COMMAND] & 0x0F == 0x0C
                    && self.fault != RfidFault::Stuck
                {
                    self.transceive(v & 0x07, (v >> 4) & 0x07);
                }
            }
            VERSION => {}
            _ => self.regs[reg] = v,
        }
    }

    /// The radio: sends the FIFO, lets the cards answer, fills the FIFO with the answer.
    fn transceive(&mut self, tx_last_bits: u8, rx_align: u8) {
        let tx: Vec<u8> = std::mem::take(&mut self.fifo);
        self.regs[ERROR] = 0;
        self.regs[COLL] = 0x80 | 0x20;
        self.regs[CONTROL] &= !0x07;
        self.regs[COM_IRQ] |= 0x40; // TxIRq
        let answers = self.cards_answer(&tx, tx_last_bits);
        match answers {
            Answer::None => {
                if self.regs[T_MODE] & 0x80 != 0 {
                    self.regs[COM_IRQ] |= 0x01; // TimerIRq
                }
            }
            Answer::Bytes(bytes, start_bit) => {
                // Bits land in the FIFO starting at RxAlign of the first byte.
                debug_assert_eq!(usize::from(rx_align), start_bit % 8);
                self.fifo = bytes;
                self.regs[COM_IRQ] |= 0x20 | 0x10; // RxIRq, IdleIRq
            }
            Answer::Collision { bytes, pos } => {
                self.fifo = bytes;
                self.regs[ERROR] |= 0x08;
                // CollPos: 1..32 (0 means 32), counted from the start of the CLn bits.
                self.regs[COLL] = (pos % 32) as u8;
                self.regs[COM_IRQ] |= 0x20 | 0x10 | 0x02;
            }
        }
        self.regs[COMMAND] &= !0x0F;
    }

    fn cards_answer(&mut self, tx: &[u8], last_bits: u8) -> Answer {
        // REQA / WUPA: a 7-bit short frame.
        if tx.len() == 1 && last_bits == 7 {
            let wake_halted = tx[0] == 0x52;
            if tx[0] != 0x26 && !wake_halted {
                return Answer::None;
            }
            let mut atqa: Option<[u8; 2]> = None;
            for c in &mut self.cards {
                if c.state == CardState::Idle || (wake_halted && c.state == CardState::Halt) {
                    c.state = CardState::Ready;
                    c.level = 0;
                    let a = c.atqa();
                    atqa = Some(match atqa {
                        None => a,
                        Some(b) if b == a => a,
                        // Different ATQAs: the antenna hears the 1s of both.
                        Some(b) => [a[0] | b[0], a[1] | b[1]],
                    });
                }
            }
            return atqa.map_or(Answer::None, |a| Answer::Bytes(a.to_vec(), 0));
        }
        // HLTA
        if tx.len() == 4 && tx[0] == 0x50 && tx[1] == 0x00 && crc_a(&tx[..2]) == [tx[2], tx[3]] {
            for c in &mut self.cards {
                if c.state == CardState::Active {
                    c.state = CardState::Halt;
                }
            }
            return Answer::None;
        }
        let Some(level) = [0x93u8, 0x95, 0x97]
            .iter()
            .position(|&s| s == tx.first().copied().unwrap_or(0))
        else {
            return Answer::None;
        };
        if tx.len() < 2 {
            return Answer::None;
        }
        let nvb = tx[1];
        if nvb == 0x70 {
            // SELECT: all 40 bits and CRC_A.
            if tx.len() != 9 || crc_a(&tx[..7]) != [tx[7], tx[8]] {
                return Answer::None;
            }
            let mut sak = None;
            for c in &mut self.cards {
                if c.state != CardState::Ready || c.level != level {
                    continue;
                }
                if c.cln(level).is_some_and(|cl| cl[..] == tx[2..7]) {
                    let s = if level == c.last_level() {
                        c.state = CardState::Active;
                        c.sak
                    } else {
                        c.level += 1;
                        0x04
                    };
                    sak = Some(s);
                } else {
                    c.state = CardState::Idle;
                }
            }
            return sak.map_or(Answer::None, |s| {
                let crc = crc_a(&[s]);
                Answer::Bytes(vec![s, crc[0], crc[1]], 0)
            });
        }
        // ANTICOLLISION: NVB = bytes (incl. SEL, NVB) << 4 | bits.
        let known = usize::from((nvb >> 4).saturating_sub(2)) * 8 + usize::from(nvb & 0x0F);
        if known >= 40 || tx.len() < 2 + known.div_ceil(8) {
            return Answer::None;
        }
        let sent = &tx[2..];
        let mut cls: Vec<[u8; 5]> = Vec::new();
        for c in &self.cards {
            if c.state != CardState::Ready || c.level != level {
                continue;
            }
            if let Some(cl) = c.cln(level)
                && (0..known).all(|i| bit(&cl, i) == bit(sent, i))
            {
                cls.push(cl);
            }
        }
        let Some(first) = cls.first().copied() else {
            return Answer::None;
        };
        // Bits from `known` to 40 as the antenna hears them: a 1 from any card wins (Manchester
        // coding shows both halves: a collision where cards differ).
        let mut heard = [0u8; 5];
        let mut collision = None;
        for i in known..40 {
            let ones = cls.iter().filter(|cl| bit(&cl[..], i) == 1).count();
            if ones > 0 && ones < cls.len() && collision.is_none() {
                collision = Some(i);
            }
            if collision.is_some_and(|p| i > p) {
                break;
            }
            if ones > 0 || bit(&first, i) == 1 {
                heard[i / 8] |= 1 << (i % 8);
            }
        }
        let bytes = heard[known / 8..].to_vec();
        match collision {
            None => Answer::Bytes(bytes, known),
            Some(p) => Answer::Collision { bytes, pos: p + 1 },
        }
    }
}

enum Answer {
    None,
    /// Bytes from the byte holding bit `start` of the CLn on.
    Bytes(Vec<u8>, usize),
    Collision {
        bytes: Vec<u8>,
        pos: usize,
    },
}

/// The simulated chip as an SPI device; clones share the chip (one for the driver, one for
/// the test to move cards and count bus accesses).
#[derive(Debug, Clone)]
pub struct SimMfrc522 {
    chip: Arc<Mutex<Chip>>,
}

/// The simulated bus's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimSpiError;

impl spi::Error for SimSpiError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl Default for SimMfrc522 {
    fn default() -> Self {
        Self::new()
    }
}

impl SimMfrc522 {
    /// A chip as it powers up, with no card in the field.
    #[must_use]
    pub fn new() -> Self {
        let mut chip = Chip {
            regs: [0; 64],
            fifo: Vec::new(),
            cards: Vec::new(),
            fault: RfidFault::None,
            accesses: 0,
        };
        chip.reset();
        Self {
            chip: Arc::new(Mutex::new(chip)),
        }
    }

    fn chip(&self) -> MutexGuard<'_, Chip> {
        self.chip.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a card with `uid` (4, 7 or 10 bytes) and final SAK `sak` on the reader.
    pub fn present(&self, uid: &[u8], sak: u8) {
        self.chip().cards.push(Card {
            uid: uid.to_vec(),
            sak,
            state: CardState::Idle,
            level: 0,
        });
    }

    /// Takes the card with `uid` off the reader (it loses power and forgets HALT).
    pub fn remove(&self, uid: &[u8]) {
        self.chip().cards.retain(|c| c.uid != uid);
    }

    /// Makes the chip misbehave from now on.
    pub fn set_fault(&self, fault: RfidFault) {
        self.chip().fault = fault;
    }

    /// Register reads and writes so far.
    #[must_use]
    pub fn accesses(&self) -> u64 {
        self.chip().accesses
    }
}

impl spi::ErrorType for SimMfrc522 {
    type Error = SimSpiError;
}

impl SpiDevice for SimMfrc522 {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), SimSpiError> {
        let mut chip = self.chip();
        let fixed = match chip.fault {
            RfidFault::BusError => return Err(SimSpiError),
            RfidFault::Dead => Some(0x00),
            RfidFault::Floating => Some(0xFF),
            RfidFault::None | RfidFault::Stuck => None,
        };
        // The transaction is one chip-select window: the first byte is an address; in a
        // write, the rest is data for it; in a read, each byte returns the register the
        // previous byte addressed.
        let mut first = true;
        let mut write_reg: Option<usize> = None;
        let mut read_reg: Option<usize> = None;
        let mut clock = |mosi: u8, chip: &mut Chip| -> u8 {
            if let Some(v) = fixed {
                return v;
            }
            if first {
                first = false;
                let reg = usize::from((mosi >> 1) & 0x3F);
                if mosi & 0x80 != 0 {
                    read_reg = Some(reg);
                } else {
                    write_reg = Some(reg);
                }
                return 0;
            }
            if let Some(reg) = write_reg {
                chip.write(reg, mosi);
                return 0;
            }
            let out = read_reg.map_or(0, |r| chip.read(r));
            read_reg = Some(usize::from((mosi >> 1) & 0x3F));
            out
        };
        for op in ops.iter_mut() {
            match op {
                Operation::Write(w) => {
                    for &b in w.iter() {
                        clock(b, &mut chip);
                    }
                }
                Operation::Read(r) => {
                    for b in r.iter_mut() {
                        *b = clock(0, &mut chip);
                    }
                }
                Operation::Transfer(r, w) => {
                    let n = r.len().max(w.len());
                    for i in 0..n {
                        let out = clock(w.get(i).copied().unwrap_or(0), &mut chip);
                        if let Some(slot) = r.get_mut(i) {
                            *slot = out;
                        }
                    }
                }
                Operation::TransferInPlace(buf) => {
                    for b in buf.iter_mut() {
                        *b = clock(*b, &mut chip);
                    }
                }
                Operation::DelayNs(_) => {}
            }
        }
        Ok(())
    }
}
