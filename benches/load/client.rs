//! The load tool's clients: connecting (Thunder Messenger API or plain broadcast), the
//! reader thread every client runs, and the sender loop.
//!
//! Each client is one blocking tungstenite connection. The reader thread owns the
//! `WebSocket` the handshake returned and only reads; a sender writes through a second
//! `WebSocket` over a clone of the same socket and only writes. Acknowledgements travel from
//! the reader to its sender through [`Shared`]. The reader is built to cost little per
//! delivery: an 8 KiB read buffer, no JSON parsing (it scans the frame from the end for the
//! `~sender:seq:nanos;` marker the sender put in the message text), and no allocation.

use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{ClientRequestBuilder, Message, WebSocket};

use crate::stats::Histogram;

/// Where the clients connect and which protocol they speak.
#[derive(Clone)]
pub struct Target {
    /// `ws://host:port/path`.
    pub url: String,
    /// Plain broadcast (the baseline server) instead of the Messenger API.
    pub baseline: bool,
    /// Method prefix, `Messenger.1`.
    pub prefix: String,
    /// Read buffer of each client connection (8 KiB).
    pub read_buffer: usize,
}

impl Target {
    fn host_port(&self) -> &str {
        let rest = self.url.strip_prefix("ws://").unwrap_or(&self.url);
        rest.split('/').next().unwrap_or(rest)
    }
}

/// Read buffer of every client connection: small, because tungstenite zeroes the spare
/// capacity before each `read` and a large buffer would make the tool measure itself.
pub const READ_BUFFER: usize = 8 * 1024;

fn config(read_buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(128 * 1024)
}

/// One connected client, set up and not yet reading in a thread.
pub struct Client {
    pub ws: WebSocket<TcpStream>,
    /// The membership token (Messenger API only).
    pub roomid: Option<String>,
    next_id: u64,
}

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl Client {
    /// Connects and upgrades; for the Messenger API also joins `room` as `user` and registers
    /// `message` with id `<roomid>.client.events`.
    pub fn connect(target: &Target, user: &str, room: Option<&str>) -> io::Result<Client> {
        let stream = TcpStream::connect(target.host_port())?;
        stream.set_nodelay(true)?;
        let uri = target.url.parse().map_err(err)?;
        let mut request = ClientRequestBuilder::new(uri);
        if !target.baseline {
            request = request.with_sub_protocol("notification");
        }
        let (ws, _) = tungstenite::client::client_with_config(
            request,
            stream,
            Some(config(target.read_buffer)),
        )
        .map_err(err)?;
        let mut client = Client {
            ws,
            roomid: None,
            next_id: 1,
        };
        if let (false, Some(room)) = (target.baseline, room) {
            let roomid = client.join(target, user, room)?;
            let id = format!("{roomid}.client.events");
            client.call(target, "register", json!({"event": "message", "id": id}))?;
            client.roomid = Some(roomid);
        }
        Ok(client)
    }

    /// `join`; accepts both result shapes (`{"roomid": ..}` and, with `compat r5`, a string).
    pub fn join(&mut self, target: &Target, user: &str, room: &str) -> io::Result<String> {
        let result = self.call(target, "join", json!({"user": user, "room": room}))?;
        let roomid = result.get("roomid").unwrap_or(&result);
        roomid
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| err(format!("join result {result}")))
    }

    /// One request, waiting for its response (events arriving meanwhile are skipped).
    pub fn call(&mut self, target: &Target, method: &str, params: Value) -> io::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let method = format!("{}.{method}", target.prefix);
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.ws
            .send(Message::text(request.to_string()))
            .map_err(err)?;
        loop {
            let Message::Text(text) = self.ws.read().map_err(err)? else {
                continue;
            };
            let mut reply: Value = serde_json::from_str(&text).map_err(err)?;
            if reply.get("id").and_then(Value::as_u64) != Some(id) {
                continue;
            }
            if let Some(e) = reply.get("error") {
                return Err(err(format!("{method}: {e}")));
            }
            return Ok(reply["result"].take());
        }
    }

    /// A second handle on the socket, for shutting it down from another thread.
    pub fn raw(&self) -> io::Result<TcpStream> {
        self.ws.get_ref().try_clone()
    }

    /// A writing-only `WebSocket` over a clone of the socket, for a sender thread.
    pub fn writer(&self) -> io::Result<WebSocket<TcpStream>> {
        Ok(WebSocket::from_raw_socket(
            self.raw()?,
            Role::Client,
            Some(config(READ_BUFFER)),
        ))
    }
}

