//! Proves every limit of SPEC §4a with small settings: each refusal is a clear error (503,
//! 431, close 1009, JSON-RPC error 2), hits only the client over the limit, and the default
//! rate limit still lets a burst of 10,000 messages from one sender through in full.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{parse_response, raw_frame, Server, WAIT};
use tungstenite::Message;

/// Error code 2 (`ERROR_UNAVAILABLE`) with a `data` that mentions `what`.
fn assert_unavailable(reply: &Value, what: &str) {
    assert_eq!(reply["error"]["code"], 2, "{reply}");
    let data = reply["error"]["data"].as_str().unwrap_or_default();
    assert!(data.contains(what), "{what:?} not in {reply}");
}

/// Reads an HTTP response until the server closes; (status, body).
fn response(s: &mut TcpStream) -> (u16, String) {
    let mut bytes = Vec::new();
    let _ = s.read_to_end(&mut bytes);
    parse_response(&String::from_utf8_lossy(&bytes))
}

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

#[test]
fn connections_beyond_the_limit_get_503() {
    let server = Server::start(&["--max-connections", "3"]);
    let mut a = server.client();
    let _b = server.client();
    let _c = server.client();
    // The acceptor answers at once, before reading a request: sending none means there is no
    // unread data that could turn its close into a reset.
    let mut s = connect(&server);
    let (status, body) = response(&mut s);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("too many connections"), "{body}");
    // The clients inside never noticed.
    a.join("A", "Lobby");
    drop(a);
    // A slot frees up once a client leaves.
    let deadline = Instant::now() + WAIT;
    loop {
        // A refused connection may be reset before its 503 is read: that counts as "not yet".
        let mut s = connect(&server);
        let _ =
            s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        if response(&mut s).0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the slot never came back");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_oversize_message_closes_that_connection_with_1009() {
    let server = Server::start(&["--max-message-size", "1024"]);
    let mut other = server.client();
    let t = other.enter("Other", "Lobby");
    other.drain();
    let mut big = server.client();
    let token = big.join("Big", "Lobby");
    other.drain();
    let text = json!({"jsonrpc":"2.0","id":9,"method":"Messenger.1.send",
        "params":{"roomid": token, "message": "x".repeat(2000)}})
    .to_string();
    big.ws.send(Message::text(text)).unwrap();
    assert_eq!(big.closed(), Some(1009));
    // Its membership ended with it; the other client saw that and nothing else.
    let (method, params) = other.event();
    assert_eq!(method, format!("{t}.client.events.userupdate"));
    assert_eq!(params, json!({"user": "Big", "action": "left"}));
    // A message just under the limit is fine.
    other.ok("send", json!({"roomid": t, "message": "y".repeat(900)}));
}

#[test]
fn rooms_members_and_memberships_are_bounded_with_error_2() {
    let server = Server::start(&[
        "--max-rooms",
        "2",
        "--max-members-per-room",
        "2",
        "--max-memberships-per-connection",
        "2",
    ]);
    let mut a = server.client();
    let mut b = server.client();
    let mut c = server.client();
    let r1 = a.join("A", "One");
    a.join("A", "Two");
    let reply = b.call("join", json!({"user": "B", "room": "Three"}));
    assert_unavailable(&reply, "too many rooms");
    // Existing rooms still take members, up to two each.
    b.join("B", "One");
    let reply = c.call("join", json!({"user": "C", "room": "One"}));
    assert_unavailable(&reply, "room is full");
    // One connection holds at most two memberships, whatever room it asks for.
    b.join("B", "Two");
    let reply = a.call("join", json!({"user": "A3", "room": "One"}));
    assert_unavailable(&reply, "memberships");
    // Space comes back when a room is left empty.
    a.ok("leave", json!({"roomid": r1}));
    let h = server.health();
    assert_eq!(
        (h["rooms"].as_u64(), h["members"].as_u64()),
        (Some(2), Some(3))
    );
    c.join("C", "One");
    assert_unavailable(
        &c.call("join", json!({"user": "C", "room": "Four"})),
        "too many rooms",
    );
}

#[test]
fn an_oversize_request_head_gets_431() {
    let server = Server::start(&["--max-request-head", "1024"]);
    let mut s = connect(&server);
    let filler = "a".repeat(2000);
    write!(
        s,
        "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Filler: {filler}\r\n\r\n"
    )
    .unwrap();
    let (status, body) = response(&mut s);
    assert_eq!(status, 431, "{body}");
    assert!(body.contains("too large"), "{body}");
    // Many small headers count too.
    let mut s = connect(&server);
    let headers: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    write!(s, "GET /health HTTP/1.1\r\n{headers}\r\n").unwrap();
    assert_eq!(response(&mut s).0, 431);
    // Refused connections end: at once when the client closes, else after a lingering close
    // that reads what the client still sends for at most half a second.
    server.wait_health(|h| h["connections"] == 1);
}

