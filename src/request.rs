//! The edge: raw frame text becomes a checked `Call`, or a `Rejection` carrying the JSON-RPC
//! error to send back. The engine never sees unchecked JSON. Pure: no I/O, no state.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::controller;
use crate::error::RpcError;

/// The events a client can register for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    RoomUpdate,
    UserUpdate,
    Message,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::RoomUpdate => "roomupdate",
            Event::UserUpdate => "userupdate",
            Event::Message => "message",
        }
    }
}

/// A checked Messenger method with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `secure`: `Some(true)` for "secure", `Some(false)` for "insecure", `None` if absent.
    Join {
        user: String,
        room: String,
        secure: Option<bool>,
        acl: Option<Vec<String>>,
    },
    Leave {
        roomid: String,
    },
    Send {
        roomid: String,
        message: String,
    },
    Register {
        event: Event,
        id: String,
    },
    Unregister {
        event: Event,
        id: String,
    },
    /// Thunder's built-in `exists`: whether a method of this plugin exists.
    Exists {
        method: String,
    },
    /// Thunder's built-in `versions`.
    Versions,
    /// Extension (actionhero `listenToRoom`): hear `room`'s `userupdate` and `message` events
    /// as `<id>.userupdate` / `<id>.message` without joining it.
    Listen {
        room: String,
        id: String,
    },
    /// Extension (actionhero `silenceRoom`): stop listening.
    Silence {
        room: String,
        id: String,
    },
    /// Extension (actionhero `socketRoomStatus`): a room's members.
    RoomStatus {
        room: String,
    },
    /// Extension: every room with its member count.
    Rooms,
    /// Extension: this connection's memberships (how a default-room guest learns its token).
    WhoAmI,
    /// Extension (actionhero `roomMatchKey`): a message to the members of the sender's room
    /// whose user name matches `user`, a pattern where `*` matches any run of characters.
    SendTo {
        roomid: String,
        user: String,
        message: String,
    },
    /// Extension (Vendoor `messageUser`): a message to one member of the sender's room.
    Whisper {
        roomid: String,
        to: String,
        message: String,
    },
    /// Extension (Vendoor `isUserOnline`): whether any room has a member of that name.
    IsOnline {
        user: String,
    },
    /// Extension, trusted callers only: a message from the server itself to a room.
    Announce {
        room: String,
        message: String,
    },
    /// Extension, trusted callers only: removes a member from a room.
    Evict {
        room: String,
        user: String,
    },
    /// A call to Thunder's Controller (a designator without callsign, or `Controller.1.*`, on
    /// `/jsonrpc`): just enough of it for what apps ask first (`controller.rs`). Boxed: it is
    /// rare, and `Method`'s size is stack on every connection's parse path.
    Controller(Box<controller::Method>),
}

/// One checked request. `id` is the request's id as JSON text; `None` for a notification,
/// which is carried out but not answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub id: Option<String>,
    pub method: Method,
}

/// A request that is refused at the edge: the error to send, and the id to send it with
/// (`"null"` when the id could not be read). `answer` is false for a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub id: String,
    pub error: RpcError,
    pub answer: bool,
}

/// How method designators are read on one connection.
#[derive(Debug, Clone)]
pub struct Designators {
    /// The configured callsign, e.g. `Messenger`.
    pub callsign: String,
    /// The connection's path named the callsign (`/jsonrpc/Messenger`), so `join` and
    /// `1.join` work without it.
    pub implicit: bool,
}

/// The Messenger methods, for `exists` and designator checks.
pub const METHODS: &[&str] = &[
    "join",
    "leave",
    "send",
    "register",
    "unregister",
    "exists",
    "versions",
    "listen",
    "silence",
    "roomstatus",
    "rooms",
    "whoami",
    "sendto",
    "whisper",
    "isonline",
    "announce",
    "evict",
];

/// A JSON-RPC request object whose envelope is checked but whose method is not yet read:
/// shared by both dialects (`request` for Messenger, `kurento` for the Kurento room API).
pub struct Raw<'a> {
    /// The id as JSON text; `None` for a notification.
    pub id: Option<String>,
    pub method: Cow<'a, str>,
    /// The params as JSON text; `None` when absent or `null`.
    pub params: Option<&'a str>,
}

