//! Two inbound outcomes beyond the seed's: a peer without a client certificate (Rule 2 cannot hold), and a
//! request for a domain this Edge does not serve.
//!
//! Choices (no Microsoft source):
//! - No client certificate: a real Edge never gets here (it requires one at the handshake); with
//!   `tls.client_cert` optional or none the rules run up to Rule 2 and stop there: `504 Server time-out`, 1010
//!   with `SEC_E_NO_CREDENTIALS` and an empty `PeerServer`, record 0xc3e93e10 `expectedfqdn`, `info`.
//! - Destination: the Edge answers for its SIP domain (`edge.domain`), its own FQDN (`edge.fqdn`, where its
//!   Contact sends in-dialog requests) and the address the request arrived on. Anything else (`sip:x@evil.lab`,
//!   a `tel:` URI) is `404 Not Found` (RFC 3261 §8.2.2.1: "not an address the UAS is willing to accept
//!   requests for") with `1005;reason="Cannot route to destination domain"` and record 0xc3e93e11. The check
//!   follows the federation rules, so an unauthenticated peer learns nothing about the Edge's domains.

use std::net::IpAddr;

use super::{InboundFacts, Policy, SERVER_TIMEOUT, Verdict, kv, norm};
use crate::config::ClientCertMode;
use crate::diagnostics::{Hresult, MsDiagnostic, ResultCode};

/// Reason phrase of 404.
const NOT_FOUND: &str = "Not Found";

impl Policy {
    /// Whether a Request-URI host is one this Edge answers for: its SIP domain, its FQDN, or `local_ip`.
    pub fn serves_host(&self, host: &str, local_ip: Option<IpAddr>) -> bool {
        let h = norm(host.trim_start_matches('[').trim_end_matches(']'));
        if h.is_empty() {
            return false;
        }
        if h == self.edge_domain || h == norm(&self.edge_fqdn) {
            return true;
        }
        match (h.parse::<IpAddr>(), local_ip) {
            (Ok(ip), Some(local)) => ip == local,
            _ => false,
        }
    }

    /// The no-certificate outcome of Rule 2 for `target`.
    pub(super) fn inbound_no_certificate(&self, facts: &InboundFacts, target: &str) -> Verdict {
        let setting = match self.client_cert {
            ClientCertMode::Optional => r#"tls.client_cert = "optional""#,
            ClientCertMode::None => r#"tls.client_cert = "none""#,
            // Cannot happen (the handshake requires one); say what would have let it in.
            ClientCertMode::Required => r#"a tls.client_cert other than "required""#,
        };
        let domain = facts.sender_domain.as_deref().map(norm).unwrap_or_default();
        Verdict::Reject {
            status: 504,
            reason: SERVER_TIMEOUT,
            diagnostic: Some(MsDiagnostic::e1010(
                Hresult::NoCredentials,
                target,
                "",
                &self.edge_fqdn,
            )),
            log: Some(self.log(
                facts,
                ResultCode::NO_PEER_CERT,
                vec![
                    kv("expectedfqdn", target),
                    kv("info", "The peer did not present a TLS client certificate"),
                ],
            )),
            explanation: format!(
                "The peer presented no TLS client certificate, so the Edge cannot check that it is {target} (where the federation route of {domain} leads). The connection got this far only because of {setting}; a real Edge refuses it at the TLS handshake. Fix: on the peer (Expressway-E), present a certificate with {target} in its SAN and the Client Authentication EKU when it connects as a TLS client; on the Edge, set tls.client_cert = \"required\" (the default) to refuse such peers at the handshake as a real Edge does."
            ),
        }
    }

    /// The destination rule: `None` when the Request-URI is for this Edge, else the 404 / 1005 refusal.
    pub(super) fn inbound_destination(&self, facts: &InboundFacts) -> Option<Verdict> {
        if self.serves_host(&facts.request_host, facts.local_ip) {
            return None;
        }
        let host = norm(&facts.request_host);
        let edge = &self.edge_domain;
        let fqdn = norm(&self.edge_fqdn);
        let what = if host.is_empty() {
            format!("{}, which names no SIP domain", facts.request_uri)
        } else {
            format!("{}, in {host}", facts.request_uri)
        };
        Some(Verdict::Reject {
            status: 404,
            reason: NOT_FOUND,
            diagnostic: Some(MsDiagnostic::e1005(&self.edge_fqdn)),
            log: Some(self.log(
                facts,
                ResultCode::FOREIGN_DESTINATION,
                vec![kv("destinationDomain", &host), kv("edgeDomain", edge)],
            )),
            explanation: format!(
                "The request is for {what}, but this Edge answers only for {edge} (and its own name {fqdn}); an Edge does not relay between federated domains. Fix: address the Microsoft user in {edge} (sip:user@{edge}), and on the peer send only {edge} requests to this Edge (on an Expressway-E: the search rule toward the Microsoft DNS zone should match {edge} only)."
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Identity, PolicyConfig};
    use crate::dns::SrvRecord;
    use crate::pki::CertFacts;
    use crate::rules::decide_inbound;

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
