//! Settings: one struct with the built-in defaults, read from an optional JSON file and then from
//! command-line flags. Every limit of the server lives here, each saying its default and why;
//! `table` gives each key its kind, allowed range and one-line help, and `render` turns them
//! into `--help`, `docs/configuration.md` and the `check-config` listing.

mod render;
mod rules;
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
    /// A client whose queue stays above `max_outbound_bytes` this long, its socket taking less
    /// than would bring it back under, is too slow: it is cut off (close 1008). One burst that
    /// a reading client drains in time never cuts it off. Default 5 s: longer than any pause
    /// of an app that is still alive (a busy main loop, a garbage collection), short enough that
    /// a stalled client's queue is given back within seconds.
    #[serde(with = "secs")]
    pub slow_client_timeout: Duration,
    /// Bytes everything clients make the server hold may take together: queued outbound bytes,
    /// rooms, memberships, registrations, listens, HTTP memberships and room history (the
    /// accounting is in `engine::memory`). Rooms and registrations may take half of it; beyond
    /// that a join, register or listen gets error 2. When the total passes it, the largest
    /// queues are cut off first. Default 16 MiB: with the fixed part measured (`make bench`:
    /// an idle server 2.7 MiB resident, 1,000 idle connections 15.0 MiB, 12.6 KiB each) the
    /// process stays near 31 MiB, about half the systemd unit's `MemoryMax=64M`. At least 4 x
    /// `max_outbound_bytes`, so one client's queue at its ceiling (twice that) fits in half.
    pub max_memory_bytes: usize,
    /// A membership joined over HTTP that goes unused this long counts as left. Default 600 s.
    #[serde(with = "secs")]
    pub http_membership_ttl: Duration,
    /// Memberships all `POST /jsonrpc` callers may hold together (they share one owner). When
    /// they are all held, a new HTTP join first ends the least recently used one (a leave:
    /// the others hear `left`), so a script that never leaves cannot lock the next one out,
    /// and HTTP alone never takes more than this many of `max_rooms`. Default 100, a tenth of
    /// `max_rooms`: scripts join, send and leave in a few calls.
    pub max_http_memberships: usize,
    /// `POST /jsonrpc` requests all HTTP callers may make per second together, on average (one
    /// token bucket: every caller is on loopback, and `curl` opens a new connection per call,
    /// so neither the address nor the connection tells callers apart). Over it: HTTP 429 with
    /// error 2. Default 1,000 a second.
    pub max_http_requests_per_second: f64,
    /// HTTP requests all callers may make at once on top of that rate. Default 2,000: a script
    /// that joins a thousand rooms in a loop is not refused.
    pub http_request_burst: u32,
    /// Stack of each connection thread, in bytes. Only the touched part is resident (about
    /// 16 KiB); this bounds virtual size. Default 64 KiB; at least 48 KiB (measured with the
    /// worst inputs: see `MIN_STACK`).
    pub thread_stack_size: usize,
    /// tungstenite's read buffer per connection, in bytes: it is zero-filled on first read, so
    /// it is resident on every connection. Default 512 bytes, the size of the buffer the request
    /// head was read into (`http::READ_CHUNK`), which becomes this one rather than being freed
    /// into the thread's malloc cache; a request is a few hundred bytes, and a larger message
    /// is read in several calls. With 1,000 idle connections that joined and registered, 2 KiB
    /// (and a buffer of its own) cost 15.6 KiB of private memory each, 1 KiB 13.6 KiB; 512
    /// bytes saved another 520 bytes each (a head longer than that, as a browser's may be,
    /// grows the buffer to 1 KiB as before).
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
    /// The web origins that may open a WebSocket or `POST /jsonrpc` at all, as ACL patterns
    /// (`https://*.example.com`). A request whose `Origin` header is a web origin not listed
    /// (or `null`, what a sandboxed page sends) gets 403; a request without `Origin` (native
    /// apps, scripts, LinkType's `0.0.0.0@0`) is not a web page and is not affected, nor is
    /// the server's own chat page (`http://127.0.0.1:<port>`, `localhost`, `[::1]`). Default
    /// empty: any origin, as Thunder.
    pub allowed_origins: Vec<String>,
    /// The web origins (ACL patterns) whose pages may read `POST /jsonrpc` and `/health`
    /// answers across origins: they get `Access-Control-Allow-Origin: <their origin>` and
    /// `Vary: Origin`, on the preflight too. Default empty: no CORS headers, never `*`.
    pub cors_origins: Vec<String>,

    /// A room every new Messenger WebSocket connection joins as `guest-<n>` (actionhero's
    /// default room; `whoami` tells the client its token). Default empty: no default room.
    pub default_room: String,
    /// The sender's name on messages from the server itself (`announce`). Default `server`.
    pub server_name: String,
    /// The secret a trusted local caller presents (header `X-Messenger-Admin` or query
    /// `?admin=`, from a loopback address) to use `announce` and `evict`. Default empty:
    /// nobody may. At least 16 characters when set.
    pub admin_token: String,

    /// Relay mode: Thunder's moved address (`127.0.0.1:9997`). This server then takes
    /// Thunder's port, serves its callsign itself and relays every other callsign, the rest
    /// of the Controller and Thunder's other HTTP paths there (`docs/box.md`). Default empty:
    /// no relay, this server is the only one on the box.
    pub upstream: String,
    /// How long a relayed request, a connection to the upstream or its answer may take
    /// before the client is told the plugin is unavailable (or HTTP 504). Default 5 s.
    #[serde(with = "secs")]
    pub upstream_timeout: Duration,
    /// Relayed requests one WebSocket connection may have waiting for the upstream's answer;
    /// beyond it a relayed request gets error 2 at once. Default 64.
    pub max_upstream_pending: usize,
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
            slow_client_timeout: Duration::from_secs(5),
            max_memory_bytes: 16 << 20,
            http_membership_ttl: Duration::from_secs(600),
            max_http_memberships: 100,
            max_http_requests_per_second: 1000.0,
            http_request_burst: 2000,
            thread_stack_size: 64 * 1024,
            read_buffer_size: 512,
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
            allowed_origins: Vec::new(),
            cors_origins: Vec::new(),
            default_room: String::new(),
            server_name: "server".into(),
            admin_token: String::new(),
            upstream: String::new(),
            upstream_timeout: Duration::from_secs(5),
            max_upstream_pending: 64,
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
        self.check_upstream()?;
        self.check_sizes()?;
        self.check_origin_lists()?;
        self.validate_history()
    }
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
