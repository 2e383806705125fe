//! Stands in for Thunder R5.3 (WPEFramework) on the wire, for tests of relay mode: its Controller,
//! two plugins, its errors, status lines and headers, following the recordings in
//! `../shared/reference/` (thunder-r5-websocket.md, thunder-r5-http.md, thunder-r5-linktype.md)
//! and Thunder's R5.3.0 source where they are silent (`Source/Thunder/Controller.cpp`,
//! `Source/Thunder/PluginServer.h`, `Source/core/JSONRPC.h`). One thread per connection; it
//! never starts messenger, so relay tests can put it behind the real binary.
//!
//! Plugins: `Controller` (cannot be (de)activated), `DeviceInfo` (`systeminfo`), `Echo` (`echo`
//! returns its params; `emit {"event","data"}` notifies every registration for that event) and
//! `Messenger` (deactivated, no methods: Thunder's own plugin is off in relay mode); all have
//! `register` and `unregister`. Like Thunder it accepts unmasked client frames, echoes the first
//! offered subprotocol, and does not answer JSON-RPC at all when a client offers exactly `json`,
//! `jsonrpc`, `text` or `raw` (Thunder's other channel modes). Not modelled: `exists`,
//! `versions`, `register@callsign`, hibernation, per-method security, batches over HTTP.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// A JSON-RPC error as Thunder sends it: code and message.
pub type Fault = (i32, &'static str);
pub const UNKNOWN_METHOD: Fault = (-32601, "Unknown method.");
pub const INVALID_PARAMS: Fault = (-32602, "Invalid parameters.");
pub const NOT_ALLOWED: Fault = (-32604, "Method invocation not allowed.");
pub const NOT_ACTIVE: Fault = (-31002, "The service is not active.");
pub const UNKNOWN_KEY: Fault = (-31022, "ERROR_UNKNOWN_KEY");
pub const BAD_REQUEST: Fault = (-31030, "ERROR_BAD_REQUEST");
pub const BAD_VERSION: Fault = (-31038, "Requested version is not supported.");
pub const NOT_AVAILABLE: Fault = (-31043, "The service is not available.");
pub const REGISTRATION_FAILED: Fault = (-31048, "Registration failed.");
pub const PARSE_FAILURE: Fault = (-31050, "ERROR_PARSE_FAILURE");

/// The headers of JSON-RPC answers over HTTP (and of `/Service/...` answers).
const CORS: (&str, &str) = ("Access-Control-Allow-Origin", "*");
const CACHE: (&str, &str) = (
    "Cache-Control",
    "no-cache, private, no-store, must-revalidate, max-stale=0, post-check=0, pre-check=0",
);
const UNAUTHORIZED: &str = "401 Request needs authorization, but it was not authorized";
const NOT_POST: &str = "405 JSON-RPC only supported via POST request with a body";
const NULL: &str = "null";
const SYSTEMINFO: &str = r#"{"version":"1.0.0-standin","uptime":42,"serialnumber":"STANDIN0001"}"#;
/// How often an idle WebSocket session looks for notifications to send.
const POLL: Duration = Duration::from_millis(10);
/// How long a plain HTTP connection may idle between requests.
const HTTP_IDLE: Duration = Duration::from_secs(10);
/// How long `wait_for` waits.
const WAIT: Duration = Duration::from_secs(5);

/// What the stand-in received, in arrival order; connections are numbered from 0.
#[derive(Clone, Debug)]
pub enum Seen {
    /// A request: a WebSocket upgrade (answered or refused) or plain HTTP.
    Request(Request),
    /// A text frame on an upgraded connection.
    Frame { conn: usize, text: String },
    /// The connection ended, whichever side closed it.
    Closed { conn: usize },
}

/// A request head as received, with its body (de-chunked; empty for upgrades).
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub conn: usize,
    pub upgrade: bool,
    pub method: String,
    /// The path and query as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    /// A header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut named = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        named.next().map(|(_, v)| v.as_str())
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    fn query(&self, key: &str) -> Option<&str> {
        let query = self.target.split_once('?')?.1;
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
    }
}

