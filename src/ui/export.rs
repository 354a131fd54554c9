//! A dialog's exports: JSON (its events and ladder) and pcapng (its SIP messages, written by
//! [`crate::wire::pcap::PcapWriter`] into a private temporary directory, then read back).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::UiError;
use super::hub::Stamped;
use super::ladder::Ladder;
use super::model::{Closer, MessageDirection, UiEvent};
use crate::wire::pcap::{Direction, PcapLimits, PcapWriter, Side};

/// The JSON export of one dialog.
#[derive(Debug, Serialize)]
pub struct DialogExport<'a> {
    /// `edgesim web view dialog`, so a reader knows what it holds.
    pub format: &'static str,
    /// The Edge's name.
    pub edge: &'a str,
    /// The Call-ID.
    pub call_id: &'a str,
    /// Its ladder.
    pub ladder: &'a Ladder,
    /// Its events (and its connections'), oldest first.
    #[serde(serialize_with = "shared")]
    pub events: &'a [Arc<Stamped>],
}

fn shared<S: serde::Serializer>(events: &&[Arc<Stamped>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(events.iter().map(|e| &**e))
}

/// The dialog as pretty JSON.
pub fn dialog_json(
    edge: &str,
    call_id: &str,
    ladder: &Ladder,
    events: &[Arc<Stamped>],
) -> Result<String, UiError> {
    serde_json::to_string_pretty(&DialogExport {
        format: "edgesim web view dialog",
        edge,
        call_id,
        ladder,
        events,
    })
    .map_err(|e| UiError::Export(e.to_string()))
}

/// The dialog's SIP messages as pcapng: each connection opened by the peer (an inbound Edge's
/// connections) with its certificate's name, its messages in order, and its close when the view saw it.
/// `None` when the dialog has no message.
pub async fn dialog_pcapng(events: &[Arc<Stamped>]) -> Result<Option<Vec<u8>>, UiError> {
    if !events
        .iter()
        .any(|e| matches!(e.event, UiEvent::Message(_)))
    {
        return Ok(None);
    }
    let io = |e: std::io::Error| UiError::Export(format!("pcapng: {e}"));
    let dir = tempfile::Builder::new()
        .prefix("edgesim-ui-")
        .tempdir()
        .map_err(io)?;
    let path = dir.path().join("dialog.pcapng");
    let writer = PcapWriter::open(
        &path,
        PcapLimits {
            // The history is bounded far below this: one file holds the whole dialog.
            max_bytes: u64::MAX,
            keep: 0,
            queue: 256,
        },
    )
    .map_err(|e| UiError::Export(e.to_string()))?;
    // Names of connections: their certificates' (else a decision's peer_cert from that address).
    let mut names: BTreeMap<u64, String> = BTreeMap::new();
    let mut by_remote: BTreeMap<String, String> = BTreeMap::new();
    for e in events {
        match &e.event {
            UiEvent::Connection(c) => {
                if let Some(x) = &c.client_cert {
                    let n = x.san.first().cloned().unwrap_or_else(|| x.subject.clone());
                    names.insert(c.conn, n);
                }
            }
            UiEvent::Decision(d) => {
                if let Some(n) = &d.peer_cert {
                    by_remote.insert(d.remote.clone(), n.clone());
                }
            }
            _ => {}
        }
    }
    let mut opened = std::collections::HashSet::new();
    for e in events {
        match &e.event {
            UiEvent::Message(m) => {
                if opened.insert(m.conn) {
                    let name = names
                        .get(&m.conn)
                        .or_else(|| by_remote.get(&m.remote.to_string()));
                    writer
                        .conn_opened(
                            m.conn,
                            Side::Remote,
                            m.local,
                            m.remote,
                            name.map(String::as_str),
                        )
                        .await;
                }
                let direction = match m.direction {
                    MessageDirection::In => Direction::In,
                    MessageDirection::Out => Direction::Out,
                };
                writer.message(m.conn, direction, m.raw.as_bytes()).await;
            }
            UiEvent::ConnectionClosed(c) if opened.contains(&c.conn) => {
                let closer = match c.by {
                    Closer::Peer => Side::Remote,
                    Closer::Edge => Side::Local,
                };
                writer.conn_closed(c.conn, closer).await;
            }
            _ => {}
        }
    }
    writer
        .shutdown()
        .await
        .map_err(|e| UiError::Export(e.to_string()))?;
    let bytes = tokio::fs::read(&path).await.map_err(io)?;
    Ok(Some(bytes))
}
