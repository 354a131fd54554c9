//! The partner rules with their exact words: federation off, the partner types and the trust they stamp, the
//! discovered-partner rate and contacts limits (counts given as facts), the verification levels.

use super::*;
use crate::config::{AllowedDomain, Identity, PolicyConfig};
use crate::diagnostics::{ResultCode, VerdictKind};
use crate::rules::RequestLine;

fn policy() -> Policy {
    let cfg = PolicyConfig {
        allowed_domains: vec![
            AllowedDomain {
                domain: "fabrikam.lab".into(),
                proxy_fqdn: Some("sip.fabrikam.lab".into()),
            },
            AllowedDomain {
                domain: "contoso.lab".into(),
                proxy_fqdn: None,
            },
        ],
        ..PolicyConfig::default()
    };
    Policy::new(&Identity::default(), &cfg, false)
}

fn req() -> RequestLine<'static> {
    RequestLine {
        start_line: "INVITE sip:stejanss@skype.lab SIP/2.0",
        call_id: "c1",
        cseq: "1 INVITE",
        peer: "vcse.acano.steven.lab:25002",
    }
}

fn trust(p: &Policy, domain: &str, target: &str) -> MessageTrust {
    p.message_trust(&domain.into(), &target.into()).unwrap()
}

#[test]
fn partner_types_and_the_trust_they_stamp() {
    let p = policy();
    assert_eq!(
        p.partner_type(&"fabrikam.lab".into()),
        Some(PartnerType::AllowedServer)
    );
    assert_eq!(
        p.partner_type(&"contoso.lab".into()),
        Some(PartnerType::AllowedDomain)
    );
    assert_eq!(
        p.partner_type(&"acano.steven.lab".into()),
        Some(PartnerType::Discovered)
    );
    assert_eq!(
        trust(&p, "fabrikam.lab", "sip.fabrikam.lab").render(),
        "ms-source-type=DirectPartner;ms-ep-fqdn=sip.skype.lab;ms-source-verified-user=verified;ms-source-network=federation;ms-remote-fqdn=sip.fabrikam.lab"
    );
    assert_eq!(
        trust(&p, "acano.steven.lab", "vcse.acano.steven.lab").render(),
        "ms-source-type=AutoFederation;ms-ep-fqdn=sip.skype.lab;ms-source-verified-user=verified;ms-source-network=federation;ms-remote-fqdn=vcse.acano.steven.lab"
    );
    let unverified = Policy {
        discovered: DiscoveredPartnerLimits {
            verification_level: VerificationLevel::AlwaysUnverifiable,
            ..p.discovered
        },
        verification_levels: vec![("contoso.lab".into(), VerificationLevel::AlwaysVerifiable)],
        ..p
    };
    assert!(!trust(&unverified, "acano.steven.lab", "vcse.acano.steven.lab").verified);
    assert!(trust(&unverified, "contoso.lab", "sip.contoso.lab").verified);
    assert_eq!(
        trust(&unverified, "acano.steven.lab", "vcse.acano.steven.lab").render(),
        "ms-source-type=AutoFederation;ms-ep-fqdn=sip.skype.lab;ms-source-verified-user=unverified;ms-source-network=federation;ms-remote-fqdn=vcse.acano.steven.lab"
    );
}

#[test]
fn federation_off_refuses_every_domain_with_its_own_words() {
    let p = Policy {
        federation_enabled: false,
        ..policy()
    };
    for d in ["fabrikam.lab", "contoso.lab", "acano.steven.lab"] {
        assert_eq!(p.route(&d.into()), Route::FederationOff);
        assert_eq!(p.partner_type(&d.into()), None);
    }
    let f = p
        .route(&"acano.steven.lab".into())
        .refusal(&"acano.steven.lab".into())
        .unwrap();
    assert_eq!(f.sip(), Some((403, "Forbidden")));
    assert_eq!(
        f.ms_diagnostic("sip.skype.lab").unwrap().render(),
        r#"1002;reason="From URI not authorized to communicate with federated partners";source="sip.skype.lab""#
    );
    let record = f.log_record(&req()).unwrap();
    assert_eq!(record.result_code, ResultCode::FEDERATION_DISABLED);
    assert_eq!(
        record.result_code.render(),
        "0xc3e93e06 SIPPROXY_E_EPROUTING_MSG_FEDERATION_DISABLED"
    );
    assert_eq!(
        record.render_data(),
        r#"domain="acano.steven.lab";AllowFederatedUsers="False""#
    );
    assert_eq!(
        f.explain().to_string(),
        "Federation is off on this Edge: AllowFederatedUsers is False, so it refuses every federated domain, acano.steven.lab included; the Edge answered 403 Forbidden with ms-diagnostics 1002. Fix: set allow_federated_users = true in [access_edge] (on a real Edge: Set-CsAccessEdgeConfiguration -AllowFederatedUsers $true), or paste a Get-CsAccessEdgeConfiguration that shows AllowFederatedUsers : True."
    );
    assert_eq!(f.rule(), "policy");
    assert_eq!(f.verdict_kind(), VerdictKind::Reject);
    assert_eq!(f.class(), Some(crate::rules::OutcomeClass::Blocked));
}

