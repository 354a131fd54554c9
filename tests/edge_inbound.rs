//! The inbound Edge over real mutual TLS and real DNS on loopback: the seed's two failures byte for byte,
//! a working federation, and one test per other branch of FEDERATION.md "Inbound".
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;

use edge_lab::*;
use edgesim::config::{AllowedDomain, TlsVersion, UserAction};
use edgesim::diagnostics::VerdictKind;
use edgesim::dns::FaultKind;
use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient, PeerError};
use edgesim::pki::{EkuChoice, KeyType, LabCa, LeafSpec};

const SEED_INVITE: &[u8] = include_bytes!("fixtures/sip/expressway-invite.sip");

/// The 504 the Edge must send for the seed INVITE: the seed layout, with this connection's port and cid.
fn expected_504(port: u16, cid: &str, tag: &str, diag: Option<&str>) -> String {
    let mut s = format!(
        "SIP/2.0 504 Server time-out\r\n\
Via: SIP/2.0/TLS 10.48.36.47:5061;egress-zone=SkypeFederationDNS;branch=z9hG4bK7a3c0e6d1b2f4a5968c7d0e1f2a3b4c5;proxy-call-id=6b2a018a-2da5-4013-a7e5-4e1455feadf7;rport; received=127.0.0.1; ms-received-port={port};ms-received-cid={cid}\r\n\
Via: SIP/2.0/TLS 10.48.36.46:5061;egress-zone=TraversalZoneClient1;branch=z9hG4bK1f8bbe5926dc6abd06ea964d8fde1450156486;proxy-call-id=e7e33845-c384-4c28-a42d-016863640fbb;received=10.48.36.46;rport=28119;ingress-zone=TraversalZoneServer1\r\n\
Via: SIP/2.0/TLS 10.48.54.160:52768;branch=z9hG4bK6594a02846406f4a5459d5f58a8d26b3;received=10.48.54.160;ingress-zone=NeighborZoneAcano1SIP\r\n\
Call-ID: f1b3ad5d-183b-4632-b210-c2f9bec71960\r\n\
CSeq: 2066245576 INVITE\r\n\
From: \"DX70 Steven\" <sip:2000@acano.steven.lab>;tag=9fea3e7d70afd884\r\n\
To: <sip:stejanss@skype.lab>;tag={tag}\r\n"
    );
    if let Some(d) = diag {
        s.push_str(&format!("ms-diagnostics: {d}\r\n"));
        // The public form beside it: the same without source= (MS-OCER §2.2.1.2).
        let public = edgesim::diagnostics::MsDiagnostic::parse(d)
            .unwrap()
            .public();
        s.push_str(&format!("ms-diagnostics-public: {}\r\n", public.render()));
    }
    s.push_str("Server: RTC/6.0\r\nContent-Length: 0\r\n\r\n");
    s
}

fn cid_and_tag(m: &edgesim::sip::Message) -> (String, String) {
    let via = m.top_via().unwrap();
    let cid = via.param("ms-received-cid").unwrap().unwrap().to_string();
    let tag = m.to().unwrap().tag().unwrap().to_string();
    (cid, tag)
}

