//! The errors a client can get back from a JSON-RPC call: one enum, each variant saying when it
//! happens, with its code in both dialects and its message.

use crate::config::Compat;

/// A refused call. `detail` strings travel as the error's `data` so a developer sees why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcError {
    /// -32700: the text is not JSON at all. Sent with `id: null`.
    Parse(String),
    /// -32600: JSON, but not a JSON-RPC request object (a batch array, a string, a
    /// `method` that is not a string, an `id` that is neither number nor string).
    InvalidRequest(String),
    /// -32601: the designator names another callsign, another version, or no method.
    MethodNotFound(String),
    /// -32602: params of the wrong shape where the seed names no error code.
    InvalidParams(String),
    /// 30 `ERROR_BAD_REQUEST`: missing or empty user / room / roomid / message.
    BadRequest(String),
    /// 5 `ERROR_ILLEGAL_STATE`: the user is already in that room.
    IllegalState(String),
    /// 22 `ERROR_UNKNOWN_KEY`: no membership has that room token.
    UnknownKey,
    /// 24 `ERROR_PRIVILEGED_REQUEST`: the room's security refuses the join.
    Privileged(String),
    /// 2 `ERROR_UNAVAILABLE`: a configured limit (rooms, members, memberships,
    /// registrations, message rate) is reached.
    Unavailable(String),
}

impl RpcError {
    /// The code on the wire for the chosen dialect.
    pub fn code(&self, compat: Compat) -> i64 {
        let thunder = |code: i64| match compat {
            Compat::Rdk => code,
            Compat::R5 => -31000 - code,
        };
        match self {
            RpcError::Parse(_) => -32700,
            RpcError::InvalidRequest(_) => -32600,
            RpcError::MethodNotFound(_) => -32601,
            RpcError::InvalidParams(_) => -32602,
            RpcError::BadRequest(_) => thunder(30),
            RpcError::IllegalState(_) => thunder(5),
            RpcError::UnknownKey => thunder(22),
            RpcError::Privileged(_) => match compat {
                Compat::Rdk => 24,
                Compat::R5 => -32604,
            },
            RpcError::Unavailable(_) => thunder(2),
        }
    }

    /// The error's `message`: the seed's name for Thunder errors.
    pub fn message(&self) -> &'static str {
        match self {
            RpcError::Parse(_) => "Parse error.",
            RpcError::InvalidRequest(_) => "Invalid request.",
            RpcError::MethodNotFound(_) => "Unknown method.",
            RpcError::InvalidParams(_) => "Invalid parameters.",
            RpcError::BadRequest(_) => "ERROR_BAD_REQUEST",
            RpcError::IllegalState(_) => "ERROR_ILLEGAL_STATE",
            RpcError::UnknownKey => "ERROR_UNKNOWN_KEY",
            RpcError::Privileged(_) => "ERROR_PRIVILEGED_REQUEST",
            RpcError::Unavailable(_) => "ERROR_UNAVAILABLE",
        }
    }

    /// The detail sent as `data`, if any.
    pub fn detail(&self) -> Option<&str> {
        match self {
            RpcError::Parse(d)
            | RpcError::InvalidRequest(d)
            | RpcError::MethodNotFound(d)
            | RpcError::InvalidParams(d)
            | RpcError::BadRequest(d)
            | RpcError::IllegalState(d)
            | RpcError::Privileged(d)
            | RpcError::Unavailable(d) => Some(d),
            RpcError::UnknownKey => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r5_codes_are_offset() {
        assert_eq!(RpcError::UnknownKey.code(Compat::Rdk), 22);
        assert_eq!(RpcError::UnknownKey.code(Compat::R5), -31022);
        assert_eq!(RpcError::BadRequest(String::new()).code(Compat::R5), -31030);
        assert_eq!(
            RpcError::IllegalState(String::new()).code(Compat::R5),
            -31005
        );
        assert_eq!(RpcError::Privileged(String::new()).code(Compat::R5), -32604);
        assert_eq!(
            RpcError::MethodNotFound(String::new()).code(Compat::R5),
            -32601
        );
    }
}
