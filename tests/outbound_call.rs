//! `outbound::call` against emulated Expressway-E servers, real TLS and the embedded DNS server on loopback.
//! The seed's two outbound failures (1009, 1010) are reproduced with their exact header values.
#![allow(clippy::unwrap_used)]

#[path = "common/outbound_lab.rs"]
mod lab;

use std::time::Duration;

use edgesim::config::{Identity as EdgeIdentity, PolicyConfig};
use edgesim::lab::peer::server::PeerBehaviour;
use edgesim::outbound::{CallMethod, CallRequest, OutcomeClass, call};
use edgesim::pki::{KeyType, LabCa, LeafSpec};
use edgesim::rules::Policy;
use lab::{Lab, a, closed_port, dns, dns_route, srv};

const FROM: &str = "sip:alice@skype.lab";

fn answer(code: u16, reason: &str) -> PeerBehaviour {
    PeerBehaviour::Answer(code, reason.to_string())
}

#[tokio::test]
async fn seed_1009_srv_target_in_subdomain() {
    let lab = Lab::new();
    let dns = dns_route("cms.steven.lab", "vcse.sub.cms.steven.lab", 5061).await;
    let out = call(
        &lab.ctx(&dns),
        &CallRequest::invite("sip:space@cms.steven.lab", FROM),
    )
    .await;
    assert_eq!(out.class, OutcomeClass::SrvMismatch);
    assert_eq!(
        (out.final_status, out.reason.as_str()),
        (504, "Server time-out")
    );
    let diag = r#"1009;reason="No match for domain in DNS SRV results";domain="cms.steven.lab";fqdn1="vcse.sub.cms.steven.lab:5061";source="sip.skype.lab""#;
    assert_eq!(out.ms_diagnostics.as_deref(), Some(diag));
    assert!(
        out.response_text
            .starts_with("SIP/2.0 504 Server time-out\r\nVia: SIP/2.0/TLS 127.0.0.1:")
    );
    assert!(out.response_text.contains(&format!(
        "\r\nms-diagnostics: {diag}\r\nServer: RTC/6.0\r\nContent-Length: 0\r\n\r\n"
    )));
    assert!(out.response_text.contains("\r\nCSeq: 1 INVITE\r\n"));
    assert!(
        out.explanation.contains("vcse.cms.steven.lab"),
        "{}",
        out.explanation
    );
    assert!(out.sent.is_empty());
}

#[tokio::test]
async fn seed_1010_certificate_without_the_srv_target() {
    let lab = Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("vcse.steven.lab"));
    let peer = lab.peer(&cert, answer(200, "OK")).await;
    let dns = dns_route(
        "cms.steven.lab",
        "vcse.cms.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let out = call(
        &lab.ctx(&dns),
        &CallRequest::invite("sip:space@cms.steven.lab", FROM),
    )
    .await;
    assert_eq!(out.class, OutcomeClass::CertMismatch);
    assert_eq!(out.final_status, 504);
    let diag = r#"1010;reason="Certificate trust with another server could not be established";ErrorType="The peer certificate does not contain a matching FQDN";tls-target="vcse.cms.steven.lab";PeerServer="vcse.steven.lab";HRESULT="0x80090322 (SEC_E_WRONG_PRINCIPAL)";source="sip.skype.lab""#;
    assert_eq!(out.ms_diagnostics.as_deref(), Some(diag));
    assert!(
        out.explanation
            .contains("add vcse.cms.steven.lab to the certificate's SAN"),
        "{}",
        out.explanation
    );
    // The Edge sent its SNI and certificate, then no SIP.
    assert!(peer.wait_connections(1, Duration::from_secs(2)).await);
    let conns = peer.connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].sni.as_deref(), Some("vcse.cms.steven.lab"));
    assert!(peer.received().is_empty());
}

