//! Connection-wide registrations (SPEC §3): `userupdate` or `message` under an id that does not
//! start with a room token (ThunderJS's `client.Messenger.events`, LinkType's `temporary1`).
//! Such a registration belongs to the connection: it hears every room the connection is a
//! member of, joined before or after it, once per room however many memberships it holds
//! there, with `"room"` added to the params.
//!
//! The registrations live in the connection's `ConnIndex::wide`; each room keeps `Room::wide`,
//! the connections with at least one such registration that are members there, so an event
//! reaches them without a scan of all connections. That index changes on register and
//! unregister (the connection's first and last wide registration), on join (its first
//! membership in a room), on leave (its last membership there) and on disconnect.

use std::collections::HashSet;

use super::table::RoomTable;
use super::{cost, ConnId, Member, Owner, Room, Rooms, Sink, Watcher};
use crate::error::RpcError;
use crate::idmap::IdMap;
use crate::request::Event;
use crate::room_token::RoomToken;

impl Rooms {
    /// Registers the whole connection for `event` under `id`, replaying every room it is in:
    /// a `joined` per member (`userupdate`) or the history (`message`), room after room in the
    /// order the connection joined them. The same `(event, id)` again is not an error, is
    /// never refused by the limit and delivers once.
    pub(super) fn register_wide(
        &mut self,
        conn: ConnId,
        event: Event,
        id: &str,
        sink: &mut impl Sink,
    ) -> Result<(), RpcError> {
        let index = self.conns.entry(conn).or_default();
        if index.rare().wide.iter().any(|w| w.is(conn, event, id)) {
            return Ok(());
        }
        index.may_register(&self.limits)?;
        let watcher = Watcher::new(conn, event, id.to_owned());
        self.memory_full()?;
        self.memory += cost::watcher(&watcher);
        self.conns
            .entry(conn)
            .or_default()
            .rare_mut()
            .wide
            .push(watcher);
        let names = self.rooms_of(conn);
        for name in &names {
            let room = self.rooms.get_mut(name).expect("a member's room exists");
            if !room.wide.contains(&conn) {
                room.wide.push(conn);
                self.memory += cost::WIDE_ENTRY;
            }
        }
        let watcher = self.conns[&conn].rare().wide.last().expect("just pushed");
        for name in &names {
            if sink.closed(conn) {
                break;
            }
            self.replay(name, event, (conn, watcher.method_json()), true, sink);
        }
        Ok(())
    }

    /// Ends a connection-wide registration; the connection leaves the rooms' indexes with its
    /// last one. Unregistering what is not registered is not an error.
    pub(super) fn unregister_wide(&mut self, conn: ConnId, event: Event, id: &str) {
        let Some(index) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(rare) = index.rare.as_deref_mut() else {
            return;
        };
        let before = rare.wide.len();
        let this = |w: &Watcher| w.is(conn, event, id);
        self.memory -= cost::remove_where(&mut rare.wide, this, cost::watcher);
        if before > 0 && rare.wide.is_empty() {
            self.memory -=
                cost::WIDE_ENTRY * forget(&mut self.rooms, &self.members, conn, &index.tokens);
        }
    }

    /// `conn` has just joined room `name`: if it holds connection-wide registrations and this
    /// is its first membership there, the room's index takes it and each registration gets
    /// the room's replay (its members, itself included, or its history). With an earlier
    /// membership there it already heard this join as an ordinary `joined`.
    pub(super) fn wide_entered(&mut self, conn: ConnId, name: &str, sink: &mut impl Sink) {
        if self
            .conns
            .get(&conn)
            .is_none_or(|index| index.rare().wide.is_empty())
        {
            return;
        }
        let room = self
            .rooms
            .get_mut(name)
            .expect("the room just joined exists");
        if room.wide.contains(&conn) {
            return;
        }
        room.wide.push(conn);
        self.memory += cost::WIDE_ENTRY;
        for w in &self.conns[&conn].rare().wide {
            self.replay(name, w.event, (conn, w.method_json()), true, sink);
        }
    }