impl Raw<'_> {
    /// The rejection for this request with `error` (not answered if it is a notification).
    pub fn reject(&self, error: RpcError) -> Rejection {
        Rejection {
            id: self.id.clone().unwrap_or_else(|| "null".into()),
            answer: self.id.is_some(),
            error,
        }
    }
}

/// Reads the JSON-RPC envelope (id, method, params) from frame or body text.
// Out of line: see `engine::text_command` (one stack page per connection).
#[inline(never)]
pub fn envelope(text: &str) -> Result<Raw<'_>, Rejection> {
    if !text.trim_start().starts_with('{') {
        return Err(envelope_error(text, None));
    }
    let envelope: Envelope =
        serde_json::from_str(text).map_err(|e| envelope_error(text, Some(e)))?;
    let id = envelope.id.map(|Id(raw)| raw);
    if let Some(bad) = envelope.invalid {
        return Err(Rejection {
            id: "null".into(),
            error: RpcError::InvalidRequest(bad),
            answer: true,
        });
    }
    let Some(method) = envelope.method else {
        // Without a method it is no notification either: always answered.
        let error = RpcError::InvalidRequest("missing \"method\"".into());
        return Err(Rejection {
            id: id.unwrap_or_else(|| "null".into()),
            error,
            answer: true,
        });
    };
    let params = envelope.params.map(|p| p.get()).filter(|p| *p != "null");
    Ok(Raw { id, method, params })
}

/// Reads one JSON-RPC request from frame or body text.
pub fn parse(text: &str, names: &Designators) -> Result<Call, Rejection> {
    let raw = envelope(text)?;
    let method = match messenger_part(&raw.method, names) {
        Ok(Some(rest)) => {
            designator(rest).and_then(|(name, index)| method_params(name, index, raw.params))
        }
        Ok(None) => {
            controller::parse(&raw.method, raw.params).map(|m| Method::Controller(Box::new(m)))
        }
        Err(e) => Err(e),
    };
    let method = method.map_err(|e| raw.reject(e))?;
    Ok(Call { id: raw.id, method })
}

/// Whose method a designator names: Messenger's (the designator without its callsign:
/// `1.join@x` of `Messenger.1.join@x`; all of it on `/jsonrpc/<callsign>`), the
/// Controller's (`None`: no callsign, or `Controller`), or another plugin's (the error).
fn messenger_part<'a>(method: &'a str, names: &Designators) -> Result<Option<&'a str>, RpcError> {
    let own = method
        .strip_prefix(names.callsign.as_str())
        .and_then(|r| r.strip_prefix('.'));
    match own {
        Some(rest) => Ok(Some(rest)),
        None if names.implicit => Ok(Some(method)),
        None => match controller::names_controller(method) {
            Ok(_) => Ok(None),
            Err(callsign) => Err(RpcError::UnknownCallsign(format!(
                "unknown callsign {callsign:?}; this server is {:?} (and the Controller)",
                names.callsign
            ))),
        },
    }
}

/// Splits `<version>.<name>[@<index>]` (the designator after its callsign) into name and
/// index.
fn designator(rest: &str) -> Result<(&str, Option<&str>), RpcError> {
    let rest = match rest.split_once('.') {
        Some((version, name))
            if !version.is_empty() && version.bytes().all(|c| c.is_ascii_digit()) =>
        {
            if version.parse::<u32>() != Ok(1) {
                return Err(RpcError::UnsupportedVersion(format!(
                    "version {version} is not supported; version 1 is"
                )));
            }
            name
        }
        _ => rest,
    };
    let (name, index) = match rest.split_once('@') {
        Some((name, index)) => (name, Some(index)),
        None => (rest, None),
    };
    if !METHODS.contains(&name) || (index.is_some() && name != "register" && name != "unregister") {
        return Err(RpcError::MethodNotFound(format!("no method {rest:?}")));
    }
    Ok((name, index))
}

