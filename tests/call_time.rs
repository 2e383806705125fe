//! How long the worst calls the caps and limits allow hold the dispatcher, timed on the real
//! `Engine` in memory (sockets that take everything at once), so the figure is the engine's
//! own and not the machine's scheduling: the connection-wide replay of every room a connection
//! is in, `rooms` with `max_rooms` rooms, a disconnect of `max_memberships_per_connection`
//! memberships in rooms a thousand listeners hear, and a sweep of expired HTTP memberships.
//! State is built as large as the memory budget lets it grow. `abuse_dispatcher.rs` measures
//! the same attacks from outside, through a bystander's round trips.
//!
//! Run `cargo test --release --test call_time -- --nocapture` for the figures of the box's
//! build; the bounds asserted are coarse (debug builds, noisy machines).

use std::io;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use messenger::caps::Caps;
use messenger::config::Config;
use messenger::engine::{self, Command, Dialect, Engine, WORK};
use messenger::outbox::Socket;
use messenger::request::Designators;
use serde_json::json;

/// A client socket that takes everything at once.
struct Takes;

impl Socket for Takes {
    fn send_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        Ok(bytes.len())
    }

    fn shutdown(&mut self, _: Shutdown) {}
}

/// The engine with default settings, and the clock it was started with.
struct Bench {
    engine: Engine<Takes>,
    dialect: Dialect,
    now: Instant,
    next_conn: u64,
}

impl Bench {
    fn new(config: &Config) -> Bench {
        let now = Instant::now();
        Bench {
            engine: Engine::new(config, now),
            dialect: Dialect::Messenger(Designators::new(
                "Messenger".into(),
                false,
                Caps::from(config),
            )),
            now,
            next_conn: 1,
        }
    }

    fn open(&mut self) -> u64 {
        self.open_as(false)
    }

    /// A connection that presented the `admin_token` (`announce`, `evict`).
    fn open_admin(&mut self) -> u64 {
        self.open_as(true)
    }

    fn open_as(&mut self, admin: bool) -> u64 {
        let conn = self.next_conn;
        self.next_conn += 1;
        let open = Command::Open {
            conn,
            socket: Takes,
            origin: None,
            kurento: false,
            admin,
        };
        self.engine.apply::<()>(open, self.now);
        conn
    }

    /// One call from `conn`, applied and written out; how long the engine took.
    fn call(&mut self, conn: u64, method: &str, params: serde_json::Value) -> Duration {
        let text = json!({"jsonrpc":"2.0","id":1,"method":format!("Messenger.1.{method}"),"params":params})
            .to_string();
        let cmd = engine::text_command::<Takes, ()>(conn, &text, &self.dialect)
            .unwrap_or_else(|e| panic!("{text}: {:?}", e.error));
        self.timed(cmd)
    }

    /// Applies `cmd`, then one turn of the dispatcher's `work` and `flush`; how long it took,
    /// and (by `turns`) how many more turns the work took after.
    fn timed(&mut self, cmd: Command<Takes, ()>) -> Duration {
        let started = Instant::now();
        self.engine.apply(cmd, self.now);
        self.engine.work(self.now);
        self.engine.flush(self.now);
        started.elapsed()
    }

    /// The longest of the dispatcher's turns until the work queued is done.
    fn turns(&mut self) -> (usize, Duration) {
        let mut turns = 0;
        let mut longest = Duration::ZERO;
        loop {
            let started = Instant::now();
            let more = self.engine.work(self.now);
            self.engine.flush(self.now);
            longest = longest.max(started.elapsed());
            turns += 1;
            if !more {
                return (turns, longest);
            }
        }
    }

    fn memory(&self) -> usize {
        let census = self.engine.census();
        census.rooms.memory + census.queues
    }
}

/// Joins `conn` to `room` as `u<from>` .. until `count` joined or a join is refused; how many.
fn fill(b: &mut Bench, conn: u64, room: &str, from: usize, count: usize) -> usize {
    let before = b.engine.census().rooms.members;
    for i in from..from + count {
        b.call(conn, "join", json!({"user": format!("u{i}"), "room": room}));
    }
    b.engine.census().rooms.members - before
}

/// The coarse bound for one dispatcher turn: release builds measure about a millisecond (the
/// figures are in the report); a debug build is ten to a hundred times slower.
const TURN: Duration = if cfg!(debug_assertions) {
    Duration::from_secs(3)
} else {
    Duration::from_millis(30)
};

/// One at a time, so the timings do not measure each other.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn a_connection_wide_replay_of_every_room_as_large_as_the_budget_allows() {
    let _serial = serial();
    let mut b = Bench::new(&Config::default());
    let attacker = b.open();
    for r in 0..40 {
        b.call(
            attacker,
            "join",
            json!({"user": "attacker", "room": format!("R{r}")}),
        );
    }
    // Room for the registration once the crowd has filled the budget.
    let spare = b.open();
    fill(&mut b, spare, "Spare", 0, 20);
    let mut members = 40;
    for r in 0..40 {
        let filler = b.open();
        let joined = fill(&mut b, filler, &format!("R{r}"), 0, 999);
        members += joined;
        if joined < 999 {
            break;
        }
    }
    b.engine.apply::<()>(Command::Gone { conn: spare }, b.now);
    b.turns();
    let memory = b.memory();
    let replays: Vec<Duration> = (0..10)
        .map(|n| {
            let id = json!({"event": "userupdate", "id": format!("client{n}")});
            let took = b.call(attacker, "register", id.clone());
            b.call(attacker, "unregister", id);
            took
        })
        .collect();
    let (least, most) = (replays.iter().min().unwrap(), replays.iter().max().unwrap());
    eprintln!("wide replay of {members} members (memory {memory} bytes): {least:?} to {most:?}");
    assert!(*least < TURN, "{replays:?}");
}

