//! The HTTP routes of the shared port: which request goes where (`/jsonrpc` upgrade or POST,
//! `/room`, `/health`, the page), and the answers of the plain ones. Room state is asked of the
//! dispatcher over a one-shot channel.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::caps::Caps;
use crate::config::Config;
use crate::connection::Shared;
use crate::engine::{Answer, Command, Dialect};
use crate::error::RpcError;
use crate::gate;
use crate::host;
use crate::http::{self, Head, HeadError, Source};
use crate::proxy;
use crate::relay::RelayHead;
use crate::request::{self, Designators};
use crate::upgrade::{self, Upgrade};
use crate::upstream::{self, Route};
use crate::wire;
use messenger::controller;

/// The chat page served on `GET /` when the `page` setting is on.
const PAGE: &str = include_str!("page.html");

/// What happens after a request has been answered.
pub enum Next {
    KeepAlive,
    Close,
    /// Boxed: the connection thread's frames stay small (see `connection.rs`).
    Upgrade(Box<Upgrade>),
}

/// Answers one request from `peer` (the client's address, when the socket knows it).
pub fn route<S: Source + Write>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    head: Head,
    shared: &Shared,
    peer: Option<SocketAddr>,
    deadline: Instant,
) -> Result<Next, HeadError> {
    let config = &shared.config;
    if !host::admits(stream, &head, config, peer)? {
        return Ok(Next::Close);
    }
    let next = if head.keep_alive() {
        Next::KeepAlive
    } else {
        Next::Close
    };
    // `/jsonrpc/` is LinkType's default path; `/jsonrpc/Controller` is Thunder's Controller,
    // which on this server answers what `/jsonrpc` does.
    let relay = config.upstream_addr().is_some();
    // Relay mode: a path naming another callsign is Thunder's (`directed`).
    let mut directed = false;
    let jsonrpc = match head.path.as_str() {
        "/jsonrpc" | "/jsonrpc/" => Some(false),
        // As Thunder, the callsign is the path's next segment (`/jsonrpc/Messenger/x`).
        p => match p
            .strip_prefix("/jsonrpc/")
            .and_then(|c| c.split('/').next())
        {
            Some(callsign) if callsign == config.callsign => Some(true),
            Some(controller::CALLSIGN) => Some(false),
            Some(_) if relay => {
                directed = true;
                Some(false)
            }
            Some(_) => {
                http::refuse(stream, 404, "Not Found", "no such callsign")?;
                return Ok(Next::Close);
            }
            None => None,
        },
    };
    let wants_upgrade = head.has_token("upgrade", "websocket");
    let loopback = peer.is_some_and(|a| a.ip().is_loopback());
    let admin = admin(&head, config, loopback);
    let upgraded =
        |upgrade: Option<Upgrade>| upgrade.map_or(Next::Close, |u| Next::Upgrade(Box::new(u)));
    match (head.method.as_str(), head.path.as_str(), jsonrpc) {
        ("GET", _, Some(implicit)) if wants_upgrade => {
            let dialect = Dialect::Messenger(designators(config, shared, implicit));
            let mut upgrade = upgrade::handshake(stream, buf, &head, shared, peer, dialect, admin)?;
            if let Some(upgrade) = &mut upgrade {
                upgrade.relay = RelayHead::new(&head, config, directed);
            }
            Ok(upgraded(upgrade))
        }
        ("GET", "/room", None) if wants_upgrade => {
            let dialect = Dialect::Kurento(Caps::from(config));
            Ok(upgraded(upgrade::handshake(
                stream, buf, &head, shared, peer, dialect, admin,
            )?))
        }
        ("POST", _, Some(implicit)) => {
            let caller = Caller {
                implicit,
                admin,
                peer,
                directed,
            };
            post(stream, buf, &head, shared, caller, deadline)?;
            Ok(next)
        }
        ("OPTIONS", _, Some(_)) => {
            preflight(stream, &head, shared)?;
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
            health(stream, &head, shared)?;
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
        _ if relay && wants_upgrade => {
            let why = "relay mode relays WebSockets on /jsonrpc and /jsonrpc/<callsign> only";
            http::refuse(stream, 501, "Not Implemented", why)?;
            Ok(Next::Close)
        }
        _ if relay => {
            if gate::admit_http(shared) {
                proxy::forward(stream, buf, &head, None, false, shared, deadline)?;
            } else {
                over_http_rate(stream, &head, shared, "null")?;
            }
            Ok(Next::Close)
        }
        _ => {
            http::refuse(stream, 404, "Not Found", "no such path")?;
            Ok(Next::Close)
        }
    }
}

/// How method designators are read on this path (`implicit`: the path named the callsign),
/// with the byte caps of the settings.
fn designators(config: &Config, shared: &Shared, implicit: bool) -> Designators {
    Designators::new(Arc::clone(&shared.callsign), implicit, Caps::from(config))
}

/// Who posts a JSON-RPC request: whether the path named the callsign (`implicit`), whether
/// the caller is trusted (`admin`), its address.
struct Caller {
    implicit: bool,
    admin: bool,
    peer: Option<SocketAddr>,
    /// Relay mode: the path names another callsign.
    directed: bool,
}

/// Whether the request comes from a trusted local caller: `admin_token` is set, the peer is
/// on a loopback address, and the request carries the token as the header
/// `X-Messenger-Admin` or the query parameter `admin` (compared in constant time).
fn admin(head: &Head, config: &Config, loopback: bool) -> bool {
    let secret = config.admin_token.as_bytes();
    if secret.is_empty() || !loopback {
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
fn post<S: Source + Write>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    head: &Head,
    shared: &Shared,
    caller: Caller,
    deadline: Instant,
) -> Result<(), HeadError> {
    let config = &shared.config;
    if let Some(why) = gate::long_origin(head, shared) {
        http::refuse(stream, 400, "Bad Request", &why)?;
        return Err(HeadError::Closed);
    }
    if gate::foreign_origin(stream, head, shared, caller.peer)? {
        return Err(HeadError::Closed);
    }
    let origin = match gate::origin(head, shared) {
        Ok(origin) => origin,
        Err(why) => {
            gate::refuse(stream, shared, caller.peer, &why)?;
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
    if config.upstream_addr().is_some() {
        let text = std::str::from_utf8(&body).unwrap_or("");
        let names = designators(config, shared, caller.implicit);
        let route = upstream::route(text, &names, caller.directed);
        if route != Route::Local {
            // Thunder's calls take a token from the same bucket as this server's.
            if !gate::admit_http(shared) {
                over_http_rate(stream, head, shared, "null")?;
            } else {
                let merge = route == Route::MergeStatus;
                proxy::forward(stream, buf, head, Some(body), merge, shared, deadline)?;
            }
            return Err(HeadError::Closed);
        }
    }
    let call = match std::str::from_utf8(&body) {
        Ok(text) => request::parse(text, &designators(config, shared, caller.implicit)),
        Err(_) => Err(request::Rejection {
            id: "null".into(),
            error: RpcError::Parse("body is not UTF-8".into()),
            answer: true,
        }),
    };
    if !gate::admit_http(shared) {
        let id = match &call {
            Ok(call) => call.id.as_deref(),
            Err(rejection) => Some(rejection.id.as_str()),
        };
        over_http_rate(stream, head, shared, id.unwrap_or("null"))?;
        return Ok(());
    }
    let mut headers = shared.web.cors(head.header("origin"));
    let asked = ask(shared, |reply| Command::Http {
        call: Box::new(call),
        origin: origin.map(Box::new),
        admin: caller.admin,
        reply,
    });
    match asked {
        Some(Answer::Http(Some(text))) => {
            headers.push(("Content-Type", "application/json"));
            http::respond(stream, 200, "OK", &headers, text.as_bytes())?;
        }
        Some(Answer::Http(None)) => http::respond(stream, 204, "No Content", &headers, b"")?,
        _ => http::refuse(stream, 503, "Service Unavailable", "server is stopping")?,
    }
    Ok(())
}

/// Refuses an HTTP request over the rate all HTTP callers share (429, error 2 answering
/// `id`): `POST /jsonrpc` here, and requests for Thunder in relay mode.
fn over_http_rate(
    stream: &mut impl Write,
    head: &Head,
    shared: &Shared,
    id: &str,
) -> io::Result<()> {
    let mut headers = shared.web.cors(head.header("origin"));
    let error = gate::http_over_rate(&shared.config);
    let body = wire::error(id, &error, shared.config.compat);
    headers.extend([("Content-Type", "application/json"), ("Retry-After", "1")]);
    http::respond(stream, 429, "Too Many Requests", &headers, body.as_bytes())
}

/// Answers a CORS preflight (`OPTIONS` on a JSON-RPC path): the methods and headers a
/// listed origin may use; nothing for any other origin, so its browser refuses.
fn preflight(stream: &mut impl Write, head: &Head, shared: &Shared) -> io::Result<()> {
    let origin = head.header("origin");
    let mut headers = shared.web.cors(origin);
    if shared.web.cors_listed(origin) {
        headers.extend([
            ("Access-Control-Allow-Methods", "POST, GET, OPTIONS"),
            (
                "Access-Control-Allow-Headers",
                "Content-Type, Authorization",
            ),
        ]);
    }
    http::respond(stream, 204, "No Content", &headers, b"")
}

/// Sends the dispatcher a command carrying a one-shot reply channel and waits for the answer;
/// `None` when the dispatcher has stopped.
fn ask(
    shared: &Shared,
    command: impl FnOnce(crossbeam_channel::Sender<Answer>) -> crate::dispatcher::Cmd,
) -> Option<Answer> {
    let (reply, answer) = crossbeam_channel::bounded(1);
    shared.tx.send(command(reply)).ok()?;
    answer.recv().ok()
}

/// Answers `GET /health`: the connection counters and the dispatcher's numbers.
fn health(stream: &mut impl Write, head: &Head, shared: &Shared) -> io::Result<()> {
    let Some(Answer::Health(numbers)) = ask(shared, |reply| Command::Health { reply }) else {
        return http::refuse(stream, 503, "Service Unavailable", "server is stopping");
    };
    let body = format!(
        r#"{{"uptime":{},"connections":{},"rooms":{},"members":{},"queued_bytes":{},"memory_bytes":{},"tokens_refused":{},"rate_limited":{},"log_dropped":{},"version":"{}"}}"#,
        shared.started.elapsed().as_secs(),
        shared.connections.load(Ordering::Relaxed),
        numbers.rooms,
        numbers.members,
        numbers.queued_bytes,
        numbers.memory_bytes,
        shared.tokens_refused.load(Ordering::Relaxed),
        shared.rate_limited.load(Ordering::Relaxed),
        crate::logger::dropped(),
        env!("CARGO_PKG_VERSION"),
    );
    let mut headers = shared.web.cors(head.header("origin"));
    headers.push(("Content-Type", "application/json"));
    http::respond(stream, 200, "OK", &headers, body.as_bytes())
}

#[cfg(test)]
pub mod tests;
