//! Proves the extension methods of SPEC §5 over real sockets: listen / silence, roomstatus,
//! rooms, the default room with whoami, sendto, whisper, isonline, and the trusted caller's
//! announce and evict, each with its bad input (missing params, unknown room, not trusted).

mod support;

use serde_json::{json, Value};
use support::{Client, Server};

const ADMIN: &str = "0123456789abcdef-admin";

fn admin(server: &Server) -> Client {
    server.client_with(
        &server.url("/jsonrpc"),
        &[
            ("Sec-WebSocket-Protocol", "notification"),
            ("X-Messenger-Admin", ADMIN),
        ],
    )
}

#[test]
fn listen_hears_a_room_without_joining() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let ta = a.enter("Alice", "Lounge");
    let mut l = server.client();
    assert_eq!(l.err("listen", json!({"room": "Nowhere", "id": "x"})), 22);
    assert_eq!(l.err("listen", json!({"room": "Lounge"})), 30);
    assert_eq!(l.err("listen", json!({"id": "x"})), 30);
    assert_eq!(l.err("listen", json!({"room": "Lounge", "id": 5})), 30);
    assert_eq!(l.ok("listen", json!({"room": "Lounge", "id": "ear"})), 0);
    assert_eq!(
        l.drain(),
        [(
            "ear.userupdate".into(),
            json!({"user": "Alice", "action": "joined"})
        )]
    );
    let mut b = server.client();
    let tb = b.join("Bob", "Lounge");
    b.ok("send", json!({"roomid": tb, "message": "hello"}));
    assert_eq!(
        l.drain(),
        [
            (
                "ear.userupdate".into(),
                json!({"user": "Bob", "action": "joined"})
            ),
            (
                "ear.message".into(),
                json!({"user": "Bob", "message": "hello"})
            )
        ]
    );
    let status = a.ok("roomstatus", json!({"room": "Lounge"}));
    assert_eq!(
        status["members"],
        json!(["Alice", "Bob"]),
        "a listener is no member"
    );
    assert_eq!(l.ok("silence", json!({"room": "Lounge", "id": "ear"})), 0);
    assert_eq!(l.ok("silence", json!({"room": "Lounge", "id": "ear"})), 0);
    assert_eq!(
        l.err("silence", json!({"room": "Nowhere", "id": "ear"})),
        22
    );
    assert_eq!(l.err("silence", json!({"room": "Lounge"})), 30);
    b.ok("send", json!({"roomid": tb, "message": "unheard"}));
    assert!(l.drain().is_empty(), "silenced");
    // A listen ends with its room, with a last roomupdate.
    l.ok("listen", json!({"room": "Lounge", "id": "ear"}));
    l.drain();
    b.ok("leave", json!({"roomid": tb}));
    a.ok("leave", json!({"roomid": ta}));
    assert_eq!(
        l.drain(),
        [
            (
                "ear.userupdate".into(),
                json!({"user": "Bob", "action": "left"})
            ),
            (
                "ear.roomupdate".into(),
                json!({"room": "Lounge", "secure": "insecure", "action": "destroyed"})
            )
        ]
    );
    a.join("Alice", "Lounge");
    assert!(l.drain().is_empty(), "the listen ended with the room");
    // Over HTTP there is nowhere to deliver events.
    let reply = server.post("Messenger.1.listen", json!({"room": "Lounge", "id": "x"}));
    assert_eq!(reply["error"]["code"], -32600);
}

#[test]
fn a_secure_room_is_heard_and_shown_only_by_admitted_origins() {
    let server = Server::start(&[]);
    let good = [
        ("Sec-WebSocket-Protocol", "notification"),
        ("Origin", "https://app.example.com"),
    ];
    let mut a = server.client_with(&server.url("/jsonrpc"), &good);
    a.ok(
        "join",
        json!({"user": "A", "room": "Vault", "secure": "secure", "acl": ["https://*.example.com"]}),
    );
    let mut stranger = server.client();
    assert_eq!(
        stranger.err("listen", json!({"room": "Vault", "id": "x"})),
        24
    );
    assert_eq!(stranger.err("roomstatus", json!({"room": "Vault"})), 24);
    let mut friend = server.client_with(&server.url("/jsonrpc"), &good);
    friend.ok("listen", json!({"room": "Vault", "id": "x"}));
    assert_eq!(
        friend.ok("roomstatus", json!({"room": "Vault"}))["membersCount"],
        1
    );
}

