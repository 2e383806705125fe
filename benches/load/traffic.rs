//! The traffic scenario: N clients in R rooms, S of them sending, then a drain and the count.
//!
//! Threads: one reader per client, one sender per sending client, and the calling thread,
//! which keeps time, waits for the deliveries to arrive, and closes the sockets at the end.
//! Every client joins and registers before the first message goes out, so each member must
//! receive every message sent to its room; what did not arrive by the end of the drain is
//! counted as lost.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::client::{self, Client, ReaderReport, SendPlan, SenderReport, Shared, Target};
use crate::probes;
use crate::stats::Histogram;

/// The shape of one traffic run.
#[derive(Clone)]
pub struct Traffic {
    pub clients: usize,
    pub rooms: usize,
    pub senders: usize,
    /// Messages per second, all senders together; 0: flat out.
    pub rate: f64,
    pub inflight: u64,
    /// Sending time; `None`: until `messages` are sent.
    pub duration: Option<f64>,
    /// Messages, all senders together; `None`: until `duration` ends.
    pub messages: Option<u64>,
    /// Longest wait for the last deliveries after sending ends.
    pub drain: f64,
    pub pad: usize,
}

/// What one run measured.
pub struct Outcome {
    pub sent: u64,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub reorder: u64,
    pub errors: u64,
    pub unacked: u64,
    /// First send to last delivery.
    pub elapsed: f64,
    pub latency: Histogram,
    /// CPU seconds the server used from the first send to the end of the drain (with `pid`).
    pub server_cpu: Option<f64>,
    /// The part of `server_cpu` spent in the kernel (system time).
    pub server_sys: Option<f64>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        if self.elapsed > 0.0 {
            self.delivered as f64 / self.elapsed
        } else {
            0.0
        }
    }
}

struct Member {
    shared: Arc<Shared>,
    raw: std::net::TcpStream,
    reader: JoinHandle<ReaderReport>,
}

/// Runs one traffic scenario against `target`; `tag` keeps room names apart between runs.
pub fn run(target: &Target, t: &Traffic, tag: &str, pid: Option<u32>) -> io::Result<Outcome> {
    if target.baseline && t.rooms != 1 {
        return Err(io::Error::other("the baseline has one room: use --rooms 1"));
    }
    let epoch = Instant::now();
    let mut clients = Vec::with_capacity(t.clients);
    for i in 0..t.clients {
        let room = format!("load-{tag}-{}", i % t.rooms);
        clients.push(Client::connect(target, &format!("u{i}"), Some(&room))?);
    }
    let plans: Vec<SendPlan> = (0..t.senders).map(|j| plan(t, j, &clients[j])).collect();
    let writers = (0..t.senders)
        .map(|j| clients[j].writer())
        .collect::<io::Result<Vec<_>>>()?;
    let members = spawn_readers(clients, t, target.baseline, epoch)?;
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = pid.map(probes::cpu_seconds).transpose()?;
    let senders = spawn_senders(writers, plans, target, &members, &stop, epoch);
    if let Some(d) = t.duration {
        thread::sleep(Duration::from_secs_f64(d));
        stop.store(true, Ordering::Release);
    }
    let reports: Vec<SenderReport> = senders
        .into_iter()
        .map(|h| h.join().expect("sender thread"))
        .collect::<io::Result<_>>()?;
    let expected = expected(t, &reports, target.baseline);
    drain(&members, expected, Duration::from_secs_f64(t.drain));
    let cpu_after = pid.map(probes::cpu_seconds).transpose()?;
    let mut outcome = finish(members, &reports, expected);
    let used = cpu_before.zip(cpu_after);
    outcome.server_cpu = used.map(|(a, b)| (b.0 + b.1) - (a.0 + a.1));
    outcome.server_sys = used.map(|(a, b)| b.1 - a.1);
    Ok(outcome)
}

