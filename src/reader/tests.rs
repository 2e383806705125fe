//! The frame reader driven from memory: client frames (masked, as a browser sends them) fed in
//! small pieces, and the commands it sends the dispatcher read back.

use super::*;
use crate::caps::Caps;
use crate::config::Config;
use crate::engine::Dialect;
use crate::inbox::Receiver;
use crate::request::{Designators, Method};
use crate::routes::tests::shared_with;
use crate::test_stream::{client_frame, Pipe};

/// One final client frame with `opcode`, masked.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    client_frame(0x80 | opcode, payload)
}

fn text(payload: &str) -> Vec<u8> {
    frame(0x1, payload.as_bytes())
}

fn messenger() -> Upgrade {
    Upgrade {
        conn: 7,
        log: None,
        dialect: Dialect::Messenger(Designators::new("Messenger".into(), false, Caps::default())),
        origin: None,
        admin: false,
        unmasked_ok: true,
        relay: None,
    }
}

/// One final client frame with `opcode`, not masked (as Thunder's C++ client sends them).
fn unmasked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode, payload.len() as u8];
    out.extend_from_slice(payload);
    out
}

/// Reads `input` (after `leftover`) as connection 7; the commands sent.
fn read(config: Config, leftover: Vec<u8>, input: Pipe, upgrade: &Upgrade) -> Vec<Cmd> {
    let (shared, rx): (_, Receiver<Cmd>) = shared_with(config);
    read_frames(input, leftover, upgrade, &shared, &mut None);
    drop(shared);
    rx.iter().collect()
}

/// Whether the last command is the close 1002 that ends a client that just stopped (its input
/// ended without a close frame).
fn reset(cmds: &[Cmd]) -> bool {
    matches!(cmds.last(), Some(Command::Close { code: 1002, .. }))
}

const JOIN: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.join","params":{"user":"A","room":"R"}}"#;

#[test]
fn text_frames_become_checked_calls_in_order() {
    let input = [
        text(r#"{"jsonrpc":"2.0","id":2,"method":"Messenger.1.rooms"}"#),
        text("not json"),
        text(r#"{"jsonrpc":"2.0","method":"Messenger.1.nosuch"}"#),
        frame(0x2, b"\x00\x01"),
    ]
    .concat();
    let cmds = read(
        Config::default(),
        text(JOIN),
        Pipe::new(input, 3),
        &messenger(),
    );
    assert!(reset(&cmds));
    assert_eq!(cmds.len(), 5, "the refused notification asks nothing");
    assert!(
        matches!(&cmds[0], Command::Call { conn: 7, call } if matches!(call.method, Method::Join { .. }))
    );
    assert!(matches!(&cmds[1], Command::Call { call, .. } if call.method == Method::Rooms));
    assert!(
        matches!(&cmds[2], Command::Refused { rejection, .. } if matches!(rejection.error, RpcError::Parse(_)))
    );
    assert!(
        matches!(&cmds[3], Command::Refused { rejection, .. } if matches!(rejection.error, RpcError::InvalidRequest(_)))
    );
}

#[test]
fn unmasked_frames_are_read_only_where_allowed() {
    let input = || Pipe::new(unmasked(0x1, JOIN.as_bytes()), 5);
    let cmds = read(Config::default(), Vec::new(), input(), &messenger());
    assert!(matches!(&cmds[0], Command::Call { conn: 7, .. }), "read");
    let strict = Upgrade {
        unmasked_ok: false,
        ..messenger()
    };
    let cmds = read(Config::default(), Vec::new(), input(), &strict);
    assert_eq!(cmds.len(), 1, "nothing is read");
    assert!(
        matches!(&cmds[0], Command::Close { code: 1002, reason, .. } if reason.contains("unmasked")),
        "closed with 1002"
    );
}

#[test]
fn kurento_frames_are_read_in_their_dialect() {
    let upgrade = Upgrade {
        dialect: Dialect::Kurento(Caps::default()),
        ..messenger()
    };
    let join = r#"{"jsonrpc":"2.0","id":0,"method":"joinRoom","params":{"user":"U","room":"R"}}"#;
    let cmds = read(
        Config::default(),
        Vec::new(),
        Pipe::new([text(join), text(JOIN)].concat(), 2),
        &upgrade,
    );
    assert!(matches!(&cmds[0], Command::Kurento { conn: 7, .. }));
    assert!(
        matches!(&cmds[1], Command::Refused { rejection, .. } if matches!(rejection.error, RpcError::MethodNotFound(_)))
    );
}

#[test]
fn pings_and_closes_are_answered_through_the_dispatcher() {
    let input = [frame(0x9, b"hi"), frame(0x8, &1000u16.to_be_bytes())].concat();
    let cmds = read(
        Config::default(),
        Vec::new(),
        Pipe::new(input, 3),
        &messenger(),
    );
    let raw: Vec<&[u8]> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Raw { bytes, .. } => Some(bytes.as_slice()),
            _ => None,
        })
        .collect();
    assert_eq!(
        raw.concat()[..4],
        [0x8A, 2, b'h', b'i'],
        "the pong echoes the ping"
    );
    assert_eq!(raw.concat()[4], 0x88, "then the close is answered");
}

