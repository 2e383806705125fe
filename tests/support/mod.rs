//! Shared by the integration tests: starts the real binary on an ephemeral loopback port and
//! gives WebSocket and HTTP clients with timeouts, so no test can hang.
#![allow(dead_code)] // each test file uses its own subset of these helpers

pub mod probe;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// The server process; killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Server {
    /// Starts the binary with `--listen 127.0.0.1:0` and the given extra flags.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with(args, |_| {})
    }

    /// Starts the binary in relay mode in front of `upstream` (a stand-in Thunder's address),
    /// with extra flags.
    pub fn start_relaying(upstream: &str, extra: &[&str]) -> Server {
        let mut args = vec!["--upstream", upstream];
        args.extend_from_slice(extra);
        Server::start(&args)
    }

    /// Like `start`, with the server's stderr (its log) going to `stderr`.
    pub fn start_logging_to(args: &[&str], stderr: Stdio) -> Server {
        Server::start_with(args, |command| {
            command.stderr(stderr);
        })
    }

    /// As `start`, with the command adjusted first (environment, stderr) by `adjust`.
    pub fn start_with(args: &[&str], adjust: impl FnOnce(&mut Command)) -> Server {
        // Tests keep the signing key under target/, never in the user's home.
        let key_file = format!("{}/messenger-test-key", env!("CARGO_TARGET_TMPDIR"));
        let key_args = if args.contains(&"--key-file") {
            vec![]
        } else {
            vec!["--key-file", key_file.as_str()]
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_messenger"));
        command
            .args(["--listen", "127.0.0.1:0"])
            .args(key_args)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        adjust(&mut command);
        let mut child = command.spawn().expect("start messenger");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let port = line
            .trim()
            .strip_prefix("listening on 127.0.0.1:")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("port");
        Server { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    /// A WebSocket client on `/jsonrpc` offering the `notification` subprotocol.
    pub fn client(&self) -> Client {
        self.client_with(
            &self.url("/jsonrpc"),
            &[("Sec-WebSocket-Protocol", "notification")],
        )
    }

    /// A WebSocket client with extra request headers.
    pub fn client_with(&self, url: &str, headers: &[(&str, &str)]) -> Client {
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            let name: tungstenite::http::HeaderName = name.parse().unwrap();
            request.headers_mut().insert(name, value.parse().unwrap());
        }
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let (ws, response) = tungstenite::client(request, stream).expect("handshake");
        let protocol = response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap().to_owned());
        Client {
            ws,
            next_id: 1,
            events: VecDeque::new(),
            protocol,
        }
    }

    /// A Kurento room client on `/room` (no subprotocol, as kurento-room's client).
    pub fn kurento(&self) -> Client {
        self.client_with(&self.url("/room"), &[])
    }

    /// One HTTP request on a fresh connection; returns status and body.
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        self.http_with(method, path, &[], body)
    }

    /// One HTTP request with extra headers on a fresh connection; returns status and body.
    pub fn http_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let body = body.unwrap_or("");
        let extra: String = headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        parse_response(&text)
    }

    /// A JSON-RPC call over `POST /jsonrpc`; returns the parsed response.
    pub fn post(&self, method: &str, params: Value) -> Value {
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let (status, text) = self.http("POST", "/jsonrpc", Some(&body));
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    pub fn health(&self) -> Value {
        let (status, body) = self.http("GET", "/health", None);
        assert_eq!(status, 200);
        serde_json::from_str(&body).unwrap()
    }

    /// Polls `/health` until `check` holds (the server settles after a disconnect).
    pub fn wait_health(&self, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let h = self.health();
            if check(&h) {
                return h;
            }
            assert!(Instant::now() < deadline, "health never matched: {h}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Splits a raw HTTP response into status and body.
pub fn parse_response(text: &str) -> (u16, String) {
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A WebSocket JSON-RPC client that keeps notifications aside while it waits for responses.
pub struct Client {
    pub ws: WebSocket<TcpStream>,
    next_id: u64,
    events: VecDeque<Value>,
    pub protocol: Option<String>,
}

impl Client {
    /// Sends raw text and returns the next message that is not a notification.
    pub fn raw(&mut self, text: &str) -> Value {
        self.ws.send(Message::text(text)).unwrap();
        self.reply()
    }

    /// The next frame that is a response (has an `id` member or an `error`).
    pub fn reply(&mut self) -> Value {
        loop {
            let v = self.read_json();
            if v.get("method").is_some() && v.get("id").is_none() {
                self.events.push_back(v);
            } else {
                return v;
            }
        }
    }

    fn read_json(&mut self) -> Value {
        loop {
            let message = match self.ws.read() {
                // A signal interrupted the wait (seen once in `make test`): nothing was read.
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                    continue
                }
                other => other.expect("read a frame"),
            };
            match message {
                Message::Text(t) => {
                    return serde_json::from_str(t.as_str()).expect("JSON from server")
                }
                Message::Close(frame) => panic!("closed by server: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Calls `Messenger.1.<method>`; returns the whole response.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.rpc(&format!("Messenger.1.{method}"), params)
    }

    /// Calls a method by its full name (Kurento's have no prefix); returns the whole response.
    pub fn rpc(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let text = json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}).to_string();
        let reply = self.raw(&text);
        assert_eq!(reply["id"], id, "response to the wrong request: {reply}");
        reply
    }

    /// Calls a Kurento method and returns `result`, failing on an error.
    pub fn kok(&mut self, method: &str, params: Value) -> Value {
        let reply = self.rpc(method, params);
        assert!(reply.get("error").is_none(), "{method} failed: {reply}");
        reply["result"].clone()
    }

    /// Calls a Kurento method and returns the error, failing on success.
    pub fn kerr(&mut self, method: &str, params: Value) -> Value {
        let reply = self.rpc(method, params);
        assert!(
            reply.get("error").is_some(),
            "{method} should fail: {reply}"
        );
        reply["error"].clone()
    }

    /// Kurento's `drain`: every notification received before a `ping` is answered.
    pub fn kdrain(&mut self) -> Vec<(String, Value)> {
        self.kok("ping", json!({}));
        self.take_events()
    }

    /// Calls and returns `result`, failing on an error.
    pub fn ok(&mut self, method: &str, params: Value) -> Value {
        let reply = self.call(method, params);
        assert!(reply.get("error").is_none(), "{method} failed: {reply}");
        reply["result"].clone()
    }

    /// Calls and returns the error code, failing on success.
    pub fn err(&mut self, method: &str, params: Value) -> i64 {
        let reply = self.call(method, params);
        reply["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("{method} should fail: {reply}"))
    }

    /// Joins and returns the room token.
    pub fn join(&mut self, user: &str, room: &str) -> String {
        let result = self.ok("join", json!({"user": user, "room": room}));
        result["roomid"].as_str().expect("roomid").to_owned()
    }

    /// Joins, and registers `userupdate` and `message` under `<roomid>.client.events`.
    pub fn enter(&mut self, user: &str, room: &str) -> String {
        let token = self.join(user, room);
        let id = format!("{token}.client.events");
        assert_eq!(
            self.ok("register", json!({"event": "userupdate", "id": id})),
            0
        );
        assert_eq!(
            self.ok("register", json!({"event": "message", "id": id})),
            0
        );
        token
    }

    /// The next notification, as (method, params).
    pub fn event(&mut self) -> (String, Value) {
        let v = self.events.pop_front().unwrap_or_else(|| {
            let v = self.read_json();
            let is_event = v.get("id").is_none() && v.get("method").is_some();
            assert!(
                is_event,
                "unexpected response while waiting for an event: {v}"
            );
            v
        });
        (
            v["method"].as_str().unwrap().to_owned(),
            v["params"].clone(),
        )
    }

    /// The notifications set aside so far, as (method, params), in order.
    fn take_events(&mut self) -> Vec<(String, Value)> {
        let events = self.events.drain(..);
        events
            .map(|v| {
                (
                    v["method"].as_str().unwrap().to_owned(),
                    v["params"].clone(),
                )
            })
            .collect()
    }

    /// Takes every notification already received (after a round trip), in order.
    pub fn drain(&mut self) -> Vec<(String, Value)> {
        self.ok("exists", json!({"method": "join"}));
        self.take_events()
    }

    /// One notification already received, without waiting.
    pub fn drain_one(&mut self) -> Option<(String, Value)> {
        let v = self.events.pop_front()?;
        Some((
            v["method"].as_str().unwrap().to_owned(),
            v["params"].clone(),
        ))
    }

    /// Waits for the server to close; returns the close code (None if the TCP just ended).
    pub fn closed(&mut self) -> Option<u16> {
        loop {
            match self.ws.read() {
                Ok(Message::Close(frame)) => return frame.map(|f: CloseFrame| f.code.into()),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}

/// Writes one masked client frame with any payload and opcode (for bytes tungstenite's
/// client would refuse to send, like invalid UTF-8).
pub fn raw_frame(stream: &mut TcpStream, opcode: u8, payload: &[u8]) {
    let mut frame = vec![0x80 | opcode];
    let mask = [1u8, 2, 3, 4];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 65535 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).unwrap();
}

/// Runs the binary with `args` to its end (killed after `WAIT`); exit code, stdout, stderr.
pub fn run_to_exit(args: &[&str]) -> (Option<i32>, String, String) {
    run_to_exit_with(args, |_| {})
}

/// As `run_to_exit`, with the command adjusted first (environment) by `adjust`.
pub fn run_to_exit_with(
    args: &[&str],
    adjust: impl FnOnce(&mut Command),
) -> (Option<i32>, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_messenger"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    adjust(&mut command);
    let mut child = command.spawn().expect("run messenger");
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
