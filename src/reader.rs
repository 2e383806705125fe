//! The frame reader: a WebSocket's incoming frames, read with tungstenite until the connection
//! ends. Every frame (text, binary, ping, pong) takes a token from the connection's rate limit
//! (`gate`). Each text frame becomes a command for the dispatcher (checked at the edge); pings
//! are answered and bad frames closed through the dispatcher, so every byte the client is sent
//! stays in order. Over the rate a ping gets no pong and a binary frame no error: tungstenite
//! queues the pong itself, so the write side drops that pong (`ReaderStream::pong_allowed`).
//! The `send`s one read from the socket brought go to the dispatcher as one command
//! (`engine::Held`): held until the next read from the socket or the next other command.
//! In a burst, a plain text frame read ahead is taken without tungstenite once tungstenite
//! holds nothing (`frame_scan`); every other frame is tungstenite's to read.

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::inbox::Sender;
use tungstenite::error::ProtocolError;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Error as WsError, Message, WebSocket};

use crate::connection::Shared;
use crate::connlog::{self, over_rate, WsLog};
use crate::dispatcher::{Cmd, HeldCmds};
use crate::engine::Dialect;
use crate::engine::{self, Command};
use crate::error::RpcError;
use crate::frame_scan::FrameScan;
use crate::gate;
use crate::logline::Ended;
use crate::ratelimit::TokenBucket;
use crate::read_ahead::ReadAhead;
use crate::relay::{self, Taken};
use crate::request::{self, Rejection};
use crate::rooms::ConnId;
use crate::upgrade::Upgrade;

/// The WebSocket opcode of a pong frame.
const PONG: u8 = 0xA;

/// The socket as tungstenite sees it on the reader thread: reads come from the socket;
/// writes (pongs, close replies) are handed to the dispatcher so they stay in order with
/// everything else the client is sent.
struct ReaderStream<R> {
    read: R,
    conn: ConnId,
    /// What a burst's reads brought in ahead of tungstenite's reads.
    ahead: ReadAhead,
    /// Where the frames given to tungstenite begin and end (`frame_scan`).
    scan: FrameScan,
    /// The messages tungstenite has answered `read` with. Given one frame at a time from the
    /// read-ahead buffer, it holds no whole message unanswered while that buffer has bytes;
    /// `may_take` checks it all the same, so no change to how it is given bytes can reorder.
    answered: u64,
    /// The next frame goes through tungstenite: it has a pong to write first.
    pong_due: bool,
    /// The client has sent a close frame: tungstenite reads what follows (and refuses it).
    closed: bool,
    /// Whether the pong tungstenite writes next may go out: false when the ping it answers
    /// came over the rate. tungstenite writes the pong for a ping at its next read, before
    /// reading anything else, so this is set for each ping as it is read.
    pong_allowed: bool,
    /// When the last read from the socket returned: when the frames it brought arrived, for
    /// the rate limit. One clock reading per system call, not per frame (a burst's read
    /// brings dozens).
    read_at: Instant,
    out: Handoff,
}

/// What the reader sends the dispatcher, and the `send`s it holds (`engine::Held`).
struct Handoff {
    tx: Sender<Cmd>,
    /// The `send`s read since the last read from the socket, not yet sent.
    held: HeldCmds,
    /// Whether `send`s are held: not in relay mode, where Thunder's answers come from another
    /// thread and a `send` carried out here too goes at once, as it always did.
    hold: bool,
}

impl Handoff {
    /// Sends `cmd` to the dispatcher, after what is held; a `send` is held instead.
    fn hand(&mut self, cmd: Cmd) -> io::Result<()> {
        let tx = &self.tx;
        self.held.hand(cmd, |c| tx.send(c)).map_err(|_| stopped())?;
        if !self.hold {
            self.release()?;
        }
        Ok(())
    }

