//! The model's rules for each Messenger call and for joining and leaving a room, in the order
//! the spec checks them (byte caps, limits, security, names), and the events each change
//! sends.

use std::time::Instant;

use serde_json::{json, Value};

use super::super::actions::{Call, Id};
use super::{
    admits, glob, is_token, notification, placeholder, reply, Caller, Ev, Join, Model, Owner, Room,
    Want, E,
};

/// Why a join is refused, as the room rules decide it (each dialect names it its own way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinE {
    /// Room state holds half of `max_memory_bytes`.
    MemoryFull,
    Taken,
    /// The room's security refuses it; why, as the engine words it.
    Refused(String),
    TooManyRooms,
    RoomFull,
    TooManyMemberships,
}

impl JoinE {
    /// The Messenger error.
    fn e(&self) -> E {
        match self {
            JoinE::Taken => E::IllegalState,
            JoinE::Refused(_) => E::Privileged,
            _ => E::Unavailable,
        }
    }
}

/// The Messenger methods (`exists` answers true for these).
const METHODS: &[&str] = &[
    "join",
    "leave",
    "send",
    "register",
    "unregister",
    "exists",
    "versions",
    "listen",
    "silence",
    "roomstatus",
    "rooms",
    "whoami",
    "sendto",
    "whisper",
    "isonline",
    "announce",
    "evict",
];

fn secure_name(secure: bool) -> &'static str {
    if secure {
        "secure"
    } else {
        "insecure"
    }
}

impl Model {
    /// A Messenger call from a WebSocket or over HTTP at `now`; the reply, if it has an id.
    pub(super) fn call(
        &mut self,
        caller: Caller,
        call: &Call,
        id: &Id,
        now: Instant,
    ) -> Option<Want> {
        let outcome = self.outcome(caller, call);
        if caller.owner == Owner::Http && outcome.is_ok() {
            self.touch(call, now);
        }
        let outcome = outcome.map(|done| match done {
            Done::Joined(key) if self.s.r5 => placeholder("token", key as u64),
            Done::Joined(key) => json!({"roomid": placeholder("token", key as u64)}),
            Done::Registered if self.s.r5 => Value::Null,
            Done::Registered => json!(0),
            Done::Value(v) => v,
        });
        reply(id, outcome, self.s.r5)
    }

    /// An HTTP membership used by a successful call lasts until `now` plus the TTL.
    fn touch(&mut self, call: &Call, now: Instant) {
        let expires = now + self.s.ttl;
        let used = match call {
            Call::Join { .. } => self.members.last().map(|m| m.key),
            Call::Send { roomid, .. }
            | Call::SendTo { roomid, .. }
            | Call::Whisper { roomid, .. } => self.by_token(roomid),
            _ => None,
        };
        let next_use = self.next_use;
        if let Some(m) = self.members.iter_mut().find(|m| Some(m.key) == used) {
            if m.owner == Owner::Http {
                m.expires = Some(expires);
                m.used = next_use;
            }
        }
        self.next_use += 1;
    }

