//! Where the WebSocket frames in a client's byte stream begin and end, and the one frame the
//! reader takes itself. tungstenite reads every frame it is given; in a burst the reader gives
//! it one frame at a time (`FrameScan::frame_end`), so that once tungstenite has answered every
//! message it was given (`FrameScan::whole`) it holds no bytes, and the next frame read ahead
//! can be taken without it: a final, masked text frame within the size limit whose payload is
//! valid UTF-8 (`text_frame`), unmasked in place. Anything else (a control frame, a fragment, a
//! binary frame, a frame too big, unmasked or not UTF-8) is left to tungstenite, with its
//! checks and its close codes. This saves a copy, a buffer fill and tungstenite's frame
//! parsing per message in a burst (see docs/performance.md).

use std::str::Utf8Error;

use crate::wire;

/// The longest frame header: two bytes, eight of length, four of mask.
const MAX_HEADER: usize = 14;

/// What the byte stream given to tungstenite has passed: the frame in progress, whether a
/// fragmented message is open, and how many messages have ended.
#[derive(Clone, Copy, Default)]
pub struct FrameScan {
    /// The current frame's header bytes so far (`have` of them), until it is whole.
    header: [u8; MAX_HEADER],
    have: u8,
    /// The header is whole and the payload is passing: `left` bytes of it to come.
    in_payload: bool,
    left: u64,
    /// A fragmented data message has begun and its last frame has not passed.
    fragment: bool,
    /// Messages whose bytes have all passed: each control frame, each data message's last
    /// frame. tungstenite answers each `read` with one of them.
    whole: u64,
}

impl FrameScan {
    /// Notes that `bytes` went to tungstenite.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.pass(bytes, false);
    }

    /// How many of `next` bytes end the frame now in progress (or the frame they start): all
    /// of them if it does not end there.
    pub fn frame_end(&self, next: &[u8]) -> usize {
        let mut scan = *self;
        scan.pass(next, true)
    }

    /// Messages whose bytes have all gone to tungstenite.
    pub fn whole(&self) -> u64 {
        self.whole
    }

    /// Between frames, and not inside a fragmented message.
    pub fn at_rest(&self) -> bool {
        self.have == 0 && !self.in_payload && !self.fragment
    }

    /// Passes `bytes`, or only up to the end of the first frame that ends in them when
    /// `one_frame`; returns how many it passed.
    fn pass(&mut self, bytes: &[u8], one_frame: bool) -> usize {
        let mut at = 0;
        while at < bytes.len() {
            if self.in_payload {
                let n = self.left.min((bytes.len() - at) as u64);
                self.left -= n;
                at += n as usize;
            } else {
                self.header[usize::from(self.have)] = bytes[at];
                self.have += 1;
                at += 1;
                if usize::from(self.have) < header_len(&self.header[..usize::from(self.have)]) {
                    continue;
                }
                // A length over what a `usize` holds (on a 32-bit box) is far over any limit
                // tungstenite allows: the frame never ends here, and tungstenite refuses it.
                self.left = wire::frame_parts(&self.header).map_or(u64::MAX, |(_, n)| n as u64);
                self.in_payload = true;
            }
            if self.left == 0 {
                self.end_frame();
                if one_frame {
                    break;
                }
            }
        }
        at
    }

    fn end_frame(&mut self) {
        let (fin, opcode) = (self.header[0] & 0x80 != 0, self.header[0] & 0x0f);
        if opcode >= 8 {
            self.whole += 1;
        } else if fin {
            self.whole += 1;
            self.fragment = false;
        } else {
            self.fragment = true;
        }
        self.have = 0;
        self.in_payload = false;
    }
}

/// The length of the header that starts with `seen` (`MAX_HEADER` until its second byte).
fn header_len(seen: &[u8]) -> usize {
    let Some(&second) = seen.get(1) else {
        return MAX_HEADER;
    };
    let length = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + length + mask
}

/// The final, masked text frame of at most `max` payload bytes at the start of `buf`, whole:
/// its length, and its payload unmasked in place as text, or why that is not UTF-8
/// (tungstenite's error for it, which ends the connection). Any other start of `buf` is
/// `None`, left as it was.
pub fn text_frame(buf: &mut [u8], max: usize) -> Option<(usize, Result<&str, Utf8Error>)> {
    let &[first, second, ..] = &*buf else {
        return None;
    };
    // FIN, no extension bits, text; masked, as a client's frames must be.
    if first != 0x81 || second & 0x80 == 0 {
        return None;
    }
    let (at, len) = wire::frame_parts(buf)?;
    if len > max {
        return None;
    }
    let mask: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    let end = at + 4 + len;
    let payload = buf.get_mut(at + 4..end)?;
    apply_mask(payload, mask);
    Some((end, std::str::from_utf8(payload)))
}

/// XORs `bytes` with the repeated four-byte `mask` (masking and unmasking are the same), a
/// word at a time (at `opt-level = "s"` the compiler does not widen a byte loop itself).
fn apply_mask(bytes: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut words = bytes.chunks_exact_mut(8);
    for word in &mut words {
        let mut w = [0; 8];
        w.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

#[cfg(test)]
mod tests;