/// The running stand-in; stopped (port closed) when dropped.
pub struct Upstream {
    shared: Arc<Shared>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Shared {
    port: u16,
    token: Option<String>,
    stopped: AtomicBool,
    next_conn: AtomicUsize,
    delay: Mutex<Duration>,
    log: Mutex<Vec<Seen>>,
    sockets: Mutex<Vec<(usize, TcpStream)>>,
    /// Callsign, active, state at startup (Thunder's `startmode`), reason of the last change.
    plugins: Mutex<Vec<(&'static str, bool, bool, &'static str)>>,
    listeners: Mutex<Vec<(Registration, Sender<String>)>>,
}

/// One `register`: notifications `<id>.<event>` go to the session of connection `conn`.
#[derive(PartialEq)]
struct Registration {
    conn: usize,
    callsign: String,
    event: String,
    id: String,
}

impl Upstream {
    /// Starts on an ephemeral loopback port, without a SecurityAgent (tokens are not checked).
    pub fn start() -> Upstream {
        Self::launch(None)
    }

    /// Starts with a SecurityAgent that accepts only `token`: `?token=` on upgrades and GET,
    /// `Authorization: Bearer` on any HTTP request (a POST's `?token=` is ignored, as in Thunder).
    pub fn start_with_token(token: &str) -> Upstream {
        Self::launch(Some(token.to_string()))
    }

    fn launch(token: Option<String>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stand-in");
        let port = listener.local_addr().unwrap().port();
        let plugins = [("Controller", true), ("DeviceInfo", true), ("Echo", true)];
        let plugins = plugins.into_iter().chain([("Messenger", false)]);
        let plugins = Mutex::new(plugins.map(|(c, on)| (c, on, on, "Startup")).collect());
        let shared = Arc::new(Shared {
            port,
            token,
            plugins,
            ..Shared::default()
        });
        let accepting = shared.clone();
        let acceptor = Mutex::new(Some(thread::spawn(move || accept(listener, accepting))));
        Upstream { shared, acceptor }
    }

    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// `127.0.0.1:<port>`, as a relay setting names it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.shared.port)
    }

    /// Delays every answer (upgrade responses, JSON-RPC replies, HTTP responses) by `delay`.
    pub fn slow(&self, delay: Duration) {
        *self.shared.delay.lock().unwrap() = delay;
    }

    /// Drops every open connection at the TCP level, as a crashing Thunder would.
    pub fn close_all(&self) {
        for (_, socket) in self.shared.sockets.lock().unwrap().iter() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Closes the port and every connection; connecting afterwards is refused ("upstream down").
    pub fn stop(&self) {
        self.shared.stopped.store(true, SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.shared.port)); // wakes the acceptor
        if let Some(acceptor) = self.acceptor.lock().unwrap().take() {
            let _ = acceptor.join();
        }
        self.close_all();
    }

    /// Sends the notification `<id>.<event>` with `params` to every registration for it.
    pub fn event(&self, callsign: &str, event: &str, params: Value) {
        self.shared.emit(callsign, event, &params.to_string());
    }

    /// Everything received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The requests (upgrades and plain HTTP) received so far.
    pub fn requests(&self) -> Vec<Request> {
        let seen = self.seen().into_iter();
        seen.filter_map(|s| match s {
            Seen::Request(r) => Some(r),
            _ => None,
        })
        .collect()
    }

    /// The upgrade requests received so far.
    pub fn upgrades(&self) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.upgrade).collect()
    }

    /// The text frames received so far, parsed (text that is not JSON becomes a JSON string).
    pub fn frames(&self) -> Vec<Value> {
        let texts = self.seen().into_iter().filter_map(|s| match s {
            Seen::Frame { text, .. } => Some(text),
            _ => None,
        });
        let parse = |t: String| serde_json::from_str(&t).unwrap_or(Value::String(t));
        texts.map(parse).collect()
    }

    /// Waits (up to 5 s) until `done` holds for the log; false if it never did.
    pub fn wait_for(&self, done: impl Fn(&[Seen]) -> bool) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if done(&self.shared.log.lock().unwrap()) {
                return true;
            }
            thread::sleep(POLL);
        }
        false
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn record(&self, seen: Seen) {
        self.log.lock().unwrap().push(seen);
    }

    fn pause(&self) {
        thread::sleep(*self.delay.lock().unwrap());
    }

    fn emit(&self, callsign: &str, event: &str, params: &str) {
        for (r, tx) in self.listeners.lock().unwrap().iter() {
            if r.callsign == callsign && r.event == event {
                let _ = tx.send(notification(&r.id, event, params));
            }
        }
    }

    /// `Some(active)` for a known callsign (the Controller included).
    fn active(&self, callsign: &str) -> Option<bool> {
        let plugins = self.plugins.lock().unwrap();
        plugins.iter().find(|p| p.0 == callsign).map(|p| p.1)
    }

    /// `/jsonrpc`, `/jsonrpc/` and `/jsonrpc/Controller` are the Controller's channel (`None`);
    /// `/jsonrpc/<callsign>[/...]` is directed to a known callsign; anything else is an error.
    fn route(&self, path: &str) -> Result<Option<String>, ()> {
        let rest = path.strip_prefix("/jsonrpc").ok_or(())?;
        let callsign = match rest.strip_prefix('/') {
            Some(rest) => rest.split('/').next().unwrap_or(""),
            None if rest.is_empty() => "",
            None => return Err(()),
        };
        match callsign {
            "" | "Controller" => Ok(None),
            c if self.active(c).is_some() => Ok(Some(c.to_string())),
            _ => Err(()),
        }
    }

    fn authorized(&self, token: Option<&str>) -> bool {
        self.token.as_deref().is_none_or(|t| token == Some(t))
    }
}

