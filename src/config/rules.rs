//! The rules that settings must satisfy together, checked once before the server starts
//! (`Config::validate`): text that must make sense, sizes that must fit each other, and lists
//! of origin patterns that must parse. Every message names the setting, its value and what is
//! allowed.

use super::{named, Config, ConfigError};
use crate::acl::Pattern;

impl Config {
    /// Rules for the text settings.
    pub(super) fn check_words(&self) -> Result<(), ConfigError> {
        let invalid = |text: String| Err(ConfigError::Invalid(text));
        if !self.listen.ip().is_loopback() && !self.allow_remote {
            return invalid(format!(
                "{} {} is not a loopback address; set allow_remote (--allow-remote on) to serve other hosts",
                named("listen"),
                self.listen
            ));
        }
        if self.callsign == crate::controller::CALLSIGN {
            return invalid(format!(
                "{} {:?}: must not be Controller, Thunder's Controller (which this server answers too)",
                named("callsign"),
                self.callsign
            ));
        }
        if let Some(bad) = self.allowed_hosts.iter().find(|h| !valid_host_name(h)) {
            return invalid(format!(
                "{} entry {bad:?}: allowed a host name or IP address (no port, scheme or path)",
                named("allowed_hosts")
            ));
        }
        if self.callsign.is_empty() || self.callsign.contains('.') {
            return invalid(format!(
                "{} {:?}: must not be empty and must contain no '.'",
                named("callsign"),
                self.callsign
            ));
        }
        if self.server_name.is_empty() {
            return invalid(format!(
                "{} is empty: give the sender a name",
                named("server_name")
            ));
        }
        if !self.admin_token.is_empty() && self.admin_token.len() < 16 {
            return invalid(format!(
                "{} has {} characters: allowed 16 or more, or empty (no trusted caller)",
                named("admin_token"),
                self.admin_token.len()
            ));
        }
        Ok(())
    }

    /// `upstream` is empty or an IP address and port (host names are not looked up), and not
    /// the address this server listens on (it would relay to itself).
    pub(super) fn check_upstream(&self) -> Result<(), ConfigError> {
        if self.upstream.is_empty() {
            return Ok(());
        }
        match self.upstream_addr() {
            Some(addr) if addr == self.listen => Err(ConfigError::Invalid(format!(
                "{} {}: is the listen address; give Thunder's moved address (such as 127.0.0.1:9997)",
                named("upstream"),
                self.upstream
            ))),
            Some(_) => Ok(()),
            None => Err(ConfigError::Invalid(format!(
                "{} {:?}: allowed empty (no relay) or an IP address and port, such as 127.0.0.1:9997",
                named("upstream"),
                self.upstream
            ))),
        }
    }

    /// The relay's upstream address; `None` when relay mode is off.
    pub fn upstream_addr(&self) -> Option<std::net::SocketAddr> {
        self.upstream.parse().ok()
    }

    /// Sizes that cannot work together.
    pub(super) fn check_sizes(&self) -> Result<(), ConfigError> {
        let least = self.max_message_size.saturating_mul(2);
        if self.max_outbound_bytes < least {
            return Err(ConfigError::Invalid(format!(
                "{} {}: allowed at least twice max_message_size ({} bytes), or one event with the largest message would cut its reader off",
                named("max_outbound_bytes"),
                self.max_outbound_bytes,
                least
            )));
        }
        let least = self.max_outbound_bytes.saturating_mul(4);
        if self.max_memory_bytes < least {
            return Err(ConfigError::Invalid(format!(
                "{} {}: allowed at least four times max_outbound_bytes ({} bytes): one client's queue may reach twice that limit, and queues must fit in half the budget",
                named("max_memory_bytes"),
                self.max_memory_bytes,
                least
            )));
        }
        Ok(())
    }
    /// With history on, its budget must be above 0 and small enough that replaying all of it
    /// (framing included: up to about four times the counted bytes for short messages) never
    /// cuts off the client it is replayed to.
    pub(super) fn validate_history(&self) -> Result<(), ConfigError> {
        if self.history == 0 {
            return Ok(());
        }
        if self.history_bytes == 0 || self.history_bytes > self.max_outbound_bytes / 4 {
            return Err(ConfigError::Invalid(format!(
                "{} {}: allowed 1 to a quarter of max_outbound_bytes ({} bytes) when history is on",
                named("history_bytes"),
                self.history_bytes,
                self.max_outbound_bytes / 4
            )));
        }
        Ok(())
    }

    /// The origin lists hold ACL patterns (`https://*.example.com`, `http://localhost:*`).
    pub(super) fn check_origin_lists(&self) -> Result<(), ConfigError> {
        for (key, list) in [
            ("allowed_origins", &self.allowed_origins),
            ("cors_origins", &self.cors_origins),
        ] {
            for entry in list {
                if let Err(e) = Pattern::parse(entry) {
                    return Err(ConfigError::Invalid(format!("{}: {e}", named(key))));
                }
            }
        }
        Ok(())
    }
}

/// Whether an `allowed_hosts` entry is a bare host name or IP address: letters, digits, `.`,
/// `-`, `_`, or an IPv6 address with or without its brackets.
fn valid_host_name(name: &str) -> bool {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    !bare.is_empty()
        && bare
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".-_:".contains(&c))
        && (bare.contains(':') == bare.parse::<std::net::Ipv6Addr>().is_ok())
}
