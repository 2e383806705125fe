//! The edge: raw frame text becomes a checked `Call`, or a `Rejection` carrying the JSON-RPC
//! error to send back. Every string is held to its byte cap (`caps`) here, and nothing
//! recurses deeper than a fixed few levels whatever the nesting of the input (nested values
//! are skipped by serde_json's iterative `IgnoredAny`). The engine never sees unchecked
//! JSON. Pure: no I/O, no state.

mod fast;
mod fields;
mod id;
mod usual;

use std::borrow::Cow;
use std::sync::Arc;

use serde::de::{self, Deserializer, IgnoredAny};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::caps::Caps;
use crate::controller;
use crate::error::RpcError;
use crate::room_token::{RoomId, RoomToken};
use crate::wire;
use fields::{Field, Fields};
pub use id::Id;

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
    /// The room id read at the edge: its token when it has a token's form. `plain`: the
    /// message holds no byte JSON escapes (`wire::plain_run`), so its JSON string is itself in
    /// quotes; the engine then copies it without a second look.
    Send {
        roomid: RoomId,
        message: String,
        plain: bool,
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
    pub id: Option<Id>,
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

/// How method designators are read on one connection, and the caps its strings are held to.
#[derive(Debug, Clone)]
pub struct Designators {
    /// The configured callsign, e.g. `Messenger` (`Shared::callsign`, one copy for every
    /// connection).
    pub callsign: Arc<str>,
    /// The connection's path named the callsign (`/jsonrpc/Messenger`), so `join` and
    /// `1.join` work without it.
    pub implicit: bool,
    pub caps: Caps,
    /// The callsign is its own JSON text (no quote, backslash or control character), so the
    /// usual match (`usual.rs`) may compare it as bytes: worked out once here, not per request.
    callsign_plain: bool,
}

impl Designators {
    pub fn new(callsign: Arc<str>, implicit: bool, caps: Caps) -> Designators {
        let callsign_plain = wire::plain_run(callsign.as_bytes(), 0) == callsign.len();
        Designators {
            callsign,
            implicit,
            caps,
            callsign_plain,
        }
    }
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
    let id = envelope.id.map(|RawId(raw)| raw);
    if let Some(bad) = envelope.invalid {
        // Always answered, with the id when it could be read.
        return Err(Rejection {
            id: id.unwrap_or_else(|| "null".into()),
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

/// Reads one JSON-RPC request from frame or body text: a `send` as ThunderJS writes it by
/// matching its text (`usual.rs`), one of the usual shape by the scanner (`fast.rs`), anything
/// else by the full parser, with the same result whichever reads it.
pub fn parse(text: &str, names: &Designators) -> Result<Call, Rejection> {
    if let Some(call) = usual::send(text, names) {
        return Ok(call);
    }
    match fast::send(text, names) {
        Some(call) => Ok(call),
        None => full(text, names),
    }
}

/// A `send` to a room token written as ThunderJS writes it (`usual.rs`): its id, the token and
/// the message, borrowed from `text`, which `parse` would make `Method::Send` of with `plain`
/// set; `None` for anything else, which `parse` reads.
pub fn send_to_token<'a>(text: &'a str, names: &Designators) -> Option<(Id, RoomToken, &'a str)> {
    usual::send_to_token(text, names)
}

/// The full parser: every request, every refusal.
fn full(text: &str, names: &Designators) -> Result<Call, Rejection> {
    let raw = envelope(text)?;
    let method = match messenger_part(&raw.method, names) {
        Ok(Some(rest)) => designator(rest)
            .and_then(|(name, index)| method_params(name, index, raw.params, &names.caps)),
        Ok(None) => controller::parse(&raw.method, raw.params, &names.caps)
            .map(|m| Method::Controller(Box::new(m))),
        Err(e) => Err(e),
    };
    let method = method.map_err(|e| raw.reject(e))?;
    Ok(Call {
        id: raw.id.map(Id::from),
        method,
    })
}

/// Whose method a designator names: Messenger's (the designator without its callsign:
/// `1.join@x` of `Messenger.1.join@x`; all of it on `/jsonrpc/<callsign>`), the
/// Controller's (`None`: no callsign, or `Controller`), or another plugin's (the error).
fn messenger_part<'a>(method: &'a str, names: &Designators) -> Result<Option<&'a str>, RpcError> {
    let own = method
        .strip_prefix(&*names.callsign)
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

/// Splits `[<version>.]<name>[@<index>]` (a designator after its callsign, Messenger's or the
/// Controller's) into name and index; a version other than 1 is refused.
pub fn name_and_index(rest: &str) -> Result<(&str, Option<&str>), RpcError> {
    let name = match rest.split_once('.') {
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
    Ok(match name.split_once('@') {
        Some((name, index)) => (name, Some(index)),
        None => (name, None),
    })
}

/// Messenger's method name and index in `<version>.<name>[@<index>]` (the designator after
/// its callsign).
fn designator(rest: &str) -> Result<(&str, Option<&str>), RpcError> {
    let (name, index) = name_and_index(rest)?;
    // `send`, the commonest by far, is known without a walk of the list.
    let known = name == "send" || METHODS.contains(&name);
    if !known || (index.is_some() && name != "register" && name != "unregister") {
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
    caps: &Caps,
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
            user: fields.user.non_empty("user", caps.user())?,
            room: fields.room.non_empty("room", caps.room())?,
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
            acl: fields.acl.map(|acl| acl.checked(caps)).transpose()?,
        }),
        "leave" => Ok(Method::Leave {
            roomid: fields.roomid.string("roomid", caps.id())?,
        }),
        "send" => send_method(fields.roomid, fields.message, caps),
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
            caps.id()
                .bytes("id", &id)
                .map_err(RpcError::InvalidParams)?;
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
        _ => extension(name, fields, caps),
    }
}

/// A `send` with its params, each a string within its cap (the fast path's too).
fn send_method(roomid: Field, message: Field, caps: &Caps) -> Result<Method, RpcError> {
    let message = message.string("message", caps.message())?;
    Ok(Method::Send {
        roomid: RoomId::read(roomid.str("roomid", caps.id())?),
        plain: wire::plain_run(message.as_bytes(), 0) == message.len(),
        message,
    })
}

/// The extension methods (SPEC §5): every parameter is a required string within its cap,
/// `room`, `user` and `to` non-empty (30 `ERROR_BAD_REQUEST` otherwise, as for `join`).
fn extension(name: &str, f: Fields, caps: &Caps) -> Result<Method, RpcError> {
    Ok(match name {
        "listen" | "silence" => {
            let room = f.room.non_empty("room", caps.room())?;
            let id = f.id.non_empty("id", caps.id())?;
            if name == "listen" {
                Method::Listen { room, id }
            } else {
                Method::Silence { room, id }
            }
        }
        "roomstatus" => Method::RoomStatus {
            room: f.room.non_empty("room", caps.room())?,
        },
        "rooms" => Method::Rooms,
        "whoami" => Method::WhoAmI,
        "sendto" => Method::SendTo {
            roomid: f.roomid.string("roomid", caps.id())?,
            user: f.user.non_empty("user", caps.user())?,
            message: f.message.string("message", caps.message())?,
        },
        "whisper" => Method::Whisper {
            roomid: f.roomid.string("roomid", caps.id())?,
            to: f.to.non_empty("to", caps.user())?,
            message: f.message.string("message", caps.message())?,
        },
        "isonline" => Method::IsOnline {
            user: f.user.non_empty("user", caps.user())?,
        },
        "announce" => Method::Announce {
            room: f.room.non_empty("room", caps.room())?,
            message: f.message.string("message", caps.message())?,
        },
        "evict" => Method::Evict {
            room: f.room.non_empty("room", caps.room())?,
            user: f.user.non_empty("user", caps.user())?,
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
    id: Option<RawId>,
    #[serde(default, borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
    #[serde(default, rename = "jsonrpc", deserialize_with = "version")]
    invalid: Option<String>,
}

/// An id as JSON text: a number, a string or null.
struct RawId(String);

/// Reads the id as raw JSON text (no `Value` tree: this runs on every request, on the
/// connection thread's small stack).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RawId>, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    match raw.get().as_bytes().first() {
        Some(b'"' | b'-' | b'0'..=b'9' | b'n') => Ok(Some(RawId(raw.get().to_owned()))),
        _ => Err(de::Error::custom(
            "\"id\" must be a number, a string or null",
        )),
    }
}

/// `jsonrpc` may be absent (Thunder accepts that); when present it must be `"2.0"`.
fn version<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Field::deserialize(d)? {
        Field::Str(v) if v == "2.0" => Ok(None),
        _ => Ok(Some("\"jsonrpc\" must be \"2.0\"".into())),
    }
}

#[cfg(test)]
mod tests;