#[test]
fn a_quiet_client_is_pinged_then_closed() {
    let cmds = read(
        Config::default(),
        Vec::new(),
        Pipe::new(text(JOIN), 3).stalling(),
        &messenger(),
    );
    assert!(matches!(&cmds[0], Command::Call { .. }));
    assert!(matches!(&cmds[1], Command::Raw { bytes, .. } if bytes[0] == 0x89));
    assert!(matches!(&cmds[2], Command::Close { code: 1001, .. }));
    assert_eq!(cmds.len(), 3);
}

#[test]
fn bad_frames_close_with_the_right_code() {
    let config = Config {
        max_message_size: 64,
        ..Config::default()
    };
    let cases = [
        (text(&"x".repeat(65)), 1009),
        (frame(0x1, b"\xff\xfe"), 1007),
        // RSV1 set without an extension that defines it.
        (
            [vec![0x40 | text("x")[0]], text("x")[1..].to_vec()].concat(),
            1002,
        ),
    ];
    for (input, code) in cases {
        let cmds = read(
            config.clone(),
            Vec::new(),
            Pipe::new(input, 3),
            &messenger(),
        );
        assert!(
            matches!(cmds.last(), Some(Command::Close { code: c, .. }) if *c == code),
            "expected close {code}"
        );
    }
}

#[test]
fn over_the_rate_only_requests_with_an_id_are_answered() {
    let config = Config {
        message_burst: 1,
        max_messages_per_second: 0.001,
        ..Config::default()
    };
    let notification = r#"{"jsonrpc":"2.0","method":"Messenger.1.rooms"}"#;
    let input = [text(JOIN), text(JOIN), text(notification), text("junk")].concat();
    let cmds = read(config, Vec::new(), Pipe::new(input, 3), &messenger());
    assert!(reset(&cmds));
    assert_eq!(cmds.len(), 3, "the notification and the junk are dropped");
    assert!(matches!(&cmds[0], Command::Call { .. }));
    let Command::Refused { rejection, .. } = &cmds[1] else {
        panic!("the second join is refused");
    };
    assert_eq!(rejection.id, "1");
    assert!(matches!(&rejection.error, RpcError::Unavailable(why) if why.contains("rate limit")));
}

