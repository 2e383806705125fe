//! Outboxes: the bytes waiting to be written to each WebSocket client, owned by the engine,
//! and the slow-client policy, which lives here alone. Generic over the `Socket` written to:
//! the binary's is a `TcpStream`, a test's is memory.
//!
//! # Writing
//!
//! Outboxes are kept in slots (`outbox/slots.rs`), found by connection id or by a slot number a
//! room's recipient list keeps, which reaches only the connection it was given for. Frames are
//! appended during a batch and each touched client is written once per batch
//! (`flush`) with non-blocking sends, so a slow or dead client never makes the dispatcher wait.
//! A socket that takes less than everything is *stalled* and tried again on its own back-off
//! schedule (`outbox/retry.rs`: 2 ms doubling to 128 ms, reset whenever it took something);
//! `next_retry` tells the dispatcher when to wake up for it. Nothing is polled in between.
//!
//! # Too slow
//!
//! A client is judged after its socket has been written, never before, so one batch that
//! arrives at once does not cut off a client that reads it:
//! - *Over time*: a client whose queue stays above `limit` (`max_outbound_bytes`) for
//!   `slow_after` (`slow_client_timeout`) is cut off. At or under the limit its clock resets.
//! - *Ceiling*: a queue never holds more than `CEILING` times the limit. A frame that would
//!   take it past is first met by a write of what the socket takes now; if it still does not
//!   fit, the client is cut off at once (it reads far slower than its room talks).
//! - *Budget*: room state (`set_state`) and every queue's buffer together stay within
//!   `budget` (`max_memory_bytes`). A frame that would pass it first has every client with
//!   new bytes written; if the total is still over, the largest queues are cut off, largest
//!   first, until it is back under seven eighths of the budget. Rooms may hold only half the
//!   budget (the engine refuses growth beyond), so queues always have the other half.
//!
//! Pongs and close replies from the reader (`raw`) count like every other frame.
//!
//! # Ending at a frame boundary
//!
//! A cut-off keeps the frame partly on the wire (if any), drops every frame not begun, and
//! queues close 1008 after it; it also shuts the socket's read side, so the reader ends and the
//! connection's memberships go at once. A connection whose reader has gone (`remove`) with bytes
//! still queued keeps its outbox the same way: the frame on the wire and the close frame, if one
//! is queued. Either way, what has not gone out `CLOSE_GRACE` later is given up: the socket is
//! shut down both ways, with no frame half written and nothing after it.
//!
//! # Memory
//!
//! `held` is the capacity of every queue's buffer that holds bytes to write, kept up to date at
//! each change; `recount` sums it again (the model test checks they agree). A buffer doubles as
//! it grows (the growth known before it happens, for the budget), drops its written front when
//! that is large (`outbox/queue.rs`), and gives a buffer larger than `KEEP_CAPACITY` back once
//! written. What an empty queue keeps for
//! the next batch (at most `KEEP_CAPACITY`, and only until the engine's next sweep: `release`)
//! is part of the connection's fixed cost, bounded by `max_connections` like its stack and
//! read buffer, not of the budget.

mod queue;
mod retry;
mod slots;

pub use queue::KEEP_CAPACITY;
pub use retry::{RETRY_MAX, RETRY_MIN};

use std::io;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use crate::rooms::{ConnId, Sink, Slot, NO_SLOT};
use crate::wire;
use queue::{Queue, Written};
use retry::Retry;
use slots::Slots;

/// A queue may hold this many times `max_outbound_bytes` before it is cut off at once.
pub const CEILING: usize = 2;
/// How long a cut-off client, or one whose reader has gone, has to take its last frame and
/// the close frame before its socket is shut down without them.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The write half of a client's connection, as the outboxes use it.
pub trait Socket {
    /// Writes what the socket takes now, without blocking: the count written, or
    /// `ErrorKind::WouldBlock` when it takes nothing now. Never raises a signal.
    fn send_now(&mut self, bytes: &[u8]) -> io::Result<usize>;
    /// Shuts the connection down: for writing (after a close frame), for reading (a cut-off:
    /// the reader wakes up and ends while the last bytes go out) or both ways (the client is
    /// gone or given up on).
    fn shutdown(&mut self, how: Shutdown);
}

/// The settings the policy reads.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// `max_outbound_bytes`.
    pub limit: usize,
    /// `slow_client_timeout`.
    pub slow_after: Duration,
    /// `max_memory_bytes`.
    pub budget: usize,
}