#[tokio::test]
async fn seed_rule1_srv_target_outside_domain() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.steven.lab")], |_| {}).await;
    let mut events = lab.edge.subscribe();
    let mut peer = lab.peer(&["vcse.steven.lab"]).await;
    let port = peer.local_addr().port();
    let resp = peer.request(SEED_INVITE, T).await.unwrap();
    let (cid, tag) = cid_and_tag(&resp);
    let diag = "1009;reason=\"No match for domain in DNS SRV results\";domain=\"acano.steven.lab\";fqdn1=\"vcse.steven.lab:5061\";source=\"sip.skype.lab\"";
    assert_eq!(
        text(resp.as_bytes()),
        expected_504(port, &cid, &tag, Some(diag))
    );

    let records = lab.edge.log_records();
    assert_eq!(records.len(), 1);
    let (head, body) = records[0].split_once('\n').unwrap();
    assert!(
        head.starts_with("TL WARN(TF_DIAG) [sfvedge\\sfvedge]"),
        "{head}"
    );
    assert!(head.contains(" (SIPStack,SIPAdminLog::WriteDiagnosticEvent:SIPAdminLog.cpp(830)) ["));
    assert!(head.ends_with("] $$begin record"));
    assert_eq!(
        body,
        format!(
            "Severity: warning Text: The domain of the message resolved by DNS SRV but none of the FQDNs is in the same domain \
Result-Code: 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH SIP-Start-Line: INVITE sip:stejanss@skype.lab SIP/2.0 \
SIP-Call-ID: f1b3ad5d-183b-4632-b210-c2f9bec71960 SIP-CSeq: 2066245576 INVITE Peer: vcse.steven.lab:{port} \
Data: domain=\"acano.steven.lab\";fqdn1=\"vcse.steven.lab:5061\" $$end_record"
        )
    );
    // The same record reached the log file, and the decision the events file and subscribers (written by the
    // background writer: flushed first).
    lab.edge.flush();
    let file = std::fs::read_to_string(lab.dir.path().join("edge.log")).unwrap();
    assert_eq!(file, format!("{}\n", records[0]));
    let ev = Lab::event(&mut events).await;
    assert_eq!(ev.status, Some(504));
    assert_eq!(ev.domain.as_deref(), Some("acano.steven.lab"));
    assert_eq!(ev.peer_cert.as_deref(), Some("vcse.steven.lab"));
    let lines = std::fs::read_to_string(lab.dir.path().join("events.jsonl")).unwrap();
    assert!(lines.contains("0xc3e93d6f"), "{lines}");
    lab.stop().await;
}

#[tokio::test]
async fn seed_rule2_certificate_lacks_the_srv_target() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |_| {}).await;
    let mut peer = lab.peer(&["vcse.steven.lab"]).await;
    let port = peer.local_addr().port();
    let resp = peer.request(SEED_INVITE, T).await.unwrap();
    let (cid, tag) = cid_and_tag(&resp);
    let diag = "1010;reason=\"Certificate trust with another server could not be established\";ErrorType=\"The peer certificate does not contain a matching FQDN\";tls-target=\"vcse.acano.steven.lab\";PeerServer=\"vcse.steven.lab\";HRESULT=\"0x80090322 (SEC_E_WRONG_PRINCIPAL)\";source=\"sip.skype.lab\"";
    let got = text(resp.as_bytes());
    assert_eq!(got, expected_504(port, &cid, &tag, Some(diag)));
    let records = lab.edge.log_records();
    let (head, body) = records[0].split_once('\n').unwrap();
    assert!(head.starts_with("TL ERROR(TF_DIAG) [sfvedge\\sfvedge]"));
    assert!(head.contains("SIPAdminLog.cpp(833)"));
    assert_eq!(
        body,
        format!(
            "Severity: error Text: Message cannot be routed because the peer's certificate does not contain a matching FQDN \
Result-Code: 0xc3e93d67 SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH SIP-Start-Line: INVITE sip:stejanss@skype.lab SIP/2.0 \
SIP-Call-ID: f1b3ad5d-183b-4632-b210-c2f9bec71960 SIP-CSeq: 2066245576 INVITE Peer: vcse.steven.lab:{port} \
Data: expectedfqdn=\"vcse.acano.steven.lab\";certName=\"vcse.steven.lab\";info=\"The peer certificate does not contain a matching FQDN\" $$end_record"
        )
    );
    lab.stop().await;
}

#[tokio::test]
async fn faithful_mode_sends_the_bare_504() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.steven.lab")], |c| {
        c.faithful = true
    })
    .await;
    let mut peer = lab.peer(&["vcse.steven.lab"]).await;
    let port = peer.local_addr().port();
    let resp = peer.request(SEED_INVITE, T).await.unwrap();
    let (cid, tag) = cid_and_tag(&resp);
    assert_eq!(text(resp.as_bytes()), expected_504(port, &cid, &tag, None));
    // The record is still written: the Edge logs what it does not tell the peer.
    assert_eq!(lab.edge.log_records().len(), 1);
    lab.stop().await;
}