#[test]
fn over_the_rate_pings_get_no_pong_and_binary_frames_no_error() {
    let config = Config {
        message_burst: 2,
        max_messages_per_second: 0.001,
        ..Config::default()
    };
    let input = [
        frame(0x9, b"1"),
        frame(0xA, b"unasked"),
        frame(0x9, b"3"),
        frame(0x2, b"\x00"),
        frame(0x9, b"5"),
        text(JOIN),
    ]
    .concat();
    let cmds = read(config, Vec::new(), Pipe::new(input, 3), &messenger());
    let pongs: Vec<&[u8]> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Raw { bytes, .. } if bytes[0] == 0x8A => Some(&bytes[2..]),
            _ => None,
        })
        .collect();
    assert_eq!(
        pongs,
        [b"1"],
        "the first ping only: the pong took the second token"
    );
    let refused: Vec<&Rejection> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Refused { rejection, .. } => Some(rejection.as_ref()),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 1, "only the join is answered, with error 2");
    assert!(matches!(&refused[0].error, RpcError::Unavailable(_)));
}

/// The request head's buffer becomes tungstenite's read buffer (`connection::websocket`): a
/// default larger than that buffer would make tungstenite allocate another one, and the head
/// buffer would stay in the thread's malloc cache for the connection's life.
#[test]
fn the_default_read_buffer_is_the_head_buffer() {
    assert_eq!(Config::default().read_buffer_size, crate::http::READ_CHUNK);
}

/// `send` to the room token 0123456789abcdef0123 with `id` and `message`.
fn send(id: u32, message: &str) -> Vec<u8> {
    text(&format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"Messenger.1.send","params":{{"roomid":"0123456789abcdef0123","message":"{message}"}}}}"#
    ))
}

/// The ids of a `Send`'s or a `Sends`'s sends, in order.
fn send_ids(cmd: Cmd) -> Vec<String> {
    let id = |id: Option<crate::request::Id>| id.map(|i| i.as_str().to_owned()).unwrap();
    match cmd {
        Command::Send { id: i, .. } => vec![id(i)],
        Command::Sends { sends, .. } => {
            let mut ids = Vec::new();
            sends.each(|s| ids.push(id(s.id)));
            ids
        }
        _ => panic!("not a send"),
    }
}

