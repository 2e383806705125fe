//! The model test's harness: random actions from several clients, sent as frame text through
//! the real edge (`engine::text_command`, `request::parse`) into the real `Engine` with fake
//! sockets and a clock it is handed, and every byte the clients get checked against the model.
//!
//! Where it lives: `tests/model.rs` runs seeded cases in `make test`; the cargo-fuzz target
//! `fuzz/fuzz_targets/model.rs` includes this directory with `#[path]` and drives the same
//! harness from the fuzzer's bytes. So nothing here may use a dev-dependency: every choice
//! comes through the `Dice` trait (a seeded `fastrand::Rng` in the test, `Bytes` under the
//! fuzzer).
//!
//! A case: settings (dialect, default room, small limits, maybe room history with a large or
//! a small budget, maybe small byte caps), then batches of one to three actions
//! (`actions.rs`), each applied to the engine and to the model (`reference.rs`); after
//! each batch the outboxes are flushed into the fake sockets (`wire.rs`), which take bytes in
//! pieces and sometimes refuse them, and each client's frames are compared with the model's:
//! nothing lost, nothing doubled, in order per client (one action's events to one client in
//! any order, its reply last), the engine's census equal to the model's counts. At the end
//! every connection goes and every HTTP membership expires, and nothing may be left.
//!
//! Room history is the one place the model cannot say everything in advance: which old
//! messages a small budget has dropped depends on the engine's byte accounting. So when history
//! is on, the harness writes out what the engine sent for each Messenger call right away and
//! hands the model the history frames among it (`Model::observed`), which checks them against
//! what it allows and learns from them (`reference/history.rs`).

pub mod actions;
mod census;
pub mod controller;
pub mod reference;
pub mod summary;
pub mod wire;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use messenger::acl::Origin;
use messenger::caps::Caps;
use messenger::config::{Compat, Config};
use messenger::engine::{self, Answer, Census, Command, Dialect, Engine, Held};
use messenger::error::RpcError;
use messenger::request::{self, Designators, Rejection};
use serde_json::Value;

use actions::{chance, one, Action, Call, ConnId};
use reference::{Caps as CapsModel, Expect, Model, Observed, Settings, Want};
pub use summary::Summary;
use wire::{Bindings, FakeSocket, Wire};

/// Where a case's choices come from.
pub trait Dice {
    /// A number below `n` (0 when `n` is 0 or 1).
    fn below(&mut self, n: usize) -> usize;
    /// Whether the choices have run out (the case then ends).
    fn exhausted(&self) -> bool {
        false
    }
}

/// Choices read from bytes, one byte each: the fuzzer's input.
pub struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Bytes<'a> {
        Bytes { data, at: 0 }
    }
}

impl Dice for Bytes<'_> {
    fn below(&mut self, n: usize) -> usize {
        let byte = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        usize::from(byte) % n.max(1)
    }

    fn exhausted(&self) -> bool {
        self.at >= self.data.len()
    }
}

/// Plays one case of at most `max_actions` actions; a failure says what went wrong and the
/// actions that led there.
pub fn run(dice: &mut dyn Dice, max_actions: usize) -> Result<Summary, String> {
    let mut harness = Harness::new(dice);
    let played = harness.play(dice, max_actions);
    harness.summary.capped = harness.model.tally.capped;
    harness.summary.dropped = harness.model.tally.dropped;
    harness.summary.memory_full = harness.model.tally.memory_full;
    harness.summary.lru = harness.model.tally.lru;
    played.map(|()| harness.summary).map_err(|e| {
        let from = harness.log.len().saturating_sub(40);
        let log = harness.log[from..].join("\n  ");
        format!("{e}\nthe last actions (of {}):\n  {log}", harness.log.len())
    })
}

struct Harness {
    engine: Engine<FakeSocket>,
    model: Model,
    wires: BTreeMap<ConnId, Rc<RefCell<Wire>>>,
    dialects: BTreeMap<ConnId, Dialect>,
    /// The byte caps of the case's settings, as the edge reads them.
    caps: Caps,
    /// Per connection, the model's frames for each action since the last flush.
    pending: BTreeMap<ConnId, Vec<Vec<Want>>>,
    now: Instant,
    ids: u64,
    /// Every token and session id the engine has shown (each must be new).
    seen: HashSet<String>,
    log: Vec<String>,
    summary: Summary,
    /// `send`s held as a reader holds them (`engine::Held`): a run of one connection's
    /// consecutive `send`s reaches the engine as one `Command::Sends`, applied before any
    /// other command and before every flush, so the engine sees everything in the actions'
    /// order. Only without history, where a `send` changes no room memory the next action's
    /// model reads.
    held: Held<FakeSocket, ()>,
}

