//! `edgesim call --subscribe` and `call --im` as the Edge, over real TLS and DNS on loopback, through the same
//! route as a call (policy, SRV, Rule 1, A, TCP, TLS, Rule 2). The partner is a second edgesim Edge
//! (`sip.partner.lab`), whose users serve presence and IM: what `call` prints is what its users publish. The
//! partner checks the caller too (skype.lab's SRV → sip.skype.lab, the calling Edge's certificate).
#![allow(clippy::unwrap_used)]

#[path = "common/outbound_lab.rs"]
mod outbound_lab;

use std::sync::Arc;

use edgesim::config::{EdgeConfig, UserAction, UserConfig, UserPresenceConfig};
use edgesim::dns::RecordSpec;
use edgesim::edge::EdgeParts;
use edgesim::lab::builder::{self, LabDns, RunningEdge};
use edgesim::outbound::{CallMethod, CallRequest, call};
use edgesim::pki::{LeafSpec, TlsIdentity};
use outbound_lab::*;

const FROM: &str = "sip:alice@skype.lab";
const TARGET: &str = "sip:bob@partner.lab";

struct TwoEdges {
    lab: Lab,
    dns: edgesim::dns::DnsServer,
    partner: RunningEdge,
}

/// The partner Edge `sip.partner.lab` on 127.0.0.1:0 with user bob (Busy, in a meeting; echo), and DNS
/// where partner.lab's SRV points at `srv_target` (then at the partner's port) and skype.lab's at
/// sip.skype.lab.
async fn two_edges(srv_target: &str) -> TwoEdges {
    let lab = Lab::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let records: Vec<RecordSpec> = vec![
        srv("partner.lab", srv_target, port),
        a(srv_target),
        srv("skype.lab", "sip.skype.lab", 5061),
        a("sip.skype.lab"),
    ];
    let dns = LabDns::with_records(&records).await.unwrap().server;
    let mut config = EdgeConfig::default();
    config.edge.fqdn = "sip.partner.lab".into();
    config.edge.domain = "partner.lab".into();
    // `call` holds the one connection it opened and reads the NOTIFYs and IM replies there: the partner Edge
    // sends them back on it rather than over a connection of its own to skype.lab's SRV target.
    config.edge.reuse_inbound_connection = true;
    config.users = vec![UserConfig {
        user: "bob".into(),
        action: UserAction::Answer,
        ring_ms: 0,
        hangup_after_ms: None,
        presence: UserPresenceConfig {
            availability: Some(6500),
            activity: Some("in-a-meeting".into()),
            display_name: Some("Bob".into()),
            ..UserPresenceConfig::default()
        },
        im: edgesim::im::Behaviour::Echo,
        contacts: Vec::new(),
    }];
    let cert = lab.peer_cert(&LeafSpec::new("sip.partner.lab").san(&["sip.partner.lab"]));
    let lookup = builder::resolver(dns.local_addr(), 300, 0).unwrap();
    let partner = RunningEdge::serve_on(
        EdgeParts {
            config,
            identity: TlsIdentity::from(&cert),
            anchors: lab.anchors.clone(),
            lookup: Arc::new(lookup),
        },
        listener,
    )
    .unwrap();
    TwoEdges { lab, dns, partner }
}

impl TwoEdges {
    async fn stop(self) {
        self.partner
            .stop(std::time::Duration::from_secs(3))
            .await
            .unwrap();
        self.dns.shutdown().await;
    }
}

fn request(method: CallMethod, im: Option<&str>) -> CallRequest {
    CallRequest {
        method,
        hold_ms: 300,
        im_text: im.map(str::to_owned),
        ..CallRequest::invite(TARGET, FROM)
    }
}