#[test]
fn the_sends_one_read_brings_go_as_one_command_in_order_with_the_rest() {
    // Everything arrives with the upgrade request, so no read from the socket comes between.
    let burst = [
        send(1, "a"),
        send(2, "b"),
        frame(0x9, b"p"),
        send(3, "c"),
        text(r#"{"jsonrpc":"2.0","id":4,"method":"Messenger.1.rooms"}"#),
        send(5, "d"),
        // Not as ThunderJS writes it: read by the scanner, held all the same.
        text(r#"{"jsonrpc": "2.0", "id": 6, "method": "Messenger.1.send", "params": {"roomid": "0123456789abcdef0123", "message": "e"}}"#),
        send(7, "f"),
    ]
    .concat();
    let cmds = read(
        Config::default(),
        burst,
        Pipe::new(send(8, "g"), 64),
        &messenger(),
    );
    assert!(reset(&cmds));
    assert_eq!(
        cmds.len(),
        7,
        "two runs, a lone send before the call and after the read, a pong, the call, the close"
    );
    let mut cmds = cmds.into_iter();
    let first = cmds.next().unwrap();
    assert!(
        matches!(first, Command::Sends { conn: 7, .. }),
        "a run of two"
    );
    assert_eq!(send_ids(first), ["1", "2"]);
    assert!(
        matches!(cmds.next(), Some(Command::Raw { bytes, .. }) if bytes[..3] == [0x8A, 1, b'p']),
        "the pong after the sends before its ping"
    );
    let lone = cmds.next().unwrap();
    assert!(
        matches!(lone, Command::Send { .. }),
        "a lone send goes as it is"
    );
    assert_eq!(send_ids(lone), ["3"]);
    assert!(
        matches!(cmds.next(), Some(Command::Call { call, .. }) if call.method == Method::Rooms)
    );
    assert_eq!(
        send_ids(cmds.next().unwrap()),
        ["5", "6", "7"],
        "held until the socket is read"
    );
    assert_eq!(send_ids(cmds.next().unwrap()), ["8"], "the read's own send");
}

/// Every request the commands carry, one line each, in order (a run of sends as its sends):
/// what the dispatcher is asked, whichever commands carry it.
fn requests(cmds: Vec<Cmd>) -> Vec<String> {
    let mut out = Vec::new();
    for cmd in cmds {
        match cmd {
            Command::Send {
                id, token, message, ..
            } => out.push(format!("send {id:?} {token:?} {message}")),
            Command::Sends { sends, .. } => sends.each(|s| {
                out.push(format!("send {:?} {:?} {}", s.id, s.token, s.message));
            }),
            Command::Call { call, .. } => out.push(format!("call {call:?}")),
            Command::Refused { rejection, .. } => out.push(format!("refused {rejection:?}")),
            Command::Raw { bytes, .. } => out.push(format!("raw {bytes:?}")),
            Command::Close { code, reason, .. } => out.push(format!("close {code} {reason}")),
            _ => out.push("other".into()),
        }
    }
    out
}

#[test]
fn frames_taken_without_tungstenite_come_to_the_same_requests() {
    let long = "é".repeat(150);
    let frames = [
        send(1, "a"),
        text(JOIN),
        send(2, &long),
        frame(0x9, b"ping"),
        send(3, "b"),
        frame(0xA, b"pong"),
        text(r#"{"jsonrpc":"2.0","id":4,"method":"Messenger.1.rooms"}"#),
        frame(0x2, b"binary"),
        send(5, "c"),
        // A fragmented message with a ping inside it.
        client_frame(0x01, br#"{"jsonrpc":"2.0","id":6,"#),
        frame(0x9, b""),
        client_frame(0x80, br#""method":"Messenger.1.rooms"}"#),
        send(7, "d"),
        text("not json"),
        unmasked(
            0x1,
            br#"{"jsonrpc":"2.0","id":8,"method":"Messenger.1.rooms"}"#,
        ),
        send(9, "e"),
        send(10, "f"),
    ]
    .concat();
    let config = Config {
        max_message_size: 1000,
        ..Config::default()
    };
    let endings = [
        ("a close", frame(0x8, &1000u16.to_be_bytes())),
        (
            "a close, then more",
            [
                frame(0x8, &1000u16.to_be_bytes()),
                send(11, "g"),
                text(JOIN),
            ]
            .concat(),
        ),
        ("a text that is not UTF-8", frame(0x1, &[b'{', 0xff])),
        ("a text too big", text(&"x".repeat(1200))),
        ("nothing: the client stops", Vec::new()),
    ];
    for (ending, bytes) in endings {
        let input = [frames.clone(), bytes].concat();
        let taken = |leftover: usize, piece: usize| {
            TAKEN.with(|t| t.set(0));
            let pipe = Pipe::new(input[leftover..].to_vec(), piece);
            let cmds = read(
                config.clone(),
                input[..leftover].to_vec(),
                pipe,
                &messenger(),
            );
            (requests(cmds), TAKEN.with(|t| t.get()))
        };
        // Pieces of 64 bytes never fill tungstenite's 512: no burst, tungstenite reads all.
        let (want, none) = taken(0, 64);
        assert_eq!(none, 0, "{ending}");
        assert!(want.len() > 15, "{ending}: {want:#?}");
        // In a burst, the sends and the call read ahead are taken (from the first frame
        // tungstenite has not been given, once it has answered what it has).
        for (leftover, piece, least) in [
            (0, 600, 5),
            (0, 4096, 5),
            (0, input.len(), 5),
            (700, 2000, 1),
        ] {
            let (got, quick) = taken(leftover, piece);
            assert_eq!(got, want, "{ending}, pieces of {piece} after {leftover}");
            assert!(quick >= least, "{ending}, pieces of {piece}: {quick} taken");
        }
    }
}