impl Harness {
    fn new(dice: &mut dyn Dice) -> Harness {
        let defaults = Config::default();
        let (history, history_bytes) = match chance(dice, 40) {
            true => (
                *one(dice, &[1, 2, 3, 5]),
                *one(dice, &[1 << 20, 700, 1200, 2500]),
            ),
            false => (0, defaults.history_bytes),
        };
        let caps = match chance(dice, 30) {
            true => CapsModel {
                user: 12,
                room: 12,
                id: 30,
                message: 24,
                acl_patterns: 1,
                acl_pattern: 24,
            },
            false => CapsModel {
                user: defaults.max_user_bytes,
                room: defaults.max_room_bytes,
                id: defaults.max_id_bytes,
                message: defaults.max_message_bytes,
                acl_patterns: defaults.max_acl_patterns,
                acl_pattern: defaults.max_acl_pattern_bytes,
            },
        };
        // Room state costs a few hundred bytes a room, membership or registration: the small
        // budget refuses new state after a handful (half of it), with room to spare for the
        // queues of one batch, so no queue is cut off for the budget.
        let memory = match chance(dice, 25) {
            true => MEMORY_SMALL,
            false => 1 << 30,
        };
        let s = Settings {
            r5: chance(dice, 30),
            default_room: chance(dice, 25).then_some("Lobby"),
            server_name: "srv",
            ttl: Duration::from_secs(60),
            max_rooms: 3,
            max_members: 3,
            max_memberships: 3,
            max_registrations: 4,
            history,
            history_bytes,
            caps,
            max_http: *one(dice, &[1, 2, 100]),
            memory,
        };
        let config = Config {
            compat: if s.r5 { Compat::R5 } else { Compat::Rdk },
            default_room: s.default_room.unwrap_or("").to_owned(),
            server_name: s.server_name.to_owned(),
            http_membership_ttl: s.ttl,
            max_rooms: s.max_rooms,
            max_members_per_room: s.max_members,
            max_memberships_per_connection: s.max_memberships,
            max_registrations_per_connection: s.max_registrations,
            max_outbound_bytes: 1 << 30,
            history: s.history,
            history_bytes: s.history_bytes,
            max_user_bytes: caps.user,
            max_room_bytes: caps.room,
            max_id_bytes: caps.id,
            max_message_bytes: caps.message,
            max_acl_patterns: caps.acl_patterns,
            max_acl_pattern_bytes: caps.acl_pattern,
            max_http_memberships: s.max_http,
            max_memory_bytes: s.memory,
            ..defaults
        };
        let log = vec![format!("{s:?}")];
        let now = Instant::now();
        Harness {
            engine: Engine::new(&config, now),
            model: Model::new(s),
            wires: BTreeMap::new(),
            dialects: BTreeMap::new(),
            caps: Caps::from(&config),
            pending: BTreeMap::new(),
            now,
            ids: 0,
            seen: HashSet::new(),
            log,
            summary: Summary::default(),
            held: Held::default(),
        }
    }

    fn play(&mut self, dice: &mut dyn Dice, max_actions: usize) -> Result<(), String> {
        while self.summary.actions < max_actions && !dice.exhausted() {
            if chance(dice, 10) {
                for action in actions::burst(dice, &self.model, &mut self.ids) {
                    self.act(dice, action)?;
                }
            }
            for _ in 0..=dice.below(3) {
                let action = actions::pick(dice, &self.model, &mut self.ids);
                if matches!(action, Action::Gone { .. }) {
                    // What a client was sent before its reader ended is written first: at
                    // `Gone` the engine writes only what the socket takes at once.
                    self.settle()?;
                }
                self.act(dice, action)?;
            }
            self.settle()?;
        }
        self.finish(dice)
    }