/// A discovered partner's requests, one after another at the times given (ms), with the count the Edge's
/// state would pass in: a one-second window from its first request.
fn window_counts(times_ms: &[u64]) -> Vec<u32> {
    let mut start = None;
    let mut n = 0;
    times_ms
        .iter()
        .map(|&t| {
            match start {
                Some(s) if t - s < 1000 => n += 1,
                _ => {
                    start = Some(t);
                    n = 1;
                }
            }
            n
        })
        .collect()
}

#[test]
fn the_rate_throttles_past_the_standard_rate_with_its_words() {
    let p = policy();
    let t = trust(&p, "acano.steven.lab", "vcse.acano.steven.lab");
    let d: DomainName = "acano.steven.lab".into();
    // 25 messages within 480 ms (a clock the test controls): the 21st to the 25th are throttled.
    let times: Vec<u64> = (0..25).map(|i| i * 20).collect();
    let refused: Vec<u32> = window_counts(&times)
        .into_iter()
        .filter_map(|n| {
            let counts = PartnerCounts {
                in_second: n,
                distinct_users: 0,
                new_user: false,
            };
            discovered_partner_limit(&p.discovered, &d, Some("stejanss"), counts, &t).map(|_| n)
        })
        .collect();
    assert_eq!(refused, vec![21, 22, 23, 24, 25]);
    // The next second starts a new window.
    assert_eq!(window_counts(&[0, 999, 1000]), vec![1, 2, 1]);

    let f = discovered_partner_limit(
        &p.discovered,
        &d,
        Some("stejanss"),
        PartnerCounts {
            in_second: 21,
            ..PartnerCounts::default()
        },
        &t,
    )
    .unwrap();
    assert_eq!(f.sip(), Some((503, "Service Unavailable")));
    assert_eq!(f.response_headers(), vec![("Retry-After", "1".to_owned())]);
    assert_eq!(f.ms_diagnostic("sip.skype.lab"), None);
    assert_eq!(f.verdict_kind(), VerdictKind::Limit);
    assert_eq!(f.rule(), "limits");
    let record = f.log_record(&req()).unwrap();
    assert_eq!(
        record.result_code.render(),
        "0xc3e93e07 SIPPROXY_E_EPROUTING_MSG_DISCOVERED_PARTNER_THROTTLED"
    );
    assert_eq!(
        record.render_data(),
        r#"domain="acano.steven.lab";messagesInSecond="21";DiscoveredPartnerStandardRate="20";msEdgeProxyMessageTrust="ms-source-type=AutoFederation;ms-ep-fqdn=sip.skype.lab;ms-source-verified-user=verified;ms-source-network=federation;ms-remote-fqdn=vcse.acano.steven.lab""#
    );
    assert_eq!(
        f.explain().to_string(),
        "acano.steven.lab is a discovered partner (found by DNS SRV, not on the allowed list) and sent 21 messages within one second, over DiscoveredPartnerStandardRate = 20: the Edge answered 503 Service Unavailable with Retry-After: 1. Fix: slow the peer down, or list acano.steven.lab as an allowed domain ([[allowed_domains]] Identity = \"acano.steven.lab\"; on a real Edge New-CsAllowedDomain -Identity acano.steven.lab), as Microsoft advises for a partner that sends more than 20 messages per second; or raise access_edge.discovered_partner_standard_rate."
    );
    assert!(counts_toward_partner_rate("MESSAGE"));
    assert!(counts_toward_partner_rate("INVITE"));
    assert!(!counts_toward_partner_rate("ACK"));
    assert!(!counts_toward_partner_rate("BYE"));
    assert!(!counts_toward_partner_rate("CANCEL"));
}

