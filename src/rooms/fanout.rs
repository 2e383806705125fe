//! The fan-out of one room event to its recipients, each in its dialect: Thunder members
//! through their registrations, Kurento members straight to their connection, listeners under
//! their listen id, connections with a connection-wide registration once each with `"room"`
//! added. The Thunder params are built once by the caller, and the notification's text after
//! the method once here (`wire::notification_tail`); the Kurento frame and the params with
//! `"room"` at most once each, on their first recipient. Per recipient only bytes are copied:
//! the frame header, the notification's start up to its method (which a registration keeps
//! whole, `Watcher::head`) and that tail. A `message` goes to the members through the room's
//! recipient list, kept ready (`rooms/recipients.rs`).

use std::borrow::Cow;
use std::cell::{Cell, OnceCell};

use super::recipients::Recipient;
use super::{ConnId, ConnIndex, Kind, Member, Owner, Room, Sink};
use crate::idmap::IdMap;
use crate::request::Event;
use crate::room_token::RoomToken;
use crate::wire;

/// Room for a registration's head before a message's tail (`wire::SharedTail`): the head
/// `{"jsonrpc":"2.0","method":"<token>.<id>.message"` of an id of up to about 40 bytes; a longer
/// one makes more room.
const HEAD_ROOM: usize = 96;

/// One room event in every dialect: the Thunder `params` (built once by the caller) and the
/// Kurento frame, built on first use by a Kurento recipient and then reused.
pub(super) struct Notice<'a> {
    event: Event,
    /// `,"params":<params>}`, what every Thunder recipient's frame ends with.
    tail: Cow<'a, str>,
    kurento: &'a dyn Fn() -> String,
    kurento_text: OnceCell<String>,
    /// `params` with `"room"` added, for connection-wide registrations.
    with_room: OnceCell<String>,
    /// The buffer the frames to a room's recipients are made in (`wire::SharedTail`).
    frames: Cell<Vec<u8>>,
}

