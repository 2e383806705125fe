//! The connection's gate: which origin a connection has (from a verified access token, else
//! from its `Origin` header), the 401 for a refused token, the 403 for a web origin the
//! allow-list refuses, the per-connection rate limit applied on the reader thread before a
//! request reaches the dispatcher, and the one rate limit all HTTP callers share.
//!
//! Why one bucket for every `POST /jsonrpc` caller: they all come from loopback, so the
//! address tells them apart no more than a port does, and `curl` opens a new connection per
//! call, so a bucket per connection would start full every time. A flood from one script can
//! therefore slow the others' HTTP calls; it cannot reach the dispatcher faster than the rate,
//! and WebSocket clients keep their own buckets.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::access_token::TokenError;
use crate::acl::Origin;
use crate::caps::Cap;
use crate::config::Config;
use crate::connection::Shared;
use crate::dispatcher::Cmd;
use crate::engine::{self, Command};
use crate::error::RpcError;
use crate::http::{self, Head};
use crate::ratelimit::TokenBucket;
use crate::request::Rejection;
use crate::rooms::ConnId;
use crate::wire;

/// The token a request carries: `?token=` (ThunderJS) or `Authorization: Bearer`. An empty
/// one (`?token=` from a URL template with no token filled in) counts as none.
fn presented(head: &Head) -> Option<&str> {
    let token = head.query_param("token").or_else(|| {
        let (scheme, token) = head.header("authorization")?.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    })?;
    (!token.is_empty()).then_some(token)
}

