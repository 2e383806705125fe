//! The settings table: for every key of `Config`, its kind (how a value is written and which
//! values are allowed) and a one-line meaning. `--help`, `docs/configuration.md`, the flag and
//! file parsers and the range checks all read this one table, so none of them can drift.
//!
//! Adding a setting: a field in `Config` (with its default in `Config::default()`) and a row
//! here. A unit test fails, naming the key, when the two disagree.

use serde_json::Value;

/// How a setting's value is written, and which values are allowed.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// `on` or `off` on the command line (`true`/`false` also work); `true`/`false` in a file.
    Switch,
    /// A whole number of things, from `min` to `max`.
    Count { min: u64, max: u64 },
    /// A size in bytes, a whole number from `min` to `max`.
    Bytes { min: u64, max: u64 },
    /// A duration in seconds, fractions allowed, from `min` to `max`.
    Seconds { min: f64, max: f64 },
    /// A number per second, fractions allowed, from `min` to `max`.
    PerSecond { min: f64, max: f64 },
    /// An IP address and port (`127.0.0.1:9998`, `[::1]:9998`). Host names are not looked up.
    Address,
    /// One of the listed words.
    Choice(&'static [&'static str]),
    /// Text; any further rule is checked with the other settings (`Config::validate`).
    Text,
    /// A file path.
    Path,
    /// A secret: checked like text, never printed.
    Secret,
    /// A list of names: `a,b` or a JSON array on the command line, a JSON array in a file;
    /// each name is checked with the other settings (`Config::validate`).
    List,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The key in the JSON file; the flag is `--` and the key with `-` for `_`.
    pub key: &'static str,
    pub kind: Kind,
    /// What it does, in one line.
    pub help: &'static str,
}

