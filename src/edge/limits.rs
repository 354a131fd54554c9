//! The Edge's per-connection request rate (`limits.max_requests_per_sec`): a one-second window from the first
//! counted request. What counts, and the 503 with `Retry-After` that a request over the limit gets, are rules
//! of the rulebook ([`crate::rules::users`]); an INVITE retransmission (same branch) is answered from the
//! transaction and never reaches the count.

use tokio::time::{Duration, Instant};

/// Requests counted in the current one-second window.
#[derive(Debug, Clone, Copy)]
pub(super) struct RequestRate {
    window_start: Instant,
    count: u32,
}

impl RequestRate {
    /// An empty window starting `now`.
    pub(super) fn new(now: Instant) -> Self {
        RequestRate {
            window_start: now,
            count: 0,
        }
    }

    /// Counts one request at `now`; true when it is over `max` per second (`max` is at least 1: the
    /// configuration refuses 0).
    pub(super) fn over(&mut self, now: Instant, max: u32) -> bool {
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count > max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_of_one_second() {
        let t0 = Instant::now();
        let mut r = RequestRate::new(t0);
        assert!(!r.over(t0, 2));
        assert!(!r.over(t0, 2));
        assert!(r.over(t0 + Duration::from_millis(999), 2));
        assert!(!r.over(t0 + Duration::from_secs(1), 2));
    }
}