#[tokio::test]
async fn untrusted_root_and_expired() {
    let lab = Lab::new();
    let other = LabCa::generate("some other CA", KeyType::EcdsaP256).unwrap();
    let stranger = other
        .issue(&LeafSpec::new("vcse.acano.steven.lab"))
        .unwrap();
    let expired = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab").expired());
    let p1 = lab.peer(&stranger, answer(200, "OK")).await;
    let p2 = lab.peer(&expired, answer(200, "OK")).await;
    let dns = dns(&[
        srv(
            "acano.steven.lab",
            "vcse.acano.steven.lab",
            p1.local_addr().port(),
        ),
        srv(
            "cms.steven.lab",
            "vcse.acano.steven.lab",
            p2.local_addr().port(),
        ),
        a("vcse.acano.steven.lab"),
    ])
    .await;
    let ctx = lab.ctx(&dns);
    let out = call(&ctx, &CallRequest::invite("sip:x@acano.steven.lab", FROM)).await;
    assert_eq!(out.class, OutcomeClass::CertUntrusted);
    let d = out.ms_diagnostics.unwrap();
    assert!(
        d.contains(r#"HRESULT="0x80090325 (SEC_E_UNTRUSTED_ROOT)""#),
        "{d}"
    );
    assert!(
        d.contains(r#"tls-target="vcse.acano.steven.lab";PeerServer="vcse.acano.steven.lab""#),
        "{d}"
    );

    // cms.steven.lab → vcse.acano.steven.lab fails Rule 1 first; call the expired peer through its own domain.
    let dns2 = dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        p2.local_addr().port(),
    )
    .await;
    let out = call(
        &lab.ctx(&dns2),
        &CallRequest::invite("sip:x@acano.steven.lab", FROM),
    )
    .await;
    assert_eq!(out.class, OutcomeClass::CertExpired);
    assert!(
        out.ms_diagnostics
            .unwrap()
            .contains(r#"HRESULT="0x80090328 (SEC_E_CERT_EXPIRED)""#)
    );
    assert_eq!(out.class.exit_code(), 14);
}

#[tokio::test]
async fn no_srv_record_gives_1008() {
    let lab = Lab::new();
    let dns = dns(&[a("vcse.steven.lab")]).await;
    let out = call(
        &lab.ctx(&dns),
        &CallRequest::invite("sip:bob@nosrv.steven.lab", FROM),
    )
    .await;
    assert_eq!(out.class, OutcomeClass::NoSrv);
    assert_eq!(out.final_status, 504);
    assert_eq!(
        out.ms_diagnostics.as_deref(),
        Some(
            r#"1008;reason="Unable to resolve DNS SRV record";domain="nosrv.steven.lab";source="sip.skype.lab""#
        )
    );
    assert_eq!(out.class.exit_code(), 11);
}

#[tokio::test]
async fn refused_connection_gives_1046() {
    let lab = Lab::new();
    let port = closed_port().await;
    let dns = dns_route("acano.steven.lab", "vcse.acano.steven.lab", port).await;
    let out = call(
        &lab.ctx(&dns),
        &CallRequest::invite("sip:x@acano.steven.lab", FROM),
    )
    .await;
    assert_eq!(out.class, OutcomeClass::ConnectFailed);
    assert_eq!(out.final_status, 504);
    let d = out.ms_diagnostics.unwrap();
    assert!(d.starts_with("1046;"), "{d}");
    assert!(
        d.contains(r#"WinsockFailureCode="10061(WSAECONNREFUSED)""#),
        "{d}"
    );
}

#[tokio::test]
async fn handshake_reset_gives_1047() {
    let lab = Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab"));
    let peer = lab.peer(&cert, PeerBehaviour::ResetHandshake).await;
    let dns = dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let out = call(
        &lab.ctx(&dns),
        &CallRequest::invite("sip:x@acano.steven.lab", FROM),
    )
    .await;
    assert_eq!(out.class, OutcomeClass::HandshakeReset, "{:?}", out.steps);
    assert_eq!(
        out.ms_diagnostics.as_deref(),
        Some(
            r#"1047;reason="Failed to complete TLS negotiation with a federated peer server";WinsockFailureCode="10054(WSAECONNRESET)";WinsockFailureDescription="The peer forced closure of the connection";source="sip.skype.lab""#
        )
    );
    assert_eq!(out.class.exit_code(), 15);
}

#[tokio::test]
async fn close_after_handshake_is_a_reset_too() {
    let lab = Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab"));
    let peer = lab.peer(&cert, PeerBehaviour::CloseAfterHandshake).await;
    let dns = dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let out = call(
        &lab.ctx(&dns),
        &CallRequest::invite("sip:x@acano.steven.lab", FROM),
    )
    .await;
    assert_eq!(out.class, OutcomeClass::HandshakeReset, "{:?}", out.steps);
    assert!(out.ms_diagnostics.unwrap().starts_with("1047;"));
}

#[tokio::test]
async fn peer_404_without_diagnostics_gets_1034() {
    let lab = Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab"));
    let peer = lab.peer(&cert, answer(404, "Not Found")).await;
    let dns = dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let out = call(
        &lab.ctx(&dns),
        &CallRequest::invite("sip:nobody@acano.steven.lab", FROM),
    )
    .await;
    assert_eq!(out.class, OutcomeClass::Rejected(404));
    assert_eq!((out.final_status, out.reason.as_str()), (404, "Not Found"));
    let diag = r#"1034;reason="Previous hop federated peer did not report diagnostic information";Domain="acano.steven.lab";PeerServer="vcse.acano.steven.lab";source="sip.skype.lab""#;
    assert_eq!(out.ms_diagnostics.as_deref(), Some(diag));
    assert!(out.response_text.starts_with("SIP/2.0 404 Not Found\r\n"));
    assert!(
        out.response_text
            .contains(&format!("ms-diagnostics: {diag}\r\n"))
    );
    assert!(peer.wait_for("ACK", Duration::from_secs(2)).await);
    assert_eq!(peer.received_methods(), vec!["INVITE", "ACK"]);
    assert_eq!(out.class.exit_code(), 10);
}

#[tokio::test]
async fn peer_diagnostics_pass_through() {
    let lab = Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab"));
    let theirs = r#"21;reason="busy here""#;
    let peer = lab
        .peer(
            &cert,
            PeerBehaviour::AnswerWithDiagnostics(486, theirs.to_string()),
        )
        .await;
    let dns = dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let out = call(
        &lab.ctx(&dns),
        &CallRequest::invite("sip:busy@acano.steven.lab", FROM),
    )
    .await;
    assert_eq!(out.class, OutcomeClass::Rejected(486));
    assert_eq!(out.ms_diagnostics.as_deref(), Some(theirs));
}

#[tokio::test]
async fn connected_call_acks_holds_and_byes() {
    let lab = Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab"));
    let peer = lab.peer(&cert, answer(200, "OK")).await;
    let dns = dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let mut req = CallRequest::invite("sip:2000@acano.steven.lab", FROM);
    req.hold_ms = 100;
    let out = call(&lab.ctx(&dns), &req).await;
    assert_eq!(out.class, OutcomeClass::Connected, "{:?}", out.steps);
    assert_eq!(out.final_status, 200);
    assert_eq!(out.ms_diagnostics, None);
    assert_eq!(out.sent, vec!["INVITE", "ACK", "BYE"]);
    assert_eq!(peer.received_methods(), vec!["INVITE", "ACK", "BYE"]);
    // The INVITE carries what a Skype for Business Edge relays.
    let invite = &peer.received()[0];
    let text = String::from_utf8_lossy(invite.as_bytes()).into_owned();
    for h in [
        "P-Asserted-Identity: <sip:alice@skype.lab>",
        "User-Agent: UCCAPI/16.0",
        "Supported: ms-dialog-route-set-update",
        "Content-Type: application/sdp",
        "Max-Forwards: 69",
    ] {
        assert!(text.contains(h), "missing {h} in\n{text}");
    }
    let from = invite.from().unwrap();
    assert!(from.tag().is_some() && from.param("epid").is_some());
    assert_eq!(invite.vias().unwrap().len(), 2);
    // The Edge presented its own certificate as TLS client certificate, with SNI = the SRV target.
    let conns = peer.connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].sni.as_deref(), Some("vcse.acano.steven.lab"));
    assert_eq!(conns[0].client_chain.first(), Some(&lab.edge.cert_der));
    assert_eq!(out.class.exit_code(), 0);
    peer.shutdown().await;
}

#[tokio::test]
async fn options_ping_and_silent_peer() {
    let lab = Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab"));
    let good = lab.peer(&cert, answer(486, "Busy Here")).await;
    let silent = lab.peer(&cert, PeerBehaviour::Silent).await;
    let dns = dns(&[
        srv(
            "acano.steven.lab",
            "vcse.acano.steven.lab",
            good.local_addr().port(),
        ),
        srv(
            "cms.steven.lab",
            "vcse.cms.steven.lab",
            silent.local_addr().port(),
        ),
        a("vcse.acano.steven.lab"),
        a("vcse.cms.steven.lab"),
    ])
    .await;
    let ctx = lab.ctx(&dns);
    let mut req = CallRequest::invite("sip:Options_User@acano.steven.lab", FROM);
    req.method = CallMethod::Options;
    let out = call(&ctx, &req).await;
    assert_eq!(out.class, OutcomeClass::Connected);
    assert_eq!(good.received_methods(), vec!["OPTIONS"]);

    let silent_cert = lab.peer_cert(&LeafSpec::new("vcse.cms.steven.lab"));
    drop(silent);
    let silent = lab.peer(&silent_cert, PeerBehaviour::Silent).await;
    let dns2 = dns_route(
        "cms.steven.lab",
        "vcse.cms.steven.lab",
        silent.local_addr().port(),
    )
    .await;
    let out = call(
        &lab.ctx(&dns2),
        &CallRequest::invite("sip:x@cms.steven.lab", FROM),
    )
    .await;
    assert_eq!(out.class, OutcomeClass::Timeout, "{:?}", out.steps);
    assert_eq!(out.final_status, 408);
    assert_eq!(silent.received_methods(), vec!["INVITE"]);
}

#[tokio::test]
async fn blocked_domain_is_refused_before_dns() {
    let lab = Lab::new();
    let dns = dns(&[a("vcse.steven.lab")]).await;
    let mut ctx = lab.ctx(&dns);
    let cfg = PolicyConfig {
        blocked_domains: vec!["evil.lab".into()],
        ..PolicyConfig::default()
    };
    ctx.policy = Policy::new(&EdgeIdentity::default(), &cfg, false);
    let out = call(&ctx, &CallRequest::invite("sip:x@evil.lab", FROM)).await;
    assert_eq!(out.class, OutcomeClass::Blocked);
    assert_eq!(out.final_status, 403);
    assert!(out.ms_diagnostics.unwrap().starts_with("1002;"));
    assert_eq!(dns.queries_received(), 0);
    assert_eq!(out.class.exit_code(), 16);
}

/// An Expressway-E that does not trust the Edge's certificate refuses it in the handshake (TLS 1.2) or on the
/// first read (TLS 1.3): either way the Skype client sees 1047 WSAECONNRESET.
#[tokio::test]
async fn peer_refusing_the_edge_certificate_gives_1047_on_tls12_and_tls13() {
    use edgesim::lab::peer::server::{PeerServerSpec, PeerTlsVersions};
    use edgesim::pki::{EkuChoice, TrustAnchors};
    let lab = Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab"));
    let other = LabCa::generate("Expressway-only CA", KeyType::EcdsaP256).unwrap();
    let only_other =
        TrustAnchors::from_certs(std::slice::from_ref(other.cert_der()), "other").unwrap();
    for versions in [PeerTlsVersions::Tls12Only, PeerTlsVersions::Tls13Only] {
        let spec = PeerServerSpec::new((&cert).into(), answer(200, "OK"))
            .tls_versions(versions)
            .trust_clients(only_other.clone());
        let peer = lab.peer_with(spec).await;
        let dns = dns_route(
            "acano.steven.lab",
            "vcse.acano.steven.lab",
            peer.local_addr().port(),
        )
        .await;
        let out = call(
            &lab.ctx(&dns),
            &CallRequest::invite("sip:x@acano.steven.lab", FROM),
        )
        .await;
        assert_eq!(
            out.class,
            OutcomeClass::HandshakeReset,
            "{versions:?}: {:?}",
            out.steps
        );
        assert!(
            out.ms_diagnostics
                .unwrap()
                .contains(r#"WinsockFailureCode="10054(WSAECONNRESET)""#)
        );
        assert!(peer.received().is_empty());
    }

    // The EKU sunset, outbound: an Edge certificate without clientAuth, refused by a peer that trusts its CA.
    let mut lab2 = Lab::new();
    lab2.edge = lab2
        .ca
        .issue(&LeafSpec::new("sip.skype.lab").eku(EkuChoice::ServerAuth))
        .unwrap();
    let cert2 = lab2.peer_cert(&LeafSpec::new("vcse.acano.steven.lab"));
    let trust = TrustAnchors::from_certs(std::slice::from_ref(lab2.ca.cert_der()), "lab").unwrap();
    let peer = lab2
        .peer_with(PeerServerSpec::new((&cert2).into(), answer(200, "OK")).trust_clients(trust))
        .await;
    let dns = dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let out = call(
        &lab2.ctx(&dns),
        &CallRequest::invite("sip:x@acano.steven.lab", FROM),
    )
    .await;
    assert_eq!(out.class, OutcomeClass::HandshakeReset, "{:?}", out.steps);
}

/// The `edgesim call` and `edgesim check` commands themselves: output, JSON and exit codes.
#[tokio::test]
async fn cli_call_and_check_print_the_response_and_exit_per_class() {
    let lab = Lab::new();
    let dns = dns_route("cms.steven.lab", "vcse.sub.cms.steven.lab", 5061).await;
    let dir = tempfile::tempdir().unwrap();
    let [_, chain, key] = lab.edge.write(dir.path(), "edge").unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, lab.ca.chain_pem()).unwrap();
    let server = dns.local_addr().to_string();
    let run = |args: Vec<String>| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_edgesim"))
            .args(args)
            .output()
            .await
            .unwrap()
    };
    let common = |v: &[&str]| {
        let mut out: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        out.extend([
            "--dns".to_string(),
            server.clone(),
            "--ca".into(),
            ca.display().to_string(),
            "--cert".into(),
            chain.display().to_string(),
            "--key".into(),
            key.display().to_string(),
        ]);
        out
    };
    let out = run(common(&["call", "sip:space@cms.steven.lab"])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(12),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("SIP/2.0 504 Server time-out\n"),
        "{stdout}"
    );
    assert!(stdout.contains("\nms-diagnostics: 1009;reason=\"No match for domain in DNS SRV results\";domain=\"cms.steven.lab\";fqdn1=\"vcse.sub.cms.steven.lab:5061\";source=\"sip.skype.lab\"\nServer: RTC/6.0\nContent-Length: 0\n"), "{stdout}");
    assert!(
        stdout.contains("Fix: publish _sipfederationtls._tcp.cms.steven.lab → vcse.cms.steven.lab"),
        "{stdout}"
    );

    let out = run(common(&["check", "cms.steven.lab", "--json"])).await;
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "FAIL");
    assert!(
        v["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["status"] == "FAIL" && l["rule"] == "rule1")
    );

    let out = run(vec!["call".into(), "not-a-uri".into()]).await;
    assert_eq!(out.status.code(), Some(2));
}
