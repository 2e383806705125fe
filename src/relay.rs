//! Relay mode over WebSocket (`upstream` set): one client connection's link to Thunder. The
//! reader thread routes each text frame (`upstream::route`); what is Thunder's is written,
//! verbatim, on one upstream WebSocket per client connection, opened on first need with the
//! client's path, query (`?token=`), subprotocol and `Origin`. One more thread, started with
//! the link, owns the upstream's read side: it hands each frame from Thunder to the dispatcher
//! (`Command::Relayed`), which queues it in the client's outbox in order with everything else
//! the client is sent, and it answers relayed requests Thunder leaves unanswered past
//! `upstream_timeout` with Thunder's unavailable error (late answers are dropped). Thunder
//! closing the link closes the client (1001); the client closing drops the link, which shuts
//! the upstream socket, and the thread ends. The dispatcher never touches the upstream socket,
//! and writes to it wait at most `upstream_timeout` on this client's own reader thread.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::inbox::Sender;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Error as WsError, Message, WebSocket};

use crate::config::Config;
use crate::connection::Shared;
use crate::dispatcher::Cmd;
use crate::engine::{self, Command, Dialect};
use crate::error::RpcError;
use crate::gate;
use crate::http::{Head, HeadError};
use crate::proxy;
use crate::request;
use crate::rooms::ConnId;
use crate::upstream::{self, Late, Pending, Route, Waiting};
use crate::wire;

/// What a client's upgrade request said that its upstream WebSocket repeats.
pub struct RelayHead {
    /// The path and query, as sent (`/jsonrpc?token=...`).
    pub target: String,
    /// `Sec-WebSocket-Protocol` as offered.
    pub protocols: Option<String>,
    pub origin: Option<String>,
    /// The path names another callsign (`/jsonrpc/DeviceInfo`): every frame is Thunder's.
    pub directed: bool,
}

impl RelayHead {
    /// For an upgrade on a JSON-RPC path in relay mode; `None` without relay.
    pub fn new(head: &Head, config: &Config, directed: bool) -> Option<Box<RelayHead>> {
        config.upstream_addr()?;
        let target = match &head.query {
            Some(query) => format!("{}?{query}", head.path),
            None => head.path.clone(),
        };
        Some(Box::new(RelayHead {
            target,
            protocols: head.header("sec-websocket-protocol").map(str::to_owned),
            origin: head.header("origin").map(str::to_owned),
            directed,
        }))
    }
}

/// What the reader does with a text frame in relay mode.
pub enum Taken {
    /// Serve it here, as without relay.
    Local,
    /// Relayed (or refused); this command, if any, goes to the dispatcher too.
    Handled(Option<Cmd>),
}

/// The link's state both its threads see.
struct State {
    pending: Mutex<Pending>,
    /// The client side is gone: the upstream thread ends without a word.
    dropped: AtomicBool,
    /// The upstream thread has ended (Thunder closed or failed).
    ended: AtomicBool,
}

