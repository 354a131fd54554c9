//! One test per rule and per branch, with the exact strings of the seed where it has them.

use super::*;
use crate::config::{AllowedDomain, Identity, PolicyConfig};
use crate::diagnostics::{EventContext, ResultCode};
use crate::dns::{DnsFailure, SrvRecord};
use crate::pki::{CertFacts, ChainProblem, ChainStatus, Eku};

mod cert_words;
mod pki_words;

fn policy_with(f: impl FnOnce(&mut PolicyConfig)) -> Policy {
    let mut cfg = PolicyConfig::default();
    f(&mut cfg);
    Policy::new(&Identity::default(), &cfg, false)
}

fn policy() -> Policy {
    policy_with(|_| {})
}

fn srv(target: &str, port: u16) -> SrvRecord {
    SrvRecord {
        priority: 10,
        weight: 10,
        port,
        target: target.into(),
    }
}

fn cert_san(cn: &str, san: &[&str]) -> CertFacts {
    CertFacts {
        common_names: vec![cn.into()],
        san_dns: Some(san.iter().map(|s| (*s).to_owned()).collect()),
        eku: Some(Eku {
            server_auth: true,
            client_auth: true,
            any: false,
        }),
        ..CertFacts::default()
    }
}

fn cert_cn_only(cn: &str) -> CertFacts {
    CertFacts {
        common_names: vec![cn.into()],
        san_dns: None,
        ..CertFacts::default()
    }
}

fn facts<'a>(
    domain: &str,
    peer: &str,
    srv: Option<Result<Vec<SrvRecord>, DnsFailure>>,
    cert: &'a CertFacts,
) -> InboundFacts<'a> {
    InboundFacts {
        method: "INVITE".into(),
        request_uri: "sip:stejanss@skype.lab".into(),
        call_id: "f1b3ad5d-183b-4632-b210-c2f9bec71960".into(),
        cseq: "2066245576 INVITE".into(),
        start_line: "INVITE sip:stejanss@skype.lab SIP/2.0".into(),
        sender_domain: Some(domain.into()),
        peer: peer.into(),
        srv,
        cert: Some(cert),
        request_host: "skype.lab".into(),
        local_ip: None,
    }
}

fn data(v: &Verdict) -> String {
    v.log().map(|l| l.render_data()).unwrap_or_default()
}

// ---- Rule 1 ----

#[test]
fn rule1_exact_domain_passes() {
    assert!(rule1_in_domain(
        "vcse.acano.steven.lab",
        "acano.steven.lab",
        false
    ));
    assert!(rule1_in_domain("expe.example.com", "example.com", false));
}

#[test]
fn rule1_parent_domain_fails() {
    assert!(!rule1_in_domain(
        "vcse.steven.lab",
        "acano.steven.lab",
        true
    ));
}

#[test]
fn rule1_subdomain_fails() {
    assert!(!rule1_in_domain(
        "vcse.sub.cms.steven.lab",
        "cms.steven.lab",
        true
    ));
}

#[test]
fn rule1_different_domain_fails() {
    assert!(!rule1_in_domain("expe.dummy.com", "example.com", true));
}

#[test]
fn rule1_apex_switch() {
    assert!(rule1_in_domain(
        "acano.steven.lab",
        "acano.steven.lab",
        true
    ));
    assert!(!rule1_in_domain(
        "acano.steven.lab",
        "acano.steven.lab",
        false
    ));
}

#[test]
fn rule1_case_and_trailing_dot() {
    assert!(rule1_in_domain(
        "VCSE.Acano.Steven.LAB.",
        "acano.steven.lab.",
        false
    ));
    assert!(!rule1_in_domain(".", "acano.steven.lab", true));
}

#[test]
fn rule1_pick_takes_first_acceptable_by_priority() {
    let recs = vec![
        SrvRecord {
            priority: 20,
            weight: 0,
            port: 5061,
            target: "b.acano.steven.lab".into(),
        },
        SrvRecord {
            priority: 5,
            weight: 0,
            port: 5061,
            target: "vcse.steven.lab".into(),
        },
        SrvRecord {
            priority: 10,
            weight: 0,
            port: 5062,
            target: "a.acano.steven.lab".into(),
        },
    ];
    let r = rule1_pick("acano.steven.lab", &recs, true).unwrap();
    assert_eq!(r.target, "a.acano.steven.lab");
}

