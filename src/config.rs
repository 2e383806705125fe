//! Settings: one struct with the built-in defaults, read from an optional JSON file and then from
//! command-line flags. Every limit of the server lives here, each saying its default and why.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How results and error codes are shaped on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compat {
    /// The rdkservices Messenger API (seed 000): `{"roomid": ...}`, register returns `0`,
    /// error codes 5 / 22 / 24 / 30.
    Rdk,
    /// Thunder R5 on the wire (seed 001): bare-string join result, register returns `null`,
    /// error codes -31000 minus the code above, security refusals -32604.
    R5,
}

/// Every setting of the server. `Config::default()` is what `make run` uses.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:9998`, the Thunder development port.
    pub listen: SocketAddr,
    /// Listening on a non-loopback address must be asked for explicitly (the box's apps are
    /// local; a LAN-facing chat server is a decision, not an accident). Default false.
    pub allow_remote: bool,
    /// Host names (or IP addresses) besides loopback that requests may name in their `Host`
    /// header (the box's name or LAN address when `allow_remote` is on). Every request whose
    /// `Host` names something else is refused with 421: that is what stops a web page from
    /// reaching the server through DNS rebinding. Default empty: only `127.0.0.1`,
    /// `localhost`, `[::1]` (and the `listen` address when it is not loopback) are this server.
    pub allowed_hosts: Vec<String>,
    /// Refuse WebSocket frames a client did not mask (close 1002), as RFC 6455 asks, from
    /// loopback peers too. Default false: Thunder's C++ client (`JSONRPC::LinkType`) never
    /// masks, Thunder accepts that, and on loopback masking protects nothing (it guards
    /// proxies between a browser and a server). Peers that are not on loopback must always
    /// mask, whatever this says.
    pub require_masking: bool,
    /// The plugin's callsign in method designators (`<callsign>.1.join`). Default `Messenger`.
    pub callsign: String,
    /// Result and error-code dialect. Default `rdk`.
    pub compat: Compat,
    /// Serve the chat page on `GET /`. Default true for `make run`; `board/` turns it off.
    pub page: bool,
    /// Log level: error, warn, info, debug, trace. Default `warn` (quiet on the box).
    pub log_level: String,

    /// Most WebSocket and HTTP connections at once; beyond it the upgrade gets 503.
    /// Default 1,000 (SPEC §4a: at least 1,000 honest connections).
    pub max_connections: usize,
    /// Largest incoming WebSocket message (after reassembly) and frame, in bytes. Beyond it the
    /// connection is closed with 1009. Default 64 KiB of message text plus room for the
    /// JSON-RPC envelope around it.
    pub max_message_size: usize,
    /// Most rooms at once. Default 1,000.
    pub max_rooms: usize,
    /// Most members in one room. Default 1,000 (SPEC §4a).
    pub max_members_per_room: usize,
    /// Most memberships (joins) held by one connection. Default 1,000 (SPEC §4a).
    pub max_memberships_per_connection: usize,
    /// Most registrations (register calls) held by one connection. Default 4,000: four events
    /// for each of 1,000 memberships.
    pub max_registrations_per_connection: usize,
    /// Largest HTTP request head (request line and headers), in bytes. Default 8 KiB.
    pub max_request_head: usize,
    /// Largest HTTP request body (`POST /jsonrpc`). Default the message size.
    pub max_request_body: usize,
    /// Time a client has to send its request head (and body) before it is dropped. Default 5 s.
    #[serde(with = "secs")]
    pub handshake_timeout: Duration,
    /// A WebSocket that sends nothing for this long is pinged; if it still says nothing for as
    /// long again it is dropped as dead. Default 60 s.
    #[serde(with = "secs")]
    pub idle_timeout: Duration,
    /// Bytes waiting to be written to one client before it counts as too slow and is cut off
    /// (close 1008). Default 4 MiB: a burst of 10,000 typical messages fits, a client that
    /// stops reading is dropped long before it costs the box real memory.
    pub max_outbound_bytes: usize,
    /// A membership joined over HTTP that goes unused this long counts as left. Default 600 s.
    #[serde(with = "secs")]
    pub http_membership_ttl: Duration,
    /// Stack of each connection thread, in bytes. Only the touched part is resident (about
    /// 16 KiB); this bounds virtual size. Default 64 KiB.
    pub thread_stack_size: usize,
    /// tungstenite's read buffer per connection, in bytes: it is zero-filled on first read, so
    /// it is resident on every connection. Default 2 KiB: a request is a few hundred bytes, a
    /// larger message is read in several calls, and an idle connection costs about 15 KiB
    /// (4 KiB: 17 KiB, measured with 1,000 idle connections).
    pub read_buffer_size: usize,

    /// Requests one WebSocket connection may make per second, on average (a token bucket read
    /// before the dispatcher; a request over it gets error 2 and the connection stays open).
    /// Fractions allowed. Default 2,000 a second.
    pub max_messages_per_second: f64,
    /// Requests one connection may make at once on top of the rate. Default 10,000: SPEC §4a's
    /// burst of 10,000 messages from one sender goes through in full.
    pub message_burst: u32,
    /// The file holding the key that signs access tokens (made on first start, mode 0600).
    /// Default empty: `$STATE_DIRECTORY/key` under systemd's `StateDirectory=`, else
    /// `/var/lib/messenger/key` when running as root, else `$XDG_STATE_HOME/messenger/key` or
    /// `$HOME/.local/state/messenger/key`.
    pub key_file: String,
    /// Refuse WebSocket upgrades and `POST /jsonrpc` without a valid access token (HTTP 401).
    /// Default false: local apps connect as they do to Thunder.
    pub require_token: bool,

    /// A room every new Messenger WebSocket connection joins as `guest-<n>` (actionhero's
    /// default room; `whoami` tells the client its token). Default empty: no default room.
    pub default_room: String,
    /// The sender's name on messages from the server itself (`announce`). Default `server`.
    pub server_name: String,
    /// The secret a trusted local caller presents (header `X-Messenger-Admin` or query
    /// `?admin=`, from a loopback address) to use `announce` and `evict`. Default empty:
    /// nobody may. At least 16 characters when set.
    pub admin_token: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 9998)),
            allow_remote: false,
            allowed_hosts: Vec::new(),
            require_masking: false,
            callsign: "Messenger".into(),
            compat: Compat::Rdk,
            page: true,
            log_level: "warn".into(),
            max_connections: 1000,
            max_message_size: 64 * 1024 + 1024,
            max_rooms: 1000,
            max_members_per_room: 1000,
            max_memberships_per_connection: 1000,
            max_registrations_per_connection: 4000,
            max_request_head: 8 * 1024,
            max_request_body: 64 * 1024 + 1024,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_outbound_bytes: 4 << 20,
            http_membership_ttl: Duration::from_secs(600),
            thread_stack_size: 64 * 1024,
            read_buffer_size: 2 * 1024,
            max_messages_per_second: 2000.0,
            message_burst: 10_000,
            key_file: String::new(),
            require_token: false,
            default_room: String::new(),
            server_name: "server".into(),
            admin_token: String::new(),
        }
    }
}

