//! Room history (SPEC §5, off by default): each room's last messages, within one byte budget
//! for all rooms together, replayed to a new `message` registration as ordinary `message`
//! events with `"history": true`, oldest first.
//!
//! Each kept message is stored once, as the `message` params the live fan-out already built
//! (`{"user":..,"message":..}`), so a replay copies bytes and allocates nothing: the frame is
//! those params without their closing brace, then `,"history":true}` (and `"room"` for a
//! connection-wide registration).
//!
//! The budget counts what history holds on the heap: each message's text plus an allocator
//! header, each room log's slots (its capacity, not its length) and its name (kept twice).
//! When a message would take history over the budget, the globally oldest messages (of any
//! room) are dropped until it fits; a room keeps at most `per_room` messages. A send is never
//! refused because of history, and a message too large for the whole budget is not kept.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::mem::size_of;
use std::ops::Range;

use super::{ConnId, Sink};
use crate::wire;

/// What the allocator adds to each block it hands out (a header, and rounding), counted
/// with every kept message and name.
const ALLOC_OVERHEAD: usize = 2 * size_of::<usize>();
/// What closes a replayed message's params.
const HISTORY_END: &str = r#","history":true}"#;

/// One kept message: its place in the global order and its `message` params.
struct Kept {
    seq: u64,
    params: Box<str>,
}

/// One room's kept messages, oldest first.
#[derive(Default)]
struct Log {
    kept: VecDeque<Kept>,
    /// The heap bytes of the kept messages' text (with `ALLOC_OVERHEAD` each).
    text: usize,
}

/// Every room's history and its accounting.
pub(super) struct History {
    per_room: usize,
    budget: usize,
    /// Bytes counted against `budget`.
    used: usize,
    next_seq: u64,
    logs: HashMap<String, Log>,
    /// Each non-empty log's oldest message: the first entry is the oldest message kept.
    oldest: BTreeMap<u64, String>,
}

impl History {
    /// `per_room` messages per room (0: history off) within `budget` bytes in all.
    pub(super) fn new(per_room: usize, budget: usize) -> History {
        History {
            per_room,
            budget,
            used: 0,
            next_seq: 0,
            logs: HashMap::new(),
            oldest: BTreeMap::new(),
        }
    }

    /// Bytes history holds now, as counted against the budget.
    pub(super) fn used(&self) -> usize {
        self.used
    }

    /// Messages kept in all rooms.
    pub(super) fn len_all(&self) -> usize {
        self.logs.values().map(|log| log.kept.len()).sum()
    }

    /// Messages kept in `room`.
    #[cfg(test)]
    pub(super) fn len(&self, room: &str) -> usize {
        self.logs.get(room).map_or(0, |log| log.kept.len())
    }