#[test]
fn rule1_pick_lists_every_target_when_none_pass() {
    let recs = vec![srv("vcse.steven.lab", 5061), srv("x.other.lab", 5062)];
    let f = rule1_pick("Acano.Steven.Lab.", &recs, true).unwrap_err();
    assert_eq!(f.domain, "acano.steven.lab");
    assert_eq!(f.fqdns, vec!["vcse.steven.lab:5061", "x.other.lab:5062"]);
}

// ---- sender domain and routing ----

#[test]
fn sender_domain_prefers_pai_and_normalises() {
    assert_eq!(
        sender_domain(Some("Acano.Steven.Lab."), Some("steven.lab")),
        Some("acano.steven.lab".into())
    );
    assert_eq!(
        sender_domain(None, Some("STEVEN.lab")),
        Some("steven.lab".into())
    );
    assert_eq!(
        sender_domain(Some(""), Some("steven.lab")),
        Some("steven.lab".into())
    );
    assert_eq!(sender_domain(None, None), None);
}

#[test]
fn route_kinds() {
    let p = policy_with(|c| {
        c.blocked_domains = vec!["Spam.lab.".into()];
        c.allowed_domains = vec![
            AllowedDomain {
                domain: "steven.lab".into(),
                proxy_fqdn: Some("VCSE.steven.lab".into()),
            },
            AllowedDomain {
                domain: "acano.steven.lab".into(),
                proxy_fqdn: None,
            },
        ];
        c.partner_discovery = false;
    });
    assert_eq!(p.route(&"spam.lab".into()), Route::Blocked);
    assert_eq!(
        p.route(&"Steven.Lab.".into()),
        Route::FixedFqdn("vcse.steven.lab".into())
    );
    assert_eq!(p.route(&"acano.steven.lab".into()), Route::Discover);
    assert_eq!(p.route(&"other.lab".into()), Route::NotAllowed);
    assert_eq!(policy().route(&"other.lab".into()), Route::Discover);
}

// ---- inbound ----

#[test]
fn inbound_plan_asks_for_the_federation_srv() {
    let c = cert_san("vcse.steven.lab", &["vcse.steven.lab"]);
    let f = facts("Acano.Steven.Lab", "vcse.steven.lab:25002", None, &c);
    let Step::Lookup(pending) = inbound::inbound(&policy(), &f) else {
        panic!("no lookup")
    };
    assert_eq!(
        pending.srv_name(),
        "_sipfederationtls._tcp.acano.steven.lab"
    );
}

#[test]
fn inbound_seed_rule1_failure() {
    let c = cert_san("vcse.steven.lab", &["vcse.steven.lab"]);
    let f = facts(
        "acano.steven.lab",
        "vcse.steven.lab:25002",
        Some(Ok(vec![srv("vcse.steven.lab", 5061)])),
        &c,
    );
    let v = decide_inbound(&f, &policy());
    assert_eq!(v.status(), Some(504));
    assert_eq!(v.reason().unwrap(), "Server time-out");
    let log = v.log().unwrap();
    assert_eq!(log.result_code, ResultCode::NO_SRV_MATCH);
    assert_eq!(log.peer, "vcse.steven.lab:25002");
    assert_eq!(
        data(&v),
        r#"domain="acano.steven.lab";fqdn1="vcse.steven.lab:5061""#
    );
    assert_eq!(
        v.diagnostic().unwrap().render(),
        r#"1009;reason="No match for domain in DNS SRV results";domain="acano.steven.lab";fqdn1="vcse.steven.lab:5061";source="sip.skype.lab""#
    );
    assert_eq!(
        v.explanation().unwrap(),
        "_sipfederationtls._tcp.acano.steven.lab points to vcse.steven.lab, which is not in acano.steven.lab. Fix: publish _sipfederationtls._tcp.acano.steven.lab → vcse.acano.steven.lab (an A record in acano.steven.lab) and put that name in the Expressway-E certificate's SAN."
    );
}

