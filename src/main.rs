//! messenger: Thunder's Messenger API (rooms, users, messages) over a loopback WebSocket, as
//! one small binary for set-top boxes.
//!
//! # Threads and who owns what
//!
//! - **acceptor** (`server`), the main thread once the others are started: owns the listening
//!   socket. Sets `TCP_NODELAY`, counts the connection, refuses it with 503 beyond
//!   `max_connections`, and starts a connection thread with a small explicit stack.
//! - **connection** (`connection`), one per TCP connection: owns the socket's read side. It
//!   reads HTTP request heads (`http`), refuses any whose `Host` names another server
//!   (`host`); plain requests (`/health`, the page, `POST /jsonrpc`) are answered right
//!   there (`routes`, asking the dispatcher over a one-shot channel when room state is
//!   needed; every `POST` takes a token from the one bucket all HTTP callers share, `gate`).
//!   A web origin the allow-list refuses gets 403, and CORS headers go to listed origins only
//!   (`web_origins`). After a WebSocket upgrade (`upgrade`) it only *reads* (`reader`;
//!   a burst is read ahead, `read_ahead`): every
//!   frame takes a token from the connection's rate limit (`gate`); each text frame is
//!   checked at the edge (`engine::text_command`: `request` on `/jsonrpc`, `kurento` on
//!   `/room`, each string held to its byte cap) and sent to the dispatcher as a
//!   `Command::Call` / `Command::Kurento`; a `ReportGone` guard sends `Command::Gone` however
//!   the thread ends. It writes the
//!   connection's info lines (opened, closed, refused) through `connlog`.
//! - **dispatcher** (`dispatcher`), exactly one: a thin loop around the library's `Engine`,
//!   which owns all room state (`rooms`: rooms, memberships, registrations, listens, room
//!   history; one set of rooms for both dialects) and every client's write side (`outbox`).
//!   No locks: state changes only there, in the order commands arrive. The loop applies up to
//!   `BATCH` (512) commands per wake-up, the engine appending each reply and event to the
//!   recipients' outboxes, then writes each touched client once with a non-blocking send
//!   (`socket`). A client whose socket is full keeps its bytes queued, retried on a back-off
//!   from `RETRY_MIN` (2 ms) to `RETRY_MAX` (128 ms) that the loop's wait follows; a queue
//!   that stays over `max_outbound_bytes` for `slow_client_timeout` (or passes twice that
//!   limit, or is the largest when `max_memory_bytes` is reached) is cut off with close 1008
//!   at a frame boundary; nobody else waits for it (`outbox`). Memberships that end many at
//!   once (a gone connection's, expired HTTP ones) leave `WORK` (8,000) deliveries per turn,
//!   between batches, so no one command holds the loop. Every `SWEEP` (1 s) it ticks the
//!   engine's clock, which ends unused HTTP memberships.
//! - **relay** (`relay`), relay mode only (`upstream` set): one per client connection that
//!   has called a plugin other than Messenger. Its reader writes such frames on the
//!   connection's one upstream WebSocket to Thunder; this thread owns that WebSocket's read
//!   side and hands each frame from Thunder to the dispatcher (`Command::Relayed`), which
//!   queues it in the client's outbox in order with everything else; it also answers relayed
//!   requests left unanswered past `upstream_timeout`. Plain HTTP for Thunder is forwarded by
//!   the connection thread (`proxy`).
//! - **signals**: SIGTERM / SIGINT stop accepting and tell the dispatcher to close every
//!   client with 1001; the process exits 0, from the dispatcher's thread, once that is
//!   written (at most `SHUTDOWN_GRACE`, half a second).
//! - **logger** (`logger`): owns stderr. Every other thread formats its line and queues it
//!   without waiting (a bounded queue, `logger::QUEUE`); this thread writes them. A full or
//!   closed stderr stalls or fails only this thread: lines that do not fit are dropped and
//!   counted (`/health`).
//!
//! Under systemd (`notify`) the main thread sends `READY=1` once the server accepts, the
//! signal thread `STOPPING=1`, and the dispatcher `WATCHDOG=1` from its loop (a `Heartbeat`
//! it wakes up for), so a wedged dispatcher gets the service restarted. The dispatcher does
//! no blocking I/O: sockets and the notify datagram are non-blocking, and log lines only go
//! into the logger's queue.
//!
//! # Channels
//!
//! One bounded channel (`inbox`) of `dispatcher::Cmd` (`INBOX`: 1,024 commands of 64 bytes,
//! allocated as they queue) from all connection threads (and the signal thread) to the
//! dispatcher. Its bound is back-pressure: a flooding client's reader blocks instead of
//! growing memory. The `send`s one socket read brings travel as one command (`engine::Held`).
//! HTTP calls and health checks carry a one-shot reply channel. Before a frame
//! is sent on, the connection thread charges it to its own rate limit (`gate`), so one
//! client's flood is refused at its own edge.
//!
//! # Library and binary
//!
//! The protocol is the `messenger` library (`src/lib.rs`): settings, the edge parsers and
//! their byte caps, room state, the `engine` that carries out every command, the outboxes,
//! origins, wildcard matching, tokens and the wording of log lines. It has no thread, channel
//! or clock of its own, so tests and the fuzz targets drive it from memory (`tests/model.rs`
//! checks it against a model). The modules below own the sockets, the threads and the clock.
#![forbid(unsafe_code)]

