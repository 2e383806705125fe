//! The operator's log, from the real binary's stderr: timestamped lines for start, each
//! connection opened and closed, refusals and stop at `info`, joins and leaves at `debug`; and
//! a closed or full stderr neither kills nor blocks the server (lines are dropped and counted
//! in `/health`).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Server, WAIT};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;

/// Sends SIGTERM and waits (at most `WAIT`) for the exit code.
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

/// Starts the server with stderr piped and read line by line into a channel.
fn logged(level: &str) -> (Server, mpsc::Receiver<String>) {
    let mut server = Server::start_with(&["--log-level", level], |cmd| {
        cmd.stderr(Stdio::piped());
    });
    let stderr = server.child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (server, rx)
}

/// Every line received until the server's stderr closed.
fn all_lines(rx: mpsc::Receiver<String>) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        lines.push(line);
    }
    lines
}

/// The lines received so far, appended to `seen`.
fn lines_so_far<'a>(rx: &mpsc::Receiver<String>, seen: &'a mut Vec<String>) -> &'a [String] {
    seen.extend(rx.try_iter());
    seen
}

/// `2025-06-01T12:34:56.789Z LEVEL ...`
fn stamped(line: &str) -> bool {
    let b = line.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        r.into_iter()
            .all(|i| b.get(i).is_some_and(u8::is_ascii_digit))
    };
    b.len() > 25
        && digits(0..4)
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && digits(20..23)
        && &line[23..25] == "Z "
}

fn find<'a>(lines: &'a [String], words: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.contains(words))
        .unwrap_or_else(|| panic!("no line with {words:?} in:\n{}", lines.join("\n")))
}

