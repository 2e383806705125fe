//! What room state costs the memory budget (`max_memory_bytes`), counted where state is made
//! and freed (`Rooms::memory`) and summed again from scratch by the census (`Rooms::recount`),
//! which the model test checks against the running count after every step.
//!
//! The costs follow what the heap holds, computed from the data itself (not from allocator
//! statistics), so the count is exact and the same on every machine of one word size:
//! - each text a thing keeps (a name, its JSON form, an id, a method) costs its length plus
//!   `ALLOC`, what an allocator adds to a block (a header, and rounding);
//! - each slot a thing takes in a map or a growing vector costs twice the slot's size, because
//!   a table or vector that grows by doubling is up to half empty;
//! - a room: its entry in the rooms map, its name (the key) and the name as JSON, its ACL
//!   (each pattern's slot and text), and the block of its recipient list
//!   (`rooms/recipients.rs`), whose entries its Kurento members and `message` registrations
//!   count (one each, whether the list is kept or not);
//! - a membership: its entry in the members map, its room and user names (and the user as
//!   JSON), and its slot in the room's member list and in its owner's list (the connection's,
//!   or the HTTP memberships');
//! - a registration: its slot (on the membership, in the `roomupdate` list or in the
//!   connection's wide list), its text (the start of its notifications, method as JSON
//!   included, and its id: one block), and for one on a membership the slot in the
//!   connection's index;
//! - a listen: its slot in the room, its id and three methods as JSON, and the copy of the room
//!   name in the connection's index;
//! - an entry of a room's index of connection-wide registrations (`Room::wide`): its slot;
//! - room history: what `history.rs` counts against `history_bytes`;
//! - a Controller registration (kept by the engine, counted here through
//!   `Rooms::hold_registration`): its slot, its event, id and index.
//!
//! Not counted here: what each connection holds whatever it does (its thread's stack, read
//! buffer, index entry, origin of at most `max_origin_bytes`), which `max_connections` bounds,
//! and the outboxes, which count their own buffers (`outbox.rs`).

use std::mem::size_of;
use std::sync::Arc;

use crate::request::Event;

use super::recipients::Recipient;
use super::table::RoomNo;
use super::{ConnId, Kind, Listener, Member, Room, RoomToken, Watcher};

/// What the allocator adds to each block it hands out.
pub(super) const ALLOC: usize = 2 * size_of::<usize>();
/// A slot in a map or a growing vector counts this many times its size.
const SLOTS: usize = 2;

/// A text kept on the heap.
fn text(s: &str) -> usize {
    s.len() + ALLOC
}

/// A room: its slot in the table and its place in the free list once destroyed, its entry in
/// the map by name, and its name, which that entry shares (one block: two counts and the
/// text).
pub(super) fn room(room: &Room) -> usize {
    let acl: usize = room
        .acl
        .iter()
        .map(|p| size_of_val(p) + p.text_bytes().map(|n| n + ALLOC).sum::<usize>())
        .sum();
    let acl_block = if room.acl.is_empty() { 0 } else { ALLOC };
    size_of::<Option<Room>>()
        + size_of::<RoomNo>()
        + SLOTS * size_of::<(Arc<str>, RoomNo)>()
        + text(&room.name)
        + 2 * size_of::<usize>()
        + text(&room.name_json)
        + acl
        + acl_block
        + ALLOC
}

/// A membership: its user name as JSON is one block (two counts and the text) shared with
/// its room's list of names, where it takes a slot too; its room name is the room's.
pub(super) fn member(m: &Member) -> usize {
    SLOTS * size_of::<(RoomToken, Member)>()
        + text(&m.user)
        + text(&m.user_json)
        + 2 * size_of::<usize>()
        + SLOTS * size_of::<Arc<str>>()
        + 2 * SLOTS * size_of::<RoomToken>()
        + if matches!(m.kind, Kind::Kurento) {
            size_of::<Recipient>()
        } else {
            0
        }
}

/// A registration in its list (on a membership, `roomupdate`, or connection-wide); its text
/// is one block with two counts.
pub(super) fn watcher(w: &Watcher) -> usize {
    SLOTS * size_of::<Watcher>() + text(&w.text) + 2 * size_of::<usize>()
}

/// A registration on a membership: the registration, its slot in the connection's index and,
/// for `message`, its entry in the room's recipient list.
pub(super) fn member_watcher(w: &Watcher) -> usize {
    let recipient = if w.event == Event::Message {
        size_of::<Recipient>()
    } else {
        0
    };
    watcher(w) + SLOTS * size_of::<RoomToken>() + recipient
}

/// A listen on room `name`.
pub(super) fn listener(l: &Listener, name: &str) -> usize {
    let methods = [&l.userupdate_json, &l.message_json, &l.roomupdate_json];
    SLOTS * size_of::<Listener>()
        + text(&l.id)
        + methods.iter().map(|m| text(m)).sum::<usize>()
        + SLOTS * size_of::<String>()
        + text(name)
}

/// A registration kept outside the rooms (the Controller's, in the engine): its slot of
/// `slot` bytes and its texts.
pub fn outside(slot: usize, texts: &[&str]) -> usize {
    SLOTS * slot + texts.iter().map(|t| text(t)).sum::<usize>()
}