mod cli;
mod connection;
mod connlog;
mod dispatcher;
mod gate;
mod host;
mod http;
mod inbox;
mod keyfile;
mod logger;
mod notify;
mod proxy;
mod read_ahead;
mod reader;
mod relay;
mod routes;
mod server;
mod socket;
#[cfg(test)]
mod test_stream;
mod token_command;
mod upgrade;
mod web_origins;

use messenger::{
    access_token, acl, caps, config, engine, error, frame_scan, logline, outbox, ratelimit,
    request, rooms, upstream, wire,
};

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cli::{say, Command};
use config::Config;
use connection::Shared;
use dispatcher::Heartbeat;
use engine::{Engine, INBOX};
use notify::Notifier;

/// How long the last log lines may take to reach stderr before the process exits anyway.
const LAST_WORDS: Duration = Duration::from_millis(200);

/// The signal thread's stack: it only waits for signals and sends one command.
const SIGNAL_STACK: usize = 64 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("token") => token_command::main(args.into_iter().skip(1)),
        Some("key") => keyfile::main(&args[1..]),
        _ => match cli::parse(&args) {
            Ok(Command::Print(text)) => {
                cli::print(&text);
                0
            }
            Ok(Command::Check(config, file)) => check(&config, file),
            Ok(Command::Serve(config)) => run(config),
            Err(e) => {
                say(&format!("messenger: {e}"));
                2
            }
        },
    };
    std::process::exit(code);
}

/// `messenger check-config`: the settings passed their checks; print them and the key file's
/// state. Exit 2 when the server would refuse to start for its key.
fn check(config: &Config, file: Option<PathBuf>) -> i32 {
    cli::print(config::effective(config).trim_end());
    let (key, ok) = keyfile::describe(config);
    cli::print(&key);
    let source = file.map_or_else(
        || "built-in defaults and flags".to_owned(),
        |f| format!("configuration file {}", f.display()),
    );
    if ok {
        say(&format!("messenger: {source}: settings are valid"));
        0
    } else {
        say(&format!(
            "messenger: {source}: the server would not start: {key}"
        ));
        2
    }
}

