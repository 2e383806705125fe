//! Proves room history (the `history` and `history_bytes` settings) from outside: a client
//! that registers for `message` first gets the room's last messages marked `"history": true`,
//! oldest first, then live ones with none lost or doubled at the seam while another client
//! keeps sending; HTTP and Kurento messages are kept, targeted ones are not; the history goes
//! with its room; off by default; Kurento clients never get it; and the server's memory stays
//! bounded however much is sent.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{Client, Server, WAIT};

/// Registers `id` for `message` and returns what the replay delivered, as params.
fn register_messages(client: &mut Client, id: &str) -> Vec<Value> {
    client.ok("register", json!({"event": "message", "id": id}));
    client
        .drain()
        .into_iter()
        .map(|(_, params)| params)
        .collect()
}

fn said(params: &[Value]) -> Vec<&str> {
    params
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect()
}

#[test]
fn the_last_messages_replay_oldest_first_then_live_ones() {
    let server = Server::start(&["--history", "3"]);
    let mut alice = server.client();
    let lounge = alice.join("Alice", "Lounge");
    for n in 1..=5 {
        alice.ok(
            "send",
            json!({"roomid": lounge, "message": format!("m{n}")}),
        );
    }
    let mut bob = server.client();
    let token = bob.join("Bob", "Lounge");
    let replay = register_messages(&mut bob, &token);
    assert_eq!(said(&replay), ["m3", "m4", "m5"]);
    for p in &replay {
        assert_eq!(p["history"], true, "{p}");
        assert_eq!(p["user"], "Alice");
        assert!(
            p.get("room").is_none(),
            "a room-scoped registration names no room"
        );
    }
    alice.ok("send", json!({"roomid": lounge, "message": "live"}));
    let (method, params) = bob.event();
    assert_eq!(method, format!("{token}.message"));
    assert_eq!(params, json!({"user": "Alice", "message": "live"}));
    // A connection-wide registration (ThunderJS's) gets it with the room's name.
    let replay = register_messages(&mut bob, "client.Messenger.events");
    assert_eq!(said(&replay), ["m4", "m5", "live"]);
    assert_eq!(replay[0]["room"], "Lounge");
    assert_eq!(replay[0]["history"], true);
}

#[test]
fn no_message_is_lost_or_doubled_at_the_seam() {
    let server = Server::start(&["--history", "100000", "--max-messages-per-second", "1e6"]);
    let mut sender = server.client();
    let lounge = sender.join("Sender", "Lounge");
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (sent, stop) = (sent.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                sender.ok("send", json!({"roomid": lounge, "message": n.to_string()}));
                n += 1;
                sent.store(n, Ordering::Relaxed);
            }
            sender.ok("send", json!({"roomid": lounge, "message": "end"}));
        })
    };
    let deadline = Instant::now() + WAIT;
    while sent.load(Ordering::Relaxed) < 200 {
        assert!(Instant::now() < deadline, "the sender is stuck");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut reader = server.client();
    let token = reader.join("Reader", "Lounge");
    reader.ok("register", json!({"event": "message", "id": token}));
    let (mut got, mut live) = (Vec::new(), 0);
    loop {
        let (_, params) = reader.event();
        if params["message"] == "end" {
            break;
        }
        if params["history"] == true {
            assert_eq!(live, 0, "history after a live message: {params}");
        } else {
            live += 1;
            if live == 200 {
                stop.store(true, Ordering::Relaxed);
            }
        }
        got.push(
            params["message"]
                .as_str()
                .unwrap()
                .parse::<usize>()
                .unwrap(),
        );
    }
    worker.join().unwrap();
    let expected: Vec<usize> = (0..sent.load(Ordering::Relaxed)).collect();
    assert!(got.len() >= 400, "history and live: {}", got.len());
    assert!(
        got == expected,
        "gap or duplicate in {} messages",
        got.len()
    );
}

