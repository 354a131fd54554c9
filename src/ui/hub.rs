//! [`UiHub`]: where producers publish [`UiEvent`]s and page connections read them. A bounded broadcast
//! channel carries them live; a bounded history (by count and by bytes) lets a page opened later, or one that
//! fell behind, catch up. Every event gets a sequence number, the SSE `id:`, so a reconnecting page resumes
//! after the last event it saw.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use super::model::UiEvent;

/// How much the hub keeps and carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UiLimits {
    /// Events kept for late page loads and exports.
    pub history_events: usize,
    /// Bytes of events kept (roughly: [`UiEvent::weight`]); the oldest go first.
    pub history_bytes: usize,
    /// Events queued for a live page before it falls behind (it then catches up from the history).
    pub live_queue: usize,
    /// Pages open at once (event streams); more get 503.
    pub max_streams: usize,
}

impl Default for UiLimits {
    /// 5000 events or 32 MB of history, 1024 queued, 16 pages.
    fn default() -> Self {
        UiLimits {
            history_events: 5000,
            history_bytes: 32 * 1024 * 1024,
            live_queue: 1024,
            max_streams: 16,
        }
    }
}

/// An event with its sequence number.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stamped {
    /// 1, 2, 3 … in publishing order.
    pub seq: u64,
    /// The event.
    #[serde(flatten)]
    pub event: UiEvent,
}

#[derive(Debug)]
struct History {
    next: u64,
    events: VecDeque<Arc<Stamped>>,
    bytes: usize,
}

#[derive(Debug)]
struct Inner {
    title: String,
    limits: UiLimits,
    tx: broadcast::Sender<Arc<Stamped>>,
    history: Mutex<History>,
}

/// The web view's event hub; clone it freely (all clones share one history).
#[derive(Debug, Clone)]
pub struct UiHub {
    inner: Arc<Inner>,
}

impl UiHub {
    /// A hub for an Edge named `title` (its FQDN, shown on the page).
    pub fn new(title: impl Into<String>, limits: UiLimits) -> Self {
        let (tx, _) = broadcast::channel(limits.live_queue.max(1));
        UiHub {
            inner: Arc::new(Inner {
                title: title.into(),
                limits,
                tx,
                history: Mutex::new(History {
                    next: 1,
                    events: VecDeque::new(),
                    bytes: 0,
                }),
            }),
        }
    }

    /// The Edge's name.
    pub fn title(&self) -> &str {
        &self.inner.title
    }

    /// The limits the hub was made with.
    pub fn limits(&self) -> UiLimits {
        self.inner.limits
    }

    /// Publishes `event` to every open page and the history; returns its sequence number. Never waits: a
    /// page that is too far behind catches up from the history.
    pub fn publish(&self, event: UiEvent) -> u64 {
        let weight = event.weight();
        let Ok(mut h) = self.inner.history.lock() else {
            return 0;
        };
        let seq = h.next;
        h.next += 1;
        let stamped = Arc::new(Stamped { seq, event });
        h.events.push_back(stamped.clone());
        h.bytes += weight;
        let limits = &self.inner.limits;
        while h.events.len() > limits.history_events.max(1)
            || (h.bytes > limits.history_bytes && h.events.len() > 1)
        {
            if let Some(old) = h.events.pop_front() {
                h.bytes = h.bytes.saturating_sub(old.event.weight());
            }
        }
        // Sent under the lock, so that live order and history order are one order. No page open is fine.
        let _ = self.inner.tx.send(stamped);
        seq
    }

    /// A live receiver and the history up to the moment it was made (nothing lost or doubled between them).
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<Stamped>>, Vec<Arc<Stamped>>) {
        match self.inner.history.lock() {
            Ok(h) => (
                self.inner.tx.subscribe(),
                h.events.iter().cloned().collect(),
            ),
            Err(_) => (self.inner.tx.subscribe(), Vec::new()),
        }
    }

    /// The history: every kept event, oldest first.
    pub fn history(&self) -> Vec<Arc<Stamped>> {
        self.history_after(0)
    }

    /// The kept events with a sequence number above `seq`.
    pub fn history_after(&self, seq: u64) -> Vec<Arc<Stamped>> {
        self.inner
            .history
            .lock()
            .map(|h| h.events.iter().filter(|e| e.seq > seq).cloned().collect())
            .unwrap_or_default()
    }

    /// The kept events of one Call-ID, with the connections they came over (and their ends).
    pub fn dialog(&self, call_id: &str) -> Vec<Arc<Stamped>> {
        let all = self.history();
        let mut conns = std::collections::HashSet::new();
        let mut remotes = std::collections::HashSet::new();
        for e in &all {
            match &e.event {
                UiEvent::Message(m) if m.call_id.as_deref() == Some(call_id) => {
                    conns.insert(m.conn);
                }
                UiEvent::Decision(d) if d.call_id.as_deref() == Some(call_id) => match d.conn {
                    Some(c) => {
                        conns.insert(c);
                    }
                    // Without a connection id, the connections from the decision's address.
                    None => {
                        remotes.insert(d.remote.clone());
                    }
                },
                _ => {}
            }
        }
        all.into_iter()
            .filter(|e| match &e.event {
                UiEvent::Connection(c) => {
                    conns.contains(&c.conn) || remotes.contains(&c.remote.to_string())
                }
                UiEvent::ConnectionClosed(c) => {
                    conns.contains(&c.conn) || remotes.contains(&c.remote.to_string())
                }
                other => other.call_id() == Some(call_id),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::model::{Closer, ConnectionClosed};

    fn closed(conn: u64) -> UiEvent {
        UiEvent::ConnectionClosed(ConnectionClosed {
            time: time::OffsetDateTime::UNIX_EPOCH,
            conn,
            remote: "127.0.0.1:1".parse().unwrap(),
            by: Closer::Edge,
            reason: String::new(),
        })
    }

    #[test]
    fn history_is_bounded_by_count_and_numbered_in_order() {
        let hub = UiHub::new(
            "e",
            UiLimits {
                history_events: 3,
                ..UiLimits::default()
            },
        );
        for c in 0..5 {
            hub.publish(closed(c));
        }
        let seqs: Vec<u64> = hub.history().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert_eq!(
            hub.history_after(4)
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            [5]
        );
    }

    #[test]
    fn history_is_bounded_by_bytes_but_keeps_the_newest() {
        let hub = UiHub::new(
            "e",
            UiLimits {
                history_bytes: 1000,
                ..UiLimits::default()
            },
        );
        for c in 0..5 {
            hub.publish(closed(c));
        }
        // Each event weighs 512: one fits.
        assert_eq!(hub.history().len(), 1);
        assert_eq!(hub.history()[0].seq, 5);
    }

    #[tokio::test]
    async fn a_subscriber_gets_the_history_then_every_new_event_once() {
        let hub = UiHub::new("e", UiLimits::default());
        hub.publish(closed(1));
        let (mut rx, past) = hub.subscribe();
        hub.publish(closed(2));
        assert_eq!(past.iter().map(|e| e.seq).collect::<Vec<_>>(), [1]);
        assert_eq!(rx.recv().await.unwrap().seq, 2);
    }
}