#[test]
fn roomstatus_and_rooms() {
    let server = Server::start(&[]);
    let mut a = server.client();
    assert_eq!(a.ok("rooms", json!({})), json!([]));
    a.join("Alice", "Lounge");
    a.join("Alice", "Den");
    let mut k = server.kurento();
    k.kok("joinRoom", json!({"user": "Kim", "room": "Lounge"}));
    assert_eq!(
        a.ok("roomstatus", json!({"room": "Lounge"})),
        json!({"room": "Lounge", "members": ["Alice", "Kim"], "membersCount": 2})
    );
    assert_eq!(
        a.ok("rooms", json!(null)),
        json!([
            {"room": "Den", "secure": "insecure", "membersCount": 1},
            {"room": "Lounge", "secure": "insecure", "membersCount": 2}
        ])
    );
    assert_eq!(a.err("roomstatus", json!({"room": "Nowhere"})), 22);
    assert_eq!(a.err("roomstatus", json!({})), 30);
    assert_eq!(a.err("roomstatus", json!({"room": ""})), 30);
    // Both work over HTTP too.
    let reply = server.post("Messenger.1.roomstatus", json!({"room": "Den"}));
    assert_eq!(reply["result"]["members"], json!(["Alice"]));
    assert_eq!(
        a.ok("exists", json!({"method": "roomstatus"})),
        json!(true),
        "extensions are listed by exists"
    );
}

#[test]
fn default_room_takes_every_messenger_connection() {
    let server = Server::start(&["--default-room", "lobby"]);
    let mut a = server.client();
    let me = a.ok("whoami", json!({}));
    let list = me.as_array().unwrap();
    assert_eq!(list.len(), 1, "{me}");
    assert_eq!(list[0]["room"], "lobby");
    let name = list[0]["user"].as_str().unwrap().to_owned();
    assert!(name.starts_with("guest-"), "{name}");
    let token = list[0]["roomid"].as_str().unwrap().to_owned();
    a.ok(
        "register",
        json!({"event": "userupdate", "id": format!("{token}.e")}),
    );
    a.ok(
        "register",
        json!({"event": "message", "id": format!("{token}.e")}),
    );
    a.drain();
    let mut b = server.client();
    let b_name = b.ok("whoami", json!({}))[0]["user"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(b_name, name);
    assert_eq!(
        a.event(),
        (
            format!("{token}.e.userupdate"),
            json!({"user": b_name, "action": "joined"})
        )
    );
    a.ok("send", json!({"roomid": token, "message": "hi lobby"}));
    assert_eq!(a.event().1, json!({"user": name, "message": "hi lobby"}));
    // A Kurento session does not join the default room: it joins one room of its choice.
    let mut k = server.kurento();
    k.kok("joinRoom", json!({"user": "Kim", "room": "Elsewhere"}));
    assert_eq!(
        a.ok("roomstatus", json!({"room": "lobby"}))["membersCount"],
        2
    );
    // Leaving the default room is allowed; whoami then lists nothing.
    a.ok("leave", json!({"roomid": token}));
    assert_eq!(a.ok("whoami", json!(null)), json!([]));
    let reply = server.post("Messenger.1.whoami", json!({}));
    assert_eq!(reply["error"]["code"], -32600, "no connection over HTTP");
}

#[test]
fn sendto_reaches_the_matching_members() {
    let server = Server::start(&[]);
    let mut clients: Vec<(Client, String)> = ["a-1", "a-2", "b-1"]
        .iter()
        .map(|name| {
            let mut c = server.client();
            let t = c.enter(name, "Field");
            (c, t)
        })
        .collect();
    let mut k = server.kurento();
    k.kok("joinRoom", json!({"user": "a-k", "room": "Field"}));
    for (c, _) in clients.iter_mut() {
        c.drain();
    }
    let ta = clients[0].1.clone();
    let sender = &mut clients[0].0;
    assert_eq!(
        sender.ok(
            "sendto",
            json!({"roomid": ta, "user": "a-*", "message": "team a"})
        ),
        3
    );
    assert_eq!(
        sender.ok(
            "sendto",
            json!({"roomid": ta, "user": "nobody", "message": "x"})
        ),
        0
    );
    assert_eq!(
        sender.err(
            "sendto",
            json!({"roomid": "0000000000deadbeef00", "user": "*", "message": "x"})
        ),
        22
    );
    assert_eq!(
        sender.err("sendto", json!({"roomid": ta, "message": "x"})),
        30
    );
    assert_eq!(sender.err("sendto", json!({"roomid": ta, "user": "*"})), 30);
    assert_eq!(
        sender.err("sendto", json!({"user": "*", "message": "x"})),
        30
    );
    let expected = json!({"user": "a-1", "message": "team a", "to": "a-*"});
    for (i, (c, t)) in clients.iter_mut().enumerate() {
        let got = c.drain();
        if i < 2 {
            assert_eq!(
                got,
                [(format!("{t}.client.events.message"), expected.clone())]
            );
        } else {
            assert!(got.is_empty(), "b-1 does not match a-*: {got:?}");
        }
    }
    assert_eq!(
        k.kdrain(),
        [(
            "sendMessage".into(),
            json!({"room": "Field", "user": "a-1", "message": "team a"})
        )]
    );
}

#[test]
fn whisper_reaches_one_member() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let ta = a.enter("Alice", "Lounge");
    let mut b = server.client();
    let tb = b.enter("Bob", "Lounge");
    let mut c = server.client();
    c.enter("Carol", "Lounge");
    let mut other = server.client();
    other.enter("Dave", "Den");
    a.drain();
    b.drain();
    c.drain();
    assert_eq!(
        a.ok(
            "whisper",
            json!({"roomid": ta, "to": "Bob", "message": "psst"})
        ),
        Value::Null
    );
    assert_eq!(
        b.drain(),
        [(
            format!("{tb}.client.events.message"),
            json!({"user": "Alice", "message": "psst", "to": "Bob"})
        )]
    );
    assert!(a.drain().is_empty(), "no echo of a whisper");
    assert!(c.drain().is_empty());
    assert_eq!(
        a.err(
            "whisper",
            json!({"roomid": ta, "to": "Dave", "message": "x"})
        ),
        22,
        "only within the sender's room"
    );
    assert_eq!(
        a.err("whisper", json!({"roomid": ta, "to": "", "message": "x"})),
        30
    );
    assert_eq!(a.err("whisper", json!({"roomid": ta, "message": "x"})), 30);
    assert_eq!(
        a.err(
            "whisper",
            json!({"roomid": "0000000000deadbeef00", "to": "Bob", "message": "x"})
        ),
        22
    );
}

