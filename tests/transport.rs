//! Proves the transport: the WebSocket handshake and subprotocols, plain HTTP on the same
//! port, bad input of every kind (the connection or at least the server keeps working), a
//! request fed in small pieces, a client that stops reading, and the process life cycle.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{parse_response, raw_frame, Server, WAIT};
use tungstenite::Message;

#[test]
fn subprotocol_is_echoed_only_when_offered() {
    let server = Server::start(&[]);
    for (offer, echo) in [
        ("notification", "notification"),
        ("json", "json"),
        ("jsonrpc", "jsonrpc"),
        ("notification,json", "notification"),
        ("text, jsonrpc", "jsonrpc"),
    ] {
        let c = server.client_with(
            &server.url("/jsonrpc"),
            &[("Sec-WebSocket-Protocol", offer)],
        );
        assert_eq!(c.protocol.as_deref(), Some(echo), "offer {offer}");
    }
    let c = server.client_with(&server.url("/jsonrpc"), &[]);
    assert_eq!(c.protocol, None);
    let (status, body) = raw_upgrade(&server, "/jsonrpc", "Sec-WebSocket-Protocol: text\r\n");
    assert_eq!(status, 400, "{body}");
    let (status, _) = raw_upgrade(&server, "/elsewhere", "");
    assert_eq!(status, 404);
    let (status, _) = raw_upgrade(&server, "/jsonrpc/Nonexistent", "");
    assert_eq!(status, 404);
}

fn raw_upgrade(server: &Server, path: &str, extra: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    parse_response(&text)
}

#[test]
fn http_memberships_outlive_their_connection() {
    let server = Server::start(&[]);
    let mut ws = server.client();
    let t = ws.enter("Alice", "Lounge");
    ws.drain();
    let joined = server.post(
        "Messenger.1.join",
        json!({"room": "Lounge", "user": "Script"}),
    );
    let token = joined["result"]["roomid"].as_str().unwrap().to_owned();
    let sent = server.post(
        "Messenger.1.send",
        json!({"roomid": token, "message": "from curl"}),
    );
    assert_eq!(sent["result"], Value::Null);
    assert_eq!(
        server.post("Messenger.1.leave", json!({"roomid": token}))["result"],
        Value::Null
    );
    assert_eq!(
        server.post("Messenger.1.leave", json!({"roomid": token}))["error"]["code"],
        22
    );
    let events: Vec<Value> = ws.drain().into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        events,
        [
            json!({"user":"Script","action":"joined"}),
            json!({"user":"Script","message":"from curl"}),
            json!({"user":"Script","action":"left"})
        ]
    );
    let reg = server.post(
        "Messenger.1.register",
        json!({"event": "message", "id": format!("{t}.x")}),
    );
    assert_eq!(reg["error"]["code"], -32600, "events cannot go over HTTP");
}

#[test]
fn http_memberships_expire_when_unused() {
    let server = Server::start(&["--http-membership-ttl", "0.2"]);
    let joined = server.post(
        "Messenger.1.join",
        json!({"room": "Lounge", "user": "Script"}),
    );
    assert!(joined["result"]["roomid"].is_string());
    server.wait_health(|h| h["rooms"] == 0);
}