#[test]
fn rooms_lists_max_rooms_with_the_longest_names() {
    let _serial = serial();
    let config = Config::default();
    let mut b = Bench::new(&config);
    let conn = b.open();
    for i in 0..config.max_rooms {
        let room = format!("{i:04}{}", "r".repeat(config.max_room_bytes - 4));
        b.call(conn, "join", json!({"user": "u", "room": room}));
    }
    assert_eq!(b.engine.census().rooms.rooms, config.max_rooms);
    let took = (0..20)
        .map(|_| b.call(conn, "rooms", json!({})))
        .max()
        .unwrap();
    eprintln!(
        "rooms with {} rooms of {} bytes: {took:?}",
        config.max_rooms, config.max_room_bytes
    );
    assert!(took < TURN, "{took:?}");
}

/// Rooms `R0` .. made by an anchor, each heard by `listens` listens of one connection.
fn audience(b: &mut Bench, rooms: usize, listens: usize) {
    let anchor = b.open();
    for r in 0..rooms {
        let room = format!("R{r}");
        b.call(anchor, "join", json!({"user": "anchor", "room": room}));
        let listener = b.open();
        for i in 0..listens {
            b.call(
                listener,
                "listen",
                json!({"room": room, "id": format!("l{i}")}),
            );
        }
    }
}

#[test]
fn a_disconnect_of_a_thousand_memberships_in_rooms_a_thousand_listen_to() {
    let _serial = serial();
    let mut b = Bench::new(&Config::default());
    audience(&mut b, 10, 1000);
    let attacker = b.open();
    for r in 0..10 {
        fill(&mut b, attacker, &format!("R{r}"), 0, 99);
    }
    let memory = b.memory();
    let first = b.timed(Command::Gone { conn: attacker });
    let (turns, longest) = b.turns();
    eprintln!(
        "disconnect of 990 memberships heard by 1,000 listeners each (memory {memory} bytes): first turn {first:?}, then {turns} turns, the longest {longest:?} (WORK {WORK})"
    );
    assert_eq!(b.engine.census().rooms.members, 10);
    assert!(first.max(longest) < TURN, "{first:?} {longest:?}");
}

#[test]
fn an_http_sweep_of_max_http_memberships_in_rooms_a_thousand_listen_to() {
    let _serial = serial();
    let config = Config::default();
    let mut b = Bench::new(&config);
    audience(&mut b, 10, 1000);
    for i in 0..config.max_http_memberships {
        let text = json!({"jsonrpc":"2.0","id":1,"method":"Messenger.1.join",
            "params":{"user": format!("script{i}"), "room": format!("R{}", i % 10)}})
        .to_string();
        let designators = Designators::new("Messenger".into(), false, Caps::from(&config));
        let call = messenger::request::parse(&text, &designators);
        let http = Command::Http {
            call: Box::new(call),
            origin: None,
            admin: false,
            reply: (),
        };
        b.engine.apply(http, b.now);
    }
    b.now += config.http_membership_ttl + Duration::from_secs(1);
    let first = b.timed(Command::Tick);
    let (turns, longest) = b.turns();
    eprintln!(
        "sweep of {} HTTP memberships heard by 1,000 listeners each: first turn {first:?}, then {turns} turns, the longest {longest:?}",
        config.max_http_memberships
    );
    assert_eq!(b.engine.census().rooms.http_members, 0);
    assert!(first.max(longest) < TURN, "{first:?} {longest:?}");
}

/// The largest message to a full room whose every member listens: a fan-out of
/// `max_message_bytes` to `max_members_per_room` members (an `announce`, which reaches them as a
/// `send` does). Its cost is the bytes it delivers (64 MiB here), not a per-call overhead: it is
/// what SPEC §4a's honest limits allow, so it is measured and reported, not bounded.
#[test]
fn the_largest_message_to_a_full_room() {
    let _serial = serial();
    let config = Config::default();
    let mut b = Bench::new(&config);
    let admin = b.open_admin();
    for i in 0..config.max_members_per_room {
        let c = b.open();
        b.call(c, "join", json!({"user": format!("u{i}"), "room": "Full"}));
        b.call(
            c,
            "register",
            json!({"event": "message", "id": "client.events"}),
        );
    }
    let message = "m".repeat(config.max_message_bytes - 200);
    let took = (0..5)
        .map(|_| {
            b.call(
                admin,
                "announce",
                json!({"room": "Full", "message": message}),
            )
        })
        .min()
        .unwrap();
    eprintln!(
        "a message of {} bytes to {} members: {took:?}",
        message.len(),
        config.max_members_per_room
    );
    assert!(took < 10 * TURN, "{took:?}");
}
