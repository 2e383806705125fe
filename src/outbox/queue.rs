//! One client's queue: whole frames in one buffer, how much of it is written, the frame
//! boundary at or before that point (so a cut-off can finish the frame on the wire and drop the
//! rest), and the growth and compaction that keep the buffer's capacity, which is what the
//! memory budget counts, close to what it holds.

use std::io;

use super::Socket;
use crate::wire;

/// A backlog above this is given back to the allocator once written, so one burst does not
/// pin memory for the connection's lifetime.
pub const KEEP_CAPACITY: usize = 16 * 1024;

/// Written bytes at the front are dropped once there are this many and they are at least half
/// the buffer, so a client that reads slowly but steadily reuses its capacity.
const COMPACT_AT: usize = 64 * 1024;

/// What one attempt to write left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Everything went out.
    All,
    /// The socket took less than everything; `progress`: it took something.
    Stalled { progress: bool },
}

/// What a push of some bytes grows a queue by (`Queue::grow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grow {
    /// How much the buffer's capacity grows (`growth`).
    capacity: usize,
    /// How much `cost`, what the budget counts, grows.
    pub cost: usize,
}

/// Whole frames waiting for one client.
#[derive(Default)]
pub struct Queue {
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    sent: usize,
    /// A frame starts here, at or before `sent`.
    mark: usize,
    /// Where the close frame starts once one is queued (nothing is queued after it).
    close_at: Option<usize>,
}

impl Queue {
    /// Bytes waiting to be written.
    pub fn queued(&self) -> usize {
        self.buf.len() - self.sent
    }

    pub fn is_empty(&self) -> bool {
        self.sent == self.buf.len()
    }

    /// The heap bytes the queue holds.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// What the memory budget counts: the buffer while it holds bytes to write. An empty
    /// queue keeps at most `KEEP_CAPACITY` for the next batch until the next sweep
    /// (`release`), part of what each connection costs whatever it does (bounded by
    /// `max_connections`, like its stack and read buffer).
    pub fn cost(&self) -> usize {
        if self.is_empty() {
            0
        } else {
            self.buf.capacity()
        }
    }

    /// How much `capacity` grows to take `n` more bytes: it doubles, or grows to fit if that is
    /// more (as `Vec` does by itself, but known before, for the budget).
    pub fn growth(&self, n: usize) -> usize {
        let (len, cap) = (self.buf.len(), self.buf.capacity());
        if len + n <= cap {
            return 0;
        }
        (len + n).max(2 * cap) - cap
    }

    /// How much `cost` grows when `n` more bytes are pushed.
    pub fn cost_growth(&self, n: usize) -> usize {
        self.grow(n).cost
    }

    /// What pushing `n` more bytes does to `capacity` and to `cost`, worked out once for
    /// both the budget and the push (`push_grown`).
    #[inline]
    pub fn grow(&self, n: usize) -> Grow {
        let capacity = self.growth(n);
        Grow {
            capacity,
            cost: self.buf.capacity() + capacity - self.cost(),
        }
    }

    /// Appends one whole frame of `n` bytes, written by `frame`.
    pub fn push(&mut self, n: usize, frame: impl FnOnce(&mut Vec<u8>)) {
        self.push_grown(self.grow(n), frame);
    }

    /// Appends one whole frame, written by `frame`, of the bytes `grow` was worked out for
    /// (`grow(n)`, with nothing pushed since).
    #[inline]
    pub fn push_grown(&mut self, grow: Grow, frame: impl FnOnce(&mut Vec<u8>)) {
        if grow.capacity > 0 {
            self.buf
                .reserve_exact(self.buf.capacity() + grow.capacity - self.buf.len());
        }
        frame(&mut self.buf);
    }

    /// Appends a close frame: the last frame of the queue.
    pub fn close(&mut self, code: u16, reason: &str) {
        self.close_at = Some(self.buf.len());
        self.push(2 + 2 + 123, |buf| wire::close_frame(buf, code, reason));
    }

