//! When a stalled socket is tried again: exponential back-off per connection, from `RETRY_MIN`
//! doubling to `RETRY_MAX`, back to `RETRY_MIN` whenever the socket took something. Retry times
//! fall on a grid of the delay's own size (counted from one epoch for all connections), so
//! stalled clients at the same delay are retried in the same wake-up: twenty idle stalled
//! clients wake the dispatcher about eight times a second, not once per client per interval.

use std::time::{Duration, Instant};

/// The first delay after a socket stalls, and after any attempt that made progress.
pub const RETRY_MIN: Duration = Duration::from_millis(2);
/// The longest delay between two attempts on a socket that takes nothing.
pub const RETRY_MAX: Duration = Duration::from_millis(128);

/// One stalled connection's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// When to try again.
    pub at: Instant,
    delay: Duration,
}

impl Retry {
    /// The schedule after an attempt at `now` that stalled; `last` is the schedule before it
    /// (none when the socket had not stalled), `progress` whether it took anything.
    pub fn after(last: Option<Retry>, progress: bool, now: Instant, epoch: Instant) -> Retry {
        let delay = match last {
            Some(last) if !progress => (last.delay * 2).min(RETRY_MAX),
            _ => RETRY_MIN,
        };
        Retry {
            at: on_grid(now + delay / 2, delay, epoch),
            delay,
        }
    }
}

/// The first multiple of `step` after `epoch` that is at `from` or later.
fn on_grid(from: Instant, step: Duration, epoch: Instant) -> Instant {
    let since = from.saturating_duration_since(epoch).as_nanos();
    let step_ns = step.as_nanos().max(1);
    let steps = since.div_ceil(step_ns);
    let ns = u64::try_from(steps * step_ns).unwrap_or(u64::MAX);
    epoch + Duration::from_nanos(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_to_the_cap_and_reset_on_progress() {
        let epoch = Instant::now();
        let mut now = epoch + Duration::from_micros(333);
        let mut last = None;
        let mut waits = Vec::new();
        for _ in 0..10 {
            let r = Retry::after(last, false, now, epoch);
            let wait = r.at - now;
            assert!(wait >= r.delay / 2 && wait < r.delay * 3 / 2, "{r:?}");
            waits.push(r.delay.as_millis());
            (now, last) = (r.at, Some(r));
        }
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 128, 128, 128]);
        let r = Retry::after(last, true, now, epoch);
        assert_eq!(r.delay, RETRY_MIN);
    }

    #[test]
    fn clients_at_the_same_delay_share_their_wake_ups() {
        // Twenty sockets stall at scattered times and never drain; the dispatcher wakes at the
        // earliest retry and tries every one that is due.
        let epoch = Instant::now();
        let mut ats: Vec<Retry> = (0..20u64)
            .map(|i| {
                let stalled = epoch + Duration::from_micros(7919 * i);
                Retry::after(None, false, stalled, epoch)
            })
            .collect();
        let mut wake_ups = Vec::new();
        while let Some(now) = ats.iter().map(|r| r.at).min() {
            if now > epoch + Duration::from_secs(4) {
                break;
            }
            wake_ups.push(now);
            for r in ats.iter_mut().filter(|r| r.at <= now) {
                *r = Retry::after(Some(*r), false, now, epoch);
            }
        }
        let late = wake_ups
            .iter()
            .filter(|t| **t >= epoch + Duration::from_secs(1))
            .count();
        assert!(
            late <= 3 * 8,
            "{late} wake-ups in 3 s for 20 stalled sockets"
        );
    }
}
