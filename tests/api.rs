//! Proves the Messenger methods over a real WebSocket: results, error codes, replays,
//! echo, and both result dialects (`rdk` and `compat = "r5"`).

mod support;

use serde_json::json;
use support::Server;

#[test]
fn join_send_leave_with_results_and_errors() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let token = a.join("Alice", "Lounge");
    assert_eq!(token.len(), 20);
    assert!(token
        .bytes()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(a.err("join", json!({"user": "Alice", "room": "Lounge"})), 5);
    assert_eq!(a.err("join", json!({"user": "", "room": "Lounge"})), 30);
    assert_eq!(a.err("join", json!({"user": "Bob", "room": ""})), 30);
    assert_eq!(a.err("join", json!({"room": "Lounge"})), 30);
    assert_eq!(a.err("join", json!({"user": 5, "room": "Lounge"})), 30);
    assert_eq!(a.err("join", json!("Lounge")), -32602);
    assert_eq!(
        a.err(
            "join",
            json!({"user": "Bob", "room": "Lounge", "secure": "bogus"})
        ),
        -32602
    );
    assert_eq!(
        a.ok("send", json!({"roomid": token, "message": "hi"})),
        json!(null)
    );
    assert_eq!(
        a.err(
            "send",
            json!({"roomid": "0000000000deadbeef00", "message": "x"})
        ),
        22
    );
    assert_eq!(a.err("send", json!({"roomid": token})), 30);
    assert_eq!(a.ok("leave", json!({"roomid": token})), json!(null));
    assert_eq!(a.err("leave", json!({"roomid": token})), 22);
    assert_eq!(
        a.err("send", json!({"roomid": token, "message": "after leave"})),
        22
    );
    let again = a.join("Alice", "Lounge");
    assert_ne!(again, token, "a new membership gets a new token");
}

#[test]
fn error_messages_are_the_seed_names() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let reply = a.call("leave", json!({"roomid": "0000000000deadbeef00"}));
    assert_eq!(
        reply["error"],
        json!({"code": 22, "message": "ERROR_UNKNOWN_KEY"})
    );
    let reply = a.call("join", json!({"user": "", "room": "R"}));
    assert_eq!(reply["error"]["message"], "ERROR_BAD_REQUEST");
    a.join("A", "R");
    let reply = a.call("join", json!({"user": "A", "room": "R"}));
    assert_eq!(reply["error"]["message"], "ERROR_ILLEGAL_STATE");
}

#[test]
fn message_is_echoed_to_its_sender_with_exact_text() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let token = a.enter("Alice", "Lounge");
    assert_eq!(
        a.event(),
        (
            format!("{token}.client.events.userupdate"),
            json!({"user": "Alice", "action": "joined"})
        )
    );
    let text = "quote\" backslash\\ newline\n tab\t unicode ü☺😀 ctrl\u{1}";
    a.ok("send", json!({"roomid": token, "message": text}));
    assert_eq!(
        a.event(),
        (
            format!("{token}.client.events.message"),
            json!({"user": "Alice", "message": text})
        )
    );
    a.ok("send", json!({"roomid": token, "message": ""}));
    assert_eq!(a.event().1, json!({"user": "Alice", "message": ""}));
    let big = "x".repeat(60_000);
    a.ok("send", json!({"roomid": token, "message": big}));
    assert_eq!(a.event().1["message"].as_str().unwrap().len(), 60_000);
}

#[test]
fn roomupdate_registration_replays_existing_rooms_first() {
    let server = Server::start(&[]);
    let mut b = server.client();
    b.join("Bob", "Existing");
    let mut a = server.client();
    let reply = a.call(
        "register",
        json!({"event": "roomupdate", "id": "client.events"}),
    );
    assert_eq!(reply["result"], 0);
    let events = a.drain();
    assert_eq!(
        events,
        vec![(
            "client.events.roomupdate".into(),
            json!({"room": "Existing", "secure": "insecure", "action": "created"})
        )]
    );
    let t = a.join("Alice", "Lounge");
    a.ok("leave", json!({"roomid": t}));
    let events = a.drain();
    let actions: Vec<_> = events
        .iter()
        .map(|(_, p)| (p["room"].as_str().unwrap(), p["action"].as_str().unwrap()))
        .collect();
    assert_eq!(actions, [("Lounge", "created"), ("Lounge", "destroyed")]);
    assert_eq!(
        a.ok(
            "unregister",
            json!({"event": "roomupdate", "id": "client.events"})
        ),
        0
    );
    a.join("Alice", "Quiet");
    assert!(a.drain().is_empty(), "no events after unregister");
}

