//! The model's Controller: every plugin (Messenger, the Controller) is `Activated` and stays
//! so; `status` lists them, `activate` of Messenger succeeds and nothing else (de)activates;
//! event registrations are the connection's, count against its limit, and a `statechange`
//! registration first hears every plugin's state; an id over the id cap is refused at the
//! edge (-32602). Written from `controller.rs`'s contract.

use serde_json::{json, Value};

use super::super::actions::{ConnId, Id};
use super::super::controller::CCall;
use super::{error, notification, result, Model, Owner, Want, E};

/// The plugins, in the order a `statechange` registration hears them.
const PLUGINS: [(&str, &str); 2] = [("Messenger", "Messenger"), ("Controller", "Controller")];

fn status_object(callsign: &str, classname: &str) -> Value {
    json!({
        "callsign": callsign, "locator": "messenger", "classname": classname,
        "module": "messenger", "state": "Activated", "startmode": "Activated", "resumed": false,
        "version": {"hash": messenger::controller::BUILD, "major": 1, "minor": 0, "patch": 0},
        "configuration": {}, "observers": 0, "processedrequests": 0, "processedobjects": 0,
    })
}

impl Model {
    /// A Controller call from a WebSocket (its reply queued) or over HTTP (the answer).
    pub(super) fn controller_action(
        &mut self,
        conn: Option<ConnId>,
        call: &CCall,
        id: &Id,
    ) -> Option<Option<Value>> {
        let owner = conn.map_or(Owner::Http, Owner::Ws);
        let reply = self.controller_call(owner, call).map(|outcome| {
            let id = id.json()?;
            Some(match outcome {
                Ok(value) => result(id, value),
                Err(code) => error(id, code),
            })
        });
        let reply = reply.unwrap_or_else(|| id.json().map(|id| error(id, -32601)));
        match (conn, reply) {
            (Some(conn), Some(reply)) => {
                self.send(conn, reply);
                None
            }
            (Some(_), None) => None,
            (None, reply) => Some(reply.map(|w| match w {
                Want::Json(v) => v,
                other => panic!("model bug: HTTP answer {other:?}"),
            })),
        }
    }

    /// The outcome of a Controller call: its result, or an error code in the dialect;
    /// `None` for a method the Controller does not have.
    fn controller_call(&mut self, owner: Owner, call: &CCall) -> Option<Result<Value, i64>> {
        let r5 = self.s.r5;
        if let CCall::Register { id, .. } | CCall::Unregister { id, .. } = call {
            // The edge holds the id (and event, index, callsign: all short here) to the id cap.
            if id.len() > self.s.caps.id {
                self.tally.capped += 1;
                return Some(Err(E::InvalidParams.code(r5)));
            }
        }
        let registered = if r5 { Value::Null } else { json!(0) };
        let refused = if r5 { -32604 } else { 24 };
        let unknown = E::UnknownKey.code(r5);
        Some(match call {
            CCall::Status { at: None } => Ok(json!([
                status_object("Controller", "Controller"),
                status_object("Messenger", "Messenger")
            ])),
            CCall::Status { at: Some(at) } => match PLUGINS.iter().find(|p| p.0 == *at) {
                Some((callsign, class)) if r5 => Ok(status_object(callsign, class)),
                Some((callsign, class)) => Ok(json!([status_object(callsign, class)])),
                None => Err(unknown),
            },
            CCall::Activate { callsign, .. } => match *callsign {
                "Messenger" => Ok(Value::Null),
                "Controller" => Err(refused),
                _ => Err(unknown),
            },
            CCall::Deactivate { callsign } => match *callsign {
                "Messenger" | "Controller" => Err(refused),
                _ => Err(unknown),
            },
            CCall::Register { event, id, at } => {
                let Owner::Ws(conn) = owner else {
                    return Some(Err(E::InvalidRequest.code(r5)));
                };
                self.controller_register(conn, (event, id, *at))
                    .map(|()| registered)
            }
            CCall::Unregister { event, id, at } => {
                let Owner::Ws(conn) = owner else {
                    return Some(Err(E::InvalidRequest.code(r5)));
                };
                let held = &mut self.conns.get_mut(&conn).expect("open").controller;
                match held.iter().position(|r| *r == (*event, *id, *at)) {
                    Some(i) => {
                        held.remove(i);
                        Ok(registered)
                    }
                    None => Err(if r5 { -31048 } else { 49 }),
                }
            }
            CCall::Other => return None,
        })
    }

    /// A Controller registration: a duplicate is refused, then the limit; `statechange`
    /// replays the plugins' states (only the indexed one's, under `<id>.statechange@<it>`).
    fn controller_register(
        &mut self,
        conn: ConnId,
        registration: (&'static str, &'static str, Option<&'static str>),
    ) -> Result<(), i64> {
        let r5 = self.s.r5;
        if self.conns[&conn].controller.contains(&registration) {
            return Err(if r5 { -31048 } else { 48 });
        }
        if self.registrations(conn) >= self.s.max_registrations {
            return Err(E::Unavailable.code(r5));
        }
        if self.memory_left().is_err() {
            return Err(E::Unavailable.code(r5));
        }
        let (event, id, at) = registration;
        if event == "statechange" {
            for (callsign, _) in PLUGINS {
                let method = match at {
                    None => format!("{id}.statechange"),
                    Some(at) if at == callsign => format!("{id}.statechange@{at}"),
                    Some(_) => continue,
                };
                let params =
                    json!({"callsign": callsign, "state": "Activated", "reason": "Startup"});
                self.send(conn, notification(method, params));
            }
        }
        let c = self.conns.get_mut(&conn).expect("open");
        c.controller.push(registration);
        Ok(())
    }
}