/// One client connection's upstream WebSocket, held by its reader thread; dropping it shuts
/// the upstream socket, which ends the upstream thread.
pub struct Link {
    writer: Writer,
    /// The state of the masks of the frames written (xorshift, seeded from the OS).
    mask: u64,
    socket: TcpStream,
    state: Arc<State>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.state.dropped.store(true, Ordering::Relaxed);
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

/// The upstream socket's write side, shared by the reader thread (requests) and the upstream
/// thread (tungstenite's pongs and close replies): one whole frame per write, under the lock.
#[derive(Clone)]
struct Writer(Arc<Mutex<TcpStream>>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut socket = self.0.lock().map_err(|_| io::Error::other("poisoned"))?;
        socket.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A client's text frame: masked, as RFC 6455 asks of a client (Thunder reads either).
fn client_frame(text: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(wire::header_len(text.len()) + 4 + text.len());
    wire::frame_header(&mut frame, wire::TEXT, text.len());
    frame[1] |= 0x80; // the mask bit
    frame.extend_from_slice(&mask);
    frame.extend(text.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

/// The upstream socket as the upstream thread's tungstenite sees it.
struct Upstream {
    read: TcpStream,
    write: Writer,
}

impl Read for Upstream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read.read(buf)
    }
}

impl Write for Upstream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Routes one text frame of a relaying connection: `Taken::Local` for what is served here;
/// else relays it (opening the link on first need) or answers why not. `allowed`: the frame
/// took a token from the connection's rate limit. Out of line and cold: connections that
/// never relay do not carry its frame.
#[cold]
#[inline(never)]
pub fn text(
    link: &mut Option<Box<Link>>,
    head: &RelayHead,
    text: &str,
    allowed: bool,
    conn: ConnId,
    dialect: &Dialect,
    shared: &Shared,
) -> Taken {
    let Dialect::Messenger(names) = dialect else {
        return Taken::Local;
    };
    let route = upstream::route(text, names, head.directed);
    if route == Route::Local {
        return Taken::Local;
    }
    let id = request::envelope(text).ok().and_then(|raw| raw.id);
    if !allowed {
        return Taken::Handled(id.and_then(|id| gate::over_rate(conn, id, shared)));
    }
    let config = &shared.config;
    match relay(link, head, text, id.as_deref(), route, conn, shared) {
        Ok(()) if route == Route::Both => {
            // Carried out here too, unanswered: Thunder's answer is the one the client gets.
            let local = engine::text_command(conn, text, dialect).ok();
            Taken::Handled(local.map(|cmd| match cmd {
                Command::Call { conn, mut call } => {
                    call.id = None;
                    Command::Call { conn, call }
                }
                Command::Send {
                    conn,
                    token,
                    message,
                    plain,
                    ..
                } => Command::Send {
                    conn,
                    id: None,
                    token,
                    message,
                    plain,
                },
                other => other,
            }))
        }
        Ok(()) => Taken::Handled(None),
        Err(error) => {
            let text = id.map(|id| wire::error(&id, &error, config.compat));
            Taken::Handled(text.map(|text| Command::Relayed { conn, text }))
        }
    }
}

/// Writes `text` upstream, holding `id` for its answer; the error for the client when it
/// cannot go.
fn relay(
    link: &mut Option<Box<Link>>,
    head: &RelayHead,
    text: &str,
    id: Option<&str>,
    route: Route,
    conn: ConnId,
    shared: &Shared,
) -> Result<(), RpcError> {
    let config = &shared.config;
    if link.is_none() {
        let opened = open(head, conn, shared).map_err(|why| {
            log::info!("connection {conn}: no relay to Thunder: {why}"); // log: relay
            RpcError::Unavailable(why)
        })?;
        *link = Some(opened);
    }
    let Some(up) = link.as_mut() else {
        return Err(RpcError::Unavailable("no link".into()));
    };
    if up.state.ended.load(Ordering::Relaxed) {
        return Err(RpcError::Unavailable(
            "Thunder closed this connection's link".into(),
        ));
    }
    if let Some(id) = id.filter(|id| *id != "null") {
        let waiting = Waiting {
            deadline: Instant::now() + config.upstream_timeout,
            merge: route == Route::MergeStatus,
        };
        let held = up
            .state
            .pending
            .lock()
            .is_ok_and(|mut p| p.hold(id, waiting));
        if !held {
            return Err(RpcError::Unavailable(format!(
                "at most {} relayed requests may wait for Thunder's answers on one connection (max_upstream_pending); wait for them",
                config.max_upstream_pending
            )));
        }
    }
    up.mask ^= up.mask << 13;
    up.mask ^= up.mask >> 7;
    up.mask ^= up.mask << 17;
    let frame = client_frame(text.as_bytes(), (up.mask as u32).to_le_bytes());
    if let Err(e) = up.writer.write(&frame) {
        if let (Some(id), Ok(mut pending)) = (id, up.state.pending.lock()) {
            pending.forget(id);
        }
        let _ = up.socket.shutdown(Shutdown::Both);
        return Err(RpcError::Unavailable(format!(
            "Thunder at {} did not take the request: {e}",
            config.upstream
        )));
    }
    Ok(())
}

/// Opens the link: connects (within `upstream_timeout`), repeats the client's upgrade
/// request, and starts the thread that reads Thunder's frames. The error's text says why not.
/// The handshake is written and checked here rather than by tungstenite's client, whose
/// request builder and random masks cost 54,144 bytes of the x86_64 release binary (measured at
/// commit 3067c52: 1,111,328 with them, 1,057,184 without); Thunder's frames
/// are then read by tungstenite in the server role with unmasked frames accepted (a server
/// never masks), and its pongs and close replies go out unmasked, as Thunder accepts from
/// its own C++ client.
#[inline(never)]
fn open(head: &RelayHead, conn: ConnId, shared: &Shared) -> Result<Box<Link>, String> {
    let config = &shared.config;
    let addr = config.upstream_addr().ok_or("relay mode is off")?;
    let timeout = config.upstream_timeout;
    let deadline = Instant::now() + timeout;
    let unreachable =
        |e: &dyn std::fmt::Display| format!("Thunder at {addr} is not reachable: {e}");
    let mut socket = TcpStream::connect_timeout(&addr, timeout).map_err(|e| unreachable(&e))?;
    let _ = socket.set_nodelay(true);
    socket
        .set_write_timeout(Some(timeout))
        .map_err(|e| unreachable(&e))?;
    let mut seed = [0u8; 24];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness for the handshake: {e}"))?;
    let key = data_encoding::BASE64.encode(&seed[..16]);
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
        head.target
    );
    // httparse has checked the values: no line breaks in them.
    for (name, value) in [
        ("Sec-WebSocket-Protocol", &head.protocols),
        ("Origin", &head.origin),
    ] {
        if let Some(value) = value {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    request.push_str("\r\n");
    socket
        .write_all(request.as_bytes())
        .map_err(|e| unreachable(&e))?;
    let mut buf = Vec::new();
    let answer = proxy::response_head(&mut socket, &mut buf, config.max_request_head, deadline);
    let (status, code, headers) = answer.map_err(|e| match e {
        Err(HeadError::Timeout) => {
            format!("Thunder at {addr} did not answer the upgrade within upstream_timeout")
        }
        Err(HeadError::Io(e)) => unreachable(&e),
        Err(_) => format!("Thunder at {addr} closed the connection during the upgrade"),
        Ok(why) => format!("Thunder at {addr} answered the upgrade with no HTTP: {why}"),
    })?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let accepted = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("sec-websocket-accept") && v.trim() == accept);
    if code != 101 || !accepted {
        return Err(format!("Thunder at {addr} refused the upgrade: {status}"));
    }
    let clone = || socket.try_clone().map_err(|e| unreachable(&e));
    let writer = Writer(Arc::new(Mutex::new(clone()?)));
    let stream = Upstream {
        read: clone()?,
        write: writer.clone(),
    };
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_outbound_bytes))
        .max_frame_size(Some(config.max_outbound_bytes))
        .accept_unmasked_frames(true);
    let ws = WebSocket::from_partially_read(stream, buf, Role::Server, Some(ws_config));
    let state = Arc::new(State {
        pending: Mutex::new(Pending::new(config.max_upstream_pending)),
        dropped: AtomicBool::new(false),
        ended: AtomicBool::new(false),
    });
    let pump = Pump {
        conn,
        state: state.clone(),
        tx: shared.tx.clone(),
        timeout,
        compat: config.compat,
        callsign: config.callsign.clone(),
    };
    std::thread::Builder::new()
        .name("relay".into())
        .stack_size(config.thread_stack_size)
        .spawn(move || pump.run(ws))
        .map_err(|e| format!("cannot start the relay thread: {e}"))?;
    let mask = u64::from_le_bytes(seed[16..].try_into().unwrap_or([1; 8])) | 1;
    Ok(Box::new(Link {
        writer,
        mask,
        socket,
        state,
    }))
}

