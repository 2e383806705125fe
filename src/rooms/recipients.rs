//! Each room's `message` recipients among its members, kept ready: for every `message`
//! registration on a Thunder membership, its connection, that connection's slot in the sink
//! (`Sink::slot`) and the registration's text; for every Kurento membership, its connection
//! and slot. A message then goes out without a lookup of each member by token, a pass over
//! each member's other registrations, or a hash of each connection's id.
//!
//! The list is made on the room's first message after a change and forgotten (`forget`) by
//! every change to who hears the room's messages: a member joins or leaves (however it ends:
//! `leave`, eviction, expiry, its connection's end), a `message` registration on a member is
//! made or ends (`unregister`, its connection's end); it goes with its room. So it lists what
//! a walk of the members would find now, in the same order; the census counts a kept list
//! that does not (`stale`), and the model test checks that count after every step. The slots
//! in it are hints only: a sink uses one only while it still holds the same connection
//! (`Sink::send_at`), so a slot whose connection has gone, and which another connection holds
//! now, reaches nobody but the connection the list names.

use std::cell::OnceCell;
use std::sync::Arc;

use super::{ConnId, Kind, Member, Owner, RoomToken, Sink, Slot, Watcher};
use crate::idmap::IdMap;
use crate::request::Event;

/// One recipient of a room's messages.
pub(super) struct Recipient {
    pub(super) conn: ConnId,
    pub(super) slot: Slot,
    /// The registration's text (`Watcher::text`), whose first `head_len` bytes start each of
    /// its notifications; `None` for a Kurento member, which hears the Kurento frame.
    text: Option<Arc<str>>,
    head_len: usize,
}

impl Recipient {
    /// The start of its notifications (`Watcher::head`); `None` for a Kurento member.
    #[inline]
    pub(super) fn head(&self) -> Option<&str> {
        let text = self.text.as_deref()?;
        Some(text.get(..self.head_len).unwrap_or_default())
    }

    fn same(&self, other: &Recipient) -> bool {
        self.conn == other.conn
            && self.head_len == other.head_len
            && self.text.as_deref() == other.text.as_deref()
    }
}

/// A room's list, while it is kept.
#[derive(Default)]
pub(super) struct Recipients(OnceCell<Box<[Recipient]>>);

impl Recipients {
    /// The recipients among `tokens` (the room's members), made now if not kept.
    #[inline]
    pub(super) fn get(
        &self,
        members: &IdMap<RoomToken, Member>,
        tokens: &[RoomToken],
        sink: &impl Sink,
    ) -> &[Recipient] {
        self.0
            .get_or_init(|| make(members, tokens, |conn| sink.slot(conn)))
    }

    /// Forgets the list: who hears the room's messages has changed.
    pub(super) fn forget(&mut self) {
        self.0.take();
    }

    /// Whether a kept list differs from what the members say now (for the census).
    pub(super) fn stale(&self, members: &IdMap<RoomToken, Member>, tokens: &[RoomToken]) -> bool {
        let Some(kept) = self.0.get() else {
            return false;
        };
        let now = make(members, tokens, |_| 0);
        kept.len() != now.len() || kept.iter().zip(now.iter()).any(|(a, b)| !a.same(b))
    }
}

/// Walks the members in join order, each member's `message` registrations in registration
/// order, as the fan-out to members does (`Notice::to_members`).
fn make(
    members: &IdMap<RoomToken, Member>,
    tokens: &[RoomToken],
    slot: impl Fn(ConnId) -> Slot,
) -> Box<[Recipient]> {
    let mut list = Vec::new();
    for member in tokens.iter().filter_map(|t| members.get(t)) {
        match (&member.kind, member.owner) {
            (Kind::Thunder { watchers }, _) => {
                let hears = watchers.iter().filter(|w| w.event == Event::Message);
                list.extend(hears.map(|w: &Watcher| Recipient {
                    conn: w.conn,
                    slot: slot(w.conn),
                    text: Some(w.text.clone()),
                    head_len: w.id_at,
                }));
            }
            // A Kurento membership is always a WebSocket connection's.
            (Kind::Kurento, Owner::WebSocket(conn)) => list.push(Recipient {
                conn,
                slot: slot(conn),
                text: None,
                head_len: 0,
            }),
            (Kind::Kurento, Owner::Http) => {}
        }
    }
    list.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{join, join_kurento, limits, Frames};
    use super::super::Rooms;
    use super::*;

    /// Gives each connection the slot `10 * conn` and records what `send_at` was given.
    #[derive(Default)]
    struct Slotted(Vec<(Slot, ConnId)>);

    impl Sink for Slotted {
        fn send(&mut self, conn: ConnId, _: &[&str]) {
            self.0.push((super::super::NO_SLOT, conn));
        }

        fn slot(&self, conn: ConnId) -> Slot {
            Slot::try_from(10 * conn).unwrap()
        }

        fn send_at(&mut self, slot: Slot, conn: ConnId, _: &[&str]) {
            self.0.push((slot, conn));
        }
    }

    #[test]
    fn the_list_follows_every_change_and_keeps_the_sinks_slots() {
        let mut rooms = Rooms::new(limits());
        let mut out = Frames::default();
        let a = join(&mut rooms, 1, "A", "R", &mut out).unwrap();
        let b = join(&mut rooms, 2, "B", "R", &mut out).unwrap();
        let mut sent = Slotted::default();
        let mut send = |rooms: &mut Rooms| {
            rooms.send(&a.to_string(), "m", &mut sent).unwrap();
            assert_eq!(rooms.census().stale_recipients, 0);
            std::mem::take(&mut sent.0)
        };
        assert!(send(&mut rooms).is_empty(), "no registration yet");
        let id = format!("{b}.c");
        rooms.register(2, Event::Message, &id, &mut out).unwrap();
        rooms
            .register(1, Event::Message, &format!("{a}.c"), &mut out)
            .unwrap();
        assert_eq!(send(&mut rooms), [(10, 1), (20, 2)], "join order");
        join_kurento(&mut rooms, 3, "K", "R", &mut out).unwrap();
        assert_eq!(send(&mut rooms), [(10, 1), (20, 2), (30, 3)]);
        rooms.unregister(2, Event::Message, &id).unwrap();
        assert_eq!(send(&mut rooms), [(10, 1), (30, 3)]);
        rooms.disconnect(3);
        rooms.work(usize::MAX, &mut out);
        assert_eq!(send(&mut rooms), [(10, 1)]);
        rooms.register(2, Event::Message, &id, &mut out).unwrap();
        rooms.disconnect(1);
        assert_eq!(
            send(&mut rooms),
            [(20, 2)],
            "a gone connection's registrations end at once, before its memberships"
        );
    }
}
