//! Our `log::Log`: every line gets a UTC timestamp (RFC 3339) and goes to stderr through a
//! bounded queue that one small `logger` thread drains. The thread that logs only formats the
//! line and tries to queue it, so logging never blocks it (a full pipe stalls only the logger
//! thread) and never stops the server (a closed pipe is an error value, not a panic, as it is
//! with `eprintln!`). A line that finds the queue full, or that stderr refuses, is dropped and
//! counted; `GET /health` shows the count as `log_dropped`.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use log::{LevelFilter, Log, Metadata, Record};

/// Lines waiting for the logger thread (or being written) before new ones are dropped (about
/// 100 bytes each). The queue is an unbounded channel held to this by `PENDING`: its memory
/// grows with the lines queued, where a `bounded` one would allocate every slot at start.
const QUEUE: usize = 1024;

/// Lines dropped since start: the queue was full, or stderr failed.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Lines queued or being written, for `flush` and the bound (`QUEUE`).
static PENDING: AtomicUsize = AtomicUsize::new(0);

struct Logger {
    level: LevelFilter,
    lines: Sender<String>,
}

impl Log for Logger {
    /// Our own lines up to the level; other crates' (tungstenite's frame dumps) only at trace.
    fn enabled(&self, metadata: &Metadata) -> bool {
        let ours = metadata.target().starts_with("messenger");
        metadata.level() <= self.level && (ours || self.level == LevelFilter::Trace)
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let stamp = rfc3339(SystemTime::now());
        let level = record.level();
        let line = if record.target().starts_with("messenger") {
            format!("{stamp} {level:<5} {}\n", record.args())
        } else {
            format!(
                "{stamp} {level:<5} [{}] {}\n",
                record.target(),
                record.args()
            )
        };
        // The channel is unbounded; `PENDING` holds it to `QUEUE` lines.
        let full = PENDING.fetch_add(1, Ordering::Relaxed) >= QUEUE;
        if full || self.lines.send(line).is_err() {
            PENDING.fetch_sub(1, Ordering::Relaxed);
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {}
}

/// Installs the logger at `level` and starts its thread.
pub fn init(level: LevelFilter) -> std::io::Result<()> {
    let (lines, queue) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("logger".into())
        .stack_size(64 * 1024)
        .spawn(move || drain(queue))?;
    let logger = Box::leak(Box::new(Logger { level, lines }));
    log::set_logger(logger).map_err(|e| std::io::Error::other(e.to_string()))?;
    log::set_max_level(level);
    Ok(())
}

/// The logger thread: writes each line to stderr; after a drop, says how many were lost.
fn drain(queue: Receiver<String>) {
    let mut reported = 0;
    for line in queue {
        let mut err = std::io::stderr().lock();
        let dropped = DROPPED.load(Ordering::Relaxed);
        if dropped > reported {
            let note = format!(
                "{} WARN  {} log lines dropped: stderr was full or closed\n",
                rfc3339(SystemTime::now()),
                dropped - reported
            );
            if err.write_all(note.as_bytes()).is_ok() {
                reported = dropped;
            }
        }
        if err.write_all(line.as_bytes()).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        PENDING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Lines dropped since start (for `/health`).
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Waits until the queued lines are written, for at most `wait` (a stuck stderr does not
/// hold up the exit).
pub fn flush(wait: Duration) {
    let deadline = Instant::now() + wait;
    while PENDING.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `2025-06-01T12:34:56.789Z`, computed from the Unix time without a date library.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// The calendar date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The level names `log_level` accepts, as `log` spells them.
pub fn level(name: &str) -> LevelFilter {
    name.parse().unwrap_or(LevelFilter::Warn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> String {
        rfc3339(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_709_251_199, 999), "2024-02-29T23:59:59.999Z");
        assert_eq!(at(1_735_689_600, 0), "2025-01-01T00:00:00.000Z");
        assert_eq!(at(4_102_444_800, 0), "2100-01-01T00:00:00.000Z");
        assert_eq!(at(1_748_781_296, 789), "2025-06-01T12:34:56.789Z");
    }
}
