//! The model: a small, obviously correct statement of the API (SPEC §3–5: rooms, members,
//! registrations, connection-wide registrations, listens, room history, limits and byte caps,
//! HTTP memberships that expire) and of what each action must make each client receive. Plain
//! vectors and linear scans, written from the spec, not from the engine's data structures.
//! The rules are in `reference/rules.rs` (Messenger calls, joining and leaving),
//! `reference/wide.rs` (connection-wide registrations), `reference/history.rs` (room
//! history), `reference/caps.rs` (byte caps at the edge) and `reference/kurento.rs`; the
//! frames it writes in `reference/frames.rs`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::actions::{Action, ConnId, BAD_REQUEST};

/// The events a client registers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ev {
    RoomUpdate,
    UserUpdate,
    Message,
}

impl Ev {
    pub fn name(self) -> &'static str {
        match self {
            Ev::RoomUpdate => "roomupdate",
            Ev::UserUpdate => "userupdate",
            Ev::Message => "message",
        }
    }
}

/// Counts of what the model has seen happen, for the summary.
#[derive(Debug, Default)]
pub struct Tally {
    /// Calls refused for a string over its cap.
    pub capped: usize,
    /// Replays that showed messages dropped for the history budget.
    pub dropped: usize,
    /// Joins, registrations and listens refused because room state held half the memory
    /// budget.
    pub memory_full: usize,
    /// HTTP memberships ended to make room for a new HTTP join.
    pub lru: usize,
}

/// Who holds a membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Ws(ConnId),
    Http,
}

/// The limits and settings of a case.
#[derive(Debug, Clone)]
pub struct Settings {
    pub r5: bool,
    pub default_room: Option<&'static str>,
    pub server_name: &'static str,
    pub ttl: Duration,
    pub max_rooms: usize,
    pub max_members: usize,
    pub max_memberships: usize,
    pub max_registrations: usize,
    /// Messages each room keeps (0: history off) and the bytes all rooms' history may hold.
    pub history: usize,
    pub history_bytes: usize,
    pub caps: Caps,
    /// `max_http_memberships`: a full HTTP join first ends the least recently used one.
    pub max_http: usize,
    /// `max_memory_bytes`: room state may hold half of it.
    pub memory: usize,
}

pub struct Conn {
    pub kurento: bool,
    pub origin: Option<&'static str>,
    pub admin: bool,
    pub implicit: bool,
    /// A close frame was sent: nothing more reaches it.
    pub closing: bool,
    pub session: Option<String>,
    /// Connection-wide registrations `(event, id)`, in registration order.
    pub wide: Vec<(Ev, String)>,
    /// Its Controller registrations `(event, id, index)`.
    pub controller: Vec<(&'static str, &'static str, Option<&'static str>)>,
}

pub struct Room {
    pub name: String,
    pub secure: bool,
    pub acl: Vec<&'static str>,
    /// In join order.
    pub members: Vec<usize>,
    /// `(conn, id)` in listen order.
    pub listeners: Vec<(ConnId, String)>,
    /// The messages the room's history may still hold, oldest first (`reference/history.rs`).
    pub history: Vec<Kept>,
}

pub struct Member {
    pub key: usize,
    pub room: String,
    pub user: String,
    pub owner: Owner,
    pub kurento: bool,
    /// `(conn, event, id)` in registration order.
    pub watchers: Vec<(ConnId, Ev, String)>,
    pub expires: Option<Instant>,
    /// When an HTTP membership was last used (a join, send, sendto or whisper through it),
    /// as a sequence number: the smallest is the least recently used.
    pub used: u64,
    /// Known once the engine has shown it (a join's result, `whoami`).
    pub token: Option<String>,
}

/// The whole state, and the frames the current action makes.
pub struct Model {
    pub s: Settings,
    pub conns: BTreeMap<ConnId, Conn>,
    pub rooms: Vec<Room>,
    /// In join order.
    pub members: Vec<Member>,
    /// `roomupdate` registrations `(conn, id)` in registration order.
    pub room_watchers: Vec<(ConnId, String)>,
    /// Tokens of memberships that have ended.
    pub dead_tokens: Vec<String>,
    /// The history frames the engine sent for the action being applied, by method and room
    /// (`reference/history.rs`), set by the harness before `apply`; each is checked and taken
    /// where the model replays history.
    pub observed: Observed,
    /// Where the engine misbehaved in what only the model's history checks can see.
    pub problems: Vec<String>,
    /// The history's bookkeeping (`reference/history.rs`).
    pub kept: Budget,
    /// What the model has seen happen, for the summary.
    pub tally: Tally,
    /// Room state holds half of `max_memory_bytes` (or more): new state is refused. The
    /// harness reads it off the engine before each action (its count is checked against a
    /// recount of everything it holds); the model checks which calls are refused for it.
    pub memory_full: bool,
    /// The next HTTP use's sequence number.
    pub next_use: u64,
    next_key: usize,
    next_conn: ConnId,
    out: Vec<(ConnId, Want)>,
}

/// What one action must cause: frames per connection (the reply, if any, last for its
/// connection), and the HTTP answer for an HTTP call (`Some(None)`: no body, 204).
#[derive(Debug, Default)]
pub struct Expect {
    pub frames: Vec<(ConnId, Want)>,
    pub http: Option<Option<Value>>,
}

/// Whether an origin is admitted by an ACL (the truth table of the fixed patterns and
/// origins the cases use; `ftp//x` never gets into an ACL).
fn admits(acl: &[&str], origin: Option<&str>) -> bool {
    acl.iter().any(|p| {
        matches!(
            (*p, origin),
            ("https://*.example.com", Some("https://app.example.com"))
                | ("http://localhost:*", Some("http://localhost:8080"))
        )
    })
}

/// `*` matches any run of characters; everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

impl Model {
    pub fn new(s: Settings) -> Model {
        Model {
            s,
            conns: BTreeMap::new(),
            rooms: Vec::new(),
            members: Vec::new(),
            room_watchers: Vec::new(),
            dead_tokens: Vec::new(),
            observed: Observed::new(),
            problems: Vec::new(),
            kept: Budget::default(),
            tally: Tally::default(),
            memory_full: false,
            next_use: 0,
            next_key: 0,
            next_conn: 1,
            out: Vec::new(),
        }
    }

