//! What a connection's log lines need (`logline` words them): the one line of a plain HTTP
//! connection, the open and close lines of a WebSocket, its rate-limit lines. Kept only when
//! info lines are written, boxed, so a quiet server carries 8 bytes of it on each connection
//! thread's stack (every touched stack page stays resident).

use std::net::SocketAddr;
use std::time::Instant;

use crate::acl::Origin;
use crate::http::Head;
use crate::logline::{self, Ended, Throttle};
use crate::rooms::ConnId;

/// What a plain HTTP connection did, for its one log line, written when it is dropped (unless
/// the connection became a WebSocket, which has lines of its own). Boxed, and only when info
/// lines are written: a quiet server keeps 8 bytes of it on each connection thread's stack.
pub struct Visit(Option<Box<VisitLog>>);

struct VisitLog {
    started: Instant,
    peer: Option<SocketAddr>,
    requests: u32,
    /// The last request's method and path.
    last: String,
    /// Why the connection ended.
    end: String,
}

impl Visit {
    /// A plain HTTP connection from `peer` has started.
    pub fn new(peer: Option<SocketAddr>) -> Visit {
        Visit(logline::info().then(|| {
            Box::new(VisitLog {
                started: Instant::now(),
                peer,
                requests: 0,
                last: String::new(),
                end: String::new(),
            })
        }))
    }

    pub fn saw(&mut self, head: &Head) {
        if let Some(log) = &mut self.0 {
            log.requests += 1;
            log.last = format!("{} {}", head.method, head.path);
        }
    }

    pub fn ended(&mut self, why: impl FnOnce() -> String) {
        if let Some(log) = &mut self.0 {
            log.end = why();
        }
    }

    /// The connection is a WebSocket now: no HTTP line (it gets its own open and close).
    pub fn upgraded(&mut self) {
        self.0 = None;
    }
}

impl Drop for Visit {
    fn drop(&mut self) {
        if let Some(log) = self.0.take() {
            let lived = log.started.elapsed();
            logline::http_closed(log.peer, log.requests, &log.last, lived, &log.end);
            // log: close
        }
    }
}

/// A WebSocket's facts for its close line: boxed, and only when info lines are written.
pub struct WsLog {
    pub peer: Option<SocketAddr>,
    pub path: String,
    pub opened: Instant,
    /// Requests over the rate limit not yet reported.
    pub limited: Throttle,
}

impl WsLog {
    /// The log facts of a WebSocket from `peer` upgraded by `head`.
    pub fn new(peer: Option<SocketAddr>, head: &Head) -> Option<Box<WsLog>> {
        logline::info().then(|| {
            Box::new(WsLog {
                peer,
                path: head.path.clone(),
                opened: Instant::now(),
                limited: Throttle::default(),
            })
        })
    }
}

/// A WebSocket has opened: its line, when info lines are written. Cold: off the reader's
/// frame.
#[cold]
#[inline(never)]
pub fn ws_opened(conn: ConnId, log: &WsLog, origin: Option<&Origin>) {
    let shown: Option<&dyn std::fmt::Display> = origin.map(|o| o as _);
    logline::opened(conn, log.peer, &log.path, shown);
}

/// A WebSocket has ended (`why`): its line, when info lines are written. Takes the log state,
/// so the line is written once. Cold: off the reader's frame.
#[cold]
#[inline(never)]
pub fn ws_closed(conn: ConnId, log: &mut Option<Box<WsLog>>, why: Ended) {
    if let Some(log) = log.take() {
        let lived = log.opened.elapsed();
        logline::closed(conn, log.peer, lived, &why, log.limited.held());
    }
}

/// A request over the rate limit: counted, and logged at most once a second.
#[cold]
#[inline(never)]
pub fn over_rate(log: &mut Option<Box<WsLog>>, conn: ConnId) {
    if let Some(log) = log {
        if let Some(count) = log.limited.hit(Instant::now()) {
            logline::rate_limited(conn, count); // log: refusal
        }
    }
}
