//! The soak test (ignored by `cargo test`; `make soak` runs it against the release binary):
//! many clients join, send, leave and drop their connections for a bounded time, in two equal
//! phases. After each it proves that every message sent to a room reached every member present
//! at the time, that no room or membership leaked and that the server's threads went back to
//! idle; and that memory did not grow from the first phase to the second.
//!
//! "Present at the time": the member had joined and registered before the send was made,
//! and began to leave only after the send was answered. Before leaving, a member makes one
//! round trip, so every event queued for it before that is read.
//!
//! Settings from the environment: `SOAK_SECONDS` (default 60), `SOAK_CLIENTS` (50),
//! `SOAK_ROOMS` (5), `SOAK_SEED` (1).

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Server, WAIT};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One membership as a client lived it.
struct Session {
    room: usize,
    /// After the join and both registrations were answered.
    joined: Instant,
    /// Before the last round trip that preceded the leave or the drop.
    left: Instant,
    received: HashSet<String>,
}

/// One message as its sender saw it.
struct Sent {
    room: usize,
    text: String,
    /// Before the request was written.
    started: Instant,
    /// After its answer was read.
    answered: Instant,
}

#[derive(Default)]
struct Log {
    sessions: Vec<Session>,
    sent: Vec<Sent>,
}

/// `Threads` and `VmRSS` (KiB) of a process, from /proc.
fn threads_and_rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Threads:"), field("VmRSS:"))
}

/// Threads and VmRSS once the threads of connections that have ended are gone (a thread
/// ends a moment after its connection does, and one that ends in its HTTP phase lingers
/// until the client closes): more than `IDLE_THREADS` only if some are still there after
/// `WAIT`.
fn settled(pid: u32) -> (u64, u64) {
    let deadline = Instant::now() + WAIT;
    let (mut threads, mut rss) = threads_and_rss(pid);
    while threads > IDLE_THREADS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        (threads, rss) = threads_and_rss(pid);
    }
    (threads, rss)
}

/// One client's life: sessions until the deadline, each on a new connection.
fn worker(server: &Server, index: usize, rooms: u64, seed: u64, until: Instant, log: &Mutex<Log>) {
    let mut rng = fastrand::Rng::with_seed(seed.wrapping_mul(1000) + index as u64);
    let mut session_no = 0;
    while Instant::now() < until {
        session_no += 1;
        let room = rng.usize(..rooms as usize);
        let mut client = server.client();
        let token = client.enter(&format!("u{index}-{session_no}"), &format!("room{room}"));
        let joined = Instant::now();
        let mut sent = Vec::new();
        for n in 0..rng.usize(0..=20) {
            let text = format!("w{index}-s{session_no}-m{n}");
            let started = Instant::now();
            client.ok("send", json!({"roomid": token, "message": text}));
            sent.push(Sent {
                room,
                text,
                started,
                answered: Instant::now(),
            });
            if rng.u8(..10) == 0 {
                std::thread::sleep(Duration::from_millis(rng.u64(1..20)));
            }
        }
        let left = Instant::now();
        let received: HashSet<String> = client
            .drain()
            .into_iter()
            .filter(|(method, _)| method.ends_with(".message"))
            .map(|(_, params)| params["message"].as_str().unwrap().to_owned())
            .collect();
        match rng.u8(..3) {
            // Leave, then close the WebSocket properly.
            0 => {
                client.ok("leave", json!({"roomid": token}));
                let _ = client.ws.close(None);
                let _ = client.closed();
            }
            // Close without leaving: the server leaves for it.
            1 => {
                let _ = client.ws.close(None);
                let _ = client.closed();
            }
            // Drop the TCP connection without a close frame.
            _ => drop(client),
        }
        let mut log = log.lock().unwrap();
        log.sessions.push(Session {
            room,
            joined,
            left,
            received,
        });
        log.sent.extend(sent);
    }
}

/// What one phase measured.
struct Phase {
    sessions: usize,
    sent: usize,
    checked: u64,
    peak_threads: u64,
    peak_rss: u64,
    /// Threads and VmRSS once the server is quiet again.
    threads: u64,
    rss: u64,
}

