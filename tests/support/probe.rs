//! Measuring the server from outside while it is attacked: its VmRSS and CPU time from
//! `/proc/PID`, a bystander client's round-trip latencies, raw WebSocket sockets that write
//! frames by hand and read what really arrives, and a keep-alive HTTP client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{parse_response, Server, WAIT};

/// A number field of the server's `/proc/PID/status` (`VmRSS:`, `Threads:`), units dropped.
fn status_field(server: &Server, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .expect("the server is running");
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /proc/PID/status"))
}

/// The server's resident memory, in KiB (`VmRSS` in `/proc/PID/status`).
pub fn vmrss_kib(server: &Server) -> u64 {
    status_field(server, "VmRSS:")
}

/// The server's threads (`Threads` in `/proc/PID/status`).
pub fn threads(server: &Server) -> usize {
    status_field(server, "Threads:") as usize
}

/// CPU time the server has used so far (user + system), in milliseconds. `/proc/PID/stat`
/// counts in USER_HZ ticks, which Linux fixes at 100 a second for user space.
pub fn cpu_ms(server: &Server) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.child.id()))
        .expect("the server is running");
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the comm.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks * 10
}

/// How often the server's thread named `name` has gone to sleep and woken up so far
/// (`voluntary_ctxt_switches` of its task): a thread that waits on a timer counts each tick.
pub fn wakeups(server: &Server, name: &str) -> u64 {
    let tasks = format!("/proc/{}/task", server.child.id());
    for task in std::fs::read_dir(tasks).expect("the server is running") {
        let path = task.unwrap().path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).unwrap();
        return status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("voluntary_ctxt_switches");
    }
    panic!("no thread named {name}");
}

/// Round-trip times a bystander measured.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latency {
    /// The figures of some durations (at least one).
    pub fn of(mut samples: Vec<Duration>) -> Latency {
        assert!(!samples.is_empty(), "nothing was timed");
        samples.sort();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len());
            samples[i - 1]
        };
        Latency {
            count: samples.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: *samples.last().unwrap(),
        }
    }
}

/// A well-behaved client on its own thread, timing `exists` round trips until finished.
pub struct Bystander {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Duration>>>,
    thread: JoinHandle<()>,
}

impl Bystander {
    /// Connects (before the attack starts) and begins timing at once.
    pub fn start(server: &Server) -> Bystander {
        let mut client = server.client();
        client.ok("exists", json!({"method": "join"}));
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (flag, out) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let started = Instant::now();
                client.ok("exists", json!({"method": "join"}));
                out.lock().unwrap().push(started.elapsed());
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Bystander {
            stop,
            samples,
            thread,
        }
    }

    /// Stops timing. A round trip that got no answer within `WAIT` counts as `WAIT`.
    pub fn finish(self) -> Latency {
        self.stop.store(true, Ordering::Relaxed);
        let answered = self.thread.join().is_ok();
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if !answered {
            samples.push(WAIT);
        }
        Latency::of(samples)
    }
}

/// One client frame with any opcode and payload, masked as RFC 6455 asks of clients or
/// unmasked as Thunder's LinkType sends them.
pub fn frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let bit = if masked { 0x80 } else { 0 };
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(bit | n as u8),
        n if n <= 65535 => {
            out.push(bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if !masked {
        out.extend_from_slice(payload);
        return out;
    }
    let mask = [7u8, 1, 9, 3];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// A WebSocket on a plain socket: the upgrade and every frame written by hand, and every
/// byte the server sends read as it is.
pub struct RawWs {
    pub stream: TcpStream,
}

impl RawWs {
    /// Upgrades on `path` with extra request header lines (each ending in `\r\n`).
    pub fn connect(server: &Server, path: &str, extra: &str) -> RawWs {
        Self::upgrade(
            TcpStream::connect(("127.0.0.1", server.port)).unwrap(),
            path,
            extra,
        )
    }

    /// Like `connect`, with a small receive buffer so that a client that stops reading
    /// backs the server up after a few KiB instead of a few MiB.
    pub fn connect_small(server: &Server, path: &str) -> RawWs {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], server.port).into();
        socket.connect(&addr.into()).unwrap();
        Self::upgrade(socket.into(), path, "")
    }

    fn upgrade(mut stream: TcpStream, path: &str, extra: &str) -> RawWs {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let port = stream.peer_addr().unwrap().port();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).expect("an upgrade response");
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        RawWs { stream }
    }

    /// Writes one masked frame.
    pub fn send(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(&frame(opcode, payload, true))
    }

    /// Writes one masked text frame.
    pub fn text(&mut self, text: &str) -> std::io::Result<()> {
        self.send(0x1, text.as_bytes())
    }

    /// Reads everything until the server ends the connection (or `WAIT` passes quietly).
    pub fn read_to_end(&mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        while let Ok(n) = self.stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&chunk[..n]);
        }
        bytes
    }
}

/// Splits server bytes into whole unmasked frames, (opcode, payload). Fails if the bytes
/// end inside a frame, if anything follows a close frame, or if a header is impossible.
pub fn parse_frames(bytes: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, String> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if frames.last().is_some_and(|(op, _)| *op == 0x8) {
            return Err(format!("{} bytes after the close frame", bytes.len() - at));
        }
        let head = bytes.get(at..at + 2).ok_or("a cut frame header")?;
        let opcode = head[0] & 0x0f;
        if head[0] & 0x70 != 0 || ![0x0, 0x1, 0x2, 0x8, 0x9, 0xa].contains(&opcode) {
            return Err(format!("not a frame header at byte {at}: {head:02x?}"));
        }
        if head[1] & 0x80 != 0 {
            return Err(format!("a masked server frame at byte {at}"));
        }
        let (len, skip) = match head[1] & 0x7f {
            126 => {
                let b = bytes.get(at + 2..at + 4).ok_or("a cut length")?;
                (u16::from_be_bytes([b[0], b[1]]) as usize, 4)
            }
            127 => {
                let b = bytes.get(at + 2..at + 10).ok_or("a cut length")?;
                (u64::from_be_bytes(b.try_into().unwrap()) as usize, 10)
            }
            n => (n as usize, 2),
        };
        let start = at + skip;
        let payload = bytes
            .get(start..start.saturating_add(len))
            .ok_or_else(|| format!("a frame of {len} bytes cut after {}", bytes.len() - start))?;
        frames.push((opcode, payload.to_vec()));
        at = start + len;
    }
    Ok(frames)
}

/// A keep-alive HTTP connection for many requests in a row.
pub struct HttpConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl HttpConn {
    pub fn connect(server: &Server) -> HttpConn {
        let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        HttpConn {
            stream,
            buf: Vec::new(),
        }
    }

    /// `POST /jsonrpc` with `body`; (status, body). Status 0 if the server closed.
    pub fn post(&mut self, body: &str) -> (u16, String) {
        let request = format!(
            "POST /jsonrpc HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.stream.peer_addr().map_or(0, |a| a.port()),
            body.len()
        );
        let (status, body, _) = self.raw(&request);
        (status, body)
    }

    /// Any request written as given; (status, body, head). A 101's head ends the response.
    pub fn raw(&mut self, request: &str) -> (u16, String, String) {
        if self.stream.write_all(request.as_bytes()).is_err() {
            return (0, String::new(), String::new());
        }
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let len: usize = head
                    .to_ascii_lowercase()
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if self.buf.len() >= end + 4 + len {
                    let text: Vec<u8> = self.buf.drain(..end + 4 + len).collect();
                    let (status, body) = parse_response(&String::from_utf8_lossy(&text));
                    return (status, body, head);
                }
            }
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return (0, String::new(), String::new()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}
