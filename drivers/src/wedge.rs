//! USB keyboard-wedge card readers: the reader "types" the card number as key presses and
//! ends it with Enter. This decoder turns Linux input key codes (as evdev reports them)
//! into a card [`Uid`]; the daemon grabs the device exclusively so the keys never reach
//! the kiosk browser.
//!
//! Readers type either hex (8, 14 or 20 characters: the UID's bytes in order) or the
//! 4-byte UID as a 10-digit decimal number, big-endian or byte-reversed depending on the
//! model; [`WedgeFormat`] says which. Keys typed more slowly than a reader types (a person
//! at a keyboard) are discarded.

use crate::{Uid, UidError};

/// How a reader writes card numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WedgeFormat {
    /// Hex digits, the UID's bytes in order.
    Hex,
    /// A 10-digit decimal of the 4-byte UID read big-endian.
    Decimal,
    /// A 10-digit decimal of the 4-byte UID read little-endian ("reversed" readers).
    DecimalReversed,
}

/// Why a typed line is not a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WedgeError {
    /// Not the configured format (e.g. letters in a decimal reader's line).
    Format,
    /// A decimal above 4294967295.
    TooLarge,
    /// Not a valid UID length.
    Uid(UidError),
    /// Enter with nothing typed.
    Empty,
}

impl core::fmt::Display for WedgeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WedgeError::Format => {
                f.write_str("the typed card number is not in the reader's format")
            }
            WedgeError::TooLarge => {
                f.write_str("the typed decimal card number is larger than 4 bytes")
            }
            WedgeError::Uid(e) => write!(f, "{e}"),
            WedgeError::Empty => f.write_str("an empty line"),
        }
    }
}

impl core::error::Error for WedgeError {}

const MAX: usize = 20;
/// A reader types faster than this between keys; slower keys are a person.
pub const MAX_GAP_MS: u64 = 100;

/// Decodes key presses into cards.
#[derive(Debug, Clone)]
pub struct WedgeDecoder {
    format: WedgeFormat,
    buf: [u8; MAX],
    len: usize,
    last_ms: u64,
    overflow: bool,
}

/// The character a Linux key code types, if a reader uses it.
#[must_use]
pub const fn key_char(code: u16) -> Option<u8> {
    Some(match code {
        2..=10 => b'1' + (code - 2) as u8,
        11 => b'0',
        79..=81 => b'1' + (code - 79) as u8,
        75..=77 => b'4' + (code - 75) as u8,
        71..=73 => b'7' + (code - 71) as u8,
        82 => b'0',
        30 => b'A',
        48 => b'B',
        46 => b'C',
        32 => b'D',
        18 => b'E',
        33 => b'F',
        _ => return None,
    })
}

/// Linux `KEY_ENTER` and `KEY_KPENTER`.
const fn is_enter(code: u16) -> bool {
    matches!(code, 28 | 96)
}

impl WedgeDecoder {
    /// A decoder for a reader that writes `format`.
    #[must_use]
    pub const fn new(format: WedgeFormat) -> Self {
        Self {
            format,
            buf: [0; MAX],
            len: 0,
            last_ms: 0,
            overflow: false,
        }
    }

    /// Feeds one key press (evdev `EV_KEY` with value 1) at `now_ms`. Returns a card when
    /// Enter ends a line, or why the line is not one; `None` while typing.
    pub fn key(&mut self, code: u16, now_ms: u64) -> Option<Result<Uid, WedgeError>> {
        if self.len > 0 && now_ms.saturating_sub(self.last_ms) > MAX_GAP_MS {
            self.reset();
        }
        self.last_ms = now_ms;
        if is_enter(code) {
            let r = self.finish();
            self.reset();
            return r;
        }
        match key_char(code) {
            Some(c) if self.len < MAX => {
                self.buf[self.len] = c;
                self.len += 1;
            }
            Some(_) => self.overflow = true,
            // Shift and other keys a reader may send are ignored.
            None => {}
        }
        None
    }

    fn reset(&mut self) {
        self.len = 0;
        self.overflow = false;
    }

