//! The first attempt at every request: a `send` written exactly as ThunderJS and the load
//! tool write it, `{"jsonrpc":"2.0","id":<integer>,"method":"<callsign>.1.send","params":
//! {"roomid":"..","message":".."}}` (those members in that order, no whitespace, no escape
//! in any string, nothing after the last brace), read by matching its known text a piece at
//! a time: no key is looked up and no member dispatched. Any difference from that text, or a
//! string over its cap, is "not mine" (`None`) and the scanner (`fast.rs`) reads the request
//! from its start. What it takes, the scanner takes too and makes the same `Call` of
//! (`fast/tests.rs` holds the three parsers to that on mutated requests).

use std::borrow::Cow;

use super::{Call, Designators, Id, Method};
use crate::room_token::{RoomId, RoomToken};
use crate::wire;

/// The `Call` of a `send` of the canonical shape; `None` for anything else. Out of line, as
/// `fast::send` is: inlined, it made `parse`'s frame 112 bytes larger, on the path of the
/// full parser every joining connection runs (`connection.rs`).
#[inline(never)]
pub(super) fn send(text: &str, names: &Designators) -> Option<Call> {
    let mut s = Pieces {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    s.lit(br#"{"jsonrpc":"2.0","id":"#)?;
    let id = s.at;
    s.integer()?;
    let id = id..s.at;
    s.lit(br#","method":""#)?;
    s.callsign(&names.callsign)?;
    s.lit(br#".1.send","params":{"roomid":""#)?;
    let token = s.token();
    let roomid = match token {
        Some(_) => "",
        None => s.plain()?,
    };
    s.lit(br#","message":""#)?;
    let message = s.plain()?;
    s.lit(b"}}")?;
    if s.at != s.bytes.len() {
        return None;
    }
    // Within the caps, as `send_method` holds them; over one, the full parser words the error.
    let caps = names.caps;
    let roomid_len = if token.is_some() { TOKEN } else { roomid.len() };
    if roomid_len > caps.id().limit || message.len() > caps.message().limit {
        return None;
    }
    Some(Call {
        id: Some(Id::within(text, id.start, id.end)?),
        method: Method::Send {
            roomid: match token {
                Some(token) => RoomId::Token(token),
                None => RoomId::read(Cow::Borrowed(roomid)),
            },
            message: message.to_owned(),
            // Matched only without a quote, a backslash or a control character.
            plain: true,
        },
    })
}

/// Bytes of a room token's text.
const TOKEN: usize = 20;

/// A cursor over the request's bytes. It moves only past ASCII bytes or to the end of a
/// string, so every slice it takes is on a character boundary.
struct Pieces<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Pieces<'a> {
    /// Moves past `want` if the text goes on with it. Its length is known when compiled, so
    /// the comparison is a few word loads, not a call.
    #[inline(always)]
    fn lit<const N: usize>(&mut self, want: &[u8; N]) -> Option<()> {
        let found = self.bytes.get(self.at..self.at + N) == Some(want.as_slice());
        self.at += usize::from(found) * N;
        found.then_some(())
    }

    /// An integer as JSON writes it (`-?(0|[1-9][0-9]*)`).
    fn integer(&mut self) -> Option<()> {
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        match self.bytes.get(self.at)? {
            b'0' => self.at += 1,
            b'1'..=b'9' => {
                self.at += 1;
                while let Some(b'0'..=b'9') = self.bytes.get(self.at) {
                    self.at += 1;
                }
            }
            _ => return None,
        }
        Some(())
    }

    /// The callsign of a designator (`<callsign>.1.send`), spelled as configured. A callsign
    /// with a quote, a backslash or a control character is never matched: its text in JSON
    /// would not be itself.
    fn callsign(&mut self, callsign: &str) -> Option<()> {
        let callsign = callsign.as_bytes();
        let plain = wire::plain_run(callsign, 0) == callsign.len();
        let found = self.bytes.get(self.at..self.at + callsign.len()) == Some(callsign);
        self.at += callsign.len();
        (plain && found).then_some(())
    }

    /// A room id of a token's form and its closing quote, read as the token; `None` (nothing
    /// read) for any other room id.
    fn token(&mut self) -> Option<RoomToken> {
        let text = self.bytes.get(self.at..self.at + TOKEN + 1)?;
        if text[TOKEN] != b'"' {
            return None;
        }
        let token = RoomToken::from_hex(&text[..TOKEN])?;
        self.at += TOKEN + 1;
        Some(token)
    }

    /// The body of a string whose opening quote is already read, up to and past its closing
    /// quote: `None` at an escape or a control character. Inlined: a call cost more than its
    /// own work (`make callgrind`).
    #[inline(always)]
    fn plain(&mut self) -> Option<&'a str> {
        let start = self.at;
        self.at = wire::plain_run(self.bytes, start);
        (self.bytes.get(self.at) == Some(&b'"')).then_some(())?;
        self.at += 1;
        self.text.get(start..self.at - 1)
    }
}
