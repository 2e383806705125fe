//! messenger: Thunder's Messenger API (rooms, users, messages) over a loopback WebSocket, as
//! one small binary for set-top boxes.
//!
//! # Threads and who owns what
//!
//! - **acceptor** (`server`): owns the listening socket. Sets `TCP_NODELAY`, counts the
//!   connection, refuses it with 503 beyond `max_connections`, and starts a connection thread
//!   with a small explicit stack.
//! - **connection** (`connection`), one per TCP connection: owns the socket's read side. It
//!   reads HTTP request heads (`http`), refuses any whose `Host` names another server
//!   (`host`); plain requests (`/health`, the page, `POST /jsonrpc`) are answered right
//!   there (`routes`, asking the dispatcher over a one-shot channel when room state is
//!   needed). After a WebSocket upgrade (`upgrade`) it only *reads* (`reader`):
//!   each text frame is checked at the edge (`engine::text_command`: `request` on `/jsonrpc`,
//!   `kurento` on `/room`), charged to the connection's rate limit (`gate`) and sent to the
//!   dispatcher as a `Command::Call` / `Command::Kurento`; a `ReportGone` guard sends
//!   `Command::Gone` however the thread ends.
//! - **dispatcher** (`dispatcher`), exactly one: a thin loop around the library's `Engine`,
//!   which owns all room state (`rooms`: rooms, memberships, registrations, listens; one set
//!   of rooms for both dialects) and every client's write side (`outbox`). No locks: state
//!   changes only there, in the order commands arrive. The loop applies up to `BATCH` (512)
//!   commands per wake-up, the engine appending each reply and event to the recipients'
//!   outboxes, then writes each touched client once with a non-blocking send (`socket`). A
//!   client whose socket is full keeps its bytes queued (retried every `RETRY`, 2 ms) up to
//!   `max_outbound_bytes`, then is cut off with close 1008; nobody else waits for it. Every
//!   `SWEEP` (1 s) it ticks the engine's clock, which ends unused HTTP memberships.
//! - **signals**: SIGTERM / SIGINT stop accepting and tell the dispatcher to close every
//!   client with 1001; the process exits 0 once that is written (at most `SHUTDOWN_GRACE`,
//!   half a second).
//!
//! # Channels
//!
//! One bounded crossbeam channel of `dispatcher::Cmd` (`INBOX`: 1,024 slots of 40 bytes,
//! allocated up front) from all connection threads (and the signal thread) to the
//! dispatcher. Its bound is back-pressure: a flooding client's reader blocks instead of
//! growing memory. HTTP calls and health checks carry a one-shot reply channel. Before a frame
//! is sent on, the connection thread charges it to its own rate limit (`gate`), so one
//! client's flood is refused at its own edge.
//!
//! # Library and binary
//!
//! The protocol is the `messenger` library (`src/lib.rs`): settings, the edge parsers, room
//! state, the `engine` that carries out every command, the outboxes, origins and tokens. It
//! has no thread, channel or clock of its own, so tests and the fuzz targets drive it from
//! memory (`tests/model.rs` checks it against a model). The modules below own the sockets,
//! the threads and the clock.
#![forbid(unsafe_code)]

mod connection;
mod dispatcher;
mod gate;
mod host;
mod http;
mod reader;
mod routes;
mod server;
mod socket;
#[cfg(test)]
mod test_stream;
mod token_command;
mod upgrade;

use messenger::{
    access_token, acl, config, engine, error, outbox, ratelimit, request, rooms, wire,
};

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use config::{Config, ConfigError};
use connection::Shared;
use engine::{Command, Engine, INBOX};

const USAGE: &str = "\
messenger: Thunder Messenger-compatible room chat over a loopback WebSocket

usage: messenger [--config PATH] [--SETTING VALUE ...]
       messenger token --url URL [--ttl SECONDS] [--config PATH] [--key-file PATH]
       messenger --help | --version

