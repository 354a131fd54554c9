//! `check::check` against emulated Expressway-E servers and the embedded DNS server on loopback.
#![allow(clippy::unwrap_used)]

#[path = "common/outbound_lab.rs"]
mod lab;

use edgesim::check::{Report, Status, check};
use edgesim::lab::peer::server::{PeerBehaviour, PeerServerSpec, PeerTlsVersions};
use edgesim::pki::{EkuChoice, LeafSpec};
use lab::{Lab, dns_route};

fn ok() -> PeerBehaviour {
    PeerBehaviour::Answer(200, "OK".into())
}

fn not_pass(r: &Report) -> Vec<String> {
    r.lines
        .iter()
        .filter(|l| l.status != Status::Pass)
        .map(|l| format!("{:?} {} {} / {:?}", l.status, l.rule, l.detail, l.fix))
        .collect()
}

fn fails(r: &Report, area: &str) -> Vec<(String, Option<String>)> {
    r.area(area)
        .into_iter()
        .filter(|l| l.status == Status::Fail)
        .map(|l| (l.detail.clone(), l.fix.clone()))
        .collect()
}

#[tokio::test]
async fn good_domain_all_pass() {
    let lab = Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab"));
    let peer = lab.peer(&cert, ok()).await;
    let dns = dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let r = check(&lab.ctx(&dns), "acano.steven.lab").await;
    println!("{}", r.render());
    assert!(not_pass(&r).is_empty(), "{}", r.render());
    assert!(!r.has_fail());
    for area in [
        "edge-cert",
        "dns-srv",
        "rule1",
        "dns-a",
        "tcp",
        "tls",
        "cert",
        "sip",
    ] {
        assert!(
            !r.area(area).is_empty(),
            "no {area} line in\n{}",
            r.render()
        );
    }
    assert_eq!(r.area("tls").len(), 2);
    assert!(peer.received_methods().contains(&"OPTIONS".to_string()));
}

#[tokio::test]
async fn tls12_only_peer_still_passes() {
    let lab = Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab"));
    let peer = lab
        .peer_with(
            PeerServerSpec::new((&cert).into(), ok()).tls_versions(PeerTlsVersions::Tls12Only),
        )
        .await;
    let dns = dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let r = check(&lab.ctx(&dns), "acano.steven.lab").await;
    assert!(not_pass(&r).is_empty(), "{}", r.render());
    assert!(
        r.area("tls")[1].detail.contains("TLS 1.3 not offered"),
        "{}",
        r.render()
    );
}

#[tokio::test]
async fn seed_srv_target_in_parent_domain_fails_with_the_fix() {
    let lab = Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("vcse.steven.lab"));
    let peer = lab.peer(&cert, ok()).await;
    let dns = dns_route(
        "acano.steven.lab",
        "vcse.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let r = check(&lab.ctx(&dns), "acano.steven.lab").await;
    assert!(r.has_fail());
    assert_eq!(
        fails(&r, "rule1"),
        vec![(
            "vcse.steven.lab is not in acano.steven.lab: it is in another domain; the Edge answers 504 with ms-diagnostics 1009 (both directions)".to_string(),
            Some("publish _sipfederationtls._tcp.acano.steven.lab → vcse.acano.steven.lab (and add vcse.acano.steven.lab to the certificate's SAN)".to_string())
        )]
    );
}

