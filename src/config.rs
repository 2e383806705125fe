//! Settings: one struct with the built-in defaults, read from an optional JSON file and then from
//! command-line flags. Every limit of the server lives here, each saying its default and why;
//! `table` gives each key its kind, allowed range and one-line help, and `render` turns them
//! into `--help`, `docs/configuration.md` and the `check-config` listing.

mod render;
mod table;

pub use render::{differences, effective, help, markdown};
pub use table::{Kind, Setting, SETTINGS};

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
    /// Log level: off, error, warn, info (connections, refusals, start and stop), debug (joins
    /// and leaves), trace (frames). Default `warn` (quiet on the box).
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
    /// Messages each room keeps, replayed (marked `"history": true`, oldest first) to a
    /// client that registers for `message` later, or listens. Default 0: no history, as
    /// Thunder; an app that wants it asks the operator.
    pub history: usize,
    /// Bytes all rooms' history may hold together (the messages' text and their bookkeeping);
    /// when full, the oldest messages of any room are dropped, never a send refused. Default
    /// 1 MiB: a sixty-fourth of the systemd unit's `MemoryMax` (64M), thousands of chat lines;
    /// a replay of all of it still fits one client's outbound queue (so this may be at most a
    /// quarter of `max_outbound_bytes`) and costs the dispatcher about a millisecond of copying.
    pub history_bytes: usize,
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
    /// 16 KiB); this bounds virtual size. Default 64 KiB; at least 48 KiB (measured with the
    /// worst inputs: see `MIN_STACK`).
    pub thread_stack_size: usize,
    /// tungstenite's read buffer per connection, in bytes: it is zero-filled on first read, so
    /// it is resident on every connection. Default 2 KiB: a request is a few hundred bytes, a
    /// larger message is read in several calls, and an idle connection costs about 15 KiB
    /// (4 KiB: 17 KiB, measured with 1,000 idle connections).
    pub read_buffer_size: usize,

    /// Longest user name, in bytes (`join`, Kurento `joinRoom`, and the names and patterns
    /// other methods match against members: `sendto`, `whisper`, `isonline`, `evict`).
    /// Default 256: a display name or an app's id, several times over.
    pub max_user_bytes: usize,
    /// Longest room name, in bytes. Default 256, as for user names.
    pub max_room_bytes: usize,
    /// Longest registration or listen id, in bytes (`<roomid>.<client-id>`: the 20-digit
    /// token and ThunderJS's `client.events` need 34). Default 256.
    pub max_id_bytes: usize,
    /// Longest message text, in bytes. Default 64 KiB (SPEC §4a: messages up to 64 KiB).
    pub max_message_bytes: usize,
    /// Most origin patterns in a secure room's ACL. Default 32: an app lists the few web
    /// origins it is served from.
    pub max_acl_patterns: usize,
    /// Longest origin pattern in an ACL, in bytes. Default 512: the longest real origin
    /// (scheme, a 253-byte DNS name, port) is under 300.
    pub max_acl_pattern_bytes: usize,
    /// Longest `Origin` header a WebSocket upgrade or `POST` may carry, in bytes; a longer one
    /// is refused with 400. Default 512, as for ACL patterns.
    pub max_origin_bytes: usize,

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
    /// `$HOME/.local/state/messenger/key`. Set, it means "accept tokens": a key the server
    /// cannot read or make stops the start (as `require_token` does); left empty, such a key
    /// only turns tokens off with a warning (`keyfile::for_server`).
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
            history: 0,
            history_bytes: 1 << 20,
            max_request_head: 8 * 1024,
            max_request_body: 64 * 1024 + 1024,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_outbound_bytes: 4 << 20,
            http_membership_ttl: Duration::from_secs(600),
            thread_stack_size: 64 * 1024,
            read_buffer_size: 2 * 1024,
            max_user_bytes: 256,
            max_room_bytes: 256,
            max_id_bytes: 256,
            max_message_bytes: 64 * 1024,
            max_acl_patterns: 32,
            max_acl_pattern_bytes: 512,
            max_origin_bytes: 512,
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
    /// A flag that names no setting.
    UnknownFlag(String),
    /// A word on the command line that is not a flag (settings are `--name value`).
    Unexpected(String),
    /// A flag given without its value.
    MissingValue(String),
    /// A flag or key with a value of the wrong kind or out of range. `name` is as given
    /// (`--max-rooms` or `max_rooms`).
    BadValue {
        name: String,
        value: String,
        why: String,
    },
    /// The configuration file could not be read, is not JSON, or holds a bad setting.
    File { path: PathBuf, why: String },
    /// The settings parse but do not make sense together; the text names the settings.
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownFlag(flag) => {
                write!(f, "unknown flag {flag} (--help lists every setting)")
            }
            ConfigError::Unexpected(word) => write!(
                f,
                "unexpected argument {}: settings are flags (--name value); see --help",
                quoted(word)
            ),
            ConfigError::MissingValue(flag) => write!(f, "flag {flag} needs a value"),
            ConfigError::BadValue { name, value, why } => {
                write!(f, "{name} {}: {why}", quoted(value))
            }
            ConfigError::File { path, why } => {
                write!(f, "configuration file {}: {why}", path.display())
            }
            ConfigError::Invalid(why) => f.write_str(why),
        }
    }
}