// Out of line: see `engine::text_command` (one stack page per connection).
#[inline(never)]
fn method_params(
    name: &str,
    index: Option<&str>,
    params: Option<&str>,
) -> Result<Method, RpcError> {
    let fields: Fields = match params {
        None => Fields::default(),
        Some(text) if text.starts_with('{') => serde_json::from_str(text)
            .map_err(|_| RpcError::InvalidParams("\"params\" must be an object".into()))?,
        Some(_) => {
            return Err(RpcError::InvalidParams(
                "\"params\" must be an object".into(),
            ))
        }
    };
    match name {
        "join" => Ok(Method::Join {
            user: fields.user.non_empty("user")?,
            room: fields.room.non_empty("room")?,
            secure: match fields.secure {
                Field::Missing => None,
                Field::Str(s) if s == "secure" => Some(true),
                Field::Str(s) if s == "insecure" => Some(false),
                _ => {
                    return Err(RpcError::InvalidParams(
                        "\"secure\" must be \"secure\" or \"insecure\"".into(),
                    ))
                }
            },
            acl: fields.acl.map(|acl| acl.0).map_or(Ok(None), |acl| {
                acl.ok_or_else(|| {
                    RpcError::InvalidParams("\"acl\" must be an array of origin strings".into())
                })
                .map(Some)
            })?,
        }),
        "leave" => Ok(Method::Leave {
            roomid: fields.roomid.string("roomid")?,
        }),
        "send" => Ok(Method::Send {
            roomid: fields.roomid.string("roomid")?,
            message: fields.message.string("message")?,
        }),
        "register" | "unregister" => {
            let event = match fields.event {
                Field::Str(e) if e == "roomupdate" => Event::RoomUpdate,
                Field::Str(e) if e == "userupdate" => Event::UserUpdate,
                Field::Str(e) if e == "message" => Event::Message,
                Field::Str(e) => {
                    return Err(RpcError::InvalidParams(format!(
                        "no event {e:?}; events are roomupdate, userupdate, message"
                    )))
                }
                _ => return Err(RpcError::InvalidParams("\"event\" must be a string".into())),
            };
            let Field::Str(id) = fields.id else {
                return Err(RpcError::InvalidParams("\"id\" must be a string".into()));
            };
            // Index style (`register@<roomid>`): the index is the room token in front of the id.
            let id = match index {
                Some(index) => format!("{index}.{id}"),
                None => id.into_owned(),
            };
            Ok(if name == "register" {
                Method::Register { event, id }
            } else {
                Method::Unregister { event, id }
            })
        }
        "exists" => match fields.method {
            Field::Str(m) => Ok(Method::Exists {
                method: m.into_owned(),
            }),
            _ => Err(RpcError::InvalidParams(
                "\"method\" must be a string".into(),
            )),
        },
        "versions" => Ok(Method::Versions),
        _ => extension(name, fields),
    }
}

/// The extension methods (SPEC §5): every parameter is a required string, `room`, `user` and
/// `to` non-empty (30 `ERROR_BAD_REQUEST` otherwise, as for `join`).
fn extension(name: &str, f: Fields) -> Result<Method, RpcError> {
    Ok(match name {
        "listen" | "silence" => {
            let room = f.room.non_empty("room")?;
            let id = f.id.non_empty("id")?;
            if name == "listen" {
                Method::Listen { room, id }
            } else {
                Method::Silence { room, id }
            }
        }
        "roomstatus" => Method::RoomStatus {
            room: f.room.non_empty("room")?,
        },
        "rooms" => Method::Rooms,
        "whoami" => Method::WhoAmI,
        "sendto" => Method::SendTo {
            roomid: f.roomid.string("roomid")?,
            user: f.user.non_empty("user")?,
            message: f.message.string("message")?,
        },
        "whisper" => Method::Whisper {
            roomid: f.roomid.string("roomid")?,
            to: f.to.non_empty("to")?,
            message: f.message.string("message")?,
        },
        "isonline" => Method::IsOnline {
            user: f.user.non_empty("user")?,
        },
        "announce" => Method::Announce {
            room: f.room.non_empty("room")?,
            message: f.message.string("message")?,
        },
        "evict" => Method::Evict {
            room: f.room.non_empty("room")?,
            user: f.user.non_empty("user")?,
        },
        _ => return Err(RpcError::MethodNotFound(format!("no method {name:?}"))),
    })
}

/// Tells unparsable text (-32700) from JSON that is not a request object (-32600).
fn envelope_error(text: &str, e: Option<serde_json::Error>) -> Rejection {
    let error = match serde_json::from_str::<IgnoredAny>(text) {
        Err(syntax) => RpcError::Parse(syntax.to_string()),
        Ok(_) if text.trim_start().starts_with('[') => RpcError::InvalidRequest(
            "batch requests are not supported; send one request per message".into(),
        ),
        Ok(_) if text.trim_start().starts_with('{') => RpcError::InvalidRequest(
            e.map_or_else(|| "not a request object".into(), |e| e.to_string()),
        ),
        Ok(_) => RpcError::InvalidRequest("a request must be a JSON object".into()),
    };
    Rejection {
        id: "null".into(),
        error,
        answer: true,
    }
}