    /// Sends what is held, if anything.
    fn release(&mut self) -> io::Result<()> {
        let tx = &self.tx;
        self.held.release(|c| tx.send(c)).map_err(|_| stopped())
    }
}

impl<R> ReaderStream<R> {
    /// Whether the next frame read ahead may be taken without tungstenite
    /// (`ReadAhead::take_text`): tungstenite holds no bytes, no pong waits and the
    /// WebSocket is open.
    fn may_take(&self) -> bool {
        !self.pong_due && !self.closed && self.scan.at_rest() && self.scan.whole() == self.answered
    }
}

#[cfg(test)]
thread_local! {
    /// Frames the reader took without tungstenite on this thread, for its tests.
    static TAKEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The error a reader's send meets once the dispatcher has stopped.
fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "dispatcher stopped")
}

impl<R: Read> Read for ReaderStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let from_socket = !self.ahead.pending();
        if from_socket {
            // Nothing is held while the reader may wait for the client.
            self.out.release()?;
        }
        // Read ahead, tungstenite is given one frame at a time.
        let scan = &self.scan;
        let n = self
            .ahead
            .read(&mut self.read, buf, |next| scan.frame_end(next))?;
        if from_socket {
            self.read_at = Instant::now();
        }
        self.scan.feed(&buf[..n]);
        Ok(n)
    }
}

