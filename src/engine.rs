//! The engine: the protocol's state machine, owning every room, membership and registration
//! and every client's outbox. It takes one `Command` at a time with the clock passed in, and
//! writes what each command causes (replies, events, close frames) into the outboxes. No
//! channel, thread, socket type or clock of its own, so a test drives it from memory.
//!
//! How it is driven (the binary's `dispatcher.rs` does exactly this): apply up to `BATCH`
//! commands, then `work` once (memberships queued to leave, `WORK` deliveries at most) and
//! `flush` the outboxes once; while `work` says more is queued, go on without waiting for a
//! command; flush again at `next_retry` while some socket is stalled (each on its own back-off,
//! `outbox.rs`); apply `Command::Tick` every `SWEEP`. `Command::Http` and `Command::Health` are answered with
//! what `apply` returns, handed back to the asker through the command's `R`.
//!
//! The calls themselves are in `engine/calls.rs` (Messenger, over WebSocket and HTTP) and
//! `engine/kurento_calls.rs` (the Kurento room dialect); `engine/edge.rs` turns one text frame
//! into a command on the connection's thread.

mod calls;
mod controller_calls;
mod edge;
mod held;
mod kurento_calls;

pub use edge::{refused, text_command, Dialect};
pub use held::{Held, Sends, HELD_BYTES, HELD_SENDS};

use std::time::{Duration, Instant};

use crate::acl::Origin;
use crate::config::{Compat, Config};
use crate::error::RpcError;
use crate::idmap::{IdMap, IdSet};
use crate::kurento;
use crate::logline;
use crate::outbox::{Outboxes, Policy, Socket};
use crate::request::{Call, Id, Rejection};
use crate::room_token::RoomToken;
use crate::rooms::{self, ConnId, Join, Limits, Owner, Rooms, Sink};
use crate::wire;

/// Commands the dispatcher's inbox (one bounded channel, its memory allocated as commands
/// queue) holds before connection threads wait: the back-pressure on a flooding client.
pub const INBOX: usize = 1024;
/// Commands applied at most per wake-up before the outboxes are written: large enough that a
/// flood is written in few syscalls, small enough to keep replies prompt.
pub const BATCH: usize = 512;
/// How often `Command::Tick` sweeps expired HTTP memberships.
pub const SWEEP: Duration = Duration::from_secs(1);
/// Deliveries `work` makes at most per call for memberships ending many at once (a gone
/// connection's, expired HTTP ones): about half a millisecond of the dispatcher's time in
/// release on x86-64 (`tests/call_time.rs`), a few on armv7.
pub const WORK: usize = 8_000;
/// How long a stopping server goes on writing close frames before it exits.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// What the engine is asked to do. `S` is the write half of a client's socket; `R` is how an
/// answer goes back to whoever asked (`Http`, `Health`): a one-shot channel in the binary,
/// `()` in a test, which reads the answer from `apply`'s return.
pub enum Command<S, R> {
    /// A WebSocket is open: its write half, and its origin (from a token or `Origin`).
    /// `kurento`: it speaks the Kurento room dialect (`/room`). `admin`: it presented the
    /// `admin_token` from a loopback address.
    Open {
        conn: ConnId,
        socket: S,
        origin: Option<Box<Origin>>,
        kurento: bool,
        admin: bool,
    },
    /// A checked call from a Messenger WebSocket client.
    Call { conn: ConnId, call: Box<Call> },
    /// The commonest call, `send` to a room token, carried whole rather than boxed: one
    /// allocation less per message made on the connection's thread and freed on this one
    /// (`edge::text_command`).
    Send {
        conn: ConnId,
        id: Option<Id>,
        token: RoomToken,
        message: Box<str>,
        /// As `Method::Send`'s.
        plain: bool,
    },
    /// `send`s to room tokens that one read from a client's socket brought, in order: what
    /// as many `Send`s would do, handed over as one (`engine/held.rs`).
    Sends { conn: ConnId, sends: Sends },
    /// A checked call from a Kurento room client.
    Kurento {
        conn: ConnId,
        call: Box<kurento::Call>,
    },
    /// A request refused at the edge (malformed, over the rate limit, a binary frame): its
    /// error is answered in the connection's dialect.
    Refused {
        conn: ConnId,
        rejection: Box<Rejection>,
    },
    /// Frame bytes from the client's reader side (pong, close reply), kept in order.
    Raw { conn: ConnId, bytes: Vec<u8> },
    /// Relay mode: a text frame for the client from the upstream (Thunder's reply or event,
    /// unchanged), or the error for a relayed request it did not answer; queued in order with
    /// everything else the client is sent.
    Relayed { conn: ConnId, text: String },
    /// Close the WebSocket with this code (bad frame, too big, idle).
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    /// The connection's reader has ended: leave its rooms, end its registrations, drop its
    /// outbox.
    Gone { conn: ConnId },
    /// A call made over `POST /jsonrpc` (or its refusal at the edge): answered with
    /// `Answer::Http`, the response text (none for a notification).
    Http {
        call: Box<Result<Call, Rejection>>,
        origin: Option<Box<Origin>>,
        admin: bool,
        reply: R,
    },
    /// Numbers for `GET /health`: answered with `Answer::Health`.
    Health { reply: R },
    /// Time has passed: HTTP memberships unused since `now - http_membership_ttl` leave.
    Tick,
    /// The server is stopping: every client is sent close 1001. The caller writes what it
    /// can within `SHUTDOWN_GRACE` and stops applying commands.
    Shutdown,
}

