//! One connection's thread, phase by phase: plain HTTP requests (`http`, `routes`) until the
//! connection closes or upgrades (`upgrade`), then the WebSocket's frames (`reader`) until it
//! ends. After the upgrade this thread only ever reads the socket: everything written to the
//! client (replies, events, pongs, close frames) goes through the dispatcher, in order. The
//! operator's info lines for the connection (one per plain HTTP connection, an open and a close
//! line per WebSocket) are written here, with what `connlog` kept for them.
//!
//! # Stack discipline
//!
//! Each connection thread has a small stack (`thread_stack_size`), and every stack page it
//! touches stays resident for the connection's whole life. So the phases are separate
//! `#[inline(never)]` functions (the HTTP phase's frames, `http::read_head`'s header array
//! among them, are gone while the WebSocket idles), and the accepted upgrade is boxed
//! (`Next::Upgrade`), so neither `serve`'s frame nor the WebSocket phase's carries it. The
//! frame loop (`reader::read_frames`) is inlined into the WebSocket phase with its setup out
//! of line (`open`, `reader::server_side`) and its rare endings, with their log lines, in cold
//! functions with frames of their own (`reader::idle_end`, `reader::read_end`,
//! `connlog::ws_closed`, `connlog::over_rate`). The parse path (`engine::text_command`) adds
//! no frame of its own; `kurento::parse` runs in a frame of its own (`edge::kurento_parse`)
//! rather than widening the loop's, as does the fast path for `send` (`request::fast::send`,
//! which reaches less deep than the full parser every joining connection runs), and the
//! refusals of over-cap strings are formatted out of line (`caps::Cap::too_long`,
//! `fields::Field::refused`). Log state is boxed and made only when info lines are written
//! (`connlog`), so a quiet server carries 8 bytes of it.
//!
//! Measured on x86-64 (release): a connection that has joined and registered touches 8,080
//! bytes of its stack, two pages, about 4 KiB of which std's thread start takes before
//! `serve`; 1,000 such idle connections cost about 11.7 KiB each in all (private dirty
//! memory, docs/box.md). About 100 bytes more on that path makes it three pages (12 KiB).
//! Measure after changing any of it: `make bench` (c), or `cargo bench --bench load -- idle`
//! against a release build (see docs/performance.md).

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::inbox::Sender;

use crate::access_token::Key;
use crate::config::Config;
use crate::connlog::{self, Visit};
use crate::dispatcher::Cmd;
use crate::engine::Command;
use crate::http::{self, HeadError, Source};
use crate::logline::Ended;
use crate::ratelimit::TokenBucket;
use crate::reader;
use crate::rooms::ConnId;
use crate::routes::{self, Next};
use crate::socket::TcpSocket;
use crate::upgrade::Upgrade;
use crate::web_origins::WebOrigins;

/// What every connection thread shares: settings, the dispatcher's inbox, counters.
pub struct Shared {
    pub config: Config,
    /// `config.callsign`, shared by every connection's `Designators`.
    pub callsign: Arc<str>,
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
    /// Requests refused by the per-connection rate limit or the HTTP one, for `/health`.
    pub rate_limited: AtomicU64,
    /// Which web origins may connect, and which get CORS headers.
    pub web: WebOrigins,
    /// The one rate limit all `POST /jsonrpc` callers share (`gate::admit_http`).
    pub http_bucket: Mutex<TokenBucket>,
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
        let _ = self.tx.send(Command::Gone { conn: self.conn });
    }
}

/// Serves one accepted connection until it ends.
pub fn serve(mut stream: TcpStream, guard: Counted) {
    let shared = guard.0.clone();
    let peer = stream.peer_addr().ok();
    // The HTTP phase returns before the WebSocket phase starts, so its stack frames (request
    // head parsing, responses) are gone while the connection idles.
    match http_phase(&mut stream, peer, &shared) {
        Some((leftover, upgrade)) => websocket(stream, leftover, upgrade, &shared),
        None => linger(&mut stream),
    }
    drop(guard);
}

/// How long a connection that ends in its HTTP phase is still read after its last response.
const LINGER: Duration = Duration::from_millis(500);
/// How much of what the client still sends then is read (and thrown away).
const LINGER_BYTES: usize = 64 * 1024;