    /// A connection with connection-wide registrations has ended: it leaves the index of
    /// every room it held `tokens` in, before its memberships go (so it hears nothing more).
    pub(super) fn wide_forget(&mut self, conn: ConnId, tokens: &[RoomToken]) {
        self.memory -= cost::WIDE_ENTRY * forget(&mut self.rooms, &self.members, conn, tokens);
    }

    /// The rooms `conn` holds memberships in, each once, in the order it joined them.
    fn rooms_of(&self, conn: ConnId) -> Vec<String> {
        let mut seen = HashSet::new();
        self.held(Owner::WebSocket(conn))
            .iter()
            .map(|t| &*self.rooms[self.members[t].room_no].name)
            .filter(|name| seen.insert(*name))
            .map(str::to_owned)
            .collect()
    }
}

/// After one of `conn`'s memberships left `room`: the room's index lets `conn` go if that
/// was its last membership there (true then).
pub(super) fn left(room: &mut Room, members: &IdMap<RoomToken, Member>, conn: ConnId) -> bool {
    if room.wide.contains(&conn) && !room.members.iter().any(|t| members[t].conn() == Some(conn)) {
        room.wide.retain(|c| *c != conn);
        return true;
    }
    false
}

/// Takes `conn` out of the index of the rooms of `tokens`; how many entries went.
fn forget(
    rooms: &mut RoomTable,
    members: &IdMap<RoomToken, Member>,
    conn: ConnId,
    tokens: &[RoomToken],
) -> usize {
    let mut gone = 0;
    for token in tokens {
        if let Some(room) = members.get(token).map(|m| rooms.at_mut(m.room_no)) {
            let before = room.wide.len();
            room.wide.retain(|c| *c != conn);
            gone += before - room.wide.len();
        }
    }
    gone
}

#[cfg(test)]
mod tests {
    use super::super::tests::{join, limits, Frames};
    use super::*;
    use serde_json::json;

    const ID: &str = "client.Messenger.events";

    #[test]
    fn a_wide_registration_hears_every_room_with_its_name() {
        let mut rooms = Rooms::new(limits());
        let mut out = Frames::default();
        let a = join(&mut rooms, 1, "Alice", "Lounge", &mut out).unwrap();
        join(&mut rooms, 1, "Al", "Den", &mut out).unwrap();
        let b = join(&mut rooms, 2, "Bob", "Lounge", &mut out).unwrap();
        rooms.register(1, Event::Message, ID, &mut out).unwrap();
        rooms.register(1, Event::UserUpdate, ID, &mut out).unwrap();
        let replay = out.take();
        let joined = |user, room| json!({"user": user, "action": "joined", "room": room});
        let method = format!("{ID}.userupdate");
        assert_eq!(
            replay,
            vec![
                (1, method.clone(), joined("Alice", "Lounge")),
                (1, method.clone(), joined("Bob", "Lounge")),
                (1, method.clone(), joined("Al", "Den")),
            ]
        );
        rooms.send(&b.to_string(), "hi", &mut out).unwrap();
        assert_eq!(
            out.take(),
            vec![(
                1,
                format!("{ID}.message"),
                json!({"user": "Bob", "message": "hi", "room": "Lounge"})
            )]
        );
        rooms.leave(&a.to_string(), &mut out).unwrap();
        assert!(out.take().is_empty(), "no event about its own leave");
        rooms.send(&b.to_string(), "gone?", &mut out).unwrap();
        assert!(out.take().is_empty(), "leaving ends that room's part");
        assert!(rooms.rooms["Lounge"].wide.is_empty());
        assert_eq!(rooms.rooms["Den"].wide, [1]);
    }