    fn finish(&self) -> Option<Result<Uid, WedgeError>> {
        if self.len == 0 {
            return None;
        }
        if self.overflow {
            return Some(Err(WedgeError::Uid(UidError::Length(MAX / 2 + 1))));
        }
        let s = &self.buf[..self.len];
        Some(match self.format {
            WedgeFormat::Hex => {
                let text = core::str::from_utf8(s).map_err(|_| WedgeError::Format);
                text.and_then(|t| Uid::from_hex(t).map_err(WedgeError::Uid))
            }
            WedgeFormat::Decimal | WedgeFormat::DecimalReversed => {
                if s.len() != 10 || !s.iter().all(u8::is_ascii_digit) {
                    return Some(Err(WedgeError::Format));
                }
                let v = s.iter().fold(0u64, |v, &c| v * 10 + u64::from(c - b'0'));
                let Ok(v) = u32::try_from(v) else {
                    return Some(Err(WedgeError::TooLarge));
                };
                let b = if self.format == WedgeFormat::Decimal {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                Uid::from_bytes(&b).map_err(WedgeError::Uid)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Key codes for a typed string.
    fn codes(s: &str) -> impl Iterator<Item = u16> + '_ {
        s.bytes().map(|c| match c {
            b'1'..=b'9' => u16::from(c - b'1') + 2,
            b'0' => 11,
            b'A' => 30,
            b'B' => 48,
            b'C' => 46,
            b'D' => 32,
            b'E' => 18,
            b'F' => 33,
            _ => 0,
        })
    }

    fn typed(d: &mut WedgeDecoder, s: &str, t0: u64, gap: u64) -> Option<Result<Uid, WedgeError>> {
        let mut t = t0;
        for c in codes(s) {
            assert!(d.key(c, t).is_none());
            t += gap;
        }
        d.key(28, t)
    }

    #[test]
    fn hex_and_decimal_readers_give_the_same_uid() {
        let want = Uid::from_hex("040A9E95").unwrap();
        let mut hex = WedgeDecoder::new(WedgeFormat::Hex);
        assert_eq!(typed(&mut hex, "040A9E95", 0, 5), Some(Ok(want)));
        // 0x040A9E95 = 67804821
        let mut dec = WedgeDecoder::new(WedgeFormat::Decimal);
        assert_eq!(typed(&mut dec, "0067804821", 0, 5), Some(Ok(want)));
        // Reversed bytes: 0x959E0A04 = 2510162436
        let mut rev = WedgeDecoder::new(WedgeFormat::DecimalReversed);
        assert_eq!(typed(&mut rev, "2510162436", 0, 5), Some(Ok(want)));
    }

    #[test]
    fn keypad_digits_count_and_other_keys_are_ignored() {
        let mut d = WedgeDecoder::new(WedgeFormat::Decimal);
        // KP0 KP0 6 7 8 0 4 8 2 1 with a shift (42) in the middle.
        for (i, c) in [82u16, 82, 7, 8, 9, 42, 11, 5, 9, 3, 2]
            .into_iter()
            .enumerate()
        {
            assert!(d.key(c, i as u64).is_none());
        }
        assert_eq!(d.key(96, 20), Some(Ok(Uid::from_hex("040A9E95").unwrap())));
    }

    #[test]
    fn slow_typing_wrong_formats_and_sizes_are_not_cards() {
        let mut d = WedgeDecoder::new(WedgeFormat::Decimal);
        // A person typing: every gap resets the line, so nothing is a card.
        assert_eq!(typed(&mut d, "0067804821", 0, 300), None);
        assert_eq!(
            typed(&mut d, "9999999999", 10_000, 5),
            Some(Err(WedgeError::TooLarge))
        );
        assert_eq!(
            typed(&mut d, "12AB", 20_000, 5),
            Some(Err(WedgeError::Format))
        );
        assert_eq!(d.key(28, 30_000), None, "an empty line is nothing");
        let mut h = WedgeDecoder::new(WedgeFormat::Hex);
        assert!(matches!(
            typed(&mut h, "040A9E", 0, 5),
            Some(Err(WedgeError::Uid(_)))
        ));
        assert!(matches!(
            typed(&mut h, "0123456789ABCDEF0123456789", 1000, 5),
            Some(Err(WedgeError::Uid(_)))
        ));
    }
}