impl Setting {
    /// The command-line flag: `--max-rooms` for `max_rooms`.
    pub fn flag(&self) -> String {
        format!("--{}", self.key.replace('_', "-"))
    }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// The shortest `max_id_bytes` that leaves room for a registration id: a 20-digit room token,
/// a dot, and a client id of one character.
const MIN_ID_BYTES: u64 = 22;

/// The smallest `thread_stack_size` accepted. Measured with `scripts/stack_probe.py` (every
/// deep, long and malformed input we know, over WebSocket and `POST`; nesting no longer
/// recurses, so depth does not matter): the debug build needs 36 KiB (it dies at 32 KiB on
/// `POST` paths), the x86-64 release build survives at 16 KiB, the least the C library
/// gives a thread. 48 KiB leaves a third more than the debug build needs.
const MIN_STACK: u64 = 48 * 1024;

/// Every setting, in the order `--help` and the docs list them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "listen",
        kind: Kind::Address,
        help: "IP address and port to listen on (host names are not looked up); port 0 picks a free port",
    },
    Setting {
        key: "allow_remote",
        kind: Kind::Switch,
        help: "allow a listen address that is not loopback (other hosts can then connect)",
    },
    Setting {
        key: "allowed_hosts",
        kind: Kind::List,
        help: "host names or IP addresses besides loopback a request's Host may name (else 421); no port",
    },
    Setting {
        key: "require_masking",
        kind: Kind::Switch,
        help: "refuse unmasked WebSocket frames from loopback too (RFC 6455; breaks Thunder's C++ client)",
    },
    Setting {
        key: "callsign",
        kind: Kind::Text,
        help: "plugin name in method designators (<callsign>.1.join); not empty, no '.', not Controller",
    },
    Setting {
        key: "compat",
        kind: Kind::Choice(&["rdk", "r5"]),
        help: "dialect of results and error codes: rdk (rdkservices) or r5 (later Thunder releases)",
    },
    Setting {
        key: "page",
        kind: Kind::Switch,
        help: "serve the chat page on GET /",
    },
    Setting {
        key: "log_level",
        kind: Kind::Choice(&["off", "error", "warn", "info", "debug", "trace"]),
        help: "stderr detail: info adds connections and refusals, debug joins and leaves, trace frames",
    },
    Setting {
        key: "max_connections",
        kind: Kind::Count { min: 1, max: 100_000 },
        help: "WebSocket and HTTP connections open at once; beyond it a new one gets 503",
    },
    Setting {
        key: "max_message_size",
        kind: Kind::Bytes { min: 256, max: 16 * MIB },
        help: "largest incoming WebSocket message or frame; beyond it the connection is closed (1009)",
    },
    Setting {
        key: "max_rooms",
        kind: Kind::Count { min: 1, max: 1_000_000 },
        help: "rooms at once",
    },
    Setting {
        key: "max_members_per_room",
        kind: Kind::Count { min: 1, max: 1_000_000 },
        help: "members in one room",
    },
    Setting {
        key: "max_memberships_per_connection",
        kind: Kind::Count { min: 1, max: 1_000_000 },
        help: "rooms one connection may have joined at once",
    },
    Setting {
        key: "max_registrations_per_connection",
        kind: Kind::Count { min: 1, max: 4_000_000 },
        help: "event registrations (register calls) one connection may hold",
    },
    Setting {
        key: "max_user_bytes",
        kind: Kind::Bytes { min: 1, max: 64 * KIB },
        help: "longest user name (also names and patterns in sendto, whisper, isonline, evict)",
    },
    Setting {
        key: "max_room_bytes",
        kind: Kind::Bytes { min: 1, max: 64 * KIB },
        help: "longest room name",
    },
    Setting {
        key: "max_id_bytes",
        kind: Kind::Bytes { min: MIN_ID_BYTES, max: 64 * KIB },
        help: "longest registration or listen id, and roomid",
    },
    Setting {
        key: "max_message_bytes",
        kind: Kind::Bytes { min: 1, max: 16 * MIB },
        help: "longest message text",
    },
    Setting {
        key: "max_acl_patterns",
        kind: Kind::Count { min: 1, max: 10_000 },
        help: "patterns in one secure room's ACL",
    },
    Setting {
        key: "max_acl_pattern_bytes",
        kind: Kind::Bytes { min: 8, max: 64 * KIB },
        help: "longest ACL pattern",
    },
    Setting {
        key: "max_origin_bytes",
        kind: Kind::Bytes { min: 16, max: 64 * KIB },
        help: "longest Origin header (HTTP 400 beyond)",
    },
    Setting {
        key: "max_request_head",
        kind: Kind::Bytes { min: KIB, max: MIB },
        help: "largest HTTP request line and headers; beyond it 431",
    },
    Setting {
        key: "max_request_body",
        kind: Kind::Bytes { min: 256, max: 16 * MIB },
        help: "largest POST /jsonrpc body; beyond it 413 (256 bytes hold a join with short names)",
    },
    Setting {
        key: "handshake_timeout",
        kind: Kind::Seconds { min: 0.1, max: 3600.0 },
        help: "time a client has to send its request head and body",
    },
    Setting {
        key: "idle_timeout",
        kind: Kind::Seconds { min: 0.1, max: 86_400.0 },
        help: "a silent WebSocket is pinged after this long, and dropped after as long again",
    },
    Setting {
        key: "max_outbound_bytes",
        kind: Kind::Bytes { min: 4 * KIB, max: 1024 * MIB },
        help: "bytes queued for one client before it is cut off as too slow (1008); >= 2 x max_message_size",
    },
    Setting {
        key: "slow_client_timeout",
        kind: Kind::Seconds { min: 0.1, max: 3600.0 },
        help: "a client whose queue stays over max_outbound_bytes this long is cut off (1008)",
    },
    Setting {
        key: "max_memory_bytes",
        kind: Kind::Bytes { min: 64 * KIB, max: 2048 * MIB },
        help: "all queues, rooms, registrations and history together; >= 4 x max_outbound_bytes",
    },
    Setting {
        key: "history",
        kind: Kind::Count { min: 0, max: 100_000 },
        help: "messages each room keeps, replayed to clients that register for message later; 0: none",
    },
    Setting {
        key: "history_bytes",
        kind: Kind::Bytes { min: 0, max: 1024 * MIB },
        help: "bytes all rooms' history may hold together (oldest go first); <= max_outbound_bytes / 4",
    },
    Setting {
        key: "http_membership_ttl",
        kind: Kind::Seconds { min: 0.1, max: 604_800.0 },
        help: "a membership joined over HTTP and unused this long counts as left",
    },
    Setting {
        key: "max_http_memberships",
        kind: Kind::Count { min: 1, max: 1_000_000 },
        help: "memberships held over HTTP; when full, a new HTTP join ends the least recently used",
    },
    Setting {
        key: "max_http_requests_per_second",
        kind: Kind::PerSecond { min: 0.01, max: 1e12 },
        help: "POST /jsonrpc requests all HTTP callers may make per second together; over it, 429",
    },
    Setting {
        key: "http_request_burst",
        kind: Kind::Count { min: 1, max: 1_000_000_000 },
        help: "POST /jsonrpc requests all HTTP callers may make at once on top of the rate",
    },
    Setting {
        key: "thread_stack_size",
        kind: Kind::Bytes { min: MIN_STACK, max: 16 * MIB },
        help: "stack of each connection thread (only the touched part is resident)",
    },
    Setting {
        key: "read_buffer_size",
        kind: Kind::Bytes { min: 256, max: MIB },
        help: "read buffer of each WebSocket connection (resident on every connection)",
    },
    Setting {
        key: "max_messages_per_second",
        kind: Kind::PerSecond { min: 0.01, max: 1e12 },
        help: "requests one WebSocket connection may make per second on average; over it, error 2",
    },
    Setting {
        key: "message_burst",
        kind: Kind::Count { min: 1, max: 1_000_000_000 },
        help: "requests one connection may make at once on top of the rate",
    },
    Setting {
        key: "key_file",
        kind: Kind::Path,
        help: "file with the key that signs access tokens (made at first start, mode 0600); empty: default",
    },
    Setting {
        key: "require_token",
        kind: Kind::Switch,
        help: "refuse WebSocket upgrades and POST /jsonrpc without a valid access token (401)",
    },
    Setting {
        key: "allowed_origins",
        kind: Kind::List,
        help: "web origins (ACL patterns) that may connect; others get 403; empty: any, as Thunder",
    },
    Setting {
        key: "cors_origins",
        kind: Kind::List,
        help: "web origins (ACL patterns) sent CORS headers on POST /jsonrpc and /health; never *",
    },
    Setting {
        key: "default_room",
        kind: Kind::Text,
        help: "a room every new Messenger WebSocket joins as guest-<n>; empty: none",
    },
    Setting {
        key: "server_name",
        kind: Kind::Text,
        help: "sender name of messages from the server itself (announce); not empty",
    },
    Setting {
        key: "admin_token",
        kind: Kind::Secret,
        help: "secret for announce and evict (X-Messenger-Admin or ?admin=, from loopback); 16+ chars",
    },
    Setting {
        key: "upstream",
        kind: Kind::Text,
        help: "relay mode: Thunder's moved IP:PORT; other callsigns and paths go there; empty: off",
    },
    Setting {
        key: "upstream_timeout",
        kind: Kind::Seconds { min: 0.05, max: 600.0 },
        help: "longest wait for the upstream to connect or answer a relayed request (then error 2 / 504)",
    },
    Setting {
        key: "max_upstream_pending",
        kind: Kind::Count { min: 1, max: 100_000 },
        help: "relayed requests one connection may have waiting for an answer; beyond it, error 2",
    },
];