    #[test]
    fn several_memberships_in_one_room_hear_each_event_once() {
        let mut rooms = Rooms::new(limits());
        let mut out = Frames::default();
        let a1 = join(&mut rooms, 1, "A1", "Lounge", &mut out).unwrap();
        rooms.register(1, Event::Message, ID, &mut out).unwrap();
        rooms.register(1, Event::UserUpdate, ID, &mut out).unwrap();
        rooms.register(1, Event::UserUpdate, ID, &mut out).unwrap();
        assert_eq!(
            out.take().len(),
            1,
            "one replay; the duplicate adds nothing"
        );
        let a2 = join(&mut rooms, 1, "A2", "Lounge", &mut out).unwrap();
        assert_eq!(
            out.take(),
            vec![(
                1,
                format!("{ID}.userupdate"),
                json!({"user": "A2", "action": "joined", "room": "Lounge"})
            )],
            "a second membership is an ordinary join, not a second replay"
        );
        rooms.send(&a2.to_string(), "once", &mut out).unwrap();
        assert_eq!(out.take().len(), 1);
        rooms.leave(&a1.to_string(), &mut out).unwrap();
        assert_eq!(
            out.take()[0].2,
            json!({"user": "A1", "action": "left", "room": "Lounge"}),
            "still in the room as A2, so it hears A1 leave"
        );
        assert_eq!(rooms.rooms["Lounge"].wide, [1]);
    }

    #[test]
    fn rooms_joined_later_are_covered_and_replayed() {
        let mut rooms = Rooms::new(limits());
        let mut out = Frames::default();
        join(&mut rooms, 2, "Bob", "Lounge", &mut out).unwrap();
        rooms.register(1, Event::UserUpdate, ID, &mut out).unwrap();
        assert!(out.take().is_empty(), "in no room yet");
        join(&mut rooms, 1, "Alice", "Lounge", &mut out).unwrap();
        let users: Vec<_> = out
            .take()
            .into_iter()
            .map(|(_, _, p)| p["user"].clone())
            .collect();
        assert_eq!(users, [json!("Bob"), json!("Alice")]);
    }

    #[test]
    fn unregister_and_disconnect_empty_the_index() {
        let mut rooms = Rooms::new(limits());
        let mut out = Frames::default();
        join(&mut rooms, 1, "Alice", "Lounge", &mut out).unwrap();
        let b = join(&mut rooms, 2, "Bob", "Lounge", &mut out).unwrap();
        rooms.register(1, Event::Message, ID, &mut out).unwrap();
        rooms.register(1, Event::UserUpdate, ID, &mut out).unwrap();
        rooms.unregister(1, Event::Message, ID).unwrap();
        rooms.unregister(1, Event::Message, ID).unwrap();
        assert_eq!(rooms.rooms["Lounge"].wide, [1], "userupdate is still there");
        rooms.unregister(1, Event::UserUpdate, ID).unwrap();
        assert!(rooms.rooms["Lounge"].wide.is_empty());
        out.take();
        rooms.send(&b.to_string(), "x", &mut out).unwrap();
        assert!(out.take().is_empty());
        rooms.register(1, Event::UserUpdate, ID, &mut out).unwrap();
        rooms
            .register(2, Event::UserUpdate, "temporary1", &mut out)
            .unwrap();
        out.take();
        rooms.disconnect(1);
        rooms.work(usize::MAX, &mut out);
        assert_eq!(
            out.take(),
            vec![(
                2,
                "temporary1.userupdate".into(),
                json!({"user": "Alice", "action": "left", "room": "Lounge"})
            )]
        );
        assert_eq!(rooms.rooms["Lounge"].wide, [2]);
    }