/// Runs the server; returns the process exit code.
fn run(config: Config) -> i32 {
    // Listening first: a client may connect (into the backlog) while the rest starts up.
    let listener = match TcpListener::bind(config.listen) {
        Ok(listener) => listener,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            say(&format!(
                "messenger: cannot listen on {}: address in use (is another messenger running?)",
                config.listen
            ));
            return 1;
        }
        Err(e) => {
            say(&format!(
                "messenger: cannot listen on {}: {e}",
                config.listen
            ));
            return 1;
        }
    };
    if let Err(e) = logger::init(logger::level(&config.log_level)) {
        say(&format!("messenger: logging: {e}"));
    }
    let addr = listener
        .local_addr()
        .map_or_else(|_| config.listen.to_string(), |a| a.to_string());
    if !config.listen.ip().is_loopback() {
        log::warn!("listening on non-loopback address {addr}: other hosts can reach this server");
    }
    let key = match keyfile::for_server(&config) {
        Ok(key) => key,
        Err(why) => {
            say(&format!("messenger: {why}"));
            return 1;
        }
    };
    let notifier = Notifier::from_env().map(Arc::new);
    let (tx, rx) = inbox::bounded(INBOX);
    let engine = Engine::new(&config, Instant::now());
    let heartbeat = watchdog(notifier.clone());
    let changed = config::differences(&config);
    // From here on `listen` is the address listened on (its port when 0 was asked for): the
    // chat page's own origin names it.
    let mut config = config;
    if let Ok(bound) = listener.local_addr() {
        config.listen = bound;
    }
    let shared = Arc::new(Shared {
        web: web_origins::WebOrigins::new(&config),
        http_bucket: std::sync::Mutex::new(gate::http_bucket(&config)),
        callsign: config.callsign.as_str().into(),
        config,
        tx: tx.clone(),
        started: Instant::now(),
        connections: AtomicUsize::new(0),
        next_conn: AtomicU64::new(1),
        stopping: AtomicBool::new(false),
        key: key.key,
        tokens_refused: AtomicU64::new(0),
        rate_limited: AtomicU64::new(0),
    });
    // The process ends on the dispatcher's thread, once it has said goodbye to every client.
    let started = shared.started;
    let dispatcher = std::thread::Builder::new()
        .name("dispatcher".into())
        .spawn(move || {
            let _ends_the_process = AbortOnUnwind;
            dispatcher::run(engine, rx, heartbeat);
            logline::stopped(started.elapsed());
            logger::flush(LAST_WORDS);
            std::process::exit(0)
        });
    if dispatcher.is_err() {
        say("messenger: cannot start threads");
        return 1;
    }
    if let Err(e) = watch_signals(shared.clone(), notifier.clone()) {
        log::warn!("signal handling unavailable: {e}");
    }
    cli::print(&format!("listening on {addr}"));
    if let Some(notifier) = &notifier {
        notifier.send(&format!("READY=1\nSTATUS=listening on {addr}"));
    }
    logline::started(&addr, &cli::version(), &key.state, &changed);
    // This thread is the acceptor: a thread of its own would cost its stack's pages and a
    // malloc arena while this one waited.
    server::accept(listener, shared)
}

/// Ends the process if the dispatcher's thread unwinds from a panic, as the release build
/// (`panic = "abort"`) does for any panic: a debug build would otherwise go on accepting
/// connections that no one serves.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::process::abort();
        }
    }
}

/// The dispatcher's heartbeat for systemd's watchdog, when `WatchdogSec=` is set.
fn watchdog(notifier: Option<Arc<Notifier>>) -> Option<Heartbeat> {
    let every = notify::watchdog_interval()?;
    let notifier = notifier?;
    Some(Heartbeat {
        every,
        beat: Box::new(move || notifier.send("WATCHDOG=1")),
    })
}

/// SIGTERM and SIGINT stop the server; SIGHUP is logged and ignored.
fn watch_signals(shared: Arc<Shared>, notifier: Option<Arc<Notifier>>) -> std::io::Result<()> {
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
                if let Some(notifier) = &notifier {
                    notifier.send("STOPPING=1");
                }
                let name = if signal == SIGTERM {
                    "SIGTERM"
                } else {
                    "SIGINT"
                };
                logline::stopping(name, shared.connections.load(Ordering::Relaxed));
                shared.stopping.store(true, Ordering::Relaxed);
                let _ = shared.tx.send(engine::Command::Shutdown);
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{BATCH, SHUTDOWN_GRACE, SWEEP, WORK};
    use outbox::{RETRY_MAX, RETRY_MIN};

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
                "(`INBOX`: {} commands of {} bytes,",
                thousands(INBOX),
                std::mem::size_of::<dispatcher::Cmd>()
            ),
            format!("`BATCH` ({BATCH})"),
            format!("`RETRY_MIN` ({} ms)", RETRY_MIN.as_millis()),
            format!("`RETRY_MAX` ({} ms)", RETRY_MAX.as_millis()),
            format!("`SWEEP` ({} s)", SWEEP.as_secs()),
            format!("`WORK` ({})", thousands(WORK)),
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
}