Common settings (every key of the JSON config file is also a flag, '_' or '-'):
  --config PATH          JSON configuration file (keys as below, with '_')
  --listen ADDR:PORT     where to listen (default 127.0.0.1:9998; port 0 picks one)
  --allow-remote on      allow a non-loopback listen address
  --callsign NAME        designator prefix (default Messenger)
  --compat rdk|r5        result and error-code dialect (default rdk)
  --page on|off          serve the chat page on GET / (default on)
  --log-level LEVEL      off, error, warn, info, debug, trace (default warn)
  --max-connections N, --max-rooms N, --max-members-per-room N,
  --max-memberships-per-connection N, --max-message-size BYTES,
  --max-outbound-bytes BYTES, --idle-timeout SECONDS, --handshake-timeout SECONDS,
  --http-membership-ttl SECONDS, --max-messages-per-second N, --message-burst N
  --key-file PATH        key that signs access tokens (made on first start, mode 0600)
  --require-token on     refuse connections without a valid access token (HTTP 401)
  --default-room NAME    a room every new Messenger connection joins as guest-<n>
  --server-name NAME     sender name of announcements (default server)
  --admin-token SECRET   lets a local caller presenting it use announce and evict

'messenger token' prints an access token for URL (its origin becomes the connection's
origin for secure rooms), valid for --ttl seconds (default 3600), signed with the key file.

On start it prints 'listening on ADDR:PORT'. SIGTERM or SIGINT closes every client with
1001 and exits 0. SIGHUP is ignored: restart to apply a changed configuration.";

fn main() {
    if std::env::args().nth(1).as_deref() == Some("token") {
        std::process::exit(token_command::main(std::env::args().skip(2)));
    }
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(Some(config)) => config,
        Ok(None) => return,
        Err(e) => {
            eprintln!("messenger: {e}");
            std::process::exit(2);
        }
    };
    std::process::exit(run(config));
}

/// Reads the settings: defaults, then the file named by `--config`, then the other flags.
/// `Ok(None)` when `--help` or `--version` was answered.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Config>, ConfigError> {
    let args: Vec<String> = args.collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(None);
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("messenger {}", env!("CARGO_PKG_VERSION"));
        return Ok(None);
    }
    let mut pairs = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if !flag.starts_with("--") {
            return Err(ConfigError::UnknownFlag(flag.clone()));
        }
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => (
                flag.clone(),
                it.next()
                    .ok_or_else(|| ConfigError::MissingValue(flag.clone()))?
                    .clone(),
            ),
        };
        pairs.push((name, value));
    }
    let mut config = match pairs.iter().rev().find(|(name, _)| name == "--config") {
        Some((_, path)) => Config::from_file(&PathBuf::from(path))?,
        None => Config::default(),
    };
    for (name, value) in pairs.iter().filter(|(name, _)| name != "--config") {
        config.set(name, value)?;
    }
    config.validate()?;
    Ok(Some(config))
}

