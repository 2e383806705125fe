//! Room tokens: the unguessable handle of one membership, 80 bits from the operating system's
//! CSPRNG shown as 20 lowercase hex digits (the form Thunder uses).

use std::fmt;

/// One membership's token. Compared and hashed as bytes; printed as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomToken([u8; 10]);

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
        let text = text.as_bytes();
        if text.len() != 20 {
            return None;
        }
        let mut bytes = [0u8; 10];
        for (i, pair) in text.chunks_exact(2).enumerate() {
            bytes[i] = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Some(RoomToken(bytes))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
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
    fn tokens_differ() {
        let a = RoomToken::generate().unwrap();
        let b = RoomToken::generate().unwrap();
        assert_ne!(a, b);
    }
}