/// Runs `clients` workers for `seconds`, then checks delivery and that the server went quiet.
fn phase(server: &Arc<Server>, seconds: u64, clients: u64, rooms: u64, seed: u64) -> Phase {
    let pid = server.child.id();
    let log = Arc::new(Mutex::new(Log::default()));
    let until = Instant::now() + Duration::from_secs(seconds);
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = (0, 0);
            while !done.load(Ordering::Relaxed) {
                let (t, r) = threads_and_rss(pid);
                peak = (peak.0.max(t), peak.1.max(r));
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        })
    };
    let workers: Vec<_> = (0..clients as usize)
        .map(|i| {
            let (server, log) = (server.clone(), log.clone());
            std::thread::spawn(move || worker(&server, i, rooms, seed, until, &log))
        })
        .collect();
    for w in workers {
        w.join().expect("a client failed");
    }
    done.store(true, Ordering::Relaxed);
    let (peak_threads, peak_rss) = sampler.join().unwrap();
    let log = log.lock().unwrap();
    let checked = check_delivery(&log, rooms);
    assert!(checked > 0, "the soak checked no delivery");
    // Nothing leaked: rooms, memberships, queued bytes, connection threads.
    server.wait_health(|h| {
        h["rooms"] == 0 && h["members"] == 0 && h["connections"] == 1 && h["queued_bytes"] == 0
    });
    let (threads, rss) = settled(pid);
    Phase {
        sessions: log.sessions.len(),
        sent: log.sent.len(),
        checked,
        peak_threads,
        peak_rss,
        threads,
        rss,
    }
}

/// Every message reached every member present when it was sent, and no member got a message
/// nobody sent. Per room, sends sorted by start; each session looks only at the sends started
/// inside its window. Returns the number of deliveries checked.
fn check_delivery(log: &Log, rooms: u64) -> u64 {
    let mut by_room: Vec<Vec<&Sent>> = vec![Vec::new(); rooms as usize];
    for sent in &log.sent {
        by_room[sent.room].push(sent);
    }
    for sends in &mut by_room {
        sends.sort_by_key(|s| s.started);
    }
    let mut checked = 0u64;
    for s in &log.sessions {
        let sends = &by_room[s.room];
        let first = sends.partition_point(|sent| sent.started <= s.joined);
        for sent in sends[first..]
            .iter()
            .take_while(|sent| sent.started < s.left)
        {
            if sent.answered < s.left {
                assert!(
                    s.received.contains(&sent.text),
                    "{} was not delivered to a member present throughout",
                    sent.text
                );
                checked += 1;
            }
        }
    }
    let sent_texts: HashSet<&str> = log.sent.iter().map(|s| s.text.as_str()).collect();
    for s in &log.sessions {
        assert!(s.received.iter().all(|t| sent_texts.contains(t.as_str())));
    }
    checked
}

/// Threads of an idle server: main (the acceptor), dispatcher, signals, logger.
const IDLE_THREADS: u64 = 4;

/// Two equal phases: after each, the threads must be back to idle; memory after the second
/// must not exceed memory after the first by more than a little. The allocator keeps freed
/// pages for reuse, so VmRSS after a phase stays near its peak; a leak shows as growth from
/// one equal phase to the next.
#[test]
#[ignore = "long: run with `make soak`"]
fn soak() {
    let seconds = setting("SOAK_SECONDS", 60);
    let clients = setting("SOAK_CLIENTS", 50);
    let rooms = setting("SOAK_ROOMS", 5);
    let seed = setting("SOAK_SEED", 1);
    let server = Arc::new(Server::start(&["--max-connections", "2000"]));
    let pid = server.child.id();
    // Idle level: after one client came and went, so lazily made state exists.
    server.client().join("warmup", "warmup");
    server.wait_health(|h| h["rooms"] == 0 && h["connections"] == 1);
    let (idle_threads, idle_rss) = settled(pid);
    assert_eq!(idle_threads, IDLE_THREADS);
    let half = seconds.div_ceil(2);
    let first = phase(&server, half, clients, rooms, seed);
    let second = phase(&server, half, clients, rooms, seed + 1);
    for (n, p) in [(1, &first), (2, &second)] {
        println!(
            "soak phase {n}: {half} s, {clients} clients, {rooms} rooms: {} sessions, {} messages \
             sent, {} deliveries checked; threads idle {idle_threads} peak {} after {}; VmRSS \
             idle {idle_rss} KiB peak {} KiB after {} KiB",
            p.sessions, p.sent, p.checked, p.peak_threads, p.threads, p.peak_rss, p.rss
        );
        assert_eq!(p.threads, IDLE_THREADS, "threads did not return to idle");
    }
    let allowed = first.rss + (first.rss / 10).max(1024);
    assert!(
        second.rss <= allowed,
        "VmRSS grew from {} KiB after phase 1 to {} KiB after an equal phase 2 (allowed {allowed})",
        first.rss,
        second.rss
    );
}