    /// Applies one action to the engine and to the model.
    fn act(&mut self, dice: &mut dyn Dice, action: Action) -> Result<(), String> {
        self.summary.actions += 1;
        self.log.push(format!("{action:?}"));
        let same = matches!(action, Action::Call { conn, call: Call::Send { .. }, .. } if self.held.conn().is_none_or(|c| c == conn));
        if !same {
            self.release();
        }
        self.model.memory_full = self.engine.census().rooms.memory >= self.model.s.memory / 2;
        let replays = match &action {
            Action::Call { conn, .. } if self.model.s.history > 0 => Some(*conn),
            _ => None,
        };
        let before = match replays {
            Some(conn) => self
                .drain()
                .map(|()| self.wires[&conn].borrow().bytes.len())?,
            None => 0,
        };
        let answer = self.drive_engine(dice, &action)?;
        if let Some(conn) = replays {
            self.drain()?;
            self.model.observed = self.history_frames(conn, before)?;
        }
        let expect = self.model.apply(&action, self.now);
        if !self.model.problems.is_empty() {
            return Err(self.model.problems.join("\n"));
        }
        if let Some(key) = self.model.observed.keys().next() {
            return Err(format!("history frames the model does not expect: {key:?}"));
        }
        if let Some(answer) = answer {
            self.check_answer(&action, answer, &expect)?;
        }
        self.expect(expect);
        Ok(())
    }

    /// What the action is on the engine's side; the answer if it is an HTTP call or a health
    /// check.
    fn drive_engine(
        &mut self,
        dice: &mut dyn Dice,
        action: &Action,
    ) -> Result<Option<Answer>, String> {
        let cmd = match action {
            Action::Open {
                kurento,
                origin,
                admin,
                implicit,
            } => {
                let conn = self.model.next_conn();
                let wire = Rc::new(RefCell::new(Wire::default()));
                let (piece, stall_every) = *one(
                    dice,
                    &[(usize::MAX, 0), (7, 0), (1, 0), (64, 3), (usize::MAX, 2)],
                );
                self.wires.insert(conn, wire.clone());
                let dialect = match kurento {
                    true => Dialect::Kurento(self.caps),
                    false => Dialect::Messenger(designators(*implicit, self.caps)),
                };
                self.dialects.insert(conn, dialect);
                Some(Command::Open {
                    conn,
                    socket: FakeSocket {
                        wire,
                        piece,
                        stall_every,
                    },
                    origin: origin.and_then(Origin::parse).map(Box::new),
                    kurento: *kurento,
                    admin: *admin,
                })
            }
            Action::Call {
                conn,
                id,
                call,
                prefix,
            } => self.frame(*conn, &call.text(id, prefix)),
            Action::Kurento { conn, id, call } => self.frame(*conn, &call.text(id)),
            Action::Controller {
                conn: Some(conn),
                id,
                call,
                prefix,
            } => self.frame(*conn, &call.text(id, prefix)),
            Action::Controller {
                conn: None,
                id,
                call,
                prefix,
            } => Some(Command::Http {
                call: Box::new(request::parse(
                    &call.text(id, prefix),
                    &designators(false, self.caps),
                )),
                origin: None,
                admin: false,
                reply: (),
            }),
            Action::Malformed { conn, which } => {
                self.frame(*conn, actions::malformed()[*which].text)
            }
            Action::Http {
                id,
                call,
                origin,
                admin,
            } => {
                let text = call.text(id, "Messenger.1.");
                Some(Command::Http {
                    call: Box::new(request::parse(&text, &designators(false, self.caps))),
                    origin: origin.and_then(Origin::parse).map(Box::new),
                    admin: *admin,
                    reply: (),
                })
            }
            Action::Limited { conn, id } => {
                let rejection = Rejection {
                    id: id.json().expect("an id").to_string(),
                    error: RpcError::Unavailable("rate limit".into()),
                    answer: true,
                };
                engine::refused(*conn, rejection)
            }
            Action::Pong { conn } => Some(Command::Raw {
                conn: *conn,
                bytes: vec![0x8A, 0],
            }),
            Action::Close { conn } => Some(Command::Close {
                conn: *conn,
                code: 1009,
                reason: "message too big".into(),
            }),
            Action::Gone { conn } => Some(Command::Gone { conn: *conn }),
            Action::Advance { by } => {
                self.now += *by;
                Some(Command::Tick)
            }
            Action::Health => Some(Command::Health { reply: () }),
        };
        let Some(cmd) = cmd else {
            return Ok(None);
        };
        if matches!(cmd, Command::Send { .. }) && self.model.s.history == 0 && dice.below(2) == 0 {
            let apply = applier(&mut self.engine, self.now, &mut self.summary.runs);
            let _ = self.held.hand(cmd, apply);
            return Ok(None);
        }
        self.release();
        let answer = self.engine.apply(cmd, self.now).map(|((), answer)| answer);
        // Memberships ending many at once leave over several dispatcher turns; the model ends
        // them within the action, so the turns are all taken before anything else happens.
        while self.engine.work(self.now) {}
        Ok(answer)
    }

