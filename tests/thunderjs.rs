//! Proves that an app using ThunderJS's own `thunder.on('Messenger', event, cb)` receives its
//! rooms' messages and member updates: the client here speaks exactly as ThunderJS 1.2.5 does
//! (rdkcentral/ThunderJS, src/), and only what ThunderJS would route to a callback counts.
//!
//! The ThunderJS facts relied on:
//! - it opens `ws://host:port/jsonrpc` offering the subprotocol `notification`
//!   (src/api/connect.js:51, src/api/makeWebsocketAddress.js:26-34);
//! - a request is `{"jsonrpc":"2.0","id":<counter from 1>,"method":"Messenger.1.<method>",
//!   "params":..}` (src/api/makeBody.js:31-38, src/api/makeId.js:20-25,
//!   src/api/getVersion.js:21);
//! - `on(plugin, event, cb)` sends `register` with `{event, id: "client.<plugin>.events"}`
//!   the first time an event gets a listener (src/listener.js:44-46, 51-75);
//! - a frame without `id` whose `method` is `client.<plugin>.events.<event>` is handed to that
//!   event's callbacks as `params` (src/api/notificationListener.js:31-37);
//! - `dispose()` of the last listener sends `unregister` with the same params
//!   (src/listener.js:28-39, 85-108).

mod support;

use serde_json::{json, Value};
use support::{Client, Server};

/// The id ThunderJS registers for `thunder.on('Messenger', ...)`.
const ID: &str = "client.Messenger.events";

/// A connection that behaves as ThunderJS: `on`, `dispose`, calls through the plugin.
struct ThunderJs {
    client: Client,
}

impl ThunderJs {
    fn connect(server: &Server) -> ThunderJs {
        let client = server.client_with(
            &server.url("/jsonrpc"),
            &[("Sec-WebSocket-Protocol", "notification")],
        );
        assert_eq!(client.protocol.as_deref(), Some("notification"));
        ThunderJs { client }
    }

    /// `thunder.Messenger.join({user, room})`: the room token.
    fn join(&mut self, user: &str, room: &str) -> String {
        let result = self.client.ok("join", json!({"user": user, "room": room}));
        match result.get("roomid") {
            Some(roomid) => roomid.as_str().unwrap().to_owned(),
            None => result.as_str().expect("r5: a bare token").to_owned(),
        }
    }

    /// `thunder.on('Messenger', event, cb)`: the `register` it sends; the raw response.
    fn on(&mut self, event: &str) -> Value {
        self.client
            .call("register", json!({"event": event, "id": ID}))
    }

    /// `listener.dispose()` of the event's last listener.
    fn dispose(&mut self, event: &str) {
        let reply = self
            .client
            .call("unregister", json!({"event": event, "id": ID}));
        assert!(reply.get("error").is_none(), "{reply}");
    }

    /// What ThunderJS would have handed to callbacks so far, as (event, params), in order.
    /// Fails on any other notification (nothing else is expected on these connections).
    fn callbacks(&mut self) -> Vec<(String, Value)> {
        let prefix = format!("{ID}.");
        self.client
            .drain()
            .into_iter()
            .map(|(method, params)| {
                let event = method
                    .strip_prefix(&prefix)
                    .unwrap_or_else(|| panic!("not for ThunderJS's callbacks: {method}"));
                (event.to_owned(), params)
            })
            .collect()
    }
}

fn message(room: &str, user: &str, text: &str) -> (String, Value) {
    let params = json!({"room": room, "user": user, "message": text});
    ("message".into(), params)
}

fn userupdate(room: &str, user: &str, action: &str) -> (String, Value) {
    let params = json!({"room": room, "user": user, "action": action});
    ("userupdate".into(), params)
}

#[test]
fn on_message_and_userupdate_reach_the_callbacks_with_the_room() {
    let server = Server::start(&[]);
    let mut app = ThunderJs::connect(&server);
    app.join("Alice", "Lounge");
    assert_eq!(app.on("message")["result"], 0);
    assert_eq!(app.on("userupdate")["result"], 0);
    assert_eq!(
        app.callbacks(),
        [userupdate("Lounge", "Alice", "joined")],
        "the replay: every member present, itself included"
    );
    let mut bob = server.client();
    let bob_token = bob.join("Bob", "Lounge");
    bob.ok("send", json!({"roomid": bob_token, "message": "hello"}));
    bob.ok("leave", json!({"roomid": bob_token}));
    assert_eq!(
        app.callbacks(),
        [
            userupdate("Lounge", "Bob", "joined"),
            message("Lounge", "Bob", "hello"),
            userupdate("Lounge", "Bob", "left"),
        ]
    );
}

#[test]
fn registering_before_joining_covers_rooms_joined_later() {
    let server = Server::start(&[]);
    let mut bob = server.client();
    let bob_token = bob.join("Bob", "Den");
    let mut app = ThunderJs::connect(&server);
    app.on("userupdate");
    app.on("message");
    assert!(app.callbacks().is_empty(), "in no room yet");
    app.join("Alice", "Den");
    assert_eq!(
        app.callbacks(),
        [
            userupdate("Den", "Bob", "joined"),
            userupdate("Den", "Alice", "joined"),
        ]
    );
    bob.ok("send", json!({"roomid": bob_token, "message": "welcome"}));
    assert_eq!(app.callbacks(), [message("Den", "Bob", "welcome")]);
}