/// Why a client is cut off (its close reason, and the log line's).
#[derive(Debug, Clone, Copy)]
enum Why {
    /// Over the limit for `slow_after`.
    Slow,
    /// Past the ceiling.
    Ceiling,
    /// The largest queue when the memory budget was reached.
    Budget,
}

/// One client's pending output.
struct Outbox<S> {
    stream: S,
    queue: Queue,
    /// A close frame is queued: nothing more is accepted, and the socket is shut down for
    /// writing once the queue is empty.
    closing: bool,
    /// The reader has ended: the outbox goes once its last bytes are written or given up.
    gone: bool,
    /// The schedules of a stalled or ending outbox; `None` while it has none (most of the
    /// time, on most connections: boxed, so an idle connection's slot stays small).
    trouble: Option<Box<Trouble>>,
}

/// What an outbox keeps while its socket is stalled or it is ending.
#[derive(Default)]
struct Trouble {
    /// Since when the queue has been over the limit.
    over_since: Option<Instant>,
    /// Set while the socket is stalled.
    retry: Option<Retry>,
    /// When to stop waiting for the last bytes (a cut-off, or a gone reader's close frame).
    give_up: Option<Instant>,
}

impl<S> Outbox<S> {
    fn retry(&self) -> Option<Retry> {
        self.trouble.as_ref().and_then(|t| t.retry)
    }

    fn give_up(&self) -> Option<Instant> {
        self.trouble.as_ref().and_then(|t| t.give_up)
    }

    /// The schedules, made if there were none.
    fn trouble(&mut self) -> &mut Trouble {
        self.trouble.get_or_insert_with(Box::default)
    }

    /// Changes the schedules; they go once none is set.
    fn edit(&mut self, change: impl FnOnce(&mut Trouble)) {
        let trouble = self.trouble();
        change(trouble);
        if trouble.over_since.is_none() && trouble.retry.is_none() && trouble.give_up.is_none() {
            self.trouble = None;
        }
    }

    /// Sets the schedule `field` picks; the box is made only for a schedule that is set.
    fn set<T>(&mut self, field: fn(&mut Trouble) -> &mut Option<T>, value: Option<T>) {
        if value.is_some() || self.trouble.is_some() {
            self.edit(|t| *field(t) = value);
        }
    }
}

/// All outboxes, and which of them have bytes to write.
pub struct Outboxes<S> {
    /// By connection, or by a slot number a recipient list keeps (`outbox/slots.rs`).
    boxes: Slots<Outbox<S>>,
    /// Connections whose queue went from empty to not, since the last flush.
    dirty: Vec<ConnId>,
    /// Connections with a retry scheduled (some may have drained or gone since).
    stalled: Vec<ConnId>,
    policy: Policy,
    /// The capacity of every queue's buffer.
    held: usize,
    /// What room state holds, as the engine last said.
    state: usize,
    /// The time of the command or flush being carried out.
    now: Instant,
    /// Where the retry grid starts.
    epoch: Instant,
}

impl<S: Socket> Outboxes<S> {
    /// No outboxes yet.
    pub fn new(policy: Policy, now: Instant) -> Outboxes<S> {
        Outboxes {
            boxes: Slots::default(),
            dirty: Vec::new(),
            stalled: Vec::new(),
            policy,
            held: 0,
            state: 0,
            now,
            epoch: now,
        }
    }

    /// Sizes the table for `connections` outboxes, so it does not grow (and leave its old,
    /// smaller tables to the allocator) as connections arrive: the slots not yet used are not
    /// resident.
    pub fn with_connections(mut self, connections: usize) -> Outboxes<S> {
        self.boxes.reserve(connections);
        self
    }

    /// The time from now on, and what room state holds (for the budget).
    pub fn set_clock(&mut self, now: Instant, state: usize) {
        self.now = self.now.max(now);
        self.state = state;
    }

    /// A WebSocket connection is ready for output.
    pub fn open(&mut self, conn: ConnId, stream: S) {
        let outbox = Outbox {
            stream,
            queue: Queue::default(),
            closing: false,
            gone: false,
            trouble: None,
        };
        self.boxes.insert(conn, outbox);
    }

