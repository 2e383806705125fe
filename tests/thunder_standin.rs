//! Proves the stand-in Thunder (tests/support/thunder.rs) answers as the recordings of Thunder
//! R5.3 do, before relay tests are built on it. It talks to the stand-in only, never to messenger.

#[path = "support/thunder.rs"]
mod thunder;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use thunder::*;

const WAIT: Duration = Duration::from_secs(5);
const NULL: Value = Value::Null;

/// A tungstenite client of the stand-in.
struct Client(WebSocket<TcpStream>);

impl Client {
    /// Connects to `target` (path and query) with extra request headers.
    fn connect(up: &Upstream, target: &str, headers: &[(&str, &str)]) -> tungstenite::Result<Self> {
        let mut request = format!("ws://{}{target}", up.addr()).into_client_request()?;
        for (name, value) in headers {
            let name: tungstenite::http::HeaderName = name.parse().unwrap();
            request.headers_mut().insert(name, value.parse().unwrap());
        }
        let stream = TcpStream::connect(up.addr()).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        match tungstenite::client(request, stream) {
            Ok((ws, _)) => Ok(Client(ws)),
            Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
            Err(tungstenite::HandshakeError::Interrupted(_)) => panic!("handshake interrupted"),
        }
    }

    /// A client on `/jsonrpc` offering `notification`, as ThunderJS connects.
    fn new(up: &Upstream) -> Self {
        let protocol = [("Sec-WebSocket-Protocol", "notification")];
        Client::connect(up, "/jsonrpc", &protocol).expect("handshake")
    }

    fn next(&mut self) -> Value {
        loop {
            match self.0.read().expect("a frame") {
                Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
                Message::Close(_) => panic!("closed"),
                _ => {}
            }
        }
    }

    /// Sends a request with id 1; returns the frames up to and including its reply.
    fn call(&mut self, method: &str, params: Value) -> Vec<Value> {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        self.0.send(Message::text(request.to_string())).unwrap();
        let mut frames = vec![self.next()];
        while frames.last().unwrap().get("id").is_none() {
            frames.push(self.next());
        }
        frames
    }

    fn reply(&mut self, method: &str, params: Value) -> Value {
        self.call(method, params).pop().unwrap()
    }

    /// The result of a call that must succeed.
    fn ok(&mut self, method: &str, params: Value) -> Value {
        let reply = self.reply(method, params);
        reply
            .get("result")
            .unwrap_or_else(|| panic!("{method}: {reply}"))
            .clone()
    }

    /// Asserts that a call fails with Thunder's `fault`.
    fn fails(&mut self, method: &str, params: Value, (code, message): Fault) {
        let error = json!({"code": code, "message": message});
        let expected = json!({"jsonrpc": "2.0", "id": 1, "error": error});
        assert_eq!(self.reply(method, params), expected, "{method}");
    }
}

fn refused_with(result: tungstenite::Result<Client>, status: u16) {
    match result {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), status),
        Err(e) => panic!("expected HTTP {status}, got {e}"),
        Ok(_) => panic!("expected HTTP {status}, got an upgrade"),
    }
}

/// One HTTP exchange on a kept-alive connection: the response head and body.
fn http(reader: &mut BufReader<TcpStream>, request: &str) -> (String, String) {
    reader.get_mut().write_all(request.as_bytes()).unwrap();
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        assert!(
            reader.read_line(&mut head).unwrap() > 0,
            "closed after {head:?}"
        );
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap();
    let mut body = vec![0; length.parse().unwrap()];
    reader.read_exact(&mut body).unwrap();
    (head, String::from_utf8(body).unwrap())
}

fn keepalive(up: &Upstream) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(up.addr()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    BufReader::new(stream)
}

/// The status line of one request on a fresh connection.
fn status_line(up: &Upstream, request: &str) -> String {
    let (head, _) = http(&mut keepalive(up), request);
    head.lines().next().unwrap().to_string()
}

