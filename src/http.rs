//! Plain HTTP on the shared port: reading a request head (httparse) and body under size and
//! time limits from any `Source`, and writing small responses to any `Write`.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Most header lines a request head may have (more: 431).
pub const MAX_HEADERS: usize = 32;
/// Bytes asked of the socket per read while a head or body arrives.
pub const READ_CHUNK: usize = 512;

/// Where requests are read from: a byte stream whose reads can be given a time limit (a
/// `TcpStream`'s read timeout; nothing for memory in a test).
pub trait Source: Read {
    /// Makes the next reads give up (`WouldBlock` or `TimedOut`) after `left`.
    fn wait_at_most(&mut self, left: Duration) -> io::Result<()>;
}

impl Source for TcpStream {
    fn wait_at_most(&mut self, left: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(left))
    }
}

/// A parsed request head. Header names are lower-cased.
///
/// The header lines are kept in one string, not a string per name and value: every block a
/// connection thread frees before its WebSocket idles stays in that thread's malloc cache
/// (glibc's tcache, up to seven blocks of each size) for the connection's life.
#[derive(Debug)]
pub struct Head {
    pub method: String,
    /// The path without its query.
    pub path: String,
    pub query: Option<String>,
    /// Every header's name and value, end to end.
    fields: String,
    /// Where each header's name ends and its value ends in `fields` (each starts where the
    /// one before ends).
    spans: Vec<(u32, u32)>,
    /// HTTP/1.0 (closes after one response unless asked otherwise).
    pub http10: bool,
}

impl Head {
    /// Every header as (name, value), in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let mut start = 0;
        self.spans.iter().map(move |&(name_end, value_end)| {
            let (name_end, value_end) = (name_end as usize, value_end as usize);
            let pair = (
                &self.fields[start..name_end],
                &self.fields[name_end..value_end],
            );
            start = value_end;
            pair
        })
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Every comma-separated token of a header, over all its occurrences.
    pub fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers()
            .filter(move |(n, _)| *n == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// Whether a header has the token, case-insensitively (`Connection: keep-alive, Upgrade`).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }

    /// Whether the client wants the connection kept open after this response.
    pub fn keep_alive(&self) -> bool {
        if self.http10 {
            self.has_token("connection", "keep-alive")
        } else {
            !self.has_token("connection", "close")
        }
    }

    /// A query parameter's raw value.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .as_deref()?
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// Why no request could be read. Each ends the connection; some get a response first.
#[derive(Debug)]
pub enum HeadError {
    /// The client closed the connection between requests: not an error.
    Closed,
    /// The head (or body) did not arrive before the deadline.
    Timeout,
    /// The head is larger than allowed: 431.
    TooLarge,
    /// Not HTTP: 400.
    Malformed(String),
    Io(io::Error),
}

impl From<io::Error> for HeadError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HeadError::Timeout,
            _ => HeadError::Io(e),
        }
    }
}

/// Reads one request head from `stream` into `buf` (which may already hold bytes left over
/// from the previous request). On success the head's bytes are removed from `buf`, leaving
/// any body bytes that came with it.
#[inline(never)] // its header array is off the stack before the request is routed
pub fn read_head(
    stream: &mut impl Source,
    buf: &mut Vec<u8>,
    max: usize,
    deadline: Instant,
) -> Result<Head, HeadError> {
    loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let head = to_head(&req);
                    buf.drain(..len);
                    return Ok(head);
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
                Err(e) => return Err(HeadError::Malformed(e.to_string())),
            }
        }
        if buf.len() >= max {
            return Err(HeadError::TooLarge);
        }
        if read_more(stream, buf, max, deadline)? == 0 {
            return Err(if buf.is_empty() {
                HeadError::Closed
            } else {
                HeadError::Malformed("connection closed mid-request".into())
            });
        }
    }
}

/// Reads a body of `len` bytes (some of which may already be in `buf`).
pub fn read_body(
    stream: &mut impl Source,
    buf: &mut Vec<u8>,
    len: usize,
    deadline: Instant,
) -> Result<Vec<u8>, HeadError> {
    while buf.len() < len {
        if read_more(stream, buf, len, deadline)? == 0 {
            return Err(HeadError::Malformed("connection closed mid-body".into()));
        }
    }
    let rest = buf.split_off(len);
    Ok(std::mem::replace(buf, rest))
}

/// One read of at most `max - buf.len()` bytes, waiting no later than `deadline`.
pub fn read_more(
    stream: &mut impl Source,
    buf: &mut Vec<u8>,
    max: usize,
    deadline: Instant,
) -> Result<usize, HeadError> {
    let left = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or(HeadError::Timeout)?;
    stream.wait_at_most(left)?;
    // Read straight into the heap buffer: a stack chunk would stay resident on every
    // connection thread's stack for the connection's whole life.
    let start = buf.len();
    let want = READ_CHUNK.min(max.saturating_sub(start).max(1));
    buf.resize(start + want, 0);
    let n = loop {
        match stream.read(&mut buf[start..]) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                buf.truncate(start);
                return Err(e.into());
            }
            Ok(n) => break n,
        }
    };
    buf.truncate(start + n);
    Ok(n)
}

