//! Edge to Edge: edgesim's outbound caller (sip.skype.lab) calls edgesim's own inbound listener
//! (sip.fabrikam.lab) over real mutual TLS, each side applying the federation rules to the other.
#![allow(clippy::unwrap_used)]

#[path = "common/outbound_lab.rs"]
mod lab;

use std::time::Duration;

use edgesim::config::{EdgeConfig, UserAction, UserConfig};
use edgesim::dns::{DnsServer, RecordSpec};
use edgesim::edge::EdgeParts;
use edgesim::lab::builder::RunningEdge;
use edgesim::outbound::{CallRequest, OutboundContext, OutcomeClass, call};
use edgesim::pki::{LeafSpec, TlsIdentity};
use lab::{Lab, a, dns, srv};
use tokio::net::TcpListener;

struct Remote {
    ctx: OutboundContext,
    _dns: DnsServer,
    edge: RunningEdge,
}

/// Starts the inbound Edge sip.fabrikam.lab (user bob answers); `caller_srv` publishes skype.lab's SRV or not.
async fn remote(lab: &Lab, caller_srv: bool) -> Remote {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut records: Vec<RecordSpec> = vec![
        srv("fabrikam.lab", "sip.fabrikam.lab", port),
        a("sip.fabrikam.lab"),
    ];
    if caller_srv {
        // The inbound Edge checks the caller's domain the same way (Rule 1 + Rule 2 on our client certificate).
        records.push(srv("skype.lab", "sip.skype.lab", 5061));
    }
    records.push(a("sip.skype.lab"));
    let dns = dns(&records).await;
    let ctx = lab.ctx(&dns);
    let mut cfg = EdgeConfig {
        users: vec![UserConfig {
            user: "bob".into(),
            action: UserAction::Answer,
            ring_ms: 10,
            hangup_after_ms: None,
            presence: Default::default(),
            im: Default::default(),
            contacts: Vec::new(),
        }],
        ..EdgeConfig::default()
    };
    cfg.edge.fqdn = "sip.fabrikam.lab".into();
    cfg.edge.domain = "fabrikam.lab".into();
    let cert = lab.peer_cert(&LeafSpec::new("sip.fabrikam.lab"));
    let parts = EdgeParts {
        config: cfg,
        identity: TlsIdentity::from(&cert),
        anchors: lab.anchors.clone(),
        lookup: ctx.lookup.clone(),
    };
    // Bound first: the DNS records name its port.
    let edge = RunningEdge::serve_on(parts, listener).unwrap();
    Remote {
        ctx,
        _dns: dns,
        edge,
    }
}

#[tokio::test]
async fn outbound_call_into_edgesims_own_inbound_edge() {
    let lab = Lab::new();
    let r = remote(&lab, true).await;
    let out = call(
        &r.ctx,
        &CallRequest::invite("sip:bob@fabrikam.lab", "sip:alice@skype.lab"),
    )
    .await;
    assert_eq!(
        out.class,
        OutcomeClass::Connected,
        "{:?}\n{}",
        out.steps,
        out.explanation
    );
    assert_eq!(out.sent, vec!["INVITE", "ACK", "BYE"]);
    assert!(out.steps.iter().all(|s| s.ok), "{:?}", out.steps);
    let _ = r.edge.stop(Duration::from_secs(3)).await;
}

/// The remote Edge cannot find skype.lab's SRV: its 504 with its own 1008 passes through, no 1034 is added.
#[tokio::test]
async fn remote_edge_refusal_passes_through() {
    let lab = Lab::new();
    let r = remote(&lab, false).await;
    let out = call(
        &r.ctx,
        &CallRequest::invite("sip:bob@fabrikam.lab", "sip:alice@skype.lab"),
    )
    .await;
    assert_eq!(out.class, OutcomeClass::Rejected(504), "{:?}", out.steps);
    let d = out.ms_diagnostics.unwrap();
    assert!(
        d.starts_with("1008;") && d.contains(r#"source="sip.fabrikam.lab""#),
        "{d}"
    );
    let _ = r.edge.stop(Duration::from_secs(3)).await;
}