    fn outcome(&mut self, caller: Caller, call: &Call) -> Result<Done, E> {
        self.capped(call)?;
        let null = Ok(Done::Value(Value::Null));
        let conn = match caller.owner {
            Owner::Ws(conn) => Ok(conn),
            Owner::Http => Err(E::InvalidRequest),
        };
        match call {
            Call::Join {
                user,
                room,
                secure,
                acl,
            } => {
                let join = Join {
                    owner: caller.owner,
                    user,
                    room,
                    secure: *secure,
                    acl: acl.as_deref(),
                    origin: caller.origin,
                    kurento: false,
                };
                self.join(&join).map(Done::Joined).map_err(|e| e.e())
            }
            Call::Leave { roomid } => {
                let key = self.by_token(roomid).ok_or(E::UnknownKey)?;
                self.remove_member(key);
                null
            }
            Call::Send { roomid, message } => {
                let key = self.by_token(roomid).ok_or(E::UnknownKey)?;
                self.send_from(key, message);
                null
            }
            Call::Register { event, id, at } => {
                let id = at.as_ref().map_or(id.clone(), |at| format!("{at}.{id}"));
                self.register(conn?, *event, &id)
            }
            Call::Unregister { event, id } => self.unregister(conn?, *event, id),
            Call::Listen { room, id } => self.listen(conn?, room, id, caller.origin),
            Call::Silence { room, id } => {
                let conn = conn?;
                let r = self.rooms.iter_mut().find(|r| r.name == *room);
                r.ok_or(E::UnknownKey)?
                    .listeners
                    .retain(|l| *l != (conn, id.clone()));
                Ok(Done::Registered)
            }
            Call::RoomStatus { room } => self.status(room, caller.origin),
            Call::Rooms => Ok(Done::Value(self.list())),
            Call::WhoAmI => Ok(Done::Value(self.whoami(conn?))),
            Call::IsOnline { user } => Ok(Done::Value(json!(self
                .members
                .iter()
                .any(|m| m.user == *user)))),
            Call::Exists { method } => Ok(Done::Value(json!(METHODS.contains(&method.as_str())))),
            Call::Versions => Ok(Done::Value(
                json!([{"name":"JMessenger","major":1,"minor":0,"patch":0}]),
            )),
            Call::SendTo {
                roomid,
                user,
                message,
            } => {
                let key = self.by_token(roomid).ok_or(E::UnknownKey)?;
                let sent = self.targeted(key, user, message, |u| glob(user, u));
                Ok(Done::Value(json!(sent)))
            }
            Call::Whisper {
                roomid,
                to,
                message,
            } => {
                let key = self.by_token(roomid).ok_or(E::UnknownKey)?;
                match self.targeted(key, to, message, |u| u == to) {
                    0 => Err(E::UnknownKey),
                    _ => null,
                }
            }
            Call::Announce { room, message } => {
                if !caller.admin {
                    return Err(E::Privileged);
                }
                self.room(room).ok_or(E::UnknownKey)?;
                let params = json!({"user": self.s.server_name, "message": message});
                let kurento = send_message(room, self.s.server_name, message);
                self.tell_room(room, Ev::Message, &params, &kurento);
                self.keep(room, self.s.server_name, message);
                null
            }
            Call::Evict { room, user } => {
                if !caller.admin {
                    return Err(E::Privileged);
                }
                self.evict(room, user)?;
                null
            }
        }
    }

