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
        let text: &[u8; 20] = text.as_bytes().try_into().ok()?;
        let mut bytes = [0u8; 10];
        let mut bad = 0;
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            let (high, low) = (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
            bad |= high | low;
            *byte = (high << 4) | (low & 0x0f);
        }
        (bad & NOT_HEX == 0).then_some(RoomToken(bytes))
    }
}

/// Marks a byte that is not a lowercase hex digit in `HEX`.
const NOT_HEX: u8 = 0x10;

/// Each byte's value as a lowercase hex digit, or `NOT_HEX`: one lookup per digit on the path
/// of every request that names a membership.
const HEX: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

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
