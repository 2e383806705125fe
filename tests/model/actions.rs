//! What clients do in a model case, and how each action is chosen (from the `Dice`, looking at
//! the model's state so that tokens, rooms and users are mostly real ones) and written as the
//! frame or body text a client would send.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::controller::{controller_action, CCall};
use super::reference::{Ev, Model};
use super::Dice;

pub type ConnId = u64;

/// Users, rooms, origins and ACL patterns a case chooses from: few, so they collide. The long
/// ones are within the default caps and over the small caps some cases set.
pub const USERS: &[&str] = &["A", "B", "C", "guest-1", "a-rather-long-user"];
pub const ROOMS: &[&str] = &["R1", "R2", "S", "Lobby", "a-long-room-name"];
pub const ORIGINS: &[Option<&str>] = &[
    None,
    Some("https://app.example.com"),
    Some("http://localhost:8080"),
    Some("https://evil.example.net"),
];
/// ACL patterns; `ftp//x` is not a pattern at all; the last admits none of `ORIGINS`.
pub const PATTERNS: &[&str] = &[
    "https://*.example.com",
    "http://localhost:*",
    "ftp//x",
    "https://*.a-rather-long-name.example.org",
];
const MESSAGES: &[&str] = &[
    "hi",
    "quote \" and \\ back",
    "ü\n\t☃",
    "",
    "a message longer than the small caps",
];
const METHOD_NAMES: &[&str] = &["join", "leave", "whoami", "Join", "nosuch", "listen"];
const MEDIA: &[&str] = &["publishVideo", "receiveVideoFrom", "onIceCandidate"];

/// A request's id as sent: none (a notification), a number, a string or null.
#[derive(Debug, Clone, PartialEq)]
pub enum Id {
    None,
    Num(u64),
    Str(String),
    Null,
}

impl Id {
    /// The id as the JSON value a response carries; `None` for a notification.
    pub fn json(&self) -> Option<Value> {
        match self {
            Id::None => None,
            Id::Num(n) => Some(json!(n)),
            Id::Str(s) => Some(json!(s)),
            Id::Null => Some(Value::Null),
        }
    }
}

/// A Messenger method with its parameters.
#[derive(Debug, Clone)]
pub enum Call {
    Join {
        user: String,
        room: String,
        secure: Option<bool>,
        acl: Option<Vec<&'static str>>,
    },
    Leave {
        roomid: String,
    },
    Send {
        roomid: String,
        message: String,
    },
    /// `at`: the index form `register@<at>` with `id`; the registration's id is then
    /// `<at>.<id>`.
    Register {
        event: Ev,
        id: String,
        at: Option<String>,
    },
    Unregister {
        event: Ev,
        id: String,
    },
    Listen {
        room: String,
        id: String,
    },
    Silence {
        room: String,
        id: String,
    },
    RoomStatus {
        room: String,
    },
    Rooms,
    WhoAmI,
    IsOnline {
        user: String,
    },
    Exists {
        method: String,
    },
    Versions,
    SendTo {
        roomid: String,
        user: String,
        message: String,
    },
    Whisper {
        roomid: String,
        to: String,
        message: String,
    },
    Announce {
        room: String,
        message: String,
    },
    Evict {
        room: String,
        user: String,
    },
}

