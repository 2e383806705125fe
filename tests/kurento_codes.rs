//! Proves that Kurento room clients get the Kurento room server's own error codes
//! (`RoomException.Code`), one test per case, each with a readable sentence as `message` and
//! no `data`, as that server sends them.

mod support;

use serde_json::{json, Value};
use support::{Client, Server};

/// Asserts the error's code, that its message says `says`, and that it has no `data`.
fn check(e: &Value, code: i64, says: &str) {
    assert_eq!(e["code"], code, "{e}");
    let message = e["message"].as_str().expect("message is a string");
    assert!(message.contains(says), "{e}");
    assert!(
        e.get("data").is_none(),
        "the room server sends no data: {e}"
    );
}

fn joined(server: &Server, user: &str, room: &str) -> Client {
    let mut k = server.kurento();
    k.kok("joinRoom", json!({"user": user, "room": room}));
    k
}

#[test]
fn user_not_found_102_before_joining() {
    let server = Server::start(&[]);
    let mut k = server.kurento();
    let e = k.kerr("leaveRoom", json!(null));
    check(&e, 102, "has not joined a room");
    let e = k.kerr("sendMessage", json!({"message": "x"}));
    check(&e, 102, "has not joined a room");
}

#[test]
fn user_not_found_102_for_another_users_name() {
    let server = Server::start(&[]);
    let mut k = joined(&server, "A", "R");
    let e = k.kerr("sendMessage", json!({"message": "x", "userMessage": "B"}));
    check(
        &e,
        102,
        "Provided username 'B' differs from the participant's name",
    );
}

#[test]
fn room_not_found_202_for_another_room() {
    let server = Server::start(&[]);
    let mut k = joined(&server, "A", "R");
    let e = k.kerr("sendMessage", json!({"message": "x", "roomMessage": "S"}));
    check(
        &e,
        202,
        "Provided room name 'S' differs from the participant's room",
    );
}

#[test]
fn existing_user_in_room_104_for_a_taken_name() {
    let server = Server::start(&[]);
    let _a = joined(&server, "A", "R");
    let mut b = server.kurento();
    let e = b.kerr("joinRoom", json!({"user": "A", "room": "R"}));
    check(&e, 104, "User 'A' already exists in room 'R'");
    // A Messenger member's name is taken for Kurento too.
    let mut m = server.client();
    m.join("M", "R");
    check(
        &b.kerr("joinRoom", json!({"user": "M", "room": "R"})),
        104,
        "User 'M'",
    );
}

#[test]
fn existing_user_in_room_104_for_a_second_room() {
    let server = Server::start(&[]);
    let mut k = joined(&server, "A", "R");
    let e = k.kerr("joinRoom", json!({"user": "A2", "room": "Other"}));
    check(&e, 104, "already in room 'R'");
}

#[test]
fn room_generic_201_when_a_secure_room_refuses() {
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
    let mut evil = server.client_with(&server.url("/room"), &[("Origin", "https://evil.net")]);
    let e = evil.kerr("joinRoom", json!({"user": "K", "room": "Vault"}));
    check(&e, 201, "Room 'Vault' cannot be joined");
    check(&e, 201, "https://evil.net");
}

#[test]
fn room_generic_201_when_the_room_is_full() {
    let server = Server::start(&["--max-members-per-room", "1"]);
    let _a = joined(&server, "A", "R");
    let mut b = server.kurento();
    let e = b.kerr("joinRoom", json!({"user": "B", "room": "R"}));
    check(&e, 201, "Room 'R' is full (1 members)");
}

#[test]
fn room_cannot_be_created_204_beyond_the_room_limit() {
    let server = Server::start(&["--max-rooms", "1"]);
    let _a = joined(&server, "A", "R");
    let mut b = server.kurento();
    let e = b.kerr("joinRoom", json!({"user": "B", "room": "S"}));
    check(&e, 204, "Room 'S' cannot be created");
    b.kok("joinRoom", json!({"user": "B", "room": "R"}));
}

#[test]
fn media_generic_301_for_every_media_method() {
    let server = Server::start(&[]);
    let mut k = joined(&server, "A", "R");
    for method in [
        "publishVideo",
        "unpublishVideo",
        "receiveVideoFrom",
        "unsubscribeFromVideo",
        "onIceCandidate",
        "customRequest",
    ] {
        let e = k.kerr(method, json!({"sdpOffer": "v=0", "sender": "A_webcam"}));
        check(&e, 301, "Media is not supported");
        check(&e, 301, method);
    }
}
