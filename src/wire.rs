//! What goes out on the wire: JSON-RPC responses and notifications as text, and the
//! server-to-client WebSocket frames around them (unmasked, RFC 6455 §5.2). Built from
//! pre-escaped pieces so a fan-out copies bytes instead of serializing per recipient.

use crate::config::Compat;
use crate::error::RpcError;

/// A JSON string literal (quotes and escapes included) for `text`.
pub fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// Where the run of plain JSON string bytes from `at` ends (bytes a JSON string holds as they
/// are, which `json_string` copies unescaped): the index of the first quote, backslash
/// or control character (`bytes.len()` if none), an ASCII byte. Eight bytes at a time: in each
/// word the lowest flagged byte is exact (a borrow only runs up from a byte that is flagged).
pub fn plain_run(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    while let Some(word) = bytes.get(at..at + 8) {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let v = u64::from_le_bytes(word);
        let quote = zero(v ^ (ONES * u64::from(b'"')));
        let backslash = zero(v ^ (ONES * u64::from(b'\\')));
        let control = v.wrapping_sub(ONES * 0x20) & !v & HIGH;
        let hits = quote | backslash | control;
        if hits != 0 {
            return at + (hits.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(&b) = bytes.get(at) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            break;
        }
        at += 1;
    }
    at
}

/// `{"jsonrpc":"2.0","id":<id>,"result":<result>}`; `id` and `result` are JSON text.
pub fn result(id: &str, result: &str) -> String {
    result_parts(id, result).concat()
}

/// What a response starts with; its id follows.
const RESULT_HEAD: &str = r#"{"jsonrpc":"2.0","id":"#;

/// The pieces of `result(id, result)`, joined by the caller straight into a frame.
pub fn result_parts<'a>(id: &'a str, result: &'a str) -> [&'a str; 5] {
    [RESULT_HEAD, id, r#","result":"#, result, "}"]
}

/// The pieces of `result(id, "null")`, the answer to most calls (`send` among them): one
/// fewer copy per answer than two more pieces would take.
pub fn null_result_parts(id: &str) -> [&str; 3] {
    [RESULT_HEAD, id, r#","result":null}"#]
}

/// The whole text frame of `result(id, "null")` (header included) in a block of its own, and
/// its length; `None` for an id too long for it (`null_result_parts` then). The answer to
/// nearly every `send`, made without a piece-by-piece copy into the client's queue.
pub fn null_result_frame(id: &[u8]) -> Option<([u8; NULL_FRAME], usize)> {
    let head = RESULT_HEAD.as_bytes();
    let len = head.len() + id.len() + NULL_TAIL.len();
    let mut frame = [0; NULL_FRAME];
    let payload = frame.get_mut(2..2 + len)?;
    let (start, rest) = payload.split_at_mut(head.len());
    start.copy_from_slice(head);
    let (middle, end) = rest.split_at_mut(id.len());
    middle.copy_from_slice(id);
    end.copy_from_slice(NULL_TAIL);
    // Under 126 bytes: the two-byte header.
    write_header(&mut frame[..2], TEXT, len);
    Some((frame, 2 + len))
}

/// What a `null` result ends with.
const NULL_TAIL: &[u8] = br#","result":null}"#;

/// The block `null_result_frame` writes in: a header, the fixed text and an id of up to 24
/// bytes (an id kept inline is at most 22).
pub const NULL_FRAME: usize = 2 + RESULT_HEAD.len() + 24 + NULL_TAIL.len();

/// `{"jsonrpc":"2.0","id":<id>,"error":{"code":..,"message":..,"data":..}}`. In the `r5`
/// dialect the error object is Thunder R5's, byte for byte: code and message, no `data`.
pub fn error(id: &str, err: &RpcError, compat: Compat) -> String {
    let code = err.code(compat);
    let message = err.message(compat);
    match err.detail_in(compat) {
        Some(detail) => format!(
            r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":"{message}","data":{}}}}}"#,
            json_string(detail)
        ),
        None => format!(
            r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":"{message}"}}}}"#
        ),
    }
}

/// The pieces of a notification `{"jsonrpc":"2.0","method":<method>,"params":<params>}`,
/// where `method` is a JSON string literal. Joined by the caller straight into a frame.
pub fn notification<'a>(method: &'a str, params: &'a str) -> [&'a str; 5] {
    [NOTIFICATION_HEAD, method, r#","params":"#, params, "}"]
}

/// The start of every notification, up to its method.
pub const NOTIFICATION_HEAD: &str = r#"{"jsonrpc":"2.0","method":"#;

/// What follows a notification's method, `,"params":<params>}`: built once for an event that
/// goes to many recipients, each of whose frames is then `NOTIFICATION_HEAD`, its method and
/// this tail (`notification_to`), or a registration's start of both and this tail
/// (`notification_from`).
pub fn notification_tail(params: &str) -> String {
    let mut tail = String::with_capacity(PARAMS.len() + params.len() + 1);
    tail.push_str(PARAMS);
    tail.push_str(params);
    tail.push('}');
    tail
}

/// What a notification's tail starts with: its params follow.
pub const PARAMS: &str = r#","params":"#;

/// The params in a notification's `tail`.
pub fn tail_params(tail: &str) -> &str {
    tail.get(PARAMS.len()..tail.len().saturating_sub(1))
        .unwrap_or_default()
}

/// The pieces of the notification of `method` whose tail is `tail` (`notification_tail`).
pub fn notification_to<'a>(method: &'a str, tail: &'a str) -> [&'a str; 3] {
    [NOTIFICATION_HEAD, method, tail]
}

/// The pieces of the notification that starts with `head`, `NOTIFICATION_HEAD` and the method
/// as one text (kept by a registration), and ends with `tail` (`notification_tail`): a frame
/// of two copies per recipient.
pub fn notification_from<'a>(head: &'a str, tail: &'a str) -> [&'a str; 2] {
    [head, tail]
}