/// The request object. Unknown members are ignored, as Thunder does.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, deserialize_with = "present")]
    id: Option<Id>,
    #[serde(default, borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
    #[serde(default, rename = "jsonrpc", deserialize_with = "version")]
    invalid: Option<String>,
}

/// An id as JSON text: a number, a string or null.
struct Id(String);

/// Reads the id as raw JSON text (no `Value` tree: this runs on every request, on the
/// connection thread's small stack).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Id>, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    match raw.get().as_bytes().first() {
        Some(b'"' | b'-' | b'0'..=b'9' | b'n') => Ok(Some(Id(raw.get().to_owned()))),
        _ => Err(de::Error::custom(
            "\"id\" must be a number, a string or null",
        )),
    }
}

/// `jsonrpc` may be absent (Thunder accepts that); when present it must be a string.
fn version<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Field::deserialize(d)? {
        Field::Str(_) => Ok(None),
        _ => Ok(Some("\"jsonrpc\" must be \"2.0\"".into())),
    }
}

/// The parameters of every method, each read leniently so a wrong type becomes the right
/// error code instead of a parse failure.
#[derive(Default, Deserialize)]
struct Fields<'a> {
    #[serde(default, borrow)]
    user: Field<'a>,
    #[serde(default, borrow)]
    room: Field<'a>,
    #[serde(default, borrow)]
    secure: Field<'a>,
    #[serde(default)]
    acl: Option<Strings>,
    #[serde(default, borrow)]
    roomid: Field<'a>,
    #[serde(default, borrow)]
    message: Field<'a>,
    #[serde(default, borrow)]
    event: Field<'a>,
    #[serde(default, borrow)]
    id: Field<'a>,
    #[serde(default, borrow)]
    method: Field<'a>,
    #[serde(default, borrow)]
    to: Field<'a>,
}

/// One parameter: a string, something else, or absent.
#[derive(Default)]
enum Field<'a> {
    #[default]
    Missing,
    Str(Cow<'a, str>),
    Other,
}