#[test]
fn http_endpoints_and_keep_alive() {
    let server = Server::start(&[]);
    let h = server.health();
    assert!(
        h["uptime"].is_u64() && h["connections"].is_u64() && h["rooms"] == 0,
        "{h}"
    );
    assert_eq!(server.http("GET", "/nowhere", None).0, 404);
    assert_eq!(server.http("GET", "/jsonrpc", None).0, 405);
    assert_eq!(
        server.http("GET", "/", None).0,
        200,
        "the page is on by default"
    );
    let (status, body) = server.http(
        "POST",
        "/jsonrpc",
        Some("{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":"),
    );
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        -32700
    );
    let (status, body) = server.http("POST", "/jsonrpc", Some(r#"[{"jsonrpc":"2.0","id":12,"method":"Messenger.1.exists","params":{"method":"join"}}]"#));
    assert_eq!(
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap()["error"]["code"].clone()
        ),
        (200, json!(-32600))
    );
    let (status, _) = server.http(
        "POST",
        "/jsonrpc",
        Some(r#"{"jsonrpc":"2.0","method":"Messenger.1.exists","params":{"method":"join"}}"#),
    );
    assert_eq!(status, 204, "a notification gets no body");
    // Three requests on one keep-alive connection, the last two written together.
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let req = |id: u32| {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"Messenger.1.exists","params":{{"method":"send"}}}}"#
        );
        format!(
            "POST /jsonrpc HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    s.write_all(req(1).as_bytes()).unwrap();
    let first = read_response(&mut s);
    assert!(
        first.ends_with(r#"{"jsonrpc":"2.0","id":1,"result":true}"#),
        "{first}"
    );
    s.write_all(format!("{}{}", req(2), req(3)).as_bytes())
        .unwrap();
    assert!(read_response(&mut s).contains(r#""id":2"#));
    assert!(read_response(&mut s).contains(r#""id":3"#));
}

/// Reads one HTTP response with a Content-Length body.
fn read_response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        got.push(byte[0]);
    }
    let head = String::from_utf8(got).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    head + &String::from_utf8(body).unwrap()
}

#[test]
fn malformed_text_gets_errors_and_the_connection_keeps_working() {
    let server = Server::start(&[]);
    let mut a = server.client();
    for (text, code) in [
        ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":", -32700),
        ("hello", -32700),
        ("", -32700),
        ("[1,2,3]", -32600),
        (
            r#"[{"jsonrpc":"2.0","id":1,"method":"Messenger.1.exists","params":{"method":"join"}}]"#,
            -32600,
        ),
        ("\"str\"", -32600),
        ("42", -32600),
        ("null", -32600),
        ("{}", -32600),
        (
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"Messenger.1.exists"}"#,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.join","params":[]}"#,
            -32602,
        ),
    ] {
        let reply = a.raw(text);
        assert_eq!(reply["error"]["code"], code, "{text:?}: {reply}");
        assert!(reply["error"]["message"].is_string());
    }
    a.ws.send(Message::binary(b"{\"jsonrpc\":\"2.0\",\"id\":77}".to_vec()))
        .unwrap();
    let reply = a.reply();
    assert_eq!(
        reply["error"]["code"], -32600,
        "binary frames are refused clearly: {reply}"
    );
    let t = a.join("Zed", "Lounge");
    assert_eq!(t.len(), 20, "the connection still works");
}

#[test]
fn invalid_utf8_and_oversize_frames_close_only_that_connection() {
    let server = Server::start(&["--max-message-size", "1000"]);
    let mut bystander = server.client();
    let tb = bystander.enter("Bystander", "Lounge");
    bystander.drain();

    let mut bad = server.client();
    raw_frame(bad.ws.get_mut(), 0x1, &[0x7b, 0xff, 0xfe, 0x7d]);
    assert_eq!(bad.closed(), Some(1007));

    let mut big = server.client();
    big.ws.send(Message::text("x".repeat(5000))).unwrap();
    assert_eq!(big.closed(), Some(1009));

    bystander.ok("send", json!({"roomid": tb, "message": "still here"}));
    assert_eq!(bystander.event().1["message"], "still here");
}

#[test]
fn a_request_fed_in_small_pieces() {
    let server = Server::start(&[]);
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let handshake = "GET /jsonrpc HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: notification\r\n\r\n";
    let mut frame = Vec::new();
    let mut tmp = s.try_clone().unwrap();
    let text = r#"{"jsonrpc":"2.0","id":5,"method":"Messenger.1.join","params":{"user":"Slow","room":"Lounge"}}"#;
    {
        // Build the masked frame into a buffer first, then dribble everything out.
        let mut pipe = std::io::Cursor::new(Vec::new());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut b, _) = listener.accept().unwrap();
        raw_frame(&mut a, 0x1, text.as_bytes());
        drop(a);
        b.read_to_end(pipe.get_mut()).unwrap();
        frame.extend_from_slice(pipe.get_ref());
    }
    for chunk in handshake.as_bytes().chunks(7).chain(frame.chunks(3)) {
        tmp.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !String::from_utf8_lossy(&got).contains("roomid") {
        assert!(
            Instant::now() < deadline,
            "no answer: {:?}",
            String::from_utf8_lossy(&got)
        );
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(text.contains("Sec-WebSocket-Protocol: notification"));
}

/// A POST refused on its head (a bearer token this server cannot check) with its body still
/// unread: the client reads the refusal, not a reset. Closing a socket with bytes unread makes
/// the kernel reset the connection, and the reset discards the response the client has not
/// read yet.
#[test]
fn a_refusal_before_the_body_is_read_still_reaches_the_client() {
    let server = Server::start_with(&["--key-file", ""], |cmd| {
        cmd.env("STATE_DIRECTORY", "/proc/no-such-dir");
    });
    // Longer than what the server reads with the head, so most of it is still unread.
    let padding = " ".repeat(16 * 1024);
    let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"Messenger.1.rooms"}}{padding}"#);
    for _ in 0..3 {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let request = format!(
            "POST /jsonrpc HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer a.b\r\n\
             Content-Length: {}\r\n\r\n{body}",
            server.port,
            body.len()
        );
        s.write_all(request.as_bytes()).unwrap();
        // The server refuses and is done with the connection before this reads.
        std::thread::sleep(Duration::from_millis(100));
        let mut text = String::new();
        s.read_to_string(&mut text)
            .expect("the response, not a connection reset");
        let (status, reply) = parse_response(&text);
        assert_eq!(status, 401, "{reply}");
        assert!(reply.contains("no signing key"), "{reply}");
    }
}

