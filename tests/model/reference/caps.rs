//! The model's byte caps (issue 10): every string a client sends is held to its cap at the
//! edge, before anything else happens. Messenger refuses with 30 `ERROR_BAD_REQUEST`, except
//! a registration id over its cap (-32602); Kurento with -32602. Fields are checked in the
//! order the request is read.

use super::super::actions::{Call, KCall};
use super::{Model, E};

/// The caps of a case, in bytes (`acl_patterns`: how many patterns).
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub user: usize,
    pub room: usize,
    pub id: usize,
    pub message: usize,
    pub acl_patterns: usize,
    pub acl_pattern: usize,
}

/// 30 for a string over its cap.
fn within(text: &str, cap: usize) -> Result<(), E> {
    if text.len() <= cap {
        Ok(())
    } else {
        Err(E::BadRequest)
    }
}

impl Model {
    /// The edge's refusal of a Messenger call with a string over its cap, if it is one.
    pub(super) fn capped(&mut self, call: &Call) -> Result<(), E> {
        let refused = self.over_cap(call);
        self.tally.capped += usize::from(refused.is_err());
        refused
    }

    fn over_cap(&self, call: &Call) -> Result<(), E> {
        let c = self.s.caps;
        match call {
            Call::Join {
                user, room, acl, ..
            } => {
                within(user, c.user)?;
                within(room, c.room)?;
                let acl = acl.as_deref().unwrap_or_default();
                if acl.len() > c.acl_patterns {
                    return Err(E::BadRequest);
                }
                acl.iter().try_for_each(|p| within(p, c.acl_pattern))
            }
            Call::Leave { roomid } => within(roomid, c.id),
            Call::Send { roomid, message } => {
                within(roomid, c.id)?;
                within(message, c.message)
            }
            Call::Register { id, at, .. } => {
                let id = at.as_ref().map_or(id.clone(), |at| format!("{at}.{id}"));
                within(&id, c.id).map_err(|_| E::InvalidParams)
            }
            Call::Unregister { id, .. } => within(id, c.id).map_err(|_| E::InvalidParams),
            Call::Listen { room, id } | Call::Silence { room, id } => {
                within(room, c.room)?;
                within(id, c.id)
            }
            Call::RoomStatus { room } => within(room, c.room),
            Call::IsOnline { user } => within(user, c.user),
            Call::SendTo {
                roomid,
                user,
                message,
            } => {
                within(roomid, c.id)?;
                within(user, c.user)?;
                within(message, c.message)
            }
            Call::Whisper {
                roomid,
                to,
                message,
            } => {
                within(roomid, c.id)?;
                within(to, c.user)?;
                within(message, c.message)
            }
            Call::Announce { room, message } => {
                within(room, c.room)?;
                within(message, c.message)
            }
            Call::Evict { room, user } => {
                within(room, c.room)?;
                within(user, c.user)
            }
            Call::Rooms | Call::WhoAmI | Call::Exists { .. } | Call::Versions => Ok(()),
        }
    }

    /// Whether the edge refuses a Kurento call for a string over its cap (-32602).
    pub(super) fn kurento_capped(&mut self, call: &KCall) -> bool {
        let refused = self.kurento_over_cap(call);
        self.tally.capped += usize::from(refused);
        refused
    }

    fn kurento_over_cap(&self, call: &KCall) -> bool {
        let c = self.s.caps;
        match call {
            KCall::JoinRoom { user, room } => user.len() > c.user || room.len() > c.room,
            KCall::SendMessage {
                message,
                user,
                room,
            } => {
                message.len() > c.message
                    || user.as_ref().is_some_and(|u| u.len() > c.user)
                    || room.as_ref().is_some_and(|r| r.len() > c.room)
            }
            KCall::LeaveRoom | KCall::Ping | KCall::Media(_) => false,
        }
    }
}
