//! Relay mode's figures: a stand-in upstream that answers every JSON-RPC request with its
//! params (`upstream` mode: messenger is started with `--upstream` naming it), and a caller
//! that measures one connection's round trips (`calls` mode: latency with one request in
//! flight, calls per second with many), for a relayed method and for one served locally.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::handshake::server::{Request, Response};
use tungstenite::{ClientRequestBuilder, Message};

use crate::client::Target;
use crate::stats::Histogram;

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Runs the stand-in upstream on `listen`, printing `listening on ADDR`, until killed.
pub fn upstream(listen: &str) -> io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || echo(stream))?;
    }
    Ok(())
}

/// One upstream connection: every request is answered with its params as its result.
#[allow(clippy::result_large_err)] // tungstenite's callback type
fn echo(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let protocol = |request: &Request, mut response: Response| {
        let offered = request.headers().get("sec-websocket-protocol").cloned();
        if let Some(offered) = offered {
            let first = offered
                .to_str()
                .unwrap_or("")
                .split(',')
                .next()
                .unwrap_or("");
            if let Ok(value) = first.trim().parse() {
                response
                    .headers_mut()
                    .insert("sec-websocket-protocol", value);
            }
        }
        Ok(response)
    };
    let Ok(mut ws) = tungstenite::accept_hdr(stream, protocol) else {
        return;
    };
    while let Ok(message) = ws.read() {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(request) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let reply = json!({"jsonrpc": "2.0", "id": request["id"], "result": request["params"]});
        if ws.send(Message::text(reply.to_string())).is_err() {
            return;
        }
    }
}

/// What one `calls` run measured.
pub struct Calls {
    pub answered: u64,
    pub errors: u64,
    pub elapsed: f64,
    pub latency: Histogram,
}

impl Calls {
    pub fn rate(&self) -> f64 {
        self.answered as f64 / self.elapsed
    }
}

/// Calls `method` with `params` on one connection for `duration`, keeping `inflight`
/// requests outstanding; each answer's round trip is recorded.
pub fn calls(
    target: &Target,
    method: &str,
    params: &Value,
    inflight: usize,
    duration: Duration,
) -> io::Result<Calls> {
    let rest = target.url.strip_prefix("ws://").unwrap_or(&target.url);
    let stream = TcpStream::connect(rest.split('/').next().unwrap_or(rest))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let uri = target.url.parse().map_err(err)?;
    let request = ClientRequestBuilder::new(uri).with_sub_protocol("notification");
    let (mut ws, _) = tungstenite::client(request, stream).map_err(err)?;
    let mut sent: HashMap<u64, Instant> = HashMap::new();
    let mut next = 1u64;
    let mut out = Calls {
        answered: 0,
        errors: 0,
        elapsed: 0.0,
        latency: Histogram::default(),
    };
    let started = Instant::now();
    let end = started + duration;
    loop {
        while sent.len() < inflight && Instant::now() < end {
            let text = json!({"jsonrpc": "2.0", "id": next, "method": method, "params": params});
            ws.send(Message::text(text.to_string())).map_err(err)?;
            sent.insert(next, Instant::now());
            next += 1;
        }
        if sent.is_empty() {
            break;
        }
        let Message::Text(text) = ws.read().map_err(err)? else {
            continue;
        };
        let reply: Value = serde_json::from_str(&text).map_err(err)?;
        let Some(at) = reply["id"].as_u64().and_then(|id| sent.remove(&id)) else {
            continue;
        };
        out.latency.record(at.elapsed().as_nanos() as u64);
        out.answered += 1;
        if reply.get("error").is_some() {
            out.errors += 1;
        }
    }
    out.elapsed = started.elapsed().as_secs_f64();
    let _ = ws.close(None);
    Ok(out)
}
