//! The engine's edge, run on each connection's thread: one WebSocket text frame becomes a
//! `Command` (the checked call, or the refusal to answer), read by the connection's dialect
//! and held to its byte caps. The engine never sees unchecked JSON.

use super::Command;
use crate::caps::Caps;
use crate::kurento;
use crate::request::{self, Call, Designators, Method, Rejection};
use crate::room_token::RoomId;
use crate::rooms::ConnId;

/// What a WebSocket speaks, fixed by its upgrade.
#[derive(Debug, Clone)]
pub enum Dialect {
    /// Thunder's Messenger JSON-RPC on `/jsonrpc`, with how designators are read there (and
    /// the byte caps).
    Messenger(Designators),
    /// The Kurento room API on `/room`, with the byte caps.
    Kurento(Caps),
}

impl Dialect {
    /// Whether this is the Kurento room dialect.
    pub fn is_kurento(&self) -> bool {
        matches!(self, Dialect::Kurento(_))
    }
}

/// What one text frame asks of the engine: the checked call, or the edge's refusal (which
/// `refused` turns into the command answering it). Parsing is the deepest work a connection
/// thread does, and every stack page it touches stays resident for the connection's life, so
/// this adds no frame of its own to the parse path (see `connection.rs`).
#[inline(always)]
pub fn text_command<S, R>(
    conn: ConnId,
    text: &str,
    dialect: &Dialect,
) -> Result<Command<S, R>, Rejection> {
    match dialect {
        Dialect::Messenger(names) => request::parse(text, names).map(|call| command(conn, call)),
        Dialect::Kurento(caps) => kurento_parse(text, caps).map(|call| Command::Kurento {
            conn,
            call: Box::new(call),
        }),
    }
}

/// The command for a Messenger call: a `send` to a room token unboxed (`Command::Send`), any
/// other call boxed.
#[inline(always)]
fn command<S, R>(conn: ConnId, call: Call) -> Command<S, R> {
    match call {
        Call {
            id,
            method:
                Method::Send {
                    roomid: RoomId::Token(token),
                    message,
                    plain,
                },
        } => Command::Send {
            conn,
            id,
            token,
            message: message.into_boxed_str(),
            plain,
        },
        call => Command::Call {
            conn,
            call: Box::new(call),
        },
    }
}

/// `kurento::parse` in a frame of its own: inlined into the reader's loop it makes that frame,
/// resident on every connection, about 700 bytes larger (measured on x86_64).
#[inline(never)]
fn kurento_parse(text: &str, caps: &Caps) -> Result<kurento::Call, Rejection> {
    kurento::parse(text, caps)
}

/// The command answering a request refused at the edge; `None` for a notification.
#[inline(never)] // off the parse path's frames
pub fn refused<S, R>(conn: ConnId, rejection: Rejection) -> Option<Command<S, R>> {
    rejection.answer.then(|| Command::Refused {
        conn,
        rejection: Box::new(rejection),
    })
}
