//! The wording of certificate facts in explanations (moved from `cert_text.rs` with the wording itself).

use crate::config::{Identity, PolicyConfig};
use crate::dns::SrvRecord;
use crate::pki::{CertFacts, ChainProblem, ChainStatus};
use crate::rules::{InboundFacts, Policy, decide_inbound, handshake_rejection};

fn policy() -> Policy {
    Policy::new(&Identity::default(), &PolicyConfig::default(), false)
}

fn inbound<'a>(cert: &'a CertFacts, target: &str) -> InboundFacts<'a> {
    InboundFacts {
        method: "INVITE".into(),
        request_uri: "sip:stejanss@skype.lab".into(),
        call_id: "c".into(),
        cseq: "1 INVITE".into(),
        start_line: "INVITE sip:stejanss@skype.lab SIP/2.0".into(),
        // Rule 1 passes: the target is a host of the sender's domain.
        sender_domain: target.split_once('.').map(|(_, d)| d.into()),
        peer: format!("{}:25001", cert.display_name()),
        srv: Some(Ok(vec![SrvRecord {
            priority: 10,
            weight: 10,
            port: 5061,
            target: target.into(),
        }])),
        cert: Some(cert),
        request_host: "skype.lab".into(),
        local_ip: None,
    }
}

fn ip_only() -> CertFacts {
    CertFacts {
        common_names: vec!["vcse.acano.steven.lab".into()],
        san_dns: Some(vec![]),
        san_ip: vec!["192.0.2.1".into()],
        issuer: "CN=edgesim lab CA".into(),
        ..CertFacts::default()
    }
}

#[test]
fn ip_only_san_names_no_dns_name() {
    let cert = ip_only();
    let v = decide_inbound(&inbound(&cert, "vcse.acano.steven.lab"), &policy());
    assert_eq!(
        v.explanation().unwrap(),
        "The peer certificate 192.0.2.1 does not name vcse.acano.steven.lab: its SAN extension names no DNS name, only the IP address 192.0.2.1, and the Edge matches DNS names only; its CN is vcse.acano.steven.lab, but the Edge ignores the CN of a certificate with a SAN extension. Fix: add vcse.acano.steven.lab to the certificate's SAN (the SIP domain itself need not be there)."
    );
    assert_eq!(
        v.log().unwrap().render_data(),
        r#"expectedfqdn="vcse.acano.steven.lab";certName="192.0.2.1";info="The peer certificate does not contain a matching FQDN""#
    );
    assert_eq!(
        v.diagnostic().unwrap().param("PeerServer"),
        Some("192.0.2.1")
    );
    let two = CertFacts {
        san_ip: vec!["192.0.2.1".into(), "192.0.2.2".into(), "2001:db8::1".into()],
        common_names: vec![],
        ..ip_only()
    };
    let v = decide_inbound(&inbound(&two, "vcse.acano.steven.lab"), &policy());
    assert!(
        v.explanation().unwrap().contains(
            ": its SAN extension names no DNS name, only the IP addresses 192.0.2.1, 192.0.2.2 and 2001:db8::1, and the Edge matches DNS names only. Fix:"
        ),
        "{:?}",
        v.explanation()
    );
}

#[test]
fn several_cns_without_san_the_last_is_shown_and_counts() {
    let cert = CertFacts {
        common_names: vec!["vcse.acano.steven.lab".into(), "vcse.steven.lab".into()],
        san_dns: None,
        ..CertFacts::default()
    };
    let v = decide_inbound(&inbound(&cert, "vcse.acano.steven.lab"), &policy());
    assert_eq!(
        v.explanation().unwrap(),
        "The peer certificate vcse.steven.lab does not name vcse.acano.steven.lab: it has no SAN extension, and its most specific CN (the last of vcse.acano.steven.lab, vcse.steven.lab), the only one the Edge reads, is vcse.steven.lab. Fix: add vcse.acano.steven.lab to the certificate's SAN (the SIP domain itself need not be there)."
    );
    assert!(decide_inbound(&inbound(&cert, "vcse.steven.lab"), &policy()).is_accept());
    let nothing = CertFacts::default();
    let v = decide_inbound(&inbound(&nothing, "vcse.acano.steven.lab"), &policy());
    assert_eq!(
        v.explanation().unwrap(),
        "The peer certificate (no name) does not name vcse.acano.steven.lab: it has no SAN extension and no CN. Fix: add vcse.acano.steven.lab to the certificate's SAN (the SIP domain itself need not be there)."
    );
}

