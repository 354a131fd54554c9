//! The federation settings in force, one line each, as `serve` prints them at start.

use std::path::Path;

use super::FederationSettings;
use super::resolve::report_origin;

/// The lines: where the settings come from, federation and discovery, the discovered-partner limits (when
/// discovery is on), each allowed and blocked domain, and the outbound settings.
pub(super) fn lines(f: &FederationSettings, config: Option<&Path>) -> Vec<String> {
    let a = &f.access_edge;
    let tf = |b: bool| if b { "True" } else { "False" };
    let mut out = vec![format!(
        "federation settings: {}",
        report_origin(&f.origin, config)
    )];
    out.push(if f.federation_enabled() {
        "federation: on (AllowFederatedUsers True)".to_owned()
    } else {
        "federation: off (AllowFederatedUsers False): every federated domain is refused with 403 and ms-diagnostics 1002, allowed domains included".to_owned()
    });
    out.push(match (f.federation_enabled(), a.enable_partner_discovery) {
        (true, true) => format!(
            "partner discovery: on (EnablePartnerDiscovery True, RoutingMethod {}): a domain neither allowed nor blocked federates once its _sipfederationtls._tcp SRV record checks out",
            a.routing_method.name()
        ),
        (true, false) => "partner discovery: off (EnablePartnerDiscovery False): only the allowed domains federate; any other domain gets 403 with ms-diagnostics 1002".to_owned(),
        (false, d) => format!(
            "partner discovery: EnablePartnerDiscovery {} has no effect while federation is off",
            tf(d)
        ),
    });
    if f.partner_discovery() {
        let contacts = if a.enable_discovered_partner_contacts_limit {
            format!(
                "MaxContactsPerDiscoveredPartner {} per {} minutes (EnableDiscoveredPartnerContactsLimit True)",
                a.max_contacts_per_discovered_partner, a.discovered_partner_report_period_minutes
            )
        } else {
            "no contact limit (EnableDiscoveredPartnerContactsLimit False)".to_owned()
        };
        let enforced = if f.origin == super::Source::LabDefaults {
            "counted for the watch list, not enforced (edgesim's lab defaults: an [access_edge] or a pasted Get-CsAccessEdgeConfiguration enforces them)"
        } else {
            "enforced: 503 past the rate, 403 for a new user past the contacts limit"
        };
        out.push(format!(
            "discovered partners: DiscoveredPartnerVerificationLevel {}, DiscoveredPartnerStandardRate {} messages/s, {contacts} — {enforced}",
            a.discovered_partner_verification_level, a.discovered_partner_standard_rate
        ));
    }
    if f.allowed.is_empty() {
        out.push("allowed domains: none".to_owned());
    }
    for d in &f.allowed {
        let route = match &d.proxy_fqdn {
            Some(p) => format!("ProxyFqdn {p} (no SRV lookup; the peer certificate must name it)"),
            None => "DNS SRV".to_owned(),
        };
        out.push(format!(
            "allowed domain {}: {route}, VerificationLevel {} ({})",
            d.domain, d.verification_level, d.source
        ));
    }
    if f.blocked.is_empty() {
        out.push("blocked domains: none".to_owned());
    }
    for d in &f.blocked {
        out.push(format!("blocked domain {} ({})", d.domain, d.source));
    }
    out.push(format!(
        "outbound: MarkSourceVerifiableOnOutgoingMessages {}, OutgoingTlsCountForFederatedPartners {} — recorded, not enforced yet; KeepCrlsUpToDateForPeers {}: edgesim checks no CRLs",
        tf(a.mark_source_verifiable_on_outgoing_messages),
        a.outgoing_tls_count_for_federated_partners,
        tf(a.keep_crls_up_to_date_for_peers)
    ));
    out
}