#[test]
fn info_tells_an_operator_what_happened() {
    let (mut server, rx) = logged("info");
    let mut client = server.client_with(
        &server.url("/jsonrpc"),
        &[("Origin", "https://app.example")],
    );
    let token = client.join("alice", "lobby");
    client.ok("send", json!({"roomid": token, "message": "hello"}));
    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    client.ws.close(Some(bye)).unwrap();
    assert_eq!(client.closed(), Some(1000), "the server answered the close");
    let upgrade = [
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let (status, _) = server.http_with("GET", "/jsonrpc?token=bogus.token", &upgrade, None);
    assert_eq!(status, 401);
    assert_eq!(terminate(&mut server), Some(0));
    let lines = all_lines(rx);
    println!("{}", lines.join("\n"));

    for line in &lines {
        assert!(stamped(line), "no timestamp: {line}");
        assert!(
            !line.contains("listening"),
            "'listening' is for stdout: {line}"
        );
    }
    let started = find(&lines, " INFO  messenger ");
    assert!(started.contains("started on 127.0.0.1:"), "{started}");
    assert!(started.contains("key file"), "{started}");
    assert!(started.contains("log_level=info"), "{started}");
    assert_eq!(lines.iter().filter(|l| l.contains("started on")).count(), 1);
    let open = find(&lines, "conn 1 open:");
    assert!(open.contains("path \"/jsonrpc\""), "{open}");
    assert!(open.contains("origin \"https://app.example\""), "{open}");
    let closed = find(&lines, "conn 1 closed:");
    assert!(closed.contains("client closed (1000)"), "{closed}");
    let http: Vec<&String> = lines.iter().filter(|l| l.contains("http closed")).collect();
    assert_eq!(
        http.len(),
        1,
        "one line for the refused request, none for the upgrade: {http:?}"
    );
    assert!(
        http[0].contains("1 request (\"GET /jsonrpc\"): answered"),
        "{http:?}"
    );
    let refusal = find(&lines, "with 401");
    assert!(refusal.contains("malformed token"), "{refusal}");
    find(&lines, "SIGTERM: stopping");
    assert!(
        lines.last().unwrap().contains("stopped after"),
        "the stop line is last"
    );
    assert!(
        !lines.iter().any(|l| l.contains("joined room")),
        "joins are debug"
    );
}

#[test]
fn debug_adds_joins_and_leaves_and_names_cannot_forge_lines() {
    let (mut server, rx) = logged("debug");
    let mut client = server.client();
    let token = client.join("eve\nINFO forged", "lobby");
    client.ok("leave", json!({"roomid": token}));
    drop(client);
    server.wait_health(|h| h["connections"] == 1);
    assert_eq!(terminate(&mut server), Some(0));
    let lines = all_lines(rx);
    let joined = find(&lines, "joined room \"lobby\"");
    assert!(joined.contains(r#"as "eve\nINFO forged""#), "{joined}");
    find(&lines, r#"left room "lobby""#);
    assert!(lines.iter().all(|l| stamped(l)), "{lines:?}");
    let closed = find(&lines, "conn 1 closed:");
    assert!(closed.contains("dropped without a close frame"), "{closed}");
}

/// A noisy client: joins, sends and leaves `n` times (each logs several trace lines).
fn noise(server: &Server, n: usize) {
    let mut noisy = server.client();
    for i in 0..n {
        let token = noisy.join("noisy", &format!("room-{i}"));
        noisy.ok("send", json!({"roomid": token, "message": "x".repeat(200)}));
        noisy.ok("leave", json!({"roomid": token}));
    }
}

#[test]
fn a_closed_stderr_neither_kills_nor_stops_the_server() {
    // Before: simple_logger's eprintln! panicked on the closed pipe and the daemon aborted.
    let mut server = Server::start_with(&["--log-level", "trace"], |cmd| {
        cmd.stderr(Stdio::piped());
    });
    drop(server.child.stderr.take());
    noise(&server, 200);
    assert!(server.child.try_wait().unwrap().is_none(), "still running");
    let health = server.wait_health(|h| h["log_dropped"].as_u64() > Some(0));
    println!("{health}");
    let mut bystander = server.client();
    bystander.join("bob", "quiet");
    assert_eq!(terminate(&mut server), Some(0));
}

#[test]
fn a_full_stderr_blocks_nobody() {
    // Before: a full pipe blocked whichever thread logged, the dispatcher included.
    let mut server = Server::start_with(&["--log-level", "trace"], |cmd| {
        cmd.stderr(Stdio::piped());
    });
    let _unread = server.child.stderr.take();
    std::thread::scope(|scope| {
        let flood = scope.spawn(|| noise(&server, 1500));
        let mut bystander = server.client();
        let token = bystander.join("bob", "quiet");
        let mut slowest = Duration::ZERO;
        for _ in 0..50 {
            let start = Instant::now();
            bystander.ok("send", json!({"roomid": token, "message": "ping"}));
            slowest = slowest.max(start.elapsed());
            std::thread::sleep(Duration::from_millis(10));
        }
        flood.join().unwrap();
        // A coarse guard: a blocked dispatcher would never answer at all.
        assert!(
            slowest < Duration::from_secs(2),
            "slowest round trip {slowest:?}"
        );
    });
    let health = server.wait_health(|h| h["log_dropped"].as_u64() > Some(0));
    println!("{health}");
    let start = Instant::now();
    assert_eq!(terminate(&mut server), Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "stopped despite stderr"
    );
}

#[test]
fn floods_of_refusals_are_a_line_a_second_with_a_count() {
    let args = [
        "--log-level",
        "info",
        "--max-messages-per-second",
        "0.5",
        "--message-burst",
        "2",
        "--max-connections",
        "2",
    ];
    let mut server = Server::start_with(&args, |cmd| {
        cmd.stderr(Stdio::piped());
    });
    let stderr = server.child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut early = Vec::new();
    let mut client = server.client();
    let mut limited = 0;
    for _ in 0..200 {
        if client.call("rooms", json!({})).get("error").is_some() {
            limited += 1;
        }
    }
    assert!(limited >= 190, "{limited}");
    // A second connection fills max_connections; then 50 more are refused with 503.
    let _second = server.client();
    for _ in 0..50 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut reply = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut reply);
        assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    }
    drop(client);
    drop(_second);
    // Until both readers have ended (a health check over the limit is refused meanwhile).
    let deadline = Instant::now() + WAIT;
    while !lines_so_far(&rx, &mut early)
        .iter()
        .any(|l| l.contains("conn 2 closed"))
    {
        assert!(Instant::now() < deadline, "no close lines: {early:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(terminate(&mut server), Some(0));
    let mut lines = early;
    lines.extend(all_lines(rx));
    let rate: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("rate limited"))
        .collect();
    assert!(
        !rate.is_empty() && rate.len() <= 5,
        "a line a second: {rate:?}"
    );
    let counted: u64 = rate
        .iter()
        .map(|l| {
            l.split("rate limited: ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
        })
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    let closed = find(&lines, "conn 1 closed:");
    let held: u64 = closed
        .split("; ")
        .nth(1)
        .map_or(0, |rest| rest.split(' ').next().unwrap().parse().unwrap());
    assert_eq!(
        counted + held,
        limited,
        "every refusal is counted once: {closed}"
    );
    let busy: Vec<&String> = lines.iter().filter(|l| l.contains("with 503")).collect();
    assert!(
        !busy.is_empty() && busy.len() <= 5,
        "a line a second: {busy:?}"
    );
}
