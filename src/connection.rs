//! One connection's thread, phase by phase: plain HTTP requests (`http`, `routes`) until the
//! connection closes or upgrades (`upgrade`), then the WebSocket's frames (`reader`) until it
//! ends. After the upgrade this thread only ever reads the socket: everything written to the
//! client (replies, events, pongs, close frames) goes through the dispatcher, in order.
//!
//! # Stack discipline
//!
//! Each connection thread has a small stack (`thread_stack_size`), and every stack page it
//! touches stays resident for the connection's whole life. So the phases are separate
//! `#[inline(never)]` functions (the HTTP phase's frames are gone while the WebSocket idles),
//! the frame loop (`reader::read_frames`) is inlined into the WebSocket phase with its setup
//! out of line (`open`, `reader::server_side`), and the parse path (`engine::text_command`)
//! adds no frame of its own: the deepest work, parsing a request, touches as few pages as it
//! can. Measured on x86-64: 8 KiB of stack per connection that has made requests; the
//! WebSocket phase's frame is 1,128 bytes, and about 100 bytes more there (or two more frames
//! on the parse path) makes it 12 KiB. Measure after changing any of it: `scripts/memory.py`
//! for idle connections, and the stack mappings' Rss with connections that have sent requests.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Sender;

use crate::access_token::Key;
use crate::config::Config;
use crate::dispatcher::Cmd;
use crate::engine::Command;
use crate::http::{self, HeadError, Source};
use crate::reader;
use crate::rooms::ConnId;
use crate::routes::{self, Next};
use crate::socket::TcpSocket;
use crate::upgrade::Upgrade;

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
        let _ = self.tx.send(Command::Gone { conn: self.conn });
    }
}

/// Serves one accepted connection until it ends.
pub fn serve(mut stream: TcpStream, guard: Counted) {
    let shared = guard.0.clone();
    let loopback = stream.peer_addr().is_ok_and(|a| a.ip().is_loopback());
    // The HTTP phase returns before the WebSocket phase starts, so its stack frames (request
    // head parsing, responses) are gone while the connection idles.
    if let Some((leftover, upgrade)) = http_phase(&mut stream, loopback, &shared) {
        websocket(stream, leftover, upgrade, &shared);
    }
    drop(guard);
}

/// Answers plain HTTP requests until the connection closes or upgrades to a WebSocket; then
/// the bytes that came after the upgrade request, and the upgrade.
#[inline(never)]
pub fn http_phase<S: Source + std::io::Write>(
    stream: &mut S,
    loopback: bool,
    shared: &Shared,
) -> Option<(Vec<u8>, Upgrade)> {
    let config = &shared.config;
    let mut buf = Vec::new();
    loop {
        let deadline = Instant::now() + config.handshake_timeout;
        let head = match http::read_head(stream, &mut buf, config.max_request_head, deadline) {
            Ok(head) => head,
            Err(HeadError::TooLarge) => {
                let _ = http::refuse(
                    stream,
                    431,
                    "Request Header Fields Too Large",
                    "request head too large",
                );
                return None;
            }
            Err(HeadError::Malformed(why)) => {
                let _ = http::refuse(stream, 400, "Bad Request", &why);
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
        match routes::route(stream, &mut buf, head, shared, loopback, deadline) {
            Ok(Next::KeepAlive) => continue,
            Ok(Next::Upgrade(upgrade)) => return Some((buf, upgrade)),
            Ok(Next::Close) | Err(_) => return None,
        }
    }
}

/// The WebSocket phase: tells the dispatcher the connection is open, then reads frames until
/// the connection ends, and reports it gone.
#[inline(never)]
fn websocket(stream: TcpStream, mut leftover: Vec<u8>, mut upgrade: Upgrade, shared: &Shared) {
    // Usually empty: give back the head buffer's capacity before the connection settles.
    leftover.shrink_to_fit();
    let Some(report_gone) = open(&stream, &mut upgrade, shared) else {
        return;
    };
    if stream
        .set_read_timeout(Some(shared.config.idle_timeout))
        .is_err()
    {
        return;
    }
    reader::read_frames(stream, leftover, report_gone.conn, &upgrade, shared);
}

/// Hands the dispatcher the connection's write half (`Command::Open`); the guard that reports
/// the connection gone. Decides here, off the HTTP phase's deepest path, whether the peer may
/// send unmasked frames (a loopback peer: Thunder's C++ client never masks). Out of line: its
/// locals stay off the frame loop's stack frame.
#[inline(never)]
fn open(stream: &TcpStream, upgrade: &mut Upgrade, shared: &Shared) -> Option<ReportGone> {
    let loopback = stream.peer_addr().is_ok_and(|a| a.ip().is_loopback());
    upgrade.allow_unmasked(loopback, &shared.config);
    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let writer = stream.try_clone().ok()?;
    let open = Command::Open {
        conn,
        socket: TcpSocket(writer),
        origin: upgrade.origin.take().map(Box::new),
        kurento: matches!(upgrade.dialect, crate::engine::Dialect::Kurento),
        admin: upgrade.admin,
    };
    shared.tx.send(open).ok()?;
    Some(ReportGone {
        conn,
        tx: shared.tx.clone(),
    })
}
