//! Ends of memberships that may be many at once, spread over the dispatcher's turns: the
//! memberships of a connection that has gone (up to `max_memberships_per_connection`) and
//! HTTP memberships that expire together. Each leave tells everyone in its room, so a
//! connection with 1,000 memberships in rooms a thousand clients hear would cost a million
//! deliveries in one go (about a tenth of a second, measured in release on x86-64), and every
//! other client would wait that long. Instead they queue here and `work` ends them a bounded
//! number of deliveries at a time. The engine starts at once, within what is left of the
//! dispatcher turn's budget (`engine::WORK`), so an ordinary disconnect is over in order with
//! the commands around it; only what does not fit waits for the next turns.
//!
//! While queued, a membership still exists (its room lists it, others may `leave` it or
//! `send` through its token); it goes within a few turns. Its connection's registrations and
//! listens ended at once (`Rooms::disconnect`), so nothing more is sent to the connection.

use super::{RoomToken, Rooms, Sink};

impl Rooms {
    /// Ends queued memberships until about `deliveries` events have been sent; the deliveries
    /// counted. A leave is counted as the recipients its room may have (members, listeners,
    /// connections registered for the whole connection), and at least one.
    pub fn work(&mut self, deliveries: usize, sink: &mut impl Sink) -> usize {
        let mut left = deliveries;
        while left > 0 {
            let Some(token) = self.leaving.pop_front() else {
                break;
            };
            left = left.saturating_sub(self.audience(token).max(1));
            self.remove_member(token, sink);
        }
        deliveries - left
    }

    /// Whether some memberships are queued to leave.
    pub fn leaving(&self) -> bool {
        !self.leaving.is_empty()
    }

    /// Queues memberships to leave in `work`.
    pub(super) fn queue_leave(&mut self, tokens: impl IntoIterator<Item = RoomToken>) {
        self.leaving.extend(tokens);
    }

    /// How many may hear the leave of `token`.
    fn audience(&self, token: RoomToken) -> usize {
        let Some(room) = self.members.get(&token).map(|m| &self.rooms[m.room_no]) else {
            return 0;
        };
        room.members.len() + room.listeners.len() + room.wide.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{join, limits, Frames};
    use super::super::Limits;
    use super::*;
    use crate::request::Event;

    #[test]
    fn a_gone_connection_leaves_a_bounded_amount_at_a_time() {
        let mut rooms = Rooms::new(Limits {
            max_members_per_room: 100,
            max_memberships_per_connection: 100,
            ..limits()
        });
        let mut out = Frames::default();
        let heard = join(&mut rooms, 1, "Listener", "Big", &mut out).unwrap();
        rooms
            .register(1, Event::UserUpdate, &heard.to_string(), &mut out)
            .unwrap();
        for i in 0..40 {
            join(&mut rooms, 2, &format!("u{i}"), "Big", &mut out).unwrap();
        }
        rooms.register(2, Event::RoomUpdate, "r", &mut out).unwrap();
        out.take();
        rooms.disconnect(2);
        assert_eq!(rooms.census().room_watchers, 0, "registrations end at once");
        let mut turns = 0;
        loop {
            let before = rooms.member_count();
            rooms.work(100, &mut out);
            let more = rooms.leaving();
            let lefts = out.take().len();
            // A leave counts the room's members as its audience; the turn's last may go over.
            let counted = (lefts - 1) * (before - lefts + 1);
            assert!(
                counted <= 100,
                "{lefts} leaves of {before} members in one turn"
            );
            turns += 1;
            if !more {
                break;
            }
        }
        out.take();
        assert!(turns >= 8, "{turns}");
        assert_eq!(rooms.member_count(), 1);
        let census = rooms.census();
        assert_eq!(census.memory, census.memory_recount);
        assert_eq!(census.indexed_members, 1);
    }
}
