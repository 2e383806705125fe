//! Byte caps on the strings a client sends (names, ids, messages, ACL patterns), checked at
//! the edge before anything is kept: each cap with the setting that holds it, so a refusal
//! names both (`"user" is 30000 bytes; limit 256 (max_user_bytes)`). Pure: no I/O.

use crate::config::Config;

/// One limit and the setting it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub limit: usize,
    pub setting: &'static str,
}

impl Cap {
    pub fn new(limit: usize, setting: &'static str) -> Cap {
        Cap { limit, setting }
    }

    /// Refuses a `field` of `text` longer than the cap in bytes; the refusal is the error's
    /// `data`.
    pub fn bytes(self, field: &str, text: &str) -> Result<(), String> {
        if text.len() <= self.limit {
            return Ok(());
        }
        Err(self.too_long(field, text.len()))
    }

    /// The refusal of `len` bytes. Out of line and cold: the parse path's stack frames, which
    /// stay resident on every connection thread, do not carry its formatting.
    #[cold]
    #[inline(never)]
    fn too_long(self, field: &str, len: usize) -> String {
        format!(
            "\"{field}\" is {len} bytes; limit {} ({})",
            self.limit, self.setting
        )
    }

    /// Refuses more than `limit` items in `field`.
    pub fn items(self, field: &str, count: usize) -> Result<(), String> {
        if count <= self.limit {
            return Ok(());
        }
        Err(format!(
            "\"{field}\" has {count} items; limit {} ({})",
            self.limit, self.setting
        ))
    }
}

/// Every cap the edge checks (see the settings in `Config` for defaults and reasons): the
/// limits alone, small enough to sit in every connection's state, with the setting names
/// added when a cap is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    user: usize,
    room: usize,
    id: usize,
    message: usize,
    acl_patterns: usize,
    acl_pattern: usize,
}

impl Caps {
    /// User names, and the names and patterns matched against them.
    pub fn user(self) -> Cap {
        Cap::new(self.user, "max_user_bytes")
    }

    pub fn room(self) -> Cap {
        Cap::new(self.room, "max_room_bytes")
    }

    /// Registration and listen ids, and room tokens.
    pub fn id(self) -> Cap {
        Cap::new(self.id, "max_id_bytes")
    }

    pub fn message(self) -> Cap {
        Cap::new(self.message, "max_message_bytes")
    }

    /// Patterns in one ACL (a count).
    pub fn acl_patterns(self) -> Cap {
        Cap::new(self.acl_patterns, "max_acl_patterns")
    }

    /// Bytes of one ACL pattern.
    pub fn acl_pattern(self) -> Cap {
        Cap::new(self.acl_pattern, "max_acl_pattern_bytes")
    }
}

impl From<&Config> for Caps {
    fn from(c: &Config) -> Caps {
        Caps {
            user: c.max_user_bytes,
            room: c.max_room_bytes,
            id: c.max_id_bytes,
            message: c.max_message_bytes,
            acl_patterns: c.max_acl_patterns,
            acl_pattern: c.max_acl_pattern_bytes,
        }
    }
}

impl Default for Caps {
    /// The caps of the default settings.
    fn default() -> Caps {
        Caps::from(&Config::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_size_the_limit_and_the_setting() {
        let caps = Caps::default();
        assert_eq!(caps.user().bytes("user", "Alice"), Ok(()));
        let at_cap = "u".repeat(caps.user().limit);
        assert_eq!(caps.user().bytes("user", &at_cap), Ok(()));
        let over = format!("{at_cap}ü");
        assert_eq!(
            caps.user().bytes("user", &over),
            Err(format!(
                "\"user\" is {} bytes; limit {} (max_user_bytes)",
                caps.user().limit + 2,
                caps.user().limit
            ))
        );
        let items = caps.acl_patterns().limit;
        assert_eq!(caps.acl_patterns().items("acl", items), Ok(()));
        let refused = caps.acl_patterns().items("acl", items + 1).unwrap_err();
        assert!(refused.ends_with("(max_acl_patterns)"), "{refused}");
    }
}
