//! Proves the Kurento room dialect on `/room` (seed 003) over a real WebSocket: the seed's
//! requests, results and events, the edge's refusals, and that Kurento and
//! Messenger users share one set of rooms, each hearing the other in its own dialect.

mod support;

use std::net::Shutdown;

use serde_json::{json, Value};
use support::Server;

const ADMIN: &str = "0123456789abcdef-admin";

fn session(result: &Value) -> String {
    let id = result["sessionId"].as_str().expect("sessionId").to_owned();
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
    id
}

#[test]
fn seed_flow_join_message_leave() {
    let server = Server::start(&[]);
    let mut a = server.kurento();
    let mut b = server.kurento();
    let joined = a.kok("joinRoom", json!({"user": "USER0", "room": "ROOM_1"}));
    let sa = session(&joined);
    assert_eq!(joined["value"], json!([]), "a fresh room has nobody in it");
    let joined = b.kok("joinRoom", json!({"user": "USER1", "room": "ROOM_1"}));
    let sb = session(&joined);
    assert_ne!(sa, sb, "each WebSocket session has its own id");
    assert_eq!(joined["value"], json!([{"id": "USER0", "streams": []}]));
    assert_eq!(
        a.event(),
        ("participantJoined".into(), json!({"id": "USER1"}))
    );
    assert!(b.kdrain().is_empty(), "no participantJoined about oneself");

    let sent = b.kok(
        "sendMessage",
        json!({"message": "My message", "userMessage": "USER1", "roomMessage": "ROOM_1"}),
    );
    assert_eq!(sent, json!({"sessionId": sb}));
    let event = (
        "sendMessage".to_owned(),
        json!({"room": "ROOM_1", "user": "USER1", "message": "My message"}),
    );
    assert_eq!(a.event(), event);
    assert_eq!(b.kdrain(), [event], "the sender hears its own message");
    // userMessage and roomMessage are optional.
    b.kok("sendMessage", json!({"message": "short"}));
    assert_eq!(a.event().1["message"], "short");
    assert_eq!(b.kdrain().len(), 1, "the echo of the short one");

    assert_eq!(b.kok("leaveRoom", json!(null)), json!({"sessionId": sb}));
    assert_eq!(
        a.event(),
        ("participantLeft".into(), json!({"name": "USER1"}))
    );
    assert!(
        b.kdrain().is_empty(),
        "a member who left hears nothing more"
    );
    // After leaving, the session may join again.
    b.kok("joinRoom", json!({"user": "USER1", "room": "ROOM_2"}));
    a.kok("leaveRoom", json!({}));
    server.wait_health(|h| h["rooms"] == 1);
}

/// The edge's refusals keep JSON-RPC's codes; the room server's own codes, one case each, are
/// in tests/kurento_codes.rs.
#[test]
fn edge_refusals() {
    let server = Server::start(&[]);
    let mut a = server.kurento();
    for params in [
        json!({"user": "A"}),
        json!({"room": "R"}),
        json!({"user": "", "room": "R"}),
        json!({"user": 7, "room": "R"}),
        json!(["A", "R"]),
    ] {
        assert_eq!(
            a.kerr("joinRoom", params.clone())["code"],
            -32602,
            "{params}"
        );
    }
    a.kok("joinRoom", json!({"user": "A", "room": "R"}));
    assert_eq!(a.kerr("sendMessage", json!({}))["code"], -32602);
    assert_eq!(a.kerr("sendMessage", json!({"message": 5}))["code"], -32602);
    for method in ["nosuch", "Messenger.1.join", "join"] {
        assert_eq!(a.kerr(method, json!({}))["code"], -32601, "{method}");
    }
    let reply = a.raw("{not json");
    assert_eq!(reply["error"]["code"], -32700);
    assert_eq!(reply["id"], Value::Null);
    assert!(a.kdrain().is_empty(), "refusals caused no events");
    let pong = a.kok("ping", json!({"interval": 5000}));
    assert_eq!(pong["value"], "pong");
    let (status, body) = server.http("GET", "/room", None);
    assert_eq!(status, 405, "{body}");
    assert!(body.contains("WebSocket"), "{body}");
}

#[test]
fn notification_requests_act_without_answer() {
    let server = Server::start(&[]);
    let mut a = server.kurento();
    a.kok("joinRoom", json!({"user": "A", "room": "R"}));
    let mut b = server.kurento();
    b.ws.send(tungstenite::Message::text(
        r#"{"jsonrpc":"2.0","method":"joinRoom","params":{"user":"B","room":"R"}}"#,
    ))
    .unwrap();
    assert_eq!(a.event(), ("participantJoined".into(), json!({"id": "B"})));
    assert!(b.kdrain().is_empty(), "no answer to a notification");
}

#[test]
fn a_dropped_session_leaves_its_room() {
    let server = Server::start(&[]);
    let mut a = server.kurento();
    let mut b = server.kurento();
    a.kok("joinRoom", json!({"user": "A", "room": "R"}));
    b.kok("joinRoom", json!({"user": "B", "room": "R"}));
    a.kdrain();
    b.ws.get_ref().shutdown(Shutdown::Both).unwrap();
    drop(b);
    assert_eq!(a.event(), ("participantLeft".into(), json!({"name": "B"})));
    a.kok("leaveRoom", json!(null));
    server.wait_health(|h| h["rooms"] == 0 && h["members"] == 0);
}

