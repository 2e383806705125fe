//! The soak test (ignored by `cargo test`; `make soak` runs it against the release binary):
//! many clients join, send, leave and drop their connections for a bounded time. At the end
//! it proves that every message sent to a room reached every member present at the time,
//! that no room or membership leaked, and that the server's threads and memory went back to
//! near their idle level.
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
    let (idle_threads, idle_rss) = threads_and_rss(pid);

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

    // Every message reached every member present when it was sent, and only those.
    let log = log.lock().unwrap();
    let mut checked = 0u64;
    for sent in &log.sent {
        for s in log.sessions.iter().filter(|s| s.room == sent.room) {
            if s.joined < sent.started && s.left > sent.answered {
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

    // Nothing leaked: rooms, memberships, connection threads, memory.
    let h = server.wait_health(|h| {
        h["rooms"] == 0 && h["members"] == 0 && h["connections"] == 1 && h["queued_bytes"] == 0
    });
    let deadline = Instant::now() + WAIT;
    let (mut threads, mut rss) = threads_and_rss(pid);
    while threads > idle_threads && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        (threads, rss) = threads_and_rss(pid);
    }
    println!(
        "soak: {seconds} s, {clients} clients, {rooms} rooms: {} sessions, {} messages sent, \
         {checked} deliveries checked; threads idle {idle_threads} peak {peak_threads} end {threads}; \
         VmRSS idle {idle_rss} KiB peak {peak_rss} KiB end {rss} KiB; health {h}",
        log.sessions.len(),
        log.sent.len(),
    );
    assert!(checked > 0, "the soak checked no delivery");
    assert!(
        threads <= idle_threads,
        "threads {threads} did not return to the idle {idle_threads}"
    );
    // The allocator may keep some freed pages; a leak grows with the run, this does not.
    let allowed = idle_rss + (idle_rss / 2).max(4 * 1024);
    assert!(
        rss <= allowed,
        "VmRSS {rss} KiB did not return near the idle {idle_rss} KiB (allowed {allowed})"
    );
}
