//! One connection's thread: reads HTTP request heads, answers plain HTTP (`/health`, the page,
//! `POST /jsonrpc`), and after a WebSocket upgrade reads frames until the connection ends.
//! This thread only ever reads the socket after the upgrade: everything written to the client
//! (replies, events, pongs, close frames) goes through the dispatcher, in order.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Sender;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Error as WsError, Message, WebSocket};

use crate::access_token::Key;
use crate::acl::Origin;
use crate::config::{Compat, Config};
use crate::dispatcher::Cmd;
use crate::error::RpcError;
use crate::gate;
use crate::http::{self, Head, HeadError};
use crate::kurento;
use crate::request::{self, Designators};
use crate::rooms::ConnId;
use crate::wire;

/// The chat page served on `GET /` when the `page` setting is on.
const PAGE: &str = include_str!("page.html");

/// WebSocket subprotocols the server speaks, in order of preference for equal offers.
const PROTOCOLS: &[&str] = &["notification", "json", "jsonrpc"];

/// What every connection thread shares: settings, the dispatcher's inbox, counters.
pub struct Shared {
    pub config: Config,
    pub tx: Sender<Cmd>,
    pub started: Instant,
    /// Open connections (HTTP and WebSocket), for the limit and `/health`.
    pub connections: AtomicUsize,
    pub next_conn: AtomicU64,
    /// Set when the server is stopping: no new work is taken.
    pub stopping: AtomicBool,
    /// The key that signs access tokens; `None` when the key file could not be used.
    pub key: Option<Key>,
    /// Requests refused for a missing, forged, expired or malformed token, for `/health`.
    pub tokens_refused: AtomicU64,
    /// Requests refused by the per-connection rate limit, for `/health`.
    pub rate_limited: AtomicU64,
}

