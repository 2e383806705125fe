//! Read-ahead for a WebSocket reader in a burst. tungstenite reads at most `read_buffer_size`
//! bytes a call (512 by default: that buffer is resident on every connection), so a client
//! sending fast costs a system call for every few frames. A read that fills the caller's buffer
//! says more is waiting: the next reads go through a `READ_AHEAD` buffer, made then and kept
//! while the burst lasts. It is given back once a read into it brings no more than the caller's
//! buffer would have taken (the burst has thinned) and its bytes are served, or when a read
//! fails or times out (the reader's idle timeout). An idle connection keeps none; a busy one
//! makes one system call per `READ_AHEAD` bytes at most, and allocates the buffer once a burst.
//! The caller says how much of what is read ahead may be served at once (the reader: up to the
//! end of a frame), and may take a plain text frame from the buffer itself (`take_text`).

use std::io::{self, Read};
use std::str::Utf8Error;

use crate::frame_scan;

/// The read-ahead buffer's size: what one system call takes from a client in a burst.
pub const READ_AHEAD: usize = 8 * 1024;

/// A reader's read-ahead buffer, empty (and unallocated) between bursts.
#[derive(Default)]
pub struct ReadAhead {
    /// Allocated while the reader is in a burst.
    buf: Option<Box<[u8]>>,
    /// The bytes of `buf` not yet served: `start..end`.
    start: usize,
    end: usize,
    /// The last read into `buf` brought no more than a direct read would have.
    thinned: bool,
}

