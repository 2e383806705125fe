//! Room state: rooms, memberships (by room token) and event registrations, and the rules of
//! SPEC §3–5 that change them. Owned by the engine alone; pure logic that pushes the
//! notifications each change causes into a `Sink`, so it is tested without sockets.
//!
//! One set of rooms serves both dialects: a membership is either Thunder's (events reach it
//! through the `userupdate` / `message` registrations on its token) or Kurento's (events go
//! straight to its connection as `participantJoined`, `participantLeft`, `sendMessage`). The
//! fan-out (`rooms/fanout.rs`) builds each dialect's text once per event, not once per
//! recipient. Joining (limits, security, names) is in `rooms/join.rs`, its refusals in
//! `rooms/join_error.rs`. Registrations and their replays are in `rooms/register.rs`; those
//! whose id starts with no room token belong to the whole connection (`rooms/wide.rs`); the
//! optional room history lives in `rooms/history.rs`; memberships joined over HTTP, their cap
//! and their expiry in `rooms/http.rs`; what all of it costs the memory budget in
//! `rooms/cost.rs`. The extension methods (listen, status,
//! targeted messages, evict) live in `rooms/ext.rs`; `rooms/census.rs` counts it all for tests.
//! The rooms themselves are kept by name and by number in `rooms/table.rs`; each room's
//! `message` recipients among its members are kept ready in `rooms/recipients.rs`.

mod census;
pub(crate) mod cost;
mod ext;
mod fanout;
mod history;
mod http;
mod join;
mod join_error;
mod leaving;
mod recipients;
mod register;
mod table;
mod wide;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

use crate::idmap::IdMap;
use std::time::Instant;

use crate::acl::{self, Origin, Pattern};
use crate::config::Compat;
use crate::error::RpcError;
use crate::kurento;
use crate::request::{Event, Method};
use crate::room_token::RoomToken;
use crate::wire;
pub use census::Census;
use fanout::Notice;
use history::History;
pub use join::Join;
pub use join_error::JoinError;
use recipients::Recipients;
use table::{RoomNo, RoomTable};

/// Identifies a WebSocket connection for the engine (a counter, from 1).
pub type ConnId = u64;

/// Who holds a membership: a WebSocket connection (the membership ends with it), or the HTTP
/// caller (`POST /jsonrpc`), whose memberships belong to no connection and last until left
/// or unused for a while. Registrations and listens are always a WebSocket connection's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    WebSocket(ConnId),
    Http,
}

/// A number by which a sink may find a connection's output faster than by its id
/// (`Sink::slot`).
pub type Slot = u32;

/// No slot: `Sink::send_at` finds the connection by its id.
pub const NO_SLOT: Slot = Slot::MAX;

/// Where notifications go: one text frame, the concatenation of `parts`, for `conn`.
pub trait Sink {
    fn send(&mut self, conn: ConnId, parts: &[&str]);

    /// Where `conn`'s frames go now, as a number for `send_at`, kept by a caller that sends to
    /// the same connection often (a room's recipient list). By default none (`NO_SLOT`).
    fn slot(&self, conn: ConnId) -> Slot {
        let _ = conn;
        NO_SLOT
    }

    /// `send`, given the slot `slot(conn)` said earlier. The sink uses it only while it still
    /// holds `conn` (the slot may have gone to another connection since) and finds `conn` by
    /// its id otherwise: a stale slot never reaches another connection.
    fn send_at(&mut self, slot: Slot, conn: ConnId, parts: &[&str]) {
        let _ = slot;
        self.send(conn, parts);
    }

    /// `send_at` of a whole text frame, header included (`wire::SharedTail`): one copy for a
    /// sink that queues frames. By default its payload goes to `send_at`.
    fn send_frame(&mut self, slot: Slot, conn: ConnId, frame: &[u8]) {
        self.send_at(slot, conn, &[wire::frame_text(frame)]);
    }

    /// Whether `conn` takes no more frames (closing, cut off or gone): a replay to it stops.
    fn closed(&self, conn: ConnId) -> bool {
        let _ = conn;
        false
    }
}

