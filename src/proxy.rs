//! Relay mode over plain HTTP (`upstream` set): a request this server does not serve itself
//! (`POST /jsonrpc` for another callsign, `/Service/...`, any other path Thunder may serve) is
//! forwarded to Thunder over a fresh connection and Thunder's response returned. Both legs are
//! bounded: the request's head and body by `max_request_head` and `max_request_body`, the
//! response's head by `max_request_head` and its body by `max_outbound_bytes`, each within
//! `upstream_timeout`. A body comes with `Content-Length` or chunked, never both (400: no
//! smuggling); a chunked body is read strictly and forwarded with its length. Thunder down:
//! 502; too slow: 504. The client's connection closes after a forwarded request.

use std::io::{self, Write};
use std::net::TcpStream;
use std::time::Instant;

use crate::connection::Shared;
use crate::http::{self, Head, HeadError, Source};

/// Headers that belong to one hop, not forwarded either way.
const HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    // The body is read before it is forwarded: nothing is to wait for a 100 Continue.
    "expect",
];

/// Why a body could not be read.
enum BodyError {
    /// The request cannot be read as sent (400), with why.
    Bad(String),
    /// Over the limit (413 on the request, 502 on the response).
    TooLarge,
    Head(HeadError),
}

impl From<HeadError> for BodyError {
    fn from(e: HeadError) -> Self {
        BodyError::Head(e)
    }
}

/// Forwards `head` (its body, if any, still on `stream` after what `buf` holds) to Thunder
/// and writes back its response. `body`: the request's body when it has been read already
/// (`POST /jsonrpc`). `merge`: the answer is the Controller's `status` list, whose Messenger
/// entry is this server's (`upstream::merge_status`).
pub fn forward<S: Source + Write>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    head: &Head,
    body: Option<Vec<u8>>,
    merge: bool,
    shared: &Shared,
    deadline: Instant,
) -> Result<(), HeadError> {
    let config = &shared.config;
    let body = match body {
        Some(body) => body,
        None => match request_body(stream, buf, head, config.max_request_body, deadline) {
            Ok(body) => body,
            Err(BodyError::Bad(why)) => {
                http::refuse(stream, 400, "Bad Request", &why)?;
                return Ok(());
            }
            Err(BodyError::TooLarge) => {
                let why = format!("body larger than {} bytes", config.max_request_body);
                http::refuse(stream, 413, "Payload Too Large", &why)?;
                return Ok(());
            }
            Err(BodyError::Head(e)) => return Err(e),
        },
    };
    match exchange(head, &body, shared) {
        Ok((status, headers, mut body)) => {
            if merge {
                if let Ok(text) = std::str::from_utf8(&body) {
                    body = crate::upstream::merge_status(text, &config.callsign).into_bytes();
                }
            }
            let mut text = format!("{status}\r\nContent-Length: {}\r\n", body.len());
            for (name, value) in &headers {
                text.push_str(&format!("{name}: {value}\r\n"));
            }
            text.push_str("Connection: close\r\n\r\n");
            let mut bytes = text.into_bytes();
            bytes.extend_from_slice(&body);
            stream.write_all(&bytes)?;
            stream.flush()?;
        }
        Err((code, reason, why)) => {
            log::info!("relay to Thunder at {}: {why}", config.upstream); // log: relay
            http::refuse(stream, code, reason, &why)?;
        }
    }
    Ok(())
}

/// The request's body: by `Content-Length`, or chunked (read strictly), or none.
fn request_body<S: Source>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    head: &Head,
    max: usize,
    deadline: Instant,
) -> Result<Vec<u8>, BodyError> {
    let length = head.header("content-length");
    let coding = head.header("transfer-encoding");
    let body = framed_body(stream, buf, length, coding, max, deadline)?;
    Ok(body.unwrap_or_default())
}

