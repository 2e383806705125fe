//! The outboxes with sockets in memory: partial and refused writes, close, removal, and the
//! slow-client policy (over time, the ceiling, the budget, frame boundaries, back-off).

use std::cell::RefCell;
use std::rc::Rc;

use super::*;

/// What a socket in memory was given.
#[derive(Default)]
struct Wire {
    bytes: Vec<u8>,
    shut: Vec<Shutdown>,
    sends: usize,
}

/// Takes at most `piece` bytes a send, and at most `room` bytes until given more.
struct Memory {
    wire: Rc<RefCell<Wire>>,
    piece: usize,
    room: Rc<RefCell<usize>>,
}

impl Socket for Memory {
    fn send_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut wire = self.wire.borrow_mut();
        wire.sends += 1;
        let mut room = self.room.borrow_mut();
        let n = bytes.len().min(self.piece).min(*room);
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        *room -= n;
        wire.bytes.extend_from_slice(&bytes[..n]);
        Ok(n)
    }

    fn shutdown(&mut self, how: Shutdown) {
        self.wire.borrow_mut().shut.push(how);
    }
}

struct Client {
    wire: Rc<RefCell<Wire>>,
    room: Rc<RefCell<usize>>,
}

impl Client {
    fn stall(&self) {
        *self.room.borrow_mut() = 0;
    }

    fn read(&self, n: usize) {
        *self.room.borrow_mut() = n;
    }

    fn got(&self) -> Vec<u8> {
        self.wire.borrow().bytes.clone()
    }

    fn shut(&self) -> Vec<Shutdown> {
        self.wire.borrow().shut.clone()
    }
}

const T0: Duration = Duration::ZERO;

fn outboxes(limit: usize, budget: usize) -> (Outboxes<Memory>, Instant) {
    let now = Instant::now();
    let policy = Policy {
        limit,
        slow_after: Duration::from_secs(5),
        budget,
    };
    (Outboxes::new(policy, now), now)
}

fn open(out: &mut Outboxes<Memory>, conn: ConnId, piece: usize) -> Client {
    let client = Client {
        wire: Rc::default(),
        room: Rc::new(RefCell::new(usize::MAX)),
    };
    let socket = Memory {
        wire: client.wire.clone(),
        piece,
        room: client.room.clone(),
    };
    out.open(conn, socket);
    client
}

fn frame(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::text_frame(&mut out, parts);
    out
}

fn close(code: u16, reason: &str) -> Vec<u8> {
    let mut out = Vec::new();
    wire::close_frame(&mut out, code, reason);
    out
}

/// Flushes at `t` after the start, as often as stalled sockets are due until then.
fn flush_until(out: &mut Outboxes<Memory>, t0: Instant, t: Duration) {
    out.flush(t0 + t);
    while let Some(at) = out.next_retry().filter(|at| *at <= t0 + t) {
        out.flush(at);
    }
    assert_eq!(out.held(), out.recount(), "the running count of held bytes");
}

#[test]
fn frames_go_out_whole_and_in_order_through_small_writes() {
    let (mut out, t0) = outboxes(1 << 20, 1 << 30);
    let client = open(&mut out, 1, 3);
    out.send(1, &["{\"a\":", "1}"]);
    out.raw(1, &[0x8A, 0]);
    out.send(1, &["{}"]);
    assert_eq!(
        client.wire.borrow().sends,
        0,
        "nothing is written before a flush"
    );
    out.flush(t0);
    let want = [frame(&["{\"a\":1}"]), vec![0x8A, 0], frame(&["{}"])].concat();
    assert_eq!(client.got(), want);
    assert_eq!(out.queued(), 0);
    assert_eq!(out.held(), out.recount());
}

#[test]
fn a_full_socket_keeps_its_bytes_until_it_drains_on_a_back_off() {
    let (mut out, t0) = outboxes(1 << 20, 1 << 30);
    let slow = open(&mut out, 1, usize::MAX);
    let fast = open(&mut out, 2, usize::MAX);
    slow.stall();
    out.send(1, &["{\"n\":1}"]);
    out.send(2, &["{\"n\":2}"]);
    out.flush(t0);
    assert!(out.has_stalled());
    assert_eq!(fast.got(), frame(&["{\"n\":2}"]), "the others never wait");
    assert!(slow.got().is_empty());
    // Retried ever more rarely while it takes nothing: no busy polling.
    let mut waits = Vec::new();
    let mut now = t0;
    for _ in 0..9 {
        let at = out.next_retry().unwrap();
        waits.push(at - now);
        out.flush(at - Duration::from_micros(1));
        out.flush(at);
        now = at;
    }
    assert!(waits[0] <= RETRY_MIN * 2, "{waits:?}");
    assert!(
        waits[8] >= RETRY_MAX / 2 && waits[8] <= RETRY_MAX * 2,
        "{waits:?}"
    );
    assert_eq!(
        slow.wire.borrow().sends,
        10,
        "one try per retry, none between"
    );
    slow.read(usize::MAX);
    out.flush(out.next_retry().unwrap());
    assert!(!out.has_stalled());
    assert_eq!(slow.got(), frame(&["{\"n\":1}"]));
}

