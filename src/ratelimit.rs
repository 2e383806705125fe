//! The per-connection message rate limit: a token bucket that refills at `rate` per second up
//! to `burst`. Time is passed in (`Instant`s), so tests need no clock.

use std::time::Instant;

/// One connection's bucket. Each request takes one token; an empty bucket refuses.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`: a client may send `burst` requests at once, then `rate` a second.
    pub fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token at `now` if there is one. Time going backwards adds nothing.
    pub fn take(&mut self, now: Instant) -> bool {
        // The frames one read brings share its time: only the first refills.
        if now > self.last {
            let elapsed = (now - self.last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
            self.last = now;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 5.0, t0);
        assert!((0..5).all(|_| b.take(t0)));
        assert!(!b.take(t0));
        // 100 ms at 10/s is one more token, not two.
        let t1 = t0 + Duration::from_millis(100);
        assert!(b.take(t1));
        assert!(!b.take(t1));
        // A long pause refills to the burst and no further.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| b.take(t2)).count(), 5);
    }

    #[test]
    fn a_steady_sender_at_the_rate_is_never_refused() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2000.0, 1.0, t0);
        for i in 1..=10_000u64 {
            assert!(b.take(t0 + Duration::from_micros(500 * i)), "request {i}");
        }
    }

    #[test]
    fn default_burst_takes_ten_thousand_at_once() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2000.0, 10_000.0, t0);
        assert!((0..10_000).all(|_| b.take(t0)));
        assert!(!b.take(t0));
    }

    #[test]
    fn time_going_backwards_gives_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(1.0, 1.0, t0);
        assert!(b.take(t0));
        assert!(!b.take(t0 - Duration::from_secs(5)));
        assert!(!b.take(t0 + Duration::from_millis(500)));
        assert!(b.take(t0 + Duration::from_millis(1000)));
    }
}
