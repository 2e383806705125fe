//! Proves relay mode over WebSocket (issue 16): with `upstream` naming a stand-in Thunder
//! (tests/support/thunder.rs), one client connection reaches Messenger here and every other
//! plugin there, in one stream; the upgrade's token, subprotocol and Origin reach Thunder; a
//! Thunder that is down, slow or closing gives bounded, truthful answers; the Controller stays
//! truthful about Messenger; floods stop at the edge; a connection that never relays costs no
//! upstream socket and no thread.

mod support;
#[path = "support/thunder.rs"]
mod thunder;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::probe::threads;
use support::{Client, Server};
use thunder::{Seen, Upstream};
use tungstenite::Message;

/// Sends `method` with `id` without waiting.
fn send(client: &mut Client, id: u64, method: &str, params: Value) {
    let text = json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}).to_string();
    client.ws.send(Message::text(text)).unwrap();
}

fn wait_threads(server: &Server, want: usize) -> usize {
    let deadline = Instant::now() + support::WAIT;
    loop {
        let n = threads(server);
        if n == want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn messenger_and_relayed_calls_share_one_connection_in_order() {
    let up = Upstream::start();
    let server = Server::start_relaying(&up.addr(), &[]);
    let mut client = server.client();
    let mut relayed = vec![];
    let mut local = vec![];
    for id in 1..=20u64 {
        if id % 2 == 0 {
            send(&mut client, id, "Echo.1.echo", json!({"n": id}));
            relayed.push(id);
        } else {
            send(&mut client, id, "Messenger.1.rooms", json!({}));
            local.push(id);
        }
    }
    let (mut got_relayed, mut got_local) = (vec![], vec![]);
    for _ in 0..20 {
        let reply = client.reply();
        let id = reply["id"].as_u64().unwrap();
        if id % 2 == 0 {
            assert_eq!(reply["result"], json!({"n": id}), "{reply}");
            got_relayed.push(id);
        } else {
            assert!(reply["result"].is_array(), "{reply}");
            got_local.push(id);
        }
    }
    assert_eq!(got_relayed, relayed, "relayed answers in the order sent");
    assert_eq!(got_local, local, "local answers in the order sent");
    // Thunder saw only the relayed requests, verbatim, in order, on one connection.
    let frames = up.frames();
    let ns: Vec<u64> = frames
        .iter()
        .map(|f| f["params"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, relayed);
    assert_eq!(up.upgrades().len(), 1);
}

#[test]
fn events_from_thunder_and_messenger_arrive_in_one_stream() {
    let up = Upstream::start();
    let server = Server::start_relaying(&up.addr(), &[]);
    let mut client = server.client();
    let reply = client.rpc("Echo.1.register", json!({"event": "ping", "id": "app"}));
    assert_eq!(reply["result"], Value::Null, "{reply}");
    client.enter("alice", "lounge");
    client.drain(); // alice's own join
    let reply = client.rpc("Echo.1.emit", json!({"event": "ping", "data": {"x": 1}}));
    assert!(reply.get("error").is_none(), "{reply}");
    assert_eq!(client.event(), ("app.ping".to_owned(), json!({"x": 1})));
    let mut other = server.client();
    other.join("bob", "lounge");
    let (method, params) = client.event();
    assert!(method.ends_with(".userupdate"), "{method}");
    assert_eq!(params["user"], "bob");
}

#[test]
fn token_subprotocol_and_origin_reach_thunder() {
    let up = Upstream::start_with_token("thunder-secret");
    let server = Server::start_relaying(&up.addr(), &[]);
    let headers = [
        ("Sec-WebSocket-Protocol", "notification"),
        ("Origin", "http://app.local"),
    ];
    let mut client = server.client_with(&server.url("/jsonrpc?token=thunder-secret"), &headers);
    let reply = client.rpc("DeviceInfo.1.systeminfo", json!({}));
    assert_eq!(reply["result"]["serialnumber"], "STANDIN0001", "{reply}");
    let upgrade = &up.upgrades()[0];
    assert_eq!(upgrade.target, "/jsonrpc?token=thunder-secret");
    assert_eq!(
        upgrade.header("sec-websocket-protocol"),
        Some("notification")
    );
    assert_eq!(upgrade.header("origin"), Some("http://app.local"));
    // Messenger is still served here on the same connection.
    client.join("alice", "lounge");
    // A token Thunder refuses: the relayed call gets Thunder's unavailable error.
    let mut stranger = server.client_with(&server.url("/jsonrpc?token=wrong"), &headers);
    let reply = stranger.rpc("DeviceInfo.1.systeminfo", json!({}));
    assert_eq!(reply["error"]["code"], 2, "{reply}");
    let data = reply["error"]["data"].as_str().unwrap_or("");
    assert!(data.contains("refused the upgrade"), "{reply}");
}

#[test]
fn a_directed_path_relays_everything_on_it() {
    let up = Upstream::start();
    let server = Server::start_relaying(&up.addr(), &[]);
    let url = server.url("/jsonrpc/DeviceInfo");
    let mut client = server.client_with(&url, &[("Sec-WebSocket-Protocol", "notification")]);
    let reply = client.rpc("systeminfo", json!({}));
    assert_eq!(reply["result"]["uptime"], 42, "{reply}");
    assert_eq!(up.upgrades()[0].target, "/jsonrpc/DeviceInfo");
}

#[test]
fn thunder_down_answers_at_once_and_messenger_keeps_working() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}"); // nothing listens there now
    let server = Server::start(&["--upstream", &addr, "--compat", "r5"]);
    let mut client = server.client();
    let started = Instant::now();
    let reply = client.rpc("DeviceInfo.1.systeminfo", json!({}));
    assert_eq!(reply["error"]["code"], -31002, "{reply}");
    assert_eq!(reply["error"]["message"], "The service is not active.");
    assert!(started.elapsed() < Duration::from_secs(3), "bounded");
    let join = json!({"user": "alice", "room": "lounge"});
    let reply = client.rpc("Messenger.1.join", join);
    assert!(reply["result"].is_string(), "served here: {reply}");
    let reply = client.rpc("DeviceInfo.1.systeminfo", json!({}));
    assert_eq!(reply["error"]["code"], -31002, "tried again: {reply}");
    let reply = server.client().rpc("Messenger.1.rooms", json!({}));
    assert!(reply["result"].is_array(), "another client: {reply}");
}

#[test]
fn a_slow_thunder_times_out_and_nobody_else_waits() {
    let up = Upstream::start();
    let server = Server::start_relaying(&up.addr(), &["--upstream-timeout", "0.3"]);
    let mut client = server.client();
    let reply = client.rpc("Echo.1.echo", json!({"n": 1}));
    assert_eq!(reply["result"]["n"], 1, "the link is open: {reply}");
    up.slow(Duration::from_millis(1500));
    let started = Instant::now();
    send(&mut client, 2, "Echo.1.echo", json!({"n": 2}));
    let mut bystander = server.client();
    bystander.join("bob", "lounge");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "bystander served meanwhile"
    );
    let reply = client.reply();
    assert_eq!(reply["id"], 2);
    assert_eq!(reply["error"]["code"], 2, "{reply}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(
        waited < Duration::from_millis(1400),
        "before Thunder's answer: {waited:?}"
    );
    // Thunder's late answer to 2 is dropped: the next reply is the next call's.
    std::thread::sleep(Duration::from_millis(1500));
    let reply = client.rpc("Messenger.1.rooms", json!({}));
    assert!(reply["result"].is_array(), "{reply}");
}