impl Field<'_> {
    /// A required string (30 `ERROR_BAD_REQUEST` when missing or not a string).
    fn string(self, name: &str) -> Result<String, RpcError> {
        match self {
            Field::Str(s) => Ok(s.into_owned()),
            Field::Missing => Err(RpcError::BadRequest(format!("\"{name}\" is missing"))),
            Field::Other => Err(RpcError::BadRequest(format!("\"{name}\" must be a string"))),
        }
    }

    /// A required non-empty string (30 `ERROR_BAD_REQUEST` otherwise).
    fn non_empty(self, name: &str) -> Result<String, RpcError> {
        let s = self.string(name)?;
        if s.is_empty() {
            return Err(RpcError::BadRequest(format!("\"{name}\" is empty")));
        }
        Ok(s)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Field<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Owned(v)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Field::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Field::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Field::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Field::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Field::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Field::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Field::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// An array of strings, or `None` inside if the value was anything else.
struct Strings(Option<Vec<String>>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(Strings(match value {
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => Some(s),
                    _ => None,
                })
                .collect(),
            _ => None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Compat;

    fn names() -> Designators {
        Designators {
            callsign: "Messenger".into(),
            implicit: false,
        }
    }

    fn ok(text: &str) -> Call {
        parse(text, &names()).unwrap()
    }

    fn err(text: &str) -> Rejection {
        parse(text, &names()).unwrap_err()
    }

    #[test]
    fn designators_with_and_without_version() {
        for m in ["Messenger.join", "Messenger.1.join", "Messenger.01.join"] {
            let call = ok(&format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"{m}","params":{{"user":"A","room":"R"}}}}"#
            ));
            assert!(matches!(call.method, Method::Join { .. }), "{m}");
        }
        // Every refusal is -32601 in rdk; r5 words another callsign and another version as
        // Thunder R5 does. `join`, `Messenger` and `` name no callsign: the Controller's.
        for (m, r5) in [
            ("Messenger.2.join", -31038),
            ("Messenger.1.Join", -32601),
            ("messenger.1.join", -31043),
            ("Other.1.join", -31043),
            ("join", -32601),
            ("Messenger", -32601),
            ("Messenger.1.", -32601),
            ("Messenger.1.0.join", -32601),
            ("", -32601),
            ("Controller.2.status", -31038),
        ] {
            let r = err(&format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{m}"}}"#));
            assert_eq!(r.error.code(Compat::Rdk), -32601, "{m}: {:?}", r.error);
            assert_eq!(r.error.code(Compat::R5), r5, "{m}: {:?}", r.error);
        }
    }

    #[test]
    fn designators_without_callsign_are_the_controllers() {
        use controller::Method as C;
        for m in [
            "status",
            "Controller.status",
            "Controller.1.status",
            "1.status",
        ] {
            let call = ok(&format!(r#"{{"id":1,"method":"{m}"}}"#));
            assert_eq!(
                call.method,
                Method::Controller(Box::new(C::Status { callsign: None }))
            );
        }
        let call = ok(r#"{"id":1,"method":"Controller.1.status@Messenger"}"#);
        let index = Some("Messenger".to_owned());
        assert_eq!(
            call.method,
            Method::Controller(Box::new(C::Status { callsign: index }))
        );
        let call = ok(
            r#"{"id":1,"method":"register","params":{"event":"statechange","id":"temporary2"}}"#,
        );
        assert!(matches!(call.method, Method::Controller(m) if matches!(*m, C::Register { .. })));
        // Directed to Messenger (`/jsonrpc/Messenger`), a bare `register` is Messenger's.
        let implicit = Designators {
            callsign: "Messenger".into(),
            implicit: true,
        };
        let text = r#"{"id":1,"method":"register","params":{"event":"message","id":"x"}}"#;
        let call = parse(text, &implicit).unwrap();
        assert!(matches!(call.method, Method::Register { .. }));
    }

    #[test]
    fn callsign_in_path_makes_it_optional() {
        let implicit = Designators {
            callsign: "Messenger".into(),
            implicit: true,
        };
        for m in ["join", "1.join", "Messenger.1.join"] {
            let call = parse(
                &format!(r#"{{"id":1,"method":"{m}","params":{{"user":"A","room":"R"}}}}"#),
                &implicit,
            )
            .unwrap();
            assert!(matches!(call.method, Method::Join { .. }), "{m}");
        }
    }

    #[test]
    fn ids_are_echoed_as_sent() {
        assert_eq!(
            ok(r#"{"id":"abc","method":"Messenger.versions"}"#)
                .id
                .as_deref(),
            Some("\"abc\"")
        );
        assert_eq!(
            ok(r#"{"id":-3,"method":"Messenger.versions"}"#)
                .id
                .as_deref(),
            Some("-3")
        );
        assert_eq!(
            ok(r#"{"id":null,"method":"Messenger.versions"}"#)
                .id
                .as_deref(),
            Some("null")
        );
        assert_eq!(ok(r#"{"method":"Messenger.versions"}"#).id, None);
        let r = err(r#"{"id":[1],"method":"Messenger.versions"}"#);
        assert!(matches!(r.error, RpcError::InvalidRequest(_)));
    }

    #[test]
    fn envelope_errors() {
        assert!(matches!(
            err(r#"{"id":1,"method":"#).error,
            RpcError::Parse(_)
        ));
        assert!(matches!(err("hello").error, RpcError::Parse(_)));
        assert!(matches!(err("").error, RpcError::Parse(_)));
        assert!(matches!(err("[1,2]").error, RpcError::InvalidRequest(_)));
        assert!(matches!(err("[]").error, RpcError::InvalidRequest(_)));
        assert!(matches!(err("[1]").error, RpcError::InvalidRequest(_)));
        assert!(matches!(
            err(r#"[{"id":1,"method":"Messenger.versions"}]"#).error,
            RpcError::InvalidRequest(_)
        ));
        assert!(matches!(err("42").error, RpcError::InvalidRequest(_)));
        assert!(matches!(err(r#""str""#).error, RpcError::InvalidRequest(_)));
        assert!(matches!(err("null").error, RpcError::InvalidRequest(_)));
        assert!(matches!(
            err(r#"{"id":1}"#).error,
            RpcError::InvalidRequest(_)
        ));
        assert!(matches!(
            err(r#"{"id":1,"method":5}"#).error,
            RpcError::InvalidRequest(_)
        ));
        assert!(matches!(
            err(r#"{"jsonrpc":2,"id":1,"method":"Messenger.versions"}"#).error,
            RpcError::InvalidRequest(_)
        ));
        assert_eq!(err(r#"{"id":5}"#).id, "5");
    }

    #[test]
    fn join_params() {
        let bad = |p: &str| {
            err(&format!(
                r#"{{"id":1,"method":"Messenger.1.join","params":{p}}}"#
            ))
            .error
        };
        assert!(matches!(
            bad(r#"{"room":"R","user":""}"#),
            RpcError::BadRequest(_)
        ));
        assert!(matches!(
            bad(r#"{"room":"","user":"A"}"#),
            RpcError::BadRequest(_)
        ));
        assert!(matches!(bad(r#"{"room":"R"}"#), RpcError::BadRequest(_)));
        assert!(matches!(
            bad(r#"{"room":5,"user":"A"}"#),
            RpcError::BadRequest(_)
        ));
        assert!(matches!(bad("{}"), RpcError::BadRequest(_)));
        assert!(matches!(bad("null"), RpcError::BadRequest(_)));
        assert!(matches!(bad(r#""Lounge""#), RpcError::InvalidParams(_)));
        assert!(matches!(bad("[]"), RpcError::InvalidParams(_)));
        assert!(matches!(
            bad(r#"{"room":"R","user":"A","secure":"bogus"}"#),
            RpcError::InvalidParams(_)
        ));
        assert!(matches!(
            bad(r#"{"room":"R","user":"A","acl":"x"}"#),
            RpcError::InvalidParams(_)
        ));
        assert!(matches!(
            bad(r#"{"room":"R","user":"A","acl":[1]}"#),
            RpcError::InvalidParams(_)
        ));
        let missing = err(r#"{"id":1,"method":"Messenger.1.join"}"#).error;
        assert!(matches!(missing, RpcError::BadRequest(_)));
        let call = ok(
            r#"{"id":1,"method":"Messenger.1.join","params":{"room":"Lou\"nge","user":"Al\u00fc","secure":"secure","acl":["https://*.x"],"extra":1}}"#,
        );
        assert_eq!(
            call.method,
            Method::Join {
                user: "Alü".into(),
                room: "Lou\"nge".into(),
                secure: Some(true),
                acl: Some(vec!["https://*.x".into()])
            }
        );
    }

    #[test]
    fn send_and_register_params() {
        assert!(matches!(
            err(r#"{"id":1,"method":"Messenger.1.send","params":{"roomid":"x"}}"#).error,
            RpcError::BadRequest(_)
        ));
        assert!(matches!(
            err(r#"{"id":1,"method":"Messenger.1.send","params":{"roomid":"x","message":7}}"#)
                .error,
            RpcError::BadRequest(_)
        ));
        assert!(matches!(
            err(r#"{"id":1,"method":"Messenger.1.register","params":{"event":"roomupdate"}}"#)
                .error,
            RpcError::InvalidParams(_)
        ));
        assert!(matches!(
            err(r#"{"id":1,"method":"Messenger.1.register","params":{"event":"nosuch","id":"x"}}"#)
                .error,
            RpcError::InvalidParams(_)
        ));
        let call = ok(
            r#"{"id":1,"method":"Messenger.1.register@0123456789abcdef0123","params":{"event":"message","id":"client.events"}}"#,
        );
        assert_eq!(
            call.method,
            Method::Register {
                event: Event::Message,
                id: "0123456789abcdef0123.client.events".into()
            }
        );
        let call =
            ok(r#"{"id":1,"method":"Messenger.1.send","params":{"roomid":"r","message":""}}"#);
        assert_eq!(
            call.method,
            Method::Send {
                roomid: "r".into(),
                message: String::new()
            }
        );
        assert!(matches!(
            err(r#"{"id":1,"method":"Messenger.1.send@x","params":{}}"#).error,
            RpcError::MethodNotFound(_)
        ));
    }

    #[test]
    fn notifications_are_not_answered_when_refused() {
        let r = err(r#"{"method":"Messenger.1.nosuch"}"#);
        assert!(!r.answer);
    }
}