#[test]
fn a_close_is_the_last_frame_then_the_socket_is_shut() {
    let (mut out, t0) = outboxes(1 << 20, 1 << 30);
    let client = open(&mut out, 1, usize::MAX);
    out.send(1, &["{}"]);
    out.close(1, 1009, "too big");
    out.send(1, &["{\"late\":1}"]);
    out.flush(t0);
    let want = [frame(&["{}"]), close(1009, "too big")].concat();
    assert_eq!(client.got(), want);
    assert_eq!(client.shut(), [Shutdown::Write]);
    out.remove(1);
    assert_eq!(client.shut(), [Shutdown::Write, Shutdown::Both]);
    assert!(out.is_empty());
}

#[test]
fn a_burst_over_the_limit_to_a_reading_client_is_written_not_cut() {
    let (mut out, t0) = outboxes(4096, 1 << 30);
    let client = open(&mut out, 1, usize::MAX);
    // It reads 16 KB while 20 KB arrive in one batch: more than the limit, never the ceiling.
    client.read(16_000);
    let text = "x".repeat(1000);
    let mut want = Vec::new();
    for _ in 0..20 {
        out.send(1, &[&text]);
        want.extend(frame(&[&text]));
    }
    assert!(client.got().len() >= 8000, "written as it passed the limit");
    client.read(usize::MAX);
    flush_until(&mut out, t0, Duration::from_millis(10));
    assert!(client.got() == want, "all of it");
    assert!(client.shut().is_empty());
}

#[test]
fn a_queue_over_the_limit_for_the_timeout_is_cut_at_a_frame_boundary() {
    let (mut out, t0) = outboxes(4096, 1 << 30);
    let client = open(&mut out, 1, usize::MAX);
    client.read(1500);
    let text = "y".repeat(1000);
    for _ in 0..6 {
        out.send(1, &[&text]);
    }
    flush_until(&mut out, t0, T0);
    assert_eq!(client.got().len(), 1500, "one frame and a half went out");
    flush_until(&mut out, t0, Duration::from_millis(4900));
    assert!(client.shut().is_empty(), "not yet: under the timeout");
    flush_until(&mut out, t0, Duration::from_millis(5200));
    assert_eq!(
        client.shut(),
        [Shutdown::Read],
        "the reader is woken at once"
    );
    client.read(usize::MAX);
    flush_until(&mut out, t0, Duration::from_millis(5400));
    let one = frame(&[&text]);
    let want = [
        &one[..],
        &one[..],
        &close(1008, "too slow: outbound queue over its limit"),
    ]
    .concat();
    assert_eq!(
        client.got(),
        want,
        "the frame on the wire finished, then the close"
    );
    assert_eq!(client.shut(), [Shutdown::Read, Shutdown::Write]);
    out.remove(1);
    assert!(out.is_empty());
}

#[test]
fn a_queue_that_drains_under_the_limit_in_time_is_not_cut() {
    let (mut out, t0) = outboxes(4096, 1 << 30);
    let client = open(&mut out, 1, usize::MAX);
    client.stall();
    let text = "z".repeat(1000);
    for round in 0..4u64 {
        for _ in 0..6 {
            out.send(1, &[&text]);
        }
        flush_until(&mut out, t0, Duration::from_secs(4 * round + 3));
        client.read(usize::MAX);
        flush_until(&mut out, t0, Duration::from_secs(4 * round + 4));
        client.stall();
    }
    assert!(client.shut().is_empty(), "over the limit 3 s at a time");
    assert_eq!(client.got().len(), 24 * frame(&[&text]).len());
}

#[test]
fn pongs_count_and_a_queue_past_its_ceiling_is_cut_at_once() {
    let (mut out, t0) = outboxes(4096, 1 << 30);
    let client = open(&mut out, 1, usize::MAX);
    client.stall();
    let pong = [0x8A, 125]
        .into_iter()
        .chain([b'p'; 125])
        .collect::<Vec<_>>();
    for _ in 0..1000 {
        out.raw(1, &pong);
    }
    assert_eq!(client.shut(), [Shutdown::Read]);
    let most = CEILING * 4096 * 2;
    assert!(out.held() <= most, "{} (capacity doubles)", out.held());
    client.read(usize::MAX);
    flush_until(&mut out, t0, RETRY_MAX);
    let close = close(1008, "too slow: outbound queue full");
    assert!(client.got().ends_with(&close));
    assert_eq!(
        (client.got().len() - close.len()) % pong.len(),
        0,
        "whole pongs"
    );
}