#[test]
fn a_thunder_slow_to_upgrade_times_out_too() {
    let up = Upstream::start();
    up.slow(Duration::from_millis(1500));
    let server = Server::start_relaying(&up.addr(), &["--upstream-timeout", "0.3"]);
    let mut client = server.client();
    let started = Instant::now();
    let reply = client.rpc("Echo.1.echo", json!({}));
    assert_eq!(reply["error"]["code"], 2, "{reply}");
    let data = reply["error"]["data"].as_str().unwrap_or("");
    assert!(data.contains("did not answer the upgrade"), "{reply}");
    assert!(started.elapsed() < Duration::from_millis(1400), "bounded");
    client.join("alice", "lounge");
}

#[test]
fn thunder_closing_closes_the_client() {
    let up = Upstream::start();
    let server = Server::start_relaying(&up.addr(), &[]);
    let mut client = server.client();
    client.rpc("Echo.1.echo", json!({}));
    up.close_all();
    assert_eq!(client.closed(), Some(1001));
}

#[test]
fn the_client_closing_closes_its_upstream_connection() {
    let up = Upstream::start();
    let server = Server::start_relaying(&up.addr(), &[]);
    let before = threads(&server);
    let mut client = server.client();
    client.rpc("Echo.1.echo", json!({}));
    assert_eq!(
        wait_threads(&server, before + 2),
        before + 2,
        "reader and relay threads"
    );
    client.ws.close(None).unwrap();
    let closed = |seen: &[Seen]| seen.iter().any(|s| matches!(s, Seen::Closed { conn: 0 }));
    assert!(up.wait_for(closed), "the upstream connection ended");
    assert_eq!(wait_threads(&server, before), before, "both threads ended");
}

#[test]
fn a_connection_that_never_relays_costs_no_socket_and_no_thread() {
    let up = Upstream::start();
    let server = Server::start_relaying(&up.addr(), &[]);
    let before = threads(&server);
    let mut client = server.client();
    client.enter("alice", "lounge");
    client.rpc("Controller.1.status@Messenger", json!({}));
    assert_eq!(
        wait_threads(&server, before + 1),
        before + 1,
        "the reader only"
    );
    assert!(
        up.seen().is_empty(),
        "no upstream connection: {:?}",
        up.seen()
    );
}