impl<R> Write for ReaderStream<R> {
    /// tungstenite writes whole frames, one per call (its write buffer is 0).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.pong_allowed && buf.first().is_some_and(|b| b & 0x0f == PONG) {
            self.pong_allowed = true;
            return Ok(buf.len());
        }
        let bytes = buf.to_vec();
        self.out.hand(Command::Raw {
            conn: self.conn,
            bytes,
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads frames from `read` (after the `leftover` bytes that came with the upgrade request)
/// until the WebSocket ends, and writes its close line (with what `log` kept) saying how. A
/// read that times out (`idle_timeout`) sends a ping; a second one in a row closes with 1001. Every stack page
/// this loop touches stays resident while the connection idles, so the rare paths (errors,
/// refusals, their log lines) live in cold functions with frames of their own. Inlined into
/// the WebSocket phase: see `connection.rs`.
#[inline(always)]
pub fn read_frames<R: Read>(
    read: R,
    leftover: Vec<u8>,
    upgrade: &Upgrade,
    shared: &Shared,
    log: &mut Option<Box<WsLog>>,
) {
    let conn = upgrade.conn;
    let hold = upgrade.relay.is_none();
    let mut ws = server_side(read, leftover, conn, shared, upgrade.unmasked_ok, hold);
    let mut pinged = false;
    let mut client_code = None;
    let mut bucket = gate::bucket(shared);
    // Relay mode: this connection's upstream WebSocket, opened on first need (`relay`).
    let mut link: Option<Box<relay::Link>> = None;
    let max = shared.config.max_message_size;
    loop {
        let stream = ws.get_mut();
        let taken = if stream.may_take() {
            stream.ahead.take_text(max)
        } else {
            None
        };
        let cmd = match taken {
            Some(Ok(text)) => {
                #[cfg(test)]
                TAKEN.with(|t| t.set(t.get() + 1));
                pinged = false;
                let allowed = admit(&mut bucket, stream.read_at, shared, log, conn);
                on_text(text, &mut stream.out, allowed, upgrade, &mut link, shared)
            }
            Some(Err(e)) => {
                // Not UTF-8: ended as tungstenite ends it, after what the frames before asked.
                let _ = stream.out.release();
                return read_end(WsError::from(e), conn, shared, client_code, log);
            }
            None => {
                stream.pong_due = false;
                let message = match ws.read() {
                    Ok(message) => message,
                    Err(WsError::Io(e))
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        if pinged || shared.stopping.load(Ordering::Relaxed) {
                            let _ = ws.get_mut().out.release();
                            return idle_end(conn, shared, log);
                        }
                        pinged = true;
                        let _ = ws.send(Message::Ping(Default::default()));
                        continue;
                    }
                    Err(e) => {
                        // What the frames before a bad one asked goes first.
                        let _ = ws.get_mut().out.release();
                        return read_end(e, conn, shared, client_code, log);
                    }
                };
                pinged = false;
                let stream = ws.get_mut();
                stream.answered += 1;
                if let Message::Close(frame) = message {
                    stream.closed = true;
                    client_code = Some(frame.map(|f| u16::from(f.code)));
                    continue;
                }
                let allowed = admit(&mut bucket, stream.read_at, shared, log, conn);
                match message {
                    Message::Text(text) => on_text(
                        text.as_str(),
                        &mut stream.out,
                        allowed,
                        upgrade,
                        &mut link,
                        shared,
                    ),
                    Message::Binary(_) if allowed => Some(binary_refused(conn)),
                    Message::Ping(_) => {
                        stream.pong_allowed = allowed;
                        stream.pong_due = true;
                        None
                    }
                    _ => None,
                }
            }
        };
        let Some(cmd) = cmd else {
            continue;
        };
        if ws.get_mut().out.hand(cmd).is_err() {
            return connlog::ws_closed(conn, log, Ended::Stopping); // log: close
        }
    }
}

/// Takes a token from the connection's rate limit for a frame that arrived `at`; logs it
/// when there is none.
#[inline(always)]
fn admit(
    bucket: &mut TokenBucket,
    at: Instant,
    shared: &Shared,
    log: &mut Option<Box<WsLog>>,
    conn: ConnId,
) -> bool {
    let allowed = gate::admit(bucket, at, shared);
    if !allowed {
        over_rate(log, conn);
    }
    allowed
}

/// What a text frame comes to: the command to send, or `None` when there is nothing to send
/// now (a held `send`; a request over the rate with no id; a frame the relay sent on). In line
/// at both callers: out of line, its frame put the parser's deepest path a page lower (12 KiB
/// of stack resident per idle connection instead of 8, `make bench` (c)).
#[inline(always)]
fn on_text(
    text: &str,
    out: &mut Handoff,
    allowed: bool,
    upgrade: &Upgrade,
    link: &mut Option<Box<relay::Link>>,
    shared: &Shared,
) -> Option<Cmd> {
    let (conn, dialect) = (upgrade.conn, &upgrade.dialect);
    let taken = match upgrade.relay.as_deref() {
        Some(head) => relay::text(link, head, text, allowed, conn, dialect, shared),
        None => Taken::Local,
    };
    match taken {
        Taken::Handled(cmd) => cmd,
        Taken::Local => {
            if allowed && held_send(out, conn, text, dialect) {
                return None;
            }
            let parsed = engine::text_command(conn, text, dialect);
            gate::decide(allowed, conn, parsed, shared)
        }
    }
}

/// Holds a `send` to a room token written as ThunderJS writes it (`request::send_to_token`)
/// without making a command of it; false for any other frame, which goes through
/// `engine::text_command`. Out of line, with a frame of its own that is not deeper than the
/// parser's. A failure to send what was held before is met at the next read.
#[inline(never)]
fn held_send(out: &mut Handoff, conn: ConnId, text: &str, dialect: &Dialect) -> bool {
    let Dialect::Messenger(names) = dialect else {
        return false;
    };
    if !out.hold {
        return false;
    }
    let Some((id, token, message)) = request::send_to_token(text, names) else {
        return false;
    };
    let tx = &out.tx;
    let _ = out.held.hand_send(conn, id, token, message, |c| tx.send(c));
    true
}

/// No answer to the idle ping, or the server is stopping: close 1001.
#[cold]
#[inline(never)]
fn idle_end(conn: ConnId, shared: &Shared, log: &mut Option<Box<WsLog>>) {
    let (reason, ended) = if shared.stopping.load(Ordering::Relaxed) {
        ("server stopping", Ended::Stopping)
    } else {
        ("idle timeout: no answer to ping", Ended::IdleTimeout)
    };
    let reason = reason.into();
    let _ = shared.tx.send(Command::Close {
        conn,
        code: 1001,
        reason,
    });
    connlog::ws_closed(conn, log, ended); // log: close
}

/// The WebSocket ended with `error`: closes it with the matching code where one applies.
/// `client_code` is set when the client sent a close frame (with its code, if any). A client
/// that just stopped (its input ended without a close frame) is answered 1002 as before, and
/// logged as dropped.
#[cold]
#[inline(never)]
fn read_end(
    error: WsError,
    conn: ConnId,
    shared: &Shared,
    client_code: Option<Option<u16>>,
    log: &mut Option<Box<WsLog>>,
) {
    let (code, reason, ended) = match error {
        WsError::Capacity(e) => {
            let limit = shared.config.max_message_size;
            let why = format!("message too big (limit {limit} bytes): {e}");
            (1009, why, Ended::TooBig)
        }
        WsError::Utf8(_) => (1007, "text frame is not valid UTF-8".into(), Ended::NotUtf8),
        WsError::Protocol(e @ ProtocolError::ResetWithoutClosingHandshake) => {
            let why = format!("protocol error: {e}");
            (1002, why, Ended::Dropped("connection reset".into()))
        }
        WsError::Protocol(e) => {
            let why = format!("protocol error: {e}");
            (1002, why, Ended::Protocol(e.to_string()))
        }
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            let ended = match client_code {
                Some(code) => Ended::ClientClosed(code),
                None if shared.stopping.load(Ordering::Relaxed) => Ended::Stopping,
                None => Ended::Dropped("connection closed".into()),
            };
            return connlog::ws_closed(conn, log, ended); // log: close
        }
        // Sending what was held before a read fails once the dispatcher has stopped.
        _ if shared.stopping.load(Ordering::Relaxed) => {
            return connlog::ws_closed(conn, log, Ended::Stopping); // log: close
        }
        e => return connlog::ws_closed(conn, log, Ended::Dropped(e.to_string())), // log: close
    };
    let _ = shared.tx.send(Command::Close { conn, code, reason });
    connlog::ws_closed(conn, log, ended); // log: close
}

