//! The first attempt at every request: a `send` written exactly as ThunderJS and the load
//! tool write it, `{"jsonrpc":"2.0","id":<integer>,"method":"<callsign>.1.send","params":
//! {"roomid":"..","message":".."}}` (those members in that order, no whitespace, no escape
//! in any string, nothing after the last brace), read by matching its known text a piece at
//! a time: no key is looked up and no member dispatched. Any difference from that text, or a
//! string over its cap, is "not mine" (`None`) and the scanner (`fast.rs`) reads the request
//! from its start. What it takes, the scanner takes too and makes the same `Call` of
//! (`fast/tests.rs` holds the three parsers to that on mutated requests).

use std::borrow::Cow;

use super::fast::Scan;
use super::{Call, Designators, Id, Method};
use crate::room_token::{RoomId, RoomToken};

/// The `Call` of a `send` of the canonical shape; `None` for anything else. Out of line, as
/// `fast::send` is: inlined, it made `parse`'s frame 112 bytes larger, on the path of the
/// full parser every joining connection runs (`connection.rs`).
#[inline(never)]
pub(super) fn send(text: &str, names: &Designators) -> Option<Call> {
    let p = pieces(text, names)?;
    Some(Call {
        id: Some(p.id),
        method: Method::Send {
            roomid: match p.token {
                Some(token) => RoomId::Token(token),
                None => RoomId::read(Cow::Borrowed(p.roomid)),
            },
            message: p.message.to_owned(),
            // Matched only without a quote, a backslash or a control character.
            plain: true,
        },
    })
}

/// A `send` of the canonical shape to a room token: its id, the token and the message as it
/// stands in `text` (matched without an escape, so it is the message itself); `None` for
/// anything else. What `send` would make a `Call` of, with nothing allocated.
#[inline(never)]
pub(super) fn send_to_token<'a>(
    text: &'a str,
    names: &Designators,
) -> Option<(Id, RoomToken, &'a str)> {
    let p = pieces(text, names)?;
    Some((p.id, p.token?, p.message))
}

/// What a `send` of the canonical shape says, its strings borrowed from the text.
struct Pieces<'a> {
    id: Id,
    /// The room id read as a token, when it has a token's form; else `roomid` is its text.
    token: Option<RoomToken>,
    roomid: &'a str,
    message: &'a str,
}

#[inline(always)]
fn pieces<'a>(text: &'a str, names: &Designators) -> Option<Pieces<'a>> {
    let mut s = Scan::new(text);
    s.lit(br#"{"jsonrpc":"2.0","id":"#).then_some(())?;
    let id = s.at;
    s.integer()?;
    let id = id..s.at;
    s.lit(br#","method":""#).then_some(())?;
    callsign(&mut s, names)?;
    s.lit(br#".1.send","params":{"roomid":"#).then_some(())?;
    let token = token(&mut s);
    let roomid = match token {
        Some(_) => "",
        None => s.plain()?,
    };
    s.lit(br#","message":"#).then_some(())?;
    let message = s.plain()?;
    s.lit(b"}}").then_some(())?;
    if s.at != s.bytes.len() {
        return None;
    }
    // Within the caps, as `send_method` holds them; over one, the full parser words the error.
    let caps = names.caps;
    let roomid_len = if token.is_some() { TOKEN } else { roomid.len() };
    if roomid_len > caps.id().limit || message.len() > caps.message().limit {
        return None;
    }
    Some(Pieces {
        id: Id::within(text, id.start, id.end)?,
        token,
        roomid,
        message,
    })
}

/// Bytes of a room token's text.
const TOKEN: usize = 20;

/// The callsign of a designator (`<callsign>.1.send`), spelled as configured. A callsign
/// with a quote, a backslash or a control character is never matched: its text in JSON would
/// not be itself (`Designators::callsign_plain`).
fn callsign(s: &mut Scan, names: &Designators) -> Option<()> {
    let callsign = names.callsign.as_bytes();
    let found = s.bytes.get(s.at..s.at + callsign.len()) == Some(callsign);
    s.at += callsign.len();
    (names.callsign_plain && found).then_some(())
}

/// A room id of a token's form in its quotes, read as the token; `None` (nothing read) for any
/// other room id.
fn token(s: &mut Scan) -> Option<RoomToken> {
    let text = s.bytes.get(s.at..s.at + TOKEN + 2)?;
    if text[0] != b'"' || text[TOKEN + 1] != b'"' {
        return None;
    }
    let token = RoomToken::from_hex(&text[1..=TOKEN])?;
    s.at += TOKEN + 2;
    Some(token)
}