    /// Joins a room, creating it if needed; the new membership's key. A connection with
    /// connection-wide registrations that enters a room (its first membership there) gets
    /// the room's replay for each of them.
    pub(super) fn join(&mut self, j: &Join) -> Result<usize, JoinE> {
        self.memory_left().map_err(|()| JoinE::MemoryFull)?;
        if j.owner == Owner::Http {
            self.http_make_room();
        } else if self.held(j.owner).len() >= self.s.max_memberships {
            return Err(JoinE::TooManyMemberships);
        }
        match self.room(j.room) {
            Some(room) => {
                if j.acl.is_some() {
                    return Err(JoinE::Refused(
                        "the room exists; only its creator sets an ACL".into(),
                    ));
                }
                if room.secure {
                    let Some(origin) = j.origin else {
                        return Err(JoinE::Refused(
                            "secure room: this connection has no origin (no Origin header, no token)".into(),
                        ));
                    };
                    if !admits(&room.acl, Some(origin)) {
                        return Err(JoinE::Refused(format!(
                            "secure room: origin {origin} is not in its ACL"
                        )));
                    }
                }
                if !room.secure && j.secure == Some(true) {
                    return Err(JoinE::Refused("the room exists and is not secure".into()));
                }
                if room.members.len() >= self.s.max_members {
                    return Err(JoinE::RoomFull);
                }
                if room.members.iter().any(|k| self.member(*k).user == j.user) {
                    return Err(JoinE::Taken);
                }
            }
            None => {
                if self.rooms.len() >= self.s.max_rooms {
                    return Err(JoinE::TooManyRooms);
                }
                let refused = |why: &str| Err(JoinE::Refused(why.into()));
                let (secure, acl) = match (j.secure, j.acl) {
                    (Some(false), Some(_)) | (_, Some([])) | (Some(true), None) => {
                        return refused("not a secure room's settings")
                    }
                    // SPEC §4: a connection with no origin cannot create a secure room.
                    (_, Some(_)) if j.origin.is_none() => return refused("no origin"),
                    (_, Some(acl)) if acl.contains(&"ftp//x") => return refused("bad pattern"),
                    (_, Some(acl)) => (true, acl.to_vec()),
                    (_, None) => (false, Vec::new()),
                };
                let room = Room {
                    name: j.room.to_owned(),
                    secure,
                    acl,
                    members: Vec::new(),
                    listeners: Vec::new(),
                    history: Vec::new(),
                };
                self.room_update(&room, "created");
                self.rooms.push(room);
            }
        }
        let params = json!({"user": j.user, "action": "joined"});
        let kurento = json!({"jsonrpc":"2.0","method":"participantJoined","params":{"id": j.user}});
        self.tell_room(j.room, Ev::UserUpdate, &params, &kurento);
        let entered = match j.owner {
            Owner::Ws(conn) => !self.conns_in(j.room).contains(&conn),
            Owner::Http => false,
        };
        let key = self.next_key;
        self.next_key += 1;
        self.room_mut(j.room).members.push(key);
        self.members.push(super::Member {
            key,
            room: j.room.to_owned(),
            user: j.user.to_owned(),
            owner: j.owner,
            kurento: j.kurento,
            watchers: Vec::new(),
            expires: None,
            used: self.next_use,
            token: None,
        });
        self.next_use += 1;
        if let (true, Owner::Ws(conn)) = (entered, j.owner) {
            self.wide_entered(conn, j.room);
        }
        Ok(key)
    }

    /// Ends a membership: the others hear it leave; the last one out destroys the room.
    pub(super) fn remove_member(&mut self, key: usize) {
        let at = self
            .members
            .iter()
            .position(|m| m.key == key)
            .expect("member");
        let m = self.members.remove(at);
        self.dead_tokens.extend(m.token.clone());
        self.room_mut(&m.room).members.retain(|k| *k != key);
        if self.room(&m.room).expect("room").members.is_empty() {
            let at = self
                .rooms
                .iter()
                .position(|r| r.name == m.room)
                .expect("room");
            let room = self.rooms.remove(at);
            self.room_update(&room, "destroyed");
        } else {
            let params = json!({"user": m.user, "action": "left"});
            let kurento =
                json!({"jsonrpc":"2.0","method":"participantLeft","params":{"name": m.user}});
            self.tell_room(&m.room, Ev::UserUpdate, &params, &kurento);
        }
    }

    /// A message from a membership to everyone in its room, kept in the room's history.
    pub(super) fn send_from(&mut self, key: usize, message: &str) {
        let m = self.member(key);
        let (room, user) = (m.room.clone(), m.user.clone());
        let params = json!({"user": user, "message": message});
        let kurento = send_message(&room, &user, message);
        self.tell_room(&room, Ev::Message, &params, &kurento);
        self.keep(&room, &user, message);
    }

    /// A message to the members of `key`'s room whose name `hits` (and to the connection-wide
    /// registrations of their connections, each connection once); how many got it. Never kept
    /// in history.
    fn targeted(
        &mut self,
        key: usize,
        to: &str,
        message: &str,
        hits: impl Fn(&str) -> bool,
    ) -> usize {
        let m = self.member(key);
        let (room, user) = (m.room.clone(), m.user.clone());
        let members = &self.room(&room).expect("room").members;
        let recipients: Vec<usize> = members
            .iter()
            .copied()
            .filter(|k| hits(&self.member(*k).user))
            .collect();
        let params = json!({"user": user, "message": message, "to": to});
        let kurento = send_message(&room, &user, message);
        self.tell_members(&recipients, Ev::Message, &params, &kurento);
        let conns = self.conns_of(&recipients);
        self.tell_wide(&conns, &room, Ev::Message, &params);
        recipients.len()
    }