fn post(target: &str, extra: &str, body: &str) -> String {
    let length = body.len();
    format!("POST {target} HTTP/1.1\r\n{extra}Content-Length: {length}\r\n\r\n{body}")
}

/// A text frame as LinkType sends it: FIN, opcode 1, no mask (payloads under 126 bytes).
fn unmasked(text: &str) -> Vec<u8> {
    [&[0x81, text.len() as u8], text.as_bytes()].concat()
}

fn read_frame(stream: &mut TcpStream) -> String {
    let mut header = [0; 4];
    stream.read_exact(&mut header[..2]).unwrap();
    assert_eq!(header[0], 0x81, "a final text frame");
    let mut length = usize::from(header[1]);
    if length == 126 {
        stream.read_exact(&mut header[2..]).unwrap();
        length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    }
    let mut payload = vec![0; length];
    stream.read_exact(&mut payload).unwrap();
    String::from_utf8(payload).unwrap()
}

#[test]
fn linktype_upgrade_and_unmasked_frames_are_answered_like_thunder() {
    let up = Upstream::start();
    let mut stream = TcpStream::connect(up.addr()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let port = up.port();
    let upgrade = format!("GET /jsonrpc/ HTTP/1.1\r\nHost: 127.0.0.1@{port}\r\nConnection: UPGRADE\r\nUpgrade: WEBSOCKET\r\nOrigin: 0.0.0.0@0\r\nSec-WebSocket-Key: Z0XGI2mYc0hR3P9cSpTsWA==\r\nSec-WebSocket-Protocol: JSON\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n");
    // The first frame right behind the upgrade request, in the same write.
    let register = r#"{"jsonrpc":"2.0","id":14,"method":"register","params":{ "event": "statechange", "id": "temporary2"}}"#;
    stream
        .write_all(&[upgrade.as_bytes(), &unmasked(register)].concat())
        .unwrap();
    let expected = "HTTP/1.1 101 SWITCH_PROTOCOL\r\nConnection: UPGRADE\r\nUpgrade: WEBSOCKET\r\nSec-WebSocket-Accept: UKJ4wE9ClN9OW90eWhC/afpNyvM=\r\nSec-WebSocket-Protocol: JSON\r\nContent-Length: 0\r\n\r\n";
    let mut head = vec![0; expected.len()];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(
        String::from_utf8(head).unwrap(),
        expected,
        "the recorded response"
    );

    for callsign in ["Controller", "DeviceInfo", "Echo"] {
        let event = format!(
            r#"{{"jsonrpc":"2.0","method":"temporary2.statechange","params":{{"callsign":"{callsign}","state":"Activated","reason":"Startup"}}}}"#
        );
        assert_eq!(read_frame(&mut stream), event);
    }
    let registered = r#"{"jsonrpc":"2.0","id":14,"result":null}"#;
    assert_eq!(read_frame(&mut stream), registered);

    let status = r#"{"jsonrpc":"2.0","id":15,"method":"status@Messenger"}"#;
    stream.write_all(&unmasked(status)).unwrap();
    let messenger_off = r#"{"jsonrpc":"2.0","id":15,"result":{"callsign":"Messenger","locator":"libThunderMessenger.so","classname":"Messenger","module":"Plugin_Messenger","state":"Deactivated","startmode":"Deactivated","resumed":false,"version":{"hash":"engineering_build_for_debug_purpose_only","major":1,"minor":0,"patch":0},"configuration":{"root":{"mode":"Off"}},"observers":0,"processedrequests":0,"processedobjects":0}}"#;
    assert_eq!(read_frame(&mut stream), messenger_off, "the recorded shape");

    let upgrade = &up.upgrades()[0];
    assert_eq!(
        (upgrade.target.as_str(), upgrade.header("origin")),
        ("/jsonrpc/", Some("0.0.0.0@0"))
    );
    assert_eq!(
        up.frames()[1],
        serde_json::from_str::<Value>(status).unwrap()
    );
}

#[test]
fn controller_status_and_errors() {
    let up = Upstream::start();
    let mut c = Client::new(&up);
    let all = c.ok("Controller.1.status", NULL);
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["callsign"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Controller", "DeviceInfo", "Echo", "Messenger"],
        "sorted"
    );
    let one = c.ok("Controller.1.status@DeviceInfo", NULL);
    assert_eq!(
        (&one["callsign"], &one["state"]),
        (&json!("DeviceInfo"), &json!("Activated"))
    );
    c.fails("status@Nope", NULL, UNKNOWN_KEY);
    c.fails("Controller.1.reboot", NULL, UNKNOWN_METHOD);
    c.fails("join", json!({"room": "x"}), UNKNOWN_METHOD);
    c.fails("Controller.2.status", NULL, BAD_VERSION);
    c.fails(
        "Controller.1.exists",
        json!({"method": "status"}),
        UNKNOWN_METHOD,
    ); // not modelled
}

#[test]
fn activate_deactivate_and_statechange_events() {
    let up = Upstream::start();
    let (mut watcher, mut c) = (Client::new(&up), Client::new(&up));
    let id = json!({"event": "statechange", "id": "client.Controller.events"});
    let replay = watcher.call("Controller.1.register", id.clone());
    assert_eq!(
        replay.len(),
        4,
        "three active plugins, then the reply: {replay:?}"
    );

    let device_info = json!({"callsign": "DeviceInfo"});
    assert_eq!(c.ok("Controller.1.deactivate", device_info.clone()), NULL);
    let change = json!({"callsign": "DeviceInfo", "state": "Deactivated", "reason": "Requested"});
    let event = json!({"jsonrpc": "2.0", "method": "client.Controller.events.statechange", "params": change});
    assert_eq!(watcher.next(), event);
    c.fails("DeviceInfo.1.systeminfo", NULL, NOT_ACTIVE);
    assert_eq!(
        c.ok("Controller.1.deactivate", device_info),
        NULL,
        "already off: no error"
    );
    c.fails(
        "Controller.1.deactivate",
        json!({"callsign": "Controller"}),
        NOT_ALLOWED,
    );
    c.fails(
        "Controller.1.activate",
        json!({"callsign": "Nope"}),
        UNKNOWN_KEY,
    );
    c.fails("activate@DeviceInfo", NULL, BAD_REQUEST); // methods have no index form
    let activate = c.call("Controller.1.activate", json!({"callsign": "DeviceInfo"}));
    assert_eq!(activate.last().unwrap()["result"], NULL);
    assert_eq!(c.ok("DeviceInfo.1.systeminfo", NULL)["uptime"], json!(42));
    assert_eq!(watcher.next()["params"]["state"], json!("Activated"));
    assert_eq!(watcher.ok("unregister", id.clone()), NULL);
    watcher.fails("unregister", id, REGISTRATION_FAILED);
}

#[test]
fn plugin_calls_events_and_errors() {
    let up = Upstream::start();
    let mut c = Client::new(&up);
    let info = c.ok("DeviceInfo.1.systeminfo", NULL);
    assert_eq!(info["serialnumber"], json!("STANDIN0001"));
    assert_eq!(
        c.ok("Echo.1.echo", json!({"a": [1, 2]})),
        json!({"a": [1, 2]})
    );
    let id = json!({"event": "ping", "id": "client.Echo.events"});
    assert_eq!(c.ok("Echo.1.register", id.clone()), NULL);
    c.fails("Echo.1.register", id, REGISTRATION_FAILED);
    let frames = c.call("Echo.1.emit", json!({"event": "ping", "data": {"n": 1}}));
    let event = json!({"jsonrpc": "2.0", "method": "client.Echo.events.ping", "params": {"n": 1}});
    let done = json!({"jsonrpc": "2.0", "id": 1, "result": null});
    assert_eq!(frames, [event, done], "the event before the reply");
    up.event("Echo", "ping", json!({"n": 2}));
    assert_eq!(
        c.next()["params"],
        json!({"n": 2}),
        "an event nobody asked for arrives"
    );

    c.fails("Nonexistent.1.join", NULL, NOT_AVAILABLE);
    c.fails("echo.1.echo", NULL, NOT_AVAILABLE); // callsigns are case-sensitive
    c.fails(
        "Messenger.1.join",
        json!({"room": "r", "user": "u"}),
        NOT_ACTIVE,
    );
    c.fails("Echo.1.Echo", NULL, UNKNOWN_METHOD);
    c.fails("Echo.1.register", json!({"event": "ping"}), INVALID_PARAMS);
    c.fails("", NULL, PARSE_FAILURE);

    let mut directed = Client::connect(&up, "/jsonrpc/Echo", &[]).unwrap();
    assert_eq!(directed.ok("echo", json!(7)), json!(7));
    assert_eq!(directed.ok("Echo.echo", json!(8)), json!(8));
    refused_with(Client::connect(&up, "/jsonrpc/Nonexistent", &[]), 503);
    refused_with(Client::connect(&up, "/", &[]), 503);
}

#[test]
fn lowercase_json_subprotocol_gets_no_answers() {
    let up = Upstream::start();
    let protocols = [("Sec-WebSocket-Protocol", "notification,json")];
    let mut c = Client::connect(&up, "/jsonrpc", &protocols).unwrap();
    c.0.get_mut()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    c.0.send(Message::text(
        r#"{"jsonrpc":"2.0","id":1,"method":"Echo.1.echo"}"#,
    ))
    .unwrap();
    assert!(
        c.0.read().is_err(),
        "Thunder's raw-JSON channel mode does not answer JSON-RPC"
    );
    let arrived = |seen: &[Seen]| seen.iter().any(|s| matches!(s, Seen::Frame { .. }));
    assert!(up.wait_for(arrived), "but the frame arrived");
}

#[test]
fn http_answers_with_thunders_status_lines() {
    let up = Upstream::start();
    let mut conn = keepalive(&up);
    let headers = "Access-Control-Allow-Origin: *\r\nCache-Control: no-cache, private, no-store, must-revalidate, max-stale=0, post-check=0, pre-check=0\r\n";
    let echo = r#"{"jsonrpc":"2.0","id":1,"method":"Echo.1.echo","params":"x"}"#;
    let (head, body) = http(&mut conn, &post("/jsonrpc", "", echo));
    let ok = "HTTP/1.1 200 JSONRPC executed succesfully";
    assert_eq!(head, format!("{ok}\r\n{headers}Content-Length: 37\r\n\r\n"));
    assert_eq!(body, r#"{"jsonrpc":"2.0","id":1,"result":"x"}"#);
    let unknown = r#"{"jsonrpc":"2.0","id":2,"method":"Nope.1.x"}"#;
    let (head, body) = http(&mut conn, &post("/jsonrpc", "", unknown));
    assert!(
        head.starts_with("HTTP/1.1 200 Failure on JSONRPC: -31043\r\n"),
        "{head}"
    );
    let error = r#"{"code":-31043,"message":"The service is not available."}"#;
    assert_eq!(
        body,
        format!(r#"{{"jsonrpc":"2.0","id":2,"error":{error}}}"#)
    );
    let notification = r#"{"jsonrpc":"2.0","method":"Echo.1.echo"}"#;
    let (head, _) = http(&mut conn, &post("/jsonrpc", "", notification));
    let processed = "HTTP/1.1 204 A JSONRPC Notification was send to the server. Processed it..";
    assert_eq!(
        head,
        format!("{processed}\r\n{headers}Content-Length: 0\r\n\r\n")
    );
    let chunked = "POST /jsonrpc/Echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"jsonrpc\":\"2.0\"\r\n1d\r\n,\"id\":3,\"method\":\"echo\"}     \r\n0\r\n\r\n";
    assert_eq!(
        http(&mut conn, chunked).1,
        r#"{"jsonrpc":"2.0","id":3,"result":null}"#
    );
    let (head, body) = http(&mut conn, &post("/jsonrpc", "", "{"));
    assert!(
        head.starts_with("HTTP/1.1 200 Failure on JSONRPC: -31050\r\n"),
        "{head}"
    );
    let (code, message) = PARSE_FAILURE;
    let unparsable = json!({"jsonrpc": "2.0", "error": {"code": code, "message": message}});
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), unparsable);

    let get = |target: &str| {
        http(
            &mut keepalive(&up),
            &format!("GET {target} HTTP/1.1\r\n\r\n"),
        )
    };
    let not_post = "HTTP/1.1 405 JSON-RPC only supported via POST request with a body";
    assert_eq!(
        get("/jsonrpc").0,
        format!("{not_post}\r\nContent-Length: 0\r\n\r\n")
    );
    let (head, body) = get("/Service/DeviceInfo/Adapters?x=1");
    assert!(head.contains("200 OK\r\n") && head.contains("Content-Type: application/json\r\n"));
    let adapters: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        adapters["target"],
        json!("/Service/DeviceInfo/Adapters?x=1")
    );
    assert!(get("/Service/Nope")
        .0
        .starts_with("HTTP/1.1 404 Not Found\r\n"));
    let plain = up.requests().into_iter().filter(|r| !r.upgrade).count();
    assert_eq!(plain, 8, "every request is logged");
}