/// Counts a connection while it lives; the count drops with the guard however the thread ends.
pub struct Counted(pub Arc<Shared>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Tells the dispatcher the WebSocket is gone however the reader ends (return, error, panic).
struct ReportGone {
    conn: ConnId,
    tx: Sender<Cmd>,
}

impl Drop for ReportGone {
    fn drop(&mut self) {
        let _ = self.tx.send(Cmd::Gone { conn: self.conn });
    }
}

/// Serves one accepted connection until it ends.
pub fn serve(stream: TcpStream, guard: Counted) {
    let shared = guard.0.clone();
    // The HTTP phase returns before the WebSocket phase starts, so its stack frames (request
    // head parsing, responses) are gone while the connection idles: touched stack pages stay
    // resident for the thread's whole life.
    if let Some((stream, leftover, upgrade)) = http_phase(stream, &shared) {
        websocket(stream, leftover, upgrade, &shared);
    }
    drop(guard);
}

/// Answers plain HTTP requests until the connection closes or upgrades to a WebSocket.
#[inline(never)]
fn http_phase(mut stream: TcpStream, shared: &Shared) -> Option<(TcpStream, Vec<u8>, Upgrade)> {
    let config = &shared.config;
    let mut buf = Vec::new();
    loop {
        let deadline = Instant::now() + config.handshake_timeout;
        let head = match http::read_head(&mut stream, &mut buf, config.max_request_head, deadline) {
            Ok(head) => head,
            Err(HeadError::TooLarge) => {
                let _ = http::refuse(
                    &mut stream,
                    431,
                    "Request Header Fields Too Large",
                    "request head too large",
                );
                return None;
            }
            Err(HeadError::Malformed(why)) => {
                let _ = http::refuse(&mut stream, 400, "Bad Request", &why);
                return None;
            }
            Err(HeadError::Timeout) => {
                log::debug!("dropping a client that did not finish its request in time");
                return None;
            }
            Err(HeadError::Io(e)) => {
                log::debug!("reading a request: {e}");
                return None;
            }
            Err(HeadError::Closed) => return None,
        };
        match route(&mut stream, &mut buf, head, shared, deadline) {
            Ok(Next::KeepAlive) => continue,
            Ok(Next::Upgrade(upgrade)) => return Some((stream, buf, upgrade)),
            Ok(Next::Close) | Err(_) => return None,
        }
    }
}

/// What happens after a request has been answered.
enum Next {
    KeepAlive,
    Close,
    Upgrade(Upgrade),
}

/// A WebSocket handshake that has been accepted.
struct Upgrade {
    names: Designators,
    origin: Option<Origin>,
    /// The Kurento room dialect (`/room`) instead of Messenger's.
    kurento: bool,
    /// The client presented the `admin_token` from a loopback address.
    admin: bool,
}

fn route(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    head: Head,
    shared: &Shared,
    deadline: Instant,
) -> Result<Next, HeadError> {
    let config = &shared.config;
    let next = if head.keep_alive() {
        Next::KeepAlive
    } else {
        Next::Close
    };
    let jsonrpc = match head.path.as_str() {
        "/jsonrpc" => Some(false),
        p => match p.strip_prefix("/jsonrpc/") {
            Some(callsign) if callsign == config.callsign => Some(true),
            Some(_) => {
                http::refuse(stream, 404, "Not Found", "no such callsign")?;
                return Ok(Next::Close);
            }
            None => None,
        },
    };
    let wants_upgrade = head.has_token("upgrade", "websocket");
    let admin = trusted(stream, &head, config);
    let upgraded = |next: Next, kurento: bool| match next {
        Next::Upgrade(u) => Next::Upgrade(Upgrade {
            kurento,
            admin,
            ..u
        }),
        other => other,
    };
    match (head.method.as_str(), head.path.as_str(), jsonrpc) {
        ("GET", _, Some(implicit)) if wants_upgrade => {
            handshake(stream, &head, shared, implicit).map(|n| upgraded(n, false))
        }
        ("GET", "/room", None) if wants_upgrade => {
            handshake(stream, &head, shared, false).map(|n| upgraded(n, true))
        }
        ("POST", _, Some(implicit)) => {
            post(stream, buf, &head, shared, implicit, admin, deadline)?;
            Ok(next)
        }
        ("OPTIONS", _, Some(_)) => {
            let cors = [
                ("Access-Control-Allow-Origin", "*"),
                ("Access-Control-Allow-Methods", "POST, GET, OPTIONS"),
                (
                    "Access-Control-Allow-Headers",
                    "Content-Type, Authorization",
                ),
            ];
            http::respond(stream, 204, "No Content", &cors, b"")?;
            Ok(next)
        }
        (_, _, Some(_)) => {
            http::refuse(
                stream,
                405,
                "Method Not Allowed",
                "JSON-RPC takes POST with a body, or a WebSocket upgrade",
            )?;
            Ok(Next::Close)
        }
        (_, "/room", None) => {
            http::refuse(
                stream,
                405,
                "Method Not Allowed",
                "the Kurento room API is a WebSocket: GET /room with Upgrade: websocket",
            )?;
            Ok(Next::Close)
        }
        ("GET", "/health", None) => {
            health(stream, shared)?;
            Ok(next)
        }
        ("GET", "/", None) if config.page => {
            http::respond(
                stream,
                200,
                "OK",
                &[
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Cache-Control", "no-cache"),
                ],
                PAGE.as_bytes(),
            )?;
            Ok(next)
        }
        _ => {
            http::refuse(stream, 404, "Not Found", "no such path")?;
            Ok(Next::Close)
        }
    }
}

/// Accepts a WebSocket upgrade: checks the handshake, picks the subprotocol, answers 101.
fn handshake(
    stream: &mut TcpStream,
    head: &Head,
    shared: &Shared,
    implicit: bool,
) -> Result<Next, HeadError> {
    let origin = match gate::origin(head, shared) {
        Ok(origin) => origin,
        Err(why) => {
            gate::refuse(stream, shared, &why)?;
            return Ok(Next::Close);
        }
    };
    if head.header("sec-websocket-version") != Some("13") {
        http::respond(
            stream,
            426,
            "Upgrade Required",
            &[("Sec-WebSocket-Version", "13"), ("Connection", "close")],
            b"",
        )?;
        return Ok(Next::Close);
    }
    let Some(key) = head.header("sec-websocket-key").filter(|k| !k.is_empty()) else {
        http::refuse(stream, 400, "Bad Request", "missing Sec-WebSocket-Key")?;
        return Ok(Next::Close);
    };
    let offered: Vec<&str> = head.tokens("sec-websocket-protocol").collect();
    let protocol = offered.iter().find(|p| PROTOCOLS.contains(p));
    if !offered.is_empty() && protocol.is_none() {
        let why = format!(
            "unsupported subprotocol {offered:?}; this server speaks notification, json, jsonrpc"
        );
        http::refuse(stream, 400, "Bad Request", &why)?;
        return Ok(Next::Close);
    }
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut response = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n");
    if let Some(p) = protocol {
        response.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    response.push_str("\r\n");
    stream.write_all(response.as_bytes())?;
    let names = Designators {
        callsign: shared.config.callsign.clone(),
        implicit,
    };
    Ok(Next::Upgrade(Upgrade {
        names,
        origin,
        kurento: false,
        admin: false,
    }))
}

/// Whether the request comes from a trusted local caller: `admin_token` is set, the peer is
/// on a loopback address, and the request carries the token as the header
/// `X-Messenger-Admin` or the query parameter `admin` (compared in constant time).
fn trusted(stream: &TcpStream, head: &Head, config: &Config) -> bool {
    let secret = config.admin_token.as_bytes();
    if secret.is_empty() || !stream.peer_addr().is_ok_and(|a| a.ip().is_loopback()) {
        return false;
    }
    let presented = head
        .header("x-messenger-admin")
        .or_else(|| head.query_param("admin"));
    presented.is_some_and(|p| {
        let p = p.as_bytes();
        p.len() == secret.len() && p.iter().zip(secret).fold(0, |acc, (a, b)| acc | (a ^ b)) == 0
    })
}

/// Answers `POST /jsonrpc`: one request in the body, its response in ours.
fn post(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    head: &Head,
    shared: &Shared,
    implicit: bool,
    admin: bool,
    deadline: Instant,
) -> Result<(), HeadError> {
    let config = &shared.config;
    let origin = match gate::origin(head, shared) {
        Ok(origin) => origin,
        Err(why) => {
            gate::refuse(stream, shared, &why)?;
            return Err(HeadError::Closed);
        }
    };
    let length = head
        .header("content-length")
        .and_then(|l| l.parse::<usize>().ok());
    let Some(len) = length.filter(|_| !head.has_token("transfer-encoding", "chunked")) else {
        http::refuse(
            stream,
            411,
            "Length Required",
            "send the body with Content-Length",
        )?;
        return Err(HeadError::Closed);
    };
    if len > config.max_request_body {
        let why = format!("body larger than {} bytes", config.max_request_body);
        http::refuse(stream, 413, "Payload Too Large", &why)?;
        return Err(HeadError::Closed);
    }
    let body = http::read_body(stream, buf, len, deadline)?;
    let cors = ("Access-Control-Allow-Origin", "*");
    let names = Designators {
        callsign: config.callsign.clone(),
        implicit,
    };
    let call = match std::str::from_utf8(&body) {
        Ok(text) => request::parse(text, &names),
        Err(_) => Err(request::Rejection {
            id: "null".into(),
            error: RpcError::Parse("body is not UTF-8".into()),
            answer: true,
        }),
    };
    let (reply, answer) = crossbeam_channel::bounded(1);
    if shared
        .tx
        .send(Cmd::Http {
            call: Box::new(call),
            origin: origin.map(Box::new),
            admin,
            reply,
        })
        .is_err()
    {
        http::refuse(stream, 503, "Service Unavailable", "server is stopping")?;
        return Err(HeadError::Closed);
    }
    match answer.recv() {
        Ok(Some(text)) => http::respond(
            stream,
            200,
            "OK",
            &[("Content-Type", "application/json"), cors],
            text.as_bytes(),
        )?,
        Ok(None) => http::respond(stream, 204, "No Content", &[cors], b"")?,
        Err(_) => http::refuse(stream, 503, "Service Unavailable", "server is stopping")?,
    }
    Ok(())
}

fn health(stream: &mut TcpStream, shared: &Shared) -> io::Result<()> {
    let (reply, answer) = crossbeam_channel::bounded(1);
    let numbers = shared
        .tx
        .send(Cmd::Health { reply })
        .ok()
        .and_then(|()| answer.recv().ok());
    let Some(numbers) = numbers else {
        return http::refuse(stream, 503, "Service Unavailable", "server is stopping");
    };
    let body = format!(
        r#"{{"uptime":{},"connections":{},"rooms":{},"members":{},"queued_bytes":{},"tokens_refused":{},"rate_limited":{},"version":"{}"}}"#,
        shared.started.elapsed().as_secs(),
        shared.connections.load(Ordering::Relaxed),
        numbers.rooms,
        numbers.members,
        numbers.queued_bytes,
        shared.tokens_refused.load(Ordering::Relaxed),
        shared.rate_limited.load(Ordering::Relaxed),
        env!("CARGO_PKG_VERSION"),
    );
    http::respond(
        stream,
        200,
        "OK",
        &[
            ("Content-Type", "application/json"),
            ("Access-Control-Allow-Origin", "*"),
        ],
        body.as_bytes(),
    )
}

/// The socket as tungstenite sees it on the reader thread: reads come from the socket;
/// writes (pongs, close replies) are handed to the dispatcher so they stay in order with
/// everything else the client is sent.
struct ReaderStream {
    tcp: TcpStream,
    conn: ConnId,
    tx: Sender<Cmd>,
}

impl Read for ReaderStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.read(buf)
    }
}

