//! The engine's Messenger calls: a checked `request::Call` from a WebSocket or over HTTP,
//! carried out on the rooms (`execute`, `extension`) and answered in the configured dialect
//! (`answer`). A new Messenger method is parsed in `request.rs` and carried out here.

use std::time::Instant;

use super::Engine;
use crate::acl::Origin;
use crate::config::Compat;
use crate::error::RpcError;
use crate::logline;
use crate::outbox::Socket;
use crate::request::{Call, Id, Method, METHODS};
use crate::room_token::RoomToken;
use crate::rooms::{ConnId, Join, Owner, Sink, NO_SLOT};
use crate::wire;

/// Who makes a call: a WebSocket connection or the HTTP caller, its origin, whether it is
/// trusted.
#[derive(Clone, Copy)]
struct Caller<'a> {
    owner: Owner,
    origin: Option<&'a Origin>,
    admin: bool,
}

impl Caller<'_> {
    /// The caller's connection, for what only a WebSocket can do (hear events, have
    /// memberships of its own); over HTTP, the error that says so.
    fn conn(&self, method: &Method) -> Result<ConnId, RpcError> {
        match (self.owner, method) {
            (Owner::WebSocket(conn), _) => Ok(conn),
            (Owner::Http, Method::WhoAmI) => Err(RpcError::InvalidRequest(
                "whoami names a WebSocket's memberships; over HTTP there is no connection".into(),
            )),
            (Owner::Http, _) => Err(RpcError::InvalidRequest(
                "notifications cannot be delivered over HTTP; register on a WebSocket (/jsonrpc)"
                    .into(),
            )),
        }
    }
}

/// A successful call, before it is shaped for the dialect.
pub(super) enum Done {
    Joined(RoomToken),
    Registered,
    Json(&'static str),
    /// A result built for this call (room status, lists).
    Text(String),
}

impl<S: Socket> Engine<S> {
    /// Carries out a WebSocket client's call and queues its response if it has an id. The
    /// common answer (`send`'s `null`) goes into the frame in pieces, with no text of its own.
    pub(super) fn call(&mut self, conn: ConnId, call: Call) {
        // Only joins, listens and room status look at the origin; copy it for those alone.
        let origin = match call.method {
            Method::Join { .. } | Method::Listen { .. } | Method::RoomStatus { .. } => {
                self.origins.get(&conn).map(|o| (**o).clone())
            }
            _ => None,
        };
        let caller = Caller {
            owner: Owner::WebSocket(conn),
            origin: origin.as_ref(),
            admin: self.trusted.contains(&conn),
        };
        let outcome = self.execute(caller, &call.method);
        self.respond(conn, call.id, outcome);
    }

    /// `Command::Send`: what `call` does for `Method::Send` with a token, without the `Call`.
    pub(super) fn send(
        &mut self,
        conn: ConnId,
        id: Option<Id>,
        token: RoomToken,
        message: &str,
        plain: bool,
    ) {
        let outcome = self
            .rooms
            .send_from(Some(token), message, plain, &mut self.out);
        self.respond(conn, id, outcome.map(|()| Done::Json("null")));
    }

    /// Queues the response to a WebSocket client's call, if it has an id.
    fn respond(&mut self, conn: ConnId, id: Option<Id>, outcome: Result<Done, RpcError>) {
        match (id, outcome) {
            (Some(id), Ok(Done::Json("null"))) => match wire::null_result_frame(id.as_bytes()) {
                Some((frame, n)) => self.out.send_frame(NO_SLOT, conn, &frame[..n]),
                None => self.out.send(conn, &wire::null_result_parts(&id)),
            },
            (Some(id), Ok(Done::Json(result))) => {
                self.out.send(conn, &wire::result_parts(&id, result));
            }
            (id, outcome) => {
                if let Some(text) = self.answer(id, outcome) {
                    self.out.send(conn, &[&text]);
                }
            }
        }
    }

    /// Carries out a call made over HTTP at `now`: memberships belong to no connection and
    /// last until left or unused for the configured time.
    pub(super) fn http_call(
        &mut self,
        call: Call,
        origin: Option<Origin>,
        admin: bool,
        now: Instant,
    ) -> Option<String> {
        let caller = Caller {
            owner: Owner::Http,
            origin: origin.as_ref(),
            admin,
        };
        let outcome = self.execute(caller, &call.method);
        let expires = now + self.http_ttl;
        match (&call.method, &outcome) {
            (_, Ok(Done::Joined(token))) => self.rooms.touch_token(*token, expires),
            (Method::Send { roomid, .. }, Ok(_)) => {
                if let Some(token) = roomid.token() {
                    self.rooms.touch_token(token, expires);
                }
            }
            (Method::SendTo { roomid, .. } | Method::Whisper { roomid, .. }, Ok(_)) => {
                self.rooms.touch(roomid, expires)
            }
            _ => {}
        }
        self.answer(call.id, outcome)
    }