/// Ends a connection whose last response may have come before the client finished sending (a
/// refusal decided on the request head, the body still on its way): closing a socket with
/// unread bytes makes the kernel reset the connection, and a reset can make the client drop
/// the response it has not read yet. So the write side is shut (the client sees the end of
/// the response) and what still comes is read and thrown away, until the client closes, for
/// at most `LINGER` and `LINGER_BYTES` (a "lingering close", as HTTP servers do).
#[cold]
#[inline(never)]
fn linger(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let until = Instant::now() + LINGER;
    let mut scratch = [0u8; 512];
    let mut left = LINGER_BYTES;
    while left > 0 {
        let wait = until.saturating_duration_since(Instant::now());
        if wait.is_zero() || stream.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        match stream.read(&mut scratch) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// Answers plain HTTP requests from `peer` until the connection closes or upgrades to a
/// WebSocket; then the bytes that came after the upgrade request, and the upgrade. A
/// connection that does not upgrade gets one info line when it ends (`Visit`).
#[inline(never)]
pub fn http_phase<S: Source + std::io::Write>(
    stream: &mut S,
    peer: Option<SocketAddr>,
    shared: &Shared,
) -> Option<(Vec<u8>, Box<Upgrade>)> {
    let config = &shared.config;
    let mut visit = Visit::new(peer);
    let mut buf = Vec::new();
    loop {
        let deadline = Instant::now() + config.handshake_timeout;
        let head = match http::read_head(stream, &mut buf, config.max_request_head, deadline) {
            Ok(head) => head,
            Err(e) => {
                unreadable(stream, e, &mut visit);
                return None;
            }
        };
        visit.saw(&head);
        match routes::route(stream, &mut buf, head, shared, peer, deadline) {
            Ok(Next::KeepAlive) => continue,
            Ok(Next::Upgrade(upgrade)) => {
                visit.upgraded();
                return Some((buf, upgrade));
            }
            Ok(Next::Close) => visit.ended(|| "answered; connection closed".into()),
            Err(e) => visit.ended(|| format!("ended: {e:?}")),
        }
        return None;
    }
}

/// A request head that could not be read: the refusal it gets, if any, and why the connection
/// ends, for its log line.
#[cold]
#[inline(never)]
fn unreadable<S: std::io::Write>(stream: &mut S, error: HeadError, visit: &mut Visit) {
    match error {
        HeadError::TooLarge => {
            visit.ended(|| "request head too large (431)".into());
            let _ = http::refuse(
                stream,
                431,
                "Request Header Fields Too Large",
                "request head too large",
            );
        }
        HeadError::Malformed(why) => {
            visit.ended(|| format!("malformed request (400): {why}"));
            let _ = http::refuse(stream, 400, "Bad Request", &why);
        }
        HeadError::Timeout => {
            visit.ended(|| "handshake timeout: no complete request in time".into());
        }
        HeadError::Io(e) => visit.ended(|| format!("read failed: {e}")),
        HeadError::Closed => visit.ended(|| "client closed".into()),
    }
}

/// The WebSocket phase: tells the dispatcher the connection is open, then reads frames until
/// the connection ends, and reports it gone. With info lines on, one line when it opens and
/// one when it closes, saying why (written where the reader ends).
#[inline(never)]
fn websocket(stream: TcpStream, leftover: Vec<u8>, mut upgrade: Box<Upgrade>, shared: &Shared) {
    // The head buffer (usually empty now, `http::READ_CHUNK` bytes of capacity) becomes
    // tungstenite's read buffer (`reader::server_side`): freed, it would stay in this thread's
    // malloc cache (glibc's tcache) for the connection's life anyway.
    let mut log = upgrade.log.take();
    if let Some(log) = &log {
        connlog::ws_opened(upgrade.conn, log, upgrade.origin.as_deref()); // log: open
    }
    match open(&stream, &mut upgrade, shared) {
        // Each way the reader ends writes the close line (`log: close` in `reader`).
        Some(_report_gone) => reader::read_frames(stream, leftover, &upgrade, shared, &mut log),
        None => connlog::ws_closed(upgrade.conn, &mut log, Ended::Stopping), // log: close
    }
}

/// Hands the dispatcher the connection's write half (`Command::Open`) and sets the idle
/// timeout on its reads; the guard that reports the connection gone. `None` when the server
/// is stopping or the socket failed. Decides here, off the HTTP phase's deepest path, whether
/// the peer may send unmasked frames (a loopback peer: Thunder's C++ client never masks). Out
/// of line: its locals stay off the frame loop's stack frame.
#[inline(never)]
fn open(stream: &TcpStream, upgrade: &mut Upgrade, shared: &Shared) -> Option<ReportGone> {
    let loopback = stream.peer_addr().is_ok_and(|a| a.ip().is_loopback());
    upgrade.allow_unmasked(loopback, &shared.config);
    let conn = upgrade.conn;
    let writer = stream.try_clone().ok()?;
    let open = Command::Open {
        conn,
        socket: TcpSocket(writer),
        origin: upgrade.origin.take(),
        kurento: upgrade.dialect.is_kurento(),
        admin: upgrade.admin,
    };
    shared.tx.send(open).ok()?;
    let report_gone = ReportGone {
        conn,
        tx: shared.tx.clone(),
    };
    stream
        .set_read_timeout(Some(shared.config.idle_timeout))
        .ok()?;
    Some(report_gone)
}