impl Write for ReaderStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .send(Cmd::Raw {
                conn: self.conn,
                bytes: buf.to_vec(),
            })
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "dispatcher stopped"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What one text frame asks of the dispatcher, if anything: the checked call, or the
/// refusal's reply. Parsing is the deepest work a connection thread does, and every stack page
/// it touches stays resident for the connection's life, so this adds no frame of its own to
/// the parse path (measured: 8 KiB of stack touched per connection, 12 KiB with two more
/// frames here).
#[inline(always)]
fn text_command(
    conn: ConnId,
    text: &str,
    upgrade: &Upgrade,
    allowed: bool,
    shared: &Shared,
) -> Option<Cmd> {
    let (parsed, compat) = if upgrade.kurento {
        let parsed = kurento::parse(text).map(|call| Cmd::Kurento {
            conn,
            call: Box::new(call),
        });
        (parsed, Compat::Rdk)
    } else {
        let parsed = request::parse(text, &upgrade.names).map(|call| Cmd::Call {
            conn,
            call: Box::new(call),
        });
        (parsed, shared.config.compat)
    };
    gate::decide(allowed, conn, parsed, compat, shared)
}

/// Reads frames until the WebSocket ends; each text frame becomes a checked call.
#[inline(never)]
fn websocket(stream: TcpStream, mut leftover: Vec<u8>, mut upgrade: Upgrade, shared: &Shared) {
    // Usually empty: give back the head buffer's capacity before the connection settles.
    leftover.shrink_to_fit();
    let config = &shared.config;
    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    if shared
        .tx
        .send(Cmd::Open {
            conn,
            stream: writer,
            origin: upgrade.origin.take().map(Box::new),
            kurento: upgrade.kurento,
            admin: upgrade.admin,
        })
        .is_err()
    {
        return;
    }
    let _report_gone = ReportGone {
        conn,
        tx: shared.tx.clone(),
    };
    if stream.set_read_timeout(Some(config.idle_timeout)).is_err() {
        return;
    }
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_message_size));
    let reader = ReaderStream {
        tcp: stream,
        conn,
        tx: shared.tx.clone(),
    };
    let mut ws = Box::new(WebSocket::from_partially_read(
        reader,
        leftover,
        Role::Server,
        Some(ws_config),
    ));
    let close = |code: u16, reason: String| {
        let _ = shared.tx.send(Cmd::Close { conn, code, reason });
    };
    let mut pinged = false;
    let mut bucket = gate::bucket(shared);
    loop {
        let message = match ws.read() {
            Ok(message) => message,
            Err(WsError::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if pinged || shared.stopping.load(Ordering::Relaxed) {
                    close(1001, "idle timeout: no answer to ping".into());
                    return;
                }
                pinged = true;
                let _ = ws.send(Message::Ping(Default::default()));
                continue;
            }
            Err(WsError::Capacity(e)) => {
                return close(
                    1009,
                    format!(
                        "message too big (limit {} bytes): {e}",
                        config.max_message_size
                    ),
                );
            }
            Err(WsError::Utf8(_)) => return close(1007, "text frame is not valid UTF-8".into()),
            Err(WsError::Protocol(e)) => return close(1002, format!("protocol error: {e}")),
            Err(_) => return,
        };
        pinged = false;
        let cmd = match message {
            Message::Text(text) => {
                let allowed = gate::admit(&mut bucket, shared);
                match text_command(conn, text.as_str(), &upgrade, allowed, shared) {
                    Some(cmd) => cmd,
                    None => continue,
                }
            }
            Message::Binary(_) => {
                let error = RpcError::InvalidRequest(
                    "binary frames are not supported; send JSON-RPC in text frames".into(),
                );
                Cmd::Reply {
                    conn,
                    text: wire::error("null", &error, config.compat),
                }
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Close(_) => continue,
        };
        if shared.tx.send(cmd).is_err() {
            return;
        }
    }
}
