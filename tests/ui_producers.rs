//! The web view's producers on real parts: connection facts read from a real TLS handshake on loopback
//! (SNI, version, suite, the client certificate's subject, SAN, issuer, EKUs, expiry, chain verdict), DNS
//! questions observed on their way to the embedded DNS server, and a running Edge's decisions bridged to
//! the hub with their Edge records (a refused call and a refused handshake).
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use edge_lab::{SRV_ACANO, T, fault, invite, srv};
use edgesim::dns::{
    DnsServer, FaultKind, HickoryLookup, Lookup, RecordSpec, ResolverSettings, ZoneSet,
};
use edgesim::lab::peer::client::PeerClient;
use edgesim::pki::{
    self, ClientAuthMode, EkuChoice, KeyType, LabCa, LeafSpec, TlsIdentity, TrustAnchors, Usage,
};
use edgesim::ui::bridge::{ObservedLookup, bridge_decisions};
use edgesim::ui::{ConnectionView, Outcome, UiEvent, UiHub, UiLimits, Verdict};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A TLS server on loopback that asks for a client certificate and hands back the facts of the first
/// connection, checked against `anchors`.
async fn handshake(
    server_id: &TlsIdentity,
    anchors: &TrustAnchors,
    client_id: Option<&TlsIdentity>,
) -> ConnectionView {
    let config = pki::server_config(server_id, ClientAuthMode::Optional, anchors.hints()).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn({
        let anchors = anchors.clone();
        async move {
            let (tcp, remote) = listener.accept().await.unwrap();
            let local = tcp.local_addr().unwrap();
            let tls = acceptor.accept(tcp).await.unwrap();
            let conn = tls.get_ref().1;
            let chain = pki::peer_chain(conn);
            let status = (!chain.is_empty()).then(|| {
                pki::verify_chain(
                    &chain,
                    &anchors,
                    Usage::Any,
                    rustls_pki_types::UnixTime::now(),
                )
            });
            ConnectionView::from_tls(0x100, local, remote, conn, status.as_ref())
        }
    });
    let client = PeerClient::connect(addr, "sip.skype.lab", client_id, T)
        .await
        .unwrap();
    let view = tokio::time::timeout(T, server).await.unwrap().unwrap();
    assert_eq!(view.remote, client.local_addr());
    assert_eq!(view.local, addr);
    client.close().await;
    view
}

#[tokio::test]
async fn a_real_handshake_gives_the_connection_and_certificate_facts() {
    let ca = LabCa::generate("edgesim ui test CA", KeyType::EcdsaP256).unwrap();
    let anchors = TrustAnchors::from_certs(&[ca.cert_der().clone()], "test CA").unwrap();
    let edge = TlsIdentity::from(&ca.issue(&LeafSpec::new("sip.skype.lab")).unwrap());
    let peer = TlsIdentity::from(
        &ca.issue(&LeafSpec::new("vcse.steven.lab").san(&["vcse.steven.lab", "steven.lab"]))
            .unwrap(),
    );

    let v = handshake(&edge, &anchors, Some(&peer)).await;
    assert_eq!(v.sni.as_deref(), Some("sip.skype.lab"));
    assert_eq!(v.tls_version.as_deref(), Some("TLS 1.3"));
    assert!(
        v.cipher_suite.as_deref().unwrap().starts_with("TLS13_"),
        "{:?}",
        v.cipher_suite
    );
    let cert = v.client_cert.as_ref().unwrap();
    assert!(
        cert.subject.contains("CN=vcse.steven.lab"),
        "{}",
        cert.subject
    );
    assert_eq!(cert.san, ["vcse.steven.lab", "steven.lab"]);
    assert!(
        cert.issuer.contains("CN=edgesim ui test CA"),
        "{}",
        cert.issuer
    );
    assert_eq!(
        cert.ekus.as_deref(),
        Some(&["serverAuth".to_owned(), "clientAuth".to_owned()][..])
    );
    assert!(cert.days_left > 0, "{cert:?}");
    assert!(cert.not_after.ends_with('Z'), "{}", cert.not_after);
    // The lab issuer's identities send the CA certificate after their own.
    assert_eq!(v.chain_len, 2);
    assert!(v.chain.trusted);
    assert_eq!(v.chain.text, "it chains to a CA the Edge trusts");

    // Another CA's certificate, server-auth only: the facts say so, and the verdict gives the fix.
    let other = LabCa::generate("another lab CA", KeyType::EcdsaP256).unwrap();
    let stranger = TlsIdentity::from(
        &other
            .issue(&LeafSpec::new("vcse.other.lab").eku(EkuChoice::ServerAuth))
            .unwrap(),
    );
    let v = handshake(&edge, &anchors, Some(&stranger)).await;
    let cert = v.client_cert.as_ref().unwrap();
    assert_eq!(cert.ekus.as_deref(), Some(&["serverAuth".to_owned()][..]));
    assert!(!v.chain.trusted);
    assert!(
        v.chain
            .text
            .starts_with("it was issued by a CA the Edge does not trust — add that CA to tls.ca"),
        "{}",
        v.chain.text
    );

    // No certificate at all: nothing to show, nothing checked.
    let v = handshake(&edge, &anchors, None).await;
    assert_eq!(v.client_cert, None);
    assert_eq!(v.chain_len, 0);
    assert!(!v.chain.trusted);
    assert!(v.chain.text.starts_with("not checked"), "{}", v.chain.text);

    // As the page receives it.
    let hub = UiHub::new("sip.skype.lab", UiLimits::default());
    hub.publish(UiEvent::Connection(v));
    let json = serde_json::to_value(&*hub.history()[0]).unwrap();
    assert_eq!(json["kind"], "connection");
    assert_eq!(json["sni"], "sip.skype.lab");
    assert_eq!(json["client_cert"], serde_json::Value::Null);
}