/// WebSocket opcode for a text frame.
pub const TEXT: u8 = 0x1;
/// WebSocket opcode for a close frame.
pub const CLOSE: u8 = 0x8;

/// Appends an unmasked, final frame header for a payload of `len` bytes.
#[inline(always)]
pub fn frame_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if len <= u16::MAX as usize {
        // Byte by byte: a push is a few instructions in line, a slice an out-of-line call.
        let [high, low] = (len as u16).to_be_bytes();
        out.push(126);
        out.push(high);
        out.push(low);
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// The bytes of a frame header for a payload of `len` bytes.
pub fn header_len(len: usize) -> usize {
    match len {
        0..126 => 2,
        126..=65535 => 4,
        _ => 10,
    }
}

/// The length, header included, of the frame that starts `bytes` (a frame this module wrote);
/// `None` if its header is cut short.
pub fn frame_len(bytes: &[u8]) -> Option<usize> {
    let (header, payload) = frame_parts(bytes)?;
    header.checked_add(payload)
}

/// The header's and the payload's lengths of the frame that starts `bytes`, the header without
/// a mask (a frame this module wrote has none; `frame_scan` adds a client's); `None` if its
/// header is cut short or its length is more than a `usize` holds.
pub(crate) fn frame_parts(bytes: &[u8]) -> Option<(usize, usize)> {
    Some(match *bytes.get(1)? & 0x7f {
        126 => (
            4,
            usize::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])),
        ),
        127 => {
            let n: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
            (10, usize::try_from(u64::from_be_bytes(n)).ok()?)
        }
        n => (2, usize::from(n)),
    })
}

/// Writes a final frame's header for a payload of `len` bytes into `header`, which is
/// `header_len(len)` bytes long (in place, in front of a payload already written).
#[inline]
fn write_header(header: &mut [u8], opcode: u8, len: usize) {
    match header {
        [first, short] => {
            *first = 0x80 | opcode;
            *short = len as u8;
        }
        [first, mark, high, low] => {
            *first = 0x80 | opcode;
            *mark = 126;
            [*high, *low] = (len as u16).to_be_bytes();
        }
        [first, mark, rest @ ..] => {
            *first = 0x80 | opcode;
            *mark = 127;
            rest.copy_from_slice(&(len as u64).to_be_bytes());
        }
        _ => {}
    }
}