/// A body framed by `Content-Length` or chunked, never both, of at most `max` bytes, on both
/// legs; `None` when the head names neither.
fn framed_body<S: Source>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    length: Option<&str>,
    coding: Option<&str>,
    max: usize,
    deadline: Instant,
) -> Result<Option<Vec<u8>>, BodyError> {
    match (length, coding) {
        (Some(_), Some(_)) => Err(BodyError::Bad(
            "both Content-Length and Transfer-Encoding: one only".into(),
        )),
        (None, Some(coding)) if coding.trim().eq_ignore_ascii_case("chunked") => {
            dechunk(stream, buf, max, deadline).map(Some)
        }
        (None, Some(coding)) => Err(BodyError::Bad(format!(
            "Transfer-Encoding {coding:?}: only chunked is read"
        ))),
        (Some(length), None) => {
            let len = length
                .trim()
                .parse::<usize>()
                .map_err(|_| BodyError::Bad(format!("Content-Length {length:?}")))?;
            if len > max {
                return Err(BodyError::TooLarge);
            }
            Ok(Some(http::read_body(stream, buf, len, deadline)?))
        }
        (None, None) => Ok(None),
    }
}

/// A chunked body, read strictly (hex sizes, CRLF after each chunk, no trailers), of at most
/// `max` bytes; the bytes after it stay in `buf`.
fn dechunk<S: Source>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    max: usize,
    deadline: Instant,
) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(stream, buf, deadline)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let bad = || BodyError::Bad(format!("bad chunk size {line:?}"));
        if size.is_empty() || size.len() > 8 || !size.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let size = usize::from_str_radix(size, 16).map_err(|_| bad())?;
        if size == 0 {
            let end = read_line(stream, buf, deadline)?;
            if !end.is_empty() {
                return Err(BodyError::Bad("trailers are not accepted".into()));
            }
            return Ok(body);
        }
        if body.len() + size > max {
            return Err(BodyError::TooLarge);
        }
        let chunk = http::read_body(stream, buf, size + 2, deadline)?;
        if !chunk.ends_with(b"\r\n") {
            return Err(BodyError::Bad("a chunk must end with CRLF".into()));
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

/// One CRLF-ended line (without it), of at most 64 bytes.
fn read_line<S: Source>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<String, BodyError> {
    const LONGEST: usize = 64;
    loop {
        if let Some(at) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..at]).into_owned();
            buf.drain(..at + 2);
            return Ok(line);
        }
        if buf.len() > LONGEST {
            return Err(BodyError::Bad("chunk line too long".into()));
        }
        if http::read_more(stream, buf, LONGEST + 2, deadline)? == 0 {
            return Err(BodyError::Bad("connection closed mid-body".into()));
        }
    }
}

