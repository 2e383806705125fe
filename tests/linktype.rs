//! Proves Thunder's C++ client (`JSONRPC::LinkType` / `SmartLinkType`) works unchanged: this
//! test speaks its bytes (shared/reference/thunder-r5-linktype.md: the upgrade on `/jsonrpc/`
//! with `Host: 127.0.0.1@<port>`, `Origin: 0.0.0.0@0`, subprotocol `JSON`, unmasked frames,
//! `temporaryN` ids, the Controller calls) and gets the recording's answers byte for byte in
//! `compat = "r5"`, and seed 000's shapes by default; its directed mode, `?token=` for a secure
//! room, `require_masking`, and the `Host` check.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::{json, Value};
use support::{Server, WAIT};

/// The recorded upgrade's fixed key and Thunder's answer to it.
const KEY: &str = "Z0XGI2mYc0hR3P9cSpTsWA==";
const ACCEPT: &str = "UKJ4wE9ClN9OW90eWhC/afpNyvM=";

/// The room tokens in the recording, replaced by the ones this run gets.
const ALICE: &str = "b0a1325cd622fd82b440";
const BOB: &str = "61cc7d413c7ba37bfe69";

/// The recorded exchange: each frame LinkType sent, and what Thunder R5.3 sent back before
/// the next one, verbatim.
const RECORDED: &[(&str, &[&str])] = &[
    (
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.join","params":{"user":"alice","room":"lounge"}}"#,
        &[r#"{"jsonrpc":"2.0","id":1,"result":"b0a1325cd622fd82b440"}"#],
    ),
    (
        r#"{"jsonrpc":"2.0","id":2,"method":"Messenger.join","params":{"user":"bob","room":"lounge"}}"#,
        &[r#"{"jsonrpc":"2.0","id":2,"result":"61cc7d413c7ba37bfe69"}"#],
    ),
    (
        r#"{"jsonrpc":"2.0","id":3,"method":"Messenger.register","params":{ "event": "roomupdate", "id": "temporary1"}}"#,
        &[
            r#"{"jsonrpc":"2.0","method":"temporary1.roomupdate","params":{"room":"lounge","action":"created","secure":"insecure"}}"#,
            r#"{"jsonrpc":"2.0","id":3,"result":null}"#,
        ],
    ),
    (
        r#"{"jsonrpc":"2.0","id":4,"method":"Messenger.register","params":{ "event": "message", "id": "temporary1"}}"#,
        &[r#"{"jsonrpc":"2.0","id":4,"result":null}"#],
    ),
    (
        r#"{"jsonrpc":"2.0","id":5,"method":"Messenger.register","params":{ "event": "userupdate", "id": "temporary1"}}"#,
        &[r#"{"jsonrpc":"2.0","id":5,"result":null}"#],
    ),
    (
        r#"{"jsonrpc":"2.0","id":6,"method":"Messenger.register","params":{ "event": "userupdate", "id": "b0a1325cd622fd82b440.client.events"}}"#,
        &[
            r#"{"jsonrpc":"2.0","method":"b0a1325cd622fd82b440.client.events.userupdate","params":{"user":"alice","action":"joined"}}"#,
            r#"{"jsonrpc":"2.0","method":"b0a1325cd622fd82b440.client.events.userupdate","params":{"user":"bob","action":"joined"}}"#,
            r#"{"jsonrpc":"2.0","id":6,"result":null}"#,
        ],
    ),
    (
        r#"{"jsonrpc":"2.0","id":7,"method":"Messenger.register","params":{ "event": "message", "id": "b0a1325cd622fd82b440.client.events"}}"#,
        &[r#"{"jsonrpc":"2.0","id":7,"result":null}"#],
    ),
    (
        r#"{"jsonrpc":"2.0","id":8,"method":"Messenger.register","params":{ "event": "message", "id": "61cc7d413c7ba37bfe69.client.events"}}"#,
        &[r#"{"jsonrpc":"2.0","id":8,"result":null}"#],
    ),
    (
        r#"{"jsonrpc":"2.0","id":9,"method":"Messenger.send","params":{"roomid":"b0a1325cd622fd82b440","message":"hello from alice"}}"#,
        &[
            r#"{"jsonrpc":"2.0","method":"b0a1325cd622fd82b440.client.events.message","params":{"user":"alice","message":"hello from alice"}}"#,
            r#"{"jsonrpc":"2.0","method":"61cc7d413c7ba37bfe69.client.events.message","params":{"user":"alice","message":"hello from alice"}}"#,
            r#"{"jsonrpc":"2.0","id":9,"result":null}"#,
        ],
    ),
    (
        r#"{"jsonrpc":"2.0","id":10,"method":"Messenger.leave","params":{"roomid":"61cc7d413c7ba37bfe69"}}"#,
        &[
            r#"{"jsonrpc":"2.0","method":"b0a1325cd622fd82b440.client.events.userupdate","params":{"user":"bob","action":"left"}}"#,
            r#"{"jsonrpc":"2.0","id":10,"result":null}"#,
        ],
    ),
    (
        r#"{"jsonrpc":"2.0","id":11,"method":"Messenger.leave","params":{"roomid":"b0a1325cd622fd82b440"}}"#,
        &[
            r#"{"jsonrpc":"2.0","method":"temporary1.roomupdate","params":{"room":"lounge","action":"destroyed","secure":"insecure"}}"#,
            r#"{"jsonrpc":"2.0","id":11,"result":null}"#,
        ],
    ),
    (
        r#"{"jsonrpc":"2.0","id":12,"method":"Messenger.nosuchmethod"}"#,
        &[r#"{"jsonrpc":"2.0","id":12,"error":{"code":-32601,"message":"Unknown method."}}"#],
    ),
    (
        r#"{"jsonrpc":"2.0","id":13,"method":"Messenger.leave","params":{"roomid":"00000000000000000000"}}"#,
        &[r#"{"jsonrpc":"2.0","id":13,"error":{"code":-31022,"message":"ERROR_UNKNOWN_KEY"}}"#],
    ),
    (
        r#"{"jsonrpc":"2.0","id":14,"method":"register","params":{ "event": "statechange", "id": "temporary2"}}"#,
        &[
            r#"{"jsonrpc":"2.0","method":"temporary2.statechange","params":{"callsign":"Messenger","state":"Activated","reason":"Startup"}}"#,
            r#"{"jsonrpc":"2.0","method":"temporary2.statechange","params":{"callsign":"Controller","state":"Activated","reason":"Startup"}}"#,
            r#"{"jsonrpc":"2.0","id":14,"result":null}"#,
        ],
    ),
    (
        r#"{"jsonrpc":"2.0","id":15,"method":"status@Messenger"}"#,
        &[
            r#"{"jsonrpc":"2.0","id":15,"result":{"callsign":"Messenger","locator":"libThunderMessenger.so","classname":"Messenger","module":"Plugin_Messenger","state":"Activated","startmode":"Activated","resumed":false,"version":{"hash":"engineering_build_for_debug_purpose_only","major":1,"minor":0,"patch":0},"configuration":{"root":{"mode":"Off"}},"observers":0,"processedrequests":0,"processedobjects":0}}"#,
        ],
    ),
    (
        r#"{"jsonrpc":"2.0","id":16,"method":"Messenger.unregister","params":{ "event": "userupdate", "id": "b0a1325cd622fd82b440.client.events"}}"#,
        &[r#"{"jsonrpc":"2.0","id":16,"result":null}"#],
    ),
    (
        r#"{"jsonrpc":"2.0","id":17,"method":"Messenger.unregister","params":{ "event": "message", "id": "b0a1325cd622fd82b440.client.events"}}"#,
        &[r#"{"jsonrpc":"2.0","id":17,"result":null}"#],
    ),
    (
        r#"{"jsonrpc":"2.0","id":18,"method":"Messenger.unregister","params":{ "event": "message", "id": "61cc7d413c7ba37bfe69.client.events"}}"#,
        &[r#"{"jsonrpc":"2.0","id":18,"result":null}"#],
    ),
    (
        r#"{"jsonrpc":"2.0","id":19,"method":"Messenger.unregister","params":{ "event": "message", "id": "temporary1"}}"#,
        &[r#"{"jsonrpc":"2.0","id":19,"result":null}"#],
    ),
    (
        r#"{"jsonrpc":"2.0","id":20,"method":"Messenger.unregister","params":{ "event": "userupdate", "id": "temporary1"}}"#,
        &[r#"{"jsonrpc":"2.0","id":20,"result":null}"#],
    ),
    (
        r#"{"jsonrpc":"2.0","id":21,"method":"Messenger.unregister","params":{ "event": "roomupdate", "id": "temporary1"}}"#,
        &[r#"{"jsonrpc":"2.0","id":21,"result":null}"#],
    ),
];

/// What this server says about itself where Thunder's status object names its own build:
/// the recording's values and ours.
fn truthful(frame: &str) -> String {
    frame
        .replace("libThunderMessenger.so", "messenger")
        .replace("Plugin_Messenger", "messenger")
        .replace(
            "engineering_build_for_debug_purpose_only",
            &format!("messenger {}", env!("CARGO_PKG_VERSION")),
        )
        .replace(
            r#""configuration":{"root":{"mode":"Off"}}"#,
            r#""configuration":{}"#,
        )
}

/// A frame the server sent.
#[derive(Debug, PartialEq)]
enum Frame {
    Text(String),
    Close(u16),
}

/// LinkType's end of a WebSocket: the recorded upgrade, frames written unmasked by hand.
struct Link {
    s: TcpStream,
}

impl Link {
    /// Upgrades as LinkType does on `target` with `Host: host`; the server's response head
    /// and, if it switched protocols, the link.
    fn upgrade(server: &Server, target: &str, host: &str) -> (String, Option<Link>) {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            s,
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: UPGRADE\r\nUpgrade: WEBSOCKET\r\nOrigin: 0.0.0.0@0\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Protocol: JSON\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let upgraded = head.starts_with("HTTP/1.1 101 ");
        (head, upgraded.then_some(Link { s }))
    }

    /// LinkType's link on `target` (`/jsonrpc/`, `/jsonrpc/Messenger`, with a query).
    fn open(server: &Server, target: &str) -> Link {
        let host = format!("127.0.0.1@{}", server.port);
        let (head, link) = Link::upgrade(server, target, &host);
        assert!(
            head.contains(&format!("\r\nSec-WebSocket-Accept: {ACCEPT}\r\n")),
            "{head}"
        );
        assert!(
            head.contains("\r\nSec-WebSocket-Protocol: JSON\r\n"),
            "{head}"
        );
        link.unwrap_or_else(|| panic!("not upgraded: {head}"))
    }

    /// Writes one final frame, unmasked, as LinkType does.
    fn write(&mut self, opcode: u8, payload: &[u8]) {
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(n as u8),
            n => {
                frame.push(126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        frame.extend_from_slice(payload);
        self.s.write_all(&frame).unwrap();
    }

    fn send(&mut self, text: &str) {
        self.write(0x1, text.as_bytes());
    }

    /// The next frame from the server, which must not be masked.
    fn frame(&mut self) -> Frame {
        let mut head = [0u8; 2];
        self.s.read_exact(&mut head).expect("a frame");
        assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
        let len = match head[1] & 0x7f {
            126 => {
                let mut n = [0u8; 2];
                self.s.read_exact(&mut n).unwrap();
                usize::from(u16::from_be_bytes(n))
            }
            127 => panic!("no frame here is that long"),
            n => usize::from(n),
        };
        let mut payload = vec![0u8; len];
        self.s.read_exact(&mut payload).unwrap();
        match head[0] & 0x0f {
            0x1 => Frame::Text(String::from_utf8(payload).unwrap()),
            0x8 => Frame::Close(u16::from_be_bytes([payload[0], payload[1]])),
            op => panic!("unexpected opcode {op}"),
        }
    }

    /// Sends `text` and returns every frame up to and including its response.
    fn call(&mut self, text: &str) -> Vec<String> {
        self.send(text);
        let mut frames = Vec::new();
        loop {
            let Frame::Text(frame) = self.frame() else {
                panic!("closed after {frames:?}");
            };
            let v: Value = serde_json::from_str(&frame).unwrap();
            frames.push(frame);
            if v.get("id").is_some() {
                return frames;
            }
        }
    }

    /// Closes as LinkType does; the server's close code.
    fn close(mut self) -> u16 {
        self.write(0x8, &1000u16.to_be_bytes());
        loop {
            if let Frame::Close(code) = self.frame() {
                return code;
            }
        }
    }
}

/// Room events under `temporary1`, the link's own namespace: a plain `Subscribe` registers it.
/// Thunder accepts that and never delivers, so they are not in the recording; messenger treats
/// it as a registration for the whole connection (SPEC §3) and delivers every room the
/// connection is in there, with `room` in the params.
fn namespace_event(frame: &str) -> bool {
    ["temporary1.message", "temporary1.userupdate"]
        .iter()
        .any(|m| frame.starts_with(&format!(r#"{{"jsonrpc":"2.0","method":"{m}""#)))
}

/// One request of the replay: what the recording wants (with this run's tokens), what came
/// apart from the namespace's events, and those events.
struct Step {
    want: Vec<String>,
    got: Vec<String>,
    namespace: Vec<String>,
}

/// Replays the recording on a link to a server in `compat`, step by step.
fn replay(compat: &str) -> Vec<Step> {
    let server = Server::start(&["--compat", compat]);
    let mut link = Link::open(&server, "/jsonrpc/");
    let mut tokens: Vec<(&str, String)> = Vec::new();
    let ours = |text: &str, tokens: &[(&str, String)]| {
        tokens.iter().fold(text.to_owned(), |t, (recorded, ours)| {
            t.replace(recorded, ours)
        })
    };
    let mut steps = Vec::new();
    for (request, recorded) in RECORDED {
        let (namespace, got): (Vec<String>, Vec<String>) = link
            .call(&ours(request, &tokens))
            .into_iter()
            .partition(|f| namespace_event(f));
        if tokens.len() < 2 {
            let v: Value = serde_json::from_str(&got[0]).unwrap();
            let token = v["result"]["roomid"].as_str().or(v["result"].as_str());
            let recorded_token = [ALICE, BOB][tokens.len()];
            tokens.push((recorded_token, token.expect("a token").to_owned()));
        }
        let want = recorded.iter().map(|f| truthful(&ours(f, &tokens)));
        steps.push(Step {
            want: want.collect(),
            got,
            namespace,
        });
    }
    assert_eq!(link.close(), 1000);
    steps
}

/// What the connection-wide `temporary1` registrations (requests 4 and 5) hear, by request:
/// the members replayed at once (5), alice's send (9), bob leaving while alice stays (10).
fn namespace_events(id: usize) -> Vec<String> {
    let event = |method: &str, params: &str| {
        format!(r#"{{"jsonrpc":"2.0","method":"temporary1.{method}","params":{params}}}"#)
    };
    match id {
        5 => vec![
            event(
                "userupdate",
                r#"{"user":"alice","action":"joined","room":"lounge"}"#,
            ),
            event(
                "userupdate",
                r#"{"user":"bob","action":"joined","room":"lounge"}"#,
            ),
        ],
        9 => vec![event(
            "message",
            r#"{"user":"alice","message":"hello from alice","room":"lounge"}"#,
        )],
        10 => vec![event(
            "userupdate",
            r#"{"user":"bob","action":"left","room":"lounge"}"#,
        )],
        _ => Vec::new(),
    }
}

#[test]
fn linktype_gets_thunder_r5s_bytes_in_r5() {
    for (n, step) in replay("r5").into_iter().enumerate() {
        let id = n + 1;
        assert_eq!(step.got, step.want, "request {id}");
        assert_eq!(step.namespace, namespace_events(id), "request {id}");
    }
}

/// The recording's frames as seed 000 shapes them (the default `rdk` dialect): the join
/// result `{"roomid": ..}`, `register` answering `0`, `roomupdate` params as `room, secure,
/// action`, error codes without the -31000 and with a `data` detail, `status@<callsign>` a
/// one-element array (as R4-era Thunder, and as `SmartLinkType` parses it).
fn rdk(id: usize, frame: &str) -> String {
    let mut frame = frame.to_owned();
    let registration = matches!(id, 3..=8 | 14 | 16..=21);
    if registration {
        let null = format!(r#""id":{id},"result":null}}"#);
        frame = frame.replace(&null, &format!(r#""id":{id},"result":0}}"#));
    }
    if id <= 2 {
        let (head, token) = frame.split_once(r#""result":""#).unwrap();
        frame = format!(r#"{head}"result":{{"roomid":"{}"}}}}"#, &token[..20]);
    }
    for action in ["created", "destroyed"] {
        frame = frame.replace(
            &format!(r#""action":"{action}","secure":"insecure""#),
            &format!(r#""secure":"insecure","action":"{action}""#),
        );
    }
    if id == 15 {
        let (head, object) = frame.split_once(r#""result":"#).unwrap();
        frame = format!(r#"{head}"result":[{}]}}"#, &object[..object.len() - 1]);
    }
    frame.replace("-31022", "22")
}

#[test]
fn linktype_gets_seed_000_shapes_by_default() {
    for (
        n,
        Step {
            want,
            got,
            namespace,
        },
    ) in replay("rdk").into_iter().enumerate()
    {
        let id = n + 1;
        let want: Vec<String> = want.iter().map(|f| rdk(id, f)).collect();
        assert_eq!(namespace, namespace_events(id), "request {id}");
        match id {
            12 => {
                let v: Value = serde_json::from_str(&got[0]).unwrap();
                assert_eq!(v["error"]["code"], -32601, "{v}");
                assert_eq!(v["error"]["message"], "Unknown method.", "{v}");
                assert!(v["error"]["data"].is_string(), "rdk explains: {v}");
            }
            _ => assert_eq!(got, want, "request {id}"),
        }
    }
}

/// `LinkType` with `directed = true`: the path names the plugin, and a designator without
/// callsign is Messenger's there (`SmartLinkType`'s Controller link stays on `/jsonrpc/`).
#[test]
fn directed_links_on_jsonrpc_messenger() {
    let server = Server::start(&["--compat", "r5"]);
    let mut link = Link::open(&server, "/jsonrpc/Messenger");
    let joined =
        link.call(r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.join","params":{"user":"alice","room":"lounge"}}"#);
    let token = serde_json::from_str::<Value>(&joined[0]).unwrap()["result"]
        .as_str()
        .unwrap()
        .to_owned();
    let joined = link.call(
        r#"{"jsonrpc":"2.0","id":2,"method":"join","params":{"user":"bob","room":"lounge"}}"#,
    );
    assert!(joined[0].contains(r#""id":2,"result":""#), "{joined:?}");
    let id = format!("{token}.client.events");
    let registered = link.call(&format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"register","params":{{ "event": "message", "id": "{id}"}}}}"#
    ));
    assert_eq!(registered, [r#"{"jsonrpc":"2.0","id":3,"result":null}"#]);
    let sent = link.call(&format!(
        r#"{{"jsonrpc":"2.0","id":4,"method":"send","params":{{"roomid":"{token}","message":"hi"}}}}"#
    ));
    assert_eq!(
        sent,
        [
            format!(
                r#"{{"jsonrpc":"2.0","method":"{id}.message","params":{{"user":"alice","message":"hi"}}}}"#
            ),
            r#"{"jsonrpc":"2.0","id":4,"result":null}"#.to_owned()
        ]
    );
    // The Controller is not on this path: a bare `status@Messenger` is no Messenger method.
    let status = link.call(r#"{"jsonrpc":"2.0","id":5,"method":"status@Messenger"}"#);
    assert_eq!(
        status,
        [r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32601,"message":"Unknown method."}}"#]
    );
    assert_eq!(link.close(), 1000);
}

/// `Origin: 0.0.0.0@0` is no origin, so a secure room wants a token, which LinkType passes in
/// the query (`LinkType(callsign, directed, "token=..")`).
#[test]
fn secure_rooms_take_linktypes_token_from_the_query() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("linktype-key");
    let _ = std::fs::remove_dir_all(&dir);
    let key = dir.join("key");
    let key = key.to_str().unwrap();
    let server = Server::start(&["--key-file", key]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_messenger"))
        .args(["token", "--url", "http://localhost:8080", "--key-file", key])
        .output()
        .expect("messenger token");
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut creator = server.client_with(
        &server.url("/jsonrpc"),
        &[("Origin", "http://localhost:8080")],
    );
    let acl = json!(["http://localhost:*"]);
    creator.ok(
        "join",
        json!({"user": "Owner", "room": "Vault", "secure": "secure", "acl": acl}),
    );
    let join = |id: u32, user: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"Messenger.join","params":{{"user":"{user}","room":"Vault"}}}}"#
        )
    };
    let mut plain = Link::open(&server, "/jsonrpc/");
    let refused = plain.call(&join(1, "native"));
    let v: Value = serde_json::from_str(&refused[0]).unwrap();
    assert_eq!(v["error"]["code"], 24, "no origin, no token: {v}");
    let mut with_token = Link::open(&server, &format!("/jsonrpc/?token={token}"));
    let admitted = with_token.call(&join(2, "native"));
    let v: Value = serde_json::from_str(&admitted[0]).unwrap();
    assert!(v["result"]["roomid"].is_string(), "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Unmasked frames are read from loopback peers; `require_masking` refuses them (close 1002)
/// and still reads masked ones.
#[test]
fn require_masking_refuses_unmasked_frames() {
    let join = r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.join","params":{"user":"alice","room":"lounge"}}"#;
    let server = Server::start(&["--require-masking", "on"]);
    let mut link = Link::open(&server, "/jsonrpc/");
    link.send(join);
    assert_eq!(link.frame(), Frame::Close(1002));
    let mut browser = server.client();
    assert!(browser.ok("join", json!({"user": "b", "room": "r"}))["roomid"].is_string());
}

/// The `Host` check (SPEC §1): this server's names pass, in every form a client writes them;
/// any other name is refused with 421 for upgrades, `POST` and `GET` alike.
#[test]
fn the_host_header_must_name_this_server() {
    let server = Server::start(&["--allowed-hosts", "stb.local,10.1.2.3"]);
    let port = server.port;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.rooms"}"#;
    let requests = [
        "GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".to_owned(),
        format!(
            "POST /jsonrpc HTTP/1.1\r\nHost: {{host}}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    ];
    let status = |request: &str, host: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(request.replace("{host}", host).as_bytes())
            .unwrap();
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        while !text.contains("\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        (support::parse_response(&text).0, text)
    };
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_owned(),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("[::1]:{port}"),
        format!("127.0.0.1@{port}"),
        format!("localhost@{port}"),
        format!("[::1]@{port}"),
        format!("stb.local:{port}"),
        "10.1.2.3".to_owned(),
    ] {
        for request in &requests {
            assert_eq!(status(request, &host).0, 200, "{host}");
        }
        assert!(
            Link::upgrade(&server, "/jsonrpc/", &host).1.is_some(),
            "{host}"
        );
    }
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
        format!("localhost.evil.example@{port}"),
        format!("stb.local.evil:{port}"),
    ] {
        for request in &requests {
            let (code, text) = status(request, &host);
            assert_eq!(code, 421, "{host}: {text}");
            assert!(
                text.contains("allowed_hosts"),
                "the refusal says what to do: {text}"
            );
        }
        let (head, link) = Link::upgrade(&server, "/jsonrpc/", &host);
        assert!(
            link.is_none() && head.starts_with("HTTP/1.1 421 "),
            "{host}: {head}"
        );
    }
    // No Host at all (HTTP/1.0 tools, hand-written scripts): no browser sends that.
    let (code, _) = status("GET /health HTTP/1.0\r\n\r\n", "");
    assert_eq!(code, 200);
}