/// Appends a text frame whose payload is the concatenation of `parts`.
pub fn text_frame(out: &mut Vec<u8>, parts: &[&str]) {
    let len = parts.iter().map(|p| p.len()).sum();
    out.reserve(header_len(len) + len);
    text_frame_of(out, len, parts);
}

/// Appends a text frame whose payload is the concatenation of `parts`, `len` bytes in all
/// (summed by the caller, who has made room for the frame).
#[inline(always)]
pub fn text_frame_of(out: &mut Vec<u8>, len: usize, parts: &[&str]) {
    frame_header(out, TEXT, len);
    for part in parts {
        out.extend_from_slice(part.as_bytes());
    }
}

/// Text frames for many recipients whose payloads end with the same tail and start each with
/// its own head: the tail is written once, and each frame is made in place in front of it (its
/// head, then its header before that), so a recipient's whole frame is one slice to copy.
/// Built in a buffer the caller keeps from one event to the next (`into_buf`).
pub struct SharedTail {
    buf: Vec<u8>,
    /// Where the tail starts: the room before it is for a head and a header.
    tail_at: usize,
}

impl SharedTail {
    /// Frames ending with `tail`, in `buf` (emptied first), with room for heads of up to `head`
    /// bytes (a longer head makes more room).
    pub fn new(mut buf: Vec<u8>, tail: &str, head: usize) -> SharedTail {
        buf.clear();
        let tail_at = head + MAX_HEADER;
        buf.resize(tail_at, 0);
        buf.extend_from_slice(tail.as_bytes());
        SharedTail { buf, tail_at }
    }

    /// The whole text frame whose payload is `head` followed by the tail.
    #[inline]
    pub fn frame(&mut self, head: &str) -> &[u8] {
        if head.len() + MAX_HEADER > self.tail_at {
            self.make_room(head.len());
        }
        let len = head.len() + (self.buf.len() - self.tail_at);
        let at = self.tail_at - head.len();
        self.buf[at..self.tail_at].copy_from_slice(head.as_bytes());
        let start = at - header_len(len);
        write_header(&mut self.buf[start..at], TEXT, len);
        &self.buf[start..]
    }

    /// Moves the tail on for heads of up to `head` bytes.
    #[cold]
    fn make_room(&mut self, head: usize) {
        let more = head + MAX_HEADER - self.tail_at;
        self.buf.splice(0..0, std::iter::repeat_n(0, more));
        self.tail_at += more;
    }

    /// The buffer, to be used again for the next event.
    pub fn into_buf(self) -> Vec<u8> {
        self.buf
    }
}

/// The longest frame header (`frame_header`).
const MAX_HEADER: usize = 10;

/// The payload of a text frame this module wrote (`""` if it is not one).
pub fn frame_text(frame: &[u8]) -> &str {
    frame_parts(frame)
        .and_then(|(header, _)| frame.get(header..))
        .and_then(|p| std::str::from_utf8(p).ok())
        .unwrap_or_default()
}

