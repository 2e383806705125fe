//! The operator's log lines, worded in one place: start and stop, each connection opened and
//! closed, each refusal (info); joins and leaves (debug). Call sites pass plain facts; names
//! that come from clients are quoted and cut short here, so no client can forge a log line.
//! Frame dumps stay at trace (tungstenite's own lines).

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::rooms::Owner;

/// Longest client-given name written into a line, in characters.
const NAME: usize = 64;

/// Why a WebSocket ended, as its reader saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The client sent a close frame, with this code if it gave one.
    ClientClosed(Option<u16>),
    /// The TCP connection ended without a close frame (the client went away, or the server
    /// shut it after cutting the client off as too slow).
    Dropped(String),
    /// No answer to the idle ping.
    IdleTimeout,
    /// The server is stopping (1001).
    Stopping,
    /// A message over `max_message_size` (1009).
    TooBig,
    /// A text frame that is not UTF-8 (1007).
    NotUtf8,
    /// A WebSocket protocol error (1002).
    Protocol(String),
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::ClientClosed(Some(code)) => write!(f, "client closed ({code})"),
            Ended::ClientClosed(None) => f.write_str("client closed (no code)"),
            Ended::Dropped(why) => write!(f, "dropped without a close frame ({why})"),
            Ended::IdleTimeout => f.write_str("idle timeout: no answer to ping (1001)"),
            Ended::Stopping => f.write_str("server stopping (1001)"),
            Ended::TooBig => f.write_str("message too big (1009)"),
            Ended::NotUtf8 => f.write_str("text not UTF-8 (1007)"),
            Ended::Protocol(why) => write!(f, "protocol error (1002): {why}"),
        }
    }
}

/// A client-given name, quoted, escaped and cut to `NAME` characters.
pub fn name(text: &str) -> String {
    let mut cut: String = text.chars().take(NAME).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// A peer address, or `?` when the socket no longer knows it.
fn peer(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "?".into(), |a| a.to_string())
}

/// A duration in seconds with milliseconds, without float formatting.
pub fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

/// The start line: address, version, key file state, settings that differ from defaults.
#[inline(never)] // out of the callers' stack frames
pub fn started(addr: &str, version: &str, key: &str, changed: &[String]) {
    if !info() {
        return;
    }
    let changed = if changed.is_empty() {
        "none".to_owned()
    } else {
        changed.join(", ")
    };
    log::info!("{version} started on {addr}; {key}; settings changed from defaults: {changed}");
}

/// A stop was asked for (a signal).
#[inline(never)] // out of the callers' stack frames
pub fn stopping(signal: &str, connections: usize) {
    log::info!("{signal}: stopping; open connections: {connections}, each closed with 1001");
}

/// The last line.
#[inline(never)] // out of the callers' stack frames
pub fn stopped(uptime: Duration) {
    log::info!("stopped after {}", secs(uptime));
}

/// Whether info lines are written: callers and these functions skip all formatting when not,
/// so a quiet server spends no stack or heap on lines nobody reads.
pub fn info() -> bool {
    log::log_enabled!(target: "messenger", log::Level::Info)
}

/// A WebSocket opened: its number, peer, path and origin (from a token or `Origin`).
#[inline(never)] // out of the callers' stack frames
pub fn opened(conn: u64, addr: Option<SocketAddr>, path: &str, origin: Option<&dyn fmt::Display>) {
    if !info() {
        return;
    }
    let origin = origin.map_or_else(|| "none".to_owned(), |o| o.to_string());
    log::info!(
        "conn {conn} open: peer {} path {} origin {}",
        peer(addr),
        name(path),
        name(&origin)
    );
}

/// A WebSocket closed: how long it lived and why; `limited` requests refused by the rate
/// limit and not yet reported.
#[inline(never)] // out of the callers' stack frames
pub fn closed(conn: u64, addr: Option<SocketAddr>, lived: Duration, why: &Ended, limited: u64) {
    if !info() {
        return;
    }
    let limited = match limited {
        0 => String::new(),
        n => format!("; {n} more requests over the rate limit"),
    };
    log::info!(
        "conn {conn} closed: peer {} after {}: {why}{limited}",
        peer(addr),
        secs(lived)
    );
}