    /// A registration. Registering again what is already registered changes nothing and is
    /// not an error (so it is not refused by the limit either); the limit counts what a
    /// connection holds. A `userupdate` or `message` id that does not start with a room token
    /// registers the whole connection (`reference/wide.rs`).
    fn register(&mut self, conn: u64, ev: Ev, id: &str) -> Result<Done, E> {
        if ev == Ev::RoomUpdate {
            if self.room_watchers.contains(&(conn, id.to_owned())) {
                return Ok(Done::Registered);
            }
            if self.registrations(conn) >= self.s.max_registrations {
                return Err(E::Unavailable);
            }
            self.memory_left().map_err(|()| E::Unavailable)?;
            let rooms: Vec<Value> = self
                .rooms
                .iter()
                .map(|r| json!({"room": r.name, "secure": secure_name(r.secure), "action": "created"}))
                .collect();
            for params in rooms {
                self.send(conn, notification(format!("{id}.roomupdate"), params));
            }
            self.room_watchers.push((conn, id.to_owned()));
            return Ok(Done::Registered);
        }
        if !is_token(leading(id)) {
            return self.register_wide(conn, ev, id);
        }
        let key = self.thunder_member(id)?;
        let watcher = (conn, ev, id.to_owned());
        if self.member(key).watchers.contains(&watcher) {
            return Ok(Done::Registered);
        }
        if self.registrations(conn) >= self.s.max_registrations {
            return Err(E::Unavailable);
        }
        self.memory_left().map_err(|()| E::Unavailable)?;
        let room = self.member(key).room.clone();
        let method = format!("{id}.{}", ev.name());
        match ev {
            Ev::UserUpdate => self.replay_members(&room, conn, &method),
            _ => self.replay_history(conn, &room, &method, false),
        }
        let m = self
            .members
            .iter_mut()
            .find(|m| m.key == key)
            .expect("member");
        m.watchers.push(watcher);
        Ok(Done::Registered)
    }

    fn unregister(&mut self, conn: u64, ev: Ev, id: &str) -> Result<Done, E> {
        if ev == Ev::RoomUpdate {
            self.room_watchers.retain(|w| *w != (conn, id.to_owned()));
            return Ok(Done::Registered);
        }
        if !is_token(leading(id)) {
            let c = self.conns.get_mut(&conn).expect("open");
            c.wide.retain(|w| *w != (ev, id.to_owned()));
            return Ok(Done::Registered);
        }
        // An id whose membership has ended (or never was) unregisters nothing, without error.
        let Ok(key) = self.thunder_member(id) else {
            return Ok(Done::Registered);
        };
        let m = self
            .members
            .iter_mut()
            .find(|m| m.key == key)
            .expect("member");
        m.watchers.retain(|w| *w != (conn, ev, id.to_owned()));
        Ok(Done::Registered)
    }

    /// The Thunder membership whose token starts a registration id (`<roomid>.<client>`).
    fn thunder_member(&self, id: &str) -> Result<usize, E> {
        let key = self.by_token(leading(id)).ok_or(E::UnknownKey)?;
        if self.member(key).kurento {
            return Err(E::UnknownKey);
        }
        Ok(key)
    }

    /// A `joined` for every member of `room`, in join order, under `method`.
    fn replay_members(&mut self, room: &str, conn: u64, method: &str) {
        for key in self.room(room).expect("room").members.clone() {
            let params = json!({"user": self.member(key).user, "action": "joined"});
            self.send(conn, notification(method.to_owned(), params));
        }
    }