    /// Connections that can still act (open, not closing).
    pub fn live_conns(&self) -> Vec<ConnId> {
        let live = self.conns.iter().filter(|(_, c)| !c.closing);
        live.map(|(id, _)| *id).collect()
    }

    pub fn is_kurento(&self, conn: ConnId) -> bool {
        self.conns[&conn].kurento
    }

    pub fn is_implicit(&self, conn: ConnId) -> bool {
        self.conns[&conn].implicit
    }

    /// The tokens clients have been shown, of memberships that still exist.
    pub fn known_tokens(&self) -> Vec<String> {
        self.members
            .iter()
            .filter_map(|m| m.token.clone())
            .collect()
    }

    /// The id the next `Open` gets.
    pub fn next_conn(&self) -> ConnId {
        self.next_conn
    }

    /// Learns a membership's token (a placeholder the engine filled in).
    pub fn bind_token(&mut self, key: usize, token: String) {
        match self.members.iter_mut().find(|m| m.key == key) {
            Some(m) => m.token = Some(token),
            None => self.dead_tokens.push(token),
        }
    }

    /// Learns a Kurento session's id.
    pub fn bind_session(&mut self, conn: ConnId, session: String) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(session);
        }
    }

    /// Carries out `action` at `now`; what each client must receive.
    pub fn apply(&mut self, action: &Action, now: Instant) -> Expect {
        let mut http = None;
        match action {
            Action::Open {
                kurento,
                origin,
                admin,
                implicit,
            } => self.open(*kurento, *origin, *admin, *implicit),
            Action::Call { conn, id, call, .. } => {
                let caller = Caller {
                    owner: Owner::Ws(*conn),
                    origin: self.conns[conn].origin,
                    admin: self.conns[conn].admin,
                };
                if let Some(reply) = self.call(caller, call, id, now) {
                    self.send(*conn, reply);
                }
            }
            Action::Http {
                id,
                call,
                origin,
                admin,
            } => {
                let caller = Caller {
                    owner: Owner::Http,
                    origin: *origin,
                    admin: *admin,
                };
                let reply = self.call(caller, call, id, now);
                http = Some(reply.map(|w| match w {
                    Want::Json(v) => v,
                    other => panic!("model bug: HTTP answer {other:?}"),
                }));
            }
            Action::Controller { conn, id, call, .. } => {
                http = self.controller_action(*conn, call, id);
            }
            Action::Kurento { conn, id, call } => {
                if let Some(reply) = self.kurento(*conn, call, id) {
                    self.send(*conn, reply);
                }
            }
            Action::Malformed { conn, which } => {
                let m = &super::actions::malformed()[*which];
                let answer = if self.conns[conn].kurento {
                    m.kurento.clone()
                } else {
                    m.messenger.clone()
                };
                if let Some((id, code)) = answer {
                    // Directed to Messenger (`implicit`), another callsign is no callsign at
                    // all: just an unknown method.
                    let c = &self.conns[conn];
                    let other_callsign = m.r5 == Some(-31043) && c.implicit;
                    let code = match m.r5 {
                        Some(r5) if self.s.r5 && !c.kurento && !other_callsign => r5,
                        _ => self.dialect_code(*conn, code),
                    };
                    self.send(*conn, error(id, code));
                }
            }
            Action::Limited { conn, id } => {
                let code = self.dialect_code(*conn, E::Unavailable.code(false));
                self.send(*conn, error(id.json().expect("an id"), code));
            }
            Action::Pong { conn } => self.send(*conn, Want::Pong),
            Action::Close { conn } => {
                self.send(*conn, Want::Close(1009));
                self.conns.get_mut(conn).expect("open").closing = true;
            }
            Action::Gone { conn } => self.gone(*conn),
            Action::Advance { .. } => self.expire(now),
            Action::Health => {}
        }
        Expect {
            frames: std::mem::take(&mut self.out),
            http,
        }
    }

    /// The server is stopping: every client still open hears close 1001.
    pub fn shutdown(&mut self) -> Expect {
        let open: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in open {
            self.send(conn, Want::Close(1001));
            self.conns.get_mut(&conn).expect("open").closing = true;
        }
        Expect {
            frames: std::mem::take(&mut self.out),
            http: None,
        }
    }

    /// An rdk error code as this connection's dialect writes it (Kurento sessions: rdk).
    fn dialect_code(&self, conn: ConnId, code: i64) -> i64 {
        if !self.s.r5 || self.conns[&conn].kurento {
            return code;
        }
        match code {
            BAD_REQUEST | 5 | 22 | 2 => -31000 - code,
            24 => -32604,
            other => other,
        }
    }

    /// Queues a frame for `conn`, unless it is closing.
    fn send(&mut self, conn: ConnId, want: Want) {
        let c = self
            .conns
            .get(&conn)
            .expect("model bug: a frame for a gone connection");
        if !c.closing {
            self.out.push((conn, want));
        }
    }

    fn open(&mut self, kurento: bool, origin: Option<&'static str>, admin: bool, implicit: bool) {
        let conn = self.next_conn;
        self.next_conn += 1;
        let conn_state = Conn {
            kurento,
            origin,
            admin,
            implicit,
            closing: false,
            session: None,
            wide: Vec::new(),
            controller: Vec::new(),
        };
        self.conns.insert(conn, conn_state);
        let Some(room) = self.s.default_room.filter(|_| !kurento) else {
            return;
        };
        for user in [
            format!("guest-{conn}"),
            format!("guest-{conn}-2"),
            format!("guest-{conn}-3"),
        ] {
            let join = Join {
                owner: Owner::Ws(conn),
                user: &user,
                room,
                secure: None,
                acl: None,
                origin,
                kurento: false,
            };
            match self.join(&join) {
                Err(JoinE::Taken) => continue,
                _ => return,
            }
        }
    }

    /// The connection's reader has ended: its registrations (connection-wide ones too) and
    /// listens end, then its memberships leave.
    fn gone(&mut self, conn: ConnId) {
        self.conns.get_mut(&conn).expect("open").wide.clear();
        self.room_watchers.retain(|(c, _)| *c != conn);
        for m in &mut self.members {
            m.watchers.retain(|(c, _, _)| *c != conn);
        }
        for r in &mut self.rooms {
            r.listeners.retain(|(c, _)| *c != conn);
        }
        let held: Vec<usize> = self.held(Owner::Ws(conn));
        for key in held {
            self.remove_member(key);
        }
        self.conns.remove(&conn);
    }

    /// HTTP memberships unused until `now` leave, the least recently used first (each hears
    /// the leaves of those before it).
    fn expire(&mut self, now: Instant) {
        let mut stale: Vec<(u64, usize)> = self
            .members
            .iter()
            .filter(|m| m.owner == Owner::Http && m.expires.is_some_and(|e| e <= now))
            .map(|m| (m.used, m.key))
            .collect();
        stale.sort_unstable();
        for (_, key) in stale {
            self.remove_member(key);
        }
    }

    /// The memberships an owner holds, in join order.
    pub fn held(&self, owner: Owner) -> Vec<usize> {
        let mine = self.members.iter().filter(|m| m.owner == owner);
        mine.map(|m| m.key).collect()
    }

    pub fn member(&self, key: usize) -> &Member {
        self.members.iter().find(|m| m.key == key).expect("member")
    }

    pub fn room(&self, name: &str) -> Option<&Room> {
        self.rooms.iter().find(|r| r.name == name)
    }

    fn room_mut(&mut self, name: &str) -> &mut Room {
        self.rooms
            .iter_mut()
            .find(|r| r.name == name)
            .expect("room")
    }

    /// The live membership a token names.
    pub fn by_token(&self, token: &str) -> Option<usize> {
        let m = self
            .members
            .iter()
            .find(|m| m.token.as_deref() == Some(token));
        m.map(|m| m.key)
    }

    /// How many registrations (connection-wide ones too) and listens `conn` holds (they share
    /// one limit).
    fn registrations(&self, conn: ConnId) -> usize {
        let watches = self.members.iter().flat_map(|m| &m.watchers);
        let listens = self.rooms.iter().flat_map(|r| &r.listeners);
        self.conns.get(&conn).map_or(0, |c| c.wide.len())
            + watches.filter(|(c, _, _)| *c == conn).count()
            + self
                .room_watchers
                .iter()
                .filter(|(c, _)| *c == conn)
                .count()
            + listens.filter(|(c, _)| *c == conn).count()
            + self.conns.get(&conn).map_or(0, |c| c.controller.len())
    }

    /// A room event to every member (Thunder ones through their registrations for `ev`,
    /// Kurento ones directly as `kurento`), to the room's listeners, and to the
    /// connection-wide registrations of the connections in it.
    fn tell_room(&mut self, room: &str, ev: Ev, params: &Value, kurento: &Value) {
        let members = self.room(room).expect("room").members.clone();
        self.tell_members(&members, ev, params, kurento);
        let listeners = self.room(room).expect("room").listeners.clone();
        for (conn, id) in listeners {
            self.send(
                conn,
                notification(format!("{id}.{}", ev.name()), params.clone()),
            );
        }
        let conns = self.conns_in(room);
        self.tell_wide(&conns, room, ev, params);
    }

    fn tell_members(&mut self, keys: &[usize], ev: Ev, params: &Value, kurento: &Value) {
        for key in keys {
            let m = self.member(*key);
            if m.kurento {
                let Owner::Ws(conn) = m.owner else {
                    panic!("model bug: a Kurento member over HTTP")
                };
                self.send(conn, Want::Json(kurento.clone()));
                continue;
            }
            let watchers: Vec<_> = m.watchers.iter().filter(|w| w.1 == ev).cloned().collect();
            for (conn, _, id) in watchers {
                let method = format!("{id}.{}", ev.name());
                self.send(conn, notification(method, params.clone()));
            }
        }
    }

    fn room_update(&mut self, room: &Room, action: &str) {
        let params = json!({
            "room": room.name,
            "secure": if room.secure { "secure" } else { "insecure" },
            "action": action,
        });
        for (conn, id) in self.room_watchers.clone() {
            self.send(
                conn,
                notification(format!("{id}.roomupdate"), params.clone()),
            );
        }
        if action == "destroyed" {
            for (conn, id) in &room.listeners {
                self.send(
                    *conn,
                    notification(format!("{id}.roomupdate"), params.clone()),
                );
            }
        }
    }
}

/// Who makes a Messenger call.
#[derive(Clone, Copy)]
pub struct Caller {
    pub owner: Owner,
    pub origin: Option<&'static str>,
    pub admin: bool,
}

/// A join as the rules see it.
pub struct Join<'a> {
    pub owner: Owner,
    pub user: &'a str,
    pub room: &'a str,
    pub secure: Option<bool>,
    pub acl: Option<&'a [&'static str]>,
    pub origin: Option<&'a str>,
    pub kurento: bool,
}

mod budget;
mod caps;
mod controller;
mod frames;
mod history;
mod kurento;
mod rules;
mod wide;

pub use caps::Caps;
pub use frames::{error, error_with, notification, placeholder, reply, result, Want, E};
pub use history::{Budget, Kept, Observed};
pub use rules::JoinE;
pub use wide::is_token;