    /// Applies the held `send`s, if any.
    fn release(&mut self) {
        let apply = applier(&mut self.engine, self.now, &mut self.summary.runs);
        let _ = self.held.release(apply);
    }

    /// Writes out everything the engine has queued for its clients: flushes, then lets the
    /// clock run to each stalled socket's retry (the model's clock too: time only moves on,
    /// and both read the same `now`).
    fn drain(&mut self) -> Result<(), String> {
        self.release();
        let mut rounds = 0;
        self.engine.flush(self.now);
        while let Some(at) = self.engine.next_retry() {
            rounds += 1;
            if rounds > 100_000 {
                return Err("the outboxes never drain".into());
            }
            self.now = self.now.max(at);
            self.engine.flush(self.now);
        }
        Ok(())
    }

    /// The history frames (`"history": true`) among what `conn` was sent after its first
    /// `from` bytes, without taking them from its wire: their params by method and by the
    /// room they name.
    fn history_frames(&self, conn: ConnId, from: usize) -> Result<Observed, String> {
        let mut copy = Wire::default();
        copy.bytes = self.wires[&conn].borrow().bytes[from..].to_vec();
        let frames = wire::decode(&mut copy).map_err(|e| format!("connection {conn}: {e}"))?;
        let mut seen = Observed::new();
        for frame in frames {
            let Want::Json(v) = frame else { continue };
            if v["params"]["history"] != Value::Bool(true) {
                continue;
            }
            let method = v["method"].as_str().unwrap_or_default().to_owned();
            let room = v["params"]["room"].as_str().map(str::to_owned);
            seen.entry((method, room))
                .or_default()
                .push(v["params"].clone());
        }
        Ok(seen)
    }

    /// What the edge makes of a text frame on `conn`, as the reader does within its rate.
    fn frame(&self, conn: ConnId, text: &str) -> Option<Command<FakeSocket, ()>> {
        match engine::text_command(conn, text, &self.dialects[&conn]) {
            Ok(cmd) => Some(cmd),
            Err(rejection) => engine::refused(conn, rejection),
        }
    }

    /// Checks an HTTP answer or the health numbers right away.
    fn check_answer(
        &mut self,
        action: &Action,
        answer: Answer,
        expect: &Expect,
    ) -> Result<(), String> {
        match (answer, &expect.http) {
            (Answer::Http(got), Some(want)) => {
                let got =
                    got.map(|text| serde_json::from_str::<Value>(&text).map(wire::without_data));
                let got = got
                    .transpose()
                    .map_err(|e| format!("HTTP answer not JSON: {e}"))?;
                let mut binds = Bindings::default();
                let same = match (want, &got) {
                    (Some(w), Some(g)) => wire::matches(w, g, &mut binds),
                    (None, None) => true,
                    _ => false,
                };
                if !same {
                    return Err(format!("HTTP answer {got:?}, the model wants {want:?}"));
                }
                self.summary.count(&Want::Json(got.unwrap_or(Value::Null)));
                self.learn(binds)
            }
            (Answer::Health(h), None) if matches!(action, Action::Health) => {
                let want = (self.model.rooms.len(), self.model.members.len());
                if (h.rooms, h.members) != want {
                    return Err(format!(
                        "health {h:?}, the model has (rooms, members) {want:?}"
                    ));
                }
                Ok(())
            }
            (answer, _) => Err(format!("unexpected answer {answer:?}")),
        }
    }

