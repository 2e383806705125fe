//! The HTTP phase and its routes driven from memory: requests fed in small pieces, the answers
//! read back, the dispatcher played by the real engine on a thread.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::time::{Duration, Instant};

use crate::inbox::Receiver;

use super::*;
use crate::access_token::Key;
use crate::connection::http_phase;
use crate::dispatcher::Cmd;
use crate::engine::Engine;
use crate::socket::TcpSocket;
use crate::test_stream::Pipe;
use crate::web_origins::WebOrigins;

/// A deadline no test reaches.
pub fn far() -> Instant {
    Instant::now() + Duration::from_secs(600)
}

/// A request head, read from memory.
pub fn head(text: &str) -> Head {
    let mut pipe = Pipe::new(text, 7);
    http::read_head(&mut pipe, &mut Vec::new(), 8192, far()).expect("a request head")
}

/// What connection threads share, with `config`, and the dispatcher's end of the inbox.
pub fn shared_with(config: Config) -> (Shared, Receiver<Cmd>) {
    let (tx, rx) = crate::inbox::bounded(64);
    let shared = Shared {
        web: WebOrigins::new(&config),
        http_bucket: std::sync::Mutex::new(gate::http_bucket(&config)),
        callsign: config.callsign.as_str().into(),
        config,
        tx,
        started: Instant::now(),
        connections: AtomicUsize::new(1),
        next_conn: AtomicU64::new(1),
        stopping: AtomicBool::new(false),
        key: Some(Key::from_bytes([7; 32])),
        tokens_refused: AtomicU64::new(0),
        rate_limited: AtomicU64::new(0),
    };
    (shared, rx)
}

pub fn shared() -> (Shared, Receiver<Cmd>) {
    shared_with(Config::default())
}

/// Serves `requests` (fed `piece` bytes at a time) through the HTTP phase, the real engine
/// answering; what was written, and the upgrade if there was one.
fn serve(config: Config, requests: &str, piece: usize) -> (String, Option<Box<Upgrade>>) {
    let (shared, rx) = shared_with(config);
    let mut engine = Engine::<TcpSocket>::new(&shared.config, Instant::now());
    let dispatcher = std::thread::spawn(move || {
        for cmd in rx.iter() {
            if let Some((reply, answer)) = engine.apply(cmd, Instant::now()) {
                let _ = reply.send(answer);
            }
        }
    });
    let mut pipe = Pipe::new(requests, piece);
    let peer = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 40000)));
    let upgraded = http_phase(&mut pipe, peer, &shared);
    drop(shared);
    dispatcher.join().expect("the engine thread ends");
    (pipe.written(), upgraded.map(|(_, upgrade)| upgrade))
}

/// The bodies of the responses in `written`, in order.
fn bodies(written: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = written;
    while let Some((head, after)) = rest.split_once("\r\n\r\n") {
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map_or(0, |n| n.parse().unwrap());
        let status = head.lines().next().unwrap().to_owned();
        out.push((status, after[..length].to_owned()));
        rest = &after[length..];
    }
    out
}