/// A response: its status line, the headers to pass on, its body.
type Response = (String, Vec<(String, String)>, Vec<u8>);
/// Why there is none: status, reason and what to say.
type Failure = (u16, &'static str, String);

/// Sends the request to Thunder on a fresh connection and reads its response.
fn exchange(head: &Head, body: &[u8], shared: &Shared) -> Result<Response, Failure> {
    let config = &shared.config;
    let down = |e: io::Error| (502, "Bad Gateway", format!("Thunder is not reachable: {e}"));
    let addr = config
        .upstream_addr()
        .ok_or((502, "Bad Gateway", "relay is off".into()))?;
    let deadline = Instant::now() + config.upstream_timeout;
    let mut up = TcpStream::connect_timeout(&addr, config.upstream_timeout).map_err(down)?;
    up.set_write_timeout(Some(config.upstream_timeout))
        .map_err(down)?;
    let mut text = match &head.query {
        Some(query) => format!("{} {}?{query} HTTP/1.1\r\n", head.method, head.path),
        None => format!("{} {} HTTP/1.1\r\n", head.method, head.path),
    };
    for (name, value) in head.headers() {
        if !HOP.contains(&name) {
            text.push_str(&format!("{}: {value}\r\n", canonical(name)));
        }
    }
    if !body.is_empty() || matches!(head.method.as_str(), "POST" | "PUT" | "PATCH") {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("Connection: close\r\n\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    up.write_all(&bytes).map_err(down)?;
    response(&mut up, head.method == "HEAD", shared, deadline)
}

/// A header name as it is usually written (`content-type` read, `Content-Type` sent): the
/// request head keeps names lower-cased, and a server may compare them as written.
fn canonical(name: &str) -> String {
    let words = name.split('-').map(|word| {
        let mut chars = word.chars();
        match chars.next() {
            Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
            None => String::new(),
        }
    });
    words.collect::<Vec<_>>().join("-")
}

/// Reads Thunder's response head and body.
fn response(
    up: &mut TcpStream,
    head_only: bool,
    shared: &Shared,
    deadline: Instant,
) -> Result<Response, Failure> {
    let config = &shared.config;
    let slow = || {
        let why = "Thunder did not answer within upstream_timeout".to_owned();
        (504, "Gateway Timeout", why)
    };
    let bad = |why: String| (502, "Bad Gateway", format!("Thunder's response: {why}"));
    let failed = |e: HeadError| match e {
        HeadError::Timeout => slow(),
        HeadError::TooLarge => bad("head too large".into()),
        HeadError::Malformed(why) => bad(why),
        HeadError::Io(e) => bad(e.to_string()),
        HeadError::Closed => bad("connection closed".into()),
    };
    let mut buf = Vec::new();
    let (status, code, headers) = loop {
        let (status, code, headers) =
            response_head(up, &mut buf, config.max_request_head, deadline).map_err(
                |e| match e {
                    Err(e) => failed(e),
                    Ok(why) => bad(why),
                },
            )?;
        if !(100..200).contains(&code) {
            break (status, code, headers);
        } // an interim response: the final one follows
    };
    let find = |name: &str| {
        let mut named = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
        named.next().map(|(_, v)| v.as_str())
    };
    let max = config.max_outbound_bytes;
    let no_body = head_only || code == 204 || code == 304;
    let (length, coding) = (find("content-length"), find("transfer-encoding"));
    let framed = if no_body {
        Ok(Some(Vec::new()))
    } else {
        framed_body(up, &mut buf, length, coding, max, deadline)
    };
    let framed = match framed {
        Ok(framed) => framed,
        Err(BodyError::Bad(why)) => return Err(bad(why)),
        Err(BodyError::TooLarge) => return Err(bad("body too large".into())),
        Err(BodyError::Head(e)) => return Err(failed(e)),
    };
    let body = match framed {
        Some(body) => body,
        // Until Thunder closes (the request asked it to).
        None => loop {
            match http::read_more(up, &mut buf, max + 1, deadline) {
                Ok(0) => break std::mem::take(&mut buf),
                Ok(_) if buf.len() > max => return Err(bad("body too large".into())),
                Ok(_) => {}
                Err(e) => return Err(failed(e)),
            }
        },
    };
    let headers = headers
        .into_iter()
        .filter(|(n, _)| !HOP.contains(&n.to_ascii_lowercase().as_str()))
        .collect();
    Ok((status, headers, body))
}

/// A response head: its status line, code and headers.
pub type ResponseHead = (String, u16, Vec<(String, String)>);

/// Reads one response head from `up` into `buf` (at most `max` bytes, by `deadline`); the
/// bytes after it stay in `buf`. `Err(Ok(why))`: not a response head; `Err(Err(_))`: the read
/// failed (`HeadError::Timeout` when too late).
pub fn response_head(
    up: &mut TcpStream,
    buf: &mut Vec<u8>,
    max: usize,
    deadline: Instant,
) -> Result<ResponseHead, Result<String, HeadError>> {
    loop {
        let mut lines = [httparse::EMPTY_HEADER; http::MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut lines);
        match parsed.parse(buf) {
            Ok(httparse::Status::Complete(len)) => {
                let code = parsed.code.unwrap_or(502);
                let status = format!("HTTP/1.1 {code} {}", parsed.reason.unwrap_or(""));
                let headers = parsed.headers.iter().map(|h| {
                    let value = String::from_utf8_lossy(h.value).into_owned();
                    (h.name.to_owned(), value)
                });
                let headers = headers.collect();
                buf.drain(..len);
                return Ok((status, code, headers));
            }
            Ok(httparse::Status::Partial) if buf.len() < max => {}
            Ok(httparse::Status::Partial) => return Err(Ok("head too large".into())),
            Err(e) => return Err(Ok(e.to_string())),
        }
        match http::read_more(up, buf, max, deadline) {
            Ok(0) => return Err(Err(HeadError::Closed)),
            Ok(_) => {}
            Err(e) => return Err(Err(e)),
        }
    }
}