#[test]
fn the_controller_stays_truthful_about_messenger() {
    let up = Upstream::start();
    let server = Server::start_relaying(&up.addr(), &[]);
    let mut client = server.client();
    let reply = client.rpc("Controller.1.status@Messenger", json!({}));
    assert_eq!(reply["result"][0]["state"], "Activated", "{reply}");
    assert_eq!(
        reply["result"][0]["locator"], "messenger",
        "answered here: {reply}"
    );
    assert!(up.seen().is_empty());
    let reply = client.rpc("Controller.1.status", json!({}));
    let list = reply["result"].as_array().expect("a list");
    let names: Vec<&str> = list
        .iter()
        .map(|p| p["callsign"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Controller", "DeviceInfo", "Echo", "Messenger"]);
    assert_eq!(list[3]["state"], "Activated");
    assert_eq!(list[3]["locator"], "messenger");
    let reply = client.rpc("Controller.1.status@Echo", json!({}));
    assert_eq!(
        reply["result"]["locator"], "libThunderEcho.so",
        "Thunder's: {reply}"
    );
    let reply = client.rpc("Controller.1.deactivate", json!({"callsign": "Messenger"}));
    assert_eq!(reply["error"]["code"], 24, "refused here: {reply}");
    // statechange: one answer, Thunder's plugins and Messenger in one stream.
    let change = json!({"event": "statechange", "id": "watch"});
    let reply = client.rpc("Controller.1.register", change);
    assert_eq!(reply["result"], Value::Null, "Thunder's answer: {reply}");
    let mut changed = vec![];
    while changed.len() < 4 {
        let (method, params) = client.event();
        assert_eq!(method, "watch.statechange");
        changed.push(params["callsign"].as_str().unwrap().to_owned());
    }
    changed.sort();
    assert_eq!(changed, ["Controller", "DeviceInfo", "Echo", "Messenger"]);
    client.rpc("Controller.1.deactivate", json!({"callsign": "Echo"}));
    let (method, params) = client.event();
    assert_eq!(method, "watch.statechange");
    assert_eq!(params["callsign"], "Echo");
    assert_eq!(params["state"], "Deactivated");
    // Unregistered both ways with one answer.
    let reply = client.rpc(
        "Controller.1.unregister",
        json!({"event": "statechange", "id": "watch"}),
    );
    assert_eq!(reply["result"], Value::Null, "{reply}");
    assert!(client.drain().is_empty());
}

#[test]
fn a_relayed_flood_stops_at_the_edge() {
    let up = Upstream::start();
    let flags = ["--max-messages-per-second", "1", "--message-burst", "5"];
    let server = Server::start_relaying(&up.addr(), &flags);
    let mut client = server.client();
    for id in 1..=20 {
        send(&mut client, id, "Echo.1.echo", json!({}));
    }
    let mut refused = 0;
    for _ in 0..20 {
        let reply = client.reply();
        if reply["error"]["code"] == 2 {
            let data = reply["error"]["data"].as_str().unwrap_or("");
            assert!(data.contains("rate limit"), "{reply}");
            refused += 1;
        }
    }
    assert!(refused >= 14, "{refused} refused");
    assert!(up.frames().len() <= 6, "Thunder saw {}", up.frames().len());
}

#[test]
fn relayed_requests_waiting_are_bounded() {
    let up = Upstream::start();
    let server = Server::start_relaying(&up.addr(), &["--max-upstream-pending", "2"]);
    let mut client = server.client();
    client.rpc("Echo.1.echo", json!({}));
    up.slow(Duration::from_millis(500));
    for id in 10..14 {
        send(&mut client, id, "Echo.1.echo", json!({"n": id}));
    }
    let mut refused = vec![];
    let mut answered = vec![];
    for _ in 0..4 {
        let reply = client.reply();
        let id = reply["id"].as_u64().unwrap();
        if reply["error"]["code"] == 2 {
            let data = reply["error"]["data"].as_str().unwrap_or("");
            assert!(data.contains("max_upstream_pending"), "{reply}");
            refused.push(id);
        } else {
            answered.push(id);
        }
    }
    assert_eq!(refused, [12, 13]);
    assert_eq!(answered, [10, 11]);
}

#[test]
fn the_board_files_for_both_deployments_are_valid() {
    let board = concat!(env!("CARGO_MANIFEST_DIR"), "/board");
    for (file, upstream) in [
        ("messenger.json", "(none)"),
        ("messenger-relay.json", "127.0.0.1:9997"),
    ] {
        let path = format!("{board}/{file}");
        let (_, stdout, stderr) = support::run_to_exit(&["check-config", "--config", &path]);
        assert!(stderr.contains("settings are valid"), "{file}: {stderr}");
        let line = stdout.lines().find(|l| l.starts_with("upstream "));
        assert!(
            line.is_some_and(|l| l.contains(upstream)),
            "{file}: {stdout}"
        );
    }
    let unit = std::fs::read_to_string(format!("{board}/messenger.service")).unwrap();
    assert!(unit.contains("\nBefore=wpeframework.service thunder.service\n"));
}
