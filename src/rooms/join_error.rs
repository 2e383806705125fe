//! Why a join is refused: one narrow enum for `Rooms::try_join`, so each dialect can name the
//! case in its own terms (Thunder's error codes through `RpcError`, Kurento's `RoomException`
//! codes in `kurento::KurentoError`).

use super::Join;
use crate::error::RpcError;

/// A refused join. Nothing in the rooms has changed when one is returned, except that an HTTP
/// join with `max_http_memberships` held has ended the least recently used one first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinError {
    /// A member of that room already has that user name (Thunder: 5 `ERROR_ILLEGAL_STATE`).
    Taken,
    /// The room's security refuses the join: the origin is not in a secure room's ACL, or
    /// the ACL / `secure` asked for does not fit (Thunder: 24 `ERROR_PRIVILEGED_REQUEST`).
    Refused(String),
    /// The room does not exist and `max_rooms` rooms do (Thunder: 2 `ERROR_UNAVAILABLE`).
    TooManyRooms { limit: usize },
    /// The room has `max_members_per_room` members (Thunder: 2).
    RoomFull { limit: usize },
    /// The connection holds `max_memberships_per_connection` memberships (Thunder: 2).
    TooManyMemberships { held: usize, limit: usize },
    /// The operating system gave no randomness for the room token (Thunder: 2).
    NoRandomness(String),
    /// Room state holds its share of `max_memory_bytes` (Thunder: 2); the refusal says so.
    MemoryFull(RpcError),
}

impl JoinError {
    /// The refusal as a Messenger error for the join `req` (the detail a developer reads).
    pub fn rpc(self, req: &Join) -> RpcError {
        match self {
            JoinError::Taken => RpcError::IllegalState(format!(
                "user {:?} is already in room {:?}",
                req.user, req.room
            )),
            JoinError::Refused(why) => RpcError::Privileged(why),
            JoinError::TooManyRooms { limit } => {
                RpcError::Unavailable(format!("too many rooms (limit {limit})"))
            }
            JoinError::RoomFull { limit } => {
                RpcError::Unavailable(format!("room is full (limit {limit})"))
            }
            JoinError::TooManyMemberships { held, limit } => RpcError::Unavailable(format!(
                "this connection already holds {held} memberships (limit {limit})"
            )),
            JoinError::NoRandomness(e) => {
                RpcError::Unavailable(format!("no randomness for a room token: {e}"))
            }
            JoinError::MemoryFull(e) => e,
        }
    }
}