/// Appends a close frame with `code` and a short `reason` (cut to the 123 bytes a control
/// frame allows, on a character boundary).
pub fn close_frame(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    frame_header(out, CLOSE, 2 + end);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..end]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_result_in_three_pieces_is_the_same_text() {
        for id in ["1", "\"a\"", "null", "123456789012"] {
            assert_eq!(null_result_parts(id).concat(), result(id, "null"));
            assert_eq!(
                null_result_parts(id).concat(),
                format!(r#"{{"jsonrpc":"2.0","id":{id},"result":null}}"#)
            );
        }
    }

    #[test]
    fn a_null_result_frame_is_the_frame_of_its_pieces() {
        for len in 0..=30 {
            let id = "7".repeat(len);
            let mut pieces = Vec::new();
            text_frame(&mut pieces, &null_result_parts(&id));
            match null_result_frame(id.as_bytes()) {
                Some((frame, n)) => {
                    assert!(
                        len <= 24,
                        "an id of {len} bytes fits no block of {NULL_FRAME}"
                    );
                    assert_eq!(&frame[..n], pieces, "id of {len} bytes");
                }
                None => assert!(len > 24, "an id of {len} bytes fits"),
            }
        }
    }

    #[test]
    fn runs_end_where_a_byte_at_a_time_says() {
        let mut rng = fastrand::Rng::with_seed(8);
        let alphabet = [
            b'"', b'\\', 0, 0x1f, 0x20, 0x21, 0x5b, 0x5d, 0x7f, 0x80, 0xa0, 0xff, b'a',
        ];
        for _ in 0..20_000 {
            let len = rng.usize(..40);
            let bytes: Vec<u8> = (0..len)
                .map(|_| match rng.u8(..4) {
                    0 => alphabet[rng.usize(..alphabet.len())],
                    _ => rng.u8(..),
                })
                .collect();
            let at = rng.usize(..=len);
            let naive = bytes[at..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .map_or(len, |i| at + i);
            assert_eq!(plain_run(&bytes, at), naive, "{bytes:?} from {at}");
            // Plain is exactly what serde_json copies without escaping.
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let plain = plain_run(&bytes, 0) == len;
                assert_eq!(
                    plain,
                    json_string(text) == format!("\"{text}\""),
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    fn frame_lengths_use_the_right_encoding() {
        for (len, header) in [
            (0usize, 2usize),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
        ] {
            let mut out = Vec::new();
            let text = "x".repeat(len);
            text_frame(&mut out, &[&text]);
            assert_eq!(out.len(), header + len, "len {len}");
            assert_eq!(out[0], 0x81);
        }
    }

    #[test]
    fn frame_lengths_read_back() {
        for len in [0usize, 1, 125, 126, 65535, 65536, 100_000] {
            let mut out = Vec::new();
            text_frame(&mut out, &[&"y".repeat(len)]);
            assert_eq!(header_len(len) + len, out.len());
            assert_eq!(frame_len(&out), Some(out.len()), "len {len}");
            assert_eq!(frame_len(&out[..1]), None);
        }
        assert_eq!(frame_len(&[0x81, 126, 1]), None, "a cut length");
    }

    #[test]
    fn a_notification_from_its_tail_is_the_whole_one() {
        let params = r#"{"user":"u","message":"m"}"#;
        let tail = notification_tail(params);
        assert_eq!(
            notification_to(r#""a.message""#, &tail).concat(),
            notification(r#""a.message""#, params).concat()
        );
        assert_eq!(tail_params(&tail), params);
    }

    #[test]
    fn frames_made_before_a_shared_tail_are_whole_frames() {
        let mut buf = Vec::new();
        for (tail, heads) in [
            ("-tail", vec!["a", "", "longer head", "b"]),
            (&*"t".repeat(200), vec!["x", &*"h".repeat(40), "y"]),
            (&*"u".repeat(70_000), vec!["p", "q"]),
        ] {
            let mut shared = SharedTail::new(buf, tail, 3);
            for head in heads {
                let frame = shared.frame(head).to_vec();
                let mut want = Vec::new();
                text_frame(&mut want, &[head, tail]);
                assert_eq!(frame, want, "{head}");
                assert_eq!(frame_text(&frame), format!("{head}{tail}"));
            }
            buf = shared.into_buf();
        }
        assert_eq!(frame_text(&[0x81]), "");
    }

    #[test]
    fn close_reason_is_cut_on_a_char_boundary() {
        let mut out = Vec::new();
        close_frame(&mut out, 1008, &"é".repeat(100));
        assert_eq!(out[0], 0x88);
        let len = out[1] as usize;
        assert!(len <= 125);
        assert!(std::str::from_utf8(&out[4..]).is_ok());
        assert_eq!(&out[2..4], &1008u16.to_be_bytes());
    }

    #[test]
    fn error_carries_data() {
        let text = error(
            "7",
            &RpcError::BadRequest("user is empty".into()),
            Compat::Rdk,
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["error"]["code"], 30);
        assert_eq!(v["error"]["message"], "ERROR_BAD_REQUEST");
        assert_eq!(v["error"]["data"], "user is empty");
    }

    #[test]
    fn r5_errors_are_thunders_bytes() {
        let text = error(
            "12",
            &RpcError::MethodNotFound("no method \"nosuchmethod\"".into()),
            Compat::R5,
        );
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","id":12,"error":{"code":-32601,"message":"Unknown method."}}"#
        );
    }
}