    /// Files the model's frames for this action, one group per connection.
    fn expect(&mut self, expect: Expect) {
        let mut groups: BTreeMap<ConnId, Vec<Want>> = BTreeMap::new();
        for (conn, want) in expect.frames {
            groups.entry(conn).or_default().push(want);
        }
        for (conn, group) in groups {
            self.pending.entry(conn).or_default().push(group);
        }
    }

    /// Flushes the outboxes into the fake sockets, decodes every client's frames and compares
    /// them with the model's; then the census.
    fn settle(&mut self) -> Result<(), String> {
        self.drain()?;
        let mut binds = Bindings::default();
        let mut gone = Vec::new();
        for (conn, wire) in &self.wires {
            let mut wire = wire.borrow_mut();
            let got = wire::decode(&mut wire).map_err(|e| format!("connection {conn}: {e}"))?;
            let groups = self.pending.remove(conn).unwrap_or_default();
            wire::compare(&groups, &got, &mut binds)
                .map_err(|e| format!("connection {conn}: {e}"))?;
            got.iter().for_each(|frame| self.summary.count(frame));
            if wire.after_shutdown {
                return Err(format!("connection {conn}: written after shutdown"));
            }
            if wire.shut_read {
                return Err(format!("connection {conn}: cut off"));
            }
            match self.model.conns.get(conn) {
                Some(c) if c.closing && !wire.shut_write => {
                    return Err(format!(
                        "connection {conn}: closed but not shut down for writing"
                    ));
                }
                None if !wire.shut_both => {
                    return Err(format!("connection {conn}: gone but its socket is open"))
                }
                None => gone.push(*conn),
                Some(_) => {}
            }
        }
        if let Some(conn) = self.pending.keys().next() {
            return Err(format!(
                "the model has frames for connection {conn}, which has no socket"
            ));
        }
        for conn in gone {
            self.wires.remove(&conn);
            self.dialects.remove(&conn);
        }
        self.learn(binds)?;
        self.census()
    }

    /// Teaches the model the tokens and session ids the engine showed; each must be new.
    fn learn(&mut self, binds: Bindings) -> Result<(), String> {
        for (key, token) in binds.tokens {
            if !self.seen.insert(token.clone()) {
                return Err(format!("token {token} shown for a second membership"));
            }
            self.model.bind_token(key as usize, token);
        }
        for (conn, session) in binds.sessions {
            if !self.seen.insert(session.clone()) {
                return Err(format!("session id {session} shown for a second session"));
            }
            self.model.bind_session(conn, session);
        }
        Ok(())
    }

    /// Maybe a shutdown, then every connection goes and every HTTP membership expires:
    /// nothing may be left.
    fn finish(&mut self, dice: &mut dyn Dice) -> Result<(), String> {
        if chance(dice, 30) {
            self.log.push("Shutdown".into());
            self.release();
            self.engine.apply::<()>(Command::Shutdown, self.now);
            let expect = self.model.shutdown();
            self.expect(expect);
            self.settle()?;
        }
        let open: Vec<ConnId> = self.model.conns.keys().copied().collect();
        for conn in open {
            self.settle()?;
            self.act(dice, Action::Gone { conn })?;
        }
        let by = self.model.s.ttl + Duration::from_secs(1);
        self.act(dice, Action::Advance { by })?;
        self.settle()?;
        let left = self.engine.census();
        if left != Census::default() {
            return Err(format!(
                "left after every connection went and the TTL passed: {left:#?}"
            ));
        }
        Ok(())
    }
}

/// What the harness hands held `send`s to: the engine at `now`, counting each run in `runs`.
fn applier<'a>(
    engine: &'a mut Engine<FakeSocket>,
    now: Instant,
    runs: &'a mut usize,
) -> impl FnMut(Command<FakeSocket, ()>) -> Result<(), ()> + 'a {
    move |cmd| {
        *runs += usize::from(matches!(cmd, Command::Sends { .. }));
        engine.apply(cmd, now);
        Ok(())
    }
}

/// The small memory budget some cases run with (`max_memory_bytes`).
const MEMORY_SMALL: usize = 8 * 1024;

fn designators(implicit: bool, caps: Caps) -> Designators {
    Designators::new("Messenger".into(), implicit, caps)
}