#[test]
fn http_and_kurento_messages_are_kept_targeted_ones_are_not() {
    const ADMIN: &str = "0123456789abcdef-admin";
    let server = Server::start(&["--history", "10", "--admin-token", ADMIN]);
    let joined = server.post(
        "Messenger.1.join",
        json!({"user": "Script", "room": "Lounge"}),
    );
    let script = joined["result"]["roomid"].as_str().unwrap().to_owned();
    let sent = server.post(
        "Messenger.1.send",
        json!({"roomid": script, "message": "over http"}),
    );
    assert_eq!(sent["result"], Value::Null);
    let mut kim = server.kurento();
    kim.kok("joinRoom", json!({"user": "Kim", "room": "Lounge"}));
    kim.kok("sendMessage", json!({"message": "from kurento"}));
    let mut alice = server.client();
    let a = alice.join("Alice", "Lounge");
    alice.ok(
        "whisper",
        json!({"roomid": a, "to": "Kim", "message": "psst"}),
    );
    alice.ok(
        "sendto",
        json!({"roomid": a, "user": "*", "message": "all of you"}),
    );
    let mut admin = server.client_with(&server.url("/jsonrpc"), &[("X-Messenger-Admin", ADMIN)]);
    admin.ok(
        "announce",
        json!({"room": "Lounge", "message": "maintenance"}),
    );
    // Kurento clients never get history: a late Kurento joiner hears nothing of it.
    let mut kurt = server.kurento();
    kurt.kok("joinRoom", json!({"user": "Kurt", "room": "Lounge"}));
    assert!(kurt.kdrain().is_empty());
    let replay = register_messages(&mut alice, &a);
    assert_eq!(said(&replay), ["over http", "from kurento", "maintenance"]);
    assert_eq!(replay[2]["user"], "server");
    // A listener hears the room: its members, then its history.
    let mut listener = server.client();
    listener.ok("listen", json!({"room": "Lounge", "id": "l"}));
    let heard: Vec<(String, Value)> = listener.drain();
    let messages: Vec<&Value> = heard
        .iter()
        .filter(|(m, _)| m == "l.message")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(messages.len(), 3, "{heard:?}");
    assert!(heard[..4].iter().all(|(m, _)| m == "l.userupdate"));
}

#[test]
fn history_goes_with_its_room() {
    let server = Server::start(&["--history", "10"]);
    let mut alice = server.client();
    let first = alice.join("Alice", "Lounge");
    alice.ok("send", json!({"roomid": first, "message": "before"}));
    alice.ok("leave", json!({"roomid": first}));
    server.wait_health(|h| h["rooms"] == 0);
    let again = alice.join("Alice", "Lounge");
    assert!(register_messages(&mut alice, &again).is_empty());
}

#[test]
fn off_by_default() {
    let server = Server::start(&[]);
    let mut alice = server.client();
    let lounge = alice.join("Alice", "Lounge");
    alice.ok("send", json!({"roomid": lounge, "message": "gone"}));
    let mut bob = server.client();
    let token = bob.join("Bob", "Lounge");
    assert!(register_messages(&mut bob, &token).is_empty());
    assert!(register_messages(&mut bob, "client.Messenger.events").is_empty());
}

/// The server's resident memory in KiB.
fn vm_rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn memory_stays_within_the_budget_whatever_is_sent() {
    // 1,000 messages per room, 20 rooms, 60 KB each would keep 1.2 GB; the default budget
    // (1 MiB) keeps the newest that fit.
    let server = Server::start(&["--history", "1000", "--max-messages-per-second", "1e6"]);
    let mut sender = server.client();
    let rooms: Vec<String> = (0..20)
        .map(|n| sender.join("Sender", &format!("room{n}")))
        .collect();
    let text = "x".repeat(60_000);
    let send_round = |sender: &mut Client, round: usize| {
        for roomid in &rooms {
            let message = format!("{round:04}{text}");
            sender.ok("send", json!({"roomid": roomid, "message": message}));
        }
    };
    for round in 0..5 {
        send_round(&mut sender, round);
    }
    let before = vm_rss_kib(&server);
    for round in 5..45 {
        send_round(&mut sender, round);
    }
    let after = vm_rss_kib(&server);
    // 48 MB went through; history may keep 1 MiB. A coarse guard: well under what was sent.
    assert!(
        after < before + 12 * 1024,
        "VmRSS {before} KiB -> {after} KiB after 48 MB of messages"
    );
    let mut late = server.client();
    let token = late.join("Late", "room19");
    let replay = register_messages(&mut late, &token);
    let bytes: usize = replay
        .iter()
        .map(|p| p["message"].as_str().unwrap().len())
        .sum();
    assert!(bytes <= 1 << 20, "{bytes} bytes replayed");
    let last = replay.last().expect("the newest message is kept");
    assert!(last["message"].as_str().unwrap().starts_with("0044"));
}