#[test]
fn the_contacts_limit_refuses_a_new_user_only() {
    let p = Policy {
        discovered: DiscoveredPartnerLimits {
            max_contacts: Some(2),
            ..policy().discovered
        },
        ..policy()
    };
    let t = trust(&p, "acano.steven.lab", "vcse.acano.steven.lab");
    let d: DomainName = "acano.steven.lab".into();
    let ask = |distinct_users, new_user| {
        discovered_partner_limit(
            &p.discovered,
            &d,
            Some("carol"),
            PartnerCounts {
                in_second: 1,
                distinct_users,
                new_user,
            },
            &t,
        )
    };
    assert_eq!(ask(1, true), None);
    assert_eq!(ask(2, false), None, "a user already reached goes on");
    let f = ask(2, true).unwrap();
    assert_eq!(f.sip(), Some((403, "Forbidden")));
    assert_eq!(f.response_headers(), vec![]);
    assert_eq!(f.verdict_kind(), VerdictKind::Limit);
    assert_eq!(
        f.log_record(&req()).unwrap().result_code.render(),
        "0xc3e93e08 SIPPROXY_E_EPROUTING_MSG_DISCOVERED_PARTNER_CONTACTS_LIMIT"
    );
    assert_eq!(
        f.log_record(&req()).unwrap().render_data(),
        r#"domain="acano.steven.lab";user="carol";MaxContactsPerDiscoveredPartner="2";DiscoveredPartnerReportPeriodMinutes="60";msEdgeProxyMessageTrust="ms-source-type=AutoFederation;ms-ep-fqdn=sip.skype.lab;ms-source-verified-user=verified;ms-source-network=federation;ms-remote-fqdn=vcse.acano.steven.lab""#
    );
    assert_eq!(
        f.explain().to_string(),
        "acano.steven.lab is a discovered partner and has already reached 2 distinct users in this report period of 60 minutes (MaxContactsPerDiscoveredPartner = 2): the request for carol, a user it has not reached before, got 403 Forbidden. Fix: list acano.steven.lab as an allowed domain ([[allowed_domains]] Identity = \"acano.steven.lab\"; on a real Edge New-CsAllowedDomain -Identity acano.steven.lab), as Microsoft advises for a partner that must reach more than 2 users; or raise access_edge.max_contacts_per_discovered_partner, or set access_edge.enable_discovered_partner_contacts_limit = false."
    );
    // EnableDiscoveredPartnerContactsLimit False: no limit.
    let off = DiscoveredPartnerLimits {
        max_contacts: None,
        ..p.discovered
    };
    let counts = PartnerCounts {
        in_second: 1,
        distinct_users: 5000,
        new_user: true,
    };
    assert_eq!(
        discovered_partner_limit(&off, &d, Some("carol"), counts, &t),
        None
    );
}

#[test]
fn always_unverifiable_reaches_only_users_with_the_sender_as_a_contact() {
    let p = Policy {
        discovered: DiscoveredPartnerLimits {
            verification_level: VerificationLevel::AlwaysUnverifiable,
            ..policy().discovered
        },
        verification_levels: vec![("contoso.lab".into(), VerificationLevel::AlwaysUnverifiable)],
        ..policy()
    };
    let d: DomainName = "acano.steven.lab".into();
    let t = trust(&p, "acano.steven.lab", "vcse.acano.steven.lab");
    let contacts = vec!["sip:2000@ACANO.steven.lab".to_owned()];
    assert_eq!(
        unverified_delivery(&p, &t, &d, "2000@acano.steven.lab", "stejanss", &contacts),
        None
    );
    let f = unverified_delivery(
        &p,
        &t,
        &d,
        "sip:3000@acano.steven.lab",
        "stejanss",
        &contacts,
    )
    .unwrap();
    assert_eq!(f.sip(), Some((403, "Forbidden")));
    assert_eq!(f.ms_diagnostic("sip.skype.lab"), None);
    assert_eq!(f.verdict_kind(), VerdictKind::Reject);
    let record = f.log_record(&req()).unwrap();
    assert_eq!(
        record.result_code.render(),
        "0xc3e93e09 SIPPROXY_E_ROUTING_MSG_UNVERIFIED_SENDER"
    );
    assert_eq!(
        record.render_data(),
        r#"domain="acano.steven.lab";sender="3000@acano.steven.lab";user="stejanss";VerificationLevel="AlwaysUnverifiable";msEdgeProxyMessageTrust="ms-source-type=AutoFederation;ms-ep-fqdn=sip.skype.lab;ms-source-verified-user=unverified;ms-source-network=federation;ms-remote-fqdn=vcse.acano.steven.lab""#
    );
    assert_eq!(
        f.explain().to_string(),
        "Messages from acano.steven.lab are unverified (AlwaysUnverifiable, access_edge.discovered_partner_verification_level): the Edge delivers them only to users who have the sender in their contacts, and stejanss does not list 3000@acano.steven.lab; the Edge answered 403 Forbidden. Fix: add \"3000@acano.steven.lab\" to the contacts of stejanss ([[users]] contacts = [\"3000@acano.steven.lab\"]), or set access_edge.discovered_partner_verification_level to UseSourceVerification or AlwaysVerifiable."
    );
    let allowed = trust(&p, "contoso.lab", "sip.contoso.lab");
    let f = unverified_delivery(
        &p,
        &allowed,
        &"contoso.lab".into(),
        "bob@contoso.lab",
        "stejanss",
        &[],
    )
    .unwrap();
    assert!(
        f.explain().to_string().starts_with(
            "Messages from contoso.lab are unverified (AlwaysUnverifiable, the VerificationLevel of the allowed domain contoso.lab):"
        ),
        "{}",
        f.explain()
    );
    // Verified levels deliver to everyone.
    let verified = trust(&policy(), "acano.steven.lab", "vcse.acano.steven.lab");
    assert_eq!(
        unverified_delivery(
            &policy(),
            &verified,
            &d,
            "3000@acano.steven.lab",
            "stejanss",
            &[]
        ),
        None
    );
}
