//! The dispatcher thread: the one owner of room state and of every client's outbox. It takes
//! commands from connection threads over one bounded crossbeam channel, handles up to `BATCH`
//! of them per wake-up, and then writes each touched client once.

mod kurento_calls;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::acl::Origin;
use crate::config::{Compat, Config};
use crate::error::RpcError;
use crate::idmap::{IdMap, IdSet};
use crate::kurento;
use crate::outbox::Outboxes;
use crate::request::{Call, Method, Rejection, METHODS};
use crate::room_token::RoomToken;
use crate::rooms::{ConnId, Join, Limits, Rooms, Sink, HTTP};
use crate::wire;

/// Commands handled at most this many per wake-up before outboxes are written: large enough
/// that a flood is written in few syscalls, small enough to keep replies prompt.
const BATCH: usize = 512;
/// How often stalled outboxes are retried while some client's socket is full.
const RETRY: Duration = Duration::from_millis(2);
/// How often expired HTTP memberships are swept.
const SWEEP: Duration = Duration::from_secs(1);

/// What connection threads ask of the dispatcher.
pub enum Cmd {
    /// A WebSocket is open: its write half, and its origin (from a token or `Origin`).
    /// `kurento`: it speaks the Kurento room dialect (`/room`). `admin`: it presented the
    /// `admin_token` from a loopback address.
    Open {
        conn: ConnId,
        stream: TcpStream,
        origin: Option<Box<Origin>>,
        kurento: bool,
        admin: bool,
    },
    /// A checked call from a WebSocket client.
    Call { conn: ConnId, call: Box<Call> },
    /// A checked call from a Kurento room client.
    Kurento {
        conn: ConnId,
        call: Box<kurento::Call>,
    },
    /// A finished reply for a WebSocket client (a request refused at the edge).
    Reply { conn: ConnId, text: String },
    /// Frame bytes from the client's reader side (pong, close reply), kept in order.
    Raw { conn: ConnId, bytes: Vec<u8> },
    /// Close the WebSocket with this code (bad frame, too big, idle).
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    /// The connection's reader has ended: leave its rooms and drop its outbox.
    Gone { conn: ConnId },
    /// A call made over `POST /jsonrpc`; the response text (none for a notification) goes
    /// back on `reply`.
    Http {
        call: Box<Result<Call, Rejection>>,
        origin: Option<Box<Origin>>,
        admin: bool,
        reply: Sender<Option<String>>,
    },
    /// Numbers for `GET /health`.
    Health { reply: Sender<Health> },
    /// Close every client with 1001 and stop.
    Shutdown,
}

/// The dispatcher's part of `GET /health`.
#[derive(Debug, Clone, Copy)]
pub struct Health {
    pub rooms: usize,
    pub members: usize,
    pub queued_bytes: usize,
}

/// Who makes a call: the connection (or `HTTP`), its origin, whether it is trusted.
#[derive(Clone, Copy)]
struct Caller<'a> {
    conn: ConnId,
    origin: Option<&'a Origin>,
    admin: bool,
}

/// The dispatcher's state.
pub struct Dispatcher {
    rooms: Rooms,
    out: Outboxes,
    /// Origins of the WebSocket connections that have one (kept sparse: most have none).
    origins: IdMap<ConnId, Box<Origin>>,
    /// Connections that presented the `admin_token` (`announce`, `evict`).
    trusted: IdSet<ConnId>,
    /// Kurento sessions' ids.
    sessions: IdMap<ConnId, String>,
    compat: Compat,
    http_ttl: Duration,
    /// The `default_room` setting; empty for none.
    default_room: String,
    /// The `server_name` setting as a JSON string literal.
    server_json: String,
}

impl Dispatcher {
    pub fn new(config: &Config) -> Dispatcher {
        let limits = Limits {
            max_rooms: config.max_rooms,
            max_members_per_room: config.max_members_per_room,
            max_memberships_per_connection: config.max_memberships_per_connection,
            max_registrations_per_connection: config.max_registrations_per_connection,
        };
        Dispatcher {
            rooms: Rooms::new(limits),
            out: Outboxes::new(config.max_outbound_bytes),
            origins: IdMap::default(),
            trusted: IdSet::default(),
            sessions: IdMap::default(),
            compat: config.compat,
            http_ttl: config.http_membership_ttl,
            default_room: config.default_room.clone(),
            server_json: wire::json_string(&config.server_name),
        }
    }