#[test]
fn inbound_apex_target_refused_says_so() {
    let c = cert_san("apex.steven.lab", &["apex.steven.lab"]);
    let f = facts(
        "apex.steven.lab",
        "apex.steven.lab:25002",
        Some(Ok(vec![srv("apex.steven.lab", 5061)])),
        &c,
    );
    let v = decide_inbound(&f, &policy_with(|c| c.accept_apex_target = false));
    assert_eq!(v.status(), Some(504));
    assert_eq!(
        data(&v),
        r#"domain="apex.steven.lab";fqdn1="apex.steven.lab:5061""#
    );
    assert_eq!(
        v.explanation().unwrap(),
        "_sipfederationtls._tcp.apex.steven.lab points to apex.steven.lab itself (the domain apex), which this Edge is configured to refuse (policy.accept_apex_target = false). Fix: publish _sipfederationtls._tcp.apex.steven.lab → a host inside the domain such as sip.apex.steven.lab (an A record in apex.steven.lab) and put that name in the Expressway-E certificate's SAN, or set policy.accept_apex_target = true."
    );
}

#[test]
fn outbound_apex_among_other_targets_names_the_switch() {
    let answer = Ok(vec![
        srv("apex.steven.lab", 5061),
        srv("vcse.steven.lab", 5062),
    ]);
    let v = policy_with(|c| c.accept_apex_target = false)
        .decide_outbound_srv("apex.steven.lab", &answer)
        .unwrap_err();
    assert_eq!(
        v.explanation().unwrap(),
        "_sipfederationtls._tcp.apex.steven.lab points to apex.steven.lab, vcse.steven.lab, none of which is in apex.steven.lab; apex.steven.lab itself is the domain apex, which this Edge is configured to refuse (policy.accept_apex_target = false). Fix: publish _sipfederationtls._tcp.apex.steven.lab → vcse.apex.steven.lab (an A record in apex.steven.lab) and put that name in the peer's certificate's SAN, or set policy.accept_apex_target = true."
    );
}

#[test]
fn inbound_seed_rule2_failure() {
    let c = cert_san("vcse.steven.lab", &["vcse.steven.lab"]);
    let mut f = facts(
        "acano.steven.lab",
        "vcse.steven.lab:25001",
        Some(Ok(vec![srv("vcse.acano.steven.lab", 5061)])),
        &c,
    );
    f.call_id = "e144704c-1dd0-4ea7-929f-77e7e071c24c".into();
    f.cseq = "1567605805 INVITE".into();
    let v = decide_inbound(&f, &policy());
    assert_eq!(v.status(), Some(504));
    let log = v.log().unwrap();
    assert_eq!(log.result_code, ResultCode::CERT_MISMATCH);
    assert_eq!(log.peer, "vcse.steven.lab:25001");
    assert_eq!(log.call_id, "e144704c-1dd0-4ea7-929f-77e7e071c24c");
    assert_eq!(
        data(&v),
        r#"expectedfqdn="vcse.acano.steven.lab";certName="vcse.steven.lab";info="The peer certificate does not contain a matching FQDN""#
    );
    assert_eq!(
        v.diagnostic().unwrap().render(),
        r#"1010;reason="Certificate trust with another server could not be established";ErrorType="The peer certificate does not contain a matching FQDN";tls-target="vcse.acano.steven.lab";PeerServer="vcse.steven.lab";HRESULT="0x80090322 (SEC_E_WRONG_PRINCIPAL)";source="sip.skype.lab""#
    );
    assert!(
        v.explanation()
            .unwrap()
            .contains("add vcse.acano.steven.lab to the certificate's SAN")
    );
}

#[test]
fn inbound_accepts_matching_target_and_san() {
    let c = cert_san(
        "vcse.steven.lab",
        &["vcse.steven.lab", "vcse.acano.steven.lab"],
    );
    let f = facts(
        "acano.steven.lab",
        "vcse.steven.lab:25001",
        Some(Ok(vec![
            srv("vcse.steven.lab", 5061),
            srv("vcse.acano.steven.lab", 5061),
        ])),
        &c,
    );
    assert_eq!(
        decide_inbound(&f, &policy()).decision,
        Decision::Accept {
            target: "vcse.acano.steven.lab".into()
        }
    );
}

