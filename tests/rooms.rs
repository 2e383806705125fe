//! Proves what two and three clients see of each other: joins, leaves, messages and
//! disconnects, in the order they happened, and that rooms end when their last member goes.

mod support;

use std::net::Shutdown;

use serde_json::json;
use support::Server;

fn user(events: &[(String, serde_json::Value)]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|(m, p)| {
            let kind = m.rsplit('.').next().unwrap().to_owned();
            let what = p
                .get("action")
                .or_else(|| p.get("message"))
                .unwrap()
                .as_str()
                .unwrap();
            (kind, format!("{}:{what}", p["user"].as_str().unwrap_or("")))
        })
        .collect()
}

#[test]
fn two_clients_see_each_other_in_order() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    let ta = a.enter("Alice", "Lounge");
    a.drain();
    let tb = b.enter("Bob", "Lounge");
    assert_eq!(
        user(&b.drain()),
        [
            ("userupdate".into(), "Alice:joined".into()),
            ("userupdate".into(), "Bob:joined".into())
        ]
    );
    b.ok("send", json!({"roomid": tb, "message": "hi from Bob"}));
    a.ok("send", json!({"roomid": ta, "message": "hi from Alice"}));
    let expected_a = [
        ("userupdate".to_owned(), "Bob:joined".to_owned()),
        ("message".into(), "Bob:hi from Bob".into()),
        ("message".into(), "Alice:hi from Alice".into()),
    ];
    assert_eq!(user(&a.drain()), expected_a);
    assert_eq!(
        user(&b.drain()),
        [
            ("message".to_owned(), "Bob:hi from Bob".to_owned()),
            ("message".into(), "Alice:hi from Alice".into())
        ]
    );
    b.ok("leave", json!({"roomid": tb}));
    assert_eq!(
        user(&a.drain()),
        [("userupdate".to_owned(), "Bob:left".to_owned())]
    );
    assert!(b.drain().is_empty(), "a member who left hears nothing more");
}

#[test]
fn three_clients_and_disconnects() {
    let server = Server::start(&[]);
    let mut obs = server.client();
    obs.ok("register", json!({"event": "roomupdate", "id": "obs"}));
    let mut a = server.client();
    let mut b = server.client();
    let mut c = server.client();
    let ta = a.enter("Alice", "Lounge");
    let tb = b.enter("Bob", "Lounge");
    let tc = c.enter("Carol", "Lounge");
    a.drain();
    b.drain();
    c.drain();
    c.ok("send", json!({"roomid": tc, "message": "one"}));
    b.ok("send", json!({"roomid": tb, "message": "two"}));
    // Bob's TCP connection just ends: no leave, no close frame.
    b.ws.get_ref().shutdown(Shutdown::Both).unwrap();
    drop(b);
    let got_a = user(&[a.event(), a.event(), a.event()]);
    let got_c = user(&[c.event(), c.event(), c.event()]);
    let expected = [
        ("message".to_owned(), "Carol:one".to_owned()),
        ("message".into(), "Bob:two".into()),
        ("userupdate".into(), "Bob:left".into()),
    ];
    assert_eq!(got_a, expected);
    assert_eq!(got_c, expected);
    assert_eq!(
        a.err("leave", json!({"roomid": tb})),
        22,
        "Bob's membership ended with his connection"
    );
    a.ok("leave", json!({"roomid": ta}));
    assert_eq!(
        user(&c.drain()),
        [("userupdate".to_owned(), "Alice:left".to_owned())]
    );
    c.ws.close(None).unwrap();
    assert_eq!(c.closed(), None, "close handshake completes");
    let events = obs.drain();
    let actions: Vec<_> = events
        .iter()
        .map(|(_, p)| p["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["created", "destroyed"]);
    server.wait_health(|h| h["rooms"] == 0 && h["members"] == 0);
}

#[test]
fn a_room_per_name_and_users_per_room() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    let t1 = a.enter("Alice", "One");
    let t2 = b.enter("Alice", "Two");
    a.drain();
    b.drain();
    b.ok("send", json!({"roomid": t2, "message": "only in Two"}));
    a.ok("send", json!({"roomid": t1, "message": "only in One"}));
    assert_eq!(
        user(&a.drain()),
        [("message".to_owned(), "Alice:only in One".to_owned())]
    );
    assert_eq!(
        user(&b.drain()),
        [("message".to_owned(), "Alice:only in Two".to_owned())]
    );
}

#[test]
fn any_holder_of_a_token_may_listen_with_it() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    let ta = a.join("Alice", "Lounge");
    b.ok(
        "register",
        json!({"event": "message", "id": format!("{ta}.spy")}),
    );
    a.ok("send", json!({"roomid": ta, "message": "seen"}));
    assert_eq!(
        b.event(),
        (
            format!("{ta}.spy.message"),
            json!({"user": "Alice", "message": "seen"})
        )
    );
    drop(b);
    a.ok(
        "send",
        json!({"roomid": ta, "message": "after the listener left"}),
    );
    server.wait_health(|h| h["connections"] == 2);
}

/// A burst written at once: sends with other calls among them, and a send to another room's
/// token. The sends that one read brings reach the dispatcher as one command
/// (`engine/held.rs`); every answer still comes in the order asked, and the room hears every
/// message in the order sent.
#[test]
fn a_burst_of_sends_keeps_its_order_among_other_calls() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    a.enter("Alice", "Lounge");
    let tb = b.join("Bob", "Lounge");
    let other = b.join("Bob", "Attic");
    let exists = b.ok("exists", json!({"method": "join"}));
    a.drain();
    let frames: Vec<String> = (0..400)
        .map(|i| {
            let (method, params) = match i % 10 {
                9 => ("exists", json!({"method": "join"})),
                4 => ("send", json!({"roomid": other, "message": format!("a{i}")})),
                _ => ("send", json!({"roomid": tb, "message": format!("m{i}")})),
            };
            json!({"jsonrpc": "2.0", "id": i, "method": format!("Messenger.1.{method}"), "params": params})
                .to_string()
        })
        .collect();
    for f in &frames {
        b.ws.write(tungstenite::Message::text(f.as_str())).unwrap();
    }
    b.ws.flush().unwrap();
    for i in 0..400 {
        let reply = b.reply();
        assert_eq!(reply["id"], i, "answers in the order asked: {reply}");
        let want = if i % 10 == 9 { &exists } else { &json!(null) };
        assert_eq!(&reply["result"], want, "{reply}");
    }
    let heard: Vec<String> = a
        .drain()
        .iter()
        .map(|(_, p)| p["message"].as_str().unwrap().to_owned())
        .collect();
    let sent: Vec<String> = (0..400)
        .filter(|i| i % 10 != 9 && i % 10 != 4)
        .map(|i| format!("m{i}"))
        .collect();
    assert_eq!(heard, sent);
}
