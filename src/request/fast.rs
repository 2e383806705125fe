//! The fast path for the commonest request, `send`: a hand-written scanner for its usual shape
//! (`{"jsonrpc":"2.0","id":<integer or plain string>,"method":"<designator>","params":
//! {"roomid":"..","message":".."}}`, members in any order, JSON whitespace anywhere between
//! tokens, the common escapes in `roomid` and `message`) that makes the very `Call` the full
//! parser would. Anything else (another member or method, a duplicate key, another type, an
//! escape in a key, the id, the method or `jsonrpc`, a lone `\u` surrogate, a control character,
//! a string over its cap, `"jsonrpc"` absent) is "not mine" (`None`), and the full parser
//! reads the text and finds its answer, or its error. The designator is read by the full
//! parser's own functions (`messenger_part`, `designator`; the usual `1.send` and `send` after
//! the callsign are known at sight) and the params checked by its own `send_method`, so those
//! rules live in one place. It runs when the canonical match (`usual.rs`) did not take the
//! text. `tests.rs` holds the parsers to the same result on mutated requests.

use std::borrow::Cow;

use super::fields::Field;
use super::{designator, messenger_part, send_method, Call, Designators, Id};
use crate::wire;

/// The `Call` `request::parse` makes of `text` when it is a `send` of the usual shape; `None`
/// for anything else. Out of line: its frame is not on the reader loop's (`connection.rs`).
#[inline(never)]
pub(super) fn send(text: &str, names: &Designators) -> Option<Call> {
    let mut s = Scan::new(text);
    let (mut jsonrpc, mut id, mut method, mut params) = (false, None, None, None);
    s.ws();
    s.eat(b'{')?;
    loop {
        match s.key()? {
            Key::Jsonrpc if !jsonrpc => {
                jsonrpc = true;
                s.lit(b"\"2.0\"").then_some(())?;
            }
            Key::Id if id.is_none() => id = Some(s.id()?),
            Key::Method if method.is_none() => method = Some(s.plain()?),
            Key::Params if params.is_none() => params = Some(s.params()?),
            _ => return None,
        }
        if s.after_member()? {
            break;
        }
    }
    s.ws();
    if s.at != s.bytes.len() || !jsonrpc {
        return None;
    }
    let (roomid, message) = params?;
    let rest = messenger_part(method?, names).ok()??;
    // The designators clients write, known without reading the version and the index.
    if !matches!(rest, "1.send" | "send") && designator(rest).ok()? != ("send", None) {
        return None;
    }
    let method = send_method(Field::Str(roomid), Field::Str(message), &names.caps).ok()?;
    Some(Call {
        id: id.map(Id::new),
        method,
    })
}

/// The keys a `send` of the usual shape has, in the request and in its params.
#[derive(Clone, Copy)]
enum Key {
    Jsonrpc,
    Id,
    Method,
    Params,
    Roomid,
    Message,
}

/// A cursor over the request's bytes. It moves only past ASCII bytes or to the end of a
/// string, so every slice it takes is on a character boundary. The usual match (`usual.rs`)
/// reads with it too.
pub(super) struct Scan<'a> {
    text: &'a str,
    pub(super) bytes: &'a [u8],
    pub(super) at: usize,
}

