//! Memberships joined over HTTP (`POST /jsonrpc`). They belong to no connection: every HTTP
//! caller is one owner, so a script joins, sends and leaves in three `curl` calls. Each lasts
//! until it is left or has gone unused for `http_membership_ttl` (then it counts as a leave).
//!
//! They have their own cap, `max_http_memberships` (default a tenth of `max_rooms`), instead of
//! the per-connection limit, and when it is reached a new HTTP join first ends the least
//! recently used one (a leave: the others hear `left`). So a script that joins and never
//! leaves cannot lock the next script out, and HTTP alone never takes more than that many of
//! `max_rooms` from WebSocket users. Every caller comes from loopback with no identity the
//! server can trust, so there is nobody to charge per caller; the oldest unused membership is
//! the one least likely to matter.
//!
//! `Rooms::http` keeps them in order of last use (a join, or a `send`, `sendto` or `whisper`
//! through it, moves one to the back), which is also the order they expire in: expiry looks at
//! the front only.

use std::time::Instant;

use super::{Owner, RoomToken, Rooms, Sink};

impl Rooms {
    /// Marks an HTTP membership as used: it now lasts until `expires`, and is the most
    /// recently used.
    pub fn touch(&mut self, roomid: &str, expires: Instant) {
        if let Some(token) = RoomToken::parse(roomid) {
            self.touch_token(token, expires);
        }
    }

    /// The same for a room id already read as a token.
    pub fn touch_token(&mut self, token: RoomToken, expires: Instant) {
        let Some(member) = self.members.get_mut(&token) else {
            return;
        };
        if member.owner != Owner::Http {
            return;
        }
        self.http_expires.insert(token, expires);
        if let Some(at) = self.http.iter().position(|t| *t == token) {
            self.http.remove(at);
            self.http.push(token);
        }
    }

    /// Queues every HTTP membership whose time ran out before `now` to leave (in `work`),
    /// least recently used first; they no longer count against `max_http_memberships`.
    pub fn expire(&mut self, now: Instant) {
        let due = self
            .http
            .iter()
            .take_while(|t| self.http_expires.get(*t).is_some_and(|e| *e <= now))
            .count();
        let due: Vec<RoomToken> = self.http.drain(..due).collect();
        self.queue_leave(due);
    }

    /// Before an HTTP join: when `max_http_memberships` are held, the least recently used
    /// one leaves.
    pub(super) fn http_make_room(&mut self, sink: &mut impl Sink) {
        while self.http.len() >= self.limits.max_http_memberships {
            let Some(oldest) = self.http.first().copied() else {
                return;
            };
            self.remove_member(oldest, sink);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{join, limits, Frames};
    use super::super::Join;
    use super::*;
    use crate::request::Event;

    fn script<'a>(user: &'a str, room: &'a str) -> Join<'a> {
        Join {
            user,
            room,
            secure: None,
            acl: None,
            origin: None,
            kurento: false,
        }
    }

    #[test]
    fn a_full_http_cap_ends_the_least_recently_used_membership() {
        let limits = super::super::Limits {
            max_rooms: 10,
            ..limits()
        };
        let mut rooms = Rooms::new(limits);
        let mut out = Frames::default();
        let now = Instant::now();
        let later = |s| now + Duration::from_secs(s);
        let a = join(&mut rooms, 1, "Alice", "R1", &mut out).unwrap();
        rooms
            .register(1, Event::UserUpdate, &a.to_string(), &mut out)
            .unwrap();
        let mut tokens = Vec::new();
        for (n, room) in ["R1", "R2", "R3"].into_iter().enumerate() {
            let t = rooms
                .join(Owner::Http, &script("s", room), &mut out)
                .unwrap();
            rooms.touch(&t.to_string(), later(60 + n as u64));
            tokens.push(t);
        }
        // R1's membership is used again: R2's is now the least recently used.
        rooms.touch(&tokens[0].to_string(), later(70));
        out.take();
        let t = rooms.join(Owner::Http, &script("s", "R4"), &mut out);
        rooms.touch(&t.unwrap().to_string(), later(71));
        assert_eq!(rooms.held(Owner::Http).len(), 3);
        assert!(rooms.member(tokens[1]).is_none(), "R2's went");
        assert_eq!(rooms.room_count(), 3, "R2 was destroyed with it");
        assert!(out.take().is_empty(), "nobody else was in R2");
        // Two more joins: R3's then R1's go; Alice hears the script leave R1.
        for room in ["R5", "R6"] {
            let t = rooms
                .join(Owner::Http, &script("s", room), &mut out)
                .unwrap();
            rooms.touch(&t.to_string(), later(72));
        }
        let left = serde_json::json!({"user": "s", "action": "left"});
        assert_eq!(out.take(), vec![(1, format!("{a}.userupdate"), left)]);
        assert!(rooms.member(tokens[0]).is_none());
        // Expiry goes by last use, oldest first, and stops at the first that is still used.
        rooms.expire(later(71));
        rooms.work(usize::MAX, &mut out);
        assert_eq!(rooms.held(Owner::Http).len(), 2);
        rooms.expire(later(72));
        rooms.work(usize::MAX, &mut out);
        assert!(rooms.held(Owner::Http).is_empty());
        assert_eq!(rooms.census().memory, rooms.census().memory_recount);
    }
}