#[test]
fn after_dispose_or_leaving_nothing_more_arrives() {
    let server = Server::start(&[]);
    let mut app = ThunderJs::connect(&server);
    let lounge = app.join("Alice", "Lounge");
    app.join("Alice", "Den");
    app.on("message");
    let mut bob = server.client();
    let in_lounge = bob.join("Bob", "Lounge");
    let in_den = bob.join("Bob", "Den");
    let send = |bob: &mut Client, roomid: &str, text: &str| {
        bob.ok("send", json!({"roomid": roomid, "message": text}));
    };
    send(&mut bob, &in_lounge, "1");
    assert_eq!(app.callbacks(), [message("Lounge", "Bob", "1")]);
    // Leaving a room ends that room's part only.
    app.client.ok("leave", json!({"roomid": lounge}));
    send(&mut bob, &in_lounge, "2");
    send(&mut bob, &in_den, "3");
    assert_eq!(app.callbacks(), [message("Den", "Bob", "3")]);
    // The registration is the connection's: a room joined again is covered again.
    app.join("Alice", "Lounge");
    send(&mut bob, &in_lounge, "4");
    assert_eq!(app.callbacks(), [message("Lounge", "Bob", "4")]);
    app.dispose("message");
    send(&mut bob, &in_lounge, "5");
    send(&mut bob, &in_den, "6");
    assert!(app.callbacks().is_empty());
}

#[test]
fn several_rooms_and_memberships_deliver_once_per_room() {
    let server = Server::start(&[]);
    let mut bob = server.client();
    let in_lounge = bob.join("Bob", "Lounge");
    let mut app = ThunderJs::connect(&server);
    let first = app.join("Alice", "Lounge");
    app.join("Al", "Lounge");
    app.join("Alice", "Den");
    app.on("userupdate");
    assert_eq!(
        app.callbacks(),
        [
            userupdate("Lounge", "Bob", "joined"),
            userupdate("Lounge", "Alice", "joined"),
            userupdate("Lounge", "Al", "joined"),
            userupdate("Den", "Alice", "joined"),
        ],
        "each room once, in the order the connection joined them"
    );
    app.on("message");
    bob.ok("send", json!({"roomid": in_lounge, "message": "once"}));
    app.client
        .ok("send", json!({"roomid": first, "message": "mine"}));
    assert_eq!(
        app.callbacks(),
        [
            message("Lounge", "Bob", "once"),
            message("Lounge", "Alice", "mine"),
        ],
        "two memberships in Lounge, each message once"
    );
    // A second `on` for the same event is a second listener in ThunderJS, not a second
    // register; a register sent twice anyway still delivers once.
    assert_eq!(app.on("message")["result"], 0);
    bob.ok(
        "send",
        json!({"roomid": in_lounge, "message": "still once"}),
    );
    assert_eq!(app.callbacks().len(), 1);
}

#[test]
fn an_unknown_token_in_front_is_still_refused() {
    let server = Server::start(&[]);
    let mut app = ThunderJs::connect(&server);
    app.join("Alice", "Lounge");
    for id in ["0000000000deadbeef00.client.events", "0000000000deadbeef00"] {
        let e = app
            .client
            .err("register", json!({"event": "message", "id": id}));
        assert_eq!(e, 22, "{id}");
    }
    assert!(app.callbacks().is_empty());
}

#[test]
fn r5_mode_delivers_the_same() {
    let server = Server::start(&["--compat", "r5"]);
    let mut app = ThunderJs::connect(&server);
    app.join("Alice", "Lounge");
    assert_eq!(app.on("message")["result"], Value::Null);
    assert_eq!(app.on("userupdate")["result"], Value::Null);
    assert_eq!(app.callbacks(), [userupdate("Lounge", "Alice", "joined")]);
    let mut bob = ThunderJs::connect(&server);
    let token = bob.join("Bob", "Lounge");
    bob.client
        .ok("send", json!({"roomid": token, "message": "r5"}));
    assert_eq!(
        app.callbacks(),
        [
            userupdate("Lounge", "Bob", "joined"),
            message("Lounge", "Bob", "r5"),
        ]
    );
    let e = app.client.err(
        "register",
        json!({"event": "message", "id": "0000000000deadbeef00.x"}),
    );
    assert_eq!(e, -31022);
}

#[test]
fn they_count_against_the_registration_limit_and_end_with_the_connection() {
    let server = Server::start(&["--max-registrations-per-connection", "1"]);
    let mut app = ThunderJs::connect(&server);
    app.join("Alice", "Lounge");
    assert_eq!(app.on("message")["result"], 0);
    assert_eq!(app.on("userupdate")["error"]["code"], 2);
    let mut watcher = ThunderJs::connect(&server);
    watcher.join("Wendy", "Lounge");
    watcher.on("userupdate");
    watcher.callbacks();
    drop(app);
    let deadline = std::time::Instant::now() + support::WAIT;
    let mut left = Vec::new();
    while left.is_empty() && std::time::Instant::now() < deadline {
        left = watcher.callbacks();
    }
    assert_eq!(left, [userupdate("Lounge", "Alice", "left")]);
    server.wait_health(|h| h["members"] == 1);
}