#[tokio::test]
async fn seed_subdomain_target_and_certificate_mismatch() {
    let lab = Lab::new();
    // cms.steven.lab → vcse.sub.cms.steven.lab (1009), and the certificate names vcse.steven.lab only.
    let cert = lab.peer_cert(&LeafSpec::new("vcse.steven.lab"));
    let peer = lab.peer(&cert, ok()).await;
    let port = peer.local_addr().port();
    let dns1 = dns_route("cms.steven.lab", "vcse.sub.cms.steven.lab", port).await;
    let r = check(&lab.ctx(&dns1), "cms.steven.lab").await;
    let f = fails(&r, "rule1");
    assert_eq!(f.len(), 1, "{}", r.render());
    assert!(f[0].0.contains("it is in a subdomain of it"));
    assert_eq!(
        f[0].1.as_deref(),
        Some(
            "publish _sipfederationtls._tcp.cms.steven.lab → vcse.cms.steven.lab (and add vcse.cms.steven.lab to the certificate's SAN)"
        )
    );

    // cms.steven.lab → vcse.cms.steven.lab, served by the vcse.steven.lab certificate: Rule 2 fails.
    let dns2 = dns_route("cms.steven.lab", "vcse.cms.steven.lab", port).await;
    let r = check(&lab.ctx(&dns2), "cms.steven.lab").await;
    println!("{}", r.render());
    assert!(fails(&r, "rule1").is_empty());
    let f = fails(&r, "cert");
    assert_eq!(f.len(), 1, "{}", r.render());
    assert!(f[0].0.contains("SEC_E_WRONG_PRINCIPAL"), "{}", f[0].0);
    assert_eq!(
        f[0].1.as_deref(),
        Some("add vcse.cms.steven.lab to the certificate's SAN")
    );
    assert_eq!(r.area("sip")[0].status, Status::Warn);
}

#[tokio::test]
async fn server_auth_only_certificate_is_flagged_by_name() {
    let lab = Lab::new();
    let cert = lab.peer_cert(
        &LeafSpec::new("vcse.acano.steven.lab")
            .eku(EkuChoice::ServerAuth)
            .valid_days(10),
    );
    let peer = lab.peer(&cert, ok()).await;
    let dns = dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let r = check(&lab.ctx(&dns), "acano.steven.lab").await;
    let f = fails(&r, "cert");
    assert_eq!(f.len(), 1, "{}", r.render());
    assert!(
        f[0].0
            .starts_with("Public CAs stop issuing clientAuth (2026–2027; Cisco FN74362)"),
        "{}",
        f[0].0
    );
    assert!(f[0].1.as_deref().unwrap().contains("Client Authentication"));
    let warns: Vec<_> = r
        .area("cert")
        .into_iter()
        .filter(|l| l.status == Status::Warn)
        .collect();
    assert_eq!(warns.len(), 1, "{}", r.render());
    assert!(warns[0].detail.contains("days left"), "{}", warns[0].detail);
}

#[tokio::test]
async fn no_srv_and_handshake_reset() {
    let lab = Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab"));
    let peer = lab.peer(&cert, PeerBehaviour::ResetHandshake).await;
    let dns = dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let ctx = lab.ctx(&dns);
    let r = check(&ctx, "nosrv.steven.lab").await;
    let f = fails(&r, "dns-srv");
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0].1.as_deref(),
        Some(
            "publish _sipfederationtls._tcp.nosrv.steven.lab → <host>.nosrv.steven.lab:5061 (a host directly in nosrv.steven.lab, e.g. sip.nosrv.steven.lab) with an A record for it"
        )
    );

    let r = check(&ctx, "acano.steven.lab").await;
    let f = fails(&r, "tls");
    assert_eq!(f.len(), 2, "{}", r.render());
    assert!(f[0].1.as_deref().unwrap().contains("trust the Edge's CA"));
}

#[tokio::test]
async fn peer_refusing_the_edge_certificate_fails_tls_lines() {
    use edgesim::pki::{KeyType, LabCa, TrustAnchors};
    let lab = Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab"));
    let other = LabCa::generate("Expressway-only CA", KeyType::EcdsaP256).unwrap();
    let only_other =
        TrustAnchors::from_certs(std::slice::from_ref(other.cert_der()), "other").unwrap();
    let peer = lab
        .peer_with(PeerServerSpec::new((&cert).into(), ok()).trust_clients(only_other))
        .await;
    let dns = dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let r = check(&lab.ctx(&dns), "acano.steven.lab").await;
    // TLS 1.2 fails in the handshake, TLS 1.3 on the first read: both are reported.
    assert_eq!(fails(&r, "tls").len(), 2, "{}", r.render());
}

