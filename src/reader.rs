//! The frame reader: a WebSocket's incoming frames, read with tungstenite until the connection
//! ends. Each text frame becomes a command for the dispatcher (checked at the edge, charged to
//! the rate limit); pings are answered and bad frames closed through the dispatcher, so every
//! byte the client is sent stays in order.

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;

use crossbeam_channel::Sender;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Error as WsError, Message, WebSocket};

use crate::connection::Shared;
use crate::dispatcher::Cmd;
use crate::engine::{self, Command};
use crate::error::RpcError;
use crate::gate;
use crate::request::Rejection;
use crate::rooms::ConnId;
use crate::upgrade::Upgrade;

/// The socket as tungstenite sees it on the reader thread: reads come from the socket;
/// writes (pongs, close replies) are handed to the dispatcher so they stay in order with
/// everything else the client is sent.
struct ReaderStream<R> {
    read: R,
    conn: ConnId,
    tx: Sender<Cmd>,
}

impl<R: Read> Read for ReaderStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read.read(buf)
    }
}

impl<R> Write for ReaderStream<R> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .send(Command::Raw {
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

/// Reads frames from `read` (after the `leftover` bytes that came with the upgrade request)
/// until the WebSocket ends. A read that times out (`idle_timeout`) sends a ping; a second one
/// in a row closes with 1001. Inlined into the WebSocket phase: see `connection.rs`.
#[inline(always)]
pub fn read_frames<R: Read>(
    read: R,
    leftover: Vec<u8>,
    conn: ConnId,
    upgrade: &Upgrade,
    shared: &Shared,
) {
    let config = &shared.config;
    let mut ws = server_side(read, leftover, conn, shared, upgrade.unmasked_ok);
    let close = |code: u16, reason: String| {
        let _ = shared.tx.send(Command::Close { conn, code, reason });
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
                let parsed = engine::text_command(conn, text.as_str(), &upgrade.dialect);
                match gate::decide(allowed, conn, parsed, shared) {
                    Some(cmd) => cmd,
                    None => continue,
                }
            }
            Message::Binary(_) => binary_refused(conn),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Close(_) => continue,
        };
        if shared.tx.send(cmd).is_err() {
            return;
        }
    }
}

/// The server side of the WebSocket over `read`, on the heap; it reads frames the client did
/// not mask when `unmasked_ok` (else they close it with 1002). Out of line: the socket is
/// built on the stack before it is boxed, and that frame must not stay resident.
#[inline(never)]
fn server_side<R: Read>(
    read: R,
    leftover: Vec<u8>,
    conn: ConnId,
    shared: &Shared,
    unmasked_ok: bool,
) -> Box<WebSocket<ReaderStream<R>>> {
    let config = &shared.config;
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_message_size))
        .accept_unmasked_frames(unmasked_ok);
    let reader = ReaderStream {
        read,
        conn,
        tx: shared.tx.clone(),
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