/// A correct setup: 180 then 200 with an SDP answer, then ACK and BYE.
#[tokio::test]
async fn correct_setup_rings_and_answers_with_sdp() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |_| {}).await;
    let mut events = lab.edge.subscribe();
    let mut peer = lab
        .peer(&["vcse.acano.steven.lab", "vcse.steven.lab"])
        .await;
    let port = peer.local_addr().port();
    let req = invite();
    peer.send(&req.build()).await.unwrap();
    let ringing = peer.recv(T).await.unwrap().unwrap();
    assert_eq!(ringing.status_code(), Some(180));
    let ok = peer.final_response(T).await.unwrap();
    assert_eq!(ok.status_code(), Some(200));
    assert_eq!(header(&ok, "Server").as_deref(), Some("RTC/6.0"));
    assert_eq!(
        header(&ok, "Content-Type").as_deref(),
        Some("application/sdp")
    );
    let body = text(ok.body());
    assert!(body.starts_with("v=0\r\n"), "{body}");
    assert!(body.contains("m=audio 50000 RTP/SAVP 8 101"), "{body}");
    let via = ok.top_via().unwrap();
    assert_eq!(via.received(), Some("127.0.0.1"));
    // rport stays as the sender wrote it (valueless): a real Edge reports the port in ms-received-port.
    assert_eq!(via.rport(), Some(None));
    assert_eq!(
        via.param("ms-received-port"),
        Some(Some(port.to_string().as_str()))
    );
    assert_eq!(ok.vias().unwrap().len(), 2);
    let tag = ok.to().unwrap().tag().unwrap().to_string();
    assert_eq!(ringing.to().unwrap().tag(), Some(tag.as_str()));
    let ev = Lab::event(&mut events).await;
    assert_eq!(ev.verdict, VerdictKind::Accept);

    peer.send(&req.follow_up("ACK", Some(&tag)).build())
        .await
        .unwrap();
    let bye = req.follow_up("BYE", Some(&tag));
    let r = peer.request(&bye.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(200));
    // A second BYE finds no dialog.
    let r = peer
        .request(&bye.follow_up("BYE", None).build(), T)
        .await
        .unwrap();
    assert_eq!(r.status_code(), Some(481));
    assert!(lab.edge.log_records().is_empty());
    lab.stop().await;
}

#[tokio::test]
async fn edge_hangs_up_with_bye_after_hangup_after_ms() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |c| {
        c.users[0].hangup_after_ms = Some(100);
        // The BYE back on the inbound connection (a real Edge opens its own: tests/edge_outbound_conn.rs).
        c.edge.reuse_inbound_connection = true;
    })
    .await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let ok = peer.request(&invite().build(), T).await.unwrap();
    assert_eq!(ok.status_code(), Some(200));
    let bye = peer.recv(T).await.unwrap().unwrap();
    assert_eq!(bye.method(), Some(&b"BYE"[..]));
    assert_eq!(bye.call_id().unwrap(), ok.call_id().unwrap());
    assert_eq!(bye.from().unwrap().tag(), ok.to().unwrap().tag());
    lab.stop().await;
}

#[tokio::test]
async fn cancel_while_ringing_gives_200_and_487() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |_| {}).await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let req = ExpresswayRequest::new(
        "INVITE",
        "sip:2000@acano.steven.lab",
        "sip:ringer@skype.lab",
    );
    peer.send(&req.build()).await.unwrap();
    assert_eq!(
        peer.recv(T).await.unwrap().unwrap().status_code(),
        Some(180)
    );
    peer.send(&req.follow_up("CANCEL", None).build())
        .await
        .unwrap();
    let a = peer.recv(T).await.unwrap().unwrap();
    let b = peer.recv(T).await.unwrap().unwrap();
    assert_eq!(
        (a.status_code(), a.cseq().unwrap().method.as_str()),
        (Some(200), "CANCEL")
    );
    assert_eq!(
        (b.status_code(), b.cseq().unwrap().method.as_str()),
        (Some(487), "INVITE")
    );
    lab.stop().await;
}

#[tokio::test]
async fn blocked_domain_gets_403() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |c| {
        c.policy.blocked_domains = vec!["acano.steven.lab".into()];
    })
    .await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let r = peer.request(&invite().build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(403));
    assert!(header(&r, "ms-diagnostics").unwrap().starts_with("1002;"));
    lab.stop().await;
}

