//! The model's room history (SPEC §5): with `history` above 0 each room keeps its last
//! messages (`send`, `announce`, HTTP sends and Kurento `sendMessage`; never targeted ones),
//! within one byte budget for all rooms together, and replays them, oldest first and marked
//! `"history": true` (`"room"` added for a connection-wide registration), to a new `message`
//! registration or listen, before anything live. The history goes when the room goes.
//!
//! The budget, checked without restating the engine's accounting: the model keeps, per room,
//! the last `history` messages of the room's life, each the engine may still hold. When the
//! budget bites, the engine drops the globally oldest first, so what a room replays must be
//! the newest of those, in order (a suffix). A replay teaches the model where the engine's
//! drops have got to: every message up to the newest one missing from it is gone, in every
//! room. A message is *sure* to be held while a generous upper bound of everything the engine
//! may hold (`bound`) has stayed within the budget since it was kept; a replay that misses a
//! sure message is wrong. With a large budget everything is sure, and every replay is exact.
//! Checked besides, at every settle (`tests/model/mod.rs`): the engine's own count of history
//! bytes never exceeds the budget, and it holds no fewer messages than are sure and no more
//! than the model allows.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::super::actions::ConnId;
use super::wide::with_room;
use super::{notification, Model};

/// One message a room's history may still hold.
#[derive(Debug, Clone)]
pub struct Kept {
    /// Its place in the order of all kept messages.
    pub seq: u64,
    pub user: String,
    pub message: String,
    /// Surely still held by the engine (see the module documentation).
    pub sure: bool,
}

/// The history frames the engine sent in one action: the params of each, in order, by method
/// and by room (the room only for a connection-wide registration, whose frames name it).
pub type Observed = BTreeMap<(String, Option<String>), Vec<Value>>;

/// The history's order of messages and what replays have taught the model.
#[derive(Debug, Default)]
pub struct Budget {
    next_seq: u64,
    /// Every message up to this one has been dropped for the budget.
    pub dropped_to: Option<u64>,
}

/// What the engine counts for one message besides its params, at most: an allocator header.
const PER_MESSAGE: usize = 16;
/// At most what the engine counts for a room's name (kept twice, with headers and map
/// entries), besides twice its length.
const PER_NAME: usize = 256;
/// At most the bytes of one slot of a room's log.
const PER_SLOT: usize = 32;

/// The length of a message's params as the engine keeps them: `{"user":..,"message":..}`.
fn params_len(user: &str, message: &str) -> usize {
    let json = |s: &str| serde_json::to_string(s).expect("a string").len();
    r#"{"user":,"message":}"#.len() + json(user) + json(message)
}

/// At most what a room's log of `len` messages costs apart from their text: its name, and
/// its slots (a log grows by doubling from 4 and gives slots back only when more than 16 are
/// three quarters empty, so it never has more than `max(16, 4 * len)`).
fn room_bound(name: &str, len: usize) -> usize {
    2 * name.len() + PER_NAME + 16.max(4 * len) * PER_SLOT
}

impl Model {
    /// `message` from `user` to the whole of `room`: kept in its history.
    pub(super) fn keep(&mut self, room: &str, user: &str, message: &str) {
        if self.s.history == 0 {
            return;
        }
        // The engine does not keep a message that could never fit; the cases' budgets are
        // large enough that none is such, so that the model stays exact.
        let alone = 2 * room.len() + PER_NAME + PER_SLOT + params_len(user, message) + PER_MESSAGE;
        assert!(
            alone <= self.s.history_bytes,
            "model settings: history_bytes {} is too small for one message",
            self.s.history_bytes
        );
        let seq = self.kept.next_seq;
        self.kept.next_seq += 1;
        let per_room = self.s.history;
        let history = &mut self.room_mut(room).history;
        history.push(Kept {
            seq,
            user: user.to_owned(),
            message: message.to_owned(),
            sure: false,
        });
        if history.len() > per_room {
            history.remove(0);
        }
        if self.bound() <= self.s.history_bytes {
            // The engine cannot have dropped anything for this message: it holds it.
            let newest = self.room_mut(room).history.last_mut().expect("just kept");
            newest.sure = true;
        } else {
            // It may have dropped any of the others for it.
            let all = self.rooms.iter_mut().flat_map(|r| r.history.iter_mut());
            all.for_each(|k| k.sure = false);
        }
    }