fn post(body: &str) -> String {
    format!(
        "POST /jsonrpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn a_request_fed_byte_by_byte_is_answered() {
    let (written, upgrade) = serve(
        Config::default(),
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        1,
    );
    assert!(upgrade.is_none());
    let answers = bodies(&written);
    assert_eq!(answers.len(), 1, "{written}");
    assert_eq!(answers[0].0, "HTTP/1.1 200 OK");
    let health: serde_json::Value = serde_json::from_str(&answers[0].1).unwrap();
    assert_eq!(health["rooms"], 0);
    assert_eq!(health["connections"], 1);
}

#[test]
fn posts_on_one_connection_share_rooms_then_it_upgrades() {
    let join = r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.join","params":{"user":"Script","room":"Lounge"}}"#;
    let rooms = r#"{"jsonrpc":"2.0","id":2,"method":"Messenger.1.rooms"}"#;
    let notification = r#"{"jsonrpc":"2.0","method":"Messenger.1.rooms"}"#;
    let upgrade = "GET /jsonrpc/Messenger HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let requests = [post(join), post(rooms), post(notification), upgrade.into()].concat();
    let (written, upgraded) = serve(Config::default(), &requests, 5);
    let answers = bodies(&written);
    assert_eq!(answers.len(), 4, "{written}");
    let joined: serde_json::Value = serde_json::from_str(&answers[0].1).unwrap();
    assert_eq!(joined["result"]["roomid"].as_str().map(str::len), Some(20));
    let listed: serde_json::Value = serde_json::from_str(&answers[1].1).unwrap();
    assert_eq!(
        listed["result"],
        serde_json::json!([{"room":"Lounge","secure":"insecure","membersCount":1}])
    );
    assert_eq!(answers[2].0, "HTTP/1.1 204 No Content");
    assert_eq!(answers[3].0, "HTTP/1.1 101 Switching Protocols");
    let upgraded = upgraded.expect("upgraded");
    assert!(matches!(
        upgraded.dialect,
        Dialect::Messenger(Designators { implicit: true, .. })
    ));
}

#[test]
fn plain_routes_answer_and_close_when_they_should() {
    let cases = [
        ("GET /nowhere HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
        (
            "GET /jsonrpc/Other HTTP/1.1\r\n\r\n",
            "HTTP/1.1 404 Not Found",
        ),
        (
            "GET /jsonrpc HTTP/1.1\r\n\r\n",
            "HTTP/1.1 405 Method Not Allowed",
        ),
        (
            "GET /jsonrpc/ HTTP/1.1\r\n\r\n",
            "HTTP/1.1 405 Method Not Allowed",
        ),
        (
            "GET /health HTTP/1.1\r\nHost: evil.example:9998\r\n\r\n",
            "HTTP/1.1 421 Misdirected Request",
        ),
        (
            "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n",
            "HTTP/1.1 421 Misdirected Request",
        ),
        (
            "GET /room HTTP/1.1\r\n\r\n",
            "HTTP/1.1 405 Method Not Allowed",
        ),
        (
            "POST /jsonrpc HTTP/1.1\r\n\r\n",
            "HTTP/1.1 411 Length Required",
        ),
        (
            "POST /jsonrpc HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n",
            "HTTP/1.1 413 Payload Too Large",
        ),
        ("BLAH\r\n\r\n", "HTTP/1.1 400 Bad Request"),
    ];
    for (request, status) in cases {
        // A second request after a refusal is never read: the connection closes.
        let twice = format!("{request}GET /health HTTP/1.1\r\n\r\n");
        let (written, _) = serve(Config::default(), &twice, 3);
        let answers = bodies(&written);
        assert_eq!(answers.len(), 1, "{request:?}: {written}");
        assert_eq!(answers[0].0, status, "{request:?}");
    }
}

#[test]
fn keep_alive_page_and_cors() {
    let requests = "OPTIONS /jsonrpc HTTP/1.1\r\nOrigin: https://app.example.com\r\n\r\nGET / HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\nGET /health HTTP/1.1\r\n\r\n";
    let listed = Config {
        cors_origins: vec!["https://*.example.com".into()],
        ..Config::default()
    };
    let (written, _) = serve(listed, requests, 64);
    let answers = bodies(&written);
    assert_eq!(
        answers.len(),
        3,
        "HTTP/1.0 closes after its answer: {written}"
    );
    assert_eq!(answers[0].0, "HTTP/1.1 204 No Content");
    assert!(written.contains("Access-Control-Allow-Methods: POST, GET, OPTIONS\r\n"));
    assert!(written.contains("Access-Control-Allow-Origin: https://app.example.com\r\n"));
    assert_eq!(answers[1].0, "HTTP/1.1 200 OK");
    assert!(answers[1].1.contains("<html"));
    let config = Config {
        page: false,
        ..Config::default()
    };
    let (written, _) = serve(config, "GET / HTTP/1.1\r\n\r\n", 64);
    assert!(written.starts_with("HTTP/1.1 404 Not Found"), "{written}");
}

#[test]
fn admin_needs_the_secret_from_loopback() {
    let mut config = Config::default();
    let request = "GET /jsonrpc?admin=0123456789abcdef HTTP/1.1\r\n\r\n";
    assert!(!admin(&head(request), &config, true), "no admin_token set");
    config.admin_token = "0123456789abcdef".into();
    assert!(admin(&head(request), &config, true));
    assert!(!admin(&head(request), &config, false), "not from loopback");
    let header = "GET /jsonrpc HTTP/1.1\r\nX-Messenger-Admin: 0123456789abcdef\r\n\r\n";
    assert!(admin(&head(header), &config, true));
    let wrong = "GET /jsonrpc?admin=0123456789abcdeX HTTP/1.1\r\n\r\n";
    assert!(!admin(&head(wrong), &config, true));
}

#[test]
fn no_cors_header_is_a_star_and_unlisted_origins_get_none() {
    let post = |origin: &str| {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.rooms"}"#;
        format!(
            "POST /jsonrpc HTTP/1.1\r\nOrigin: {origin}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let requests = [
        post("https://evil.example"),
        "OPTIONS /jsonrpc HTTP/1.1\r\nOrigin: https://evil.example\r\n\r\n".into(),
        "GET /health HTTP/1.1\r\nOrigin: https://evil.example\r\n\r\n".into(),
    ]
    .concat();
    for config in [
        Config::default(),
        Config {
            cors_origins: vec!["https://app.example.com".into()],
            ..Config::default()
        },
    ] {
        let (written, _) = serve(config, &requests, 64);
        assert_eq!(bodies(&written).len(), 3, "{written}");
        assert!(!written.contains('*'), "{written}");
        assert!(!written.contains("Access-Control"), "{written}");
    }
}

#[test]
fn the_allow_list_refuses_a_foreign_page_with_403() {
    let config = Config {
        allowed_origins: vec!["https://app.example.com".into()],
        ..Config::default()
    };
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.rooms"}"#;
    let post = format!(
        "POST /jsonrpc HTTP/1.1\r\nOrigin: https://evil.example\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (written, _) = serve(config.clone(), &post, 64);
    assert!(written.starts_with("HTTP/1.1 403 Forbidden"), "{written}");
    assert!(written.contains("allowed_origins"), "{written}");
    let native = post.replace("Origin: https://evil.example\r\n", "");
    let (written, _) = serve(config, &native, 64);
    assert!(written.starts_with("HTTP/1.1 200 OK"), "{written}");
}

#[test]
fn posts_over_the_shared_rate_get_429_with_error_2() {
    let config = Config {
        max_http_requests_per_second: 0.01,
        http_request_burst: 2,
        ..Config::default()
    };
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"Messenger.1.rooms"}"#;
    let one = format!(
        "POST /jsonrpc HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (written, _) = serve(config, &one.repeat(3), 64);
    let answers = bodies(&written);
    assert_eq!(answers.len(), 3, "{written}");
    assert_eq!(answers[1].0, "HTTP/1.1 200 OK");
    assert_eq!(answers[2].0, "HTTP/1.1 429 Too Many Requests");
    let v: serde_json::Value = serde_json::from_str(&answers[2].1).unwrap();
    assert_eq!(v["id"], 7);
    assert_eq!(v["error"]["code"], 2);
    assert!(v["error"]["data"]
        .as_str()
        .unwrap()
        .contains("max_http_requests_per_second"));
}

/// LinkType's paths (`/jsonrpc/`, and `/jsonrpc/Controller` for the Controller) are
/// `/jsonrpc`: methods there are read with the callsign, not directed to Messenger.
#[test]
fn linktype_paths_are_jsonrpc() {
    let status = r#"{"jsonrpc":"2.0","id":1,"method":"status@Messenger"}"#;
    for path in ["/jsonrpc/", "/jsonrpc/Controller"] {
        let request = post(status).replace("/jsonrpc ", &format!("{path} "));
        let (written, _) = serve(Config::default(), &request, 9);
        let answers = bodies(&written);
        assert_eq!(answers[0].0, "HTTP/1.1 200 OK", "{path}");
        let v: serde_json::Value = serde_json::from_str(&answers[0].1).unwrap();
        assert_eq!(v["result"][0]["callsign"], "Messenger", "{path}: {v}");
    }
    let upgrade = "GET /jsonrpc/ HTTP/1.1\r\nHost: 127.0.0.1@9998\r\nOrigin: 0.0.0.0@0\r\nUpgrade: WEBSOCKET\r\nConnection: UPGRADE\r\nSec-WebSocket-Key: Z0XGI2mYc0hR3P9cSpTsWA==\r\nSec-WebSocket-Protocol: JSON\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n";
    let (written, upgraded) = serve(Config::default(), upgrade, 4);
    assert!(
        written.contains("Sec-WebSocket-Accept: UKJ4wE9ClN9OW90eWhC/afpNyvM=\r\n"),
        "the recording's accept key: {written}"
    );
    let upgraded = upgraded.expect("upgraded");
    assert!(upgraded.origin.is_none(), "0.0.0.0@0 is no origin");
    assert!(matches!(
        upgraded.dialect,
        Dialect::Messenger(Designators {
            implicit: false,
            ..
        })
    ));
}
