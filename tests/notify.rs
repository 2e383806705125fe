//! systemd's notify protocol against a fake notify socket: the real binary says READY=1 once
//! it accepts, WATCHDOG=1 from its dispatcher at half of WATCHDOG_USEC (also when idle), and
//! STOPPING=1 on SIGTERM; an abstract (`@name`) socket works too.

mod support;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Server, WAIT};

/// The next datagram, or None after `WAIT`.
fn next(socket: &UnixDatagram) -> Option<String> {
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Datagrams until one contains `state`; fails after `WAIT`.
fn until(socket: &UnixDatagram, state: &str) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Some(message) = next(socket) else { break };
        let done = message.lines().any(|l| l == state);
        seen.push(message);
        if done {
            return seen;
        }
    }
    panic!("no {state} within {WAIT:?}; got {seen:?}");
}

fn terminate(server: &mut Server) -> Option<i32> {
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status.code();
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn ready_watchdog_and_stopping_reach_systemd() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("notify-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut server = Server::start_with(&[], |cmd| {
        cmd.env("NOTIFY_SOCKET", &path)
            .env("WATCHDOG_USEC", "200000")
            .env_remove("WATCHDOG_PID");
    });
    let first = until(&socket, "READY=1");
    assert_eq!(first.len(), 1, "READY=1 comes first: {first:?}");
    assert!(
        first[0].contains("STATUS=listening on 127.0.0.1:"),
        "{first:?}"
    );
    // Idle server: the dispatcher still beats about every 100 ms.
    let start = Instant::now();
    for _ in 0..5 {
        until(&socket, "WATCHDOG=1");
    }
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    server.health();
    let before_stop = until(&socket, "WATCHDOG=1");
    assert!(
        before_stop.iter().all(|m| m == "WATCHDOG=1"),
        "{before_stop:?}"
    );
    assert_eq!(terminate(&mut server), Some(0));
    until(&socket, "STOPPING=1");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn an_abstract_socket_and_a_foreign_watchdog_pid() {
    let name = format!("messenger-notify-test-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(600)))
        .unwrap();
    // WATCHDOG_PID names another process: the watchdog is not ours to feed.
    let mut server = Server::start_with(&[], |cmd| {
        cmd.env("NOTIFY_SOCKET", format!("@{name}"))
            .env("WATCHDOG_USEC", "100000")
            .env("WATCHDOG_PID", "1");
    });
    let ready = next(&socket).expect("READY=1 over the abstract socket");
    assert!(ready.starts_with("READY=1"), "{ready}");
    assert_eq!(
        next(&socket),
        None,
        "no WATCHDOG=1 for another pid's watchdog"
    );
    assert_eq!(terminate(&mut server), Some(0));
    socket.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(next(&socket).as_deref(), Some("STOPPING=1"));
}