/// A connection in a room's index of connection-wide registrations.
pub(super) const WIDE_ENTRY: usize = SLOTS * size_of::<ConnId>();

/// Removes the items of `list` that `gone` picks; what they cost, by `cost`.
pub(super) fn remove_where<T>(
    list: &mut Vec<T>,
    gone: impl Fn(&T) -> bool,
    cost: impl Fn(&T) -> usize,
) -> usize {
    let mut freed = 0;
    list.retain(|item| {
        let go = gone(item);
        if go {
            freed += cost(item);
        }
        !go
    });
    freed
}

#[cfg(test)]
mod tests {
    use super::super::tests::{join, limits, Frames};
    use super::super::{Join, Owner, Rooms};
    use crate::acl::Origin;
    use crate::error::RpcError;
    use crate::request::Event;

    fn consistent(rooms: &Rooms) -> usize {
        let census = rooms.census();
        assert_eq!(
            census.memory, census.memory_recount,
            "running count drifted"
        );
        census.memory
    }

    #[test]
    fn the_running_count_follows_every_change_and_returns_to_zero() {
        let mut rooms = Rooms::new(limits()).with_history(3, 1 << 20);
        let mut out = Frames::default();
        let origin = Origin::parse("https://app.example.com").unwrap();
        let acl = [
            "https://*.example.com".to_owned(),
            "http://localhost:*".to_owned(),
        ];
        let secure = Join {
            user: "Owner",
            room: "Vault",
            secure: Some(true),
            acl: Some(&acl),
            origin: Some(&origin),
            kurento: false,
        };
        let v = rooms.join(Owner::WebSocket(1), &secure, &mut out).unwrap();
        let a = join(&mut rooms, 1, "Alice", "Lounge", &mut out).unwrap();
        let b = join(&mut rooms, 2, "Bob", "Lounge", &mut out).unwrap();
        let mut last = consistent(&rooms);
        type Step<'a> = &'a dyn Fn(&mut Rooms, &mut Frames);
        let steps: [Step; 9] = [
            &|r, o| r.register(1, Event::Message, &format!("{a}.x"), o).unwrap(),
            &|r, o| r.register(2, Event::RoomUpdate, "rooms", o).unwrap(),
            &|r, o| {
                r.register(2, Event::UserUpdate, "client.events", o)
                    .unwrap()
            },
            &|r, o| r.listen(3, "Lounge", "l", None, o).unwrap(),
            &|r, o| r.send(&b.to_string(), "hello", o).unwrap(),
            &|r, o| assert!(join(r, 2, "Bob2", "Den", o).is_ok()),
            &|r, _| r.unregister(2, Event::UserUpdate, "client.events").unwrap(),
            &|r, o| r.evict("Lounge", "Alice", o).unwrap(),
            &|r, _| r.silence(3, "Lounge", "l").unwrap(),
        ];
        for step in steps {
            step(&mut rooms, &mut out);
            let now = consistent(&rooms);
            assert_ne!(now, last, "every step changes what is held");
            last = now;
        }
        rooms.leave(&v.to_string(), &mut out).unwrap();
        rooms
            .register(2, Event::Message, "client.events", &mut out)
            .unwrap();
        rooms.listen(3, "Den", "l", None, &mut out).unwrap();
        consistent(&rooms);
        for conn in [1, 2, 3] {
            rooms.disconnect(conn);
            rooms.work(usize::MAX, &mut out);
            consistent(&rooms);
        }
        assert_eq!(rooms.memory(), 0, "nothing held once everyone has gone");
    }

    #[test]
    fn new_state_is_refused_once_rooms_hold_half_the_budget() {
        let mut rooms = Rooms::new(super::super::Limits {
            max_rooms: 1000,
            max_memory_bytes: 8 * 1024,
            ..limits()
        });
        let mut out = Frames::default();
        let mut joined = 0;
        let refusal = loop {
            let room = format!("room-{joined}");
            match join(&mut rooms, joined, "U", &room, &mut out) {
                Ok(_) => joined += 1,
                Err(e) => break e,
            }
        };
        assert!(joined > 2, "{joined}");
        assert!(rooms.memory() >= 4 * 1024 && rooms.memory() < 5 * 1024);
        let RpcError::Unavailable(why) = &refusal else {
            panic!("{refusal:?}");
        };
        assert!(
            why.contains("max_memory_bytes") && why.contains("limit 4096"),
            "{why}"
        );
        for call in [
            rooms.register(1, Event::RoomUpdate, "r", &mut out),
            rooms.register(1, Event::Message, "client.events", &mut out),
            rooms.listen(1, "room-0", "l", None, &mut out),
        ] {
            assert!(matches!(call, Err(RpcError::Unavailable(_))), "{call:?}");
        }
        // Freeing state lets new state in again.
        rooms.disconnect(0);
        rooms.work(usize::MAX, &mut out);
        rooms.disconnect(1);
        rooms.work(usize::MAX, &mut out);
        join(&mut rooms, 99, "U", "again", &mut out).unwrap();
        consistent(&rooms);
    }
}