#[tokio::test]
async fn dns_questions_and_answers_are_observed_on_the_way_to_a_real_server() {
    let zones = ZoneSet::from_records(&[
        srv(SRV_ACANO, "vcse.acano.steven.lab"),
        RecordSpec::A {
            name: "vcse.acano.steven.lab".into(),
            address: Ipv4Addr::new(127, 0, 0, 9),
            ttl: 60,
        },
        fault("_sipfederationtls._tcp.servfail.lab", FaultKind::Servfail),
    ])
    .unwrap();
    let dns = DnsServer::bind(zones, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let inner = HickoryLookup::new(ResolverSettings {
        timeout_ms: 500,
        attempts: 1,
        ..ResolverSettings::server(dns.local_addr())
    })
    .unwrap();
    let hub = UiHub::new("sip.skype.lab", UiLimits::default());
    let lookup = ObservedLookup::new(Arc::new(inner), hub.clone());
    let server = dns.local_addr().to_string();
    assert_eq!(lookup.server(), server);

    let records = lookup.srv(SRV_ACANO).await.unwrap();
    assert_eq!(records.len(), 1);
    let ips = lookup.addrs("vcse.acano.steven.lab").await.unwrap();
    assert_eq!(ips, [std::net::IpAddr::from([127, 0, 0, 9])]);
    assert!(
        lookup
            .srv("_sipfederationtls._tcp.servfail.lab")
            .await
            .is_err()
    );

    let seen: Vec<_> = hub
        .history()
        .iter()
        .map(|e| match &e.event {
            UiEvent::Dns(q) => q.clone(),
            other => panic!("not a DNS event: {other:?}"),
        })
        .collect();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        (seen[0].rtype.as_str(), seen[0].question.as_str()),
        ("SRV", SRV_ACANO)
    );
    assert_eq!(seen[0].answers, ["10 10 5061 vcse.acano.steven.lab"]);
    assert_eq!(seen[0].failure, None);
    assert_eq!(seen[0].server, server);
    assert_eq!(seen[1].rtype, "A/AAAA");
    assert_eq!(seen[1].answers, ["127.0.0.9"]);
    assert_eq!(seen[2].answers, Vec::<String>::new());
    assert_eq!(
        seen[2].failure.as_deref(),
        Some(format!("the DNS server {server} answered SERVFAIL").as_str())
    );
    dns.shutdown().await;
}

#[tokio::test]
async fn a_running_edges_decisions_reach_the_hub_with_their_records() {
    let lab = edge_lab::lab(vec![srv(SRV_ACANO, "vcse.steven.lab")], |_| {}).await;
    let hub = UiHub::new("sip.skype.lab", UiLimits::default());
    let stop = CancellationToken::new();
    let bridge = tokio::spawn({
        let edge = lab.edge.clone();
        bridge_decisions(
            lab.edge.subscribe(),
            move || edge.log_records(),
            hub.clone(),
            stop.clone(),
        )
    });

    // A refused call (Rule 1: the SRV target is outside acano.steven.lab).
    let mut peer = lab.peer(&["vcse.steven.lab"]).await;
    let req = invite();
    let r = peer.request(&req.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    peer.close().await;
    // A refused handshake: a certificate from a CA the Edge does not trust.
    let other = LabCa::generate("untrusted CA", KeyType::EcdsaP256).unwrap();
    let stranger = TlsIdentity::from(&other.issue(&LeafSpec::new("vcse.steven.lab")).unwrap());
    if let Ok(mut p) = PeerClient::connect(lab.addr, "sip.skype.lab", Some(&stranger), T).await {
        // TLS 1.3: the client finishes first and reads the reset afterwards.
        let _ = p.recv(Duration::from_secs(1)).await;
    }

    let deadline = tokio::time::Instant::now() + T;
    let decisions = loop {
        let d: Vec<_> = hub
            .history()
            .iter()
            .filter_map(|e| match &e.event {
                UiEvent::Decision(d) => Some(d.clone()),
                _ => None,
            })
            .collect();
        if d.len() >= 2 {
            break d;
        }
        assert!(tokio::time::Instant::now() < deadline, "decisions: {d:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let call = &decisions[0];
    assert_eq!(call.call_id.as_deref(), Some(req.call_id.as_str()));
    assert_eq!(call.verdict, Verdict::Reject);
    assert_eq!(call.response.as_ref().map(|r| r.status), Some(504));
    assert_eq!(call.ms_diagnostics_code, Some(1009));
    assert_eq!(call.steps.len(), 1);
    assert_eq!(call.steps[0].outcome, Outcome::Fail);
    assert_eq!(
        call.steps[0].rule,
        "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"
    );
    let fix = call.fix.as_deref().unwrap();
    assert!(
        fix.starts_with("publish _sipfederationtls._tcp.acano.steven.lab → "),
        "{fix}"
    );
    assert!(
        !call.explanation.as_deref().unwrap().contains("Fix:"),
        "{call:?}"
    );
    let record = call.record.as_deref().unwrap();
    assert!(
        record.contains(&format!("SIP-Call-ID: {} ", req.call_id)),
        "{record}"
    );

    let refused = &decisions[1];
    assert_eq!(refused.method, None);
    assert_eq!(refused.response, None);
    assert_eq!(refused.verdict, Verdict::Reject);
    let record = refused.record.as_deref().unwrap();
    let rc = refused.result_code.as_deref().unwrap();
    assert!(record.contains(&format!("Result-Code: {rc} ")), "{record}");
    assert!(refused.fix.is_some(), "{refused:?}");

    stop.cancel();
    tokio::time::timeout(T, bridge).await.unwrap().unwrap();
    lab.stop().await;
}