/// A plain HTTP connection ended (one line for the whole connection): its requests, the last
/// of them, and why it ended.
#[inline(never)] // out of the callers' stack frames
pub fn http_closed(
    addr: Option<SocketAddr>,
    requests: u32,
    last: &str,
    lived: Duration,
    why: &str,
) {
    if !info() {
        return;
    }
    let requests = match requests {
        0 => "no request".to_owned(),
        1 => format!("1 request ({})", name(last)),
        n => format!("{n} requests (last {})", name(last)),
    };
    log::info!(
        "http closed: peer {} after {}, {requests}: {why}",
        peer(addr),
        secs(lived)
    );
}

/// A request refused with an HTTP status (401, 403, 421, 503, ...).
#[inline(never)] // out of the callers' stack frames
pub fn refused(addr: Option<SocketAddr>, status: u16, why: &dyn fmt::Display) {
    log::info!("refused peer {} with {status}: {why}", peer(addr));
}

/// Connections refused for being over `max_connections`: `count` since the last such line.
#[inline(never)] // out of the callers' stack frames
pub fn refused_busy(addr: Option<SocketAddr>, count: u64, limit: usize) {
    log::info!(
        "refused peer {} with 503: too many connections (limit {limit}); {count} refused since the last such line",
        peer(addr)
    );
}

/// Requests refused by one connection's rate limit: `count` since the last such line.
#[inline(never)] // out of the callers' stack frames
pub fn rate_limited(conn: u64, count: u64) {
    log::info!("conn {conn} rate limited: {count} requests refused with error 2");
}

/// A client cut off (close 1008): its queue stayed over `max_outbound_bytes` too long, passed
/// its ceiling, or was the largest when the memory budget was reached; `why` says which.
#[inline(never)] // out of the callers' stack frames
pub fn cut_off(conn: u64, why: &str) {
    log::info!("conn {conn} cut off as too slow: {why} (close 1008)");
}

/// Who a join or leave line is about: `conn <n>` for a WebSocket, `http` for the HTTP caller.
struct Who(Owner);

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Owner::WebSocket(conn) => write!(f, "conn {conn}"),
            Owner::Http => f.write_str("http"),
        }
    }
}

/// A join (debug).
#[inline(never)] // out of the callers' stack frames
pub fn joined(owner: Owner, user: &str, room: &str) {
    let who = Who(owner);
    log::debug!("{who} joined room {} as {}", name(room), name(user));
}

/// A leave (debug); `member` is (user, room) when the membership was known.
#[inline(never)] // out of the callers' stack frames
pub fn left(owner: Owner, member: Option<(&str, &str)>) {
    let who = Who(owner);
    match member {
        Some((user, room)) => log::debug!("{who}: {} left room {}", name(user), name(room)),
        None => log::debug!("{who}: leave of an unknown membership"),
    }
}

/// A connection's memberships ended with it (debug).
#[inline(never)] // out of the callers' stack frames
pub fn gone(conn: u64, memberships: usize) {
    if memberships > 0 {
        log::debug!("conn {conn} gone: left {memberships} rooms");
    }
}

/// At most one line per second for a repeated event, with the count since the last line.
#[derive(Debug, Default)]
pub struct Throttle {
    last: Option<Instant>,
    held: u64,
}

impl Throttle {
    /// Counts one event at `now`; the count to report when a line is due.
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        self.held += 1;
        let due = self
            .last
            .is_none_or(|last| now.duration_since(last) >= Duration::from_secs(1));
        if !due {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }

    /// Events counted but not yet reported.
    pub fn held(&self) -> u64 {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_reports_once_a_second_with_the_count() {
        let t0 = Instant::now();
        let mut t = Throttle::default();
        assert_eq!(t.hit(t0), Some(1));
        for ms in 1..100 {
            assert_eq!(t.hit(t0 + Duration::from_millis(ms * 5)), None);
        }
        assert_eq!(t.held(), 99);
        assert_eq!(t.hit(t0 + Duration::from_millis(1000)), Some(100));
        assert_eq!(t.held(), 0);
    }

    #[test]
    fn client_names_cannot_forge_lines() {
        assert_eq!(name("bob\nINFO fake"), r#""bob\nINFO fake""#);
        let long = name(&"x".repeat(500));
        assert!(long.chars().count() < 70, "{long}");
        assert_eq!(secs(Duration::from_millis(61_005)), "61.005 s");
    }
}