    /// The response text for a call with an id; nothing for a notification.
    fn answer(&self, id: Option<Id>, outcome: Result<Done, RpcError>) -> Option<String> {
        let id = id?;
        let r5 = self.compat == Compat::R5;
        Some(match outcome {
            Ok(Done::Joined(token)) if r5 => wire::result(&id, &format!("\"{token}\"")),
            Ok(Done::Joined(token)) => wire::result(&id, &format!(r#"{{"roomid":"{token}"}}"#)),
            Ok(Done::Registered) => wire::result(&id, if r5 { "null" } else { "0" }),
            Ok(Done::Json(result)) => wire::result(&id, result),
            Ok(Done::Text(result)) => wire::result(&id, &result),
            Err(e) => wire::error(&id, &e, self.compat),
        })
    }

    /// The method itself: Thunder's Messenger API.
    fn execute(&mut self, caller: Caller, method: &Method) -> Result<Done, RpcError> {
        if let Some(join) = Join::from_call(method, caller.origin) {
            let joined = self.rooms.join(caller.owner, &join, &mut self.out);
            if joined.is_ok() {
                logline::joined(caller.owner, join.user, join.room); // log: debug
            }
            return joined.map(Done::Joined);
        }
        match method {
            Method::Leave { roomid } => {
                if log::log_enabled!(log::Level::Debug) {
                    let member = RoomToken::parse(roomid).and_then(|t| self.rooms.member(t));
                    logline::left(caller.owner, member); // log: debug
                }
                self.rooms
                    .leave(roomid, &mut self.out)
                    .map(|()| Done::Json("null"))
            }
            Method::Send {
                roomid,
                message,
                plain,
            } => self
                .rooms
                .send_from(roomid.token(), message, *plain, &mut self.out)
                .map(|()| Done::Json("null")),
            Method::Register { event, id } => self
                .rooms
                .register(caller.conn(method)?, *event, id, &mut self.out)
                .map(|()| Done::Registered),
            Method::Unregister { event, id } => self
                .rooms
                .unregister(caller.conn(method)?, *event, id)
                .map(|()| Done::Registered),
            Method::Exists { method } => Ok(Done::Json(if METHODS.contains(&method.as_str()) {
                "true"
            } else {
                "false"
            })),
            Method::Versions => Ok(Done::Json(
                r#"[{"name":"JMessenger","major":1,"minor":0,"patch":0}]"#,
            )),
            Method::Controller(call) => self.controller(caller.conn(method), call),
            method => self.extension(caller, method),
        }
    }

    /// The extension methods (SPEC §5).
    fn extension(&mut self, caller: Caller, method: &Method) -> Result<Done, RpcError> {
        let out = &mut self.out;
        let rooms = &mut self.rooms;
        let null = |()| Done::Json("null");
        match method {
            Method::Listen { room, id } => rooms
                .listen(caller.conn(method)?, room, id, caller.origin, out)
                .map(|()| Done::Registered),
            Method::Silence { room, id } => rooms
                .silence(caller.conn(method)?, room, id)
                .map(|()| Done::Registered),
            Method::RoomStatus { room } => rooms.status(room, caller.origin).map(Done::Text),
            Method::Rooms => Ok(Done::Text(rooms.list())),
            Method::WhoAmI => Ok(Done::Text(rooms.whoami(caller.conn(method)?))),
            Method::SendTo {
                roomid,
                user,
                message,
            } => rooms
                .send_to(roomid, user, message, out)
                .map(|n| Done::Text(n.to_string())),
            Method::Whisper {
                roomid,
                to,
                message,
            } => rooms.whisper(roomid, to, message, out).map(null),
            Method::IsOnline { user } => Ok(Done::Json(if rooms.is_online(user) {
                "true"
            } else {
                "false"
            })),
            Method::Announce { room, message } => {
                trusted(caller, "announce")?;
                rooms
                    .announce(room, &self.server_json, message, out)
                    .map(null)
            }
            Method::Evict { room, user } => {
                trusted(caller, "evict")?;
                rooms.evict(room, user, out).map(null)
            }
            _ => Err(RpcError::MethodNotFound("not an extension method".into())),
        }
    }
}

/// Refuses `announce` and `evict` from a caller that did not present the `admin_token`.
fn trusted(caller: Caller, method: &str) -> Result<(), RpcError> {
    if caller.admin {
        return Ok(());
    }
    Err(RpcError::Privileged(format!(
        "{method} is for trusted local callers: present the admin_token setting as the header X-Messenger-Admin or ?admin= on the connection"
    )))
}
