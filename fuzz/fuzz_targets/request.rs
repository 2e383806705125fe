//! Fuzzes the request path from raw frame text to the dispatcher's decision: each input line
//! is one frame on one of four connections, checked by `request::parse` and applied to a
//! `Rooms` with small limits and a small history, the way the dispatcher does. Asserts no
//! panic, that every reply and event is valid JSON, that the limits hold, and that when every
//! connection has ended no room or membership is left. Each frame also goes through the Kurento dialect's parser.
//!
//! A line is `[0-3]?<frame text>` (the digit picks the connection; 0 is the HTTP owner), or
//! `!<digit>` to end that connection. `$0`..`$9` in a frame stand for the room tokens of the
//! joins so far, so the fuzzer reaches leave, send and register without guessing 80 bits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use messenger::acl::Origin;
use messenger::caps::Caps;
use messenger::config::Compat;
use messenger::kurento;
use messenger::request::{self, Call, Designators, Method};
use messenger::rooms::{ConnId, Join, Limits, Rooms, Sink};
use messenger::wire;

const LIMITS: Limits = Limits {
    max_rooms: 4,
    max_members_per_room: 4,
    max_memberships_per_connection: 5,
    max_registrations_per_connection: 8,
};

/// Checks every frame the rooms emit.
struct JsonSink;

impl Sink for JsonSink {
    fn send(&mut self, conn: ConnId, parts: &[&str]) {
        let text = parts.concat();
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
            panic!("event for {conn} is not JSON ({e}): {text}");
        }
    }
}

fn assert_json(text: &str) {
    if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
        panic!("reply is not JSON ({e}): {text}");
    }
}

fn origin_of(conn: ConnId) -> Option<Origin> {
    match conn {
        1 => Origin::parse("https://app.example.com"),
        3 => Origin::parse("http://localhost:8080"),
        _ => None,
    }
}

/// What the dispatcher does with one call; returns the reply text, if any.
fn apply(rooms: &mut Rooms, conn: ConnId, call: Call, tokens: &mut Vec<String>) -> Option<String> {
    let origin = origin_of(conn);
    let mut sink = JsonSink;
    let outcome: Result<String, _> = match &call.method {
        method @ Method::Join { .. } => {
            let join = Join::from_call(method, origin.as_ref()).expect("a join call");
            rooms.join(conn, &join, &mut sink).map(|token| {
                tokens.push(token.to_string());
                format!(r#"{{"roomid":"{token}"}}"#)
            })
        }
        Method::Leave { roomid } => rooms.leave(roomid, &mut sink).map(|()| "null".into()),
        Method::Send { roomid, message } => rooms
            .send(roomid, message, &mut sink)
            .map(|()| "null".into()),
        Method::Register { event, id } => rooms
            .register(conn, *event, id, &mut sink)
            .map(|()| "0".into()),
        Method::Unregister { event, id } => rooms.unregister(conn, *event, id).map(|()| "0".into()),
        _ => Ok("true".into()),
    };
    let id = call.id?;
    Some(match outcome {
        Ok(result) => wire::result(&id, &result),
        Err(e) => wire::error(&id, &e, Compat::Rdk),
    })
}

/// Replaces `$n` with the n-th room token seen.
fn substitute(frame: &str, tokens: &[String]) -> String {
    let mut out = String::with_capacity(frame.len());
    let mut chars = frame.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().and_then(|d| d.to_digit(10))) {
            ('$', Some(n)) => {
                chars.next();
                out.push_str(tokens.get(n as usize).map_or("", String::as_str));
            }
            _ => out.push(c),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut rooms = Rooms::new(LIMITS).with_history(3, 4096);
    let mut tokens = Vec::new();
    let names = [
        Designators {
            callsign: "Messenger".into(),
            implicit: false,
            caps: Caps::default(),
        },
        Designators {
            callsign: "Messenger".into(),
            implicit: true,
            caps: Caps::default(),
        },
    ];
    for line in text.split('\n') {
        if let Some(rest) = line.strip_prefix('!') {
            let conn = rest.bytes().next().map_or(1, |d| u64::from(d % 4));
            rooms.disconnect(conn, &mut JsonSink);
            continue;
        }
        let (conn, frame) = match line.as_bytes().first() {
            Some(d @ b'0'..=b'3') => (u64::from(d - b'0'), &line[1..]),
            _ => (1, line),
        };
        let frame = substitute(frame, &tokens);
        // The Kurento dialect's edge reads the same text without panicking.
        if let Err(rejection) = kurento::parse(&frame, &Caps::default()) {
            assert_json(&wire::error(&rejection.id, &rejection.error, Compat::Rdk));
        }
        match request::parse(&frame, &names[conn as usize % 2]) {
            Ok(call) => {
                if let Some(reply) = apply(&mut rooms, conn, call, &mut tokens) {
                    assert_json(&reply);
                }
            }
            Err(rejection) => {
                assert_json(&wire::error(&rejection.id, &rejection.error, Compat::Rdk));
                assert_json(&wire::error(&rejection.id, &rejection.error, Compat::R5));
            }
        }
        assert!(rooms.room_count() <= LIMITS.max_rooms);
        assert!(rooms.member_count() <= LIMITS.max_rooms * LIMITS.max_members_per_room);
    }
    for conn in 0..4 {
        rooms.disconnect(conn, &mut JsonSink);
    }
    assert_eq!(rooms.room_count(), 0, "a room outlived every connection");
    assert_eq!(
        rooms.member_count(),
        0,
        "a membership outlived every connection"
    );
});
