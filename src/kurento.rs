//! The Kurento room dialect (seed 003) on `/room`: frame text becomes a checked `Call` at the
//! edge, and this module writes the dialect's results, errors and events. Pure: no I/O, no
//! state; the engine keeps each session's id and `rooms` keeps its membership.
//!
//! Method names carry no callsign or version. A session is in at most one room. There is no
//! media: the media methods are answered with a "media is not supported" error.
//!
//! # Errors
//!
//! A refusal after the edge carries a code of the Kurento room server's `RoomException.Code`
//! (kurento-room-sdk) and, as that server does, a readable sentence as `message` and no
//! `data`: `{"code":104,"message":"User 'A' already exists in room 'R'"}`.
//!
//! | code | name | when |
//! |---|---|---|
//! | 101 | `USER_GENERIC_ERROR` | the connection holds its limit of memberships |
//! | 102 | `USER_NOT_FOUND` | `leaveRoom` / `sendMessage` before `joinRoom`; a `userMessage` that is not the session's user |
//! | 104 | `EXISTING_USER_IN_ROOM` | the user name is taken in that room; the session is already in a room |
//! | 201 | `ROOM_GENERIC_ERROR` | a secure room does not admit the session's origin; the room is full |
//! | 202 | `ROOM_NOT_FOUND` | a `roomMessage` that is not the session's room |
//! | 204 | `ROOM_CANNOT_BE_CREATED` | a new room while the server holds its limit of rooms |
//! | 301 | `MEDIA_GENERIC_ERROR` | a media method (there is no media server) |
//! | 999 | `GENERIC_ERROR` | the operating system gave no randomness for the membership |
//!
//! The server's other codes (103 `USER_CLOSED`, 105 `USER_NOT_STREAMING`, 203 `ROOM_CLOSED`,
//! 302–307 media, 801–803 transport) name states this server never has. What the edge refuses
//! keeps JSON-RPC's codes (-32700, -32600, -32601 unknown method, -32602 bad params).

use std::borrow::Cow;

use serde::Deserialize;

use crate::caps::{Cap, Caps};
use crate::error::RpcError;
use crate::request::{self, Rejection};
use crate::rooms::JoinError;
use crate::wire;

/// The media methods of the Kurento room API, answered with `KurentoError::NoMedia`.
pub const MEDIA: &[&str] = &[
    "publishVideo",
    "unpublishVideo",
    "receiveVideoFrom",
    "unsubscribeFromVideo",
    "onIceCandidate",
    "customRequest",
];

/// A checked Kurento room method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `joinRoom {user, room}`.
    JoinRoom { user: String, room: String },
    /// `leaveRoom`.
    LeaveRoom,
    /// `sendMessage {message, userMessage?, roomMessage?}`: when given, `userMessage` and
    /// `roomMessage` must name the session's own user and room (no one speaks for another).
    SendMessage {
        message: String,
        user: Option<String>,
        room: Option<String>,
    },
    /// kurento-jsonrpc's keep-alive `ping`, answered `{"value":"pong"}`.
    Ping,
    /// One of `MEDIA`.
    Media(&'static str),
}

/// One checked Kurento request; `id` as JSON text, `None` for a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub id: Option<String>,
    pub method: Method,
}

/// Why a Kurento call failed after the edge, each variant with its `RoomException.Code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KurentoError {
    /// 301 `MEDIA_GENERIC_ERROR`: a media method (there is no media server).
    NoMedia(&'static str),
    /// 104 `EXISTING_USER_IN_ROOM`: the user name is taken in that room.
    ExistingUser { user: String, room: String },
    /// 104 `EXISTING_USER_IN_ROOM`: this session is already in `room` (one room per session).
    AlreadyInRoom { room: String },
    /// 102 `USER_NOT_FOUND`: this session is in no room (`leaveRoom`, `sendMessage` before
    /// `joinRoom`, or after an eviction).
    NotInRoom,
    /// 102 `USER_NOT_FOUND`: `userMessage` is not this session's user (no one speaks for
    /// another).
    NotThisUser { given: String },
    /// 202 `ROOM_NOT_FOUND`: `roomMessage` is not this session's room.
    NotThisRoom { given: String },
    /// 201 `ROOM_GENERIC_ERROR`: a secure room does not admit this session (`why` says how).
    Refused { room: String, why: String },
    /// 201 `ROOM_GENERIC_ERROR`: the room has `max_members_per_room` members.
    RoomFull { room: String, limit: usize },
    /// 204 `ROOM_CANNOT_BE_CREATED`: the room does not exist and `max_rooms` rooms do.
    CannotCreate { room: String, limit: usize },
    /// 101 `USER_GENERIC_ERROR`: the connection holds `max_memberships_per_connection`.
    TooManyMemberships { limit: usize },
    /// 999 `GENERIC_ERROR`: something outside the rules failed (no randomness).
    Generic(String),
}

