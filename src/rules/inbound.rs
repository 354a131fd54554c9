//! The inbound direction, in the Edge's order: the clientAuth EKU (the handshake's last word), the sender domain,
//! the partner policy, the SRV lookup with Rule 1, Rule 2, then the destination. Two phases, because the SRV
//! lookup is I/O: [`inbound`] either decides or says what to look up, and [`Pending::decide`] finishes with the
//! answer, without running the first phase again.
//!
//! No client certificate (no Microsoft source): a real Edge never gets here (it requires one at the handshake);
//! with `tls.client_cert` optional or none the rules run up to Rule 2 and stop there: `504 Server time-out`, 1010
//! with `SEC_E_NO_CREDENTIALS` and an empty `PeerServer`, record 0xc3e93e10 `expectedfqdn`, `info`.

use std::net::IpAddr;

use super::{Decision, Direction, DomainName, Finding, Policy, RequestLine, Route, Verdict, cert};
use crate::dns::{DnsFailure, SrvRecord};
use crate::pki::CertFacts;

/// The facts of one inbound request that the rules read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundFacts<'a> {
    /// SIP method.
    pub method: String,
    /// Request-URI.
    pub request_uri: String,
    /// Call-ID.
    pub call_id: String,
    /// CSeq value, e.g. `2066245576 INVITE`.
    pub cseq: String,
    /// Request line, e.g. `INVITE sip:stejanss@skype.lab SIP/2.0`.
    pub start_line: String,
    /// From [`super::sender_domain`].
    pub sender_domain: Option<DomainName>,
    /// Certificate display name and source port, e.g. `vcse.steven.lab:25002`.
    pub peer: String,
    /// SRV answer for [`decide_inbound`]; `None` when no lookup was made (fixed FQDN, or not yet).
    pub srv: Option<Result<Vec<SrvRecord>, DnsFailure>>,
    /// The peer's client certificate (chain trust was decided at the handshake); `None` when the peer
    /// presented none (`tls.client_cert` optional or none).
    pub cert: Option<&'a CertFacts>,
    /// The Request-URI host, lower-case (empty for a URI without host, such as `tel:`).
    pub request_host: String,
    /// The Edge address the request arrived on (a Request-URI may name it).
    pub local_ip: Option<IpAddr>,
}

impl InboundFacts<'_> {
    /// What the Edge log record says about this request.
    pub fn request_line(&self) -> RequestLine<'_> {
        RequestLine {
            start_line: &self.start_line,
            call_id: &self.call_id,
            cseq: &self.cseq,
            peer: &self.peer,
        }
    }
}

/// The first phase's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Decided without DNS (a refusal, or a fixed partner FQDN).
    Decided(Decision),
    /// Look up the federation SRV of the sender domain, then [`Pending::decide`].
    Lookup(Pending),
}

/// An inbound request waiting for its SRV answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    domain: DomainName,
}

impl Pending {
    /// The name to look up: `_sipfederationtls._tcp.<sender domain>`.
    pub fn srv_name(&self) -> String {
        self.domain.srv_name()
    }

    /// The second phase: Rule 1 over the answer, Rule 2 on the target it picked, then the destination.
    pub fn decide(
        self,
        policy: &Policy,
        facts: &InboundFacts,
        answer: &Result<Vec<SrvRecord>, DnsFailure>,
    ) -> Decision {
        match policy.srv_target(&self.domain, answer, Direction::Inbound) {
            Ok(r) => rule2(policy, facts, &self.domain, DomainName::new(&r.target)),
            Err(f) => Decision::Refuse(f),
        }
    }
}