    /// Runs until `Shutdown` (or until every sender is gone).
    pub fn run(mut self, rx: Receiver<Cmd>) {
        let mut next_sweep = Instant::now() + SWEEP;
        loop {
            let wait = if self.out.has_stalled() { RETRY } else { SWEEP };
            match rx.recv_timeout(wait) {
                Ok(Cmd::Shutdown) => break,
                Ok(cmd) => self.handle(cmd),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let mut stop = false;
            for cmd in rx.try_iter().take(BATCH) {
                if matches!(cmd, Cmd::Shutdown) {
                    stop = true;
                    break;
                }
                self.handle(cmd);
            }
            self.out.flush();
            let now = Instant::now();
            if now >= next_sweep {
                self.rooms.expire(now, &mut self.out);
                next_sweep = now + SWEEP;
            }
            if stop {
                break;
            }
        }
        self.stop();
    }

    /// Says goodbye to every client: close 1001, written for up to half a second.
    fn stop(&mut self) {
        self.out.close_all("server shutting down");
        let deadline = Instant::now() + Duration::from_millis(500);
        self.out.flush();
        while self.out.has_stalled() && Instant::now() < deadline {
            std::thread::sleep(RETRY);
            self.out.flush();
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Open {
                conn,
                stream,
                origin,
                kurento,
                admin,
            } => self.open(conn, stream, origin, kurento, admin),
            Cmd::Call { conn, call } => {
                let answer = self.call(conn, *call);
                if let Some(text) = answer {
                    self.out.send(conn, &[&text]);
                }
            }
            Cmd::Kurento { conn, call } => {
                if let Some(text) = self.kurento(conn, *call) {
                    self.out.send(conn, &[&text]);
                }
            }
            Cmd::Reply { conn, text } => self.out.send(conn, &[&text]),
            Cmd::Raw { conn, bytes } => self.out.raw(conn, &bytes),
            Cmd::Close { conn, code, reason } => self.out.close(conn, code, &reason),
            Cmd::Gone { conn } => {
                self.rooms.disconnect(conn, &mut self.out);
                self.origins.remove(&conn);
                self.trusted.remove(&conn);
                self.sessions.remove(&conn);
                self.out.remove(conn);
            }
            Cmd::Http {
                call,
                origin,
                admin,
                reply,
            } => {
                let answer = match *call {
                    Ok(call) => self.http_call(call, origin.map(|o| *o), admin),
                    Err(rejection) => rejection
                        .answer
                        .then(|| wire::error(&rejection.id, &rejection.error, self.compat)),
                };
                let _ = reply.send(answer);
            }
            Cmd::Health { reply } => {
                let _ = reply.send(Health {
                    rooms: self.rooms.room_count(),
                    members: self.rooms.member_count(),
                    queued_bytes: self.out.queued(),
                });
            }
            Cmd::Shutdown => {}
        }
    }

    /// A WebSocket is open: a Kurento session gets its id, a Messenger connection joins the
    /// default room if one is set.
    fn open(
        &mut self,
        conn: ConnId,
        stream: TcpStream,
        origin: Option<Box<Origin>>,
        kurento: bool,
        admin: bool,
    ) {
        self.out.open(conn, stream);
        if admin {
            self.trusted.insert(conn);
        }
        if kurento {
            match kurento::session_id() {
                Ok(id) => {
                    self.sessions.insert(conn, id);
                }
                Err(e) => {
                    log::warn!("no randomness for a Kurento session id: {e}");
                    self.out.close(conn, 1011, "no randomness for a session id");
                }
            }
        } else if !self.default_room.is_empty() {
            self.join_default(conn, origin.as_deref());
        }
        if let Some(origin) = origin {
            self.origins.insert(conn, origin);
        }
    }

    /// Joins a new Messenger connection to the default room as `guest-<conn>` (or
    /// `guest-<conn>-2`, `-3` if a member already took that name).
    fn join_default(&mut self, conn: ConnId, origin: Option<&Origin>) {
        for n in 1..=3 {
            let user = match n {
                1 => format!("guest-{conn}"),
                n => format!("guest-{conn}-{n}"),
            };
            let join = Join {
                user: &user,
                room: &self.default_room,
                secure: None,
                acl: None,
                origin,
                kurento: false,
            };
            match self.rooms.join(conn, &join, &mut self.out) {
                Ok(_) => return,
                Err(RpcError::IllegalState(_)) => continue,
                Err(e) => {
                    log::info!("connection {conn}: cannot join the default room: {e:?}");
                    return;
                }
            }
        }
    }

    /// Carries out a WebSocket client's call; the response text if the call has an id.
    fn call(&mut self, conn: ConnId, call: Call) -> Option<String> {
        // Only joins, listens and room status look at the origin; copy it for those alone.
        let origin = match call.method {
            Method::Join { .. } | Method::Listen { .. } | Method::RoomStatus { .. } => {
                self.origins.get(&conn).map(|o| (**o).clone())
            }
            _ => None,
        };
        let caller = Caller {
            conn,
            origin: origin.as_ref(),
            admin: self.trusted.contains(&conn),
        };
        let outcome = self.execute(caller, &call.method);
        self.answer(call.id, outcome)
    }

    /// Carries out a call made over HTTP: memberships belong to no connection and last
    /// until left or unused for the configured time.
    fn http_call(&mut self, call: Call, origin: Option<Origin>, admin: bool) -> Option<String> {
        let caller = Caller {
            conn: HTTP,
            origin: origin.as_ref(),
            admin,
        };
        let outcome = match &call.method {
            Method::Register { .. }
            | Method::Unregister { .. }
            | Method::Listen { .. }
            | Method::Silence { .. } => Err(RpcError::InvalidRequest(
                "notifications cannot be delivered over HTTP; register on a WebSocket (/jsonrpc)"
                    .into(),
            )),
            Method::WhoAmI => Err(RpcError::InvalidRequest(
                "whoami names a WebSocket's memberships; over HTTP there is no connection".into(),
            )),
            method => self.execute(caller, method),
        };
        let expires = Instant::now() + self.http_ttl;
        match (&call.method, &outcome) {
            (_, Ok(Done::Joined(token))) => self.rooms.touch(&token.to_string(), expires),
            (
                Method::Send { roomid, .. }
                | Method::SendTo { roomid, .. }
                | Method::Whisper { roomid, .. },
                Ok(_),
            ) => self.rooms.touch(roomid, expires),
            _ => {}
        }
        self.answer(call.id, outcome)
    }

    /// The response text for a call with an id; nothing for a notification.
    fn answer(&self, id: Option<String>, outcome: Result<Done, RpcError>) -> Option<String> {
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

    /// The method itself.
    fn execute(&mut self, caller: Caller, method: &Method) -> Result<Done, RpcError> {
        let Caller { conn, origin, .. } = caller;
        if let Some(join) = Join::from_call(method, origin) {
            return self
                .rooms
                .join(conn, &join, &mut self.out)
                .map(Done::Joined);
        }
        match method {
            Method::Leave { roomid } => self
                .rooms
                .leave(roomid, &mut self.out)
                .map(|()| Done::Json("null")),
            Method::Send { roomid, message } => self
                .rooms
                .send(roomid, message, &mut self.out)
                .map(|()| Done::Json("null")),
            Method::Register { event, id } => self
                .rooms
                .register(conn, *event, id, &mut self.out)
                .map(|()| Done::Registered),
            Method::Unregister { event, id } => self
                .rooms
                .unregister(conn, *event, id)
                .map(|()| Done::Registered),
            Method::Exists { method } => Ok(Done::Json(if METHODS.contains(&method.as_str()) {
                "true"
            } else {
                "false"
            })),
            Method::Versions => Ok(Done::Json(
                r#"[{"name":"JMessenger","major":1,"minor":0,"patch":0}]"#,
            )),
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
                .listen(caller.conn, room, id, caller.origin, out)
                .map(|()| Done::Registered),
            Method::Silence { room, id } => rooms
                .silence(caller.conn, room, id)
                .map(|()| Done::Registered),
            Method::RoomStatus { room } => rooms.status(room, caller.origin).map(Done::Text),
            Method::Rooms => Ok(Done::Text(rooms.list())),
            Method::WhoAmI => Ok(Done::Text(rooms.whoami(caller.conn))),
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

/// A successful call, before it is shaped for the dialect.
enum Done {
    Joined(RoomToken),
    Registered,
    Json(&'static str),
    /// A result built for this call (room status, lists).
    Text(String),
}