/// A Kurento room method.
#[derive(Debug, Clone)]
pub enum KCall {
    JoinRoom {
        user: String,
        room: String,
    },
    LeaveRoom,
    SendMessage {
        message: String,
        user: Option<String>,
        room: Option<String>,
    },
    Ping,
    Media(&'static str),
}

/// A frame the edge refuses, with what each dialect answers: the id and the JSON-RPC error
/// code (`None`: not answered). `r5`: the code a Messenger connection gets in `r5` where it is
/// not the rdk one mapped as usual (Thunder R5's codes for another callsign or version).
pub struct Malformed {
    pub text: &'static str,
    pub messenger: Option<(Value, i64)>,
    pub kurento: Option<(Value, i64)>,
    pub r5: Option<i64>,
}

/// Code 30 `ERROR_BAD_REQUEST` in the rdk dialect; the harness maps it for r5.
pub const BAD_REQUEST: i64 = 30;

pub fn malformed() -> Vec<Malformed> {
    let both = |id: Value, code| (Some((id.clone(), code)), Some((id, code)));
    let cases = [
        ("not json", both(Value::Null, -32700)),
        ("[1,2]", both(Value::Null, -32600)),
        (r#"{"jsonrpc":"2.0","id":7}"#, both(json!(7), -32600)),
        (
            r#"{"jsonrpc":"2.0","id":8,"method":"Other.1.join"}"#,
            both(json!(8), -32601),
        ),
        (
            r#"{"jsonrpc":"2.0","id":"s","method":"Messenger.2.join"}"#,
            both(json!("s"), -32601),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"Messenger.1.nosuch"}"#,
            (None, None),
        ),
        (
            r#"{"jsonrpc":"2.0","id":9,"method":"Messenger.1.join","params":{"room":"R1"}}"#,
            (Some((json!(9), BAD_REQUEST)), Some((json!(9), -32601))),
        ),
        (
            r#"{"jsonrpc":"2.0","id":10,"method":"Messenger.1.send","params":"x"}"#,
            (Some((json!(10), -32602)), Some((json!(10), -32601))),
        ),
        (
            r#"{"jsonrpc":"2.0","id":11,"method":"joinRoom","params":{"user":""}}"#,
            (Some((json!(11), -32601)), Some((json!(11), -32602))),
        ),
        // `jsonrpc` must be "2.0" when present; always answered, with the id when it was read.
        (
            r#"{"jsonrpc":2,"id":12,"method":"ping"}"#,
            both(json!(12), -32600),
        ),
        (
            r#"{"jsonrpc":"1.0","id":13,"method":"Messenger.1.rooms"}"#,
            both(json!(13), -32600),
        ),
        (
            r#"{"jsonrpc":"1.0","method":"Messenger.1.rooms"}"#,
            both(Value::Null, -32600),
        ),
    ];
    cases
        .into_iter()
        .map(|(text, (messenger, kurento))| Malformed {
            text,
            messenger,
            kurento,
            r5: if text.contains("Other.1.") {
                Some(-31043)
            } else if text.contains("Messenger.2.") {
                Some(-31038)
            } else {
                None
            },
        })
        .collect()
}

/// One thing that happens in a case.
#[derive(Debug, Clone)]
pub enum Action {
    /// A WebSocket opens: Kurento (`/room`) or Messenger (`/jsonrpc`, or `/jsonrpc/Messenger`
    /// when `implicit`), with an origin, trusted or not.
    Open {
        kurento: bool,
        origin: Option<&'static str>,
        admin: bool,
        implicit: bool,
    },
    /// A Messenger call on a WebSocket, its designator written as `prefix` + name.
    Call {
        conn: ConnId,
        id: Id,
        call: Call,
        prefix: &'static str,
    },
    /// A Messenger call over `POST /jsonrpc`.
    Http {
        id: Id,
        call: Call,
        origin: Option<&'static str>,
        admin: bool,
    },
    /// A Kurento call.
    Kurento { conn: ConnId, id: Id, call: KCall },
    /// A Controller call on a Messenger WebSocket on `/jsonrpc` (`None`: over HTTP), its
    /// designator written as `prefix` + name.
    Controller {
        conn: Option<ConnId>,
        id: Id,
        call: CCall,
        prefix: &'static str,
    },
    /// A frame the edge refuses (index into `malformed()`).
    Malformed { conn: ConnId, which: usize },
    /// A request with an id over the connection's rate limit (refused at the edge).
    Limited { conn: ConnId, id: Id },
    /// The reader answers a ping (a pong frame).
    Pong { conn: ConnId },
    /// The reader closes the connection (a bad frame): close 1009.
    Close { conn: ConnId },
    /// The reader has ended.
    Gone { conn: ConnId },
    /// The clock moves on, then ticks.
    Advance { by: Duration },
    /// `GET /health`.
    Health,
}

/// Picks one of `items`.
pub fn one<'a, T>(dice: &mut dyn Dice, items: &'a [T]) -> &'a T {
    &items[dice.below(items.len())]
}