#[tokio::test]
async fn subscribe_prints_the_200_and_each_notify_as_a_skype_client_shows_it() {
    let two = two_edges("sip.partner.lab").await;
    let out = call(
        &two.lab.ctx(&two.dns),
        &request(CallMethod::Subscribe, None),
    )
    .await;
    assert_eq!(out.final_status, 200, "{:#?}", out.steps);
    assert_eq!(
        out.seen,
        vec![
            "200 OK (first state): active (expires in 28800 s): Busy (In a meeting)".to_owned(),
            "NOTIFY: terminated (timeout): Busy (In a meeting)".to_owned(),
        ],
        "{:#?}",
        out.steps
    );
    assert_eq!(out.sent, vec!["SUBSCRIBE", "SUBSCRIBE"]);
    assert!(
        out.steps
            .iter()
            .any(|s| s.name == "presence" && s.detail == "granted Expires: 28800")
    );
    two.stop().await;
}

#[tokio::test]
async fn im_prints_the_replies_and_ends_with_bye() {
    let two = two_edges("sip.partner.lab").await;
    let out = call(
        &two.lab.ctx(&two.dns),
        &request(CallMethod::Im, Some("Hello Bob")),
    )
    .await;
    assert_eq!(out.final_status, 200, "{:#?}", out.steps);
    assert_eq!(out.seen, vec!["IM reply: Hello Bob".to_owned()]);
    assert_eq!(out.sent, vec!["INVITE", "ACK", "BYE"]);
    assert!(out.steps.iter().any(|s| s.name == "im"
        && s.ok
        && s.detail == "the first message was taken (Supported: ms-text-format)"));
    two.stop().await;
}

#[tokio::test]
async fn subscribe_and_im_meet_rule_1_and_rule_2_as_a_call_does() {
    // Rule 1: partner.lab's SRV target is outside the domain.
    let two = two_edges("sip.elsewhere.lab").await;
    for method in [CallMethod::Subscribe, CallMethod::Im] {
        let out = call(&two.lab.ctx(&two.dns), &request(method, Some("x"))).await;
        assert_eq!(out.final_status, 504);
        assert!(out.ms_diagnostics.unwrap().starts_with("1009;"));
    }
    two.stop().await;
    // Rule 2: the target is in the domain, but the partner's certificate names another one.
    let two = two_edges("edge.partner.lab").await;
    for method in [CallMethod::Subscribe, CallMethod::Im] {
        let out = call(&two.lab.ctx(&two.dns), &request(method, Some("x"))).await;
        assert_eq!(out.final_status, 504);
        let d = out.ms_diagnostics.unwrap();
        assert!(
            d.starts_with("1010;") && d.contains("SEC_E_WRONG_PRINCIPAL"),
            "{d}"
        );
    }
    two.stop().await;
}

/// The commands themselves.
#[tokio::test]
async fn cli_call_subscribe_and_im() {
    let two = two_edges("sip.partner.lab").await;
    let dir = tempfile::tempdir().unwrap();
    let [_, chain, key] = two.lab.edge.write(dir.path(), "edge").unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, two.lab.ca.chain_pem()).unwrap();
    let server = two.dns.local_addr().to_string();
    let run = |extra: &[&str]| {
        let mut args: Vec<String> = vec!["call".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend([
            "--hold".into(),
            "0.3".into(),
            "--dns".into(),
            server.clone(),
            "--ca".into(),
            ca.display().to_string(),
            "--cert".into(),
            chain.display().to_string(),
            "--key".into(),
            key.display().to_string(),
        ]);
        tokio::process::Command::new(env!("CARGO_BIN_EXE_edgesim"))
            .args(args)
            .output()
    };
    let out = run(&["--subscribe", TARGET]).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("SIP/2.0 200 OK\n"), "{stdout}");
    assert!(
        stdout.contains(
            "\n200 OK (first state): active (expires in 28800 s): Busy (In a meeting)\nNOTIFY: terminated (timeout): Busy (In a meeting)\n"
        ),
        "{stdout}"
    );
    let out = run(&["--im", "hi there", TARGET]).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("\nIM reply: hi there\n"), "{stdout}");
    two.stop().await;
}