#[test]
fn inbound_blocked_domain() {
    let p = policy_with(|c| c.blocked_domains = vec!["acano.steven.lab".into()]);
    let c = cert_san("vcse.acano.steven.lab", &["vcse.acano.steven.lab"]);
    let f = facts("ACANO.steven.lab.", "vcse.acano.steven.lab:25001", None, &c);
    let v = decide_inbound(&f, &p);
    assert_eq!(v.status(), Some(403));
    assert_eq!(v.log().unwrap().result_code, ResultCode::BLOCKED_DOMAIN);
    assert_eq!(data(&v), r#"domain="acano.steven.lab""#);
    assert_eq!(v.diagnostic().unwrap().code, 1002);
}

#[test]
fn inbound_not_allowed_without_discovery() {
    let p = policy_with(|c| c.partner_discovery = false);
    let c = cert_san("vcse.acano.steven.lab", &["vcse.acano.steven.lab"]);
    let v = decide_inbound(&facts("acano.steven.lab", "p:1", None, &c), &p);
    assert_eq!(v.status(), Some(403));
    assert_eq!(v.log().unwrap().result_code, ResultCode::DOMAIN_NOT_ALLOWED);
    assert!(
        v.explanation()
            .unwrap()
            .contains("policy.partner_discovery = true")
    );
}

#[test]
fn inbound_missing_sender_domain() {
    let c = cert_san("a", &["a"]);
    let mut f = facts("x", "p:1", None, &c);
    f.sender_domain = None;
    assert_eq!(decide_inbound(&f, &policy()).status(), Some(403));
}

#[test]
fn inbound_fixed_fqdn_pass_and_fail() {
    let p = policy_with(|c| {
        c.allowed_domains = vec![AllowedDomain {
            domain: "acano.steven.lab".into(),
            proxy_fqdn: Some("vcse.steven.lab".into()),
        }]
    });
    let good = cert_san("vcse.steven.lab", &["vcse.steven.lab"]);
    let f = facts("acano.steven.lab", "vcse.steven.lab:25001", None, &good);
    // No lookup: the first phase decides with the fixed FQDN.
    assert_eq!(
        inbound::inbound(&p, &f),
        Step::Decided(Decision::Accept {
            target: "vcse.steven.lab".into()
        })
    );
    assert_eq!(
        decide_inbound(&f, &p).decision,
        Decision::Accept {
            target: "vcse.steven.lab".into()
        }
    );
    let bad = cert_san("other.steven.lab", &["other.steven.lab"]);
    let v = decide_inbound(
        &facts("acano.steven.lab", "other.steven.lab:25001", None, &bad),
        &p,
    );
    assert_eq!(v.log().unwrap().result_code, ResultCode::CERT_MISMATCH);
    assert_eq!(
        data(&v),
        r#"expectedfqdn="vcse.steven.lab";certName="other.steven.lab";info="The peer certificate does not contain a matching FQDN""#
    );
}

#[test]
fn inbound_no_srv_per_failure_kind() {
    let c = cert_san("a", &["a"]);
    let cases = [
        (Err(DnsFailure::NxDomain), "NXDOMAIN"),
        (Ok(vec![]), "NODATA"),
        (Err(DnsFailure::NoRecords), "NODATA"),
        (Err(DnsFailure::ServFail), "SERVFAIL"),
        (Err(DnsFailure::Refused), "REFUSED"),
        (Err(DnsFailure::Timeout), "TIMEOUT"),
        (Err(DnsFailure::Other("x".into())), "OTHER"),
    ];
    for (answer, reason) in cases {
        let v = decide_inbound(
            &facts("acano.steven.lab", "a:1", Some(answer), &c),
            &policy(),
        );
        assert_eq!(v.status(), Some(504));
        assert_eq!(v.log().unwrap().result_code, ResultCode::NO_SRV);
        assert_eq!(
            data(&v),
            format!(r#"domain="acano.steven.lab";reason="{reason}""#)
        );
        assert_eq!(
            v.diagnostic().unwrap().render(),
            r#"1008;reason="Unable to resolve DNS SRV record";domain="acano.steven.lab";source="sip.skype.lab""#
        );
    }
}

#[test]
fn inbound_apex_target_switch() {
    let c = cert_san("acano.steven.lab", &["acano.steven.lab"]);
    let answer = || Some(Ok(vec![srv("acano.steven.lab", 5061)]));
    let v = decide_inbound(&facts("acano.steven.lab", "a:1", answer(), &c), &policy());
    assert!(v.is_accept());
    let strict = policy_with(|p| p.accept_apex_target = false);
    let v = decide_inbound(&facts("acano.steven.lab", "a:1", answer(), &c), &strict);
    assert_eq!(v.log().unwrap().result_code, ResultCode::NO_SRV_MATCH);
}

#[test]
fn inbound_subdomain_and_different_domain_targets() {
    let c = cert_san("x", &["vcse.sub.cms.steven.lab", "expe.dummy.com"]);
    for t in ["vcse.sub.cms.steven.lab", "expe.dummy.com"] {
        let v = decide_inbound(
            &facts("cms.steven.lab", "x:1", Some(Ok(vec![srv(t, 5061)])), &c),
            &policy(),
        );
        assert_eq!(
            data(&v),
            format!(r#"domain="cms.steven.lab";fqdn1="{t}:5061""#)
        );
    }
}

#[test]
fn inbound_cn_only_certificate() {
    let c = cert_cn_only("vcse.acano.steven.lab");
    let answer = Some(Ok(vec![srv("vcse.acano.steven.lab", 5061)]));
    assert!(decide_inbound(&facts("acano.steven.lab", "x:1", answer, &c), &policy()).is_accept());
}

#[test]
fn inbound_wildcard_switch() {
    let c = cert_san("*.acano.steven.lab", &["*.acano.steven.lab"]);
    let answer = || Some(Ok(vec![srv("vcse.acano.steven.lab", 5061)]));
    let v = decide_inbound(&facts("acano.steven.lab", "x:1", answer(), &c), &policy());
    assert_eq!(v.log().unwrap().result_code, ResultCode::CERT_MISMATCH);
    assert!(
        v.explanation()
            .unwrap()
            .contains("policy.allow_wildcard = true")
    );
    let lax = policy_with(|p| p.allow_wildcard = true);
    assert!(decide_inbound(&facts("acano.steven.lab", "x:1", answer(), &c), &lax).is_accept());
}

#[test]
fn inbound_missing_client_auth_eku() {
    let mut c = cert_san("vcse.acano.steven.lab", &["vcse.acano.steven.lab"]);
    c.eku = Some(Eku {
        server_auth: true,
        client_auth: false,
        any: false,
    });
    let answer = || Some(Ok(vec![srv("vcse.acano.steven.lab", 5061)]));
    let v = decide_inbound(
        &facts(
            "acano.steven.lab",
            "vcse.acano.steven.lab:25001",
            answer(),
            &c,
        ),
        &policy(),
    );
    assert_eq!(v.status(), Some(504));
    assert_eq!(
        v.log().unwrap().result_code,
        ResultCode::CERT_NO_CLIENT_AUTH
    );
    assert!(
        v.diagnostic()
            .unwrap()
            .render()
            .contains(r#"HRESULT="0x80090349 (SEC_E_CERT_WRONG_USAGE)""#)
    );
    let e = v.explanation().unwrap();
    assert!(
        e.contains("Client Authentication") && e.contains("FN74362"),
        "{e}"
    );
    let relaxed = policy_with(|p| p.require_client_auth_eku = false);
    assert!(decide_inbound(&facts("acano.steven.lab", "x:1", answer(), &c), &relaxed).is_accept());
    // No EKU extension at all: any usage is allowed.
    c.eku = None;
    assert!(decide_inbound(&facts("acano.steven.lab", "x:1", answer(), &c), &policy()).is_accept());
}

// ---- outbound ----

#[test]
fn outbound_plan_and_blocked() {
    let p = policy_with(|c| c.blocked_domains = vec!["cms.steven.lab".into()]);
    let OutboundPlan::Reject { verdict: v, .. } = p.plan_outbound("CMS.steven.lab") else {
        panic!()
    };
    assert_eq!(v.status(), Some(403));
    assert_eq!(
        v.diagnostic().unwrap().render(),
        r#"1002;reason="From URI not authorized to communicate with federated partners";source="sip.skype.lab""#
    );
    assert_eq!(
        policy().plan_outbound("cms.steven.lab."),
        OutboundPlan::LookupSrv("_sipfederationtls._tcp.cms.steven.lab".into())
    );
}

#[test]
fn outbound_seed_1009() {
    let answer = Ok(vec![srv("vcse.sub.cms.steven.lab", 5061)]);
    let v = policy()
        .decide_outbound_srv("cms.steven.lab", &answer)
        .unwrap_err();
    assert_eq!(v.status(), Some(504));
    assert_eq!(
        v.diagnostic().unwrap().render(),
        r#"1009;reason="No match for domain in DNS SRV results";domain="cms.steven.lab";fqdn1="vcse.sub.cms.steven.lab:5061";source="sip.skype.lab""#
    );
}

#[test]
fn outbound_1008_no_srv() {
    let v = policy()
        .decide_outbound_srv("cms.steven.lab", &Err(DnsFailure::NxDomain))
        .unwrap_err();
    assert_eq!(
        v.diagnostic().unwrap().render(),
        r#"1008;reason="Unable to resolve DNS SRV record";domain="cms.steven.lab";source="sip.skype.lab""#
    );
    assert!(
        policy()
            .decide_outbound_srv("cms.steven.lab", &Ok(vec![]))
            .is_err()
    );
}

#[test]
fn outbound_srv_pick() {
    let answer = Ok(vec![srv("vcse.cms.steven.lab", 5061)]);
    assert_eq!(
        policy()
            .decide_outbound_srv("cms.steven.lab", &answer)
            .unwrap()
            .target,
        "vcse.cms.steven.lab"
    );
}

#[test]
fn outbound_seed_1010() {
    let c = cert_san("vcse.steven.lab", &["vcse.steven.lab"]);
    let v = policy()
        .decide_outbound_cert("vcse.cms.steven.lab", &c, &ChainStatus::Trusted)
        .unwrap_err();
    assert_eq!(
        v.diagnostic().unwrap().render(),
        r#"1010;reason="Certificate trust with another server could not be established";ErrorType="The peer certificate does not contain a matching FQDN";tls-target="vcse.cms.steven.lab";PeerServer="vcse.steven.lab";HRESULT="0x80090322 (SEC_E_WRONG_PRINCIPAL)";source="sip.skype.lab""#
    );
}

#[test]
fn outbound_cert_chain_hresults() {
    let c = cert_san("vcse.cms.steven.lab", &["vcse.cms.steven.lab"]);
    let p = policy();
    assert!(
        p.decide_outbound_cert("vcse.cms.steven.lab", &c, &ChainStatus::Trusted)
            .is_ok()
    );
    for (status, hr) in [
        (
            ChainStatus::UntrustedRoot,
            "0x80090325 (SEC_E_UNTRUSTED_ROOT)",
        ),
        (ChainStatus::Expired, "0x80090328 (SEC_E_CERT_EXPIRED)"),
        (ChainStatus::NotYetValid, "0x80090328 (SEC_E_CERT_EXPIRED)"),
        // No certificate at all: nothing to check, as inbound (issue 12: one finding, one HRESULT).
        (ChainStatus::Missing, "0x8009030E (SEC_E_NO_CREDENTIALS)"),
        (
            ChainStatus::Invalid(ChainProblem::Malformed),
            "0x80090327 (SEC_E_CERT_UNKNOWN)",
        ),
        (
            ChainStatus::Invalid(ChainProblem::TooLong),
            "0x80090327 (SEC_E_CERT_UNKNOWN)",
        ),
        // Another CA with a trusted CA's name: untrusted, as the fix is the same.
        (
            ChainStatus::Invalid(ChainProblem::OtherCaSameName),
            "0x80090325 (SEC_E_UNTRUSTED_ROOT)",
        ),
        (
            ChainStatus::WrongUsage,
            "0x80090349 (SEC_E_CERT_WRONG_USAGE)",
        ),
    ] {
        let v = p
            .decide_outbound_cert("vcse.cms.steven.lab", &c, &status)
            .unwrap_err();
        let d = v.diagnostic().unwrap();
        assert_eq!(d.code, 1010);
        assert_eq!(d.param("HRESULT"), Some(hr));
    }
}

#[test]
fn outbound_connect_failures() {
    let p = policy();
    let reset =
        p.outbound_connect_failure("vcse.cms.steven.lab", ConnectFailure::ResetDuringHandshake);
    assert_eq!(
        reset.diagnostic().unwrap().render(),
        r#"1047;reason="Failed to complete TLS negotiation with a federated peer server";WinsockFailureCode="10054(WSAECONNRESET)";WinsockFailureDescription="The peer forced closure of the connection";source="sip.skype.lab""#
    );
    for (kind, code) in [
        (ConnectFailure::Refused, "10061(WSAECONNREFUSED)"),
        (ConnectFailure::TimedOut, "10060(WSAETIMEDOUT)"),
        (ConnectFailure::HostUnreachable, "10065(WSAEHOSTUNREACH)"),
    ] {
        let v = p.outbound_connect_failure("x", kind);
        assert_eq!(v.status(), Some(504));
        let d = v.diagnostic().unwrap();
        assert_eq!(d.code, 1046);
        assert_eq!(d.param("WinsockFailureCode"), Some(code));
    }
}

#[test]
fn outbound_peer_response_1034() {
    let p = policy();
    assert_eq!(
        p.outbound_peer_response(404, false, "steven.lab", "vcse.steven.lab")
            .unwrap()
            .render(),
        r#"1034;reason="Previous hop federated peer did not report diagnostic information";Domain="steven.lab";PeerServer="vcse.steven.lab";source="sip.skype.lab""#
    );
    assert!(p.outbound_peer_response(404, true, "d", "s").is_none());
    assert!(p.outbound_peer_response(200, false, "d", "s").is_none());
}

// ---- handshake and events ----

#[test]
fn handshake_rejections_per_kind() {
    let c = cert_san("vcse.steven.lab", &["vcse.steven.lab"]);
    assert!(handshake_rejection(&ChainStatus::Trusted, Some(&c), "10.0.0.1:25001").is_none());
    let r = handshake_rejection(&ChainStatus::UntrustedRoot, Some(&c), "10.0.0.1:25001").unwrap();
    let log = r.log().unwrap();
    assert_eq!(log.result_code, ResultCode::CLIENT_CERT_REJECTED);
    assert_eq!(log.peer, "10.0.0.1:25001");
    assert_eq!(
        log.render_data(),
        r#"reason="untrusted root";certName="vcse.steven.lab""#
    );
    let r = handshake_rejection(&ChainStatus::Expired, Some(&c), "p").unwrap();
    assert_eq!(r.log().unwrap().data_value("reason"), Some("expired"));
    let r = handshake_rejection(&ChainStatus::Missing, None, "p").unwrap();
    assert_eq!(r.log().unwrap().render_data(), r#"reason="missing""#);
}

#[test]
fn verdict_to_event() {
    let c = cert_san("vcse.steven.lab", &["vcse.steven.lab"]);
    let f = facts(
        "acano.steven.lab",
        "vcse.steven.lab:25002",
        Some(Ok(vec![srv("vcse.steven.lab", 5061)])),
        &c,
    );
    let ev = decide_inbound(&f, &policy()).to_event(EventContext {
        time: time::macros::datetime!(2017-03-02 07:10:46 UTC),
        remote: "10.48.36.47:25002".into(),
        peer_cert: Some("vcse.steven.lab".into()),
        method: "INVITE".into(),
        call_id: f.call_id.clone(),
        domain: f.sender_domain.as_ref().map(ToString::to_string),
    });
    assert_eq!(ev.status, Some(504));
    assert_eq!(ev.ms_diagnostics_code, Some(1009));
    assert_eq!(
        ev.result_code.as_deref(),
        Some("0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH")
    );
    assert_eq!(ev.log_data.len(), 2);
    let line = ev.to_json_line().unwrap();
    assert!(line.contains(r#""verdict":"reject""#), "{line}");
}

// ---- SRV target "." (RFC 2782) and the DNS server in explanations ----

fn dot(port: u16) -> SrvRecord {
    srv("", port)
}

#[test]
fn srv_target_dot_is_decidedly_unavailable() {
    assert!(srv_decidedly_unavailable(&dot(0)));
    assert!(srv_decidedly_unavailable(&srv(".", 0)));
    assert!(!srv_decidedly_unavailable(&srv("vcse.dot.lab", 5061)));
    let only_dot = Ok(vec![dot(1)]);
    assert_eq!(
        srv_decision("dot.lab", &only_dot, true),
        SrvDecision::NoSrv(NoSrv::DecidedlyNotAvailable)
    );
    // Next to a real record, "." is ignored: Rule 1 picks the real one, or lists only the real ones.
    let mixed = Ok(vec![dot(1), srv("vcse.dot.lab", 5061)]);
    assert_eq!(
        srv_decision("dot.lab", &mixed, true),
        SrvDecision::Target(&srv("vcse.dot.lab", 5061))
    );
    let mixed_bad = Ok(vec![dot(1), srv("vcse.other.lab", 5061)]);
    assert_eq!(
        srv_decision("dot.lab", &mixed_bad, true),
        SrvDecision::Mismatch(Rule1Failure {
            domain: "dot.lab".into(),
            fqdns: vec!["vcse.other.lab:5061".into()],
        })
    );
}

const DOT_EXPLANATION: &str = "_sipfederationtls._tcp.dot.lab has no usable SRV record: its target is \".\", which RFC 2782 defines as \"service decidedly not available\" at dot.lab (answered by 127.0.0.1:5353). dot.lab says it does not federate. Fix: if it should, replace that record with _sipfederationtls._tcp.dot.lab → <edge host>.dot.lab:5061, with an A record for that host in dot.lab.";

#[test]
fn outbound_srv_target_dot_is_1008_not_1009() {
    let p = policy().with_dns_server("127.0.0.1:5353");
    let v = p
        .decide_outbound_srv("dot.lab", &Ok(vec![dot(1)]))
        .unwrap_err();
    assert_eq!(v.status(), Some(504));
    assert_eq!(
        v.diagnostic().unwrap().render(),
        r#"1008;reason="Unable to resolve DNS SRV record";domain="dot.lab";source="sip.skype.lab""#
    );
    assert_eq!(v.explanation().unwrap(), DOT_EXPLANATION);
}

#[test]
fn inbound_srv_target_dot_is_1008_with_the_no_srv_record() {
    let c = cert_san("vcse.dot.lab", &["vcse.dot.lab"]);
    let p = policy().with_dns_server("127.0.0.1:5353");
    let v = decide_inbound(
        &facts("dot.lab", "vcse.dot.lab:1", Some(Ok(vec![dot(0)])), &c),
        &p,
    );
    assert_eq!(v.status(), Some(504));
    assert_eq!(v.log().unwrap().result_code, ResultCode::NO_SRV);
    assert_eq!(
        data(&v),
        r#"domain="dot.lab";reason="DECIDEDLY_NOT_AVAILABLE""#
    );
    assert_eq!(
        v.diagnostic().unwrap().render(),
        r#"1008;reason="Unable to resolve DNS SRV record";domain="dot.lab";source="sip.skype.lab""#
    );
    assert_eq!(v.explanation().unwrap(), DOT_EXPLANATION);
}

#[test]
fn no_srv_explanations_name_the_dns_server() {
    let p = policy().with_dns_server("127.0.0.1:5353");
    let explain = |f: DnsFailure| {
        p.decide_outbound_srv("x.lab", &Err(f))
            .unwrap_err()
            .explanation()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        explain(DnsFailure::NxDomain),
        "_sipfederationtls._tcp.x.lab has no SRV record (the name does not exist (NXDOMAIN from 127.0.0.1:5353)). Fix: publish _sipfederationtls._tcp.x.lab → <edge host>.x.lab:5061, with an A record for that host in x.lab (or point the Edge at the DNS server that serves x.lab)."
    );
    assert_eq!(
        explain(DnsFailure::Timeout),
        "The SRV lookup of _sipfederationtls._tcp.x.lab failed: the DNS server 127.0.0.1:5353 did not answer in time. Fix: check that 127.0.0.1:5353 runs and answers DNS (UDP and TCP) and serves the zone of x.lab, or point the Edge at a DNS server that does."
    );
    // Without a server named, the wording still reads.
    let v = policy()
        .decide_outbound_srv("x.lab", &Err(DnsFailure::ServFail))
        .unwrap_err();
    assert!(
        v.explanation().unwrap()
            == "The SRV lookup of _sipfederationtls._tcp.x.lab failed: the DNS server answered SERVFAIL. Fix: check that the Edge's DNS server runs and answers DNS (UDP and TCP) and serves the zone of x.lab, or point the Edge at a DNS server that does.",
        "{}",
        v.explanation().unwrap()
    );
}