/// What `apply` hands back to the asker of a `Command::Http` or `Command::Health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The HTTP response body; `None` for a notification (204).
    Http(Option<String>),
    Health(Health),
}

/// The engine's part of `GET /health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    pub rooms: usize,
    pub members: usize,
    pub queued_bytes: usize,
    /// What clients make the server hold, as counted against `max_memory_bytes`: room state
    /// and the queues' buffers.
    pub memory_bytes: usize,
}

/// How many of each thing the engine holds (`Engine::census`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Census {
    pub rooms: rooms::Census,
    /// Connections with an outbox (open WebSockets).
    pub outboxes: usize,
    /// Connections with an origin.
    pub origins: usize,
    /// Connections that presented the `admin_token`.
    pub trusted: usize,
    /// Kurento sessions.
    pub sessions: usize,
    /// The heap bytes of the outboxes' queues, as kept up to date (counted against
    /// `max_memory_bytes` with `rooms.memory`).
    pub queues: usize,
    /// The same summed again from every queue (`queues` when consistent).
    pub queues_recount: usize,
    /// The Controller's event registrations (`Census::rooms.indexed_elsewhere` when
    /// consistent).
    pub controller_registrations: usize,
}

/// The engine's state.
pub struct Engine<S> {
    rooms: Rooms,
    out: Outboxes<S>,
    /// Origins of the WebSocket connections that have one (kept sparse: most have none).
    origins: IdMap<ConnId, Box<Origin>>,
    /// Connections that presented the `admin_token` (`announce`, `evict`).
    trusted: IdSet<ConnId>,
    /// Kurento sessions' ids.
    sessions: IdMap<ConnId, String>,
    /// The Controller's event registrations, per connection (`engine/controller_calls.rs`).
    watches: IdMap<ConnId, Vec<controller_calls::Registration>>,
    /// The `callsign` setting: Messenger's name in the Controller's answers.
    callsign: String,
    compat: Compat,
    http_ttl: Duration,
    /// The `default_room` setting; empty for none.
    default_room: String,
    /// The `server_name` setting as a JSON string literal.
    server_json: String,
    /// Deliveries memberships queued to leave may still make this turn (`WORK` a turn).
    turn_left: usize,
    /// Relay mode (`upstream` set): Thunder's Controller speaks for itself, so a `statechange`
    /// registration here replays only Messenger's state.
    relay: bool,
}