/// The inbound line of a report (the peer certificate judged as the Expressway-E's client certificate).
fn inbound(r: &Report) -> (Status, String, Option<String>) {
    let lines = r.area("inbound");
    assert_eq!(lines.len(), 1, "{}", r.render());
    (
        lines[0].status,
        lines[0].detail.clone(),
        lines[0].fix.clone(),
    )
}

async fn check_with(
    lab: &Lab,
    cert: &edgesim::pki::IssuedCert,
    tweak: impl FnOnce(&mut edgesim::outbound::OutboundContext),
) -> Report {
    let peer = lab.peer(cert, ok()).await;
    let dns = dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let mut ctx = lab.ctx(&dns);
    tweak(&mut ctx);
    check(&ctx, "acano.steven.lab").await
}

#[tokio::test]
async fn inbound_direction_checks_the_chain_for_client_auth() {
    let lab = Lab::new();

    let good = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab"));
    let r = check_with(&lab, &good, |_| {}).await;
    let (status, text, _) = inbound(&r);
    assert_eq!(status, Status::Pass, "{text}");
    assert!(text.contains("client-certificate validation"), "{text}");

    // serverAuth only: FAIL, with the one FN74362 wording of the report and the same fix as the EKU line.
    let server_only =
        lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab").eku(EkuChoice::ServerAuth));
    let r = check_with(&lab, &server_only, |_| {}).await;
    let (status, text, fix) = inbound(&r);
    assert_eq!(status, Status::Fail, "{}", r.render());
    assert_eq!(
        text,
        "Public CAs stop issuing clientAuth (2026–2027; Cisco FN74362): vcse.acano.steven.lab has no Client Authentication EKU, so the Edge refuses it as the Expressway-E's client certificate and calls from vcse.acano.steven.lab to the Edge fail"
    );
    let eku_fix = fails(&r, "cert")[0].1.clone();
    assert_eq!(fix, eku_fix);
    assert!(fix.unwrap().contains("X15.5+"));

    // With the policy switch relaxed, edgesim's Edge lets it through: WARN, not FAIL.
    let r = check_with(&lab, &server_only, |c| {
        c.policy.require_client_auth_eku = false;
    })
    .await;
    assert_eq!(inbound(&r).0, Status::Warn, "{}", r.render());
}

#[tokio::test]
async fn inbound_direction_words_untrusted_and_expired_apart() {
    use edgesim::pki::{KeyType, LabCa};
    let lab = Lab::new();
    let stranger = LabCa::generate("Stranger CA", KeyType::EcdsaP256).unwrap();
    let untrusted = stranger
        .issue(&LeafSpec::new("vcse.acano.steven.lab"))
        .unwrap();
    let r = check_with(&lab, &untrusted, |_| {}).await;
    let (status, text, fix) = inbound(&r);
    assert_eq!(status, Status::Fail);
    assert!(
        text.starts_with("the Edge resets the TLS handshake when the Expressway-E calls it with vcse.acano.steven.lab as client certificate: its chain (issuer CN=Stranger CA) does not lead to a CA the Edge trusts"),
        "{text}"
    );
    assert!(fix.unwrap().contains("tls.use_system_roots"));

    let expired = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab").expired());
    let r = check_with(&lab, &expired, |_| {}).await;
    let (status, text, fix) = inbound(&r);
    assert_eq!(status, Status::Fail);
    assert!(text.contains("outside its validity period"), "{text}");
    assert!(!text.contains("CA the Edge trusts"), "{text}");
    assert!(
        fix.unwrap()
            .starts_with("renew the certificate of vcse.acano.steven.lab")
    );
}
