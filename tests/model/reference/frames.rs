//! The frames the model writes: JSON-RPC results and errors (with each code's message, in
//! both dialects), notifications, and the placeholders for values only the engine knows.

use serde_json::{json, Value};

use super::super::actions::{Id, BAD_REQUEST};

/// The Messenger errors: (rdk code, r5 code, message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E {
    InvalidRequest,
    InvalidParams,
    BadRequest,
    IllegalState,
    UnknownKey,
    Privileged,
    Unavailable,
}

impl E {
    pub fn code(self, r5: bool) -> i64 {
        let thunder = |c: i64| if r5 { -31000 - c } else { c };
        match self {
            E::InvalidRequest => -32600,
            E::InvalidParams => -32602,
            E::BadRequest => thunder(BAD_REQUEST),
            E::IllegalState => thunder(5),
            E::UnknownKey => thunder(22),
            E::Privileged if r5 => -32604,
            E::Privileged => 24,
            E::Unavailable => thunder(2),
        }
    }
}

/// The message of each JSON-RPC error code, in both dialects (`r5`: Thunder R5's texts).
pub fn error_message(code: i64) -> &'static str {
    match code {
        -32700 => "Parse error.",
        -32600 => "Invalid request.",
        -32601 => "Unknown method.",
        -32602 => "Invalid parameters.",
        30 | -31030 => "ERROR_BAD_REQUEST",
        5 => "ERROR_ILLEGAL_STATE",
        -31005 => "The service is in an illegal state.",
        22 | -31022 => "ERROR_UNKNOWN_KEY",
        24 => "ERROR_PRIVILEGED_REQUEST",
        -32604 => "Method invocation not allowed.",
        2 => "ERROR_UNAVAILABLE",
        -31002 => "The service is not active.",
        -31043 => "The service is not available.",
        -31038 => "Requested version is not supported.",
        48 => "ERROR_FAILED_REGISTERED",
        49 => "ERROR_FAILED_UNREGISTERED",
        -31048 => "Registration failed.",
        _ => "?",
    }
}

/// What a client must receive: a JSON frame, a close frame with its code, or a pong.
#[derive(Debug, Clone, PartialEq)]
pub enum Want {
    Json(Value),
    Close(u16),
    Pong,
}

/// A string standing for a value the model cannot know in advance (a room token, a Kurento
/// session id), bound the first time the engine shows it.
pub fn placeholder(kind: &str, key: u64) -> Value {
    json!(format!("\u{1}{kind}:{key}"))
}

pub fn notification(method: String, params: Value) -> Want {
    Want::Json(json!({"jsonrpc": "2.0", "method": method, "params": params}))
}

pub fn result(id: Value, result: Value) -> Want {
    Want::Json(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

/// An error response (the `data` detail is not part of the model).
pub fn error(id: Value, code: i64) -> Want {
    error_with(id, code, error_message(code))
}

pub fn error_with(id: Value, code: i64, message: &str) -> Want {
    Want::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))
}

/// The reply to a call with `id` (none for a notification).
pub fn reply(id: &Id, outcome: Result<Value, E>, r5: bool) -> Option<Want> {
    let id = id.json()?;
    Some(match outcome {
        Ok(value) => result(id, value),
        Err(e) => error(id, e.code(r5)),
    })
}