#[test]
fn isonline_sees_any_membership() {
    let server = Server::start(&[]);
    let mut a = server.client();
    assert_eq!(a.ok("isonline", json!({"user": "Bob"})), json!(false));
    let mut b = server.client();
    let tb = b.join("Bob", "Den");
    let mut k = server.kurento();
    k.kok("joinRoom", json!({"user": "Kim", "room": "Lounge"}));
    assert_eq!(a.ok("isonline", json!({"user": "Bob"})), json!(true));
    assert_eq!(a.ok("isonline", json!({"user": "Kim"})), json!(true));
    assert_eq!(a.ok("isonline", json!({"user": "bob"})), json!(false));
    b.ok("leave", json!({"roomid": tb}));
    assert_eq!(a.ok("isonline", json!({"user": "Bob"})), json!(false));
    assert_eq!(a.err("isonline", json!({})), 30);
    assert_eq!(a.err("isonline", json!({"user": ""})), 30);
    let reply = server.post("Messenger.1.isonline", json!({"user": "Kim"}));
    assert_eq!(reply["result"], json!(true));
}

#[test]
fn announce_needs_a_trusted_caller() {
    let server = Server::start(&["--admin-token", ADMIN, "--server-name", "Box"]);
    let mut a = server.client();
    let ta = a.enter("Alice", "Lounge");
    let mut k = server.kurento();
    k.kok("joinRoom", json!({"user": "Kim", "room": "Lounge"}));
    let mut l = server.client();
    l.ok("listen", json!({"room": "Lounge", "id": "ear"}));
    a.drain();
    l.drain();
    let params = json!({"room": "Lounge", "message": "maintenance at 3"});
    assert_eq!(a.err("announce", params.clone()), 24, "not trusted");
    let mut wrong = server.client_with(
        &server.url("/jsonrpc"),
        &[("X-Messenger-Admin", "0123456789abcdef-wrong")],
    );
    assert_eq!(wrong.err("announce", params.clone()), 24, "wrong secret");
    let mut admin = admin(&server);
    assert_eq!(admin.ok("announce", params.clone()), Value::Null);
    let from_server = json!({"user": "Box", "message": "maintenance at 3"});
    assert_eq!(
        a.drain(),
        [(format!("{ta}.client.events.message"), from_server.clone())]
    );
    assert_eq!(l.drain(), [("ear.message".into(), from_server)]);
    assert_eq!(
        k.kdrain(),
        [(
            "sendMessage".into(),
            json!({"room": "Lounge", "user": "Box", "message": "maintenance at 3"})
        )]
    );
    assert_eq!(
        admin.err("announce", json!({"room": "Nowhere", "message": "x"})),
        22
    );
    assert_eq!(admin.err("announce", json!({"room": "Lounge"})), 30);
    assert_eq!(admin.err("announce", json!({"message": "x"})), 30);
    // The query parameter works as well as the header.
    let mut by_query = server.client_with(&server.url(&format!("/jsonrpc?admin={ADMIN}")), &[]);
    by_query.ok("announce", json!({"room": "Lounge", "message": "q"}));
    assert_eq!(a.event().1["message"], "q");
    // Over HTTP: the same header on a POST.
    let body = json!({"jsonrpc":"2.0","id":1,"method":"Messenger.1.announce","params":{"room":"Lounge","message":"curl"}}).to_string();
    let (status, text) = server.http_with(
        "POST",
        "/jsonrpc",
        &[("X-Messenger-Admin", ADMIN)],
        Some(&body),
    );
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["result"],
        Value::Null
    );
    assert_eq!(a.event().1["message"], "curl");
    let reply = server.post(
        "Messenger.1.announce",
        json!({"room": "Lounge", "message": "x"}),
    );
    assert_eq!(
        reply["error"]["code"], 24,
        "a POST without the secret is not trusted"
    );
}