/// Why the settings could not be read. The binary prints it on one line and exits with 2.
#[derive(Debug)]
pub enum ConfigError {
    /// A flag that is not known.
    UnknownFlag(String),
    /// A flag given without its value.
    MissingValue(String),
    /// A flag or key with a value that does not parse.
    BadValue {
        name: String,
        value: String,
        why: String,
    },
    /// The configuration file could not be read.
    File { path: PathBuf, why: String },
    /// The settings parse but do not make sense together.
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownFlag(flag) => write!(f, "unknown flag {flag} (see --help)"),
            ConfigError::MissingValue(flag) => write!(f, "flag {flag} needs a value"),
            ConfigError::BadValue { name, value, why } => {
                write!(f, "bad value {value:?} for {name}: {why}")
            }
            ConfigError::File { path, why } => {
                write!(f, "configuration file {}: {why}", path.display())
            }
            ConfigError::Invalid(why) => write!(f, "invalid configuration: {why}"),
        }
    }
}

impl Config {
    /// The key file to use: `key_file`, or the default place for this user.
    pub fn key_path(&self) -> PathBuf {
        if self.key_file.is_empty() {
            crate::access_token::default_key_path()
        } else {
            PathBuf::from(&self.key_file)
        }
    }

    /// Reads a JSON configuration file over the defaults. Unknown keys are errors, so a typo
    /// never silently leaves a limit at its default.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            why: e.to_string(),
        })
    }

    /// Sets one named setting from text, as a flag gives it (`--max-rooms 50` sets
    /// `max_rooms`). Uses the same parser as the file, so both accept the same values.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let key = name.trim_start_matches("--").replace('-', "_");
        let mut as_json = serde_json::to_value(&*self).expect("settings serialize");
        let slot = as_json
            .get_mut(&key)
            .ok_or_else(|| ConfigError::UnknownFlag(name.to_owned()))?;
        *slot = match slot {
            serde_json::Value::String(_) => serde_json::Value::String(value.to_owned()),
            // A list: a JSON array, or names separated by commas (`--allowed-hosts a,b`).
            serde_json::Value::Array(_) => serde_json::from_str(value).unwrap_or_else(|_| {
                let items = value.split(',').map(str::trim).filter(|v| !v.is_empty());
                items
                    .map(|v| serde_json::Value::String(v.to_owned()))
                    .collect()
            }),
            _ => match value {
                "on" | "yes" => serde_json::Value::Bool(true),
                "off" | "no" => serde_json::Value::Bool(false),
                _ => serde_json::from_str(value)
                    .unwrap_or_else(|_| serde_json::Value::String(value.to_owned())),
            },
        };
        *self = serde_json::from_value(as_json).map_err(|e| ConfigError::BadValue {
            name: name.to_owned(),
            value: value.to_owned(),
            why: e.to_string(),
        })?;
        Ok(())
    }

    /// Checks the settings together; called once before the server starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.listen.ip().is_loopback() && !self.allow_remote {
            return Err(ConfigError::Invalid(format!(
                "listen address {} is not loopback; set allow_remote (--allow-remote on) to serve other hosts",
                self.listen
            )));
        }
        if self.callsign.is_empty() || self.callsign.contains('.') {
            return Err(ConfigError::Invalid(
                "callsign must be non-empty and contain no '.'".into(),
            ));
        }
        if self.callsign == crate::controller::CALLSIGN {
            return Err(ConfigError::Invalid(
                "callsign must not be Controller: that name is Thunder's Controller, which this server answers too".into(),
            ));
        }
        if let Some(bad) = self.allowed_hosts.iter().find(|h| !valid_host_name(h)) {
            return Err(ConfigError::Invalid(format!(
                "allowed_hosts entry {bad:?} is not a host name or IP address (no port, scheme or path)"
            )));
        }
        if self.log_level.parse::<log::LevelFilter>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "log_level {:?} is not one of off, error, warn, info, debug, trace",
                self.log_level
            )));
        }
        let positive = [
            ("max_connections", self.max_connections),
            ("max_message_size", self.max_message_size),
            ("max_rooms", self.max_rooms),
            ("max_members_per_room", self.max_members_per_room),
            (
                "max_memberships_per_connection",
                self.max_memberships_per_connection,
            ),
            ("max_request_head", self.max_request_head),
            ("max_outbound_bytes", self.max_outbound_bytes),
            ("read_buffer_size", self.read_buffer_size),
            ("message_burst", self.message_burst as usize),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Invalid(format!("{name} must be above 0")));
        }
        if !(self.max_messages_per_second > 0.0 && self.max_messages_per_second.is_finite()) {
            return Err(ConfigError::Invalid(
                "max_messages_per_second must be above 0".into(),
            ));
        }
        if self.server_name.is_empty() {
            return Err(ConfigError::Invalid("server_name must be non-empty".into()));
        }
        if !self.admin_token.is_empty() && self.admin_token.len() < 16 {
            return Err(ConfigError::Invalid(
                "admin_token must be at least 16 characters (or empty: no trusted caller)".into(),
            ));
        }
        if self.thread_stack_size < 32 * 1024 {
            return Err(ConfigError::Invalid(
                "thread_stack_size must be at least 32768".into(),
            ));
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

/// Durations are written in seconds (fractions allowed) in the file and on the command line.
mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = f64::deserialize(d)?;
        Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_use_the_file_parser() {
        let mut c = Config::default();
        c.set("--max-rooms", "7").unwrap();
        c.set("--listen", "127.0.0.1:0").unwrap();
        c.set("--page", "off").unwrap();
        c.set("--idle-timeout", "1.5").unwrap();
        c.set("--compat", "r5").unwrap();
        assert_eq!(c.max_rooms, 7);
        assert_eq!(c.listen.port(), 0);
        assert!(!c.page);
        assert_eq!(c.idle_timeout, Duration::from_millis(1500));
        assert_eq!(c.compat, Compat::R5);
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        let mut c = Config::default();
        assert!(matches!(
            c.set("--max-rooms", "many"),
            Err(ConfigError::BadValue { .. })
        ));
        assert!(matches!(
            c.set("--listen", "nowhere"),
            Err(ConfigError::BadValue { .. })
        ));
        assert!(matches!(
            c.set("--compat", "r9"),
            Err(ConfigError::BadValue { .. })
        ));
        assert!(matches!(
            c.set("--no-such", "1"),
            Err(ConfigError::UnknownFlag(_))
        ));
        assert!(matches!(
            c.set("--idle-timeout", "-1"),
            Err(ConfigError::BadValue { .. })
        ));
    }

    #[test]
    fn remote_listen_needs_explicit_setting() {
        let mut c = Config::default();
        c.set("--listen", "0.0.0.0:9998").unwrap();
        assert!(c.validate().is_err());
        c.set("--allow-remote", "on").unwrap();
        assert!(c.validate().is_ok());
    }

    #[test]
    fn admin_token_is_long_or_absent() {
        let mut c = Config::default();
        assert!(c.validate().is_ok());
        c.set("--admin-token", "short").unwrap();
        assert!(c.validate().is_err());
        c.set("--admin-token", "0123456789abcdef").unwrap();
        assert!(c.validate().is_ok());
        c.set("--server-name", "").unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn allowed_hosts_is_a_list_of_names() {
        let mut c = Config::default();
        c.set("--allowed-hosts", "stb.local, 192.168.1.20").unwrap();
        assert_eq!(c.allowed_hosts, ["stb.local", "192.168.1.20"]);
        assert!(c.validate().is_ok());
        c.set("--allowed-hosts", r#"["[fe80::1]","box"]"#).unwrap();
        assert_eq!(c.allowed_hosts, ["[fe80::1]", "box"]);
        assert!(c.validate().is_ok());
        for bad in ["box:9998", "http://box", "a b", "box/x", "::zz"] {
            c.set("--allowed-hosts", bad).unwrap();
            assert!(c.validate().is_err(), "{bad}");
        }
        c.set("--allowed-hosts", "[]").unwrap();
        assert!(c.allowed_hosts.is_empty());
    }

    #[test]
    fn the_callsign_is_not_the_controllers() {
        let mut c = Config::default();
        c.set("--callsign", "Controller").unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let err = serde_json::from_str::<Config>(r#"{"max_romos": 3}"#).unwrap_err();
        assert!(err.to_string().contains("max_romos"));
    }
}