/// The upstream thread: Thunder's frames to the dispatcher, and the deadlines of relayed
/// requests.
struct Pump {
    conn: ConnId,
    state: Arc<State>,
    tx: Sender<Cmd>,
    timeout: Duration,
    compat: crate::config::Compat,
    callsign: String,
}

impl Pump {
    fn run(self, mut ws: WebSocket<Upstream>) {
        let tick = (self.timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            let now = Instant::now();
            let next = self.pending(|p| p.next_deadline()).flatten();
            let wait = next.map_or(tick, |at| at.saturating_duration_since(now).min(tick));
            let wait = wait.max(Duration::from_millis(1));
            let _ = ws.get_ref().read.set_read_timeout(Some(wait));
            match ws.read() {
                Ok(Message::Text(text)) => {
                    if !self.pass(text.as_str()) {
                        break;
                    }
                }
                Ok(_) => {} // pings are answered by tungstenite; Thunder sends no binary
                Err(WsError::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
            let late = self
                .pending(|p| p.expire(Instant::now()))
                .unwrap_or_default();
            let why = "Thunder did not answer within upstream_timeout";
            if !self.fail(late, why) {
                break;
            }
            if self.state.dropped.load(Ordering::Relaxed) {
                break;
            }
        }
        self.state.ended.store(true, Ordering::Relaxed);
        if self.state.dropped.load(Ordering::Relaxed) {
            return;
        }
        // Thunder closed or failed: what waits gets the error, then the client is closed.
        let waiting = self.pending(Pending::drain).unwrap_or_default();
        self.fail(waiting, "Thunder closed the connection");
        let _ = self.tx.send(Command::Close {
            conn: self.conn,
            code: 1001,
            reason: "Thunder (upstream) closed the connection".into(),
        });
    }

    fn pending<T>(&self, f: impl FnOnce(&mut Pending) -> T) -> Option<T> {
        self.state.pending.lock().ok().map(|mut p| f(&mut p))
    }

    /// Passes one frame from Thunder on; false once the dispatcher has stopped.
    fn pass(&self, text: &str) -> bool {
        // Nothing waits for an answer: the frame goes on unread (events, mostly).
        let expecting = self.pending(|p| !p.idle()).unwrap_or(true);
        let id = if expecting {
            upstream::reply_id(text)
        } else {
            None
        };
        let text = match id {
            None => text.to_owned(),
            Some(id) => match self.pending(|p| p.answered(&id)) {
                Some(Err(Late)) => return true,
                Some(Ok(Some(waiting))) if waiting.merge => {
                    upstream::merge_status(text, &self.callsign)
                }
                _ => text.to_owned(),
            },
        };
        let conn = self.conn;
        self.tx.send(Command::Relayed { conn, text }).is_ok()
    }

    /// Answers each of `ids` with the unavailable error; false once the dispatcher has stopped.
    fn fail(&self, ids: Vec<String>, why: &str) -> bool {
        for id in ids {
            let text = upstream::unavailable(&id, why, self.compat);
            let conn = self.conn;
            if self.tx.send(Command::Relayed { conn, text }).is_err() {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::client_frame;
    use std::io::Cursor;
    use tungstenite::protocol::{Role, WebSocketConfig};
    use tungstenite::{Message, WebSocket};

    /// The frames written upstream are masked text frames a strict server reads back.
    #[test]
    fn client_frames_are_masked_and_read_back() {
        for len in [0, 5, 125, 126, 200, 65_535, 70_000] {
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let frame = client_frame(text.as_bytes(), [0x12, 0x34, 0x56, 0x78]);
            assert_eq!(frame[1] & 0x80, 0x80, "mask bit");
            let config = WebSocketConfig::default().accept_unmasked_frames(false);
            let mut ws = WebSocket::from_raw_socket(Cursor::new(frame), Role::Server, Some(config));
            match ws.read().unwrap() {
                Message::Text(read) => assert_eq!(read.as_str(), text, "{len}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