#[test]
fn a_client_that_stops_reading_is_cut_off_and_nobody_waits() {
    let server = Server::start(&["--max-outbound-bytes", "200000"]);
    let mut slow = server.client();
    slow.enter("Slow", "Lounge");
    slow.drain();
    let mut fast = server.client();
    let tf = fast.enter("Fast", "Lounge");
    fast.drain();
    // The slow client never reads again. Its kernel buffers fill, then its outbox, then it
    // is cut off; the fast client gets every message in order all the while.
    let text = "m".repeat(16_000);
    let total = 1500;
    let (mut seen, mut left) = (0, 0);
    let mut take = |(_, p): (String, Value)| {
        if p["action"] == "left" {
            left += 1;
        } else {
            let n: usize = p["message"]
                .as_str()
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(n, seen, "in order");
            seen += 1;
        }
    };
    for i in 0..total {
        let reply = fast.call(
            "send",
            json!({"roomid": tf, "message": format!("{i}:{text}")}),
        );
        assert_eq!(reply["result"], Value::Null, "send {i}: {reply}");
        while let Some(event) = fast.drain_one() {
            take(event);
        }
    }
    let h = server.wait_health(|h| h["members"] == 1);
    assert_eq!(h["rooms"], 1, "{h}");
    for event in fast.drain() {
        take(event);
    }
    assert_eq!(
        (seen, left),
        (total, 1),
        "every message, and the slow client's leave"
    );
}

#[test]
fn sigterm_closes_clients_with_1001_and_exits_0() {
    let mut server = Server::start(&[]);
    let mut a = server.client();
    a.join("Alice", "Lounge");
    let pid = server.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(a.closed(), Some(1001));
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        if let Some(code) = server.child.try_wait().unwrap() {
            assert_eq!(code.code(), Some(0));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running a second after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_second_instance_on_the_same_port_fails_clearly() {
    let server = Server::start(&[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_messenger"))
        .args(["--listen", &format!("127.0.0.1:{}", server.port)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("address in use"), "{err}");
}

#[test]
fn bad_flags_and_config_exit_2_with_one_line() {
    let dir = std::env::temp_dir().join(format!("messenger-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad_json = dir.join("bad.json");
    std::fs::write(&bad_json, "{\"max_rooms\": \"many\"}").unwrap();
    let typo = dir.join("typo.json");
    std::fs::write(&typo, "{\"max_romos\": 3}").unwrap();
    let bad_json = bad_json.to_str().unwrap();
    let typo = typo.to_str().unwrap();
    for args in [
        vec!["--nope", "1"],
        vec!["--listen"],
        vec!["--listen", "nowhere"],
        vec!["--listen", "0.0.0.0:9998"],
        vec!["--config", "/nonexistent.json"],
        vec!["--config", bad_json],
        vec!["--config", typo],
        vec!["--compat", "r9"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_messenger"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("messenger: "), "{err}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_messenger"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("messenger "));
    let good = dir.join("good.json");
    std::fs::write(
        &good,
        r#"{"listen":"127.0.0.1:0","callsign":"Box","page":false}"#,
    )
    .unwrap();
    let server = Server::start(&["--config", good.to_str().unwrap()]);
    assert_eq!(
        server.http("GET", "/", None).0,
        404,
        "the file turned the page off"
    );
    let mut c = server.client();
    let reply =
        c.raw(r#"{"jsonrpc":"2.0","id":1,"method":"Box.1.join","params":{"user":"u","room":"r"}}"#);
    assert!(reply["result"]["roomid"].is_string());
}