/// What a client's reader and its sender share; one per client, on its own cache lines.
#[repr(align(128))]
#[derive(Default)]
pub struct Shared {
    /// Deliveries received (the reader's count, published on every delivery).
    pub delivered: AtomicU64,
    /// When the last delivery arrived, nanoseconds since the run's epoch.
    pub last_ns: AtomicU64,
    /// Requests written by the sender.
    pub sent: AtomicU64,
    /// Sends acknowledged: responses (Messenger API) or the sender's own echo (baseline).
    pub acked: AtomicU64,
    /// Error responses.
    pub errors: AtomicU64,
    /// Set while the sender sleeps for acknowledgements; the reader wakes it at low water.
    pub waiting: AtomicBool,
    pub low_water: AtomicU64,
    pub sender: OnceLock<Thread>,
}

impl Shared {
    fn ack(&self) {
        let acked = self.acked.fetch_add(1, Ordering::AcqRel) + 1;
        if self.waiting.load(Ordering::Acquire)
            && self.sent.load(Ordering::Acquire).saturating_sub(acked)
                <= self.low_water.load(Ordering::Relaxed)
        {
            if let Some(t) = self.sender.get() {
                t.unpark();
            }
        }
    }
}

/// What a reader found, handed back when its socket closes.
pub struct ReaderReport {
    pub latency: Histogram,
    /// Deliveries whose sequence number was not the next one from that sender.
    pub reorder: u64,
}

/// Parses the `~sender:seq:nanos;` marker, searching from the end of the frame.
fn marker(frame: &[u8]) -> Option<(usize, u64, u64)> {
    let start = frame.iter().rposition(|&b| b == b'~')? + 1;
    let mut fields = [0u64; 3];
    let mut i = 0;
    for &b in &frame[start..] {
        match b {
            b'0'..=b'9' => fields[i] = fields[i] * 10 + u64::from(b - b'0'),
            b':' if i < 2 => i += 1,
            b';' if i == 2 => return Some((fields[0] as usize, fields[1], fields[2])),
            _ => return None,
        }
    }
    None
}

/// Reads until the socket closes. `me` is this client's sender index, if it sends;
/// `senders` the number of senders in the run.
pub fn read_loop(
    mut ws: WebSocket<TcpStream>,
    shared: &Shared,
    me: Option<usize>,
    senders: usize,
    baseline: bool,
    epoch: Instant,
) -> ReaderReport {
    let mut latency = Histogram::default();
    let mut next_seq = vec![0u64; senders];
    let mut reorder = 0;
    let mut delivered = 0;
    while let Ok(msg) = ws.read() {
        let Message::Text(text) = msg else { continue };
        let Some((from, seq, sent_ns)) = marker(text.as_bytes()) else {
            // A response to a send: the acknowledgement.
            if text.contains("\"error\"") {
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
            shared.ack();
            continue;
        };
        let now = epoch.elapsed().as_nanos() as u64;
        latency.record(now.saturating_sub(sent_ns));
        match next_seq.get_mut(from) {
            Some(n) if *n == seq => *n += 1,
            Some(n) => {
                reorder += 1;
                *n = seq + 1;
            }
            None => reorder += 1,
        }
        delivered += 1;
        shared.delivered.store(delivered, Ordering::Release);
        shared.last_ns.store(now, Ordering::Release);
        if baseline && me == Some(from) {
            shared.ack();
        }
    }
    ReaderReport { latency, reorder }
}

/// How one sender sends.
pub struct SendPlan {
    /// The sender's index (0..senders), written into every message.
    pub index: usize,
    pub roomid: Option<String>,
    /// Messages to send; `None`: until `stop`.
    pub count: Option<u64>,
    /// Messages per second; 0: flat out.
    pub rate: f64,
    /// Delay before the first message, so paced senders take turns instead of all sending
    /// at the same instant (that would be a burst, not a rate).
    pub phase: Duration,
    /// Most un-acknowledged sends at once; 0: no limit (flood).
    pub inflight: u64,
    /// Bytes of padding before the marker.
    pub pad: usize,
}

/// What a sender did.
pub struct SenderReport {
    pub sent: u64,
    /// When its first message was written, nanoseconds since the epoch.
    pub first_ns: u64,
}

fn message(target: &Target, plan: &SendPlan, id: u64, seq: u64, epoch: Instant) -> String {
    let now = epoch.elapsed().as_nanos();
    let text = format!("{:x<pad$}~{}:{seq}:{now};", "", plan.index, pad = plan.pad);
    match &plan.roomid {
        // The baseline delivers what it is sent: shape it like a Messenger event, so both
        // servers move the same bytes per delivery.
        None => format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"0123456789abcdef0123.client.events.message\",\
             \"params\":{{\"user\":\"u{}\",\"message\":\"{text}\"}}}}",
            plan.index
        ),
        Some(roomid) => format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"{}.send\",\
             \"params\":{{\"roomid\":\"{roomid}\",\"message\":\"{text}\"}}}}",
            target.prefix
        ),
    }
}