#[test]
fn kurento_and_messenger_users_share_rooms() {
    let server = Server::start(&[]);
    let mut m = server.client();
    let tm = m.enter("Alice", "Lounge");
    m.drain();
    let mut k = server.kurento();
    let joined = k.kok("joinRoom", json!({"user": "Kim", "room": "Lounge"}));
    assert_eq!(joined["value"], json!([{"id": "Alice", "streams": []}]));
    let ev = format!("{tm}.client.events");
    assert_eq!(
        m.event(),
        (
            format!("{ev}.userupdate"),
            json!({"user": "Kim", "action": "joined"})
        )
    );
    // Same names are refused in both dialects.
    assert_eq!(m.err("join", json!({"user": "Kim", "room": "Lounge"})), 5);
    let mut k2 = server.kurento();
    assert_eq!(
        k2.kerr("joinRoom", json!({"user": "Alice", "room": "Lounge"}))["code"],
        104
    );
    // Messages cross in both directions, each in its dialect.
    k.kok("sendMessage", json!({"message": "from kurento"}));
    assert_eq!(
        m.event(),
        (
            format!("{ev}.message"),
            json!({"user": "Kim", "message": "from kurento"})
        )
    );
    m.ok("send", json!({"roomid": tm, "message": "from thunder"}));
    assert_eq!(
        k.kdrain(),
        [
            (
                "sendMessage".into(),
                json!({"room": "Lounge", "user": "Kim", "message": "from kurento"})
            ),
            (
                "sendMessage".into(),
                json!({"room": "Lounge", "user": "Alice", "message": "from thunder"})
            )
        ]
    );
    // A Messenger user's registration replay lists Kurento members too.
    let mut n = server.client();
    let tn = n.join("Nick", "Lounge");
    n.ok("register", json!({"event": "userupdate", "id": tn}));
    let users: Vec<Value> = n
        .drain()
        .into_iter()
        .map(|(_, p)| p["user"].clone())
        .collect();
    assert_eq!(users, [json!("Alice"), json!("Kim"), json!("Nick")]);
    assert_eq!(
        k.event(),
        ("participantJoined".into(), json!({"id": "Nick"}))
    );
    n.ok("leave", json!({"roomid": tn}));
    assert_eq!(
        k.event(),
        ("participantLeft".into(), json!({"name": "Nick"}))
    );
    m.drain();
    // Leaves cross too.
    k.kok("leaveRoom", json!(null));
    assert_eq!(
        m.event(),
        (
            format!("{ev}.userupdate"),
            json!({"user": "Kim", "action": "left"})
        )
    );
    k.kok("joinRoom", json!({"user": "Kim", "room": "Lounge"}));
    m.drain();
    m.ok("leave", json!({"roomid": tm}));
    assert_eq!(
        k.event(),
        ("participantLeft".into(), json!({"name": "Alice"}))
    );
}

#[test]
fn eviction_in_both_dialects() {
    let server = Server::start(&["--admin-token", ADMIN]);
    let mut admin = server.client_with(&server.url("/jsonrpc"), &[("X-Messenger-Admin", ADMIN)]);
    let mut m = server.client();
    let tm = m.enter("Alice", "Lounge");
    let mut k = server.kurento();
    k.kok("joinRoom", json!({"user": "Kim", "room": "Lounge"}));
    m.drain();
    admin.ok("evict", json!({"room": "Lounge", "user": "Kim"}));
    assert_eq!(k.event(), ("participantEvicted".into(), json!({})));
    assert!(k.kdrain().is_empty());
    assert_eq!(
        m.event(),
        (
            format!("{tm}.client.events.userupdate"),
            json!({"user": "Kim", "action": "left"})
        )
    );
    assert_eq!(
        k.kerr("leaveRoom", json!(null))["code"],
        102,
        "an evicted session is in no room"
    );
    k.kok("joinRoom", json!({"user": "Kim", "room": "Lounge"}));
    m.drain();
    admin.ok("evict", json!({"room": "Lounge", "user": "Alice"}));
    assert_eq!(
        m.event(),
        (
            format!("{tm}.client.events.userupdate"),
            json!({"user": "Alice", "action": "left"})
        ),
        "the evicted Messenger member hears its own leave"
    );
    assert_eq!(
        k.event(),
        ("participantLeft".into(), json!({"name": "Alice"}))
    );
    assert_eq!(m.err("send", json!({"roomid": tm, "message": "x"})), 22);
}

#[test]
fn secure_rooms_apply_to_kurento_sessions() {
    let server = Server::start(&[]);
    let origin = [
        ("Sec-WebSocket-Protocol", "notification"),
        ("Origin", "https://app.example.com"),
    ];
    let mut m = server.client_with(&server.url("/jsonrpc"), &origin);
    m.ok(
        "join",
        json!({"user": "A", "room": "Vault", "secure": "secure", "acl": ["https://*.example.com"]}),
    );
    let mut stranger = server.kurento();
    let e = stranger.kerr("joinRoom", json!({"user": "K", "room": "Vault"}));
    assert_eq!(e["code"], 201, "ROOM_GENERIC_ERROR: {e}");
    let mut evil = server.client_with(&server.url("/room"), &[("Origin", "https://evil.net")]);
    assert_eq!(
        evil.kerr("joinRoom", json!({"user": "K", "room": "Vault"}))["code"],
        201
    );
    let mut friend = server.client_with(
        &server.url("/room"),
        &[("Origin", "https://app.example.com")],
    );
    let joined = friend.kok("joinRoom", json!({"user": "K", "room": "Vault"}));
    assert_eq!(joined["value"], json!([{"id": "A", "streams": []}]));
}