impl KurentoError {
    /// The refusal of `user`'s join into `room`, in Kurento's terms.
    pub fn join(e: JoinError, user: &str, room: &str) -> KurentoError {
        let room = room.to_owned();
        match e {
            JoinError::Taken => KurentoError::ExistingUser {
                user: user.to_owned(),
                room,
            },
            JoinError::Refused(why) => KurentoError::Refused { room, why },
            JoinError::RoomFull { limit } => KurentoError::RoomFull { room, limit },
            JoinError::TooManyRooms { limit } => KurentoError::CannotCreate { room, limit },
            JoinError::TooManyMemberships { limit, .. } => {
                KurentoError::TooManyMemberships { limit }
            }
            JoinError::NoRandomness(e) => {
                KurentoError::Generic(format!("No randomness for a membership: {e}"))
            }
            JoinError::MemoryFull(e) => KurentoError::Generic(e.detail().unwrap_or("").into()),
        }
    }

    /// The `RoomException.Code` value.
    pub fn code(&self) -> i64 {
        match self {
            KurentoError::TooManyMemberships { .. } => 101,
            KurentoError::NotInRoom | KurentoError::NotThisUser { .. } => 102,
            KurentoError::ExistingUser { .. } | KurentoError::AlreadyInRoom { .. } => 104,
            KurentoError::Refused { .. } | KurentoError::RoomFull { .. } => 201,
            KurentoError::NotThisRoom { .. } => 202,
            KurentoError::CannotCreate { .. } => 204,
            KurentoError::NoMedia(_) => 301,
            KurentoError::Generic(_) => 999,
        }
    }

    /// The sentence sent as `message`, in the Kurento room server's style.
    pub fn message(&self) -> String {
        match self {
            KurentoError::NoMedia(m) => format!(
                "Media is not supported: {m} needs a media server; this room server carries chat only (joinRoom, sendMessage, leaveRoom)"
            ),
            KurentoError::ExistingUser { user, room } => {
                format!("User '{user}' already exists in room '{room}'")
            }
            KurentoError::AlreadyInRoom { room } => {
                format!("This session is already in room '{room}'; leaveRoom first")
            }
            KurentoError::NotInRoom => "This session has not joined a room".into(),
            KurentoError::NotThisUser { given } => {
                format!("Provided username '{given}' differs from the participant's name")
            }
            KurentoError::NotThisRoom { given } => {
                format!("Provided room name '{given}' differs from the participant's room")
            }
            KurentoError::Refused { room, why } => {
                format!("Room '{room}' cannot be joined: {why}")
            }
            KurentoError::RoomFull { room, limit } => {
                format!("Room '{room}' is full ({limit} members)")
            }
            KurentoError::CannotCreate { room, limit } => format!(
                "Room '{room}' cannot be created: the server holds its limit of {limit} rooms"
            ),
            KurentoError::TooManyMemberships { limit } => {
                format!("This connection holds its limit of {limit} memberships")
            }
            KurentoError::Generic(why) => why.clone(),
        }
    }
}

/// Reads one Kurento request from frame text; its strings are held to `caps` (-32602 over).
pub fn parse(text: &str, caps: &Caps) -> Result<Call, Rejection> {
    let raw = request::envelope(text)?;
    let method = method(&raw.method, raw.params, caps).map_err(|e| raw.reject(e))?;
    Ok(Call { id: raw.id, method })
}

/// The parameters of every Kurento method; unknown members are ignored.
#[derive(Default, Deserialize)]
struct Params<'a> {
    #[serde(default, borrow)]
    user: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    room: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "userMessage")]
    user_message: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "roomMessage")]
    room_message: Option<Cow<'a, str>>,
}

fn method(name: &str, params: Option<&str>, caps: &Caps) -> Result<Method, RpcError> {
    if let Some(media) = MEDIA.iter().find(|m| **m == name) {
        return Ok(Method::Media(media));
    }
    if !["joinRoom", "leaveRoom", "sendMessage", "ping"].contains(&name) {
        return Err(RpcError::MethodNotFound(format!(
            "no method {name:?}; this room server has joinRoom, leaveRoom, sendMessage"
        )));
    }
    let p: Params = match params {
        None => Params::default(),
        Some(text) if text.starts_with('{') => serde_json::from_str(text)
            .map_err(|e| RpcError::InvalidParams(format!("params: {e}")))?,
        Some(_) => {
            return Err(RpcError::InvalidParams(
                "\"params\" must be an object".into(),
            ))
        }
    };
    let required = |v: Option<Cow<str>>, field: &str, cap: Cap| match v {
        Some(s) if s.is_empty() => Err(RpcError::InvalidParams(format!("\"{field}\" is empty"))),
        Some(s) => capped(s, field, cap),
        None => Err(RpcError::InvalidParams(format!("\"{field}\" is missing"))),
    };
    let optional =
        |v: Option<Cow<str>>, field: &str, cap: Cap| v.map(|s| capped(s, field, cap)).transpose();
    Ok(match name {
        "joinRoom" => Method::JoinRoom {
            user: required(p.user, "user", caps.user())?,
            room: required(p.room, "room", caps.room())?,
        },
        "leaveRoom" => Method::LeaveRoom,
        "ping" => Method::Ping,
        _ => Method::SendMessage {
            message: match p.message {
                Some(m) => capped(m, "message", caps.message())?,
                None => return Err(RpcError::InvalidParams("\"message\" is missing".into())),
            },
            user: optional(p.user_message, "userMessage", caps.user())?,
            room: optional(p.room_message, "roomMessage", caps.room())?,
        },
    })
}