/// The room limits (see `Config` for their defaults and reasons).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_rooms: usize,
    pub max_members_per_room: usize,
    pub max_memberships_per_connection: usize,
    pub max_registrations_per_connection: usize,
    /// Memberships the HTTP caller may hold; a join beyond ends the least recently used.
    pub max_http_memberships: usize,
    /// The whole memory budget; room state may take half of it (`Rooms::memory_full`).
    pub max_memory_bytes: usize,
}

/// All rooms, memberships and registrations.
pub struct Rooms {
    rooms: RoomTable,
    members: IdMap<RoomToken, Member>,
    /// `roomupdate` registrations, in registration order.
    room_watchers: Vec<Watcher>,
    conns: IdMap<ConnId, ConnIndex>,
    /// The memberships joined over HTTP, least recently used first (`rooms/http.rs`).
    http: Vec<RoomToken>,
    /// When each used HTTP membership counts as left unless used again (kept here, not in
    /// `Member`, so every WebSocket member's slot is smaller; at most `max_http_memberships`).
    http_expires: IdMap<RoomToken, Instant>,
    limits: Limits,
    /// The rooms' recent messages (`history` setting; off by default).
    history: History,
    /// The blocks each message's notification tail and frames are written in, reused.
    blocks: history::MessageBlocks,
    /// What everything above (but history, which counts its own) costs the memory budget,
    /// kept up to date where state is made and freed (`rooms/cost.rs`).
    memory: usize,
    /// Memberships whose end is under way, a bounded amount of work at a time
    /// (`rooms/leaving.rs`).
    leaving: VecDeque<RoomToken>,
    /// The dialect, for the key order of `roomupdate` params.
    compat: Compat,
}

/// Who a `message` is from (`Rooms::message`).
enum Author<'a> {
    /// A member, by its token.
    Member(RoomToken),
    /// The server, as `user` (a JSON string literal), to the room with this number.
    Server(RoomNo, &'a str),
}

struct Room {
    /// The room name, shared with its key in the table's map by name (`rooms/table.rs`); a member
    /// finds it through its `room_no`.
    name: Arc<str>,
    /// The room name as a JSON string literal, ready for notifications.
    name_json: String,
    secure: bool,
    acl: Vec<Pattern>,
    /// Member tokens in join order.
    members: Vec<RoomToken>,
    /// The members' user names as JSON, in the same order (shared with `Member::user_json`):
    /// a replay or a status reads them here, without a lookup per member.
    names: Vec<Arc<str>>,
    /// Connections that hear this room without being in it (`listen`).
    listeners: Vec<Listener>,
    /// Connections with a connection-wide registration that hold a membership here, each
    /// once however many memberships it holds (`rooms/wide.rs` keeps it).
    wide: Vec<ConnId>,
    /// Who among the members hears a `message`, kept ready (`rooms/recipients.rs`).
    recipients: Recipients,
}

impl Room {
    /// Admits any origin to an insecure room; to a secure one, only an origin its ACL admits
    /// (a connection without origin is refused). The error says why.
    fn admits(&self, origin: Option<&Origin>) -> Result<(), String> {
        if !self.secure {
            return Ok(());
        }
        let origin = origin.ok_or_else(|| {
            "secure room: this connection has no origin (no Origin header, no token)".to_owned()
        })?;
        if !acl::admits(&self.acl, origin) {
            return Err(format!("secure room: origin {origin} is not in its ACL"));
        }
        Ok(())
    }
}

struct Member {
    /// Its room's number, to find the room (and its name) without hashing the name
    /// (`rooms/table.rs`).
    room_no: RoomNo,
    user: String,
    /// The user name as a JSON string literal, shared with the room's `names`.
    user_json: Arc<str>,
    owner: Owner,
    kind: Kind,
}

/// How a membership hears its room.
enum Kind {
    /// Through the `userupdate` and `message` registrations whose id starts with its token.
    Thunder { watchers: Vec<Watcher> },
    /// Kurento events straight to the member's connection.
    Kurento,
}

impl Member {
    /// The WebSocket connection that holds it; `None` for an HTTP membership.
    fn conn(&self) -> Option<ConnId> {
        match self.owner {
            Owner::WebSocket(conn) => Some(conn),
            Owner::Http => None,
        }
    }