impl<'a> Scan<'a> {
    pub(super) fn new(text: &'a str) -> Scan<'a> {
        Scan {
            text,
            bytes: text.as_bytes(),
            at: 0,
        }
    }

    /// Skips JSON whitespace (exactly serde_json's set).
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn next(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// Whether the text goes on with `want`; if so, moves past it. Of a length known when
    /// compiled, so the comparison is a few loads, not a call; inlined, as a call per key cost
    /// more than the comparison (`make callgrind`).
    #[inline(always)]
    pub(super) fn lit<const N: usize>(&mut self, want: &[u8; N]) -> bool {
        let found = self.bytes.get(self.at..self.at + N) == Some(want.as_slice());
        if found {
            self.at += N;
        }
        found
    }

    /// A member's key and its colon, whitespace around them skipped: one of the `Key`s,
    /// spelled exactly (no escape); `None` for any other key.
    fn key(&mut self) -> Option<Key> {
        self.ws();
        let key = match self.bytes.get(self.at + 1)? {
            b'j' if self.lit(b"\"jsonrpc\"") => Key::Jsonrpc,
            b'i' if self.lit(b"\"id\"") => Key::Id,
            b'm' if self.lit(b"\"method\"") => Key::Method,
            b'm' if self.lit(b"\"message\"") => Key::Message,
            b'p' if self.lit(b"\"params\"") => Key::Params,
            b'r' if self.lit(b"\"roomid\"") => Key::Roomid,
            _ => return None,
        };
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(key)
    }

    /// After a member's value: `true` at the object's `}`, `false` at a `,`.
    fn after_member(&mut self) -> Option<bool> {
        self.ws();
        match self.next()? {
            b'}' => Some(true),
            b',' => Some(false),
            _ => None,
        }
    }

    /// The body of a string with no escape (`None` for any escape or control character),
    /// borrowed from the text. In line: a call cost the usual match more than its own work
    /// (`make callgrind`).
    #[inline(always)]
    pub(super) fn plain(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        self.at = wire::plain_run(self.bytes, start);
        self.eat(b'"')?;
        Some(&self.text[start..self.at - 1])
    }

    /// The id as JSON text: an integer (`-?(0|[1-9][0-9]*)`) or a string with no escape.
    fn id(&mut self) -> Option<&'a str> {
        let start = self.at;
        match self.bytes.get(self.at)? {
            b'"' => {
                self.plain()?;
            }
            _ => self.integer()?,
        }
        Some(&self.text[start..self.at])
    }

    /// An integer as JSON writes it (`-?(0|[1-9][0-9]*)`).
    pub(super) fn integer(&mut self) -> Option<()> {
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => {
                while let Some(b'0'..=b'9') = self.bytes.get(self.at) {
                    self.at += 1;
                }
            }
            _ => return None,
        }
        Some(())
    }

    /// `{"roomid":..,"message":..}` in either order, each once, nothing else.
    fn params(&mut self) -> Option<(Cow<'a, str>, Cow<'a, str>)> {
        let (mut roomid, mut message) = (None, None);
        self.eat(b'{')?;
        loop {
            match self.key()? {
                Key::Roomid if roomid.is_none() => roomid = Some(self.string()?),
                Key::Message if message.is_none() => message = Some(self.string()?),
                _ => return None,
            }
            if self.after_member()? {
                return Some((roomid?, message?));
            }
        }
    }

    /// A string's value: borrowed when it has no escape, else decoded as serde_json decodes
    /// it. `None` for a control character or a lone surrogate (which the full parser judges).
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.at;
        self.at = wire::plain_run(self.bytes, start);
        let mut out = match self.next()? {
            b'"' => return Some(Cow::Borrowed(&self.text[start..self.at - 1])),
            b'\\' => String::with_capacity(self.bytes.len() - start),
            _ => return None,
        };
        let mut run = start;
        loop {
            // Just past a backslash.
            out.push_str(&self.text[run..self.at - 1]);
            out.push(self.escape()?);
            run = self.at;
            self.at = wire::plain_run(self.bytes, run);
            match self.next()? {
                b'"' => break,
                b'\\' => {}
                _ => return None,
            }
        }
        out.push_str(&self.text[run..self.at - 1]);
        // As serde_json's own copy: no spare capacity kept with the message.
        out.shrink_to_fit();
        Some(Cow::Owned(out))
    }

    /// The character of an escape, after its backslash.
    fn escape(&mut self) -> Option<char> {
        Some(match self.next()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => match self.hex()? {
                // A pair of surrogates (`\ud83d\ude00`), as some encoders write what is
                // outside the BMP.
                high @ 0xd800..=0xdbff => {
                    self.eat(b'\\')?;
                    self.eat(b'u')?;
                    let low = self.hex()?;
                    if !(0xdc00..=0xdfff).contains(&low) {
                        return None;
                    }
                    char::from_u32(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00))?
                }
                // A lone surrogate is `None` here: `char::from_u32` has none.
                unit => char::from_u32(unit)?,
            },
            _ => return None,
        })
    }

    /// The four hex digits of a `\u` escape.
    fn hex(&mut self) -> Option<u32> {
        let hex = self.text.get(self.at..self.at + 4)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(hex, 16).ok()
    }
}

#[cfg(test)]
mod tests;
