//! The errors a client can get back from a JSON-RPC call: one enum, each variant saying when it
//! happens, with its code in both dialects and its message.

use crate::config::Compat;

/// A refused call. `detail` strings travel as the error's `data` so a developer sees why (in
/// the `rdk` dialect; `r5` sends Thunder R5's error objects, which have no `data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcError {
    /// -32700: the text is not JSON at all. Sent with `id: null`.
    Parse(String),
    /// -32600: JSON, but not a JSON-RPC request object (a batch array, a string, a
    /// `method` that is not a string, an `id` that is neither number nor string).
    InvalidRequest(String),
    /// -32601: the designator names no method of its plugin (or, in `rdk`, another callsign
    /// or version: see `UnknownCallsign`, `UnsupportedVersion`).
    MethodNotFound(String),
    /// The designator names a callsign this server does not serve (`Nonexistent.1.join`):
    /// -32601 in `rdk`; in `r5` Thunder's -31043 "The service is not available.".
    UnknownCallsign(String),
    /// The designator names a version other than 1 (`Messenger.2.join`): -32601 in `rdk`; in
    /// `r5` Thunder's -31038 "Requested version is not supported.".
    UnsupportedVersion(String),
    /// -32602: params of the wrong shape where the seed names no error code.
    InvalidParams(String),
    /// 30 `ERROR_BAD_REQUEST`: missing or empty user / room / roomid / message.
    BadRequest(String),
    /// 5 `ERROR_ILLEGAL_STATE`: the user is already in that room.
    IllegalState(String),
    /// 22 `ERROR_UNKNOWN_KEY`: no membership has that room token (or the Controller knows no
    /// plugin of that callsign).
    UnknownKey,
    /// 24 `ERROR_PRIVILEGED_REQUEST`: the room's security refuses the join, or the Controller
    /// refuses to (de)activate a plugin that cannot be.
    Privileged(String),
    /// 2 `ERROR_UNAVAILABLE`: a configured limit (rooms, members, memberships,
    /// registrations, message rate) is reached.
    Unavailable(String),
    /// 48 `ERROR_FAILED_REGISTERED`: a Controller event is already registered under that id
    /// on this connection (Thunder's generic `register`).
    RegistrationFailed(String),
    /// 49 `ERROR_FAILED_UNREGISTERED`: a Controller `unregister` of what is not registered
    /// (Thunder R5 answers this one with -31048 too).
    UnregistrationFailed(String),
}

impl RpcError {
    /// The code on the wire for the chosen dialect.
    pub fn code(&self, compat: Compat) -> i64 {
        let r5 = compat == Compat::R5;
        let thunder = |code: i64| if r5 { -31000 - code } else { code };
        match self {
            RpcError::Parse(_) => -32700,
            RpcError::InvalidRequest(_) => -32600,
            RpcError::MethodNotFound(_) => -32601,
            RpcError::UnknownCallsign(_) if r5 => -31043,
            RpcError::UnsupportedVersion(_) if r5 => -31038,
            RpcError::UnknownCallsign(_) | RpcError::UnsupportedVersion(_) => -32601,
            RpcError::InvalidParams(_) => -32602,
            RpcError::BadRequest(_) => thunder(30),
            RpcError::IllegalState(_) => thunder(5),
            RpcError::UnknownKey => thunder(22),
            RpcError::Privileged(_) if r5 => -32604,
            RpcError::Privileged(_) => 24,
            RpcError::Unavailable(_) => thunder(2),
            RpcError::RegistrationFailed(_) => thunder(48),
            RpcError::UnregistrationFailed(_) if r5 => -31048,
            RpcError::UnregistrationFailed(_) => 49,
        }
    }