fn to_head(req: &httparse::Request) -> Head {
    let target = req.path.unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target.to_owned(), None),
    };
    let size = req.headers.iter().map(|h| h.name.len() + h.value.len());
    let mut fields = String::with_capacity(size.sum());
    let mut spans = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        fields.push_str(h.name);
        let name_end = fields.len();
        fields[name_end - h.name.len()..].make_ascii_lowercase();
        fields.push_str(&String::from_utf8_lossy(h.value));
        // A head is at most `max_request_head` bytes (at most 1 MiB), so its offsets fit.
        spans.push((name_end as u32, fields.len() as u32));
    }
    Head {
        method: req.method.unwrap_or("").to_owned(),
        path,
        query,
        fields,
        spans,
        http10: req.version == Some(0),
    }
}

/// Writes a complete response with a body.
pub fn respond(
    out: &mut impl Write,
    status: u16,
    reason: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<()> {
    let mut text = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    out.write_all(&bytes)?;
    out.flush()
}

/// A JSON error body for refusals (`{"error": "..."}`), with `Connection: close`.
pub fn refuse(out: &mut impl Write, status: u16, reason: &str, why: &str) -> io::Result<()> {
    let body = format!(r#"{{"error":{}}}"#, crate::wire::json_string(why));
    respond(
        out,
        status,
        reason,
        &[
            ("Content-Type", "application/json"),
            ("Connection", "close"),
        ],
        body.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(text.as_bytes()).unwrap().is_complete());
        to_head(&req)
    }

    #[test]
    fn reads_tokens_and_query() {
        let h = head("GET /jsonrpc?token=abc&x HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Protocol: json, notification\r\nSec-WebSocket-Protocol: jsonrpc\r\n\r\n");
        assert_eq!(h.path, "/jsonrpc");
        assert_eq!(h.query_param("token"), Some("abc"));
        assert_eq!(h.query_param("x"), Some(""));
        assert_eq!(h.query_param("y"), None);
        assert!(h.has_token("connection", "upgrade"));
        assert_eq!(
            h.tokens("sec-websocket-protocol").collect::<Vec<_>>(),
            ["json", "notification", "jsonrpc"]
        );
        assert!(h.keep_alive());
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive());
    }

    use crate::test_stream::Pipe;

    fn far() -> Instant {
        Instant::now() + std::time::Duration::from_secs(600)
    }

    #[test]
    fn a_head_fed_in_small_pieces_leaves_its_body() {
        let request =
            "POST /jsonrpc?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello";
        for piece in [1, 2, 7, 1024] {
            let mut pipe = Pipe::new(request, piece);
            let mut buf = Vec::new();
            let head = read_head(&mut pipe, &mut buf, 8192, far()).unwrap();
            assert_eq!(
                (head.method.as_str(), head.path.as_str()),
                ("POST", "/jsonrpc")
            );
            assert_eq!(head.query_param("x"), Some("1"));
            assert_eq!(head.header("host"), Some("127.0.0.1"));
            let body = read_body(&mut pipe, &mut buf, 5, far()).unwrap();
            assert_eq!(body, b"hello", "piece {piece}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn heads_that_cannot_be_read() {
        let read =
            |text: &str, max| read_head(&mut Pipe::new(text, 3), &mut Vec::new(), max, far());
        assert!(matches!(read("", 8192), Err(HeadError::Closed)));
        assert!(matches!(
            read("GET / HTTP/1.1\r\nHo", 8192),
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            read("GET\x01 / HTTP/1.1\r\n\r\n", 8192),
            Err(HeadError::Malformed(_))
        ));
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(100));
        assert!(matches!(read(&long, 64), Err(HeadError::TooLarge)));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X{i}: 1\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(read(&many, 8192), Err(HeadError::TooLarge)));
        let mut quiet = Pipe::new("GET / HTTP/1.1\r\n", 3).stalling();
        let waited = read_head(&mut quiet, &mut Vec::new(), 8192, far());
        assert!(matches!(waited, Err(HeadError::Timeout)));
        let past = Instant::now() - std::time::Duration::from_millis(1);
        let late = read_head(
            &mut Pipe::new("GET / HTTP/1.1\r\n\r\n", 3),
            &mut Vec::new(),
            8192,
            past,
        );
        assert!(matches!(late, Err(HeadError::Timeout)));
        let mut cut = Pipe::new("abc", 3);
        assert!(matches!(
            read_body(&mut cut, &mut Vec::new(), 5, far()),
            Err(HeadError::Malformed(_))
        ));
    }

    #[test]
    fn response_has_length() {
        let mut out = Vec::new();
        respond(
            &mut out,
            200,
            "OK",
            &[("Content-Type", "application/json")],
            b"{}",
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"));
        assert!(text.ends_with("\r\n\r\n{}"));
    }
}