impl<'a> Notice<'a> {
    pub(super) fn new(
        event: Event,
        params: &'a str,
        kurento: &'a dyn Fn() -> String,
    ) -> Notice<'a> {
        Notice::with_tail(event, Cow::Owned(wire::notification_tail(params)), kurento)
    }

    /// The event whose notification tail (`wire::notification_tail`) the caller has built.
    pub(super) fn with_tail(
        event: Event,
        tail: Cow<'a, str>,
        kurento: &'a dyn Fn() -> String,
    ) -> Notice<'a> {
        Notice {
            event,
            tail,
            kurento,
            kurento_text: OnceCell::new(),
            with_room: OnceCell::new(),
            frames: Cell::default(),
        }
    }

    /// Makes the frames to a room's recipients in `buf` (kept from an earlier event).
    pub(super) fn with_frames(self, buf: Vec<u8>) -> Notice<'a> {
        self.frames.set(buf);
        self
    }

    /// The buffer the frames were made in, for the next event.
    pub(super) fn into_frames(self) -> Vec<u8> {
        self.frames.into_inner()
    }

    fn params(&self) -> &str {
        wire::tail_params(&self.tail)
    }

    /// To every member of `room`, to its listeners and to the connections registered for the
    /// whole connection that are in it (`room.wide`).
    pub(super) fn to_room(
        &self,
        members: &IdMap<RoomToken, Member>,
        conns: &IdMap<ConnId, ConnIndex>,
        room: &Room,
        sink: &mut impl Sink,
    ) {
        if self.event == Event::Message {
            self.to_recipients(room.recipients.get(members, &room.members, sink), sink);
        } else {
            self.to_members(members, room.members.iter(), sink);
        }
        for l in &room.listeners {
            let method = l.method_json(self.event);
            sink.send(l.conn, &wire::notification_to(method, &self.tail));
        }
        self.to_wide(conns, room, room.wide.iter().copied(), sink);
    }

    /// To the connection-wide registrations for this event of each of `recipients` (each
    /// once; the caller names each connection once), with `"room"` added to the params.
    pub(super) fn to_wide(
        &self,
        conns: &IdMap<ConnId, ConnIndex>,
        room: &Room,
        recipients: impl Iterator<Item = ConnId>,
        sink: &mut impl Sink,
    ) {
        for conn in recipients {
            let Some(index) = conns.get(&conn) else {
                continue;
            };
            for w in index.rare().wide.iter().filter(|w| w.event == self.event) {
                let params = self
                    .with_room
                    .get_or_init(|| with_room(self.params(), &room.name_json));
                sink.send(conn, &wire::notification(w.method_json(), params));
            }
        }
    }

    /// To a room's kept recipients (`rooms/recipients.rs`): what `to_members` sends to all
    /// its members, without a lookup per member or per connection.
    /// A Thunder recipient's frame is made in front of the tail, written once
    /// (`wire::SharedTail`), and goes to the sink as one slice.
    fn to_recipients(&self, list: &[Recipient], sink: &mut impl Sink) {
        if list.is_empty() {
            return;
        }
        let mut frames = wire::SharedTail::new(self.frames.take(), &self.tail, HEAD_ROOM);
        for r in list {
            match r.head() {
                Some(head) => sink.send_frame(r.slot, r.conn, frames.frame(head)),
                None => {
                    let text = self.kurento_text.get_or_init(|| (self.kurento)());
                    sink.send_at(r.slot, r.conn, &[text]);
                }
            }
        }
        self.frames.set(frames.into_buf());
    }

    /// To the given members only, each in its dialect.
    pub(super) fn to_members<'t>(
        &self,
        members: &IdMap<RoomToken, Member>,
        tokens: impl Iterator<Item = &'t RoomToken>,
        sink: &mut impl Sink,
    ) {
        for token in tokens {
            let member = &members[token];
            match &member.kind {
                Kind::Thunder { watchers } => {
                    for w in watchers.iter().filter(|w| w.event == self.event) {
                        sink.send(w.conn, &wire::notification_from(w.head(), &self.tail));
                    }
                }
                Kind::Kurento => {
                    // A Kurento membership is always a WebSocket connection's.
                    if let Owner::WebSocket(conn) = member.owner {
                        let text = self.kurento_text.get_or_init(|| (self.kurento)());
                        sink.send(conn, &[text]);
                    }
                }
            }
        }
    }
}

/// `params` (a JSON object) with `"room":<room_json>` added as its last member.
pub(super) fn with_room(params: &str, room_json: &str) -> String {
    let open = params.strip_suffix('}').unwrap_or(params);
    let sep = if open.ends_with('{') { "" } else { "," };
    format!(r#"{open}{sep}"room":{room_json}}}"#)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::super::tests::{join_kurento, limits, Frames};
    use super::super::Rooms;
    use super::*;

    #[test]
    fn the_kurento_frame_is_built_once_per_event() {
        let mut rooms = Rooms::new(limits());
        let mut out = Frames::default();
        for (conn, user) in [(1, "K1"), (2, "K2"), (3, "K3")] {
            join_kurento(&mut rooms, conn, user, "R", &mut out).unwrap();
        }
        out.take();
        let built = Cell::new(0);
        let kurento = || {
            built.set(built.get() + 1);
            crate::kurento::participant_left("\"X\"")
        };
        let notice = Notice::new(Event::UserUpdate, "{}", &kurento);
        notice.to_room(&rooms.members, &rooms.conns, &rooms.rooms["R"], &mut out);
        assert_eq!(out.take().len(), 3);
        assert_eq!(built.get(), 1, "built once for three Kurento members");
        let unused = Notice::new(Event::UserUpdate, "{}", &kurento);
        let none: [RoomToken; 0] = [];
        unused.to_members(&rooms.members, none.iter(), &mut out);
        assert_eq!(built.get(), 1, "not built without a Kurento recipient");
    }
}