/// The row for a key, if there is one.
pub fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

impl Kind {
    /// The placeholder for the value in `--help`: `BYTES`, `on|off`, ...
    pub fn placeholder(&self) -> String {
        match self {
            Kind::Switch => "on|off".into(),
            Kind::Count { .. } => "N".into(),
            Kind::Bytes { .. } => "BYTES".into(),
            Kind::Seconds { .. } => "SECONDS".into(),
            Kind::PerSecond { .. } => "N".into(),
            Kind::Address => "IP:PORT".into(),
            Kind::Choice(words) => words.join("|"),
            Kind::Text | Kind::Secret => "TEXT".into(),
            Kind::Path => "PATH".into(),
            Kind::List => "A,B".into(),
        }
    }

    /// The allowed values in words, for `--help`, the docs and error messages.
    pub fn allowed(&self) -> String {
        match self {
            Kind::Switch => "on or off".into(),
            Kind::Count { min, max } => format!("{min} to {max}"),
            Kind::Bytes { min, max } => format!("{min} to {max} bytes"),
            Kind::Seconds { min, max } => format!("{} to {} seconds", num(*min), num(*max)),
            Kind::PerSecond { min, max } => format!("{} to {} per second", num(*min), num(*max)),
            Kind::Address => "an IP address and port, such as 127.0.0.1:9998 or [::1]:9998".into(),
            Kind::Choice(words) => format!("one of {}", words.join(", ")),
            Kind::Text | Kind::Secret => "text".into(),
            Kind::Path => "a file path".into(),
            Kind::List => "names separated by commas, or a JSON array of strings".into(),
        }
    }

    /// A value as the settings hold it (the JSON form), as a person writes it on a flag.
    pub fn show(&self, value: &Value) -> String {
        match (self, value) {
            (Kind::Secret, Value::String(s)) if !s.is_empty() => "(set)".into(),
            (_, Value::String(s)) if s.is_empty() => "(none)".into(),
            (_, Value::String(s)) => s.clone(),
            (Kind::List, Value::Array(items)) if items.is_empty() => "(none)".into(),
            (Kind::List, Value::Array(items)) => {
                let names = items.iter().map(|i| i.as_str().unwrap_or("?"));
                names.collect::<Vec<_>>().join(",")
            }
            (Kind::Switch, Value::Bool(b)) => if *b { "on" } else { "off" }.into(),
            (_, Value::Number(n)) => match n.as_f64() {
                Some(f) if n.as_u64().is_none() => num(f),
                _ => n.to_string(),
            },
            (_, other) => other.to_string(),
        }
    }