#[tokio::test]
async fn fixed_fqdn_partner_skips_srv_and_checks_the_certificate() {
    let lab = lab(vec![], |c| {
        c.policy.allowed_domains = vec![AllowedDomain {
            domain: "acano.steven.lab".into(),
            proxy_fqdn: Some("vcse.acano.steven.lab".into()),
        }];
    })
    .await;
    let mut good = lab.peer(&["vcse.acano.steven.lab"]).await;
    let r = good.request(&invite().build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(200));
    let mut bad = lab.peer(&["vcse.steven.lab"]).await;
    let r = bad.request(&invite().build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    assert!(header(&r, "ms-diagnostics").unwrap().starts_with("1010;"));
    assert_eq!(
        lab.dns().queries_received(),
        0,
        "a fixed partner FQDN needs no SRV lookup"
    );
    lab.stop().await;
}

#[tokio::test]
async fn no_srv_nxdomain_and_servfail_give_504_1008() {
    let lab = lab(
        vec![
            srv(
                "_sipfederationtls._tcp.other.steven.lab",
                "vcse.other.steven.lab",
            ),
            fault("broken.lab", FaultKind::Servfail),
        ],
        |_| {},
    )
    .await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let r = peer.request(&invite().build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    let d = header(&r, "ms-diagnostics").unwrap();
    assert!(
        d.starts_with(
            "1008;reason=\"Unable to resolve DNS SRV record\";domain=\"acano.steven.lab\""
        ),
        "{d}"
    );
    let req = ExpresswayRequest::new("INVITE", "sip:2000@x.broken.lab", "sip:stejanss@skype.lab");
    let r = peer.request(&req.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    let records = lab.edge.log_records();
    assert!(records[0].contains("reason=\"NXDOMAIN\""), "{}", records[0]);
    assert!(records[1].contains("reason=\"SERVFAIL\""), "{}", records[1]);
    lab.stop().await;
}

#[tokio::test]
async fn dns_timeout_gives_504() {
    let lab = lab(vec![fault("acano.steven.lab", FaultKind::Drop)], |_| {}).await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let r = peer.request(&invite().build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    assert!(lab.edge.log_records()[0].contains("reason=\"TIMEOUT\""));
    lab.stop().await;
}

#[tokio::test]
async fn wildcard_certificate_refused_by_default_accepted_by_switch() {
    for allow in [false, true] {
        let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |c| {
            c.policy.allow_wildcard = allow;
        })
        .await;
        let mut peer = lab.peer(&["*.acano.steven.lab"]).await;
        let r = peer.request(&invite().build(), T).await.unwrap();
        assert_eq!(r.status_code(), Some(if allow { 200 } else { 504 }));
        lab.stop().await;
    }
}

#[tokio::test]
async fn missing_client_auth_eku_gets_an_explaining_504() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |_| {}).await;
    let mut events = lab.edge.subscribe();
    let id = lab.cert(LeafSpec::new("vcse.acano.steven.lab").eku(EkuChoice::ServerAuth));
    let mut peer = lab.peer_with(Some(&id)).await;
    let r = peer.request(&invite().build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    let d = header(&r, "ms-diagnostics").unwrap();
    assert!(d.starts_with("1010;"), "{d}");
    let ev = Lab::event(&mut events).await;
    assert!(ev.explanation.unwrap().contains("Client Authentication"));
    lab.stop().await;
}

#[tokio::test]
async fn pai_domain_is_preferred_over_from() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |_| {}).await;
    let mut events = lab.edge.subscribe();
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let req = ExpresswayRequest::new("INVITE", "sip:2000@unknown.lab", "sip:stejanss@skype.lab")
        .pai("sip:2000@acano.steven.lab");
    let r = peer.request(&req.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(200));
    assert_eq!(
        Lab::event(&mut events).await.domain.as_deref(),
        Some("acano.steven.lab")
    );
    lab.stop().await;
}

