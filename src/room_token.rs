//! Room tokens: the unguessable handle of one membership, 80 bits from the operating system's
//! CSPRNG shown as 20 lowercase hex digits (the form Thunder uses).

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};

/// One membership's token. Compared as bytes, hashed as one word (`Hash`); printed as hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RoomToken([u8; 10]);

/// A token is looked up for every recipient of every message: it is hashed as one word, its
/// first eight bytes with the last two folded into the top, not as ten bytes (two rounds and
/// two copies in `IdHasher`). The bytes are random, so the word spreads as well as they do.
impl Hash for RoomToken {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d, e, f, g, h, i, j] = self.0;
        let word = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
        state.write_u64(word ^ (u64::from(u16::from_le_bytes([i, j])) << 48));
    }
}

impl RoomToken {
    /// A fresh token from the OS CSPRNG (`getrandom`). Never from a seeded generator.
    pub fn generate() -> Result<RoomToken, getrandom::Error> {
        let mut bytes = [0u8; 10];
        getrandom::fill(&mut bytes)?;
        Ok(RoomToken(bytes))
    }

    /// Parses the 20-hex-digit form. Anything else (wrong length, upper case, other
    /// characters) is not a token.
    pub fn parse(text: &str) -> Option<RoomToken> {
        RoomToken::from_hex(text.as_bytes())
    }

    /// The same from the bytes of the text.
    pub fn from_hex(hex: &[u8]) -> Option<RoomToken> {
        let hex: &[u8; 20] = hex.try_into().ok()?;
        let mut bytes = [0u8; 10];
        let mut bad = 0;
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            let both = HIGH[usize::from(pair[0])] | LOW[usize::from(pair[1])];
            bad |= both;
            *byte = both as u8;
        }
        (bad & NOT_HEX == 0).then_some(RoomToken(bytes))
    }
}

/// Marks a byte that is not a lowercase hex digit in `HIGH` and `LOW`.
const NOT_HEX: u16 = 0x100;

/// Each byte's value as the high digit of a byte (`HIGH`, the value times 16) and as the low
/// digit (`LOW`), or `NOT_HEX`: a pair of digits is one lookup in each and an or, on the path
/// of every request that names a membership. Cheaper than one table of values (a shift and a
/// mask more per pair: 147 against 108 instructions a token, `make callgrind` on x86-64) and
/// than eight digits at a time in a `u64` (120 there, and on the boxes' 32-bit ARM a `u64` is
/// two registers).
const HIGH: [u16; 256] = digits(4);
const LOW: [u16; 256] = digits(0);

/// The table of hex digit values shifted left by `shift`.
const fn digits(shift: u32) -> [u16; 256] {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 16 {
        let digit = if i < 10 { b'0' + i } else { b'a' + i - 10 };
        table[digit as usize] = (i as u16) << shift;
        i += 1;
    }
    table
}

/// The room id a `send` names, read once at the edge: the token when the text has a token's
/// form (no copy of it, no second parse in the engine), else the text as sent. Text that is
/// not a token's form names no membership, so the engine answers it as it answers an unknown
/// token (30 `ERROR_UNKNOWN_KEY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomId {
    Token(RoomToken),
    Other(String),
}

impl RoomId {
    /// Reads `text` (already held to its cap).
    pub fn read(text: Cow<str>) -> RoomId {
        match RoomToken::parse(&text) {
            Some(token) => RoomId::Token(token),
            None => RoomId::Other(text.into_owned()),
        }
    }

    /// The token it names, if it has a token's form.
    pub fn token(&self) -> Option<RoomToken> {
        match self {
            RoomId::Token(token) => Some(*token),
            RoomId::Other(_) => None,
        }
    }
}

impl fmt::Display for RoomToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for RoomToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomToken({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_hex() {
        let t = RoomToken::generate().unwrap();
        let text = t.to_string();
        assert_eq!(text.len(), 20);
        assert!(text
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_eq!(RoomToken::parse(&text), Some(t));
    }

    #[test]
    fn rejects_what_is_not_a_token() {
        assert_eq!(RoomToken::parse(""), None);
        assert_eq!(RoomToken::parse("0000000000deadbeef0"), None);
        assert_eq!(RoomToken::parse("0000000000DEADBEEF00"), None);
        assert_eq!(RoomToken::parse("0000000000deadbeefzz"), None);
        assert_eq!(RoomToken::parse("0000000000deadbeef000"), None);
        assert!(RoomToken::parse("0000000000deadbeef00").is_some());
    }

    #[test]
    fn every_byte_in_every_place_is_judged_as_a_hex_digit_would_be() {
        let token = RoomToken::generate().unwrap().to_string();
        for place in 0..20 {
            for byte in 0..=255u8 {
                let mut text = token.clone().into_bytes();
                text[place] = byte;
                let Ok(text) = String::from_utf8(text) else {
                    continue;
                };
                let hex = byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte);
                let parsed = RoomToken::parse(&text);
                assert_eq!(parsed.is_some(), hex, "{byte:#x} at {place}");
                if let Some(parsed) = parsed {
                    assert_eq!(parsed.to_string(), text);
                }
            }
        }
        assert_eq!(RoomToken::parse(&"é".repeat(10)), None, "20 bytes, not hex");
    }

    #[test]
    fn texts_of_mixed_bytes_are_read_as_a_digit_at_a_time_would_read_them() {
        let naive = |text: &[u8]| -> Option<Vec<u8>> {
            let digit = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            let pairs = text.chunks_exact(2);
            pairs
                .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
                .collect()
        };
        let mut rng = fastrand::Rng::with_seed(20);
        let alphabet = b"0123456789abcdefABCDEFgz/:`@\x00\x7f\x80\xff\xe9";
        for _ in 0..20_000 {
            let mut text = [0u8; 20];
            for byte in &mut text {
                *byte = match rng.u8(..8) {
                    0 => alphabet[rng.usize(..alphabet.len())],
                    _ => b"0123456789abcdef"[rng.usize(..16)],
                };
            }
            let token = RoomToken::from_hex(&text).map(|t| t.0.to_vec());
            assert_eq!(token, naive(&text), "{text:?}");
        }
    }

    #[test]
    fn every_byte_moves_the_hash() {
        use std::hash::BuildHasher;
        let hash = |t: &RoomToken| {
            std::hash::BuildHasherDefault::<crate::idmap::IdHasher>::default().hash_one(t)
        };
        let token = RoomToken::generate().unwrap();
        for i in 0..10 {
            let mut other = token;
            other.0[i] ^= 1;
            assert_ne!(hash(&token), hash(&other), "byte {i}");
        }
        let again = RoomToken::parse(&token.to_string()).unwrap();
        assert_eq!(hash(&token), hash(&again), "equal tokens, equal hashes");
    }

    #[test]
    fn a_room_id_is_a_token_only_in_a_tokens_form() {
        let token = RoomToken::generate().unwrap();
        let text = token.to_string();
        assert_eq!(RoomId::read(Cow::Borrowed(&text)), RoomId::Token(token));
        assert_eq!(RoomId::read(Cow::Borrowed(&text)).token(), Some(token));
        for other in [
            "",
            "r",
            &text[..19],
            &text.to_uppercase(),
            &format!("{text}0"),
        ] {
            let id = RoomId::read(Cow::Borrowed(other));
            assert_eq!(id, RoomId::Other(other.to_owned()), "{other:?}");
            assert_eq!(id.token(), None, "{other:?}");
        }
    }

    #[test]
    fn tokens_differ() {
        let a = RoomToken::generate().unwrap();
        let b = RoomToken::generate().unwrap();
        assert_ne!(a, b);
    }
}