/// A value as typed, in quotes only when it would otherwise be hard to see.
fn quoted(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\\');
    if plain {
        value.to_owned()
    } else {
        format!("{value:?}")
    }
}

/// A setting's name for messages: the key and its flag.
fn named(key: &str) -> String {
    format!("{key} (--{})", key.replace('_', "-"))
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

    /// Whether a setting names the flag (`--max-rooms`, `--max_rooms`, `--max-rooms=5`'s name).
    pub fn is_flag(flag: &str) -> bool {
        flag.strip_prefix("--")
            .is_some_and(|name| table::find(&name.replace('-', "_")).is_some())
    }

    /// Reads a JSON configuration file over the defaults. Every key and value is checked as a
    /// flag's would be; unknown keys are errors, so a typo never leaves a limit at its default.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let bad = |why: String| ConfigError::File {
            path: path.to_owned(),
            why,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let Value::Object(given) =
            serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?
        else {
            return Err(bad(
                "expected a JSON object of settings, {\"key\": value, ...}".into(),
            ));
        };
        let mut changes = Map::new();
        for (key, value) in given {
            let setting = table::find(&key).ok_or_else(|| {
                bad(format!(
                    "unknown setting {key:?} (--help lists every setting)"
                ))
            })?;
            let shown = value.to_string();
            let value = setting.kind.check(value).map_err(|why| {
                bad(ConfigError::BadValue {
                    name: key.clone(),
                    value: shown,
                    why,
                }
                .to_string())
            })?;
            changes.insert(key, value);
        }
        let mut config = Config::default();
        config.apply(changes).map_err(bad)?;
        Ok(config)
    }

    /// Sets one named setting from text, as a flag gives it (`--max-rooms 50` sets
    /// `max_rooms`), checked by the settings table.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let key = name.trim_start_matches("--").replace('-', "_");
        let setting = table::find(&key).ok_or_else(|| ConfigError::UnknownFlag(name.to_owned()))?;
        let bad = |why: String| ConfigError::BadValue {
            name: name.to_owned(),
            value: value.to_owned(),
            why,
        };
        let checked = setting.kind.from_text(value).map_err(bad)?;
        self.apply(Map::from_iter([(key, checked)])).map_err(bad)
    }

    /// The settings as the file writes them: every key with its value.
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }

    /// Replaces checked values. A failure here means the table lets through a value the
    /// field's type cannot hold: a bug, reported as text rather than a panic.
    fn apply(&mut self, changes: Map<String, Value>) -> Result<(), String> {
        let mut map = self.to_map();
        map.extend(changes);
        *self = serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Checks the settings together; called once before the server starts. Every message
    /// names the setting, its value and what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in self.to_map() {
            let setting = table::find(&key).ok_or_else(|| {
                ConfigError::Invalid(format!("setting {key} has no row in the settings table"))
            })?;
            if let Err(why) = setting.kind.check(value.clone()) {
                let value = setting.kind.show(&value);
                return Err(ConfigError::Invalid(format!(
                    "{} {value}: {why}",
                    named(&key)
                )));
            }
        }
        self.check_words()?;
        self.check_sizes()?;
        self.validate_history()
    }

    /// Rules for the text settings.
    fn check_words(&self) -> Result<(), ConfigError> {
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

    /// Sizes that cannot work together.
    fn check_sizes(&self) -> Result<(), ConfigError> {
        let least = self.max_message_size.saturating_mul(2);
        if self.max_outbound_bytes < least {
            return Err(ConfigError::Invalid(format!(
                "{} {}: allowed at least twice max_message_size ({} bytes), or one event with the largest message would cut its reader off",
                named("max_outbound_bytes"),
                self.max_outbound_bytes,
                least
            )));
        }
        Ok(())
    }
}

impl Config {
    /// With history on, its budget must be above 0 and small enough that replaying all of it
    /// (framing included: up to about four times the counted bytes for short messages) never
    /// cuts off the client it is replayed to.
    fn validate_history(&self) -> Result<(), ConfigError> {
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
mod tests;