/// The first phase: the EKU, sender and policy rules, and Rule 2 for a fixed partner FQDN.
pub fn inbound(policy: &Policy, facts: &InboundFacts) -> Step {
    // The clientAuth EKU emulates the handshake, so it comes first. Without a certificate there is no EKU to
    // judge; Rule 2 says what is missing.
    if let Some(f) = facts
        .cert
        .and_then(|c| cert::client_auth(policy, c, None))
        .filter(Finding::refuses)
    {
        return Step::Decided(Decision::Refuse(f));
    }
    let Some(domain) = facts.sender_domain.clone() else {
        return Step::Decided(Decision::Refuse(Finding::NoSenderDomain));
    };
    let route = policy.route(&domain);
    if let Some(f) = route.refusal(&domain) {
        return Step::Decided(Decision::Refuse(f));
    }
    match route {
        Route::FixedFqdn(fqdn) => Step::Decided(rule2(policy, facts, &domain, fqdn)),
        _ => Step::Lookup(Pending { domain }),
    }
}

/// Rule 2 inbound: the peer's client certificate must name the target; then the destination.
fn rule2(
    policy: &Policy,
    facts: &InboundFacts,
    domain: &DomainName,
    target: DomainName,
) -> Decision {
    let Some(c) = facts.cert else {
        return Decision::Refuse(Finding::NoPeerCertificate {
            target,
            dir: Direction::Inbound,
            sender: domain.clone(),
            setting: policy.client_cert,
        });
    };
    let name = cert::name_rule(policy, c, &target);
    if name.refuses() {
        return Decision::Refuse(name);
    }
    match policy.destination(&facts.request_uri, &facts.request_host, facts.local_ip) {
        Some(f) => Decision::Refuse(f),
        None => Decision::Accept { target },
    }
}