/// A refused certificate: no SIP answer, the connection ends, and the reason is recorded.
async fn assert_refused(lab: &Lab, id: Option<&edgesim::pki::TlsIdentity>, reason: &str) {
    let mut events = lab.edge.subscribe();
    let outcome =
        match edgesim::lab::peer::client::PeerClient::connect(lab.addr, "sip.skype.lab", id, T)
            .await
        {
            Err(e) => Err(e),
            Ok(mut p) => p.request(&invite().build(), T).await,
        };
    match outcome {
        Err(PeerError::Handshake { .. } | PeerError::Reset | PeerError::Closed) => {}
        other => panic!("expected a refused handshake, got {other:?}"),
    }
    let ev = Lab::event(&mut events).await;
    assert_eq!(ev.verdict, VerdictKind::Reject);
    assert_eq!(ev.status, None, "no SIP answer");
    assert_eq!((ev.method, ev.call_id), (None, None), "no request was read");
    assert!(
        ev.result_code
            .unwrap()
            .contains("SIPPROXY_E_TLS_CLIENT_CERT_REJECTED")
    );
    assert_eq!(ev.log_data[0], ("reason".to_string(), reason.to_string()));
}

#[tokio::test]
async fn untrusted_expired_and_missing_client_certificates_are_refused_at_the_handshake() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |_| {}).await;
    let other_ca = LabCa::generate("someone else's CA", KeyType::EcdsaP256).unwrap();
    let untrusted = edgesim::pki::TlsIdentity::from(
        &other_ca
            .issue(&LeafSpec::new("vcse.acano.steven.lab"))
            .unwrap(),
    );
    assert_refused(&lab, Some(&untrusted), "untrusted root").await;
    let expired = lab.cert(LeafSpec::new("vcse.acano.steven.lab").expired());
    assert_refused(&lab, Some(&expired), "expired").await;
    assert_refused(&lab, None, "missing").await;
    assert_eq!(lab.edge.log_records().len(), 3);
    // Still serving.
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let req = ExpresswayRequest::new("OPTIONS", "sip:2000@acano.steven.lab", "sip:skype.lab");
    assert_eq!(
        peer.request(&req.build(), T).await.unwrap().status_code(),
        Some(200)
    );
    lab.stop().await;
}

#[tokio::test]
async fn users_unknown_busy_and_options_message() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |_| {}).await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let req = ExpresswayRequest::new(
        "INVITE",
        "sip:2000@acano.steven.lab",
        "sip:nobody@skype.lab",
    );
    let r = peer.request(&req.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(404));
    assert_eq!(
        header(&r, "ms-diagnostics").as_deref(),
        Some("4005;reason=\"Destination URI either not enabled for SIP or does not exist\"")
    );
    let req = ExpresswayRequest::new("INVITE", "sip:2000@acano.steven.lab", "sip:busy@skype.lab");
    assert_eq!(
        peer.request(&req.build(), T).await.unwrap().status_code(),
        Some(486)
    );
    let req = ExpresswayRequest::new("OPTIONS", "sip:2000@acano.steven.lab", "sip:skype.lab");
    let r = peer.request(&req.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(200));
    assert!(header(&r, "Allow").unwrap().contains("INVITE"));
    let mut req = ExpresswayRequest::new(
        "MESSAGE",
        "sip:2000@acano.steven.lab",
        "sip:stejanss@skype.lab",
    );
    req.body = Some(bytes::Bytes::from_static(b"hello"));
    req.content_type = Some("text/plain".into());
    assert_eq!(
        peer.request(&req.build(), T).await.unwrap().status_code(),
        Some(200)
    );
    // Presence (issue 16): a SUBSCRIBE without Event reaches the presence core, which answers 400.
    let req = ExpresswayRequest::new(
        "SUBSCRIBE",
        "sip:2000@acano.steven.lab",
        "sip:stejanss@skype.lab",
    );
    assert_eq!(
        peer.request(&req.build(), T).await.unwrap().status_code(),
        Some(400)
    );
    lab.stop().await;
}

#[tokio::test]
async fn decline_and_unavailable_users() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |c| {
        c.users.push(user("decliner", UserAction::Decline));
        c.users.push(user("away", UserAction::Unavailable));
    })
    .await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    for (who, code) in [("decliner", 603), ("away", 480)] {
        let req = ExpresswayRequest::new(
            "INVITE",
            "sip:2000@acano.steven.lab",
            &format!("sip:{who}@skype.lab"),
        );
        assert_eq!(
            peer.request(&req.build(), T).await.unwrap().status_code(),
            Some(code)
        );
    }
    lab.stop().await;
}

