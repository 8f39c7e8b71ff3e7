//! Card identifiers as ISO/IEC 14443-3 type A defines them.

use core::fmt;

/// A card UID: 4 (single), 7 (double) or 10 (triple size) bytes, per ISO/IEC 14443-3.
///
/// `Display` prints uppercase hex, the form the school's card registry uses. UIDs identify
/// students: never log them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Uid {
    bytes: [u8; 10],
    len: u8,
}

/// Why a UID was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UidError {
    /// Not 4, 7 or 10 bytes.
    Length(usize),
    /// A character that is not a hex digit.
    NotHex,
}

impl fmt::Display for UidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UidError::Length(n) => write!(f, "a card UID has 4, 7 or 10 bytes, not {n}"),
            UidError::NotHex => f.write_str("a card UID is written in hex digits (0-9, A-F)"),
        }
    }
}

impl core::error::Error for UidError {}

impl Uid {
    /// From raw bytes.
    ///
    /// # Errors
    /// [`UidError::Length`] unless 4, 7 or 10 bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self, UidError> {
        if !matches!(b.len(), 4 | 7 | 10) {
            return Err(UidError::Length(b.len()));
        }
        let mut bytes = [0; 10];
        bytes[..b.len()].copy_from_slice(b);
        Ok(Self {
            bytes,
            // Invariant: 4, 7 or 10 fits in u8.
            len: b.len() as u8,
        })
    }

    /// From hex text as readers and registries write it: case-insensitive, with optional
    /// `:`, `-` or space separators between bytes.
    ///
    /// # Errors
    /// [`UidError::NotHex`] or [`UidError::Length`].
    pub fn from_hex(s: &str) -> Result<Self, UidError> {
        let mut bytes = [0u8; 10];
        let mut n = 0usize;
        let mut high: Option<u8> = None;
        for c in s.trim().bytes() {
            if matches!(c, b':' | b'-' | b' ') {
                if high.is_some() {
                    return Err(UidError::NotHex);
                }
                continue;
            }
            let v = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(UidError::NotHex),
            };
            match high.take() {
                None => high = Some(v),
                Some(h) => {
                    if n == bytes.len() {
                        return Err(UidError::Length(n + 1));
                    }
                    bytes[n] = (h << 4) | v;
                    n += 1;
                }
            }
        }
        if high.is_some() {
            return Err(UidError::NotHex);
        }
        Self::from_bytes(&bytes[..n])
    }

    /// The UID's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uid {
    /// Redacted: UIDs identify students and must not reach logs through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uid(<{} bytes>)", self.len)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::format;

    use super::*;

    #[test]
    fn hex_uids_of_the_three_iso_sizes_parse_and_print_uppercase() {
        for s in ["04a1b2c3", "04A1B2C3D4E5F6", "0102030405060708090a"] {
            let uid = Uid::from_hex(s).unwrap();
            assert_eq!(format!("{uid}"), s.to_uppercase());
        }
    }

    #[test]
    fn separators_are_accepted_between_bytes() {
        assert_eq!(
            Uid::from_hex("04:A1:B2:C3").unwrap(),
            Uid::from_hex("04A1B2C3").unwrap()
        );
        assert_eq!(
            Uid::from_hex(" 04-a1-b2-c3 ").unwrap().as_bytes(),
            &[0x04, 0xA1, 0xB2, 0xC3]
        );
    }

    #[test]
    fn wrong_lengths_and_non_hex_are_refused() {
        assert_eq!(Uid::from_hex("04A1B2"), Err(UidError::Length(3)));
        assert_eq!(Uid::from_hex("04A1B2C"), Err(UidError::NotHex));
        assert_eq!(Uid::from_hex("04A1B2CZ"), Err(UidError::NotHex));
        assert_eq!(Uid::from_hex("0"), Err(UidError::NotHex));
        assert_eq!(Uid::from_hex(""), Err(UidError::Length(0)));
        assert_eq!(
            Uid::from_hex("0102030405060708090a0b"),
            Err(UidError::Length(11))
        );
        assert_eq!(Uid::from_hex("0 4A1B2C3"), Err(UidError::NotHex));
    }

    #[test]
    fn debug_does_not_show_the_uid() {
        let s = format!("{:?}", Uid::from_hex("04A1B2C3").unwrap());
        assert!(!s.contains("A1"), "{s}");
    }
}
