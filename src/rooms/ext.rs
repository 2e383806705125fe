//! The extension methods of SPEC §5 on the shared room state: listening without joining,
//! room status and list, who-am-I, online check, targeted messages (`sendto`, `whisper`), and
//! the trusted caller's `announce` and `evict`. Trust is decided by the engine; these are
//! the room rules only.
//!
//! With room history on, a listen replays the room's history after its members (a listener
//! hears the room), and an announcement is kept like any message to the whole room; targeted
//! messages are private and never kept.

use super::*;
use crate::wildcard::{Glob, Star};

impl Rooms {
    /// Starts hearing `room`'s `userupdate` and `message` events as `<id>.userupdate` and
    /// `<id>.message`, after a `joined` replay of its members and then of its history. A
    /// secure room's ACL applies as for a join. Listening again with the same id is not an
    /// error and delivers once.
    pub fn listen(
        &mut self,
        conn: ConnId,
        name: &str,
        id: &str,
        origin: Option<&Origin>,
        sink: &mut impl Sink,
    ) -> Result<(), RpcError> {
        let room = self.rooms.get(name).ok_or(RpcError::UnknownKey)?;
        room.admits(origin).map_err(RpcError::Privileged)?;
        if room.listeners.iter().any(|l| l.conn == conn && l.id == id) {
            return Ok(());
        }
        self.conns
            .entry(conn)
            .or_default()
            .may_register(&self.limits)?;
        self.memory_full()?;
        let method = |event: Event| wire::json_string(&format!("{id}.{}", event.name()));
        let listener = Listener {
            conn,
            id: id.to_owned(),
            userupdate_json: method(Event::UserUpdate),
            message_json: method(Event::Message),
            roomupdate_json: method(Event::RoomUpdate),
        };
        self.memory += cost::listener(&listener, name);
        let index = self.conns.entry(conn).or_default();
        index.rare_mut().listening.push(name.to_owned());
        for (event, method) in [
            (Event::UserUpdate, &listener.userupdate_json),
            (Event::Message, &listener.message_json),
        ] {
            self.replay(name, event, (conn, method), false, sink);
        }
        self.rooms
            .get_mut(name)
            .expect("room exists")
            .listeners
            .push(listener);
        Ok(())
    }

    /// Stops a listen. Unknown room: 22; not listening under `id`: not an error.
    pub fn silence(&mut self, conn: ConnId, name: &str, id: &str) -> Result<(), RpcError> {
        let room = self.rooms.get_mut(name).ok_or(RpcError::UnknownKey)?;
        let before = room.listeners.len();
        let this = |l: &Listener| l.conn == conn && l.id == id;
        self.memory -= cost::remove_where(&mut room.listeners, this, |l| cost::listener(l, name));
        if before != room.listeners.len() {
            if let Some(index) = self.conns.get_mut(&conn) {
                let listening = &mut index.rare_mut().listening;
                if let Some(at) = listening.iter().position(|r| r == name) {
                    listening.swap_remove(at);
                }
            }
        }
        Ok(())
    }

    /// `{"room":..,"members":[names in join order],"membersCount":n}`. A secure room shows
    /// its members only to an origin its ACL admits.
    pub fn status(&self, name: &str, origin: Option<&Origin>) -> Result<String, RpcError> {
        let room = self.rooms.get(name).ok_or(RpcError::UnknownKey)?;
        room.admits(origin).map_err(RpcError::Privileged)?;
        let names: Vec<&str> = room.names.iter().map(|n| &**n).collect();
        Ok(format!(
            r#"{{"room":{},"members":[{}],"membersCount":{}}}"#,
            room.name_json,
            names.join(","),
            names.len()
        ))
    }

    /// `[{"room":..,"secure":..,"membersCount":n}]`, sorted by room name.
    pub fn list(&self) -> String {
        let mut rooms: Vec<(&str, &Room)> = self.rooms.iter().collect();
        rooms.sort_unstable_by_key(|(name, _)| *name);
        let items: Vec<String> = rooms
            .into_iter()
            .map(|(_, room)| {
                format!(
                    r#"{{"room":{},"secure":{},"membersCount":{}}}"#,
                    room.name_json,
                    secure_name(room.secure),
                    room.members.len()
                )
            })
            .collect();
        format!("[{}]", items.join(","))
    }

    /// `[{"room":..,"user":..,"roomid":..}]`: the memberships `conn` holds, in join order.
    pub fn whoami(&self, conn: ConnId) -> String {
        let items: Vec<String> = self
            .held(Owner::WebSocket(conn))
            .iter()
            .map(|t| {
                let m = &self.members[t];
                format!(
                    r#"{{"room":{},"user":{},"roomid":"{t}"}}"#,
                    self.rooms[m.room_no].name_json, m.user_json
                )
            })
            .collect();
        format!("[{}]", items.join(","))
    }