/// Runs the server; returns the process exit code.
fn run(config: Config) -> i32 {
    let level = config.log_level.parse().unwrap_or(log::LevelFilter::Warn);
    if let Err(e) = simple_logger::SimpleLogger::new().with_level(level).init() {
        eprintln!("messenger: logging: {e}");
    }
    let listener = match TcpListener::bind(config.listen) {
        Ok(listener) => listener,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            eprintln!(
                "messenger: cannot listen on {}: address in use (is another messenger running?)",
                config.listen
            );
            return 1;
        }
        Err(e) => {
            eprintln!("messenger: cannot listen on {}: {e}", config.listen);
            return 1;
        }
    };
    let addr = listener
        .local_addr()
        .map_or_else(|_| config.listen.to_string(), |a| a.to_string());
    if !config.listen.ip().is_loopback() {
        log::warn!("listening on non-loopback address {addr}: other hosts can reach this server");
    }
    let key = match access_token::Key::load_or_create(&config.key_path()) {
        Ok(key) => Some(key),
        Err(e) if config.require_token => {
            eprintln!("messenger: {e} (require_token is set, so the server cannot start)");
            return 1;
        }
        Err(e) => {
            log::warn!("{e}; access tokens will be refused");
            None
        }
    };
    let (tx, rx) = crossbeam_channel::bounded(INBOX);
    let engine = Engine::new(&config);
    let shared = Arc::new(Shared {
        config,
        tx: tx.clone(),
        started: Instant::now(),
        connections: AtomicUsize::new(0),
        next_conn: AtomicU64::new(1),
        stopping: AtomicBool::new(false),
        key,
        tokens_refused: AtomicU64::new(0),
        rate_limited: AtomicU64::new(0),
    });
    let dispatcher = std::thread::Builder::new()
        .name("dispatcher".into())
        .spawn(move || dispatcher::run(engine, rx));
    let acceptor = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("acceptor".into())
            .spawn(move || server::accept(listener, shared))
    };
    if let Err(e) = watch_signals(shared.clone()) {
        log::warn!("signal handling unavailable: {e}");
    }
    let (Ok(dispatcher), Ok(_acceptor)) = (dispatcher, acceptor) else {
        eprintln!("messenger: cannot start threads");
        return 1;
    };
    println!("listening on {addr}");
    let _ = std::io::stdout().flush();
    log::info!(
        "messenger {} listening on {addr}",
        env!("CARGO_PKG_VERSION")
    );
    let _ = dispatcher.join();
    0
}

/// The signal thread's stack: it only waits for signals and sends one command.
const SIGNAL_STACK: usize = 64 * 1024;

/// SIGTERM and SIGINT stop the server; SIGHUP is logged and ignored.
fn watch_signals(shared: Arc<Shared>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .stack_size(SIGNAL_STACK)
        .spawn(move || {
            for signal in signals.forever() {
                if signal == SIGHUP {
                    log::warn!(
                        "SIGHUP ignored: restart messenger to apply a changed configuration"
                    );
                    continue;
                }
                log::info!("signal {signal}: closing every client and stopping");
                shared.stopping.store(true, Ordering::Relaxed);
                let _ = shared.tx.send(Command::Shutdown);
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{BATCH, RETRY, SHUTDOWN_GRACE, SWEEP};

    /// `n` with a comma between thousands, as the comments write numbers.
    fn thousands(n: usize) -> String {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    }

    #[test]
    fn the_architecture_comment_quotes_the_numbers() {
        let comment = include_str!("main.rs");
        let quotes = [
            format!(
                "(`INBOX`: {} slots of {} bytes,",
                thousands(INBOX),
                std::mem::size_of::<dispatcher::Cmd>()
            ),
            format!("`BATCH` ({BATCH})"),
            format!("`RETRY`, {} ms)", RETRY.as_millis()),
            format!("`SWEEP` ({} s)", SWEEP.as_secs()),
        ];
        for quote in quotes {
            assert!(comment.contains(&quote), "main.rs should say {quote:?}");
        }
        assert_eq!(
            SHUTDOWN_GRACE.as_millis(),
            500,
            "the comment says half a second"
        );
    }

    fn args(list: &[&str]) -> Result<Option<Config>, ConfigError> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_override_defaults() {
        let c = args(&[
            "--listen",
            "127.0.0.1:0",
            "--max-rooms=5",
            "--callsign",
            "Chat",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.max_rooms, 5);
        assert_eq!(c.callsign, "Chat");
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(matches!(
            args(&["--listen"]),
            Err(ConfigError::MissingValue(_))
        ));
        assert!(matches!(args(&["serve"]), Err(ConfigError::UnknownFlag(_))));
        assert!(matches!(
            args(&["--config", "/nonexistent/messenger.json"]),
            Err(ConfigError::File { .. })
        ));
        assert!(matches!(
            args(&["--callsign", "a.b"]),
            Err(ConfigError::Invalid(_))
        ));
    }
}
