//! The outboxes with sockets in memory: partial and refused writes, close, removal, cut-off.

use std::cell::RefCell;
use std::rc::Rc;

use super::*;

/// What a socket in memory was given.
#[derive(Default)]
struct Wire {
    bytes: Vec<u8>,
    shut: Option<Shutdown>,
    sends: usize,
}

/// Takes at most `piece` bytes a send, and nothing while `full`.
struct Memory {
    wire: Rc<RefCell<Wire>>,
    piece: usize,
    full: Rc<RefCell<bool>>,
}

impl Socket for Memory {
    fn send_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut wire = self.wire.borrow_mut();
        wire.sends += 1;
        if *self.full.borrow() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = bytes.len().min(self.piece);
        wire.bytes.extend_from_slice(&bytes[..n]);
        Ok(n)
    }

    fn shutdown(&mut self, how: Shutdown) {
        self.wire.borrow_mut().shut = Some(how);
    }
}

struct Client {
    wire: Rc<RefCell<Wire>>,
    full: Rc<RefCell<bool>>,
}

fn open(out: &mut Outboxes<Memory>, conn: ConnId, piece: usize) -> Client {
    let client = Client {
        wire: Rc::default(),
        full: Rc::default(),
    };
    let socket = Memory {
        wire: client.wire.clone(),
        piece,
        full: client.full.clone(),
    };
    out.open(conn, socket);
    client
}

fn frame(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::text_frame(&mut out, parts);
    out
}

#[test]
fn frames_go_out_whole_and_in_order_through_small_writes() {
    let mut out = Outboxes::new(1 << 20);
    let client = open(&mut out, 1, 3);
    out.send(1, &["{\"a\":", "1}"]);
    out.raw(1, &[0x8A, 0]);
    out.send(1, &["{}"]);
    assert_eq!(
        client.wire.borrow().sends,
        0,
        "nothing is written before a flush"
    );
    out.flush();
    let want = [frame(&["{\"a\":1}"]), vec![0x8A, 0], frame(&["{}"])].concat();
    assert_eq!(client.wire.borrow().bytes, want);
    assert_eq!(out.queued(), 0);
}

#[test]
fn a_full_socket_keeps_its_bytes_until_it_drains() {
    let mut out = Outboxes::new(1 << 20);
    let slow = open(&mut out, 1, usize::MAX);
    let fast = open(&mut out, 2, usize::MAX);
    *slow.full.borrow_mut() = true;
    out.send(1, &["{\"n\":1}"]);
    out.send(2, &["{\"n\":2}"]);
    out.flush();
    assert!(out.has_stalled());
    assert_eq!(
        fast.wire.borrow().bytes,
        frame(&["{\"n\":2}"]),
        "the others never wait"
    );
    assert!(slow.wire.borrow().bytes.is_empty());
    assert!(out.queued() > 0);
    *slow.full.borrow_mut() = false;
    out.flush();
    assert!(!out.has_stalled());
    assert_eq!(slow.wire.borrow().bytes, frame(&["{\"n\":1}"]));
}

#[test]
fn a_close_is_the_last_frame_then_the_socket_is_shut() {
    let mut out = Outboxes::new(1 << 20);
    let client = open(&mut out, 1, usize::MAX);
    out.send(1, &["{}"]);
    out.close(1, 1009, "too big");
    out.send(1, &["{\"late\":1}"]);
    out.flush();
    let mut want = frame(&["{}"]);
    wire::close_frame(&mut want, 1009, "too big");
    assert_eq!(client.wire.borrow().bytes, want);
    assert_eq!(client.wire.borrow().shut, Some(Shutdown::Write));
    out.remove(1);
    assert_eq!(client.wire.borrow().shut, Some(Shutdown::Both));
    assert!(out.is_empty());
}

#[test]
fn a_client_over_its_limit_is_cut_off_with_1008() {
    let mut out = Outboxes::new(64);
    let client = open(&mut out, 1, usize::MAX);
    *client.full.borrow_mut() = true;
    out.send(1, &[&"x".repeat(40)]);
    out.flush();
    out.send(1, &[&"y".repeat(40)]);
    assert_eq!(client.wire.borrow().shut, Some(Shutdown::Both));
    *client.full.borrow_mut() = false;
    out.send(1, &["{}"]);
    out.flush();
    assert!(
        client.wire.borrow().bytes.is_empty(),
        "nothing after the cut-off"
    );
    assert_eq!(out.queued(), 0);
}
