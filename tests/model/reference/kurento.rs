//! The model's Kurento room dialect: one room per session, the session id in every reply, the
//! Kurento room server's `RoomException` codes, each with its sentence as the message, for the
//! refusals after the edge (JSON-RPC's own codes for what the edge refuses). Kurento clients
//! see no history; their messages are kept in it like any other.

use serde_json::{json, Value};

use super::super::actions::{ConnId, Id, KCall};
use super::{error, error_with, placeholder, result, Join, JoinE, Model, Owner, Want};

/// A refusal: the `RoomException` code and its sentence.
type Refusal = (i64, String);

/// A Kurento reply: `sessionId` plus `extra`, or the refusal.
fn kurento_reply(id: &Id, session: Value, outcome: Result<Value, Refusal>) -> Option<Want> {
    let id = id.json()?;
    Some(match outcome {
        Ok(mut extra) => {
            extra["sessionId"] = session;
            result(id, extra)
        }
        Err((code, message)) => error_with(id, code, &message),
    })
}

/// This session is in no room (102 `USER_NOT_FOUND`).
fn not_in_room() -> Refusal {
    (102, "This session has not joined a room".into())
}

impl Model {
    /// A Kurento call from `conn`.
    pub(super) fn kurento(&mut self, conn: ConnId, call: &KCall, id: &Id) -> Option<Want> {
        if self.kurento_capped(call) {
            return Some(error(id.json()?, -32602));
        }
        let session = match &self.conns[&conn].session {
            Some(s) => json!(s),
            None => placeholder("session", conn),
        };
        let held = self.held(Owner::Ws(conn)).first().copied();
        let outcome = match call {
            KCall::JoinRoom { user, room } => match held {
                Some(key) => Err((
                    104,
                    format!(
                        "This session is already in room '{}'; leaveRoom first",
                        self.member(key).room
                    ),
                )),
                None => self.kurento_join(conn, user, room),
            },
            KCall::LeaveRoom => match held {
                Some(key) => {
                    self.remove_member(key);
                    Ok(json!({}))
                }
                None => Err(not_in_room()),
            },
            KCall::SendMessage {
                message,
                user,
                room,
            } => self.kurento_send(held, message, user.as_deref(), room.as_deref()),
            KCall::Ping => Ok(json!({"value": "pong"})),
            KCall::Media(name) => Err((
                301,
                format!(
                    "Media is not supported: {name} needs a media server; this room server carries chat only (joinRoom, sendMessage, leaveRoom)"
                ),
            )),
        };
        kurento_reply(id, session, outcome)
    }

    /// A `joinRoom` of a session in no room: the members already there, or the refusal.
    fn kurento_join(&mut self, conn: ConnId, user: &str, room: &str) -> Result<Value, Refusal> {
        let join = Join {
            owner: Owner::Ws(conn),
            user,
            room,
            secure: None,
            acl: None,
            origin: self.conns[&conn].origin,
            kurento: true,
        };
        match self.join(&join) {
            Ok(key) => {
                let r = self.room(room).expect("joined");
                let peers: Vec<Value> = r
                    .members
                    .iter()
                    .filter(|k| **k != key)
                    .map(|k| json!({"id": self.member(*k).user, "streams": []}))
                    .collect();
                Ok(json!({"value": peers}))
            }
            Err(e) => Err(match e {
                JoinE::MemoryFull => (
                    999,
                    format!(
                        "server memory budget full: rooms and registrations may hold half of max_memory_bytes (limit {} bytes); try again after others leave",
                        self.s.memory / 2
                    ),
                ),
                JoinE::Taken => (
                    104,
                    format!("User '{user}' already exists in room '{room}'"),
                ),
                JoinE::Refused(why) => (201, format!("Room '{room}' cannot be joined: {why}")),
                JoinE::RoomFull => (
                    201,
                    format!("Room '{room}' is full ({} members)", self.s.max_members),
                ),
                JoinE::TooManyRooms => (
                    204,
                    format!(
                        "Room '{room}' cannot be created: the server holds its limit of {} rooms",
                        self.s.max_rooms
                    ),
                ),
                JoinE::TooManyMemberships => (
                    101,
                    format!(
                        "This connection holds its limit of {} memberships",
                        self.s.max_memberships
                    ),
                ),
            }),
        }
    }

    /// A `sendMessage`: `userMessage` and `roomMessage`, when given, must be the session's
    /// own (102 and 202 otherwise).
    fn kurento_send(
        &mut self,
        held: Option<usize>,
        message: &str,
        user: Option<&str>,
        room: Option<&str>,
    ) -> Result<Value, Refusal> {
        let key = held.ok_or_else(not_in_room)?;
        let m = self.member(key);
        if let Some(given) = user.filter(|u| *u != m.user) {
            let why = format!("Provided username '{given}' differs from the participant's name");
            return Err((102, why));
        }
        if let Some(given) = room.filter(|r| *r != m.room) {
            let why = format!("Provided room name '{given}' differs from the participant's room");
            return Err((202, why));
        }
        self.send_from(key, message);
        Ok(json!({}))
    }
}