    /// The error's `message`: the seed's name for Thunder errors in `rdk`, and in `r5` the
    /// text Thunder R5 sends with that code (`Source/core/JSONRPC.h`, `SetError`).
    pub fn message(&self, compat: Compat) -> &'static str {
        if compat == Compat::R5 {
            if let Some(text) = self.r5_message() {
                return text;
            }
        }
        match self {
            RpcError::Parse(_) => "Parse error.",
            RpcError::InvalidRequest(_) => "Invalid request.",
            RpcError::MethodNotFound(_)
            | RpcError::UnknownCallsign(_)
            | RpcError::UnsupportedVersion(_) => "Unknown method.",
            RpcError::InvalidParams(_) => "Invalid parameters.",
            RpcError::BadRequest(_) => "ERROR_BAD_REQUEST",
            RpcError::IllegalState(_) => "ERROR_ILLEGAL_STATE",
            RpcError::UnknownKey => "ERROR_UNKNOWN_KEY",
            RpcError::Privileged(_) => "ERROR_PRIVILEGED_REQUEST",
            RpcError::Unavailable(_) => "ERROR_UNAVAILABLE",
            RpcError::RegistrationFailed(_) => "ERROR_FAILED_REGISTERED",
            RpcError::UnregistrationFailed(_) => "ERROR_FAILED_UNREGISTERED",
        }
    }

    /// Where Thunder R5 words a code differently from the `rdk` names.
    fn r5_message(&self) -> Option<&'static str> {
        Some(match self {
            RpcError::UnknownCallsign(_) => "The service is not available.",
            RpcError::UnsupportedVersion(_) => "Requested version is not supported.",
            RpcError::IllegalState(_) => "The service is in an illegal state.",
            RpcError::Privileged(_) => "Method invocation not allowed.",
            RpcError::Unavailable(_) => "The service is not active.",
            RpcError::RegistrationFailed(_) | RpcError::UnregistrationFailed(_) => {
                "Registration failed."
            }
            _ => return None,
        })
    }

    /// The detail sent as `data` in `compat`. `rdk` always sends it. `r5` answers as Thunder
    /// R5, whose errors carry no `data`, except for refusals by one of this server's own limits
    /// (Thunder has none of them, so no recording to match): error 2, and a string over a byte
    /// cap, whose detail names its setting (`"user" is 300 bytes; limit 256 (max_user_bytes)`).
    pub fn detail_in(&self, compat: Compat) -> Option<&str> {
        let detail = self.detail()?;
        let own_limit = matches!(self, RpcError::Unavailable(_)) || detail.contains("(max_");
        (compat == Compat::Rdk || own_limit).then_some(detail)
    }

    /// The detail, if any.
    pub fn detail(&self) -> Option<&str> {
        match self {
            RpcError::Parse(d)
            | RpcError::InvalidRequest(d)
            | RpcError::MethodNotFound(d)
            | RpcError::UnknownCallsign(d)
            | RpcError::UnsupportedVersion(d)
            | RpcError::InvalidParams(d)
            | RpcError::BadRequest(d)
            | RpcError::IllegalState(d)
            | RpcError::Privileged(d)
            | RpcError::Unavailable(d)
            | RpcError::RegistrationFailed(d)
            | RpcError::UnregistrationFailed(d) => Some(d),
            RpcError::UnknownKey => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r5_sends_data_only_for_its_own_limits() {
        let cap = RpcError::BadRequest("\"user\" is 300 bytes; limit 256 (max_user_bytes)".into());
        let empty = RpcError::BadRequest("user is empty".into());
        let full = RpcError::Unavailable("too many rooms (limit 3)".into());
        assert!(cap.detail_in(Compat::R5).is_some());
        assert!(full.detail_in(Compat::R5).is_some());
        assert_eq!(empty.detail_in(Compat::R5), None);
        assert_eq!(empty.detail_in(Compat::Rdk), Some("user is empty"));
    }

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

    /// Thunder R5's codes and texts where they differ from the `rdk` names: the recordings in
    /// `shared/reference/` show -31043, -31038, -31005 and -31048; -32604 and -31002 are from
    /// Thunder's source.
    #[test]
    fn r5_words_errors_as_thunder_does() {
        let none = String::new;
        let cases = [
            (
                RpcError::UnknownCallsign(none()),
                -31043,
                "The service is not available.",
            ),
            (
                RpcError::UnsupportedVersion(none()),
                -31038,
                "Requested version is not supported.",
            ),
            (
                RpcError::IllegalState(none()),
                -31005,
                "The service is in an illegal state.",
            ),
            (
                RpcError::Privileged(none()),
                -32604,
                "Method invocation not allowed.",
            ),
            (
                RpcError::Unavailable(none()),
                -31002,
                "The service is not active.",
            ),
            (
                RpcError::RegistrationFailed(none()),
                -31048,
                "Registration failed.",
            ),
            (
                RpcError::UnregistrationFailed(none()),
                -31048,
                "Registration failed.",
            ),
            (RpcError::UnknownKey, -31022, "ERROR_UNKNOWN_KEY"),
            (RpcError::BadRequest(none()), -31030, "ERROR_BAD_REQUEST"),
            (RpcError::MethodNotFound(none()), -32601, "Unknown method."),
        ];
        for (e, code, message) in cases {
            assert_eq!((e.code(Compat::R5), e.message(Compat::R5)), (code, message));
        }
        assert_eq!(RpcError::UnknownCallsign(none()).code(Compat::Rdk), -32601);
        assert_eq!(
            RpcError::UnsupportedVersion(none()).code(Compat::Rdk),
            -32601
        );
        assert_eq!(RpcError::RegistrationFailed(none()).code(Compat::Rdk), 48);
        assert_eq!(RpcError::UnregistrationFailed(none()).code(Compat::Rdk), 49);
        assert_eq!(
            RpcError::IllegalState(none()).message(Compat::Rdk),
            "ERROR_ILLEGAL_STATE"
        );
    }
}
