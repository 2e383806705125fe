//! The model's Kurento room dialect: one room per session, the session id in every reply,
//! Kurento's own error codes for the shared room rules' refusals.

use serde_json::{json, Value};

use super::super::actions::{ConnId, Id, KCall};
use super::{error_with, placeholder, result, Join, Model, Owner, Want, E};

/// A Kurento error: (code, message).
fn kurento_error(e: E) -> (i64, &'static str) {
    match e {
        E::IllegalState => (104, "EXISTING_USER_IN_ROOM"),
        E::UnknownKey => (102, "USER_NOT_FOUND"),
        E::Privileged | E::Unavailable => (105, "CANNOT_JOIN_ROOM"),
        E::InvalidRequest => (-32602, "Invalid parameters."),
    }
}

/// A Kurento reply: `sessionId` plus `extra`, or the error.
fn kurento_reply(id: &Id, session: Value, outcome: Result<Value, E>) -> Option<Want> {
    let id = id.json()?;
    Some(match outcome {
        Ok(mut extra) => {
            extra["sessionId"] = session;
            result(id, extra)
        }
        Err(e) => {
            let (code, message) = kurento_error(e);
            error_with(id, code, message)
        }
    })
}

/// Kurento's own refusals (not from the room rules).
fn kurento_refusal(id: &Id, code: i64, message: &str) -> Option<Want> {
    Some(error_with(id.json()?, code, message))
}

impl Model {
    /// A Kurento call from `conn`.
    pub(super) fn kurento(&mut self, conn: ConnId, call: &KCall, id: &Id) -> Option<Want> {
        let session = match &self.conns[&conn].session {
            Some(s) => json!(s),
            None => placeholder("session", conn),
        };
        let held = self.held(Owner::Ws(conn)).first().copied();
        let outcome = match call {
            KCall::JoinRoom { user, room } => {
                if held.is_some() {
                    return kurento_refusal(id, 104, "EXISTING_USER_IN_ROOM");
                }
                let join = Join {
                    owner: Owner::Ws(conn),
                    user,
                    room,
                    secure: None,
                    acl: None,
                    origin: self.conns[&conn].origin,
                    kurento: true,
                };
                self.join(&join).map(|key| {
                    let room = self.room(room).expect("joined");
                    let peers: Vec<Value> = room
                        .members
                        .iter()
                        .filter(|k| **k != key)
                        .map(|k| json!({"id": self.member(*k).user, "streams": []}))
                        .collect();
                    json!({"value": peers})
                })
            }
            KCall::LeaveRoom => match held {
                Some(key) => {
                    self.remove_member(key);
                    Ok(json!({}))
                }
                None => Err(E::UnknownKey),
            },
            KCall::SendMessage {
                message,
                user,
                room,
            } => {
                let Some(key) = held else {
                    return kurento_reply(id, session, Err(E::UnknownKey));
                };
                let m = self.member(key);
                let foreign = user.as_ref().is_some_and(|u| *u != m.user)
                    || room.as_ref().is_some_and(|r| *r != m.room);
                if foreign {
                    return kurento_refusal(id, -32602, "Invalid parameters.");
                }
                self.send_from(key, message);
                Ok(json!({}))
            }
            KCall::Ping => Ok(json!({"value": "pong"})),
            KCall::Media(_) => return kurento_refusal(id, -32601, "Media is not supported"),
        };
        kurento_reply(id, session, outcome)
    }
}