/// How many messages the sender may write now, and how long to wait if none.
fn allowance(plan: &SendPlan, shared: &Shared, sent: u64, start: Instant) -> (u64, Duration) {
    let left = plan.count.map_or(u64::MAX, |c| c - sent);
    let window = match plan.inflight {
        0 => u64::MAX,
        n => n.saturating_sub(sent - shared.acked.load(Ordering::Acquire)),
    };
    let (due, wait) = if plan.rate > 0.0 {
        let elapsed = start.elapsed().as_secs_f64();
        let due = (elapsed * plan.rate).floor() as u64 + 1;
        let next = Duration::from_secs_f64(sent as f64 / plan.rate).saturating_sub(start.elapsed());
        (due.saturating_sub(sent), next)
    } else {
        (u64::MAX, Duration::ZERO)
    };
    (left.min(window).min(due).min(256), wait)
}

/// Sends until the plan's count is reached or `stop` is set.
pub fn send_loop(
    mut ws: WebSocket<TcpStream>,
    target: &Target,
    plan: &SendPlan,
    shared: &Shared,
    stop: &AtomicBool,
    epoch: Instant,
) -> io::Result<SenderReport> {
    shared.low_water.store(plan.inflight / 2, Ordering::Relaxed);
    let _ = shared.sender.set(thread::current());
    thread::sleep(plan.phase);
    let start = Instant::now();
    let first_ns = epoch.elapsed().as_nanos() as u64;
    let mut sent = 0u64;
    while !stop.load(Ordering::Acquire) && Some(sent) != plan.count {
        let (n, wait) = allowance(plan, shared, sent, start);
        if n == 0 {
            wait_for(shared, sent, wait);
            continue;
        }
        for _ in 0..n {
            let text = message(target, plan, sent + 1, sent, epoch);
            ws.write(Message::text(text)).map_err(err)?;
            sent += 1;
        }
        shared.sent.store(sent, Ordering::Release);
        ws.flush().map_err(err)?;
    }
    Ok(SenderReport { sent, first_ns })
}

/// Sleeps until the next message is due (rate) or acknowledgements come back (window).
fn wait_for(shared: &Shared, sent: u64, wait: Duration) {
    if !wait.is_zero() {
        thread::sleep(wait);
        return;
    }
    shared.waiting.store(true, Ordering::Release);
    let outstanding = sent - shared.acked.load(Ordering::Acquire);
    if outstanding > shared.low_water.load(Ordering::Relaxed) {
        thread::park_timeout(Duration::from_millis(5));
    }
    shared.waiting.store(false, Ordering::Release);
}

/// Ends a client's connection so its reader returns.
pub fn close(raw: &TcpStream) {
    let _ = raw.shutdown(Shutdown::Both);
}