#[test]
fn outbound_chain_problems_say_what_and_how() {
    let cert = CertFacts {
        common_names: vec!["vcse.cms.steven.lab".into()],
        san_dns: Some(vec!["vcse.cms.steven.lab".into()]),
        issuer: "CN=edgesim lab CA".into(),
        ..CertFacts::default()
    };
    let explain = |s: ChainStatus| {
        policy()
            .decide_outbound_cert("vcse.cms.steven.lab", &cert, &s)
            .unwrap_err()
            .explanation()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        explain(ChainStatus::Invalid(ChainProblem::TooLong)),
        "The certificate of vcse.cms.steven.lab (vcse.cms.steven.lab) was refused: its chain is too long: the Edge follows at most 6 intermediate CAs between a certificate and a trusted CA. Fix: issue it from a CA at most 6 intermediates below the root, or trust an intermediate CA of the chain directly in tls.ca."
    );
    assert_eq!(
        explain(ChainStatus::Invalid(ChainProblem::OtherCaSameName)),
        "The certificate of vcse.cms.steven.lab (vcse.cms.steven.lab) was issued by a CA the Edge does not trust: its issuer CN=edgesim lab CA has the name of a CA the Edge trusts, but the signature does not verify with that CA's key, so another CA with the same name (another lab CA?) issued it. Fix: add the CA that issued it to tls.ca, and give each lab CA its own name (edgesim certs ca does)."
    );
    assert!(!explain(ChainStatus::Invalid(ChainProblem::Malformed)).contains("valid certificate."));
}

#[test]
fn handshake_rejections_of_typed_problems() {
    let cert = CertFacts {
        common_names: vec!["vcse.steven.lab".into()],
        san_dns: Some(vec!["vcse.steven.lab".into()]),
        issuer: "CN=edgesim lab CA".into(),
        ..CertFacts::default()
    };
    let r = handshake_rejection(
        &ChainStatus::Invalid(ChainProblem::OtherCaSameName),
        Some(&cert),
        "10.0.0.1:25001",
    )
    .unwrap();
    assert_eq!(
        r.log().unwrap().render_data(),
        r#"reason="untrusted root";certName="vcse.steven.lab""#
    );
    assert!(
        r.explanation().unwrap().starts_with(
            "The client certificate vcse.steven.lab was issued by a CA the Edge does not trust: its issuer CN=edgesim lab CA has the name of a CA the Edge trusts"
        ),
        "{}",
        r.explanation().unwrap()
    );
    let r = handshake_rejection(
        &ChainStatus::Invalid(ChainProblem::TooLong),
        Some(&cert),
        "p",
    )
    .unwrap();
    assert_eq!(
        r.log().unwrap().render_data(),
        r#"reason="chain too long";certName="vcse.steven.lab""#
    );
    assert_eq!(
        r.explanation().unwrap(),
        "The client certificate vcse.steven.lab was refused: its chain is too long: the Edge follows at most 6 intermediate CAs between a certificate and a trusted CA. Fix: issue it from a CA at most 6 intermediates below the root, or trust an intermediate CA of the chain directly in tls.ca."
    );
    // A certificate without any name still gets its certName, never an empty one.
    let r = handshake_rejection(
        &ChainStatus::UntrustedRoot,
        Some(&CertFacts::default()),
        "p",
    )
    .unwrap();
    assert_eq!(
        r.log().unwrap().render_data(),
        r#"reason="untrusted root";certName="(no name)""#
    );
}