#[test]
fn token_is_checked_only_when_configured() {
    let open = Upstream::start();
    Client::connect(&open, "/jsonrpc", &[]).expect("no SecurityAgent: no token needed");

    let up = Upstream::start_with_token("s3cret");
    refused_with(Client::connect(&up, "/jsonrpc", &[]), 403);
    let mut c = Client::connect(&up, "/jsonrpc?token=s3cret", &[]).expect("token accepted");
    assert_eq!(c.ok("Echo.1.echo", json!(1)), json!(1));
    assert_eq!(up.upgrades()[1].target, "/jsonrpc?token=s3cret");

    let body = r#"{"jsonrpc":"2.0","id":1,"method":"Echo.1.echo"}"#;
    let denied = "HTTP/1.1 401 Request needs authorization, but it was not authorized";
    assert_eq!(status_line(&up, &post("/jsonrpc", "", body)), denied);
    let query = post("/jsonrpc?token=s3cret", "", body);
    assert_eq!(
        status_line(&up, &query),
        denied,
        "a POST's ?token= is ignored"
    );
    let bearer = post("/jsonrpc", "Authorization: Bearer s3cret\r\n", body);
    assert_eq!(
        status_line(&up, &bearer),
        "HTTP/1.1 200 JSONRPC executed succesfully"
    );
    let get = "GET /Service/Echo?token=s3cret HTTP/1.1\r\n\r\n";
    assert_eq!(status_line(&up, get), "HTTP/1.1 200 OK");
}

