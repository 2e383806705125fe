//! The Kurento room dialect (seed 003) on `/room`: frame text becomes a checked `Call` at the
//! edge, and this module writes the dialect's results, errors and events. Pure: no I/O, no
//! state; the engine keeps each session's id and `rooms` keeps its membership.
//!
//! Method names carry no callsign or version. A session is in at most one room. There is no
//! media: the media methods are answered with a "Media is not supported" error.

use std::borrow::Cow;

use serde::Deserialize;

use crate::error::RpcError;
use crate::request::{self, Rejection};
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

/// Why a Kurento call failed after the edge. Codes are those of the Kurento room server's
/// `RoomException` where one fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KurentoError {
    /// -32602: a parameter does not fit the session (a foreign `userMessage`/`roomMessage`).
    InvalidParams(String),
    /// -32601 "Media is not supported": a media method (there is no media server).
    NoMedia(&'static str),
    /// 104: the user name is taken in that room, or this session is already in a room.
    ExistingUser(String),
    /// 102: this session is in no room (`leaveRoom`, `sendMessage` before `joinRoom`).
    NotInRoom,
    /// 105: the room cannot be joined (a secure room refuses this origin, or a limit is
    /// reached).
    CannotJoin(String),
}

impl KurentoError {
    fn code(&self) -> i64 {
        match self {
            KurentoError::InvalidParams(_) => -32602,
            KurentoError::NoMedia(_) => -32601,
            KurentoError::ExistingUser(_) => 104,
            KurentoError::NotInRoom => 102,
            KurentoError::CannotJoin(_) => 105,
        }
    }

    fn message(&self) -> &'static str {
        match self {
            KurentoError::InvalidParams(_) => "Invalid parameters.",
            KurentoError::NoMedia(_) => "Media is not supported",
            KurentoError::ExistingUser(_) => "EXISTING_USER_IN_ROOM",
            KurentoError::NotInRoom => "USER_NOT_FOUND",
            KurentoError::CannotJoin(_) => "CANNOT_JOIN_ROOM",
        }
    }

    fn detail(&self) -> Cow<'_, str> {
        match self {
            KurentoError::InvalidParams(d)
            | KurentoError::ExistingUser(d)
            | KurentoError::CannotJoin(d) => Cow::Borrowed(d),
            KurentoError::NoMedia(m) => Cow::Owned(format!(
                "{m}: this room server carries chat only (joinRoom, sendMessage, leaveRoom)"
            )),
            KurentoError::NotInRoom => Cow::Borrowed("this session has not joined a room"),
        }
    }
}

impl From<RpcError> for KurentoError {
    /// A refusal from the shared room rules, in Kurento's terms.
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::IllegalState(d) => KurentoError::ExistingUser(d),
            RpcError::UnknownKey => KurentoError::NotInRoom,
            RpcError::Privileged(d) | RpcError::Unavailable(d) => KurentoError::CannotJoin(d),
            other => KurentoError::InvalidParams(other.detail().unwrap_or("").to_owned()),
        }
    }
}

/// Reads one Kurento request from frame text.
pub fn parse(text: &str) -> Result<Call, Rejection> {
    let raw = request::envelope(text)?;
    let method = method(&raw.method, raw.params).map_err(|e| raw.reject(e))?;
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

fn method(name: &str, params: Option<&str>) -> Result<Method, RpcError> {
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
    let required = |v: Option<Cow<str>>, field: &str| match v {
        Some(s) if !s.is_empty() => Ok(s.into_owned()),
        Some(_) => Err(RpcError::InvalidParams(format!("\"{field}\" is empty"))),
        None => Err(RpcError::InvalidParams(format!("\"{field}\" is missing"))),
    };
    Ok(match name {
        "joinRoom" => Method::JoinRoom {
            user: required(p.user, "user")?,
            room: required(p.room, "room")?,
        },
        "leaveRoom" => Method::LeaveRoom,
        "ping" => Method::Ping,
        _ => Method::SendMessage {
            message: p
                .message
                .ok_or_else(|| RpcError::InvalidParams("\"message\" is missing".into()))?
                .into_owned(),
            user: p.user_message.map(Cow::into_owned),
            room: p.room_message.map(Cow::into_owned),
        },
    })
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

/// An error response.
pub fn error(id: &str, e: &KurentoError) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{},"message":"{}","data":{}}}}}"#,
        e.code(),
        e.message(),
        wire::json_string(&e.detail())
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
        parse(text).unwrap().method
    }

    fn err(text: &str) -> RpcError {
        parse(text).unwrap_err().error
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
        assert!(!parse(r#"{"method":"nosuch"}"#).unwrap_err().answer);
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
}
