//! The model's connection-wide registrations (SPEC §3): a `userupdate` or `message`
//! registration whose id does not start with a room token belongs to the connection. It hears
//! the events of every room the connection holds a membership in, once per room however many
//! memberships it holds there, with `"room"` added; it gets each room's replay (its members, or
//! its history) when it registers and when the connection enters a room; leaving a room (its
//! last membership there) ends that room's part.

use serde_json::{json, Value};

use super::super::actions::ConnId;
use super::rules::Done;
use super::{notification, Ev, Model, Owner, E};

/// Whether `text` is a room token as the server writes them: 20 lowercase hex digits. An id
/// that starts with one names a membership (22 if unknown); any other id is connection-wide.
pub fn is_token(text: &str) -> bool {
    text.len() == 20
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `params` (an object) with `"room"` added.
pub fn with_room(params: &Value, room: &str) -> Value {
    let mut params = params.clone();
    params["room"] = json!(room);
    params
}

impl Model {
    /// The connections holding a membership in `room`, each once.
    pub(super) fn conns_in(&self, room: &str) -> Vec<ConnId> {
        let members = self.room(room).map(|r| r.members.as_slice());
        self.conns_of(members.unwrap_or_default())
    }

    /// The connections holding the memberships `keys`, each once (HTTP holds none).
    pub(super) fn conns_of(&self, keys: &[usize]) -> Vec<ConnId> {
        let mut conns: Vec<ConnId> = keys
            .iter()
            .filter_map(|k| match self.member(*k).owner {
                Owner::Ws(conn) => Some(conn),
                Owner::Http => None,
            })
            .collect();
        conns.sort_unstable();
        conns.dedup();
        conns
    }

    /// The connection-wide registrations for `ev` of each of `conns` hear `params` with the
    /// room's name added.
    pub(super) fn tell_wide(&mut self, conns: &[ConnId], room: &str, ev: Ev, params: &Value) {
        let params = with_room(params, room);
        for conn in conns {
            let ids: Vec<String> = self.conns[conn]
                .wide
                .iter()
                .filter(|(e, _)| *e == ev)
                .map(|(_, id)| id.clone())
                .collect();
            for id in ids {
                let method = format!("{id}.{}", ev.name());
                self.send(*conn, notification(method, params.clone()));
            }
        }
    }

    /// Registers the whole connection for `ev` under `id`; every room it is in replays. The
    /// same registration again changes nothing and is never refused by the limit.
    pub(super) fn register_wide(&mut self, conn: ConnId, ev: Ev, id: &str) -> Result<Done, E> {
        let registration = (ev, id.to_owned());
        if self.conns[&conn].wide.contains(&registration) {
            return Ok(Done::Registered);
        }
        if self.registrations(conn) >= self.s.max_registrations {
            return Err(E::Unavailable);
        }
        self.memory_left().map_err(|()| E::Unavailable)?;
        self.conns
            .get_mut(&conn)
            .expect("open")
            .wide
            .push(registration);
        for room in self.rooms_of(conn) {
            self.replay_wide(conn, &room, ev, id);
        }
        Ok(Done::Registered)
    }

    /// `conn` has just entered `room` (its first membership there): each of its
    /// connection-wide registrations gets the room's replay.
    pub(super) fn wide_entered(&mut self, conn: ConnId, room: &str) {
        let wide = self.conns[&conn].wide.clone();
        for (ev, id) in wide {
            self.replay_wide(conn, room, ev, &id);
        }
    }

    /// A connection-wide registration's replay of one room: a `joined` for every member
    /// (itself included), or the room's history; with `"room"`.
    fn replay_wide(&mut self, conn: ConnId, room: &str, ev: Ev, id: &str) {
        let method = format!("{id}.{}", ev.name());
        match ev {
            Ev::UserUpdate => {
                let members = self.room(room).expect("room").members.clone();
                for key in members {
                    let joined = json!({"user": self.member(key).user, "action": "joined"});
                    let params = with_room(&joined, room);
                    self.send(conn, notification(method.clone(), params));
                }
            }
            Ev::Message => self.replay_history(conn, room, &method, true),
            Ev::RoomUpdate => unreachable!("roomupdate registrations are not connection-wide"),
        }
    }

    /// The rooms `conn` holds memberships in, each once.
    fn rooms_of(&self, conn: ConnId) -> Vec<String> {
        let mut rooms: Vec<String> = self
            .held(Owner::Ws(conn))
            .into_iter()
            .map(|key| self.member(key).room.clone())
            .collect();
        rooms.sort();
        rooms.dedup();
        rooms
    }

    /// Connections with a connection-wide registration, counted once per room they hold a
    /// membership in (the engine's per-room index).
    pub fn wide_rooms(&self) -> usize {
        let wide = self.conns.iter().filter(|(_, c)| !c.wide.is_empty());
        wide.map(|(conn, _)| self.rooms_of(*conn).len()).sum()
    }
}