#[test]
fn userupdate_registration_replays_members_including_self() {
    let server = Server::start(&[]);
    let mut b = server.client();
    b.join("Bob", "Lounge");
    let mut a = server.client();
    let token = a.join("Alice", "Lounge");
    a.ok(
        "register",
        json!({"event": "userupdate", "id": format!("{token}.client.events")}),
    );
    let users: Vec<_> = a
        .drain()
        .into_iter()
        .map(|(m, p)| {
            (
                m,
                p["user"].as_str().unwrap().to_owned(),
                p["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let method = format!("{token}.client.events.userupdate");
    assert_eq!(
        users,
        vec![
            (method.clone(), "Bob".into(), "joined".into()),
            (method, "Alice".into(), "joined".into())
        ]
    );
}

#[test]
fn registration_ids_must_start_with_a_known_token() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let token = a.join("Alice", "Lounge");
    assert_eq!(
        a.err(
            "register",
            json!({"event": "userupdate", "id": "0000000000deadbeef00.client.events"})
        ),
        22
    );
    // An id without a token in front registers the whole connection (tests/thunderjs.rs).
    assert_eq!(
        a.ok(
            "register",
            json!({"event": "message", "id": "client.events"})
        ),
        0
    );
    a.ok(
        "unregister",
        json!({"event": "message", "id": "client.events"}),
    );
    assert_eq!(a.err("register", json!({"event": "userupdate"})), -32602);
    assert_eq!(a.err("register", json!({"id": "x"})), -32602);
    assert_eq!(
        a.err("register", json!({"event": "nosuchevent", "id": "x"})),
        -32602
    );
    // The bare token is a valid id too: events arrive as `<token>.userupdate`.
    a.ok("register", json!({"event": "userupdate", "id": token}));
    assert_eq!(a.drain()[0].0, format!("{token}.userupdate"));
    // Index style: `register@<token>` with a plain client id.
    let reply = a.raw(&json!({"jsonrpc":"2.0","id":99,"method":format!("Messenger.1.register@{token}"),"params":{"event":"message","id":"idx"}}).to_string());
    assert_eq!(reply["result"], 0);
    a.ok("send", json!({"roomid": token, "message": "m"}));
    assert_eq!(a.drain()[0].0, format!("{token}.idx.message"));
}

#[test]
fn designators_versions_and_callsign() {
    let server = Server::start(&["--callsign", "Chat"]);
    let mut a = server.client();
    for method in ["Chat.join", "Chat.1.join"] {
        let reply = a.raw(
            &json!({"jsonrpc":"2.0","id":1,"method":method,"params":{"user":method,"room":"R"}})
                .to_string(),
        );
        assert!(reply["result"]["roomid"].is_string(), "{method}: {reply}");
    }
    for method in [
        "Messenger.1.join",
        "Chat.2.join",
        "Chat.1.Join",
        "Chat.1.nosuch",
        "join",
    ] {
        let reply = a.raw(
            &json!({"jsonrpc":"2.0","id":2,"method":method,"params":{"user":"x","room":"R"}})
                .to_string(),
        );
        assert_eq!(reply["error"]["code"], -32601, "{method}: {reply}");
        assert_eq!(reply["id"], 2);
    }
    let reply = a
        .raw(r#"{"jsonrpc":"2.0","id":"s-1","method":"Chat.1.exists","params":{"method":"send"}}"#);
    assert_eq!(reply, json!({"jsonrpc":"2.0","id":"s-1","result":true}));
    let reply = a.raw(r#"{"jsonrpc":"2.0","id":3,"method":"Chat.versions"}"#);
    assert_eq!(reply["result"][0]["major"], 1);
    // The callsign in the path makes it optional in the method.
    let mut p = server.client_with(&server.url("/jsonrpc/Chat"), &[]);
    let reply =
        p.raw(r#"{"jsonrpc":"2.0","id":4,"method":"join","params":{"user":"P","room":"R"}}"#);
    assert!(reply["result"]["roomid"].is_string(), "{reply}");
}

#[test]
fn r5_dialect_shapes_results_and_codes() {
    let server = Server::start(&["--compat", "r5"]);
    let mut a = server.client();
    let token = a.ok("join", json!({"user": "Alice", "room": "Lounge"}));
    let token = token.as_str().expect("bare token string");
    assert_eq!(token.len(), 20);
    assert_eq!(
        a.ok(
            "register",
            json!({"event": "message", "id": format!("{token}.client.events")})
        ),
        json!(null)
    );
    assert_eq!(
        a.ok(
            "unregister",
            json!({"event": "message", "id": format!("{token}.client.events")})
        ),
        json!(null)
    );
    assert_eq!(
        a.err("join", json!({"user": "Alice", "room": "Lounge"})),
        -31005
    );
    assert_eq!(a.err("join", json!({"user": "", "room": "Lounge"})), -31030);
    assert_eq!(
        a.err("leave", json!({"roomid": "0000000000deadbeef00"})),
        -31022
    );
    assert_eq!(
        a.err(
            "join",
            json!({"user": "B", "room": "Lounge", "acl": ["https://x.example"]})
        ),
        -32604
    );
}

#[test]
fn requests_without_id_take_effect_without_answer() {
    let server = Server::start(&[]);
    let mut b = server.client();
    let tb = b.enter("Bob", "Lounge");
    b.drain();
    let mut a = server.client();
    a.ws.send(tungstenite::Message::text(
        r#"{"jsonrpc":"2.0","method":"Messenger.1.join","params":{"room":"Lounge","user":"NoId"}}"#,
    ))
    .unwrap();
    assert_eq!(
        a.err("join", json!({"user": "NoId", "room": "Lounge"})),
        5,
        "the id-less join happened, and got no answer"
    );
    assert_eq!(
        b.event(),
        (
            format!("{tb}.client.events.userupdate"),
            json!({"user": "NoId", "action": "joined"})
        )
    );
}