/// Picks one of `words`.
pub fn word(dice: &mut dyn Dice, words: &[&'static str]) -> &'static str {
    words[dice.below(words.len())]
}

/// True `percent` times in a hundred.
pub fn chance(dice: &mut dyn Dice, percent: usize) -> bool {
    dice.below(100) < percent
}

/// Chooses the next action, looking at the model for real tokens, rooms and connections.
pub fn pick(dice: &mut dyn Dice, model: &Model, ids: &mut u64) -> Action {
    let live = model.live_conns();
    let messenger: Vec<ConnId> = live
        .iter()
        .copied()
        .filter(|c| !model.is_kurento(*c))
        .collect();
    let kurento: Vec<ConnId> = live
        .iter()
        .copied()
        .filter(|c| model.is_kurento(*c))
        .collect();
    let roll = dice.below(100);
    if live.len() < 2 || (roll < 6 && live.len() < 6) {
        return Action::Open {
            kurento: chance(dice, 25),
            origin: *one(dice, ORIGINS),
            admin: chance(dice, 30),
            implicit: chance(dice, 30),
        };
    }
    let conn = *one(dice, &live);
    *ids += 1;
    let id = match dice.below(20) {
        0 => Id::None,
        1 => Id::Null,
        2 => Id::Str(format!("s{ids}")),
        _ => Id::Num(*ids),
    };
    match roll {
        6..=9 => Action::Malformed {
            conn,
            which: dice.below(malformed().len()),
        },
        10 => Action::Limited {
            conn,
            id: Id::Num(*ids),
        },
        11 => Action::Pong { conn },
        12 => Action::Close { conn },
        13..=15 => Action::Gone { conn },
        16..=17 => Action::Advance {
            by: Duration::from_secs(*one(dice, &[1, 30, 61])),
        },
        18 => Action::Health,
        19..=28 => Action::Http {
            id,
            call: call(dice, model),
            origin: *one(dice, ORIGINS),
            admin: chance(dice, 30),
        },
        29..=33 => controller_action(dice, model, &messenger, id),
        _ if !kurento.is_empty() && (messenger.is_empty() || roll < 45) => Action::Kurento {
            conn: *one(dice, &kurento),
            id,
            call: kurento_call(dice, model),
        },
        _ if !messenger.is_empty() => {
            let conn = *one(dice, &messenger);
            let prefixes: &[&str] = if model.is_implicit(conn) {
                &["Messenger.", "Messenger.1.", "", "1."]
            } else {
                &["Messenger.", "Messenger.1."]
            };
            Action::Call {
                conn,
                id,
                call: call(dice, model),
                prefix: word(dice, prefixes),
            }
        }
        _ => Action::Health,
    }
}

/// A room token: mostly a live one the clients know, sometimes a stale or made-up one.
/// Two to five `send`s in a row on one Messenger connection, as a client writes a burst (the
/// harness may hand them to the engine as one run, `engine::Held`); none without one.
pub fn burst(dice: &mut dyn Dice, model: &Model, ids: &mut u64) -> Vec<Action> {
    let messenger: Vec<ConnId> = model
        .live_conns()
        .into_iter()
        .filter(|c| !model.is_kurento(*c))
        .collect();
    if messenger.is_empty() {
        return Vec::new();
    }
    let conn = *one(dice, &messenger);
    let roomid = roomid(dice, model);
    (0..2 + dice.below(4))
        .map(|_| {
            *ids += 1;
            Action::Call {
                conn,
                id: Id::Num(*ids),
                call: Call::Send {
                    roomid: roomid.clone(),
                    message: text(dice, MESSAGES),
                },
                prefix: "Messenger.1.",
            }
        })
        .collect()
}

fn roomid(dice: &mut dyn Dice, model: &Model) -> String {
    let known = model.known_tokens();
    match dice.below(10) {
        0 if !model.dead_tokens.is_empty() => one(dice, &model.dead_tokens).clone(),
        1 => "0123456789abcdef0123".into(),
        2 => "nope".into(),
        _ if !known.is_empty() => one(dice, &known).clone(),
        _ => "0123456789abcdef0123".into(),
    }
}

/// A registration id for `userupdate` / `message`: a token, then maybe a client suffix; or an
/// id that starts with no token (a registration for the whole connection), such as
/// ThunderJS's `client.Messenger.events` or LinkType's `temporary1`, or a token in capitals.
fn registration_id(dice: &mut dyn Dice, model: &Model) -> String {
    match dice.below(10) {
        0 => "client.events".into(),
        1 => "client.Messenger.events".into(),
        2 => "temporary1".into(),
        3 => roomid(dice, model).to_uppercase(),
        4 => roomid(dice, model),
        _ => format!(
            "{}.{}",
            roomid(dice, model),
            one(dice, &["client.events", "x"])
        ),
    }
}

fn text(dice: &mut dyn Dice, items: &[&str]) -> String {
    (*one(dice, items)).to_owned()
}

/// A Messenger call with parameters drawn from the model's state.
fn call(dice: &mut dyn Dice, model: &Model) -> Call {
    let event = *one(dice, &[Ev::RoomUpdate, Ev::UserUpdate, Ev::Message]);
    match dice.below(30) {
        0..=5 => Call::Join {
            user: text(dice, USERS),
            room: text(dice, ROOMS),
            secure: *one(
                dice,
                &[None, None, None, None, None, Some(true), Some(false)],
            ),
            acl: match dice.below(18) {
                0 => Some(vec![PATTERNS[0]]),
                1 => Some(vec![PATTERNS[1], PATTERNS[0]]),
                2 => Some(vec![]),
                3 => Some(vec![PATTERNS[2]]),
                4 => Some(vec![PATTERNS[3]]),
                5 => Some(vec![PATTERNS[0], PATTERNS[3]]),
                _ => None,
            },
        },
        6..=7 => Call::Leave {
            roomid: roomid(dice, model),
        },
        8..=12 => Call::Send {
            roomid: roomid(dice, model),
            message: text(dice, MESSAGES),
        },
        13..=17 => {
            let (id, at) = match event {
                Ev::RoomUpdate => (text(dice, &["rooms", "a.b"]), None),
                _ if chance(dice, 20) => ("client".to_owned(), Some(roomid(dice, model))),
                _ => (registration_id(dice, model), None),
            };
            Call::Register { event, id, at }
        }
        18 => Call::Unregister {
            event,
            id: match event {
                Ev::RoomUpdate => text(dice, &["rooms", "a.b"]),
                _ => registration_id(dice, model),
            },
        },
        19 => Call::Listen {
            room: text(dice, ROOMS),
            id: text(dice, &["l", "m"]),
        },
        20 => Call::Silence {
            room: text(dice, ROOMS),
            id: text(dice, &["l", "m"]),
        },
        21 => Call::RoomStatus {
            room: text(dice, ROOMS),
        },
        22 => one(dice, &[Call::Rooms, Call::WhoAmI, Call::Versions]).clone(),
        23 => Call::IsOnline {
            user: text(dice, USERS),
        },
        24 => Call::Exists {
            method: text(dice, METHOD_NAMES),
        },
        25..=26 => Call::SendTo {
            roomid: roomid(dice, model),
            user: text(dice, &["*", "A", "B*", "*C", "Z", "a-rather-long-*"]),
            message: text(dice, MESSAGES),
        },
        27 => Call::Whisper {
            roomid: roomid(dice, model),
            to: text(dice, USERS),
            message: text(dice, MESSAGES),
        },
        28 => Call::Announce {
            room: text(dice, ROOMS),
            message: text(dice, MESSAGES),
        },
        _ => Call::Evict {
            room: text(dice, ROOMS),
            user: text(dice, USERS),
        },
    }
}

/// A Kurento call.
fn kurento_call(dice: &mut dyn Dice, model: &Model) -> KCall {
    let _ = model;
    match dice.below(10) {
        0..=3 => KCall::JoinRoom {
            user: text(dice, USERS),
            room: text(dice, ROOMS),
        },
        4 => KCall::LeaveRoom,
        5..=7 => KCall::SendMessage {
            message: text(dice, MESSAGES),
            user: chance(dice, 30).then(|| text(dice, USERS)),
            room: chance(dice, 30).then(|| text(dice, ROOMS)),
        },
        8 => KCall::Ping,
        _ => KCall::Media(word(dice, MEDIA)),
    }
}

/// `{"jsonrpc":"2.0","id":..,"method":..,"params":..}` as text, without the id for a
/// notification and without params when there are none.
pub fn request(id: &Id, method: &str, params: Map<String, Value>) -> String {
    let mut object = Map::new();
    object.insert("jsonrpc".into(), json!("2.0"));
    if let Some(id) = id.json() {
        object.insert("id".into(), id);
    }
    object.insert("method".into(), json!(method));
    if !params.is_empty() {
        object.insert("params".into(), Value::Object(params));
    }
    Value::Object(object).to_string()
}

impl Call {
    /// The request text, with the method designator `prefix` + name.
    pub fn text(&self, id: &Id, prefix: &str) -> String {
        let (name, params) = self.name_and_params();
        request(id, &format!("{prefix}{name}"), params)
    }

    fn name_and_params(&self) -> (String, Map<String, Value>) {
        let (name, params) = match self {
            Call::Join {
                user,
                room,
                secure,
                acl,
            } => {
                let mut p = json!({"user": user, "room": room});
                if let Some(secure) = secure {
                    p["secure"] = json!(if *secure { "secure" } else { "insecure" });
                }
                if let Some(acl) = acl {
                    p["acl"] = json!(acl);
                }
                ("join".to_owned(), p)
            }
            Call::Leave { roomid } => ("leave".into(), json!({"roomid": roomid})),
            Call::Send { roomid, message } => {
                ("send".into(), json!({"roomid": roomid, "message": message}))
            }
            Call::Register { event, id, at } => {
                let name = at
                    .as_ref()
                    .map_or("register".into(), |at| format!("register@{at}"));
                (name, json!({"event": event.name(), "id": id}))
            }
            Call::Unregister { event, id } => (
                "unregister".into(),
                json!({"event": event.name(), "id": id}),
            ),
            Call::Listen { room, id } => ("listen".into(), json!({"room": room, "id": id})),
            Call::Silence { room, id } => ("silence".into(), json!({"room": room, "id": id})),
            Call::RoomStatus { room } => ("roomstatus".into(), json!({"room": room})),
            Call::Rooms => ("rooms".into(), json!({})),
            Call::WhoAmI => ("whoami".into(), json!({})),
            Call::Versions => ("versions".into(), json!({})),
            Call::IsOnline { user } => ("isonline".into(), json!({"user": user})),
            Call::Exists { method } => ("exists".into(), json!({"method": method})),
            Call::SendTo {
                roomid,
                user,
                message,
            } => (
                "sendto".into(),
                json!({"roomid": roomid, "user": user, "message": message}),
            ),
            Call::Whisper {
                roomid,
                to,
                message,
            } => (
                "whisper".into(),
                json!({"roomid": roomid, "to": to, "message": message}),
            ),
            Call::Announce { room, message } => {
                ("announce".into(), json!({"room": room, "message": message}))
            }
            Call::Evict { room, user } => ("evict".into(), json!({"room": room, "user": user})),
        };
        let Value::Object(params) = params else {
            unreachable!("params are objects")
        };
        (name, params)
    }
}

impl KCall {
    pub fn text(&self, id: &Id) -> String {
        let (method, params) = match self {
            KCall::JoinRoom { user, room } => ("joinRoom", json!({"user": user, "room": room})),
            KCall::LeaveRoom => ("leaveRoom", json!({})),
            KCall::SendMessage {
                message,
                user,
                room,
            } => {
                let mut p = json!({"message": message});
                if let Some(user) = user {
                    p["userMessage"] = json!(user);
                }
                if let Some(room) = room {
                    p["roomMessage"] = json!(room);
                }
                ("sendMessage", p)
            }
            KCall::Ping => ("ping", json!({})),
            KCall::Media(name) => (*name, json!({"sdpOffer": "v=0"})),
        };
        let Value::Object(params) = params else {
            unreachable!("params are objects")
        };
        request(id, method, params)
    }
}
