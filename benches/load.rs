//! The load tool (`cargo bench --bench load -- <mode> [options]`): drives any server that
//! speaks the Thunder Messenger API (ours or Thunder's), or the in-bench baseline broadcast
//! server, and reports deliveries, losses and latency. Not part of the firmware binary.
//!
//! Modules: `client` (connections, reader and sender loops), `traffic` (the N clients /
//! R rooms / S senders scenario), `probes` (idle memory, churn, start-up time), `baseline`
//! (the minimal tungstenite broadcast server), `relay` (relay mode's stand-in upstream and
//! round trips), `stats` (histogram and medians).
//! `scripts/bench.sh` (`make bench`) runs the fixed set of scenarios and prints the table.
#![forbid(unsafe_code)]

#[path = "load/baseline.rs"]
mod baseline;
#[path = "load/client.rs"]
mod client;
#[path = "load/probes.rs"]
mod probes;
#[path = "load/relay.rs"]
mod relay;
#[path = "load/stats.rs"]
mod stats;
#[path = "load/traffic.rs"]
mod traffic;

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use client::Target;
use stats::median;
use traffic::Traffic;

const USAGE: &str = "\
usage: load <mode> [options]   (cargo bench --bench load -- <mode> [options])
modes:
  serve    run the baseline broadcast server        --listen ADDR (127.0.0.1:0) --batch on|off
  traffic  N clients in R rooms, S senders          --clients 10 --rooms 1 --senders 1
           --pid PID (also report the server's CPU time per delivery)
           --rate MSGS/S (0: flat out) --inflight 64 (0: flood, no waiting for acks)
           --duration SECS (3) | --messages N (all senders)  --drain SECS (5) --pad BYTES (0)
  idle     server RSS, private dirty memory and threads, then with N idle clients   --pid PID --clients 1000
           --relay METHOD (relay mode: each client first calls METHOD, another plugin's)
  churn    join+leave cycles per second             --clients 4 --duration 2
  upstream run a stand-in upstream (answers requests with their params)  --listen ADDR
  calls    one connection's round trips of METHOD   --method Echo.1.echo --params '{}'
           --inflight 1 --duration 3
  startup  spawn PROGRAM --listen 127.0.0.1:PORT, connect until it accepts  --exec 'PROGRAM ARGS'
common: --url ws://127.0.0.1:9998/jsonrpc  --baseline (plain broadcast protocol)
        --callsign Messenger  --runs N (figures are medians of N runs)
        --read-buffer BYTES (8192: each client's tungstenite read buffer)
output: one line per run on stderr, then `RESULT key=value ...` on stdout";

/// Options as given: `--name value` pairs and `--flag`s.
struct Opts(HashMap<String, String>);

impl Opts {
    fn parse(args: &[String]) -> Result<Opts, String> {
        let mut map = HashMap::new();
        let mut it = args.iter().peekable();
        while let Some(a) = it.next() {
            let name = a
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected {a}"))?;
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().cloned().unwrap_or_default(),
                _ => String::new(),
            };
            map.insert(name.to_owned(), value);
        }
        Ok(Opts(map))
    }

    fn flag(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    fn str(&self, name: &str, default: &str) -> String {
        self.0
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.0.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{name}: bad number {v:?}")),
        }
    }

    fn target(&self) -> Target {
        Target {
            url: self.str("url", "ws://127.0.0.1:9998/jsonrpc"),
            baseline: self.flag("baseline"),
            prefix: format!("{}.1", self.str("callsign", "Messenger")),
            read_buffer: self
                .num("read-buffer", client::READ_BUFFER)
                .unwrap_or(client::READ_BUFFER),
        }
    }
}

fn main() -> ExitCode {
    // `cargo bench` appends `--bench`; `cargo test` runs this with no mode.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some((mode, rest)) = args.split_first() else {
        // One line, not the usage text: under `make test` this is the load tool's own test.
        return match self_check() {
            Ok(()) => {
                println!("load: self-check passed (modes: cargo bench --bench load -- help)");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("load: self-check failed: {e}");
                ExitCode::FAILURE
            }
        };
    };
    let result = Opts::parse(rest).and_then(|o| match mode.as_str() {
        "serve" => baseline::serve(
            &o.str("listen", "127.0.0.1:0"),
            o.str("batch", "on") != "off",
        )
        .map_err(|e| e.to_string()),
        "traffic" => run_traffic(&o),
        "idle" => run_idle(&o),
        "churn" => run_churn(&o),
        "startup" => run_startup(&o),
        "upstream" => relay::upstream(&o.str("listen", "127.0.0.1:0")).map_err(|e| e.to_string()),
        "calls" => run_calls(&o),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown mode {mode}\n{USAGE}")),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Run without a mode (as `cargo test --all-targets` does): drives an in-process baseline
/// with a short burst and checks that the tool counts every delivery, in order, and that it
/// reads its own memory figures from `/proc`.
fn self_check() -> Result<(), String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::spawn(move || baseline::run(listener, true));
    let target = Target {
        url: format!("ws://{addr}/"),
        baseline: true,
        prefix: String::new(),
        read_buffer: client::READ_BUFFER,
    };
    let t = Traffic {
        clients: 4,
        rooms: 1,
        senders: 2,
        rate: 0.0,
        inflight: 16,
        duration: None,
        messages: Some(2_000),
        drain: 30.0,
        pad: 10,
    };
    let out = traffic::run(&target, &t, "self-check", None).map_err(|e| e.to_string())?;
    let ok = out.sent == 2_000
        && out.expected == 8_000
        && out.delivered == 8_000
        && out.lost == 0
        && out.reorder == 0
        && out.unacked == 0
        && out.latency.max() > 0;
    println!(
        "self-check against the baseline: sent {} delivered {}/{} reorder {} unacked {}",
        out.sent, out.delivered, out.expected, out.reorder, out.unacked
    );
    ok.then_some(())
        .ok_or_else(|| "counts do not add up".to_owned())?;
    // `idle` reads these for (c): a field it cannot find would read as 0 KiB.
    let own = probes::proc_status(std::process::id()).map_err(|e| e.to_string())?;
    let memory = own.private_dirty_kib > 0 && own.private_dirty_kib <= own.rss_kib;
    println!(
        "self-check of /proc: RSS {} KiB, private dirty {} KiB, {} threads",
        own.rss_kib, own.private_dirty_kib, own.threads
    );
    (memory && own.threads > 1)
        .then_some(())
        .ok_or_else(|| "cannot read the memory figures from /proc".to_owned())
}

fn run_traffic(o: &Opts) -> Result<(), String> {
    let messages: u64 = o.num("messages", 0)?;
    let t = Traffic {
        clients: o.num("clients", 10)?,
        rooms: o.num("rooms", 1)?,
        senders: o.num("senders", 1)?,
        rate: o.num("rate", 0.0)?,
        inflight: o.num("inflight", 64)?,
        duration: (messages == 0).then_some(o.num("duration", 3.0)?),
        messages: (messages > 0).then_some(messages),
        drain: o.num("drain", 5.0)?,
        pad: o.num("pad", 0)?,
    };
    if t.senders == 0 || t.senders > t.clients || t.rooms == 0 || t.rooms > t.clients {
        return Err("need 1 <= senders <= clients and 1 <= rooms <= clients".into());
    }
    let target = o.target();
    let pid = Some(o.num("pid", 0u32)?).filter(|&p| p != 0);
    let mut outcomes = Vec::new();
    for run in 0..o.num("runs", 1usize)? {
        let tag = format!("{}-{run}", std::process::id());
        let out = traffic::run(&target, &t, &tag, pid).map_err(|e| e.to_string())?;
        eprintln!(
            "run {run}: sent {} delivered {}/{} lost {} reorder {} errors {} in {:.3} s: \
             {:.0} deliveries/s, latency p50 {:.0} us p99 {:.0} us max {:.0} us, \
             server CPU {:.0} ns per delivery",
            out.sent,
            out.delivered,
            out.expected,
            out.lost,
            out.reorder,
            out.errors,
            out.elapsed,
            out.rate(),
            us(out.latency.quantile(0.5)),
            us(out.latency.quantile(0.99)),
            us(out.latency.max()),
            cpu_per_delivery(&out),
        );
        outcomes.push(out);
    }
    let med =
        |f: &dyn Fn(&traffic::Outcome) -> f64| median(&outcomes.iter().map(f).collect::<Vec<_>>());
    let sum = |f: &dyn Fn(&traffic::Outcome) -> u64| outcomes.iter().map(f).sum::<u64>();
    println!(
        "RESULT mode=traffic runs={} sent={:.0} delivered={:.0} lost={} reorder={} errors={} \
         unacked={} elapsed={:.3} rate={:.0} p50_us={:.0} p99_us={:.0} max_us={:.0} \
         cpu_ns_per_delivery={:.0} sys_ns_per_delivery={:.0} delivered_total={}",
        outcomes.len(),
        med(&|o| o.sent as f64),
        med(&|o| o.delivered as f64),
        sum(&|o| o.lost),
        sum(&|o| o.reorder),
        sum(&|o| o.errors),
        sum(&|o| o.unacked),
        med(&|o| o.elapsed),
        med(&|o| o.rate()),
        med(&|o| us(o.latency.quantile(0.5))),
        med(&|o| us(o.latency.quantile(0.99))),
        med(&|o| us(o.latency.max())),
        med(&cpu_per_delivery),
        med(&sys_per_delivery),
        sum(&|o| o.delivered),
    );
    Ok(())
}

/// Server CPU nanoseconds per delivery (0 without `--pid`).
fn cpu_per_delivery(o: &traffic::Outcome) -> f64 {
    match o.server_cpu {
        Some(cpu) if o.delivered > 0 => cpu * 1e9 / o.delivered as f64,
        _ => 0.0,
    }
}

/// The system (kernel) part of `cpu_per_delivery`.
fn sys_per_delivery(o: &traffic::Outcome) -> f64 {
    match o.server_sys {
        Some(sys) if o.delivered > 0 => sys * 1e9 / o.delivered as f64,
        _ => 0.0,
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn run_idle(o: &Opts) -> Result<(), String> {
    let pid = o.num("pid", 0u32)?;
    if pid == 0 {
        return Err("idle needs --pid PID of the server".into());
    }
    let settle = Duration::from_secs_f64(o.num("settle", 0.5)?);
    let relay = o.0.get("relay").map(String::as_str);
    let idle = probes::idle(&o.target(), pid, o.num("clients", 1000)?, settle, relay)
        .map_err(|e| e.to_string())?;
    println!(
        "RESULT mode=idle clients={} rss_before_kib={} rss_after_kib={} anon_before_kib={} \
         anon_after_kib={} private_before_kib={} private_after_kib={} threads_before={} \
         threads_after={} per_conn_bytes={:.0} private_per_conn_bytes={:.0}",
        idle.clients,
        idle.before.rss_kib,
        idle.after.rss_kib,
        idle.before.anon_kib,
        idle.after.anon_kib,
        idle.before.private_dirty_kib,
        idle.after.private_dirty_kib,
        idle.before.threads,
        idle.after.threads,
        idle.per_connection_bytes(),
        idle.private_per_connection_bytes()
    );
    Ok(())
}

fn run_churn(o: &Opts) -> Result<(), String> {
    let (n, secs) = (o.num("clients", 4)?, o.num("duration", 2.0)?);
    let mut rates = Vec::new();
    for run in 0..o.num("runs", 1usize)? {
        let rate = probes::churn(&o.target(), n, secs).map_err(|e| e.to_string())?;
        eprintln!("run {run}: {rate:.0} join+leave cycles/s with {n} clients");
        rates.push(rate);
    }
    println!(
        "RESULT mode=churn runs={} cycles_per_s={:.0}",
        rates.len(),
        median(&rates)
    );
    Ok(())
}

fn run_startup(o: &Opts) -> Result<(), String> {
    let exec: Vec<String> = o
        .str("exec", "")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if exec.is_empty() {
        return Err("startup needs --exec PROGRAM".into());
    }
    let mut times = Vec::new();
    for run in 0..o.num("runs", 5usize)? {
        let secs = probes::startup(&exec).map_err(|e| e.to_string())?;
        eprintln!("run {run}: accepting after {:.2} ms", secs * 1e3);
        times.push(secs * 1e3);
    }
    println!(
        "RESULT mode=startup runs={} ms={:.2}",
        times.len(),
        median(&times)
    );
    Ok(())
}

fn run_calls(o: &Opts) -> Result<(), String> {
    let method = o.str("method", "Echo.1.echo");
    let params: serde_json::Value =
        serde_json::from_str(&o.str("params", "{}")).map_err(|e| format!("--params: {e}"))?;
    let inflight = o.num("inflight", 1usize)?.max(1);
    let duration = Duration::from_secs_f64(o.num("duration", 3.0)?);
    let mut runs = Vec::new();
    for run in 0..o.num("runs", 1usize)? {
        let out = relay::calls(&o.target(), &method, &params, inflight, duration)
            .map_err(|e| e.to_string())?;
        eprintln!(
            "run {run}: {method} x{} ({inflight} in flight): {:.0} calls/s, p50 {:.1} us, p99 {:.1} us, errors {}",
            out.answered,
            out.rate(),
            us(out.latency.quantile(0.5)),
            us(out.latency.quantile(0.99)),
            out.errors
        );
        runs.push(out);
    }
    let med = |f: &dyn Fn(&relay::Calls) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    println!(
        "RESULT mode=calls runs={} inflight={inflight} rate={:.0} p50_us={:.1} p99_us={:.1} errors={}",
        runs.len(),
        med(&|c| c.rate()),
        med(&|c| us(c.latency.quantile(0.5))),
        med(&|c| us(c.latency.quantile(0.99))),
        runs.iter().map(|c| c.errors).sum::<u64>()
    );
    Ok(())
}