    /// The connection's reader has ended. What is still queued is written if the socket
    /// takes it now; if not, the frame on the wire and the close frame (if queued) have
    /// `CLOSE_GRACE` to go out, and the rest is dropped.
    pub fn remove(&mut self, conn: ConnId) {
        let Some(outbox) = self.boxes.get_mut(&conn) else {
            return;
        };
        // Nothing more is queued for a connection whose reader has gone.
        outbox.gone = true;
        outbox.closing = true;
        outbox
            .trouble()
            .give_up
            .get_or_insert(self.now + CLOSE_GRACE);
        self.write(conn);
        if let Some(outbox) = self.boxes.get_mut(&conn) {
            let before = outbox.queue.cost();
            outbox.queue.cut();
            self.held = self.held + outbox.queue.cost() - before;
            if outbox.queue.is_empty() {
                self.drop_box(conn);
            }
        }
    }

    /// Appends raw frame bytes (a pong or close reply from the connection's reader).
    pub fn raw(&mut self, conn: ConnId, bytes: &[u8]) {
        if self.admit(conn, bytes.len()) {
            self.append(conn, bytes.len(), |buf| buf.extend_from_slice(bytes));
        }
    }

    /// Queues a close frame; the connection takes no more output.
    pub fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        let Some(outbox) = self.boxes.get_mut(&conn).filter(|o| !o.closing) else {
            return;
        };
        if outbox.queue.is_empty() {
            self.dirty.push(conn);
        }
        let before = outbox.queue.cost();
        outbox.queue.close(code, reason);
        outbox.closing = true;
        self.held = self.held + outbox.queue.cost() - before;
    }

    /// Queues close 1001 on every connection (the server is stopping).
    pub fn close_all(&mut self, reason: &str) {
        let conns: Vec<ConnId> = self.boxes.keys().copied().collect();
        for conn in conns {
            self.close(conn, 1001, reason);
        }
    }

    /// Writes what each client with new bytes has queued, and the stalled ones whose retry is
    /// due at `now`; judges who is too slow; keeps the queues within the budget.
    pub fn flush(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let mut work = std::mem::take(&mut self.dirty);
        let boxes = &self.boxes;
        let due = |conn: &ConnId| {
            boxes
                .get(conn)
                .and_then(|o| o.retry())
                .is_some_and(|r| r.at <= now)
        };
        work.extend(self.stalled.iter().copied().filter(due));
        self.stalled
            .retain(|conn| boxes.get(conn).is_some_and(|o| o.retry().is_some()));
        for conn in work.drain(..) {
            self.write(conn);
        }
        self.dirty = work;
        if self.state + self.held > self.policy.budget {
            self.make_room(0);
        }
    }

    /// When the earliest stalled socket is to be tried again.
    pub fn next_retry(&self) -> Option<Instant> {
        let retries = self
            .stalled
            .iter()
            .filter_map(|c| self.boxes.get(c)?.retry());
        retries.map(|r| r.at).min()
    }

    /// Whether some client has bytes the socket would not take yet.
    pub fn has_stalled(&self) -> bool {
        self.next_retry().is_some()
    }

    /// Bytes waiting on all connections (for /health).
    pub fn queued(&self) -> usize {
        self.boxes.values().map(|o| o.queue.queued()).sum()
    }

    /// The heap bytes all queues hold, as kept up to date (counted against the budget).
    pub fn held(&self) -> usize {
        self.held
    }

    /// Gives back the buffers of the queues with nothing to write (every `SWEEP`), so an idle
    /// connection keeps none. Costs nothing to the budget: an empty queue counts 0.
    pub fn release(&mut self) {
        for outbox in self.boxes.values_mut() {
            outbox.queue.release();
        }
    }

    /// `held` summed again from every queue (for tests: it must equal `held`).
    pub fn recount(&self) -> usize {
        self.boxes.values().map(|o| o.queue.cost()).sum()
    }

    /// How many clients have an outbox (those whose reader has gone included, until their last
    /// bytes are written or given up).
    pub fn len(&self) -> usize {
        self.boxes.len()
    }

    /// Whether no client has an outbox.
    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }

    /// Whether `n` more bytes may be queued for `conn` once the policy has made room: the
    /// connection is open, its queue stays under the ceiling after its socket took what it
    /// could, and the total stays within the budget after the largest queues were cut off.
    fn admit(&mut self, conn: ConnId, n: usize) -> bool {
        let Some(outbox) = self.boxes.get(&conn).filter(|o| !o.closing) else {
            return false;
        };
        let queued = outbox.queue.queued() + n;
        let stalled = outbox.retry().is_some();
        let ceiling = CEILING.saturating_mul(self.policy.limit);
        if queued > ceiling || (queued > self.policy.limit && !stalled) {
            self.write(conn);
            let Some(outbox) = self.boxes.get(&conn).filter(|o| !o.closing) else {
                return false;
            };
            if outbox.queue.queued() + n > ceiling {
                self.cut_off(conn, Why::Ceiling);
                return false;
            }
        }
        let growth = self.boxes.get(&conn).map_or(0, |o| o.queue.cost_growth(n));
        if self.state + self.held + growth > self.policy.budget {
            self.make_room(growth);
            return self.boxes.get(&conn).is_some_and(|o| !o.closing);
        }
        true
    }

    /// Appends a frame of `n` bytes (admitted) to `conn`'s queue.
    fn append(&mut self, conn: ConnId, n: usize, frame: impl FnOnce(&mut Vec<u8>)) {
        let Some(outbox) = self.boxes.get_mut(&conn) else {
            return;
        };
        if outbox.queue.is_empty() && outbox.retry().is_none() {
            self.dirty.push(conn);
        }
        let before = outbox.queue.cost();
        outbox.queue.push(n, frame);
        self.held = self.held + outbox.queue.cost() - before;
    }

    /// Writes `conn`'s queue as far as its socket takes it now, schedules a retry if it
    /// stalled, and judges it: too slow, given up on, or done.
    fn write(&mut self, conn: ConnId) {
        let (now, epoch, policy) = (self.now, self.epoch, self.policy);
        let Some(outbox) = self.boxes.get_mut(&conn) else {
            return;
        };
        if outbox.queue.is_empty() {
            outbox.set(|t| &mut t.retry, None);
            if outbox.gone {
                self.drop_box(conn);
            }
            return;
        }
        if outbox.give_up().is_some_and(|at| now >= at) {
            return self.abandon(conn);
        }
        let before = outbox.queue.cost();
        let written = outbox.queue.write_to(&mut outbox.stream);
        self.held = self.held + outbox.queue.cost() - before;
        let progress = match written {
            Err(e) => {
                log::debug!("connection {conn}: write failed: {e}");
                return self.abandon(conn);
            }
            Ok(Written::All) => {
                outbox.set(|t| &mut t.retry, None);
                outbox.set(|t| &mut t.over_since, None);
                if outbox.closing {
                    outbox.stream.shutdown(Shutdown::Write);
                }
                if outbox.gone {
                    self.drop_box(conn);
                }
                return;
            }
            Ok(Written::Stalled { progress }) => progress,
        };
        if outbox.retry().is_none() {
            self.stalled.push(conn);
        }
        outbox.set(
            |t| &mut t.retry,
            Some(Retry::after(outbox.retry(), progress, now, epoch)),
        );
        if outbox.closing || outbox.queue.queued() <= policy.limit {
            outbox.set(|t| &mut t.over_since, None);
        } else if now - *outbox.trouble().over_since.get_or_insert(now) >= policy.slow_after {
            self.cut_off(conn, Why::Slow);
        }
    }

    /// Cuts off the largest queues, largest first, until `extra` more bytes fit within seven
    /// eighths of the budget. Every client with new bytes is written first: most take them.
    fn make_room(&mut self, extra: usize) {
        for conn in std::mem::take(&mut self.dirty) {
            self.write(conn);
        }
        let budget = self.policy.budget;
        if self.state + self.held + extra <= budget {
            return;
        }
        let mut largest: Vec<(usize, ConnId)> = self
            .boxes
            .iter()
            .filter(|(_, o)| !o.queue.is_empty())
            .map(|(conn, o)| (o.queue.queued(), *conn))
            .collect();
        largest.sort_unstable_by(|a, b| b.cmp(a));
        let low_water = budget - budget / 8;
        for (_, conn) in largest {
            if self.state + self.held + extra <= low_water {
                break;
            }
            match self.boxes.get(&conn) {
                Some(o) if o.closing => self.abandon(conn),
                Some(_) => self.cut_off(conn, Why::Budget),
                None => {}
            }
        }
    }

    /// Cuts `conn` off: the frame on the wire is finished, the rest dropped, close 1008 queued,
    /// and the read side shut so the reader ends now.
    fn cut_off(&mut self, conn: ConnId, why: Why) {
        let now = self.now;
        let Some(outbox) = self.boxes.get_mut(&conn).filter(|o| !o.closing) else {
            return;
        };
        let (reason, line) = match why {
            Why::Slow => (
                "too slow: outbound queue over its limit",
                format!(
                    "more than {} bytes waiting for {}",
                    self.policy.limit,
                    crate::logline::secs(self.policy.slow_after)
                ),
            ),
            Why::Ceiling => (
                "too slow: outbound queue full",
                format!(
                    "its queue reached {} bytes (max_outbound_bytes x {CEILING})",
                    CEILING * self.policy.limit
                ),
            ),
            Why::Budget => (
                "server memory budget full",
                format!(
                    "the largest queue ({} bytes) when max_memory_bytes ({}) was reached",
                    outbox.queue.queued(),
                    self.policy.budget
                ),
            ),
        };
        crate::logline::cut_off(conn, &line); // log: refusal
        let before = outbox.queue.cost();
        outbox.queue.cut();
        outbox.queue.close(1008, reason);
        self.held = self.held + outbox.queue.cost() - before;
        outbox.closing = true;
        outbox.set(|t| &mut t.over_since, None);
        outbox.set(|t| &mut t.give_up, Some(now + CLOSE_GRACE));
        outbox.stream.shutdown(Shutdown::Read);
        self.write(conn);
    }

    /// Gives up on the client: drops its backlog and shuts the socket so its reader wakes up
    /// and reports the connection gone.
    fn abandon(&mut self, conn: ConnId) {
        let Some(outbox) = self.boxes.get_mut(&conn) else {
            return;
        };
        self.held -= outbox.queue.cost();
        outbox.queue = Queue::default();
        outbox.closing = true;
        outbox.set(|t| &mut t.retry, None);
        outbox.stream.shutdown(Shutdown::Both);
        if outbox.gone {
            self.boxes.remove(&conn);
        }
    }

    /// Queues a frame of `n` bytes, written by `frame`, for `conn` (at `slot` if it holds it).
    /// In line at each caller, so the fan-out's loop has it without a call.
    #[inline(always)]
    fn queue_frame(
        &mut self,
        slot: Slot,
        conn: ConnId,
        n: usize,
        frame: impl FnOnce(&mut Vec<u8>),
    ) {
        let Some(outbox) = self.boxes.at_mut(slot, conn) else {
            return;
        };
        // The common case in one lookup, its growth worked out once: open, under its limit,
        // within the budget.
        let grow = outbox.queue.grow(n);
        let fits = !outbox.closing
            && outbox.queue.queued() + n <= self.policy.limit
            && self.state + self.held + grow.cost <= self.policy.budget;
        if fits {
            if outbox.queue.is_empty() && outbox.retry().is_none() {
                self.dirty.push(conn);
            }
            outbox.queue.push_grown(grow, frame);
            self.held += grow.cost;
        } else if self.admit(conn, n) {
            self.append(conn, n, frame);
        }
    }

    /// The outbox of a connection whose reader has gone and whose queue is empty goes.
    fn drop_box(&mut self, conn: ConnId) {
        if let Some(mut outbox) = self.boxes.remove(&conn) {
            self.held -= outbox.queue.cost();
            outbox.stream.shutdown(Shutdown::Both);
        }
    }
}

impl<S: Socket> Sink for Outboxes<S> {
    fn send(&mut self, conn: ConnId, parts: &[&str]) {
        self.send_at(NO_SLOT, conn, parts);
    }

    fn slot(&self, conn: ConnId) -> Slot {
        self.boxes.slot(conn)
    }

    fn send_at(&mut self, slot: Slot, conn: ConnId, parts: &[&str]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let n = wire::header_len(len) + len;
        self.queue_frame(slot, conn, n, |buf| wire::text_frame_of(buf, len, parts));
    }

    // In line at both of its callers (the fan-out's loop, a `null` answer): out of line, it
    // costs each delivery about 20 instructions more (`make callgrind`).
    #[inline(always)]
    fn send_frame(&mut self, slot: Slot, conn: ConnId, frame: &[u8]) {
        self.queue_frame(slot, conn, frame.len(), |buf| buf.extend_from_slice(frame));
    }

    fn closed(&self, conn: ConnId) -> bool {
        self.boxes.get(&conn).is_none_or(|o| o.closing)
    }
}

#[cfg(test)]
mod tests;
