//! A request's id as JSON text (`42`, `"a-7"`), kept inline when it is short, as nearly every
//! id is: no allocation for it on the path of every request, and none to free on the engine's.

use std::fmt;
use std::ops::Deref;

/// Bytes of id text kept inline; a longer id is on the heap. 22: the inline form and its
/// length take the 24 bytes the `String` it replaces took.
const INLINE: usize = 22;

/// A request's id as JSON text. Reads as the `str` it was made from (`Deref`).
#[derive(Clone)]
pub struct Id(Repr);

#[derive(Clone)]
enum Repr {
    /// The text in the first `len` bytes.
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Heap(Box<str>),
}

impl Id {
    /// The id whose JSON text is `text`.
    pub fn new(text: &str) -> Id {
        match Id::inline(text) {
            Some(id) => id,
            None => Id(Repr::Heap(text.into())),
        }
    }

    /// The id whose JSON text is `text[start..end]` (`None` if that is no slice of it),
    /// copied as a whole `INLINE` bytes from `start` when the text goes on that far: a copy
    /// of a length known when compiled, not a call to `memcpy`. The bytes past its end are
    /// never read.
    pub(super) fn within(text: &str, start: usize, end: usize) -> Option<Id> {
        let id = text.get(start..end)?;
        let window = text.as_bytes().get(start..start + INLINE);
        match (window, u8::try_from(id.len())) {
            (Some(window), Ok(len)) if usize::from(len) <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes.copy_from_slice(window);
                Some(Id(Repr::Inline { len, bytes }))
            }
            _ => Some(Id::new(id)),
        }
    }

    /// `text` inline, if it fits.
    fn inline(text: &str) -> Option<Id> {
        let len = u8::try_from(text.len())
            .ok()
            .filter(|&n| usize::from(n) <= INLINE)?;
        let mut bytes = [0; INLINE];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(Id(Repr::Inline { len, bytes }))
    }

    /// The id's text as bytes: for an inline id, without the UTF-8 check `as_str` makes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Repr::Heap(text) => text.as_bytes(),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Always UTF-8: the bytes are a whole `str`'s (`Id::inline`).
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Heap(text) => text,
        }
    }
}

/// The full parser's id (read by serde_json as a `String`): inline when it fits, else kept
/// without a copy.
impl From<String> for Id {
    fn from(text: String) -> Id {
        match Id::inline(&text) {
            Some(id) => id,
            None => Id(Repr::Heap(text.into_boxed_str())),
        }
    }
}

impl Deref for Id {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Id) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Id {}

impl PartialEq<str> for Id {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Id {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_the_text_it_was_made_from_at_every_length() {
        let long = "\"ü-7\"".repeat(12);
        for len in 0..long.len() {
            let Some(text) = long.get(..len) else {
                continue;
            };
            let id = Id::new(text);
            assert_eq!(id.as_str(), text, "{len}");
            assert_eq!(Id::from(text.to_owned()), id, "{len}");
            assert_eq!(&*Id::from(text.to_owned()), text, "{len}");
            assert_eq!(matches!(id.0, Repr::Inline { .. }), len <= INLINE, "{len}");
        }
    }

    #[test]
    fn an_id_within_a_text_reads_as_its_slice() {
        let text = format!("{}\"ü\"{}", "1".repeat(30), "2".repeat(30));
        for start in 0..text.len() {
            for end in start..=text.len() {
                let id = Id::within(&text, start, end);
                assert_eq!(id.as_deref(), text.get(start..end), "{start}..{end}");
                if let Some(id) = id {
                    assert_eq!(id, Id::new(&text[start..end]), "{start}..{end}");
                }
            }
        }
        assert_eq!(Id::within("12", 1, 3), None);
        assert_eq!(Id::within("12", 2, 1), None);
    }

    #[test]
    fn ids_are_equal_when_their_text_is() {
        assert_eq!(Id::new("42"), Id::new("42"));
        assert_ne!(Id::new("42"), Id::new("4"));
        assert_ne!(Id::new("42"), Id::new("42 "));
        let long = "1".repeat(40);
        assert_eq!(Id::new(&long), Id::from(long.clone()));
        assert_ne!(Id::new(&long), Id::new(&long[1..]));
        assert_eq!(
            format!("{:?} {}", Id::new("\"a\""), Id::new("7")),
            r#""\"a\"" 7"#
        );
    }

    #[test]
    fn an_id_takes_no_more_room_than_a_string() {
        assert_eq!(size_of::<Option<Id>>(), size_of::<Option<String>>());
    }
}