    /// Reads a value given on the command line.
    pub fn from_text(&self, text: &str) -> Result<Value, String> {
        let value = match self {
            Kind::Switch => match text {
                "on" | "true" => Value::Bool(true),
                "off" | "false" => Value::Bool(false),
                _ => return Err("expected on or off".into()),
            },
            Kind::Count { .. } | Kind::Bytes { .. } => match text.parse::<u64>() {
                Ok(n) => Value::from(n),
                Err(_) => return Err(format!("expected a whole number from {}", self.allowed())),
            },
            // serde_json's number parser, already in the binary (core's adds about 10 KiB).
            Kind::Seconds { .. } | Kind::PerSecond { .. } => {
                match serde_json::from_str::<f64>(text) {
                    Ok(f) if f.is_finite() => Value::from(f),
                    _ => return Err(format!("expected a number from {}", self.allowed())),
                }
            }
            // A JSON array as it is, else names separated by commas.
            Kind::List => serde_json::from_str::<Value>(text)
                .ok()
                .filter(Value::is_array)
                .unwrap_or_else(|| names(text)),
            _ => Value::String(text.to_owned()),
        };
        self.check(value)
    }

    /// Checks a value from the file (or from `from_text`): its type and range. Returns it in
    /// the form `Config` deserializes.
    pub fn check(&self, value: Value) -> Result<Value, String> {
        match self {
            Kind::Switch => match value {
                Value::Bool(_) => Ok(value),
                _ => Err("expected true or false".into()),
            },
            Kind::Count { min, max } | Kind::Bytes { min, max } => {
                let n = whole(&value)
                    .ok_or_else(|| format!("expected a whole number from {}", self.allowed()))?;
                if n < *min || n > *max {
                    return Err(format!("out of range: allowed {}", self.allowed()));
                }
                Ok(Value::from(n))
            }
            Kind::Seconds { min, max } | Kind::PerSecond { min, max } => {
                let f = value
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| format!("expected a number from {}", self.allowed()))?;
                if f < *min || f > *max {
                    return Err(format!("out of range: allowed {}", self.allowed()));
                }
                Ok(Value::from(f))
            }
            Kind::Address => {
                let text = value
                    .as_str()
                    .ok_or("expected text such as \"127.0.0.1:9998\"")?;
                address(text).map(|()| value.clone())
            }
            Kind::Choice(words) => match value.as_str() {
                Some(w) if words.contains(&w) => Ok(value),
                _ => Err(format!("expected {}", self.allowed())),
            },
            Kind::Text | Kind::Path | Kind::Secret => match value {
                Value::String(_) => Ok(value),
                _ => Err("expected text (a JSON string)".into()),
            },
            Kind::List => match &value {
                Value::Array(items) if items.iter().all(Value::is_string) => Ok(value),
                _ => Err("expected a JSON array of strings, such as [\"stb.local\"]".into()),
            },
        }
    }
}

/// Names separated by commas (`a, b`) as a JSON array; blanks around them and empty names
/// dropped.
fn names(text: &str) -> Value {
    let items = text.split(',').map(str::trim).filter(|n| !n.is_empty());
    items.map(|n| Value::String(n.to_owned())).collect()
}

/// A JSON number that is a whole, non-negative number (`5` or `5.0`).
fn whole(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        let f = value.as_f64()?;
        (f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64).then_some(f as u64)
    })
}

/// Checks an `IP:port`, telling a host name apart from a typo.
fn address(text: &str) -> Result<(), String> {
    if text.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let named = text.rsplit_once(':').is_some_and(|(host, port)| {
        port.parse::<u16>().is_ok()
            && !host.is_empty()
            && host.bytes().any(|c| c.is_ascii_alphabetic())
            && host
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
    });
    if named {
        return Err(
            "host names are not looked up: give an IP address and port, such as 127.0.0.1:9998"
                .into(),
        );
    }
    Err(format!("expected {}", Kind::Address.allowed()))
}

/// A number without a trailing `.0`, printed without `core::fmt`'s float code (serde_json's
/// shortest round-trip printer is already in the binary).
pub fn num(f: f64) -> String {
    let text = Value::from(f).to_string();
    match text.strip_suffix(".0") {
        Some(whole) => whole.to_owned(),
        None => text,
    }
}