/// Both phases with the SRV answer in `facts.srv`, rendered for `policy`'s Edge (tests and tools; the Edge runs
/// [`inbound`] and [`Pending::decide`] around its lookup).
pub fn decide_inbound(facts: &InboundFacts, policy: &Policy) -> Verdict {
    let decision = match inbound(policy, facts) {
        Step::Decided(d) => d,
        Step::Lookup(pending) => {
            let not_made = Err(DnsFailure::Other("the SRV lookup was not made".into()));
            pending.decide(policy, facts, facts.srv.as_ref().unwrap_or(&not_made))
        }
    };
    Verdict::new(decision, &policy.edge_fqdn, Some(&facts.request_line()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientCertMode, Identity, PolicyConfig};
    use crate::diagnostics::ResultCode;
    use crate::dns::SrvRecord;
    use crate::pki::CertFacts;

    fn policy(mode: ClientCertMode) -> Policy {
        Policy {
            client_cert: mode,
            ..Policy::new(&Identity::default(), &PolicyConfig::default(), false)
        }
    }

    fn facts<'a>(request_uri: &str, host: &str, cert: Option<&'a CertFacts>) -> InboundFacts<'a> {
        InboundFacts {
            method: "INVITE".into(),
            request_uri: request_uri.into(),
            call_id: "c1".into(),
            cseq: "1 INVITE".into(),
            start_line: format!("INVITE {request_uri} SIP/2.0"),
            sender_domain: Some("acano.steven.lab".into()),
            peer: "127.0.0.1:25002".into(),
            srv: Some(Ok(vec![SrvRecord {
                priority: 10,
                weight: 10,
                port: 5061,
                target: "vcse.acano.steven.lab".into(),
            }])),
            cert,
            request_host: host.into(),
            local_ip: Some("10.0.0.5".parse().unwrap()),
        }
    }

    fn good_cert() -> CertFacts {
        CertFacts {
            common_names: vec!["vcse.acano.steven.lab".into()],
            san_dns: Some(vec!["vcse.acano.steven.lab".into()]),
            ..CertFacts::default()
        }
    }

    #[test]
    fn no_certificate_says_so_on_both_sides() {
        let v = decide_inbound(
            &facts("sip:stejanss@skype.lab", "skype.lab", None),
            &policy(ClientCertMode::Optional),
        );
        assert_eq!(v.status(), Some(504));
        assert_eq!(
            v.diagnostic().unwrap().render(),
            r#"1010;reason="Certificate trust with another server could not be established";ErrorType="The peer did not present a certificate";tls-target="vcse.acano.steven.lab";PeerServer="";HRESULT="0x8009030E (SEC_E_NO_CREDENTIALS)";source="sip.skype.lab""#
        );
        let log = v.log().unwrap();
        assert_eq!(log.result_code, ResultCode::NO_PEER_CERT);
        assert_eq!(
            log.render_data(),
            r#"expectedfqdn="vcse.acano.steven.lab";info="The peer did not present a TLS client certificate""#
        );
        assert_eq!(
            v.explanation().unwrap(),
            "The peer presented no TLS client certificate, so the Edge cannot check that it is vcse.acano.steven.lab (where the federation route of acano.steven.lab leads). The connection got this far only because of tls.client_cert = \"optional\"; a real Edge refuses it at the TLS handshake. Fix: on the peer (Expressway-E), present a certificate with vcse.acano.steven.lab in its SAN and the Client Authentication EKU when it connects as a TLS client; on the Edge, set tls.client_cert = \"required\" (the default) to refuse such peers at the handshake as a real Edge does."
        );
        let none = decide_inbound(
            &facts("sip:stejanss@skype.lab", "skype.lab", None),
            &policy(ClientCertMode::None),
        );
        assert!(
            none.explanation()
                .unwrap()
                .contains(r#"only because of tls.client_cert = "none";"#)
        );
    }

    #[test]
    fn own_hosts() {
        let p = policy(ClientCertMode::Required);
        let local = Some("10.0.0.5".parse().unwrap());
        assert!(p.serves_host("skype.lab", local));
        assert!(p.serves_host("SKYPE.lab.", local));
        assert!(p.serves_host("sip.skype.lab", local));
        assert!(p.serves_host("10.0.0.5", local));
        assert!(!p.serves_host("10.0.0.6", local));
        assert!(!p.serves_host("evil.lab", local));
        assert!(!p.serves_host("sub.skype.lab", local));
        assert!(!p.serves_host("", local));
        assert!(p.serves_host("[::1]", Some("::1".parse().unwrap())));
    }

    #[test]
    fn foreign_request_uri_is_404_1005_after_the_rules_pass() {
        let c = good_cert();
        let p = policy(ClientCertMode::Required);
        let ok = decide_inbound(&facts("sip:stejanss@skype.lab", "skype.lab", Some(&c)), &p);
        assert!(ok.is_accept());
        let contact = decide_inbound(
            &facts(
                "sip:stejanss@sip.skype.lab:5061;transport=tls",
                "sip.skype.lab",
                Some(&c),
            ),
            &p,
        );
        assert!(contact.is_accept());
        let v = decide_inbound(&facts("sip:stejanss@evil.lab", "evil.lab", Some(&c)), &p);
        assert_eq!(v.status(), Some(404));
        assert_eq!(
            v.diagnostic().unwrap().render(),
            r#"1005;reason="Cannot route to destination domain";source="sip.skype.lab""#
        );
        assert_eq!(
            v.log().unwrap().render_data(),
            r#"destinationDomain="evil.lab";edgeDomain="skype.lab""#
        );
        assert_eq!(
            v.explanation().unwrap(),
            "The request is for sip:stejanss@evil.lab, in evil.lab, but this Edge answers only for skype.lab (and its own name sip.skype.lab); an Edge does not relay between federated domains. Fix: address the Microsoft user in skype.lab (sip:user@skype.lab), and on the peer send only skype.lab requests to this Edge (on an Expressway-E: the search rule toward the Microsoft DNS zone should match skype.lab only)."
        );
        let tel = decide_inbound(&facts("tel:+4930123", "", Some(&c)), &p);
        assert_eq!(tel.status(), Some(404));
        assert!(
            tel.explanation()
                .unwrap()
                .starts_with("The request is for tel:+4930123, which names no SIP domain, but")
        );
        // The federation rules come first: a foreign destination from a peer that fails them gets their answer.
        let wrong = CertFacts {
            san_dns: Some(vec!["vcse.steven.lab".into()]),
            ..good_cert()
        };
        let v = decide_inbound(
            &facts("sip:stejanss@evil.lab", "evil.lab", Some(&wrong)),
            &p,
        );
        assert_eq!(v.log().unwrap().result_code, ResultCode::CERT_MISMATCH);
    }
}