/// The server side of the WebSocket over `read`, on the heap; it reads frames the client did
/// not mask when `unmasked_ok` (else they close it with 1002), and holds `send`s when `hold`
/// (`ReaderStream::held`). Out of line: the socket is
/// built on the stack before it is boxed, and that frame must not stay resident.
#[inline(never)]
fn server_side<R: Read>(
    read: R,
    leftover: Vec<u8>,
    conn: ConnId,
    shared: &Shared,
    unmasked_ok: bool,
    hold: bool,
) -> Box<WebSocket<ReaderStream<R>>> {
    let config = &shared.config;
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_message_size))
        .accept_unmasked_frames(unmasked_ok);
    let mut scan = FrameScan::default();
    scan.feed(&leftover);
    let reader = ReaderStream {
        read,
        conn,
        ahead: ReadAhead::default(),
        scan,
        answered: 0,
        pong_due: false,
        closed: false,
        pong_allowed: true,
        read_at: Instant::now(),
        out: Handoff {
            tx: shared.tx.clone(),
            held: Default::default(),
            hold,
        },
    };
    Box::new(WebSocket::from_partially_read(
        reader,
        leftover,
        Role::Server,
        Some(ws_config),
    ))
}

/// The refusal of a binary frame.
#[inline(never)]
fn binary_refused(conn: ConnId) -> Cmd {
    let error = RpcError::InvalidRequest(
        "binary frames are not supported; send JSON-RPC in text frames".into(),
    );
    Command::Refused {
        conn,
        rejection: Box::new(Rejection {
            id: "null".into(),
            error,
            answer: true,
        }),
    }
}

#[cfg(test)]
mod tests;