    /// Whether any room has a member called `user` (either dialect, any connection).
    pub fn is_online(&self, user: &str) -> bool {
        self.members.values().any(|m| m.user == user)
    }

    /// A message from the membership `roomid` to the members of its room whose user name
    /// matches `pattern` (`*` matches any run of characters). Returns how many received it;
    /// the sender hears it only if it matches. Listeners do not hear targeted messages, and
    /// history does not keep them.
    pub fn send_to(
        &mut self,
        roomid: &str,
        pattern: &str,
        message: &str,
        sink: &mut impl Sink,
    ) -> Result<usize, RpcError> {
        let token = self.known(roomid)?;
        let glob = Glob::new(pattern);
        let hits = |user: &str| glob.matches(user, ANY);
        Ok(self.targeted(token, pattern, message, hits, sink))
    }

    /// A message from the membership `roomid` to the one member of its room named `to`.
    /// No such member: 22.
    pub fn whisper(
        &mut self,
        roomid: &str,
        to: &str,
        message: &str,
        sink: &mut impl Sink,
    ) -> Result<(), RpcError> {
        let token = self.known(roomid)?;
        match self.targeted(token, to, message, |user| user == to, sink) {
            0 => Err(RpcError::UnknownKey),
            _ => Ok(()),
        }
    }

    /// Delivers a `message` event with `"to"` to the members of `token`'s room that `hits`
    /// (and to the connection-wide registrations of their connections, once each).
    fn targeted(
        &self,
        token: RoomToken,
        to: &str,
        message: &str,
        hits: impl Fn(&str) -> bool,
        sink: &mut impl Sink,
    ) -> usize {
        let sender = &self.members[&token];
        let room = &self.rooms[sender.room_no];
        let message_json = wire::json_string(message);
        let params = format!(
            r#"{{"user":{},"message":{message_json},"to":{}}}"#,
            sender.user_json,
            wire::json_string(to)
        );
        let kurento = || kurento::send_message(&room.name_json, &sender.user_json, &message_json);
        let recipients: Vec<&RoomToken> = room
            .members
            .iter()
            .filter(|t| hits(&self.members[t].user))
            .collect();
        let notice = Notice::new(Event::Message, &params, &kurento);
        notice.to_members(&self.members, recipients.iter().copied(), sink);
        let mut wide: Vec<ConnId> = recipients
            .iter()
            .filter_map(|t| self.members[t].conn())
            .filter(|conn| room.wide.contains(conn))
            .collect();
        wide.sort_unstable();
        wide.dedup();
        notice.to_wide(&self.conns, room, wide.into_iter(), sink);
        recipients.len()
    }

    /// A message from the server itself: a `message` whose `user` is `server` (a JSON string
    /// literal) to every member and listener of `name`, kept in its history. Unknown room: 22.
    pub fn announce(
        &mut self,
        name: &str,
        server: &str,
        message: &str,
        sink: &mut impl Sink,
    ) -> Result<(), RpcError> {
        let no = self.rooms.number(name).ok_or(RpcError::UnknownKey)?;
        self.message(Author::Server(no, server), message, false, sink);
        Ok(())
    }

    /// Removes `user` from `name`. The evicted member is told first (Kurento:
    /// `participantEvicted`; Thunder: a `left` with its own name through its own `userupdate`
    /// registrations, which then end, and through its connection's connection-wide ones unless
    /// that connection stays in the room and hears it anyway); the others hear it leave.
    /// Unknown room or user: 22.
    pub fn evict(&mut self, name: &str, user: &str, sink: &mut impl Sink) -> Result<(), RpcError> {
        let room = self.rooms.get(name).ok_or(RpcError::UnknownKey)?;
        let token = *room
            .members
            .iter()
            .find(|t| self.members[t].user == user)
            .ok_or(RpcError::UnknownKey)?;
        let member = &self.members[&token];
        let params = format!(r#"{{"user":{},"action":"left"}}"#, member.user_json);
        let kurento = || kurento::PARTICIPANT_EVICTED.to_owned();
        let notice = Notice::new(Event::UserUpdate, &params, &kurento);
        notice.to_members(&self.members, std::iter::once(&token), sink);
        if let Some(conn) = member.conn() {
            let stays = room
                .members
                .iter()
                .any(|t| *t != token && self.members[t].conn() == Some(conn));
            if !stays && room.wide.contains(&conn) {
                notice.to_wide(&self.conns, room, std::iter::once(conn), sink);
            }
        }
        self.remove_member(token, sink);
        Ok(())
    }
}

/// What a `*` stands for in a `sendto` pattern (`user`, matched against the names of the
/// members): any run of characters, also none; every other character matches itself.
const ANY: Star = Star {
    min: 0,
    takes: None,
};

#[cfg(test)]
mod tests;