#[test]
fn without_admin_token_nobody_is_trusted() {
    let server = Server::start(&[]);
    let mut a = server.client();
    a.join("Alice", "Lounge");
    let mut would_be = admin(&server);
    assert_eq!(
        would_be.err("announce", json!({"room": "Lounge", "message": "x"})),
        24
    );
    assert_eq!(
        would_be.err("evict", json!({"room": "Lounge", "user": "Alice"})),
        24
    );
}

#[test]
fn evict_removes_a_member() {
    let server = Server::start(&["--admin-token", ADMIN]);
    let mut a = server.client();
    let ta = a.enter("Alice", "Lounge");
    let mut b = server.client();
    let tb = b.enter("Bob", "Lounge");
    a.drain();
    b.drain();
    assert_eq!(
        b.err("evict", json!({"room": "Lounge", "user": "Alice"})),
        24
    );
    let mut admin = admin(&server);
    assert_eq!(
        admin.err("evict", json!({"room": "Nowhere", "user": "Alice"})),
        22
    );
    assert_eq!(
        admin.err("evict", json!({"room": "Lounge", "user": "Nobody"})),
        22
    );
    assert_eq!(admin.err("evict", json!({"room": "Lounge"})), 30);
    assert_eq!(admin.err("evict", json!({"user": "Bob"})), 30);
    assert_eq!(
        admin.ok("evict", json!({"room": "Lounge", "user": "Bob"})),
        Value::Null
    );
    let left = json!({"user": "Bob", "action": "left"});
    assert_eq!(
        b.drain(),
        [(format!("{tb}.client.events.userupdate"), left.clone())],
        "the evicted member hears its own leave"
    );
    assert_eq!(
        a.drain(),
        [(format!("{ta}.client.events.userupdate"), left)]
    );
    assert_eq!(b.err("send", json!({"roomid": tb, "message": "x"})), 22);
    a.ok("send", json!({"roomid": ta, "message": "after"}));
    assert!(b.drain().is_empty(), "its registrations ended");
    assert_eq!(
        a.ok("roomstatus", json!({"room": "Lounge"}))["members"],
        json!(["Alice"])
    );
}