fn plan(t: &Traffic, j: usize, c: &Client) -> SendPlan {
    SendPlan {
        index: j,
        roomid: c.roomid.clone(),
        count: t
            .messages
            .map(|m| m / t.senders as u64 + u64::from((j as u64) < m % t.senders as u64)),
        rate: t.rate / t.senders as f64,
        phase: if t.rate > 0.0 {
            Duration::from_secs_f64(j as f64 / t.rate)
        } else {
            Duration::ZERO
        },
        inflight: t.inflight,
        pad: t.pad,
    }
}

fn spawn_readers(
    clients: Vec<Client>,
    t: &Traffic,
    baseline: bool,
    epoch: Instant,
) -> io::Result<Vec<Member>> {
    let mut members = Vec::with_capacity(clients.len());
    for (i, c) in clients.into_iter().enumerate() {
        let shared = Arc::new(Shared::default());
        let raw = c.raw()?;
        let me = (i < t.senders).then_some(i);
        let (s, senders) = (shared.clone(), t.senders);
        let reader = thread::Builder::new()
            .name(format!("reader-{i}"))
            .stack_size(256 * 1024)
            .spawn(move || client::read_loop(c.ws, &s, me, senders, baseline, epoch))?;
        members.push(Member {
            shared,
            raw,
            reader,
        });
    }
    Ok(members)
}

fn spawn_senders(
    writers: Vec<tungstenite::WebSocket<std::net::TcpStream>>,
    plans: Vec<SendPlan>,
    target: &Target,
    members: &[Member],
    stop: &Arc<AtomicBool>,
    epoch: Instant,
) -> Vec<JoinHandle<io::Result<SenderReport>>> {
    let mut handles = Vec::new();
    for (j, (ws, plan)) in writers.into_iter().zip(plans).enumerate() {
        let (target, shared, stop) = (target.clone(), members[j].shared.clone(), stop.clone());
        handles.push(thread::spawn(move || {
            client::send_loop(ws, &target, &plan, &shared, &stop, epoch)
        }));
    }
    handles
}

/// Deliveries owed: every message goes to every member of its room (the baseline has one).
fn expected(t: &Traffic, reports: &[SenderReport], baseline: bool) -> u64 {
    let mut total = 0;
    for (j, r) in reports.iter().enumerate() {
        let room = j % t.rooms;
        let members = if baseline {
            t.clients
        } else {
            (0..t.clients).filter(|i| i % t.rooms == room).count()
        };
        total += r.sent * members as u64;
    }
    total
}

fn delivered(members: &[Member]) -> u64 {
    members
        .iter()
        .map(|m| m.shared.delivered.load(Ordering::Acquire))
        .sum()
}

/// Waits until everything owed has arrived, or `limit` passes.
fn drain(members: &[Member], expected: u64, limit: Duration) {
    let start = Instant::now();
    while delivered(members) < expected && start.elapsed() < limit {
        thread::sleep(Duration::from_micros(500));
    }
    // Anything beyond the owed count (duplicates) would still be arriving now.
    thread::sleep(Duration::from_millis(20));
}

fn finish(members: Vec<Member>, reports: &[SenderReport], expected: u64) -> Outcome {
    let sent: u64 = reports.iter().map(|r| r.sent).sum();
    let first = reports.iter().map(|r| r.first_ns).min().unwrap_or(0);
    let last = members
        .iter()
        .map(|m| m.shared.last_ns.load(Ordering::Acquire))
        .max()
        .unwrap_or(0);
    let delivered = delivered(&members);
    let errors = members
        .iter()
        .map(|m| m.shared.errors.load(Ordering::Acquire))
        .sum();
    let acked: u64 = members
        .iter()
        .map(|m| m.shared.acked.load(Ordering::Acquire))
        .sum();
    for m in &members {
        client::close(&m.raw);
    }
    let mut latency = Histogram::default();
    let mut reorder = 0;
    for m in members {
        let report = m.reader.join().expect("reader thread");
        latency.merge(&report.latency);
        reorder += report.reorder;
    }
    Outcome {
        sent,
        expected,
        delivered,
        lost: expected.saturating_sub(delivered),
        reorder,
        errors,
        unacked: sent.saturating_sub(acked),
        elapsed: last.saturating_sub(first) as f64 / 1e9,
        latency,
        server_cpu: None,
        server_sys: None,
    }
}