    /// Writes as much as the socket takes now.
    pub fn write_to<S: Socket>(&mut self, socket: &mut S) -> io::Result<Written> {
        let before = self.sent;
        while self.sent < self.buf.len() {
            match socket.send_now(&self.buf[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let progress = self.sent > before;
                    self.compact();
                    return Ok(Written::Stalled { progress });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.clear();
        Ok(Written::All)
    }

    /// Empties the queue, giving a large buffer back.
    pub fn clear(&mut self) {
        self.buf.clear();
        (self.sent, self.mark, self.close_at) = (0, 0, None);
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        }
    }

    /// Gives the buffer of an empty queue back (once a `SWEEP`): a connection that has gone
    /// quiet keeps none, a busy one allocates it again at most once a sweep.
    pub fn release(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = Vec::new();
        }
    }

    /// Drops every frame not yet begun (the close frame, if one is queued, stays last): what
    /// is left is the rest of the frame partly on the wire, if any, and the close frame.
    pub fn cut(&mut self) {
        let end = self.frame_end();
        let close_at = self.close_at.take();
        match close_at {
            Some(at) if at >= end => {
                self.buf.drain(end..at);
                self.close_at = Some(end);
            }
            _ => self.buf.truncate(end),
        }
        if self.is_empty() {
            self.clear();
        } else if self.buf.capacity() > KEEP_CAPACITY {
            self.buf.shrink_to_fit();
        }
    }

    /// Where the frame being written ends: `sent` itself when no frame is partly written.
    fn frame_end(&mut self) -> usize {
        while self.mark < self.sent {
            let len = wire::frame_len(&self.buf[self.mark..]).unwrap_or(self.buf.len());
            let end = (self.mark + len).min(self.buf.len());
            if end > self.sent {
                return end;
            }
            self.mark = end;
        }
        self.sent
    }

    /// Drops the written front of the buffer once it is large, at a frame boundary.
    fn compact(&mut self) {
        if self.sent < COMPACT_AT || self.sent * 2 < self.buf.len() {
            return;
        }
        let end = self.frame_end();
        let start = if end == self.sent { end } else { self.mark };
        self.buf.drain(..start);
        self.sent -= start;
        self.mark = 0;
        self.close_at = self.close_at.map(|at| at - start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Shutdown;

    /// Takes `take` bytes, then nothing.
    struct Trickle {
        got: Vec<u8>,
        take: usize,
    }

    impl Trickle {
        /// A socket that takes `take` bytes, then nothing.
        fn taking(take: usize) -> Trickle {
            Trickle {
                got: Vec::new(),
                take,
            }
        }
    }

    impl Socket for Trickle {
        fn send_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let n = bytes.len().min(self.take);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.take -= n;
            self.got.extend_from_slice(&bytes[..n]);
            Ok(n)
        }

        fn shutdown(&mut self, _: Shutdown) {}
    }

    fn frames(q: &mut Queue, sizes: &[usize]) -> Vec<u8> {
        let mut all = Vec::new();
        for size in sizes {
            let text = "x".repeat(*size);
            let mut one = Vec::new();
            wire::text_frame(&mut one, &[&text]);
            all.extend_from_slice(&one);
            q.push(one.len(), |buf| buf.extend_from_slice(&one));
        }
        all
    }

    #[test]
    fn a_release_gives_back_only_an_empty_buffer() {
        let mut q = Queue::default();
        frames(&mut q, &[100]);
        q.release();
        assert!(q.capacity() > 0, "bytes to write keep their buffer");
        let mut s = Trickle::taking(usize::MAX);
        assert_eq!(q.write_to(&mut s).unwrap(), Written::All);
        assert!(
            q.capacity() > 0,
            "an empty queue keeps its buffer for the next batch"
        );
        q.release();
        assert_eq!(q.capacity(), 0, "until the sweep gives it back");
    }

    #[test]
    fn a_cut_finishes_the_frame_on_the_wire_and_keeps_the_close() {
        let mut q = Queue::default();
        let all = frames(&mut q, &[10, 300, 70_000, 5]);
        let mut s = Trickle::taking(12 + 100);
        assert_eq!(
            q.write_to(&mut s).unwrap(),
            Written::Stalled { progress: true }
        );
        q.close(1008, "too slow");
        q.cut();
        s.take = usize::MAX;
        assert_eq!(q.write_to(&mut s).unwrap(), Written::All);
        let second = 12 + 4 + 300;
        assert_eq!(&s.got[..second], &all[..second], "the second frame whole");
        let mut close = Vec::new();
        wire::close_frame(&mut close, 1008, "too slow");
        assert_eq!(&s.got[second..], &close[..], "then the close frame only");
    }

    #[test]
    fn a_cut_at_a_boundary_drops_every_frame_not_begun() {
        let mut q = Queue::default();
        let all = frames(&mut q, &[10, 20, 30]);
        let mut s = Trickle::taking(12);
        q.write_to(&mut s).unwrap();
        q.cut();
        assert!(q.is_empty());
        assert_eq!(s.got, all[..12]);
    }

    #[test]
    fn a_slow_steady_reader_reuses_its_capacity() {
        let mut q = Queue::default();
        let mut s = Trickle::taking(0);
        let mut sent = Vec::new();
        let mut most = 0;
        for _ in 0..400 {
            sent.extend(frames(&mut q, &[1000, 3000]));
            s.take = 3900;
            q.write_to(&mut s).unwrap();
            most = most.max(q.capacity());
        }
        s.take = usize::MAX;
        q.write_to(&mut s).unwrap();
        assert_eq!(s.got, sent, "every byte, in order");
        assert!(most < 4 * COMPACT_AT, "capacity grew to {most}");
        assert_eq!(q.capacity(), 0, "given back when written");
    }

    #[test]
    fn grow_is_what_a_push_adds_to_capacity_and_cost() {
        let mut q = Queue::default();
        let mut s = Trickle::taking(0);
        for (i, n) in [100, 5000, 1, 70_000, 3, 9000].into_iter().enumerate() {
            if i == 3 {
                // Written and empty: the buffer stays but counts nothing until a push.
                s.take = usize::MAX;
                q.write_to(&mut s).unwrap();
                assert_eq!(q.cost(), 0);
            }
            let (capacity, cost) = (q.capacity(), q.cost());
            let grow = q.grow(n);
            q.push_grown(grow, |buf| buf.resize(buf.len() + n, 0));
            assert_eq!(q.capacity(), capacity + grow.capacity, "n {n}");
            assert_eq!(q.cost(), cost + grow.cost, "n {n}");
        }
    }

    #[test]
    fn growth_is_what_push_adds() {
        let mut q = Queue::default();
        for n in [100, 5000, 1, 70_000, 3] {
            let before = q.capacity();
            let growth = q.growth(n);
            q.push(n, |buf| buf.resize(buf.len() + n, 0));
            assert_eq!(q.capacity(), before + growth, "n {n}");
        }
    }
}
