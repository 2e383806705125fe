//! The engine's side of the Kurento room dialect: a checked `kurento::Call` carried out on
//! the shared rooms, answered with the session's id. One room per session; the session id was
//! made when the WebSocket opened. Refusals carry the Kurento room server's codes (the table
//! is in `kurento`'s module documentation).

use super::Engine;
use crate::acl::Origin;
use crate::kurento::{self, KurentoError};
use crate::outbox::Socket;
use crate::room_token::RoomToken;
use crate::rooms::{ConnId, Join, Owner};

impl<S: Socket> Engine<S> {
    /// Carries out a Kurento client's call; the response text if the call has an id.
    pub(super) fn kurento(&mut self, conn: ConnId, call: kurento::Call) -> Option<String> {
        if !self.sessions.contains_key(&conn) {
            return None;
        }
        let held = self.rooms.held(Owner::WebSocket(conn)).first().copied();
        let ping = call.method == kurento::Method::Ping;
        let outcome = match call.method {
            kurento::Method::JoinRoom { user, room } => {
                let origin = self.origins.get(&conn).map(|o| (**o).clone());
                self.kurento_join(conn, held, &user, &room, origin.as_ref())
            }
            kurento::Method::LeaveRoom => match held {
                Some(token) => {
                    self.rooms.leave_token(token, &mut self.out);
                    Ok(None)
                }
                None => Err(KurentoError::NotInRoom),
            },
            kurento::Method::SendMessage {
                message,
                user,
                room,
            } => self.kurento_send(held, &message, user, room),
            kurento::Method::Ping => Ok(None),
            kurento::Method::Media(method) => Err(KurentoError::NoMedia(method)),
        };
        let id = call.id?;
        let session = &self.sessions[&conn];
        Some(match outcome {
            Ok(Some(token)) => kurento::join_result(&id, session, self.rooms.peers(token)),
            Ok(None) if ping => kurento::pong(&id, session),
            Ok(None) => kurento::session_result(&id, session),
            Err(e) => kurento::error(&id, &e),
        })
    }

    /// A Kurento `joinRoom`: one room per session.
    fn kurento_join(
        &mut self,
        conn: ConnId,
        held: Option<RoomToken>,
        user: &str,
        room: &str,
        origin: Option<&Origin>,
    ) -> Result<Option<RoomToken>, KurentoError> {
        if let Some(token) = held {
            let room = self.rooms.member(token).map_or("", |(_, r)| r).to_owned();
            return Err(KurentoError::AlreadyInRoom { room });
        }
        let join = Join {
            user,
            room,
            secure: None,
            acl: None,
            origin,
            kurento: true,
        };
        self.rooms
            .try_join(Owner::WebSocket(conn), &join, &mut self.out)
            .map(Some)
            .map_err(|e| KurentoError::join(e, user, room))
    }

    /// A Kurento `sendMessage`: `userMessage` and `roomMessage`, when given, must be the
    /// session's own (102 and 202 otherwise, as the Kurento room server answers).
    fn kurento_send(
        &mut self,
        held: Option<RoomToken>,
        message: &str,
        user: Option<String>,
        room: Option<String>,
    ) -> Result<Option<RoomToken>, KurentoError> {
        let token = held.ok_or(KurentoError::NotInRoom)?;
        let (me, here) = self.rooms.member(token).ok_or(KurentoError::NotInRoom)?;
        if let Some(given) = user.filter(|u| u != me) {
            return Err(KurentoError::NotThisUser { given });
        }
        if let Some(given) = room.filter(|r| r != here) {
            return Err(KurentoError::NotThisRoom { given });
        }
        self.rooms.send_token(token, message, false, &mut self.out);
        Ok(None)
    }
}