#[test]
fn a_client_that_sends_half_a_request_is_dropped() {
    let server = Server::start(&["--handshake-timeout", "0.3"]);
    let mut s = connect(&server);
    s.write_all(b"GET /jsonrpc HTTP/1.1\r\nHost: localhost\r\nUpgr")
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = s.read_to_end(&mut rest);
    assert!(
        matches!(read, Ok(0)) || read.is_err() && started.elapsed() < WAIT,
        "the server closed the connection: {read:?}"
    );
    assert!(
        started.elapsed() < WAIT,
        "dropped before the test's own timeout"
    );
    server.wait_health(|h| h["connections"] == 1);
}

/// Reads one server frame from a raw socket: (opcode, payload).
fn read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).ok()?;
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).ok()?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).ok()?;
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).ok()?;
    Some((head[0] & 0x0f, payload))
}

#[test]
fn a_peer_that_never_answers_pings_is_dropped() {
    let server = Server::start(&["--idle-timeout", "0.2"]);
    // A raw client: completes the upgrade and joins, then never answers anything.
    let mut s = connect(&server);
    write!(s, "GET /jsonrpc HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    let join = r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.join","params":{"user":"Dead","room":"Lobby"}}"#;
    raw_frame(&mut s, 0x1, join.as_bytes());
    let mut opcodes = Vec::new();
    let mut close_code = None;
    while let Some((opcode, payload)) = read_frame(&mut s) {
        opcodes.push(opcode);
        if opcode == 0x8 {
            close_code = Some(u16::from_be_bytes([payload[0], payload[1]]));
            break;
        }
    }
    assert_eq!(opcodes.first(), Some(&0x1), "the join's reply first");
    assert!(
        opcodes.contains(&0x9),
        "pinged before being dropped: {opcodes:?}"
    );
    assert_eq!(close_code, Some(1001));
    // Its membership ended with it (the check is HTTP: a WebSocket watcher that sits in a
    // test without reading would not answer pings either).
    server.wait_health(|h| h["members"] == 0 && h["connections"] == 1);
}

#[test]
fn requests_over_the_rate_get_error_2_and_the_connection_keeps_working() {
    // Half a request a second: the bucket cannot refill while the first six go through.
    let server = Server::start(&["--max-messages-per-second", "0.5", "--message-burst", "6"]);
    let mut listener = server.client();
    let lt = listener.enter("Listener", "Lobby");
    listener.drain();
    let mut fast = server.client();
    let token = fast.enter("Fast", "Lobby"); // 3 requests
    for i in 0..3 {
        fast.ok("send", json!({"roomid": token, "message": format!("m{i}")}));
    }
    let reply = fast.call("send", json!({"roomid": token, "message": "over"}));
    assert_unavailable(
        &reply,
        "rate limit: at most 0.5 requests a second (burst 6)",
    );
    // A notification over the rate is dropped without an answer.
    fast.ws
        .send(Message::text(
            json!({"jsonrpc":"2.0","method":"Messenger.1.send",
                "params":{"roomid": token, "message": "dropped"}})
            .to_string(),
        ))
        .unwrap();
    // So is a malformed frame: garbage takes a token too and gets no answer over the rate.
    fast.ws.send(Message::text("not json")).unwrap();
    let reply = fast.call("exists", json!({"method": "join"}));
    assert_unavailable(&reply, "rate limit");
    // Other connections are not limited by it.
    listener.ok("send", json!({"roomid": lt, "message": "mine"}));
    let messages: Vec<String> = listener
        .drain()
        .into_iter()
        .filter(|(m, _)| m.ends_with(".message"))
        .map(|(_, p)| p["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(messages, ["m0", "m1", "m2", "mine"]);
    assert_eq!(server.health()["rate_limited"], 4);
    // The limited connection works again once its bucket refills.
    let deadline = Instant::now() + WAIT;
    loop {
        let reply = fast.call("exists", json!({"method": "join"}));
        if reply.get("error").is_none() {
            break;
        }
        assert_unavailable(&reply, "rate limit");
        assert!(Instant::now() < deadline, "never let through again");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_default_rate_lets_a_burst_of_10000_messages_through() {
    const BURST: usize = 10_000;
    let server = Server::start(&[]);
    let mut receiver = server.client();
    let rt = receiver.enter("Receiver", "Lobby");
    receiver.drain();
    let mut sender = server.client();
    let token = sender.join("Sender", "Lobby");
    receiver.event();
    for i in 0..BURST {
        let text = json!({"jsonrpc":"2.0","id":i + 100,"method":"Messenger.1.send",
            "params":{"roomid": token, "message": format!("{i}")}})
        .to_string();
        sender.ws.write(Message::text(text)).unwrap();
    }
    sender.ws.flush().unwrap();
    for i in 0..BURST {
        let reply = sender.reply();
        assert_eq!(reply["id"], i + 100);
        assert!(reply.get("error").is_none(), "send {i}: {reply}");
    }
    for i in 0..BURST {
        let (method, params) = receiver.event();
        assert_eq!(method, format!("{rt}.client.events.message"));
        assert_eq!(params["message"], format!("{i}"));
    }
    assert_eq!(server.health()["rate_limited"], 0);
}
