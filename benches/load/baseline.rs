//! The baseline: a minimal tungstenite broadcast server, the practical ceiling for this machine.
//!
//! No JSON-RPC and no rooms: every text message a client sends is written to every connected
//! client (the sender included), unchanged. Threads: one acceptor, and one thread per
//! connection that reads with tungstenite and writes the broadcast itself. That is the fastest
//! design for it that we found: no hand-off between threads, and one `write` per receiver per
//! batch. A batch is every frame that one `read` brought in: the connection's stream wrapper
//! ([`HoldStream`]) answers `WouldBlock` instead of blocking while frames wait to go out, so
//! the loop sends the batch before it sleeps in the next `read`.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error, Message};

/// A connected client's writing half, shared by every thread that broadcasts to it.
type Peer = Arc<Mutex<TcpStream>>;

/// All connected clients, by connection number.
#[derive(Default)]
struct Peers(Mutex<Vec<(u64, Peer)>>);

impl Peers {
    fn add(&self, id: u64, peer: Peer) {
        self.0.lock().expect("peers lock").push((id, peer));
    }

    fn remove(&self, id: u64) {
        self.0.lock().expect("peers lock").retain(|(i, _)| *i != id);
    }

    fn snapshot(&self) -> Vec<Peer> {
        self.0
            .lock()
            .expect("peers lock")
            .iter()
            .map(|(_, p)| p.clone())
            .collect()
    }
}

/// A `TcpStream` that reports `WouldBlock` instead of blocking while `hold` is set.
struct HoldStream {
    inner: TcpStream,
    hold: bool,
}

impl Read for HoldStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.hold {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.inner.read(buf)
    }
}

impl Write for HoldStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Binds `listen`, prints `listening on ADDR`, and serves until the process is killed.
pub fn serve(listen: &str, batch: bool) -> io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    run(listener, batch)
}

/// Accepts connections forever, one thread each. Without `batch`, every frame is written to
/// every client as soon as it is read (for comparison: it shows what batching is worth).
pub fn run(listener: TcpListener, batch: bool) -> io::Result<()> {
    let peers = Arc::new(Peers::default());
    for (id, stream) in (0u64..).zip(listener.incoming()) {
        let Ok(stream) = stream else { continue };
        let peers = peers.clone();
        thread::Builder::new()
            .name(format!("conn-{id}"))
            .stack_size(64 * 1024)
            .spawn(move || connection(id, stream, &peers, batch))?;
    }
    Ok(())
}

fn connection(id: u64, stream: TcpStream, peers: &Peers, batch: bool) {
    let _ = stream.set_nodelay(true);
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let hold = HoldStream {
        inner: stream,
        hold: false,
    };
    let Ok(mut ws) = tungstenite::accept_with_config(hold, Some(config)) else {
        return;
    };
    peers.add(id, Arc::new(Mutex::new(writer)));
    let mut frames = Vec::with_capacity(16 * 1024);
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => {
                let frame = Frame::message(text, OpCode::Data(Data::Text), true);
                if frame.format(&mut frames).is_err() {
                    break;
                }
                ws.get_mut().hold = batch;
                if !batch {
                    broadcast(peers, &frames);
                    frames.clear();
                }
            }
            Ok(_) => {}
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                broadcast(peers, &frames);
                frames.clear();
                ws.get_mut().hold = false;
            }
            Err(_) => break,
        }
    }
    peers.remove(id);
}

/// Writes one batch of frames to every client; a client whose socket fails is skipped (its
/// own thread notices and removes it).
fn broadcast(peers: &Peers, batch: &[u8]) {
    for peer in peers.snapshot() {
        let mut stream = peer.lock().expect("peer lock");
        let _ = stream.write_all(batch);
    }
}