impl<S: Socket> Engine<S> {
    /// An engine with no rooms and no clients, its clock starting at `now`.
    pub fn new(config: &Config, now: Instant) -> Engine<S> {
        let limits = Limits {
            max_rooms: config.max_rooms,
            max_members_per_room: config.max_members_per_room,
            max_memberships_per_connection: config.max_memberships_per_connection,
            max_registrations_per_connection: config.max_registrations_per_connection,
            max_http_memberships: config.max_http_memberships,
            max_memory_bytes: config.max_memory_bytes,
        };
        Engine {
            rooms: Rooms::new(limits)
                .with_history(config.history, config.history_bytes)
                .with_compat(config.compat)
                .with_connections(config.max_connections),
            out: Outboxes::new(
                Policy {
                    limit: config.max_outbound_bytes,
                    slow_after: config.slow_client_timeout,
                    budget: config.max_memory_bytes,
                },
                now,
            )
            .with_connections(config.max_connections),
            origins: IdMap::default(),
            trusted: IdSet::default(),
            sessions: IdMap::default(),
            watches: IdMap::default(),
            callsign: config.callsign.clone(),
            compat: config.compat,
            http_ttl: config.http_membership_ttl,
            default_room: config.default_room.clone(),
            server_json: wire::json_string(&config.server_name),
            turn_left: WORK,
            relay: !config.upstream.is_empty(),
        }
    }

    /// Carries out one command at `now`. Returns the answer for a `Http` or `Health`
    /// command, with its `reply` for the caller to hand it back through.
    pub fn apply<R>(&mut self, cmd: Command<S, R>, now: Instant) -> Option<(R, Answer)> {
        self.out.set_clock(now, self.memory_in_rooms());
        match cmd {
            Command::Open {
                conn,
                socket,
                origin,
                kurento,
                admin,
            } => self.open(conn, socket, origin, kurento, admin),
            Command::Call { conn, call } => self.call(conn, *call),
            Command::Send {
                conn,
                id,
                token,
                message,
                plain,
            } => self.send(conn, id, token, &message, plain),
            Command::Sends { conn, sends } => sends.each(|s| {
                // As for a command of its own: the budget sees the history the last one added.
                self.out.set_clock(now, self.memory_in_rooms());
                self.send(conn, s.id, s.token, s.message, s.plain);
            }),
            Command::Kurento { conn, call } => {
                if let Some(text) = self.kurento(conn, *call) {
                    self.out.send(conn, &[&text]);
                }
            }
            Command::Refused { conn, rejection } => self.refused(conn, &rejection),
            Command::Raw { conn, bytes } => self.out.raw(conn, &bytes),
            Command::Relayed { conn, text } => self.out.send(conn, &[&text]),
            Command::Close { conn, code, reason } => self.out.close(conn, code, &reason),
            Command::Gone { conn } => self.gone(conn),
            Command::Http {
                call,
                origin,
                admin,
                reply,
            } => {
                let answer = match *call {
                    Ok(call) => self.http_call(call, origin.map(|o| *o), admin, now),
                    Err(rejection) => rejection
                        .answer
                        .then(|| wire::error(&rejection.id, &rejection.error, self.compat)),
                };
                return Some((reply, Answer::Http(answer)));
            }
            Command::Health { reply } => return Some((reply, Answer::Health(self.health()))),
            Command::Tick => {
                self.rooms.expire(now);
                self.leave_some();
                self.out.release();
            }
            Command::Shutdown => self.out.close_all("server shutting down"),
        }
        None
    }

    /// Writes what each client has queued, without blocking, and tries again the stalled
    /// sockets whose retry is due at `now`.
    pub fn flush(&mut self, now: Instant) {
        self.out.set_clock(now, self.memory_in_rooms());
        self.out.flush(now);
    }