    fn listen(&mut self, conn: u64, room: &str, id: &str, origin: Option<&str>) -> Result<Done, E> {
        let r = self.room(room).ok_or(E::UnknownKey)?;
        if r.secure && !admits(&r.acl, origin) {
            return Err(E::Privileged);
        }
        if r.listeners.contains(&(conn, id.to_owned())) {
            return Ok(Done::Registered);
        }
        if self.registrations(conn) >= self.s.max_registrations {
            return Err(E::Unavailable);
        }
        self.memory_left().map_err(|()| E::Unavailable)?;
        self.replay_members(room, conn, &format!("{id}.userupdate"));
        self.replay_history(conn, room, &format!("{id}.message"), false);
        self.room_mut(room).listeners.push((conn, id.to_owned()));
        Ok(Done::Registered)
    }

    fn status(&self, room: &str, origin: Option<&str>) -> Result<Done, E> {
        let r = self.room(room).ok_or(E::UnknownKey)?;
        if r.secure && !admits(&r.acl, origin) {
            return Err(E::Privileged);
        }
        let names: Vec<&str> = r
            .members
            .iter()
            .map(|k| self.member(*k).user.as_str())
            .collect();
        Ok(Done::Value(
            json!({"room": room, "members": names, "membersCount": names.len()}),
        ))
    }

    fn list(&self) -> Value {
        let mut rooms: Vec<&Room> = self.rooms.iter().collect();
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        let items: Vec<Value> = rooms
            .iter()
            .map(|r| json!({"room": r.name, "secure": secure_name(r.secure), "membersCount": r.members.len()}))
            .collect();
        json!(items)
    }

    fn whoami(&self, conn: u64) -> Value {
        let items: Vec<Value> = self
            .held(Owner::Ws(conn))
            .into_iter()
            .map(|key| {
                let m = self.member(key);
                let token = m
                    .token
                    .as_ref()
                    .map_or_else(|| placeholder("token", key as u64), |t| json!(t));
                json!({"room": m.room, "user": m.user, "roomid": token})
            })
            .collect();
        json!(items)
    }

    /// Removes `user` from `room`; the evicted member hears it first (through its own
    /// registrations, and through its connection's connection-wide ones unless that
    /// connection stays in the room and hears the leave anyway).
    fn evict(&mut self, room: &str, user: &str) -> Result<(), E> {
        let r = self.room(room).ok_or(E::UnknownKey)?;
        let key = *r
            .members
            .iter()
            .find(|k| self.member(**k).user == user)
            .ok_or(E::UnknownKey)?;
        let m = self.member(key);
        let told: Vec<(u64, Want)> = match (m.kurento, m.owner) {
            (true, Owner::Ws(conn)) => {
                let evicted = json!({"jsonrpc":"2.0","method":"participantEvicted","params":{}});
                vec![(conn, Want::Json(evicted))]
            }
            _ => {
                let params = json!({"user": user, "action": "left"});
                let watchers = m.watchers.iter().filter(|w| w.1 == Ev::UserUpdate);
                watchers
                    .map(|(conn, _, id)| {
                        (
                            *conn,
                            notification(format!("{id}.userupdate"), params.clone()),
                        )
                    })
                    .collect()
            }
        };
        let owner = m.owner;
        for (conn, want) in told {
            self.send(conn, want);
        }
        if let Owner::Ws(conn) = owner {
            let stays = self.room(room).expect("room").members.iter();
            let stays = stays
                .filter(|k| **k != key)
                .any(|k| self.member(*k).owner == Owner::Ws(conn));
            if !stays {
                let params = json!({"user": user, "action": "left"});
                self.tell_wide(&[conn], room, Ev::UserUpdate, &params);
            }
        }
        self.remove_member(key);
        Ok(())
    }
}

/// The Kurento `sendMessage` event.
fn send_message(room: &str, user: &str, message: &str) -> Value {
    json!({"jsonrpc":"2.0","method":"sendMessage","params":{"room": room, "user": user, "message": message}})
}

/// The room token in front of a registration id (`<roomid>.<client-id>`), if it is one.
fn leading(id: &str) -> &str {
    id.split('.').next().unwrap_or(id)
}

/// A call's success, before it is shaped for the dialect.
pub(super) enum Done {
    Joined(usize),
    Registered,
    Value(Value),
}