fn accept(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopped.load(SeqCst) {
            return;
        }
        if let Ok(stream) = stream {
            let shared = shared.clone();
            thread::spawn(move || serve(&shared, stream));
        }
    }
}

fn serve(shared: &Shared, stream: TcpStream) {
    let conn = shared.next_conn.fetch_add(1, SeqCst);
    let _ = stream.set_nodelay(true);
    if let Ok(socket) = stream.try_clone() {
        shared.sockets.lock().unwrap().push((conn, socket));
    }
    let session = Session {
        shared,
        conn,
        directed: None,
        tx: None,
        before: vec![],
    };
    let _ = session.serve(stream);
    shared.sockets.lock().unwrap().retain(|(c, _)| *c != conn);
    let mut listeners = shared.listeners.lock().unwrap();
    listeners.retain(|(r, _)| r.conn != conn);
    drop(listeners);
    shared.record(Seen::Closed { conn });
}

type Answer = Result<String, Fault>;

/// One connection: where its requests go and where its notifications are queued.
struct Session<'a> {
    shared: &'a Shared,
    conn: usize,
    /// The callsign of a `/jsonrpc/<callsign>` channel; `None` routes by designator.
    directed: Option<String>,
    /// This session's notification queue; `None` over HTTP, where nothing can be delivered.
    tx: Option<Sender<String>>,
    /// Frames to send before the current reply (the `statechange` replay).
    before: Vec<String>,
}

