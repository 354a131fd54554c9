//! INVITE server transactions of one connection (RFC 3261 §17.2.1), kept only for what the Edge needs: a
//! retransmitted INVITE (same top Via branch and Call-ID) is answered with the last response sent for it,
//! byte for byte (same To tag), instead of being taken for a new call.
//!
//! A transaction ends with its ACK (the non-2xx ACK shares the branch, the 2xx ACK the Call-ID: both are
//! matched by Call-ID), after Timer H (64·T1 = 32 s), or when [`MAX`] newer ones push it out. Memory is held
//! only while transactions are open.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::time::{Duration, Instant};

/// Most open INVITE transactions remembered per connection.
pub(super) const MAX: usize = 32;
/// Timer H: how long a transaction waits for its ACK.
const LIFETIME: Duration = Duration::from_secs(32);

#[derive(Debug)]
struct Entry {
    branch: String,
    call_id: String,
    last: Bytes,
    at: Instant,
}

/// The open INVITE transactions of a connection, oldest first.
#[derive(Debug, Default)]
pub(super) struct InviteTransactions {
    open: VecDeque<Entry>,
}

impl InviteTransactions {
    /// Records `response` as the latest answer to the INVITE with `branch` and `call_id`.
    pub(super) fn record(&mut self, branch: &str, call_id: &str, response: Bytes, now: Instant) {
        self.expire(now);
        if let Some(e) = self
            .open
            .iter_mut()
            .find(|e| e.branch == branch && e.call_id == call_id)
        {
            e.last = response;
            e.at = now;
            return;
        }
        if self.open.len() >= MAX {
            self.open.pop_front();
        }
        self.open.push_back(Entry {
            branch: branch.to_owned(),
            call_id: call_id.to_owned(),
            last: response,
            at: now,
        });
    }

    /// The response to send again when an INVITE with `branch` and `call_id` is a retransmission.
    pub(super) fn retransmission(
        &self,
        branch: &str,
        call_id: &str,
        now: Instant,
    ) -> Option<Bytes> {
        self.open
            .iter()
            .find(|e| e.branch == branch && e.call_id == call_id)
            .filter(|e| now.duration_since(e.at) < LIFETIME)
            .map(|e| e.last.clone())
    }

    /// An ACK for `call_id` arrived: its INVITE transactions are over.
    pub(super) fn acknowledged(&mut self, call_id: &str) {
        self.open.retain(|e| e.call_id != call_id);
        self.release();
    }

    fn expire(&mut self, now: Instant) {
        while self
            .open
            .front()
            .is_some_and(|e| now.duration_since(e.at) >= LIFETIME)
        {
            self.open.pop_front();
        }
        self.release();
    }

    /// An idle connection keeps no allocation.
    fn release(&mut self) {
        if self.open.is_empty() && self.open.capacity() > 0 {
            self.open = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmissions_get_the_latest_answer_until_the_ack() {
        let t0 = Instant::now();
        let mut tx = InviteTransactions::default();
        tx.record("b1", "c1", Bytes::from_static(b"180"), t0);
        assert_eq!(
            tx.retransmission("b1", "c1", t0).as_deref(),
            Some(&b"180"[..])
        );
        tx.record("b1", "c1", Bytes::from_static(b"200"), t0);
        assert_eq!(
            tx.retransmission("b1", "c1", t0).as_deref(),
            Some(&b"200"[..])
        );
        assert_eq!(tx.retransmission("b1", "other", t0), None);
        assert_eq!(tx.retransmission("b2", "c1", t0), None);
        tx.acknowledged("c1");
        assert_eq!(tx.retransmission("b1", "c1", t0), None);
        assert_eq!(tx.open.capacity(), 0);
    }

    #[test]
    fn bounded_in_number_and_time() {
        let t0 = Instant::now();
        let mut tx = InviteTransactions::default();
        for i in 0..=MAX {
            tx.record(&format!("b{i}"), "c", Bytes::new(), t0);
        }
        assert_eq!(tx.open.len(), MAX);
        assert_eq!(tx.retransmission("b0", "c", t0), None);
        assert!(tx.retransmission("b1", "c", t0).is_some());
        assert_eq!(tx.retransmission("b1", "c", t0 + LIFETIME), None);
        tx.record("new", "d", Bytes::new(), t0 + LIFETIME);
        assert_eq!(tx.open.len(), 1);
    }
}
