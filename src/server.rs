//! The acceptor: takes connections off the listening socket, refuses those beyond the limit
//! with 503, and gives each of the rest its own small-stack thread.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::connection::{self, Counted, Shared};
use crate::logline::{self, Throttle};

/// How long the acceptor waits after a failed accept (out of file descriptors or memory)
/// before it tries again, instead of spinning.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Accepts until the process ends.
pub fn accept(listener: TcpListener, shared: Arc<Shared>) -> ! {
    // One line a second at most for 503s, however many connections are refused.
    let mut busy = Throttle::default();
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                log::warn!("accept failed: {e}");
                std::thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        if shared.stopping.load(Ordering::Relaxed) {
            continue;
        }
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("TCP_NODELAY failed: {e}");
        }
        let open = shared.connections.fetch_add(1, Ordering::Relaxed);
        let guard = Counted(shared.clone());
        if open >= shared.config.max_connections {
            if let Some(count) = busy.hit(Instant::now()) {
                let limit = shared.config.max_connections;
                logline::refused_busy(stream.peer_addr().ok(), count, limit); // log: refusal
            }
            refuse_busy(stream);
            continue;
        }
        let spawned = std::thread::Builder::new()
            .name("connection".into())
            .stack_size(shared.config.thread_stack_size)
            .spawn(move || connection::serve(stream, guard));
        if let Err(e) = spawned {
            log::warn!("no thread for a new connection: {e}");
        }
    }
}

/// Answers 503 on the acceptor's own time, without blocking: whatever the client already
/// sent is read first, so closing does not reset the connection before it reads the answer.
fn refuse_busy(mut stream: TcpStream) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    let body = br#"{"error":"too many connections"}"#;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.shutdown(Shutdown::Write);
}