    /// Keeps `params` (a `message` event's params, a JSON object) as `room`'s newest message,
    /// dropping the room's oldest beyond `per_room` and the globally oldest beyond the budget.
    pub(super) fn keep(&mut self, room: &str, params: &str) {
        if self.per_room == 0 || cost_of_first(room, params) > self.budget {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if !self.logs.contains_key(room) {
            self.used += name_cost(room);
            self.logs.insert(room.to_owned(), Log::default());
            self.oldest.insert(seq, room.to_owned());
        }
        let log = self.logs.get_mut(room).expect("made above");
        let before = log.cost();
        log.text += params.len() + ALLOC_OVERHEAD;
        log.kept.push_back(Kept {
            seq,
            params: params.into(),
        });
        self.used = self.used + log.cost() - before;
        if log.kept.len() > self.per_room {
            let front = log.kept.front().map_or(seq, |k| k.seq);
            if let Some(name) = self.oldest.remove(&front) {
                self.drop_front(name);
            }
        }
        while self.used > self.budget {
            let Some((_, name)) = self.oldest.pop_first() else {
                break;
            };
            self.drop_front(name);
        }
    }

    /// Drops the oldest message of room `name`, whose entry in `oldest` the caller has just
    /// taken out; the room's next message takes its place there, or the log goes with its
    /// last message. A log that has shrunk to a quarter of its slots gives half of them back.
    fn drop_front(&mut self, name: String) {
        let Some(log) = self.logs.get_mut(&name) else {
            return;
        };
        let before = log.cost();
        let Some(gone) = log.kept.pop_front() else {
            return;
        };
        log.text -= gone.params.len() + ALLOC_OVERHEAD;
        match log.kept.front() {
            Some(next) => {
                let next = next.seq;
                if log.kept.capacity() > 16 && log.kept.len() * 4 < log.kept.capacity() {
                    log.kept.shrink_to(log.kept.len() * 2);
                }
                self.used = self.used + log.cost() - before;
                self.oldest.insert(next, name);
            }
            None => {
                self.used -= before + name_cost(&name);
                self.logs.remove(&name);
            }
        }
    }

    /// The room has gone: so does its history.
    pub(super) fn forget(&mut self, room: &str) {
        if let Some(log) = self.logs.remove(room) {
            if let Some(first) = log.kept.front() {
                self.oldest.remove(&first.seq);
            }
            self.used -= log.cost() + name_cost(room);
        }
    }

    /// Sends `room`'s history to `to` (a connection and a method as a JSON string literal),
    /// oldest first, each message marked `"history":true`; with `"room"` when `room_json` is
    /// given (a connection-wide registration).
    pub(super) fn replay(
        &self,
        room: &str,
        to: (ConnId, &str),
        room_json: Option<&str>,
        sink: &mut impl Sink,
    ) {
        let Some(log) = self.logs.get(room) else {
            return;
        };
        let (conn, method) = to;
        for kept in &log.kept {
            let open = kept.params.strip_suffix('}').unwrap_or(&kept.params);
            let [head, method, mid, _, tail] = wire::notification(method, "");
            match room_json {
                None => sink.send(conn, &[head, method, mid, open, HISTORY_END, tail]),
                Some(name) => sink.send(
                    conn,
                    &[
                        head,
                        method,
                        mid,
                        open,
                        r#","history":true,"room":"#,
                        name,
                        "}",
                        tail,
                    ],
                ),
            }
        }
    }
}

/// Writes into `tail` (cleared first) the tail of a `message` notification
/// (`wire::notification_tail`), whose params are `{"user":<user_json>,"message":<message as
/// JSON>}` (`user_json` a JSON string literal); returns where in it the message's JSON string
/// literal lies. The caller keeps `tail` for the next message (`MessageBlocks`), so a message
/// usually allocates nothing for it. `plain`: the message is known to need no escape (else it
/// is looked at here).
pub(super) fn message_tail(
    tail: &mut String,
    user_json: &str,
    message: &str,
    plain: bool,
) -> Range<usize> {
    const PIECES: [&str; 4] = [wire::PARAMS, r#"{"user":"#, r#","message":"#, "}}"];
    tail.clear();
    tail.push_str(PIECES[0]);
    tail.push_str(PIECES[1]);
    tail.push_str(user_json);
    tail.push_str(PIECES[2]);
    let start = tail.len();
    // Most messages need no escape: then the literal is the message in quotes. `plain` says
    // so when the request's parser has already looked.
    if plain || wire::plain_run(message.as_bytes(), 0) == message.len() {
        tail.reserve(message.len() + 2 + PIECES[3].len());
        tail.push('"');
        tail.push_str(message);
        tail.push('"');
    } else {
        tail.push_str(&wire::json_string(message));
    }
    let at = start..tail.len();
    tail.push_str(PIECES[3]);
    at
}

/// The blocks a message's notification tail (`message_tail`) and its frames
/// (`wire::SharedTail`) are written in, kept between messages up to `KEEP` bytes of capacity
/// each (a larger one, made for a long message, is given back after it).
#[derive(Default)]
pub(super) struct MessageBlocks {
    tail: String,
    frames: Vec<u8>,
}

impl MessageBlocks {
    /// The most capacity each block keeps between messages.
    pub(super) const KEEP: usize = 4096;

    /// Takes the blocks for one message (`give_back` returns them).
    pub(super) fn take(&mut self) -> (String, Vec<u8>) {
        (
            std::mem::take(&mut self.tail),
            std::mem::take(&mut self.frames),
        )
    }

    /// Returns the blocks after their message, each unless it grew over `KEEP`.
    pub(super) fn give_back(&mut self, tail: String, frames: Vec<u8>) {
        if tail.capacity() <= Self::KEEP {
            self.tail = tail;
        }
        if frames.capacity() <= Self::KEEP {
            self.frames = frames;
        }
    }
}

impl Log {
    /// The heap bytes this log holds apart from its name: the messages' text and its slots.
    fn cost(&self) -> usize {
        self.text + self.kept.capacity() * size_of::<Kept>()
    }
}

/// What a room's name costs history: a copy as the log's key and one in the global order,
/// and the map entries that hold them.
fn name_cost(room: &str) -> usize {
    2 * (room.len() + ALLOC_OVERHEAD)
        + size_of::<(String, Log)>()
        + size_of::<(u64, String)>()
        + ALLOC_OVERHEAD
}

/// The least a message costs when it is its room's only one.
fn cost_of_first(room: &str, params: &str) -> usize {
    name_cost(room) + params.len() + ALLOC_OVERHEAD + size_of::<Kept>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Texts(Vec<(ConnId, String)>);

    impl Sink for Texts {
        fn send(&mut self, conn: ConnId, parts: &[&str]) {
            self.0.push((conn, parts.concat()));
        }
    }

    fn message(n: usize) -> String {
        format!(r#"{{"user":"u","message":"m{n}"}}"#)
    }

    fn replayed(history: &History, room: &str) -> Vec<serde_json::Value> {
        let mut out = Texts::default();
        history.replay(room, (1, r#""x.message""#), None, &mut out);
        out.0
            .into_iter()
            .map(|(_, text)| serde_json::from_str::<serde_json::Value>(&text).unwrap())
            .map(|v| v["params"].clone())
            .collect()
    }

    /// The budget's own count, recomputed from scratch.
    fn recount(history: &History) -> usize {
        history
            .logs
            .iter()
            .map(|(name, log)| log.cost() + name_cost(name))
            .sum()
    }

    #[test]
    fn a_message_tail_escapes_as_serde_does() {
        for message in [
            "",
            "hi",
            "a\"b",
            "back\\slash",
            "tab\tnl\n\u{1}",
            "é✓ \u{7f}",
            "\"\"\"",
        ] {
            let mut tail = "left over".to_owned();
            let at = message_tail(&mut tail, r#""u""#, message, false);
            assert_eq!(&tail[at], wire::json_string(message), "{message:?}");
            let params = wire::tail_params(&tail);
            let v: serde_json::Value = serde_json::from_str(params).unwrap();
            assert_eq!(v, serde_json::json!({"user": "u", "message": message}));
            // What a parser says is plain (`Method::Send`) is written the same without a look.
            if wire::plain_run(message.as_bytes(), 0) == message.len() {
                let looked = tail.clone();
                message_tail(&mut tail, r#""u""#, message, true);
                assert_eq!(tail, looked, "{message:?}");
            }
        }
    }

    #[test]
    fn keeps_the_last_messages_of_each_room_oldest_first() {
        let mut h = History::new(3, 1 << 20);
        for n in 0..5 {
            h.keep("Lounge", &message(n));
        }
        h.keep("Den", &message(9));
        let got = replayed(&h, "Lounge");
        let want: Vec<_> = (2..5)
            .map(|n| serde_json::json!({"user":"u","message":format!("m{n}"),"history":true}))
            .collect();
        assert_eq!(got, want);
        assert_eq!(h.len("Den"), 1);
        assert!(replayed(&h, "Nowhere").is_empty());
        assert_eq!(h.used(), recount(&h));
    }

    #[test]
    fn a_wide_replay_names_the_room() {
        let mut h = History::new(3, 1 << 20);
        h.keep("Lounge", &message(1));
        let mut out = Texts::default();
        h.replay(
            "Lounge",
            (7, r#""c.message""#),
            Some(r#""Lounge""#),
            &mut out,
        );
        let v: serde_json::Value = serde_json::from_str(&out.0[0].1).unwrap();
        assert_eq!(out.0[0].0, 7);
        assert_eq!(v["method"], "c.message");
        assert_eq!(
            v["params"],
            serde_json::json!({"user":"u","message":"m1","history":true,"room":"Lounge"})
        );
    }

    #[test]
    fn the_budget_drops_the_globally_oldest() {
        let mut h = History::new(1000, 4096);
        for n in 0..200 {
            h.keep(if n % 2 == 0 { "A" } else { "B" }, &message(n));
            assert!(h.used() <= 4096, "{} after {n}", h.used());
            assert_eq!(h.used(), recount(&h));
        }
        let (a, b) = (replayed(&h, "A"), replayed(&h, "B"));
        assert!(a.len() > 5 && b.len() > 5, "{} {}", a.len(), b.len());
        assert_eq!(a.last().unwrap()["message"], "m198");
        assert_eq!(b.last().unwrap()["message"], "m199");
        let first = |v: &[serde_json::Value]| -> usize {
            v[0]["message"].as_str().unwrap()[1..].parse().unwrap()
        };
        assert!(
            first(&a).abs_diff(first(&b)) <= 1,
            "both rooms lost their oldest, not one room everything"
        );
        // A message that could never fit is not kept and drops nothing.
        let before = h.len("A");
        h.keep("A", &"x".repeat(5000));
        assert_eq!(h.len("A"), before);
    }

    #[test]
    fn forget_and_off() {
        let mut h = History::new(10, 1 << 20);
        h.keep("A", &message(1));
        h.keep("B", &message(2));
        h.forget("A");
        h.forget("A");
        assert_eq!(h.len("A"), 0);
        assert_eq!(h.used(), recount(&h));
        h.forget("B");
        assert_eq!(h.used(), 0);
        assert!(h.oldest.is_empty());
        h.keep("B", &message(3));
        assert_eq!(
            replayed(&h, "B").len(),
            1,
            "a new room of the same name starts anew"
        );
        let mut off = History::new(0, 1 << 20);
        off.keep("A", &message(1));
        assert_eq!(off.used(), 0);
        assert!(replayed(&off, "A").is_empty());
    }

    #[test]
    fn logs_give_back_their_slots() {
        let mut h = History::new(1_000_000, 1 << 20);
        for n in 0..4000 {
            h.keep("Big", &message(n));
        }
        // Another room's messages push Big's out; its slots shrink as it empties.
        for n in 0..100_000 {
            h.keep("Other", &message(n));
            if h.len("Big") < 40 {
                break;
            }
        }
        assert!((1..40).contains(&h.len("Big")), "{}", h.len("Big"));
        let big = &h.logs["Big"];
        assert!(big.kept.capacity() <= 4 * 40, "{}", big.kept.capacity());
        assert!(h.used() <= 1 << 20);
        assert_eq!(h.used(), recount(&h));
    }
}