    fn watchers(&self) -> &[Watcher] {
        match &self.kind {
            Kind::Thunder { watchers } => watchers,
            Kind::Kurento => &[],
        }
    }

    fn watchers_mut(&mut self) -> Option<&mut Vec<Watcher>> {
        match &mut self.kind {
            Kind::Thunder { watchers } => Some(watchers),
            Kind::Kurento => None,
        }
    }
}

struct Watcher {
    conn: ConnId,
    event: Event,
    /// `{"jsonrpc":"2.0","method":"<id>.<event>"` (the method a JSON string literal), the
    /// start of each of its notifications whole, so a recipient's frame is this and the
    /// event's tail: two copies. The id follows, from `id_at` (one block for both, shared
    /// with the room's recipient list for a `message` registration on a membership).
    text: Arc<str>,
    id_at: usize,
}

impl Watcher {
    fn new(conn: ConnId, event: Event, id: String) -> Watcher {
        let method_json = wire::json_string(&format!("{id}.{}", event.name()));
        let head = wire::NOTIFICATION_HEAD;
        let mut text = String::with_capacity(head.len() + method_json.len() + id.len());
        text.push_str(head);
        text.push_str(&method_json);
        let id_at = text.len();
        text.push_str(&id);
        Watcher {
            conn,
            event,
            text: text.into(),
            id_at,
        }
    }

    /// The start of each notification, up to and with its method (`wire::notification_from`).
    #[inline]
    fn head(&self) -> &str {
        self.text.get(..self.id_at).unwrap_or_default()
    }

    /// `"<id>.<event>"` as a JSON string literal.
    fn method_json(&self) -> &str {
        let head = wire::NOTIFICATION_HEAD.len();
        self.text.get(head..self.id_at).unwrap_or_default()
    }

    fn id(&self) -> &str {
        self.text.get(self.id_at..).unwrap_or_default()
    }

    fn is(&self, conn: ConnId, event: Event, id: &str) -> bool {
        self.conn == conn && self.event == event && self.id() == id
    }
}

/// One `listen` on a room: its events under `<id>.userupdate` / `<id>.message`, and a last
/// `<id>.roomupdate` `destroyed` when the room ends.
struct Listener {
    conn: ConnId,
    id: String,
    /// `"<id>.<event>"` for each event, as JSON string literals.
    userupdate_json: String,
    message_json: String,
    roomupdate_json: String,
}

impl Listener {
    fn method_json(&self, event: Event) -> &str {
        match event {
            Event::UserUpdate => &self.userupdate_json,
            Event::Message => &self.message_json,
            Event::RoomUpdate => &self.roomupdate_json,
        }
    }
}

/// What one connection holds, so its end is cleaned up without a scan of everything.
#[derive(Default)]
struct ConnIndex {
    /// Memberships it joined.
    tokens: Vec<RoomToken>,
    /// Memberships on which it registered (once per registration).
    watching: Vec<RoomToken>,
    /// The rest, which most connections never have (boxed, so an idle connection's slot in
    /// `Rooms::conns` stays small); `None` until one is made.
    rare: Option<Box<RareIndex>>,
}

/// The parts of a connection's index most connections never use.
#[derive(Default)]
struct RareIndex {
    /// Its `roomupdate` registrations.
    room_watches: usize,
    /// Rooms it listens to (once per `listen`).
    listening: Vec<String>,
    /// Its connection-wide `userupdate` / `message` registrations (ids without a room token).
    wide: Vec<Watcher>,
    /// Registrations it holds outside the rooms (the Controller's events), counted against
    /// the same limit.
    elsewhere: usize,
}

/// A connection's rare index while it has none.
static NO_RARE: RareIndex = RareIndex {
    room_watches: 0,
    listening: Vec::new(),
    wide: Vec::new(),
    elsewhere: 0,
};

impl ConnIndex {
    /// Its listens, connection-wide registrations and counts.
    fn rare(&self) -> &RareIndex {
        self.rare.as_deref().unwrap_or(&NO_RARE)
    }