#[test]
fn knobs_slow_close_all_and_stop() {
    let up = Upstream::start();
    let headers = [("Sec-WebSocket-Protocol", "JSON"), ("Origin", "http://app")];
    let mut c = Client::connect(&up, "/jsonrpc/?token=t", &headers).unwrap();
    up.slow(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(c.ok("Echo.1.echo", json!(1)), json!(1));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the answer waited"
    );
    up.slow(Duration::ZERO);

    let upgrade = &up.upgrades()[0];
    assert_eq!(upgrade.target, "/jsonrpc/?token=t");
    let offered = (
        upgrade.header("sec-websocket-protocol"),
        upgrade.header("Origin"),
    );
    assert_eq!(offered, (Some("JSON"), Some("http://app")));

    up.close_all();
    assert!(c.0.read().is_err(), "the client sees the connection go");
    assert!(up.wait_for(|seen| matches!(seen.last(), Some(Seen::Closed { conn: 0 }))));

    let mut again = Client::new(&up);
    assert_eq!(again.ok("Echo.1.echo", json!(2)), json!(2));
    up.stop();
    assert!(again.0.read().is_err(), "stop closes open connections");
    thread::sleep(Duration::from_millis(50));
    assert!(
        TcpStream::connect(up.addr()).is_err(),
        "the port stays closed"
    );
}