/// A parameter within its cap (-32602 naming the setting otherwise).
fn capped(s: Cow<str>, field: &str, cap: Cap) -> Result<String, RpcError> {
    cap.bytes(field, &s).map_err(RpcError::InvalidParams)?;
    Ok(s.into_owned())
}

/// A fresh session id: 128 bits from the OS CSPRNG as 32 lowercase hex digits.
pub fn session_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `{"sessionId":..}` as a response.
pub fn session_result(id: &str, session: &str) -> String {
    wire::result(id, &format!(r#"{{"sessionId":"{session}"}}"#))
}

/// The `ping` response.
pub fn pong(id: &str, session: &str) -> String {
    wire::result(
        id,
        &format!(r#"{{"sessionId":"{session}","value":"pong"}}"#),
    )
}

/// The `joinRoom` response: the members already present (as JSON string literals).
pub fn join_result<'a>(id: &str, session: &str, present: impl Iterator<Item = &'a str>) -> String {
    let value: Vec<String> = present
        .map(|user| format!(r#"{{"id":{user},"streams":[]}}"#))
        .collect();
    wire::result(
        id,
        &format!(
            r#"{{"sessionId":"{session}","value":[{}]}}"#,
            value.join(",")
        ),
    )
}

/// An error response: the code and the sentence, no `data` (as the Kurento room server).
pub fn error(id: &str, e: &KurentoError) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{},"message":{}}}}}"#,
        e.code(),
        wire::json_string(&e.message())
    )
}

/// `participantJoined {id}`; `user` is a JSON string literal.
pub fn participant_joined(user: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","method":"participantJoined","params":{{"id":{user}}}}}"#)
}

/// `participantLeft {name}`; `user` is a JSON string literal.
pub fn participant_left(user: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","method":"participantLeft","params":{{"name":{user}}}}}"#)
}

/// `participantEvicted {}`, to the evicted member.
pub const PARTICIPANT_EVICTED: &str =
    r#"{"jsonrpc":"2.0","method":"participantEvicted","params":{}}"#;

