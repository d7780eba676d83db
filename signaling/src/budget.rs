//! How many messages a room socket may send: a token bucket, pure (the caller gives the time).
//! A browser sends a few messages when it joins (hello, join, offer, a dozen ICE candidates)
//! and then a ping every few seconds; a client that sends far more is slowed, not served.

use std::time::{Duration, Instant};

/// Messages a socket may send at once.
pub const BURST: f64 = 40.0;
/// Messages a second it earns back.
pub const PER_SECOND: f64 = 20.0;

#[derive(Debug, Clone, Copy)]
pub struct MessageBudget {
    tokens: f64,
    last: Instant,
}

impl MessageBudget {
    pub fn new(now: Instant) -> Self {
        MessageBudget {
            tokens: BURST,
            last: now,
        }
    }

    /// Whether one more message may be served at `now` (and spends it).
    pub fn allow(&mut self, now: Instant) -> bool {
        let earned = now.saturating_duration_since(self.last).as_secs_f64() * PER_SECOND;
        self.tokens = (self.tokens + earned).min(BURST);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// How long a burst of `n` messages at once lasts before the budget refuses: for docs and tests.
pub fn refill_time(n: f64) -> Duration {
    Duration::from_secs_f64(n / PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_served_then_refused_then_served_again_as_time_passes() {
        let t0 = Instant::now();
        let mut b = MessageBudget::new(t0);
        let served = (0..100).filter(|_| b.allow(t0)).count();
        assert_eq!(served, BURST as usize);
        assert!(!b.allow(t0));
        assert!(b.allow(t0 + refill_time(1.0)));
        assert!(!b.allow(t0 + refill_time(1.0)));
        // A second later, a second's worth again.
        let t1 = t0 + Duration::from_secs(2);
        let served = (0..100).filter(|_| b.allow(t1)).count();
        assert_eq!(served, (2.0 * PER_SECOND) as usize - 1);
    }

    #[test]
    fn a_steady_browser_is_never_refused() {
        let t0 = Instant::now();
        let mut b = MessageBudget::new(t0);
        // Joining: 20 messages at once, then a ping every second for a minute.
        assert!((0..20).all(|_| b.allow(t0)));
        assert!((1..=60).all(|s| b.allow(t0 + Duration::from_secs(s))));
    }
}