/// The connection's origin. A presented token must be valid (else the request is refused,
/// whatever `require_token` says, except in relay mode, where it may be Thunder's); without
/// one the `Origin` header counts, unless the server requires a token.
pub fn origin(head: &Head, shared: &Shared) -> Result<Option<Origin>, TokenError> {
    let Some(token) = presented(head) else {
        if shared.config.require_token {
            return Err(TokenError::Missing);
        }
        return Ok(head.header("origin").and_then(Origin::parse));
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let verified = match shared.key.as_ref() {
        Some(key) => key.verify(token, now).map(|claims| Some(claims.origin)),
        None => Err(TokenError::NoKey),
    };
    match verified {
        // Relay mode: a token this server did not sign is Thunder's SecurityAgent token,
        // passed on for Thunder to judge; here the `Origin` header counts.
        Err(_) if shared.config.upstream_addr().is_some() && !shared.config.require_token => {
            Ok(head.header("origin").and_then(Origin::parse))
        }
        other => other,
    }
}

/// The refusal of an `Origin` header longer than `max_origin_bytes`, if it is one (400, before
/// anything reads it).
pub fn long_origin(head: &Head, shared: &Shared) -> Option<String> {
    let cap = Cap::new(shared.config.max_origin_bytes, "max_origin_bytes");
    cap.bytes("Origin", head.header("origin")?).err()
}

/// Answers a refused token from `peer` with 401 and a JSON body saying why, and counts it.
pub fn refuse(
    out: &mut impl Write,
    shared: &Shared,
    peer: Option<SocketAddr>,
    why: &TokenError,
) -> std::io::Result<()> {
    shared.tokens_refused.fetch_add(1, Ordering::Relaxed);
    crate::logline::refused(peer, 401, why); // log: refusal
    let body = format!(r#"{{"error":{}}}"#, wire::json_string(&why.to_string()));
    http::respond(
        out,
        401,
        "Unauthorized",
        &[
            ("Content-Type", "application/json"),
            ("WWW-Authenticate", r#"Bearer error="invalid_token""#),
            ("Connection", "close"),
        ],
        body.as_bytes(),
    )
}

/// Takes a token from the connection's bucket for one frame (text, binary, ping or pong;
/// well-formed or not) that arrived at `now`; counts the frame in `/health` when there is
/// none.
pub fn admit(bucket: &mut TokenBucket, now: Instant, shared: &Shared) -> bool {
    let allowed = bucket.take(now);
    if !allowed {
        shared.rate_limited.fetch_add(1, Ordering::Relaxed);
    }
    allowed
}

/// What the reader sends the dispatcher for one text frame, if anything. `parsed` is what the
/// edge made of it: the command carrying the checked call, or the refusal. Within the rate:
/// the command, or the refusal's answer. Over it: error 2 for a request with an id; a
/// notification or a malformed frame is dropped unanswered.
#[inline(never)] // keeps the refusals out of the parse path's frames
pub fn decide(
    allowed: bool,
    conn: ConnId,
    parsed: Result<Cmd, Rejection>,
    shared: &Shared,
) -> Option<Cmd> {
    if allowed {
        return match parsed {
            Ok(cmd) => Some(cmd),
            Err(rejection) => engine::refused(conn, rejection),
        };
    }
    let id = match parsed.ok()? {
        Command::Call { call, .. } => call.id?.as_str().to_owned(),
        Command::Send { id, .. } => id?.as_str().to_owned(),
        Command::Kurento { call, .. } => call.id?,
        _ => return None,
    };
    over_rate(conn, id, shared)
}

/// The answer (error 2) to the request `id` over the connection's rate.
pub fn over_rate(conn: ConnId, id: String, shared: &Shared) -> Option<Cmd> {
    let config = &shared.config;
    let error = RpcError::Unavailable(format!(
        "rate limit: at most {} requests a second (burst {}) on one connection; slow down",
        decimal(config.max_messages_per_second),
        config.message_burst
    ));
    let rejection = Rejection {
        id,
        error,
        answer: true,
    };
    engine::refused(conn, rejection)
}

/// A rate as text with up to three decimals, without pulling float formatting (about 12 KiB
/// of the armv7 binary) into the server for one error message.
fn decimal(rate: f64) -> String {
    let milli = (rate * 1000.0).round() as u64;
    let (whole, frac) = (milli / 1000, milli % 1000);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:03}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// The refusal (403) of a request whose `Origin` the allow-list refuses, if it is one.
pub fn foreign_origin(
    out: &mut impl Write,
    head: &Head,
    shared: &Shared,
    peer: Option<SocketAddr>,
) -> std::io::Result<bool> {
    let Some(why) = shared.web.refuses(head.header("origin")) else {
        return Ok(false);
    };
    crate::logline::refused(peer, 403, &why); // log: refusal
    http::refuse(out, 403, "Forbidden", &why)?;
    Ok(true)
}

/// Takes a token from the bucket all HTTP callers share; counts the request in `/health`
/// when there is none.
pub fn admit_http(shared: &Shared) -> bool {
    let allowed = shared
        .http_bucket
        .lock()
        .map_or(true, |mut bucket| bucket.take(Instant::now()));
    if !allowed {
        shared.rate_limited.fetch_add(1, Ordering::Relaxed);
    }
    allowed
}

/// The error for a `POST /jsonrpc` over the HTTP rate.
pub fn http_over_rate(config: &Config) -> RpcError {
    RpcError::Unavailable(format!(
        "rate limit: all HTTP callers together may make at most {} requests a second (burst {}): max_http_requests_per_second; slow down",
        decimal(config.max_http_requests_per_second),
        config.http_request_burst
    ))
}

/// The bucket all HTTP callers share, full.
pub fn http_bucket(config: &Config) -> TokenBucket {
    TokenBucket::new(
        config.max_http_requests_per_second,
        f64::from(config.http_request_burst),
        Instant::now(),
    )
}

/// A fresh bucket for a new connection.
pub fn bucket(shared: &Shared) -> TokenBucket {
    let config = &shared.config;
    TokenBucket::new(
        config.max_messages_per_second,
        f64::from(config.message_burst),
        Instant::now(),
    )
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn rates_print_without_float_formatting() {
        assert_eq!(decimal(2000.0), "2000");
        assert_eq!(decimal(0.5), "0.5");
        assert_eq!(decimal(12.25), "12.25");
        assert_eq!(decimal(1.0004), "1");
    }
}
