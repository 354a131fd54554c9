//! Shared lab for the federation-policy tests (`policy_*`, issue 15): an Edge whose configuration is TOML text
//! in the Skype for Business terms (`[access_edge]`, `[[allowed_domains]]`, `[[blocked_domains]]`, `[[users]]`
//! with `contacts`), loaded through `EdgeConfig::from_toml` as `serve --config` loads it, on the inbound preset
//! of `edge_lab` (real mutual TLS, the embedded DNS server on loopback). Peers are Expressway-Es with
//! certificates issued at run time.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use edgesim::config::EdgeConfig;
use edgesim::diagnostics::DecisionEvent;
use edgesim::dns::RecordSpec;
use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient};
use edgesim::sip::Message;

use super::edge_lab::{self, Lab, LabBuilder};

/// The partners' DNS: acano.steven.lab and cms.steven.lab are found by SRV (discovered partners unless listed);
/// fabrikam.lab has no SRV record at all (an allowed partner with a ProxyFqdn needs none).
pub fn partner_records() -> Vec<RecordSpec> {
    vec![
        edge_lab::srv(
            "_sipfederationtls._tcp.acano.steven.lab",
            "vcse.acano.steven.lab",
        ),
        edge_lab::srv(
            "_sipfederationtls._tcp.cms.steven.lab",
            "vcse.cms.steven.lab",
        ),
        edge_lab::srv("_sipfederationtls._tcp.contoso.lab", "sip.contoso.lab"),
    ]
}

/// An Edge configured by `toml` (its users and federation settings), with the inbound preset's timeouts and
/// files, and no per-connection rate limit in the way (`limits.max_requests_per_sec` is the Edge's own
/// per-connection guard, not a partner setting: these tests are about DiscoveredPartnerStandardRate).
pub async fn lab(toml: &str) -> Lab {
    let cfg = EdgeConfig::from_toml(toml, Path::new("policy-test.toml")).unwrap();
    LabBuilder::inbound()
        .records(partner_records())
        .config(move |c| {
            let keep = c.clone();
            *c = cfg;
            c.limits = keep.limits;
            c.limits.max_requests_per_sec = 1000;
            c.log_file = keep.log_file;
            c.events_file = keep.events_file;
        })
        .start()
        .await
}

/// A MESSAGE from `from` to `to`, Expressway style.
pub fn message(from: &str, to: &str) -> ExpresswayRequest {
    let mut r = ExpresswayRequest::new("MESSAGE", from, to);
    r.body = Some(bytes::Bytes::from_static(b"hello from a policy test"));
    r.content_type = Some("text/plain".into());
    r
}

/// Sends `reqs` in one write (pipelined, back to back) and reads one final response each, in order.
pub async fn pipelined(peer: &mut PeerClient, reqs: &[ExpresswayRequest]) -> Vec<Message> {
    let mut all = Vec::new();
    for r in reqs {
        all.extend_from_slice(&r.build());
    }
    peer.send(&all).await.unwrap();
    let mut out = Vec::new();
    while out.len() < reqs.len() {
        out.push(peer.final_response(Duration::from_secs(5)).await.unwrap());
    }
    out
}

/// The next `n` decision events.
pub async fn events(
    rx: &mut tokio::sync::broadcast::Receiver<DecisionEvent>,
    n: usize,
) -> Vec<DecisionEvent> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(Lab::event(rx).await);
    }
    v
}

/// The statuses of `responses`, in order.
pub fn statuses(responses: &[Message]) -> Vec<u16> {
    responses.iter().map(|r| r.status_code().unwrap()).collect()
}

/// A log-data value of an event.
pub fn data<'a>(e: &'a DecisionEvent, key: &str) -> Option<&'a str> {
    e.log_data
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}