    #[test]
    fn wide_registrations_count_and_tokens_still_decide() {
        let mut rooms = Rooms::new(limits());
        let mut out = Frames::default();
        for i in 0..5 {
            let id = format!("app{i}");
            rooms.register(1, Event::Message, &id, &mut out).unwrap();
        }
        assert!(matches!(
            rooms.register(1, Event::Message, "app5", &mut out),
            Err(RpcError::Unavailable(_))
        ));
        assert_eq!(
            rooms.register(
                2,
                Event::Message,
                "0000000000deadbeef00.client.events",
                &mut out
            ),
            Err(RpcError::UnknownKey),
            "a well-formed token that is unknown"
        );
        assert_eq!(
            rooms.unregister(2, Event::Message, "0000000000deadbeef00"),
            Ok(()),
            "unregistering under a token no membership has (any more) is a no-op"
        );
        rooms
            .register(2, Event::Message, "0000000000DEADBEEF00.x", &mut out)
            .unwrap();
        rooms.register(2, Event::Message, "", &mut out).unwrap();
    }

    #[test]
    fn targeted_messages_reach_a_wide_registration_once() {
        let mut rooms = Rooms::new(limits());
        let mut out = Frames::default();
        let s = join(&mut rooms, 1, "Sender", "Field", &mut out).unwrap();
        join(&mut rooms, 2, "t-1", "Field", &mut out).unwrap();
        join(&mut rooms, 2, "t-2", "Field", &mut out).unwrap();
        rooms.register(2, Event::Message, ID, &mut out).unwrap();
        assert_eq!(
            rooms.send_to(&s.to_string(), "t-*", "team", &mut out),
            Ok(2)
        );
        assert_eq!(
            out.take(),
            vec![(
                2,
                format!("{ID}.message"),
                json!({"user": "Sender", "message": "team", "to": "t-*", "room": "Field"})
            )]
        );
        rooms
            .whisper(&s.to_string(), "Sender", "me", &mut out)
            .unwrap();
        assert!(out.take().is_empty(), "not for connection 2");
    }

    #[test]
    fn an_evicted_member_hears_its_own_leave_once() {
        let mut rooms = Rooms::new(limits());
        let mut out = Frames::default();
        join(&mut rooms, 1, "Alice", "Lounge", &mut out).unwrap();
        join(&mut rooms, 2, "Bob", "Lounge", &mut out).unwrap();
        join(&mut rooms, 2, "Bob2", "Lounge", &mut out).unwrap();
        rooms.register(2, Event::UserUpdate, ID, &mut out).unwrap();
        out.take();
        rooms.evict("Lounge", "Bob", &mut out).unwrap();
        let left = json!({"user": "Bob", "action": "left", "room": "Lounge"});
        assert_eq!(out.take(), vec![(2, format!("{ID}.userupdate"), left)]);
        rooms.evict("Lounge", "Bob2", &mut out).unwrap();
        let left2 = json!({"user": "Bob2", "action": "left", "room": "Lounge"});
        assert_eq!(out.take(), vec![(2, format!("{ID}.userupdate"), left2)]);
        assert!(rooms.rooms["Lounge"].wide.is_empty());
    }

    /// Takes `room` frames, then reports the connection closed (its queue was cut off).
    struct Closing {
        got: usize,
        room: usize,
    }

    impl Sink for Closing {
        fn send(&mut self, _: ConnId, _: &[&str]) {
            self.got += 1;
        }

        fn closed(&self, _: ConnId) -> bool {
            self.got >= self.room
        }
    }

    #[test]
    fn a_replay_stops_once_the_connection_is_cut_off() {
        let mut rooms = Rooms::new(limits());
        let mut out = Frames::default();
        for (conn, user) in [(1, "A"), (2, "B"), (2, "C")] {
            join(&mut rooms, conn, user, "Lounge", &mut out).unwrap();
        }
        join(&mut rooms, 1, "A2", "Den", &mut out).unwrap();
        let mut closing = Closing { got: 0, room: 2 };
        rooms
            .register(1, Event::UserUpdate, ID, &mut closing)
            .unwrap();
        assert_eq!(closing.got, 2, "not the third member, nor the second room");
    }
}