impl ReadAhead {
    /// Reads into `out` from what is read ahead, or else from `from`: straight into `out`
    /// between bursts, through the buffer in one. Of the bytes read ahead, no more are served
    /// than `upto` says of them (at least one).
    pub fn read(
        &mut self,
        from: &mut impl Read,
        out: &mut [u8],
        upto: impl FnOnce(&[u8]) -> usize,
    ) -> io::Result<usize> {
        if self.start < self.end {
            return Ok(self.serve(out, upto));
        }
        if self.thinned {
            // The thin read's bytes were all taken (`take_text`), none served.
            *self = ReadAhead::default();
        }
        let Some(buf) = self.buf.as_deref_mut().filter(|_| out.len() < READ_AHEAD) else {
            let n = from.read(out)?;
            if n == out.len() && n > 0 && n < READ_AHEAD {
                // The caller's buffer is full: more is waiting, so read ahead from now on.
                self.buf = Some(vec![0; READ_AHEAD].into_boxed_slice());
            }
            return Ok(n);
        };
        let read = from.read(buf);
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                // A timeout or an error: no burst goes on through it.
                self.buf = None;
                return Err(e);
            }
        };
        (self.start, self.end) = (0, n);
        self.thinned = n <= out.len();
        Ok(self.serve(out, upto))
    }

    /// Takes the frame read ahead next if it is one the reader reads itself
    /// (`frame_scan::text_frame`): its text, unmasked in place, or why it is not UTF-8.
    pub fn take_text(&mut self, max: usize) -> Option<Result<&str, Utf8Error>> {
        let buf = self.buf.as_deref_mut()?;
        let (len, text) = frame_scan::text_frame(buf.get_mut(self.start..self.end)?, max)?;
        self.start += len;
        Some(text)
    }

    /// Whether bytes read ahead wait to be served: the next `read` makes no system call.
    pub fn pending(&self) -> bool {
        self.start < self.end
    }

    /// Serves what is read ahead into `out`; gives the buffer back once the bytes of a read
    /// that showed the burst thinning are all served.
    fn serve(&mut self, out: &mut [u8], upto: impl FnOnce(&[u8]) -> usize) -> usize {
        let Some(buf) = self.buf.as_deref() else {
            return 0;
        };
        let unserved = &buf[self.start..self.end];
        let n = out.len().min(unserved.len()).min(upto(unserved).max(1));
        out[..n].copy_from_slice(&unserved[..n]);
        self.start += n;
        if self.start == self.end && self.thinned {
            *self = ReadAhead::default();
        }
        n
    }

    /// Whether a buffer is held (a burst is going on).
    #[cfg(test)]
    fn holds(&self) -> bool {
        self.buf.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that gives its bytes in the given chunks (as the kernel would), counting calls.
    struct Chunks {
        chunks: Vec<Vec<u8>>,
        calls: usize,
        /// The size of the buffer the last call read into.
        into: usize,
    }

    impl Chunks {
        /// A reader that has `chunks`, one a call, none read yet.
        fn of(chunks: Vec<Vec<u8>>) -> Chunks {
            Chunks {
                chunks,
                calls: 0,
                into: 0,
            }
        }
    }

    impl Read for Chunks {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            self.into = out.len();
            let Some(chunk) = self.chunks.first_mut() else {
                return Ok(0);
            };
            let n = out.len().min(chunk.len());
            out[..n].copy_from_slice(&chunk[..n]);
            chunk.drain(..n);
            if chunk.is_empty() {
                self.chunks.remove(0);
            }
            Ok(n)
        }
    }

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
    }

    /// Reads everything through `ahead` with a caller's buffer of `size`.
    fn read_all(ahead: &mut ReadAhead, from: &mut Chunks, size: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut out = vec![0; size];
        loop {
            let n = ahead.read(from, &mut out, <[u8]>::len).unwrap();
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&out[..n]);
        }
    }

    #[test]
    fn every_byte_comes_through_in_order_whatever_the_chunks() {
        for (sizes, out) in [
            (vec![100, 700, 20_000, 3, 8192, 8193], 512),
            (vec![512, 512, 512, 1], 512),
            (vec![1; 40], 512),
            (vec![30_000], 256),
            (vec![9000, 100], 16 * 1024),
        ] {
            let chunks: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(i, n)| bytes(*n, i as u8))
                .collect();
            let want = chunks.concat();
            let mut from = Chunks::of(chunks);
            let got = read_all(&mut ReadAhead::default(), &mut from, out);
            assert_eq!(got, want, "chunks {sizes:?}, reads of {out}");
        }
    }

    #[test]
    fn a_burst_costs_one_call_per_read_ahead_and_idle_keeps_no_buffer() {
        let mut ahead = ReadAhead::default();
        let mut out = [0; 512];
        // Between bursts: a short read goes straight in, and no buffer is made.
        let mut from = Chunks::of(vec![bytes(100, 1)]);
        assert_eq!(ahead.read(&mut from, &mut out, <[u8]>::len).unwrap(), 100);
        assert!(!ahead.holds());
        // A burst of 64 KiB in chunks of 3,000 bytes (what the kernel has each time): the first
        // read fills the caller's buffer, the rest comes a chunk a call through the buffer, made
        // once; then 100 bytes, no more than a direct read takes: the burst has thinned.
        let burst = 64 * 1024;
        let mut chunks: Vec<Vec<u8>> = bytes(burst, 2).chunks(3000).map(<[u8]>::to_vec).collect();
        chunks.push(bytes(100, 3));
        let mut from = Chunks::of(chunks);
        assert_eq!(ahead.read(&mut from, &mut out, <[u8]>::len).unwrap(), 512);
        assert!(ahead.holds(), "a full read starts a burst");
        let mut served = 512;
        while served < burst {
            served += ahead.read(&mut from, &mut out, <[u8]>::len).unwrap();
            assert!(ahead.holds(), "kept while reads bring more than 512 bytes");
        }
        // 2,488 bytes of the first chunk, then 21 chunks (the last one 2,536 bytes).
        assert_eq!(from.calls, 1 + 1 + 21, "one call per chunk the kernel has");
        assert_eq!(ahead.read(&mut from, &mut out, <[u8]>::len).unwrap(), 100);
        assert!(!ahead.holds(), "the buffer goes once a thin read is served");
        assert_eq!(from.calls, 24);
        // A burst larger than the buffer: one call per READ_AHEAD bytes.
        let mut from = Chunks::of(vec![bytes(burst, 4), bytes(100, 5)]);
        let mut served = 0;
        while served < burst + 100 {
            served += ahead.read(&mut from, &mut out, <[u8]>::len).unwrap();
        }
        // 512 straight in, then 65,024 bytes READ_AHEAD a call (the last call brings 7,680
        // bytes), then the 100.
        assert_eq!(from.calls, 1 + (burst - 512).div_ceil(READ_AHEAD) + 1);
        assert!(!ahead.holds());
    }

    #[test]
    fn an_error_ends_the_burst() {
        struct Failing(bool);
        impl Read for Failing {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if std::mem::replace(&mut self.0, true) {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                out.fill(7);
                Ok(out.len())
            }
        }
        let mut ahead = ReadAhead::default();
        let mut from = Failing(false);
        let mut out = [0; 512];
        assert_eq!(ahead.read(&mut from, &mut out, <[u8]>::len).unwrap(), 512);
        assert!(ahead.holds());
        let e = ahead.read(&mut from, &mut out, <[u8]>::len).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(
            !ahead.holds(),
            "a connection that went quiet keeps no buffer"
        );
    }

    /// A masked final text frame of `text`.
    fn text_frame(text: &str) -> Vec<u8> {
        crate::test_stream::client_frame(0x81, text.as_bytes())
    }

    #[test]
    fn served_up_to_what_the_caller_allows_and_frames_taken_in_place() {
        let mut ahead = ReadAhead::default();
        let mut out = [0; 512];
        let frames: Vec<u8> = ["a", "bb", "ccc"]
            .iter()
            .flat_map(|t| text_frame(t))
            .collect();
        let padding = bytes(100, 2);
        // A full read starts the burst; then a read of the three frames and some padding.
        let mut from = Chunks::of(vec![
            bytes(512, 1),
            [frames.clone(), padding.clone()].concat(),
        ]);
        assert_eq!(ahead.read(&mut from, &mut out, <[u8]>::len).unwrap(), 512);
        // Served no further than the caller says: the first frame only.
        let first = text_frame("a");
        let n = ahead.read(&mut from, &mut out, |_| first.len()).unwrap();
        assert_eq!(out[..n], first);
        // The next two are taken where they are, unmasked; the padding is no frame.
        assert_eq!(ahead.take_text(100).unwrap(), Ok("bb"));
        assert_eq!(ahead.take_text(100).unwrap(), Ok("ccc"));
        assert!(ahead.take_text(100).is_none());
        assert!(ahead.pending());
        let n = ahead.read(&mut from, &mut out, <[u8]>::len).unwrap();
        assert_eq!(out[..n], padding);
        assert_eq!(from.calls, 2);
    }

    #[test]
    fn a_thin_read_taken_whole_gives_the_buffer_back_at_the_next_read() {
        let mut ahead = ReadAhead::default();
        let mut out = [0; 512];
        let mut from = Chunks::of(vec![
            bytes(512, 1),
            [text_frame("a"), text_frame("hi")].concat(),
            bytes(10, 3),
        ]);
        ahead.read(&mut from, &mut out, <[u8]>::len).unwrap();
        // A thin read: its first frame served, its second taken.
        let first = text_frame("a").len();
        assert_eq!(ahead.read(&mut from, &mut out, |_| first).unwrap(), first);
        assert_eq!(ahead.take_text(100).unwrap(), Ok("hi"));
        assert!(ahead.holds(), "kept while its text may be in use");
        // The next read gives it back first and goes straight into the caller's buffer: a
        // connection that goes quiet now waits without it.
        assert_eq!(ahead.read(&mut from, &mut out, <[u8]>::len).unwrap(), 10);
        assert_eq!((from.calls, from.into), (3, out.len()));
        assert!(!ahead.holds());
    }
}