    /// At most what the engine's history counts against the budget now.
    fn bound(&self) -> usize {
        let rooms = self.rooms.iter().filter(|r| !r.history.is_empty());
        rooms
            .map(|r| {
                let text: usize = r
                    .history
                    .iter()
                    .map(|k| params_len(&k.user, &k.message) + PER_MESSAGE)
                    .sum();
                room_bound(&r.name, r.history.len()) + text
            })
            .sum()
    }

    /// What a new `message` registration (or listen) of `conn` gets first: `room`'s history
    /// under `method` (JSON text of the notification's method), `"room"` added when `wide`.
    /// Checked against the history frames the engine was seen sending, and learnt from.
    pub(super) fn replay_history(&mut self, conn: ConnId, room: &str, method: &str, wide: bool) {
        if self.s.history == 0 || self.conns[&conn].closing {
            return;
        }
        let key = (method.to_owned(), wide.then(|| room.to_owned()));
        let seen = self.observed.remove(&key).unwrap_or_default();
        let held = self.room(room).expect("room").history.clone();
        let Some(dropped) = held.len().checked_sub(seen.len()) else {
            let why = format!(
                "replayed {} messages; the room may hold {held:?}",
                seen.len()
            );
            return self.problem(method, room, why);
        };
        let newest = &held[dropped..];
        let same = |k: &Kept, got: &Value| got["user"] == k.user && got["message"] == k.message;
        if !newest.iter().zip(&seen).all(|(k, got)| same(k, got)) {
            let why = format!("replayed {seen:?}, not the newest of {held:?}, oldest first");
            return self.problem(method, room, why);
        }
        if let Some(k) = held[..dropped].iter().find(|k| k.sure) {
            let why = format!("{k:?} is missing, though the budget always had room for it");
            return self.problem(method, room, why);
        }
        let bytes: usize = newest
            .iter()
            .map(|k| params_len(&k.user, &k.message) + PER_MESSAGE)
            .sum();
        if bytes > self.s.history_bytes {
            let why = format!(
                "replayed {bytes} bytes; the budget is {}",
                self.s.history_bytes
            );
            return self.problem(method, room, why);
        }
        if dropped > 0 {
            self.tally.dropped += 1;
            self.dropped_to(held[dropped - 1].seq);
        }
        for k in newest {
            let params = json!({"user": k.user, "message": k.message, "history": true});
            let params = if wide {
                with_room(&params, room)
            } else {
                params
            };
            self.send(conn, notification(method.to_owned(), params));
        }
    }

    /// Every message up to `seq` has been dropped: the oldest go first, in all rooms.
    fn dropped_to(&mut self, seq: u64) {
        let upto = self.kept.dropped_to.map_or(seq, |d| d.max(seq));
        self.kept.dropped_to = Some(upto);
        let mut sure = Vec::new();
        for r in &mut self.rooms {
            sure.extend(
                r.history
                    .iter()
                    .filter(|k| k.seq <= upto && k.sure)
                    .cloned(),
            );
            r.history.retain(|k| k.seq > upto);
        }
        if let Some(k) = sure.first() {
            let why = format!("{k:?} was dropped, though the budget always had room for it");
            self.problems.push(why);
        }
    }

    fn problem(&mut self, method: &str, room: &str, why: String) {
        self.problems
            .push(format!("history of {room:?} under {method}: {why}"));
    }

    /// (sure, possible): the messages the engine's history surely holds, and may hold.
    pub fn history_counts(&self) -> (usize, usize) {
        let all = self.rooms.iter().flat_map(|r| &r.history);
        let sure = all.clone().filter(|k| k.sure).count();
        (sure, all.count())
    }
}
