//! Outboxes: the bytes waiting to be written to each WebSocket client, owned by the engine.
//! Frames are appended during a batch and written once per connection per batch with
//! non-blocking sends, so a slow or dead client never makes the dispatcher wait; a client whose
//! backlog passes the limit is cut off with close 1008. The slow-client policy lives here alone.
//! Generic over the `Socket` written to: the binary's is a `TcpStream`, a test's is memory.

use std::io;
use std::net::Shutdown;

use crate::idmap::IdMap;
use crate::rooms::{ConnId, Sink};
use crate::wire;

/// A backlog above this is given back to the allocator once written, so one burst does not
/// pin memory for the connection's lifetime.
pub const KEEP_CAPACITY: usize = 16 * 1024;

/// The write half of a client's connection, as the outboxes use it.
pub trait Socket {
    /// Writes what the socket takes now, without blocking: the count written, or
    /// `ErrorKind::WouldBlock` when it takes nothing now. Never raises a signal.
    fn send_now(&mut self, bytes: &[u8]) -> io::Result<usize>;
    /// Shuts the connection down for writing (`Shutdown::Write`, after a close frame) or both
    /// ways (the client is gone or given up on, so its reader wakes up).
    fn shutdown(&mut self, how: Shutdown);
}

/// One client's pending output.
struct Outbox<S> {
    stream: S,
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    sent: usize,
    /// A close frame is queued: nothing more is accepted, and the socket is shut down for
    /// writing once the queue is empty.
    closing: bool,
}

/// What a flush attempt left behind.
enum Flushed {
    Done,
    /// The socket buffer is full; try again on the next tick.
    Stalled,
}

/// All outboxes, and which of them have bytes to write.
pub struct Outboxes<S> {
    boxes: IdMap<ConnId, Outbox<S>>,
    dirty: Vec<ConnId>,
    stalled: Vec<ConnId>,
    limit: usize,
}

impl<S: Socket> Outboxes<S> {
    /// No outboxes yet; each client may have up to `limit` bytes waiting.
    pub fn new(limit: usize) -> Outboxes<S> {
        Outboxes {
            boxes: IdMap::default(),
            dirty: Vec::new(),
            stalled: Vec::new(),
            limit,
        }
    }

    /// A WebSocket connection is ready for output.
    pub fn open(&mut self, conn: ConnId, stream: S) {
        self.boxes.insert(
            conn,
            Outbox {
                stream,
                buf: Vec::new(),
                sent: 0,
                closing: false,
            },
        );
    }

    /// The connection's reader has ended: write what is still queued if the socket takes it
    /// now, then let the socket go.
    pub fn remove(&mut self, conn: ConnId) {
        if let Some(mut outbox) = self.boxes.remove(&conn) {
            let _ = outbox.write_some();
            outbox.stream.shutdown(Shutdown::Both);
        }
    }

    /// Whether some client has bytes the socket would not take yet.
    pub fn has_stalled(&self) -> bool {
        !self.stalled.is_empty()
    }

    /// Appends raw frame bytes (a pong or close reply from the connection's reader).
    pub fn raw(&mut self, conn: ConnId, bytes: &[u8]) {
        if let Some(outbox) = self.boxes.get_mut(&conn).filter(|o| !o.closing) {
            mark(&mut self.dirty, conn, outbox);
            outbox.buf.extend_from_slice(bytes);
        }
    }

    /// Queues a close frame; the connection takes no more output.
    pub fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        if let Some(outbox) = self.boxes.get_mut(&conn).filter(|o| !o.closing) {
            mark(&mut self.dirty, conn, outbox);
            wire::close_frame(&mut outbox.buf, code, reason);
            outbox.closing = true;
        }
    }

    /// Queues close 1001 on every connection (the server is stopping).
    pub fn close_all(&mut self, reason: &str) {
        let conns: Vec<ConnId> = self.boxes.keys().copied().collect();
        for conn in conns {
            self.close(conn, 1001, reason);
        }
    }

    /// Writes what each dirty or stalled connection has queued, without blocking.
    pub fn flush(&mut self) {
        let mut work = std::mem::take(&mut self.dirty);
        work.append(&mut self.stalled);
        for conn in work.drain(..) {
            let Some(outbox) = self.boxes.get_mut(&conn) else {
                continue;
            };
            match outbox.write_some() {
                Ok(Flushed::Done) => {}
                Ok(Flushed::Stalled) => self.stalled.push(conn),
                Err(e) => {
                    log::debug!("connection {conn}: write failed: {e}");
                    outbox.abandon();
                }
            }
        }
        self.dirty = work;
    }

    /// Bytes queued on all connections (for /health).
    pub fn queued(&self) -> usize {
        self.boxes.values().map(|o| o.buf.len() - o.sent).sum()
    }

    /// How many clients have an outbox.
    pub fn len(&self) -> usize {
        self.boxes.len()
    }

    /// Whether no client has an outbox.
    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }
}

/// Puts `conn` on the dirty list when its outbox goes from empty to non-empty.
fn mark<S>(dirty: &mut Vec<ConnId>, conn: ConnId, outbox: &Outbox<S>) {
    if outbox.buf.len() == outbox.sent {
        dirty.push(conn);
    }
}

impl<S: Socket> Outbox<S> {
    /// Writes as much as the socket takes now.
    fn write_some(&mut self) -> io::Result<Flushed> {
        while self.sent < self.buf.len() {
            match self.stream.send_now(&self.buf[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Stalled),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.sent = 0;
        self.buf.clear();
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        }
        if self.closing {
            self.stream.shutdown(Shutdown::Write);
        }
        Ok(Flushed::Done)
    }

    /// Gives up on the client: drops its backlog and shuts the socket so its reader wakes up
    /// and reports the connection gone.
    fn abandon(&mut self) {
        self.buf = Vec::new();
        self.sent = 0;
        self.closing = true;
        self.stream.shutdown(Shutdown::Both);
    }
}

impl<S: Socket> Sink for Outboxes<S> {
    fn send(&mut self, conn: ConnId, parts: &[&str]) {
        let Some(outbox) = self.boxes.get_mut(&conn).filter(|o| !o.closing) else {
            return;
        };
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if outbox.buf.len() - outbox.sent + len > self.limit {
            crate::logline::cut_off(conn, self.limit); // log: refusal
            outbox.buf = Vec::new();
            outbox.sent = 0;
            wire::close_frame(&mut outbox.buf, 1008, "too slow: outbound queue full");
            outbox.closing = true;
            let _ = outbox.write_some();
            outbox.abandon();
            return;
        }
        mark(&mut self.dirty, conn, outbox);
        wire::text_frame(&mut outbox.buf, parts);
    }
}

#[cfg(test)]
mod tests;