impl Session<'_> {
    /// Answers HTTP requests until the connection closes or upgrades.
    fn serve(mut self, stream: TcpStream) -> io::Result<()> {
        stream.set_read_timeout(Some(HTTP_IDLE))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        while let Some(request) = read_request(&mut reader, self.conn)? {
            self.shared.record(Seen::Request(request.clone()));
            if request.upgrade {
                return self.websocket(stream, reader.buffer().to_vec(), &request);
            }
            let answer = self.http(&request);
            self.shared.pause();
            (&stream).write_all(&answer)?;
            let close = request.header("connection").unwrap_or("");
            if close.eq_ignore_ascii_case("close") {
                break;
            }
        }
        Ok(())
    }

    fn websocket(&mut self, stream: TcpStream, read: Vec<u8>, request: &Request) -> io::Result<()> {
        let refusal = match self.shared.route(request.path()) {
            Err(()) => Some("503 Could not find a correct service for this socket."),
            Ok(_) if !self.shared.authorized(request.query("token")) => {
                Some("403 Security prohibites this connection.")
            }
            Ok(directed) => {
                self.directed = directed;
                None
            }
        };
        self.shared.pause();
        if let Some(status) = refusal {
            return (&stream).write_all(&response(status, &[], ""));
        }
        let offered = request.header("sec-websocket-protocol").unwrap_or("");
        let offered: Vec<&str> = offered.split(',').map(str::trim).collect();
        let key = derive_accept_key(request.header("sec-websocket-key").unwrap_or("").as_bytes());
        let mut head = format!("HTTP/1.1 101 SWITCH_PROTOCOL\r\nConnection: UPGRADE\r\nUpgrade: WEBSOCKET\r\nSec-WebSocket-Accept: {key}\r\n");
        if !offered[0].is_empty() {
            head += &format!("Sec-WebSocket-Protocol: {}\r\n", offered[0]);
        }
        (&stream).write_all((head + "Content-Length: 0\r\n\r\n").as_bytes())?;
        let modes = ["json", "jsonrpc", "text", "raw"];
        let answers = !offered.iter().any(|p| modes.contains(p));
        stream.set_read_timeout(Some(POLL))?;
        let config = WebSocketConfig::default().accept_unmasked_frames(true);
        let ws = WebSocket::from_partially_read(stream, read, Role::Server, Some(config));
        self.frames(ws, answers).map_err(io::Error::other)
    }

    /// Reads frames and sends replies and notifications until either side closes.
    fn frames(&mut self, mut ws: WebSocket<TcpStream>, answers: bool) -> tungstenite::Result<()> {
        let (tx, rx) = mpsc::channel();
        self.tx = Some(tx);
        loop {
            for text in rx.try_iter() {
                ws.send(Message::text(text))?;
            }
            let text = match ws.read() {
                Ok(Message::Text(text)) => text.to_string(),
                Ok(_) => continue, // Thunder ignores binary frames; tungstenite answers pings
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            };
            let (conn, frame) = (self.conn, text.clone());
            self.shared.record(Seen::Frame { conn, text: frame });
            if !answers {
                continue;
            }
            let reply = self.handle(&text);
            let mut frames: Vec<String> = rx.try_iter().collect(); // caused by this request
            frames.append(&mut self.before);
            if reply.is_some() {
                self.shared.pause();
            }
            for frame in frames.into_iter().chain(reply) {
                ws.send(Message::text(frame))?;
            }
        }
    }

    /// The reply to one JSON-RPC text; `None` for notifications and for text that is not JSON,
    /// which Thunder ignores. Ids are echoed as sent (Thunder takes only 32-bit unsigned ones).
    fn handle(&mut self, text: &str) -> Option<String> {
        let request: Value = serde_json::from_str(text).ok()?;
        let (id, method) = (request.get("id"), request.get("method"));
        let Some(method) = method.and_then(Value::as_str) else {
            return Some(parse_failure());
        };
        let outcome = match self.call(method, request.get("params").unwrap_or(&Value::Null)) {
            Ok(result) => format!(r#""result":{result}"#),
            Err((code, text)) => format!(r#""error":{{"code":{code},"message":"{text}"}}"#),
        };
        Some(format!(r#"{{"jsonrpc":"2.0","id":{},{outcome}}}"#, id?))
    }

    fn call(&mut self, designator: &str, params: &Value) -> Answer {
        let d = Designator::parse(designator);
        if d.method.is_empty() {
            return Err(PARSE_FAILURE);
        }
        // A directed channel serves its own plugin whatever callsign the designator names.
        let callsign = self.directed.clone().unwrap_or(d.callsign);
        let callsign = Some(callsign).filter(|c| !c.is_empty());
        let callsign = callsign.unwrap_or("Controller".to_string());
        match self.shared.active(&callsign) {
            None => return Err(NOT_AVAILABLE),
            Some(false) => return Err(NOT_ACTIVE),
            Some(true) if d.version.is_some_and(|v| v != 1) => return Err(BAD_VERSION),
            Some(true) => {}
        }
        let param = |name| params.get(name).and_then(Value::as_str);
        let shared = self.shared;
        match (callsign.as_str(), d.method.as_str()) {
            (c, "register") => self.subscribe(c, true, param("event"), param("id")),
            (c, "unregister") => self.subscribe(c, false, param("event"), param("id")),
            ("Controller", "status" | "services") => status(shared, d.index.as_deref()),
            ("Controller", "activate") => lifecycle(shared, true, param("callsign")),
            ("Controller", "deactivate") => lifecycle(shared, false, param("callsign")),
            ("DeviceInfo", "systeminfo") => Ok(SYSTEMINFO.to_string()),
            ("Echo", "echo") => Ok(params.to_string()),
            ("Echo", "emit") => {
                let data = params.get("data").unwrap_or(&Value::Null).to_string();
                shared.emit("Echo", param("event").ok_or(BAD_REQUEST)?, &data);
                Ok(NULL.to_string())
            }
            _ => Err(UNKNOWN_METHOD),
        }
    }

    /// `register`/`unregister`; registering for the Controller's `statechange` replays one event
    /// per active plugin before the reply. Over HTTP both succeed and nothing is delivered.
    fn subscribe(&mut self, callsign: &str, on: bool, e: Option<&str>, i: Option<&str>) -> Answer {
        let (event, id) = e.zip(i).ok_or(INVALID_PARAMS)?;
        let Some(tx) = self.tx.clone() else {
            return Ok(NULL.to_string());
        };
        let (conn, callsign, event, id) = (self.conn, callsign.into(), event.into(), id.into());
        let registration = Registration {
            conn,
            callsign,
            event,
            id,
        };
        let mut listeners = self.shared.listeners.lock().unwrap();
        match (on, listeners.iter().position(|(r, _)| *r == registration)) {
            (false, Some(at)) => drop(listeners.remove(at)),
            (true, None) => {
                if (registration.callsign.as_str(), e) == ("Controller", Some("statechange")) {
                    let plugins = self.shared.plugins.lock().unwrap();
                    for (callsign, _, _, reason) in plugins.iter().filter(|p| p.1) {
                        let params = state_change(callsign, true, reason);
                        let id = &registration.id;
                        self.before.push(notification(id, "statechange", &params));
                    }
                }
                listeners.push((registration, tx));
            }
            _ => return Err(REGISTRATION_FAILED),
        }
        Ok(NULL.to_string())
    }

    fn http(&mut self, request: &Request) -> Vec<u8> {
        let bearer = request
            .header("authorization")
            .unwrap_or("")
            .strip_prefix("Bearer ");
        let query = request.query("token").filter(|_| request.method == "GET");
        if !self.shared.authorized(bearer.or(query)) {
            return response(UNAUTHORIZED, &[], "");
        }
        let (path, body) = (request.path(), request.body.as_str());
        if path == "/jsonrpc" || path.starts_with("/jsonrpc/") {
            return match self.shared.route(path) {
                _ if request.method != "POST" || body.is_empty() => response(NOT_POST, &[], ""),
                Ok(directed) => {
                    self.directed = directed;
                    self.jsonrpc_over_http(body)
                }
                Err(()) => response("404 Not Found", &[], ""),
            };
        }
        let callsign = path
            .strip_prefix("/Service/")
            .unwrap_or("/")
            .split('/')
            .next();
        match callsign.unwrap_or("") {
            c if self.shared.active(c).is_some() => {
                let (method, target) = (&request.method, &request.target);
                let answer = json!({"standin": "Thunder", "callsign": c, "method": method, "target": target, "body": body});
                let headers = [CORS, ("Content-Type", "application/json"), CACHE];
                response("200 OK", &headers, &answer.to_string())
            }
            _ => response("404 Not Found", &[], ""),
        }
    }

    fn jsonrpc_over_http(&mut self, body: &str) -> Vec<u8> {
        let reply = match serde_json::from_str::<Value>(body) {
            Ok(_) => self.handle(body),
            Err(_) => Some(parse_failure()),
        };
        let Some(reply) = reply else {
            let status = "204 A JSONRPC Notification was send to the server. Processed it..";
            return response(status, &[CORS, CACHE], "");
        };
        let value = serde_json::from_str::<Value>(&reply).unwrap_or_default();
        let status = match value["error"]["code"].as_i64() {
            Some(code) => format!("200 Failure on JSONRPC: {code}"),
            None => "200 JSONRPC executed succesfully".to_string(),
        };
        response(&status, &[CORS, CACHE], &reply)
    }
}

/// `[callsign.][version.]method[@index]`, split as Thunder's `Message::Split` does.
struct Designator {
    callsign: String,
    version: Option<u32>,
    method: String,
    index: Option<String>,
}

impl Designator {
    fn parse(text: &str) -> Designator {
        let (head, index) = match text.rsplit_once('@') {
            Some((head, index)) => (head, Some(index.to_string())),
            None => (text, None),
        };
        let (prefix, method) = head.rsplit_once('.').unwrap_or(("", head));
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let (callsign, version) = match prefix.rsplit_once('.') {
            Some((callsign, v)) if numeric(v) => (callsign, Some(v)),
            None if numeric(prefix) => ("", Some(prefix)),
            _ => (prefix, None),
        };
        let version = version.map(|v| v.parse().unwrap_or(u32::MAX));
        let (callsign, method) = (callsign.to_string(), method.to_string());
        Designator {
            callsign,
            version,
            method,
            index,
        }
    }
}

/// `status@X` is one object, `status` an array sorted by callsign (`@extract` in R5).
fn status(shared: &Shared, index: Option<&str>) -> Answer {
    let mut plugins = shared.plugins.lock().unwrap().clone();
    if let Some(callsign) = index {
        let plugin = plugins.into_iter().find(|p| p.0 == callsign);
        return plugin.map(service).ok_or(UNKNOWN_KEY);
    }
    plugins.sort();
    let all: Vec<String> = plugins.into_iter().map(service).collect();
    Ok(format!("[{}]", all.join(",")))
}

/// A service object in the field order of the recorded `status@Messenger` answer.
fn service((c, active, startup, _): (&str, bool, bool, &str)) -> String {
    let (state, startmode) = (state(active), state(startup));
    let config = if c == "Messenger" {
        r#"{"root":{"mode":"Off"}}"#
    } else {
        "{}"
    };
    format!(
        r#"{{"callsign":"{c}","locator":"libThunder{c}.so","classname":"{c}","module":"Plugin_{c}","state":"{state}","startmode":"{startmode}","resumed":false,"version":{{"hash":"engineering_build_for_debug_purpose_only","major":1,"minor":0,"patch":0}},"configuration":{config},"observers":0,"processedrequests":0,"processedobjects":0}}"#
    )
}

fn lifecycle(shared: &Shared, activate: bool, callsign: Option<&str>) -> Answer {
    let callsign = callsign.ok_or(BAD_REQUEST)?;
    if callsign == "Controller" {
        return Err(NOT_ALLOWED);
    }
    let mut plugins = shared.plugins.lock().unwrap();
    let plugin = plugins.iter_mut().find(|p| p.0 == callsign);
    let plugin = plugin.ok_or(UNKNOWN_KEY)?;
    if plugin.1 != activate {
        (plugin.1, plugin.3) = (activate, "Requested");
        drop(plugins);
        let params = state_change(callsign, activate, "Requested");
        shared.emit("Controller", "statechange", &params);
    }
    Ok(NULL.to_string())
}

fn state(active: bool) -> &'static str {
    ["Deactivated", "Activated"][usize::from(active)]
}

fn state_change(callsign: &str, active: bool, reason: &str) -> String {
    let state = state(active);
    format!(r#"{{"callsign":"{callsign}","state":"{state}","reason":"{reason}"}}"#)
}

fn notification(id: &str, event: &str, params: &str) -> String {
    let method = Value::String(format!("{id}.{event}"));
    format!(r#"{{"jsonrpc":"2.0","method":{method},"params":{params}}}"#)
}

fn parse_failure() -> String {
    let (code, text) = PARSE_FAILURE;
    format!(r#"{{"jsonrpc":"2.0","error":{{"code":{code},"message":"{text}"}}}}"#)
}

fn response(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        out += &format!("{name}: {value}\r\n");
    }
    out += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
    out.into_bytes()
}

/// The next request head (and for plain HTTP its body), or `None` at a clean end.
fn read_request(reader: &mut impl BufRead, conn: usize) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut words = line.split_whitespace().map(str::to_string);
    let (method, target) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    let mut request = Request {
        conn,
        method,
        target,
        ..Request::default()
    };
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            request
                .headers
                .push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    let upgrade = request.header("upgrade").unwrap_or("");
    request.upgrade = upgrade.eq_ignore_ascii_case("websocket");
    if !request.upgrade {
        request.body = read_body(reader, &request)?;
    }
    Ok(Some(request))
}

/// The body by `Content-Length`, or de-chunked for `Transfer-Encoding: chunked`.
fn read_body(reader: &mut impl BufRead, request: &Request) -> io::Result<String> {
    let mut body = Vec::new();
    let chunked = request.header("transfer-encoding").unwrap_or("");
    if chunked.eq_ignore_ascii_case("chunked") {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = size.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size, 16).map_err(io::Error::other)?;
            let mut chunk = vec![0; size + 2]; // the chunk and its CRLF
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        let length = request
            .header("content-length")
            .and_then(|l| l.parse().ok());
        body.resize(length.unwrap_or(0), 0);
        reader.read_exact(&mut body)?;
    }
    String::from_utf8(body).map_err(io::Error::other)
}
