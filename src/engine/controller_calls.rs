//! The engine's side of the Controller (`controller.rs`): `status`, `activate` and
//! `deactivate` answered from the configuration, and the Controller's event registrations,
//! which belong to their connection, count against its registration limit (`Rooms` keeps the
//! count) and end with it.

use super::calls::Done;
use super::Engine;
use crate::controller::{self, Method};
use crate::error::RpcError;
use crate::outbox::Socket;
use crate::rooms::{cost, ConnId, Sink};
use crate::wire;
use std::mem::size_of;

/// One Controller event registration of a connection (Thunder's generic `register`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    event: String,
    id: String,
    /// `register@<callsign>`: only that plugin's events.
    index: Option<String>,
}

impl Registration {
    /// What it costs the memory budget (`rooms/cost.rs`).
    pub fn cost(&self) -> usize {
        let index = self.index.as_deref().unwrap_or("");
        cost::outside(size_of::<Registration>(), &[&self.event, &self.id, index])
    }
}

impl<S: Socket> Engine<S> {
    /// Carries out a Controller call; `conn` is the caller's WebSocket, or over HTTP the
    /// error that refuses what only a WebSocket can do (hear events).
    pub(super) fn controller(
        &mut self,
        conn: Result<ConnId, RpcError>,
        method: &Method,
    ) -> Result<Done, RpcError> {
        let messenger = self.callsign.as_str();
        match method {
            Method::Status { callsign } => {
                controller::status(messenger, callsign.as_deref(), self.compat).map(Done::Text)
            }
            Method::Activate { callsign } => {
                controller::activation(messenger, callsign, true).map(|()| Done::Json("null"))
            }
            Method::Deactivate { callsign } => {
                controller::activation(messenger, callsign, false).map(|()| Done::Json("null"))
            }
            Method::Register { event, id, index } => {
                let registration = Registration {
                    event: event.clone(),
                    id: id.clone(),
                    index: index.clone(),
                };
                self.register_controller(conn?, registration)
                    .map(|()| Done::Registered)
            }
            Method::Unregister { event, id, index } => {
                let conn = conn?;
                let held = self.watches.get_mut(&conn);
                let at = held.as_ref().and_then(|h| {
                    h.iter()
                        .position(|r| r.event == *event && r.id == *id && r.index == *index)
                });
                let (Some(held), Some(at)) = (held, at) else {
                    return Err(RpcError::UnregistrationFailed(format!(
                        "no {event:?} registration with id {id:?} on this connection"
                    )));
                };
                let gone = held.swap_remove(at);
                if held.is_empty() {
                    self.watches.remove(&conn);
                }
                self.rooms.release_registration(conn, gone.cost());
                Ok(Done::Registered)
            }
        }
    }

    /// Registers `conn` for a Controller event; a `statechange` registration first hears the
    /// state of every plugin (all `Activated`), Messenger first, as Thunder replays them.
    fn register_controller(
        &mut self,
        conn: ConnId,
        registration: Registration,
    ) -> Result<(), RpcError> {
        let held = self.watches.get(&conn).map_or(&[][..], Vec::as_slice);
        if held.contains(&registration) {
            return Err(RpcError::RegistrationFailed(format!(
                "{:?} is already registered with id {:?} on this connection",
                registration.event, registration.id
            )));
        }
        self.rooms.hold_registration(conn, registration.cost())?;
        if registration.event == controller::STATECHANGE {
            for (callsign, _) in controller::plugins(&self.callsign) {
                if self.relay && callsign == controller::CALLSIGN {
                    continue; // Thunder's Controller replays its own state
                }
                let method = match &registration.index {
                    None => format!("{}.{}", registration.id, controller::STATECHANGE),
                    Some(index) if index == callsign => {
                        format!("{}.{}@{index}", registration.id, controller::STATECHANGE)
                    }
                    Some(_) => continue,
                };
                let method = wire::json_string(&method);
                let params = controller::activated(callsign);
                self.out.send(conn, &wire::notification(&method, &params));
            }
        }
        self.watches.entry(conn).or_default().push(registration);
        Ok(())
    }
}