#[tokio::test]
async fn optional_client_certificate_lets_the_peer_in_and_rule_2_explains() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |c| {
        c.tls.client_cert = edgesim::config::ClientCertMode::Optional;
    })
    .await;
    let mut peer = lab.peer_with(None).await;
    let port = peer.local_addr().port();
    let r = peer.request(&invite().build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    let records = lab.edge.log_records();
    // No certificate, no name: the Peer is the source address.
    assert!(
        records[0].contains(&format!("Peer: 127.0.0.1:{port} ")),
        "{}",
        records[0]
    );
    // No certificate is its own outcome (issue 11 item 1), not a name mismatch: see tests/edge_defects.rs.
    assert!(records[0].contains("0xc3e93e10"), "{}", records[0]);
    lab.stop().await;
}

#[tokio::test]
async fn tls13_missing_certificate_surfaces_as_an_alert_on_first_read() {
    // TLS 1.3 is what this is about: the default profile (sfb2015) offers 1.2 only.
    let lab = lab(vec![], |c| {
        c.tls.versions = Some(vec![TlsVersion::Tls12, TlsVersion::Tls13])
    })
    .await;
    let mut peer = lab.peer_with(None).await;
    match peer.request(&invite().build(), T).await {
        Err(PeerError::Handshake { alert }) => {
            assert!(alert.contains("CertificateRequired"), "{alert}")
        }
        other => panic!("expected the certificate_required alert, got {other:?}"),
    }
    lab.stop().await;
}

#[tokio::test]
async fn untrusted_certificate_is_reset_without_sip_answer() {
    let other_ca = LabCa::generate("someone else's CA", KeyType::EcdsaP256).unwrap();
    let id = edgesim::pki::TlsIdentity::from(
        &other_ca
            .issue(&LeafSpec::new("vcse.acano.steven.lab"))
            .unwrap(),
    );
    // TLS 1.2 (the default profile, sfb2015): the handshake itself fails.
    let lab12 = lab(vec![], |_| {}).await;
    let r = PeerClient::connect(lab12.addr, "sip.skype.lab", Some(&id), T).await;
    assert!(matches!(r, Err(PeerError::Reset)), "{:?}", r.err());
    lab12.stop().await;
    // TLS 1.3: the client's handshake completes first, and the reset arrives on its first read.
    let lab13 = lab(vec![], |c| {
        c.tls.versions = Some(vec![TlsVersion::Tls12, TlsVersion::Tls13])
    })
    .await;
    let mut peer = lab13.peer_with(Some(&id)).await;
    let r = peer.request(&invite().build(), T).await;
    assert!(matches!(r, Err(PeerError::Reset)), "{r:?}");
    lab13.stop().await;
}

#[tokio::test]
async fn tls_versions_follow_the_profile_and_the_configuration() {
    // The default profile (sfb2015): TLS 1.2, what rustls has of a real SfB 2015 Edge's 1.2/1.1/1.0.
    let sfb2015 = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |_| {}).await;
    let peer = sfb2015.peer(&["vcse.acano.steven.lab"]).await;
    assert_eq!(peer.tls_version().as_deref(), Some("TLSv1_2"));

    let sfb2019 = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |c| {
        c.edge.version = edgesim::config::EdgeVersion::Sfb2019;
    })
    .await;
    let peer = sfb2019.peer(&["vcse.acano.steven.lab"]).await;
    assert_eq!(peer.tls_version().as_deref(), Some("TLSv1_3"));

    // An explicit [tls] versions overrides the profile.
    let only12 = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |c| {
        c.edge.version = edgesim::config::EdgeVersion::Sfb2019;
        c.tls.versions = Some(vec![TlsVersion::Tls12]);
    })
    .await;
    let mut peer = only12.peer(&["vcse.acano.steven.lab"]).await;
    assert_eq!(peer.tls_version().as_deref(), Some("TLSv1_2"));
    let req = ExpresswayRequest::new("OPTIONS", "sip:2000@acano.steven.lab", "sip:skype.lab");
    let r = peer.request(&req.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(200));
}
