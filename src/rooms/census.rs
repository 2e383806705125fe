//! A count of everything the rooms hold, and of the per-connection index kept beside it, so a
//! test can check the state against a model (and that nothing outlives its connection)
//! without reaching into private fields.

use super::{cost, Rooms};

/// How many of each thing the rooms hold. The `indexed_*` counts are the per-connection
/// index; each must equal its counterpart above it (a connection's end is cleaned up from
/// the index, so a drift there is a leak).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Census {
    pub rooms: usize,
    pub members: usize,
    /// Memberships held by the HTTP caller.
    pub http_members: usize,
    /// `roomupdate` registrations.
    pub room_watchers: usize,
    /// `userupdate` and `message` registrations on memberships.
    pub member_watchers: usize,
    /// Listens on rooms.
    pub listeners: usize,
    /// Connections with an index entry.
    pub indexed_connections: usize,
    /// Memberships in the connections' index (`members - http_members` when consistent).
    pub indexed_members: usize,
    /// Registrations on memberships in the index (`member_watchers` when consistent).
    pub indexed_member_watchers: usize,
    /// `roomupdate` registrations in the index (`room_watchers` when consistent).
    pub indexed_room_watchers: usize,
    /// Listens in the index (`listeners` when consistent).
    pub indexed_listeners: usize,
    /// Connection-wide `userupdate` / `message` registrations (ids without a room token).
    pub wide_registrations: usize,
    /// Rooms' entries for connections with a connection-wide registration that are members
    /// there (one per such connection and room).
    pub wide_rooms: usize,
    /// Messages room history keeps, in all rooms.
    pub history_messages: usize,
    /// Bytes room history holds, as counted against `history_bytes`.
    pub history_bytes: usize,
    /// What room state costs the memory budget, as kept up to date (`Rooms::memory`).
    pub memory: usize,
    /// The same summed again from everything the rooms hold (`memory` when consistent).
    pub memory_recount: usize,
    /// Registrations held outside the rooms (the Controller's), counted in the index.
    pub indexed_elsewhere: usize,
    /// Rooms whose kept recipient list differs from what their members say now
    /// (`rooms/recipients.rs`; 0 when consistent).
    pub stale_recipients: usize,
}

impl Rooms {
    /// Counts everything; walks all state, for tests and diagnostics only.
    pub fn census(&self) -> Census {
        let index = self.conns.values();
        Census {
            rooms: self.rooms.len(),
            members: self.members.len(),
            http_members: self.http.len(),
            room_watchers: self.room_watchers.len(),
            member_watchers: self.members.values().map(|m| m.watchers().len()).sum(),
            listeners: self.rooms.values().map(|r| r.listeners.len()).sum(),
            indexed_connections: self.conns.len(),
            indexed_members: index.clone().map(|c| c.tokens.len()).sum(),
            indexed_member_watchers: index.clone().map(|c| c.watching.len()).sum(),
            indexed_room_watchers: index.clone().map(|c| c.rare().room_watches).sum(),
            indexed_listeners: index.clone().map(|c| c.rare().listening.len()).sum(),
            wide_registrations: index.clone().map(|c| c.rare().wide.len()).sum(),
            wide_rooms: self.rooms.values().map(|r| r.wide.len()).sum(),
            history_messages: self.history.len_all(),
            history_bytes: self.history.used(),
            memory: self.memory(),
            memory_recount: self.recount(),
            indexed_elsewhere: index.map(|c| c.rare().elsewhere).sum(),
            stale_recipients: self
                .rooms
                .values()
                .filter(|r| r.recipients.stale(&self.members, &r.members))
                .count(),
        }
    }

    /// What room state costs the memory budget, summed from scratch (`rooms/cost.rs`).
    fn recount(&self) -> usize {
        let rooms = self.rooms.iter().map(|(name, room)| {
            let listeners = room.listeners.iter().map(|l| cost::listener(l, name));
            cost::room(room) + listeners.sum::<usize>() + room.wide.len() * cost::WIDE_ENTRY
        });
        let members = self.members.values().map(|m| {
            cost::member(m) + m.watchers().iter().map(cost::member_watcher).sum::<usize>()
        });
        let wide = self.conns.values().flat_map(|c| c.rare().wide.iter());
        rooms.sum::<usize>()
            + members.sum::<usize>()
            + self.room_watchers.iter().map(cost::watcher).sum::<usize>()
            + wide.map(cost::watcher).sum::<usize>()
            + self.history.used()
    }
}
