//! The Edge's per-connection limits on requests: the request rate (`limits.max_requests_per_sec`) and the
//! number of calls one connection may hold. A request over a limit gets `503 Service Unavailable` with
//! `Retry-After`, and each such 503 is a decision (`verdict: "limit"` in the events) with an explanation.
//!
//! What counts toward the rate (edgesim's choice; Microsoft documents only "20 messages per second" for
//! discovered partners, not how they are counted):
//! - ACK never counts: it gets no response (RFC 3261 §17), so a limit could not even be signalled;
//! - BYE and CANCEL of a call this connection holds do not count: refusing them would leave a call the peer
//!   cannot end, and each call ends once;
//! - every other request counts, in a dialog or not (a re-INVITE, an in-dialog INFO, a BYE for an unknown call).
//!
//! The window is one second from the first counted request; an INVITE retransmission (same branch) is
//! answered from the transaction and never reaches the count.

use tokio::time::{Duration, Instant};

/// Retry-After of a request over the rate: the window is one second.
pub(super) const RATE_RETRY_AFTER: u32 = 1;
/// Retry-After when the connection holds too many calls: a few seconds for calls to end.
pub(super) const CALLS_RETRY_AFTER: u32 = 5;

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

    /// Counts one request at `now`; true when it is over `max` per second.
    pub(super) fn over(&mut self, now: Instant, max: u32) -> bool {
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count > max.max(1)
    }
}

/// Whether a request counts toward the rate (see the module documentation). `ends_held_call`: a BYE or
/// CANCEL whose Call-ID is a call this connection holds.
pub(super) fn counts_toward_rate(method: &str, ends_held_call: bool) -> bool {
    match method {
        "ACK" => false,
        "BYE" | "CANCEL" => !ends_held_call,
        _ => true,
    }
}

/// The explanation of a 503 for the request rate.
pub(super) fn rate_explanation(max: u32) -> String {
    format!(
        "The peer sent more than {max} requests within one second on this connection, over limits.max_requests_per_sec = {max}: the Edge answered 503 Service Unavailable with Retry-After: {RATE_RETRY_AFTER}. Fix: slow the peer down, or raise limits.max_requests_per_sec in the Edge configuration (ACK, and BYE/CANCEL of calls the connection holds, do not count)."
    )
}

/// The explanation of a 503 for too many calls on one connection.
pub(super) fn calls_explanation(max: usize) -> String {
    format!(
        "This connection already holds {max} calls, the most the Edge keeps per connection: the Edge answered 503 Service Unavailable with Retry-After: {CALLS_RETRY_AFTER}. Fix: end calls (ACK every final response, BYE answered calls), or spread them over more connections."
    )
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

    #[test]
    fn what_counts() {
        assert!(!counts_toward_rate("ACK", false));
        assert!(!counts_toward_rate("BYE", true));
        assert!(!counts_toward_rate("CANCEL", true));
        assert!(counts_toward_rate("BYE", false));
        assert!(counts_toward_rate("INVITE", true));
        assert!(counts_toward_rate("OPTIONS", false));
    }

    #[test]
    fn explanations_name_the_setting_and_retry_after() {
        assert_eq!(
            rate_explanation(20),
            "The peer sent more than 20 requests within one second on this connection, over limits.max_requests_per_sec = 20: the Edge answered 503 Service Unavailable with Retry-After: 1. Fix: slow the peer down, or raise limits.max_requests_per_sec in the Edge configuration (ACK, and BYE/CANCEL of calls the connection holds, do not count)."
        );
        assert_eq!(
            calls_explanation(1024),
            "This connection already holds 1024 calls, the most the Edge keeps per connection: the Edge answered 503 Service Unavailable with Retry-After: 5. Fix: end calls (ACK every final response, BYE answered calls), or spread them over more connections."
        );
    }
}