/// The `sendMessage` event; every argument is a JSON string literal.
pub fn send_message(room: &str, user: &str, message: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","method":"sendMessage","params":{{"room":{room},"user":{user},"message":{message}}}}}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Method {
        parse(text, &Caps::default()).unwrap().method
    }

    fn err(text: &str) -> RpcError {
        parse(text, &Caps::default()).unwrap_err().error
    }

    #[test]
    fn seed_requests_parse() {
        assert_eq!(
            ok(
                r#"{"jsonrpc":"2.0","method":"joinRoom","params":{"user":"USER1","room":"ROOM_1"},"id":0}"#
            ),
            Method::JoinRoom {
                user: "USER1".into(),
                room: "ROOM_1".into()
            }
        );
        assert_eq!(
            ok(r#"{"jsonrpc":"2.0","method":"leaveRoom","id":4}"#),
            Method::LeaveRoom
        );
        assert_eq!(
            ok(
                r#"{"jsonrpc":"2.0","method":"sendMessage","params":{"message":"My message","userMessage":"USER1","roomMessage":"ROOM_1"},"id":5}"#
            ),
            Method::SendMessage {
                message: "My message".into(),
                user: Some("USER1".into()),
                room: Some("ROOM_1".into())
            }
        );
        assert_eq!(
            ok(
                r#"{"jsonrpc":"2.0","method":"publishVideo","params":{"sdpOffer":"v=0"},"doLoopback":false,"id":1}"#
            ),
            Method::Media("publishVideo")
        );
        assert_eq!(
            ok(r#"{"jsonrpc":"2.0","method":"unpublishVideo","id":38}"#),
            Method::Media("unpublishVideo")
        );
    }

    #[test]
    fn escaped_names_are_read() {
        assert_eq!(
            ok(r#"{"id":1,"method":"joinRoom","params":{"user":"A\"1 \u00fc","room":"R\\"}}"#),
            Method::JoinRoom {
                user: "A\"1 ü".into(),
                room: "R\\".into()
            }
        );
    }

    #[test]
    fn bad_requests_are_refused_at_the_edge() {
        for p in [
            r#"{"user":"A"}"#,
            r#"{"room":"R"}"#,
            r#"{"user":"","room":"R"}"#,
            r#"{"user":5,"room":"R"}"#,
            r#""R""#,
        ] {
            let e = err(&format!(
                r#"{{"jsonrpc":"2.0","method":"joinRoom","params":{p},"id":1}}"#
            ));
            assert!(matches!(e, RpcError::InvalidParams(_)), "{p}: {e:?}");
        }
        assert!(matches!(
            err(r#"{"jsonrpc":"2.0","method":"sendMessage","params":{},"id":1}"#),
            RpcError::InvalidParams(_)
        ));
        assert!(matches!(
            err(r#"{"jsonrpc":"2.0","method":"Messenger.1.join","id":1}"#),
            RpcError::MethodNotFound(_)
        ));
        assert!(matches!(err("{"), RpcError::Parse(_)));
        assert!(
            !parse(r#"{"method":"nosuch"}"#, &Caps::default())
                .unwrap_err()
                .answer
        );
    }

    #[test]
    fn strings_over_their_caps_are_refused_naming_the_setting() {
        let caps = Caps::default();
        let over = |cap: Cap| "x".repeat(cap.limit + 1);
        let cases = [
            ("joinRoom", "user", over(caps.user()), "max_user_bytes"),
            ("joinRoom", "room", over(caps.room()), "max_room_bytes"),
            (
                "sendMessage",
                "message",
                over(caps.message()),
                "max_message_bytes",
            ),
            (
                "sendMessage",
                "userMessage",
                over(caps.user()),
                "max_user_bytes",
            ),
            (
                "sendMessage",
                "roomMessage",
                over(caps.room()),
                "max_room_bytes",
            ),
        ];
        for (method, field, value, setting) in cases {
            let mut params = serde_json::json!({"user": "U", "room": "R", "message": "m"});
            params[field] = value.into();
            let text = serde_json::json!({"id": 1, "method": method, "params": params});
            match err(&text.to_string()) {
                RpcError::InvalidParams(d) => assert!(d.contains(setting), "{field}: {d}"),
                other => panic!("{field}: {other:?}"),
            }
        }
        let at_cap = "x".repeat(caps.user().limit);
        let text =
            format!(r#"{{"id":1,"method":"joinRoom","params":{{"user":"{at_cap}","room":"R"}}}}"#);
        assert!(matches!(ok(&text), Method::JoinRoom { .. }));
    }

    #[test]
    fn texts_are_json() {
        let user = wire::json_string("A\"1");
        let j: serde_json::Value =
            serde_json::from_str(&join_result("0", "s", [user.as_str()].into_iter())).unwrap();
        assert_eq!(
            j["result"],
            serde_json::json!({"sessionId":"s","value":[{"id":"A\"1","streams":[]}]})
        );
        for text in [
            participant_joined(&user),
            participant_left(&user),
            send_message(&user, &user, &user),
            error("1", &KurentoError::NoMedia("publishVideo")),
            PARTICIPANT_EVICTED.to_owned(),
        ] {
            serde_json::from_str::<serde_json::Value>(&text).unwrap();
        }
        let id = session_id().unwrap();
        assert_eq!(id.len(), 32);
        assert_ne!(id, session_id().unwrap());
    }

    #[test]
    fn join_refusals_get_room_server_codes() {
        let cases = [
            (JoinError::Taken, 104, "User 'U' already exists in room 'R'"),
            (
                JoinError::Refused("no origin".into()),
                201,
                "Room 'R' cannot be joined: no origin",
            ),
            (
                JoinError::RoomFull { limit: 3 },
                201,
                "Room 'R' is full (3 members)",
            ),
            (
                JoinError::TooManyRooms { limit: 2 },
                204,
                "Room 'R' cannot be created",
            ),
            (
                JoinError::TooManyMemberships { held: 1, limit: 1 },
                101,
                "limit of 1 memberships",
            ),
            (JoinError::NoRandomness("EIO".into()), 999, "No randomness"),
        ];
        for (join, code, says) in cases {
            let e = KurentoError::join(join, "U", "R");
            let v: serde_json::Value = serde_json::from_str(&error("3", &e)).unwrap();
            assert_eq!(v["error"]["code"], code, "{v}");
            assert!(
                v["error"]["message"].as_str().unwrap().contains(says),
                "{v}"
            );
            assert!(v["error"].get("data").is_none());
        }
    }
}