    /// Ends the turn: more of the memberships queued to leave (a gone connection's, expired
    /// HTTP ones) leave, within what is left of this turn's `WORK` deliveries, and the next turn
    /// starts with all of them; whether some are still queued (call again soon, without
    /// waiting for a command).
    pub fn work(&mut self, now: Instant) -> bool {
        if self.rooms.leaving() {
            self.out.set_clock(now, self.memory_in_rooms());
            self.leave_some();
        }
        self.turn_left = WORK;
        self.rooms.leaving()
    }

    /// Memberships queued to leave go, as many as this turn's deliveries left allow: a small
    /// disconnect is over at once, in order with the commands around it.
    fn leave_some(&mut self) {
        self.turn_left -= self.rooms.work(self.turn_left, &mut self.out);
    }

    /// When a stalled socket is next to be tried (`flush` then); `None` when none is stalled.
    pub fn next_retry(&self) -> Option<Instant> {
        self.out.next_retry()
    }

    /// Whether some client has bytes its socket would not take yet.
    pub fn has_stalled(&self) -> bool {
        self.out.has_stalled()
    }

    /// What room state holds, as counted against `max_memory_bytes`.
    fn memory_in_rooms(&self) -> usize {
        self.rooms.memory()
    }

    /// The numbers for `GET /health`.
    pub fn health(&self) -> Health {
        Health {
            rooms: self.rooms.room_count(),
            members: self.rooms.member_count(),
            queued_bytes: self.out.queued(),
            memory_bytes: self.rooms.memory() + self.out.held(),
        }
    }

    /// Counts everything the engine holds (for tests: checked against a model, and for
    /// leaks once every connection has gone).
    pub fn census(&self) -> Census {
        let mut rooms = self.rooms.census();
        // The Controller's registrations are counted in the rooms' memory, kept here.
        let held = self.watches.values().flatten();
        rooms.memory_recount += held
            .map(controller_calls::Registration::cost)
            .sum::<usize>();
        Census {
            rooms,
            outboxes: self.out.len(),
            origins: self.origins.len(),
            trusted: self.trusted.len(),
            sessions: self.sessions.len(),
            queues: self.out.held(),
            queues_recount: self.out.recount(),
            controller_registrations: self.watches.values().map(Vec::len).sum(),
        }
    }

    /// A WebSocket is open: a Kurento session gets its id, a Messenger connection joins the
    /// default room if one is set.
    fn open(
        &mut self,
        conn: ConnId,
        socket: S,
        origin: Option<Box<Origin>>,
        kurento: bool,
        admin: bool,
    ) {
        self.out.open(conn, socket);
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
            match self
                .rooms
                .join(Owner::WebSocket(conn), &join, &mut self.out)
            {
                Ok(_) => return,
                Err(RpcError::IllegalState(_)) => continue,
                Err(e) => {
                    log::info!("connection {conn}: cannot join the default room: {e:?}");
                    return;
                }
            }
        }
    }

    /// Answers a request refused at the edge, in the connection's dialect (a Kurento session's
    /// errors carry no Thunder codes).
    fn refused(&mut self, conn: ConnId, rejection: &Rejection) {
        if !rejection.answer {
            return;
        }
        let compat = if self.sessions.contains_key(&conn) {
            Compat::Rdk
        } else {
            self.compat
        };
        let text = wire::error(&rejection.id, &rejection.error, compat);
        self.out.send(conn, &[&text]);
    }

    /// The connection's reader has ended.
    fn gone(&mut self, conn: ConnId) {
        let held = self.rooms.held(Owner::WebSocket(conn)).len();
        logline::gone(conn, held); // log: debug
        self.rooms.disconnect(conn);
        self.leave_some();
        self.origins.remove(&conn);
        self.trusted.remove(&conn);
        self.sessions.remove(&conn);
        if let Some(held) = self.watches.remove(&conn) {
            let bytes = held.iter().map(controller_calls::Registration::cost).sum();
            self.rooms.release_memory(bytes);
        }
        self.out.remove(conn);
    }
}
