//! The model's Controller calls: what a client asks Thunder's Controller (`status`,
//! `register`, `activate`, ...), how a case chooses one, and its request text.

use serde_json::{json, Value};

use super::actions::{chance, one, request, word, Action, ConnId, Id};
use super::reference::Model;
use super::Dice;

/// A call to the Controller (`controller.rs`); `at` is an `@<callsign>` index.
#[derive(Debug, Clone)]
pub enum CCall {
    Status {
        at: Option<&'static str>,
    },
    Register {
        event: &'static str,
        id: &'static str,
        at: Option<&'static str>,
    },
    Unregister {
        event: &'static str,
        id: &'static str,
        at: Option<&'static str>,
    },
    /// `indexed`: the callsign as `activate@<callsign>` instead of in the params.
    Activate {
        callsign: &'static str,
        indexed: bool,
    },
    Deactivate {
        callsign: &'static str,
    },
    /// A Controller method this server does not have.
    Other,
}

/// Callsigns a Controller call names: this server's two and one it does not have.
pub const CALLSIGNS: &[&str] = &["Messenger", "Controller", "DeviceInfo"];

/// Registration ids: SmartLinkType's, a short one, and one over the small caps' id cap.
pub const IDS: &[&str] = &[
    "temporary2",
    "temporary2",
    "c",
    "an-id-over-the-small-caps-id-cap",
];

/// A Controller call from one of the `messenger` connections not directed to Messenger (on
/// `/jsonrpc`), or sometimes over HTTP.
pub fn controller_action(
    dice: &mut dyn Dice,
    model: &Model,
    messenger: &[ConnId],
    id: Id,
) -> Action {
    let on_jsonrpc: Vec<ConnId> = messenger
        .iter()
        .copied()
        .filter(|c| !model.is_implicit(*c))
        .collect();
    Action::Controller {
        conn: (!on_jsonrpc.is_empty() && !chance(dice, 20)).then(|| *one(dice, &on_jsonrpc)),
        id,
        call: controller_call(dice),
        prefix: word(dice, &["", "Controller.", "Controller.1."]),
    }
}

/// A Controller call.
pub fn controller_call(dice: &mut dyn Dice) -> CCall {
    let at = |dice: &mut dyn Dice| match dice.below(6) {
        0 => Some(word(dice, CALLSIGNS)),
        _ => None,
    };
    let event = |dice: &mut dyn Dice| word(dice, &["statechange", "statechange", "other"]);
    match dice.below(10) {
        0..=1 => CCall::Status { at: at(dice) },
        2..=4 => CCall::Register {
            event: event(dice),
            id: word(dice, IDS),
            at: at(dice),
        },
        5..=6 => CCall::Unregister {
            event: event(dice),
            id: word(dice, IDS),
            at: at(dice),
        },
        7 => CCall::Activate {
            callsign: word(dice, CALLSIGNS),
            indexed: chance(dice, 30),
        },
        8 => CCall::Deactivate {
            callsign: word(dice, CALLSIGNS),
        },
        _ => CCall::Other,
    }
}

impl CCall {
    /// The request text, with the method designator `prefix` + name.
    pub fn text(&self, id: &Id, prefix: &str) -> String {
        let indexed = |name: &str, at: &Option<&str>| match at {
            Some(at) => format!("{name}@{at}"),
            None => name.to_owned(),
        };
        let (name, params) = match self {
            CCall::Status { at } => (indexed("status", at), json!({})),
            CCall::Register { event, id, at } => {
                (indexed("register", at), json!({"event": event, "id": id}))
            }
            CCall::Unregister { event, id, at } => {
                (indexed("unregister", at), json!({"event": event, "id": id}))
            }
            CCall::Activate {
                callsign,
                indexed: true,
            } => (format!("activate@{callsign}"), json!({})),
            CCall::Activate { callsign, .. } => ("activate".into(), json!({"callsign": callsign})),
            CCall::Deactivate { callsign } => ("deactivate".into(), json!({"callsign": callsign})),
            CCall::Other => ("harakiri".into(), json!({})),
        };
        let Value::Object(params) = params else {
            unreachable!("params are objects")
        };
        request(id, &format!("{prefix}{name}"), params)
    }
}
