//! The scenarios that are not traffic: idle connections and memory, join/leave churn, and the
//! time from starting the server to its first accepted connection.

use std::fs;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::{Client, Target};

/// A process's resident memory (KiB) and thread count, from `/proc/PID/status` and
/// `/proc/PID/smaps_rollup`.
pub struct ProcStatus {
    /// All resident pages, shared library pages included.
    pub rss_kib: u64,
    /// Resident anonymous memory: what the process itself allocated (heap, stacks).
    pub anon_kib: u64,
    /// Pages only this process maps and has written (`Private_Dirty`): heap, touched stacks
    /// and its relocated copies of the libraries' data. Unlike RSS it leaves out the pages of
    /// libc and the binary that are read from the file and shared with other processes, so
    /// it is the memory the process costs the box.
    pub private_dirty_kib: u64,
    pub threads: u64,
}

pub fn proc_status(pid: u32) -> io::Result<ProcStatus> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    Ok(ProcStatus {
        rss_kib: number_field(&status, "VmRSS:"),
        anon_kib: number_field(&status, "RssAnon:"),
        private_dirty_kib: number_field(&rollup, "Private_Dirty:"),
        threads: number_field(&status, "Threads:"),
    })
}

/// The first number after `name` on its line of a `/proc` file (0 if absent).
fn number_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time a process has used (its ended threads included), in seconds: user and system.
pub fn cpu_seconds(pid: u32) -> io::Result<(f64, f64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // USER_HZ is 100 on Linux.
    Ok((ticks(11) as f64 / 100.0, ticks(12) as f64 / 100.0))
}

/// Server memory and threads with no clients, then with `n` idle clients (each joined to one
/// of ten rooms and registered for `message`; plain connections for the baseline).
pub struct Idle {
    pub before: ProcStatus,
    pub after: ProcStatus,
    pub clients: usize,
}

impl Idle {
    pub fn per_connection_bytes(&self) -> f64 {
        (self.after.rss_kib as f64 - self.before.rss_kib as f64) * 1024.0 / self.clients as f64
    }

    /// Private dirty memory per connection (see `ProcStatus::private_dirty_kib`).
    pub fn private_per_connection_bytes(&self) -> f64 {
        let grown = self.after.private_dirty_kib as f64 - self.before.private_dirty_kib as f64;
        grown * 1024.0 / self.clients as f64
    }
}

/// With `relay`, each client also calls that method (relay mode: another plugin's, so its
/// connection opens its upstream link) and waits for the answer.
pub fn idle(
    target: &Target,
    pid: u32,
    n: usize,
    settle: Duration,
    relay: Option<&str>,
) -> io::Result<Idle> {
    let before = proc_status(pid)?;
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let room = format!("idle-{}", i % 10);
        let mut client = Client::connect(target, &format!("idle{i}"), Some(&room))?;
        if let Some(method) = relay {
            let call = json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": {}});
            let send = client.ws.send(tungstenite::Message::text(call.to_string()));
            send.map_err(io::Error::other)?;
            loop {
                let message = client.ws.read().map_err(io::Error::other)?;
                if message.to_text().is_ok_and(|t| t.contains("\"id\":0")) {
                    break;
                }
            }
        }
        clients.push(client);
    }
    thread::sleep(settle);
    let after = proc_status(pid)?;
    drop(clients);
    Ok(Idle {
        before,
        after,
        clients: n,
    })
}

/// Join/leave cycles per second: `n` clients, each joining and leaving its own room in a loop
/// (one request at a time) for `secs`.
pub fn churn(target: &Target, n: usize, secs: f64) -> io::Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for k in 0..n {
        let mut c = Client::connect(target, &format!("churn{k}"), None)?;
        let (target, stop, cycles) = (target.clone(), stop.clone(), cycles.clone());
        handles.push(thread::spawn(move || -> io::Result<()> {
            let room = format!("churn-{k}");
            while !stop.load(Ordering::Relaxed) {
                let roomid = c.join(&target, &format!("churn{k}"), &room)?;
                c.call(&target, "leave", json!({"roomid": roomid}))?;
                cycles.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    let start = Instant::now();
    thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let done = cycles.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    for h in handles {
        h.join().expect("churn thread")?;
    }
    Ok(done as f64 / elapsed)
}

/// Spawns `exec --listen 127.0.0.1:PORT` and connects until it accepts: the seconds from
/// spawn to the first accepted connection. The process is killed afterwards.
pub fn startup(exec: &[String]) -> io::Result<f64> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = format!("127.0.0.1:{port}");
    let start = Instant::now();
    let mut child = Command::new(&exec[0])
        .args(&exec[1..])
        .args(["--listen", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = loop {
        if TcpStream::connect(&addr).is_ok() {
            break Ok(start.elapsed().as_secs_f64());
        }
        if start.elapsed() > Duration::from_secs(5) {
            break Err(io::Error::other(format!(
                "{} did not accept within 5 s",
                exec[0]
            )));
        }
        if let Some(status) = child.try_wait()? {
            break Err(io::Error::other(format!("{} exited: {status}", exec[0])));
        }
        thread::sleep(Duration::from_micros(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}