    /// The same to change, made if there was none.
    fn rare_mut(&mut self) -> &mut RareIndex {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Refuses one more registration (or listen) beyond the connection's limit.
    fn may_register(&self, limits: &Limits) -> Result<(), RpcError> {
        let rare = self.rare();
        let held = self.watching.len()
            + rare.room_watches
            + rare.listening.len()
            + rare.wide.len()
            + rare.elsewhere;
        if held >= limits.max_registrations_per_connection {
            return Err(RpcError::Unavailable(format!(
                "too many registrations on this connection (limit {})",
                limits.max_registrations_per_connection
            )));
        }
        Ok(())
    }
}

/// Lists that hold one or two items per member or connection grow one at a time up to
/// `FEW`, then as usual: a `Vec`'s first push makes room for four, three of them usually
/// never used, on every idle connection.
const FEW: usize = 4;

/// Pushes `item` onto a list that usually stays short (`FEW`).
fn push_few<T>(list: &mut Vec<T>, item: T) {
    if list.len() < FEW {
        list.reserve_exact(1);
    }
    list.push(item);
}

fn secure_name(secure: bool) -> &'static str {
    if secure {
        r#""secure""#
    } else {
        r#""insecure""#
    }
}

/// The `roomupdate` params for a room, in the dialect's key order: seed 000's `room, secure,
/// action`, or Thunder R5's `room, action, secure` (seed 001 and the recordings).
fn room_params(room: &Room, action: &str, compat: Compat) -> String {
    let (name, secure) = (&room.name_json, secure_name(room.secure));
    match compat {
        Compat::Rdk => format!(r#"{{"room":{name},"secure":{secure},"action":"{action}"}}"#),
        Compat::R5 => format!(r#"{{"room":{name},"action":"{action}","secure":{secure}}}"#),
    }
}

impl Rooms {
    pub fn new(limits: Limits) -> Rooms {
        Rooms {
            rooms: RoomTable::default(),
            members: IdMap::default(),
            room_watchers: Vec::new(),
            conns: IdMap::default(),
            http: Vec::new(),
            http_expires: IdMap::default(),
            limits,
            history: History::new(0, 0),
            blocks: Default::default(),
            memory: 0,
            leaving: VecDeque::new(),
            compat: Compat::Rdk,
        }
    }

    /// Keeps each room's last `per_room` messages (`send` and `announce`), within `bytes`
    /// for all rooms together, and replays them to a new `message` registration. 0 turns
    /// history off (the default).
    /// Sizes the per-member and per-connection tables for `connections` WebSocket connections
    /// with a membership each, so they do not grow (and leave their old, smaller tables to the
    /// allocator) as connections arrive: the slots not yet used are not resident.
    pub fn with_connections(mut self, connections: usize) -> Rooms {
        self.members.reserve(connections);
        self.conns.reserve(connections);
        self
    }

    pub fn with_history(mut self, per_room: usize, bytes: usize) -> Rooms {
        self.history = History::new(per_room, bytes);
        self
    }

    /// What room state (history included) costs the memory budget now.
    pub fn memory(&self) -> usize {
        self.memory + self.history.used()
    }

    /// Refuses new state (a join, a registration, a listen) once room state holds half of
    /// `max_memory_bytes`: the other half is the clients' queues'.
    fn memory_full(&self) -> Result<(), RpcError> {
        let limit = self.limits.max_memory_bytes / 2;
        if self.memory() < limit {
            return Ok(());
        }
        Err(RpcError::Unavailable(format!(
            "server memory budget full: rooms and registrations may hold half of max_memory_bytes (limit {limit} bytes); try again after others leave"
        )))
    }

    /// The same rooms, writing `roomupdate` params in `compat`'s key order.
    pub fn with_compat(mut self, compat: Compat) -> Rooms {
        self.compat = compat;
        self
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// The memberships an owner holds, in join order.
    pub fn held(&self, owner: Owner) -> &[RoomToken] {
        match owner {
            Owner::WebSocket(conn) => self.conns.get(&conn).map_or(&[], |c| &c.tokens),
            Owner::Http => &self.http,
        }
    }

    /// A membership's user and room names.
    pub fn member(&self, token: RoomToken) -> Option<(&str, &str)> {
        self.members
            .get(&token)
            .map(|m| (m.user.as_str(), &*self.rooms[m.room_no].name))
    }

    /// The other members of a membership's room, as JSON string literals, in join order.
    pub fn peers(&self, token: RoomToken) -> impl Iterator<Item = &str> {
        let room = self.members.get(&token).map(|m| &self.rooms[m.room_no]);
        room.into_iter()
            .flat_map(|r| r.members.iter().zip(&r.names))
            .filter(move |(t, _)| **t != token)
            .map(|(_, name)| &**name)
    }

    /// Ends the membership `roomid` (any connection holding the token may).
    pub fn leave(&mut self, roomid: &str, sink: &mut impl Sink) -> Result<(), RpcError> {
        let token = self.known(roomid)?;
        self.remove_member(token, sink);
        Ok(())
    }

    /// Ends the membership `token` (a Kurento `leaveRoom`); false if it had already ended.
    pub fn leave_token(&mut self, token: RoomToken, sink: &mut impl Sink) -> bool {
        self.remove_member(token, sink)
    }

    /// Sends `message` to every member of the room, the sender included.
    pub fn send(
        &mut self,
        roomid: &str,
        message: &str,
        sink: &mut impl Sink,
    ) -> Result<(), RpcError> {
        self.send_from(RoomToken::parse(roomid), message, false, sink)
    }

    /// The same for a room id read at the edge (`RoomId::token`): `None`, a text not in a
    /// token's form, is no membership. `plain`: the message is known to need no escape
    /// (`Method::Send`); false when not known.
    pub fn send_from(
        &mut self,
        token: Option<RoomToken>,
        message: &str,
        plain: bool,
        sink: &mut impl Sink,
    ) -> Result<(), RpcError> {
        if token.is_some_and(|token| self.send_token(token, message, plain, sink)) {
            Ok(())
        } else {
            Err(RpcError::UnknownKey)
        }
    }

    /// Sends `message` from the membership `token` to every member of its room (and the room's
    /// listeners). Each dialect's text is built once. False (nothing sent) if there is no such
    /// membership.
    pub fn send_token(
        &mut self,
        token: RoomToken,
        message: &str,
        plain: bool,
        sink: &mut impl Sink,
    ) -> bool {
        self.message(Author::Member(token), message, plain, sink)
    }

    /// A `message` from `author` to every member and listener of its room, kept in the room's
    /// history; its tail and frames are made in the blocks the rooms keep (`MessageBlocks`).
    /// False (nothing sent) for a membership that does not exist.
    fn message(
        &mut self,
        author: Author,
        message: &str,
        plain: bool,
        sink: &mut impl Sink,
    ) -> bool {
        let (room, user_json) = match author {
            Author::Member(token) => match self.members.get(&token) {
                Some(member) => (&self.rooms[member.room_no], &*member.user_json),
                None => return false,
            },
            Author::Server(no, user_json) => (&self.rooms[no], user_json),
        };
        let (mut tail, frames) = self.blocks.take();
        let at = history::message_tail(&mut tail, user_json, message, plain);
        let message_json = &tail[at];
        let kurento = || kurento::send_message(&room.name_json, user_json, message_json);
        let notice =
            Notice::with_tail(Event::Message, Cow::Borrowed(&tail), &kurento).with_frames(frames);
        notice.to_room(&self.members, &self.conns, room, sink);
        let frames = notice.into_frames();
        self.history.keep(&room.name, wire::tail_params(&tail));
        self.blocks.give_back(tail, frames);
        true
    }

    /// A connection ended: all its registrations and listens end now, and its memberships
    /// are queued to leave (others see `left`, empty rooms are destroyed) in `work`.
    pub fn disconnect(&mut self, conn: ConnId) {
        let Some(mut index) = self.conns.remove(&conn) else {
            return;
        };
        let mut rare = index.rare.take().map(|r| *r).unwrap_or_default();
        if rare.room_watches > 0 {
            let mine = |w: &Watcher| w.conn == conn;
            self.memory -= cost::remove_where(&mut self.room_watchers, mine, cost::watcher);
        }
        // Each list names a membership or room once per registration: once is enough.
        index.watching.sort_unstable();
        index.watching.dedup();
        rare.listening.sort_unstable();
        rare.listening.dedup();
        for token in index.watching {
            let Some(member) = self.members.get_mut(&token) else {
                continue;
            };
            let room_no = member.room_no;
            if let Some(watchers) = member.watchers_mut() {
                let mine = |w: &Watcher| w.conn == conn;
                self.memory -= cost::remove_where(watchers, mine, cost::member_watcher);
                self.rooms.at_mut(room_no).recipients.forget();
            }
        }
        for name in rare.listening {
            if let Some(room) = self.rooms.get_mut(&name) {
                let mine = |l: &Listener| l.conn == conn;
                let freed =
                    cost::remove_where(&mut room.listeners, mine, |l| cost::listener(l, &name));
                self.memory -= freed;
            }
        }
        if !rare.wide.is_empty() {
            self.memory -= rare.wide.iter().map(cost::watcher).sum::<usize>();
            self.wide_forget(conn, &index.tokens);
        }
        self.queue_leave(index.tokens);
    }

    fn known(&self, roomid: &str) -> Result<RoomToken, RpcError> {
        RoomToken::parse(roomid)
            .filter(|t| self.members.contains_key(t))
            .ok_or(RpcError::UnknownKey)
    }

    /// A token of a Thunder membership (a Kurento membership's token is never shown, but
    /// it is not a registration target either way).
    fn known_thunder(&self, roomid: &str) -> Result<RoomToken, RpcError> {
        let token = self.known(roomid)?;
        match self.members[&token].kind {
            Kind::Thunder { .. } => Ok(token),
            Kind::Kurento => Err(RpcError::UnknownKey),
        }
    }

    /// Ends a membership: the others hear it leave, and the last one out destroys the room
    /// (`roomupdate` watchers and listeners hear `destroyed`). False if it was not there.
    fn remove_member(&mut self, token: RoomToken, sink: &mut impl Sink) -> bool {
        let Some(member) = self.members.remove(&token) else {
            return false;
        };
        self.memory -= cost::member(&member);
        for w in member.watchers() {
            self.memory -= cost::member_watcher(w);
            if let Some(index) = self.conns.get_mut(&w.conn) {
                if let Some(at) = index.watching.iter().position(|t| *t == token) {
                    index.watching.swap_remove(at);
                }
            }
        }
        match member.owner {
            Owner::WebSocket(conn) => {
                if let Some(index) = self.conns.get_mut(&conn) {
                    index.tokens.retain(|t| *t != token);
                }
            }
            Owner::Http => {
                self.http.retain(|t| *t != token);
                self.http_expires.remove(&token);
            }
        }
        let room = self.rooms.at_mut(member.room_no);
        if let Some(at) = room.members.iter().position(|t| *t == token) {
            room.members.remove(at);
            room.names.remove(at);
        }
        room.recipients.forget();
        if let Some(conn) = member.conn() {
            if wide::left(room, &self.members, conn) {
                self.memory -= cost::WIDE_ENTRY;
            }
        }
        if room.members.is_empty() {
            let room = self.rooms.remove_at(member.room_no);
            self.destroyed(room, sink);
        } else {
            let params = format!(r#"{{"user":{},"action":"left"}}"#, member.user_json);
            let kurento = || kurento::participant_left(&member.user_json);
            Notice::new(Event::UserUpdate, &params, &kurento).to_room(
                &self.members,
                &self.conns,
                room,
                sink,
            );
        }
        true
    }

    /// A room has ended: its history goes, its `roomupdate` watchers and its listeners hear
    /// `destroyed`, and the listens end.
    fn destroyed(&mut self, room: Room, sink: &mut impl Sink) {
        let name = &*room.name;
        self.history.forget(name);
        self.memory -= cost::room(&room);
        self.memory -= room
            .listeners
            .iter()
            .map(|l| cost::listener(l, name))
            .sum::<usize>();
        let params = room_params(&room, "destroyed", self.compat);
        for w in &self.room_watchers {
            sink.send(w.conn, &wire::notification(w.method_json(), &params));
        }
        for l in &room.listeners {
            sink.send(l.conn, &wire::notification(&l.roomupdate_json, &params));
            if let Some(index) = self.conns.get_mut(&l.conn) {
                let listening = &mut index.rare_mut().listening;
                if let Some(at) = listening.iter().position(|r| r == name) {
                    listening.swap_remove(at);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