#[test]
fn what_does_not_go_out_in_time_is_given_up_with_a_plain_shutdown() {
    let (mut out, t0) = outboxes(4096, 1 << 30);
    let client = open(&mut out, 1, usize::MAX);
    client.read(100);
    for _ in 0..9 {
        out.send(1, &[&"w".repeat(1000)]);
    }
    assert_eq!(client.shut(), [Shutdown::Read], "cut off past its ceiling");
    flush_until(&mut out, t0, CLOSE_GRACE / 2);
    out.remove(1);
    assert_eq!(out.len(), 1, "the last bytes may still go out");
    flush_until(&mut out, t0, CLOSE_GRACE + RETRY_MAX * 2);
    assert!(out.is_empty());
    assert_eq!(client.shut(), [Shutdown::Read, Shutdown::Both]);
    assert_eq!(client.got().len(), 100, "nothing after the cut frame");
    assert_eq!(out.held(), 0);
}

#[test]
fn a_gone_reader_keeps_its_close_frame_but_drops_frames_not_begun() {
    let (mut out, t0) = outboxes(1 << 20, 1 << 30);
    let client = open(&mut out, 1, usize::MAX);
    client.read(5);
    out.send(1, &["{\"first\":1}"]);
    out.send(1, &["{\"second\":2}"]);
    out.close(1, 1002, "protocol error");
    out.flush(t0);
    out.remove(1);
    client.read(usize::MAX);
    flush_until(&mut out, t0, RETRY_MAX);
    let want = [frame(&["{\"first\":1}"]), close(1002, "protocol error")].concat();
    assert_eq!(client.got(), want);
    assert!(out.is_empty());
}

#[test]
fn over_the_budget_the_largest_queues_are_cut_first() {
    let (mut out, t0) = outboxes(256 * 1024, 400 * 1024);
    let clients: Vec<Client> = (1..=4).map(|c| open(&mut out, c, usize::MAX)).collect();
    for c in &clients {
        c.stall();
    }
    let text = "b".repeat(1000);
    // Client 1 holds the most, then 2; 3 and 4 a little.
    for (conn, count) in [(1, 150), (2, 60), (3, 10), (4, 10)] {
        for _ in 0..count {
            out.send(conn, &[&text]);
        }
    }
    assert!(
        clients.iter().all(|c| c.shut().is_empty()),
        "within the budget"
    );
    for _ in 0..80 {
        out.send(3, &[&text]);
    }
    assert_eq!(clients[0].shut(), [Shutdown::Read], "the largest went");
    assert!(clients[1].shut().is_empty());
    assert!(clients[2].shut().is_empty());
    assert!(out.held() <= 400 * 1024, "{}", out.held());
    flush_until(&mut out, t0, T0);
}

#[test]
fn room_state_counts_against_the_same_budget() {
    let (mut out, t0) = outboxes(64 * 1024, 100 * 1024);
    let client = open(&mut out, 1, usize::MAX);
    client.stall();
    out.set_clock(t0, 90 * 1024);
    for _ in 0..20 {
        out.send(1, &[&"s".repeat(1000)]);
    }
    assert_eq!(client.shut(), [Shutdown::Read]);
}

#[test]
fn a_kept_slot_reaches_its_own_connection_or_none() {
    let (mut out, t0) = outboxes(1 << 20, 1 << 30);
    let first = open(&mut out, 1, usize::MAX);
    let slot = out.slot(1);
    out.send_at(slot, 1, &["one"]);
    out.remove(1);
    assert_eq!(first.got(), frame(&["one"]));
    // Connection 1 has gone; connection 2 is given its slot.
    let second = open(&mut out, 2, usize::MAX);
    assert_eq!(out.slot(2), slot, "the slot is reused");
    out.send_at(slot, 1, &["stale"]);
    out.flush(t0);
    assert!(second.got().is_empty(), "a stale slot reaches nobody else");
    assert_eq!(
        first.got(),
        frame(&["one"]),
        "nor the connection that has gone"
    );
    // A slot held by another connection, or none, still finds a connection by its id.
    let third = open(&mut out, 3, usize::MAX);
    out.send_at(slot, 3, &["by id"]);
    out.send_at(NO_SLOT, 2, &["two"]);
    out.flush(t0);
    assert_eq!(third.got(), frame(&["by id"]));
    assert_eq!(second.got(), frame(&["two"]));
    assert_eq!(out.held(), out.recount());
}
