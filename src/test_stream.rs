//! In-memory byte streams for the connection side's unit tests (like tungstenite's own): the
//! client's bytes fed in pieces of a chosen size, and what the server writes collected.

use std::io::{self, Read, Write};
use std::time::Duration;

use crate::http::Source;

/// A client in memory: `input` is read back `piece` bytes at a time; at its end, reads give
/// end of stream (the client closed) or, with `stall`, a timeout (the client went quiet).
pub struct Pipe {
    input: Vec<u8>,
    at: usize,
    piece: usize,
    stall: bool,
    pub output: Vec<u8>,
}

impl Pipe {
    pub fn new(input: impl Into<Vec<u8>>, piece: usize) -> Pipe {
        Pipe {
            input: input.into(),
            at: 0,
            piece,
            stall: false,
            output: Vec::new(),
        }
    }

    /// At the end of its input the client stays connected but sends nothing more.
    pub fn stalling(mut self) -> Pipe {
        self.stall = true;
        self
    }

    /// What the server wrote, as text.
    pub fn written(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = &self.input[self.at..];
        if left.is_empty() && self.stall {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = left.len().min(buf.len()).min(self.piece);
        buf[..n].copy_from_slice(&left[..n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Pipe {
    fn wait_at_most(&mut self, _: Duration) -> io::Result<()> {
        Ok(())
    }
}

/// A client's frame with first byte `first` (FIN, opcode; a fragment without FIN), masked as
/// RFC 6455 asks of clients; payloads up to 64 KiB.
pub fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}
