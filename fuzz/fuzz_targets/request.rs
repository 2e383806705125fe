//! Fuzzes the real request path on a connection thread's real stack: the fuzzer's input, as a
//! WebSocket text frame, goes through the edge (`engine::text_command`, both dialects) and as a
//! `POST /jsonrpc` body through `request::parse`, and whatever that makes is carried out by an
//! `Engine` (`Engine::apply`, then `work` and `flush`). All of it runs on one worker thread
//! spawned with `Config::default().thread_stack_size`, the stack every connection thread gets,
//! so input that recursed too deep would overflow it and crash the run. Seeds and the
//! dictionary (`fuzz/request.dict`) lean to deeply nested JSON in every place a request has a
//! value (`params`, `acl`, ids, names).
#![no_main]

use std::io;
use std::net::Shutdown;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use messenger::caps::Caps;
use messenger::config::Config;
use messenger::engine::{self, Command, Dialect, Engine};
use messenger::outbox::Socket;
use messenger::request::{self, Designators};

/// A client socket that takes everything.
struct Takes;

impl Socket for Takes {
    fn send_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        Ok(bytes.len())
    }

    fn shutdown(&mut self, _: Shutdown) {}
}

/// The worker's end: inputs in, a word back when each is done.
struct Worker {
    inputs: SyncSender<Vec<u8>>,
    done: Receiver<()>,
}

fn worker() -> &'static Mutex<Worker> {
    static WORKER: OnceLock<Mutex<Worker>> = OnceLock::new();
    WORKER.get_or_init(|| {
        let (inputs, rx) = sync_channel::<Vec<u8>>(0);
        let (tx, done) = sync_channel(0);
        std::thread::Builder::new()
            .name("connection".into())
            .stack_size(Config::default().thread_stack_size)
            .spawn(move || {
                for input in rx {
                    run(&input);
                    let _ = tx.send(());
                }
            })
            .expect("a worker thread");
        Mutex::new(Worker { inputs, done })
    })
}

/// One input through both dialects' edges and the POST path, into a fresh engine.
fn run(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let config = Config::default();
    let now = Instant::now();
    let mut engine = Engine::<Takes>::new(&config, now);
    let designators = Designators::new(config.callsign.as_str().into(), false, Caps::from(&config));
    let dialects = [
        (1, Dialect::Messenger(designators.clone())),
        (2, Dialect::Kurento(Caps::from(&config))),
    ];
    for (conn, dialect) in &dialects {
        let open = Command::Open {
            conn: *conn,
            socket: Takes,
            origin: None,
            kurento: dialect.is_kurento(),
            admin: true,
        };
        engine.apply::<()>(open, now);
        let cmd = match engine::text_command::<Takes, ()>(*conn, text, dialect) {
            Ok(cmd) => Some(cmd),
            Err(rejection) => engine::refused(*conn, rejection),
        };
        if let Some(cmd) = cmd {
            engine.apply(cmd, now);
        }
    }
    let http = Command::Http {
        call: Box::new(request::parse(text, &designators)),
        origin: None,
        admin: false,
        reply: (),
    };
    engine.apply(http, now);
    for conn in [1, 2] {
        engine.apply::<()>(Command::Gone { conn }, now);
    }
    while engine.work(now) {}
    engine.flush(now);
}

fuzz_target!(|data: &[u8]| {
    let worker = worker().lock().unwrap_or_else(|p| p.into_inner());
    worker.inputs.send(data.to_vec()).expect("the worker runs");
    worker.done.recv().expect("the worker answers");
});
