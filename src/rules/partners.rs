//! What the Edge does with a partner once the federation rules let it in: its type, the
//! `ms-edge-proxy-message-trust` value stamped on what it passes inward, the discovered-partner safeguards
//! (DiscoveredPartnerStandardRate, MaxContactsPerDiscoveredPartner) and the verification levels. Pure: the
//! counts come in as facts ([`PartnerCounts`], kept per Edge by `edge::partners` with the clock it is given).
//!
//! Sources and choices (FEDERATION.md, notes `edge-behaviour.md` §3.2–3.3 and `edge-realism.md`):
//! - Partner type (MSPL `ExternalSourceType` (sourced)): an allowed domain with a ProxyFqdn is a `DirectPartner`; an
//!   allowed domain without one, and a partner found by DNS SRV, are `AutoFederation`. Only the last is a
//!   *discovered* partner, the one the limits apply to.
//! - `ms-edge-proxy-message-trust` (MS-SIPRE §2.2.15 (sourced)): `ms-source-type=…;ms-ep-fqdn=<Edge FQDN>;
//!   ms-source-verified-user=verified|unverified;ms-source-network=federation;ms-remote-fqdn=<the FQDN the peer
//!   certificate named>`. The order of the parameters is edgesim's (the ABNF does not fix one). It goes in the
//!   event and the record, never to the peer.
//! - Verification (New-CsAllowedDomain (sourced)): AlwaysVerifiable → `verified`; AlwaysUnverifiable → `unverified`,
//!   delivered only to users who have the sender in their contacts (`contacts` of a `[[users]]` entry); UseSourceVerification
//!   → `verified` (inferred): the peer passed mutual TLS and both rules, and edgesim reads no verification mark from a
//!   peer (an Expressway-E sends none).
//! - The rate (inferred): Microsoft documents "20 messages per second" and nothing about how they are counted or what
//!   the peer sees past them. edgesim counts every request of a discovered partner, over all its connections,
//!   in one-second windows, except ACK (never answered), BYE and CANCEL (refusing them would leave calls the
//!   peer cannot end). Past the rate: `503 Service Unavailable` with `Retry-After: 1` (RFC 3261 §21.5.4: an
//!   overloaded server asks the client to come back), no ms-diagnostics (none is documented), synthetic record
//!   0xc3e93e07 naming the partner, the messages counted in that second and the rate; verdict `limit`.
//! - The contacts limit (inferred): the distinct users (Request-URI user parts) a discovered partner reaches in a
//!   report period (DiscoveredPartnerReportPeriodMinutes). A request for a user it already reached goes on; one
//!   for a new user past MaxContactsPerDiscoveredPartner is `403 Forbidden` (retrying does not help within the
//!   period), synthetic record 0xc3e93e08; verdict `limit`. EnableDiscoveredPartnerContactsLimit False turns it
//!   off.
//! - Both limits are enforced once the Access Edge settings are the customer's (`[access_edge]`, or a pasted
//!   Get-CsAccessEdgeConfiguration: `Policy::enforce_partner_limits`); edgesim's lab defaults federate with
//!   anyone at any rate, as before (load runs against a lab Edge are discovered partners), and only count.
//! - An unverified message for a user without the sender in their contacts (inferred): `403 Forbidden`, synthetic
//!   record 0xc3e93e09; no ms-diagnostics.

use super::{DomainName, Finding, Policy, Route};
use crate::config::VerificationLevel;
use crate::config::federation::DiscoveredPartnerLimits;

/// What kind of federated partner a domain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartnerType {
    /// Not on the allowed list, found by DNS SRV (partner discovery): the limits apply.
    Discovered,
    /// On the allowed list without a ProxyFqdn (Allowed Partner Domain, DNS SRV).
    AllowedDomain,
    /// On the allowed list with a ProxyFqdn (Allowed Partner Server, no SRV).
    AllowedServer,
}

impl PartnerType {
    /// `discovered`, `allowed-domain`, `allowed-server` (events, watch list).
    pub fn name(self) -> &'static str {
        match self {
            PartnerType::Discovered => "discovered",
            PartnerType::AllowedDomain => "allowed-domain",
            PartnerType::AllowedServer => "allowed-server",
        }
    }

    /// The `ms-source-type` of its messages.
    pub fn source_type(self) -> &'static str {
        match self {
            PartnerType::AllowedServer => "DirectPartner",
            PartnerType::Discovered | PartnerType::AllowedDomain => "AutoFederation",
        }
    }
}

/// The `ms-edge-proxy-message-trust` the Edge stamps on a partner's request it passes inward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTrust {
    /// The partner's type.
    pub partner: PartnerType,
    /// The Edge's FQDN (`ms-ep-fqdn`).
    pub edge_fqdn: String,
    /// `ms-source-verified-user`.
    pub verified: bool,
    /// The FQDN the peer certificate named (`ms-remote-fqdn`).
    pub remote_fqdn: String,
}

impl MessageTrust {
    /// The header value.
    pub fn render(&self) -> String {
        format!(
            "ms-source-type={};ms-ep-fqdn={};ms-source-verified-user={};ms-source-network=federation;ms-remote-fqdn={}",
            self.partner.source_type(),
            self.edge_fqdn,
            if self.verified {
                "verified"
            } else {
                "unverified"
            },
            self.remote_fqdn
        )
    }
}

/// What the Edge has counted for a discovered partner, up to and including the request being decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartnerCounts {
    /// Counted requests in the current one-second window, this one included.
    pub in_second: u32,
    /// Distinct users reached in the current report period, before this request.
    pub distinct_users: u32,
    /// This request names a user the partner has not reached in this period.
    pub new_user: bool,
}

/// Whether a request counts toward DiscoveredPartnerStandardRate (see the module documentation).
pub fn counts_toward_partner_rate(method: &str) -> bool {
    !matches!(method, "ACK" | "BYE" | "CANCEL")
}

impl Policy {
    /// The partner type of a domain the federation rules let in (`None` for a refused route).
    pub fn partner_type(&self, domain: &DomainName) -> Option<PartnerType> {
        match self.route(domain) {
            Route::FixedFqdn(_) => Some(PartnerType::AllowedServer),
            Route::Discover if self.allowed.iter().any(|(a, _)| a == domain) => {
                Some(PartnerType::AllowedDomain)
            }
            Route::Discover => Some(PartnerType::Discovered),
            Route::FederationOff | Route::Blocked | Route::NotAllowed => None,
        }
    }

    /// The verification level of messages from `domain`: its allowed entry's, else the discovered partners'.
    pub fn verification_level(&self, domain: &DomainName) -> VerificationLevel {
        self.verification_levels
            .iter()
            .find(|(d, _)| d == domain)
            .map_or(self.discovered.verification_level, |(_, l)| *l)
    }

    /// The trust the Edge stamps on a request from `domain` whose certificate named `target`.
    pub fn message_trust(&self, domain: &DomainName, target: &DomainName) -> Option<MessageTrust> {
        let partner = self.partner_type(domain)?;
        let verified = match self.verification_level(domain) {
            VerificationLevel::AlwaysVerifiable | VerificationLevel::UseSourceVerification => true,
            VerificationLevel::AlwaysUnverifiable => false,
        };
        Some(MessageTrust {
            partner,
            edge_fqdn: self.edge_fqdn.clone(),
            verified,
            remote_fqdn: target.to_string(),
        })
    }
}

/// The discovered-partner safeguards for one request of `domain` to `user` (its Request-URI user part, if
/// any): the rate first (every counted message), then the contacts limit (a new user only).
pub fn discovered_partner_limit(
    limits: &DiscoveredPartnerLimits,
    domain: &DomainName,
    user: Option<&str>,
    counts: PartnerCounts,
    trust: &MessageTrust,
) -> Option<Finding> {
    if counts.in_second > limits.rate_per_sec {
        return Some(Finding::PartnerThrottled {
            domain: domain.clone(),
            sent: counts.in_second,
            rate: limits.rate_per_sec,
            trust: trust.render(),
        });
    }
    match (limits.max_contacts, user) {
        (Some(max), Some(user)) if counts.new_user && counts.distinct_users >= max => {
            Some(Finding::PartnerContactsLimit {
                domain: domain.clone(),
                user: user.to_owned(),
                max,
                period_minutes: u32::try_from(limits.report_period_secs / 60).unwrap_or(u32::MAX),
                trust: trust.render(),
            })
        }
        _ => None,
    }
}

/// A `sip:user@host` address without its scheme, lower-case: how contacts compare.
fn address(uri: &str) -> String {
    let u = uri.trim();
    let u = u
        .strip_prefix("sips:")
        .or_else(|| u.strip_prefix("sip:"))
        .unwrap_or(u);
    u.trim_end_matches('.').to_ascii_lowercase()
}

/// The verification level's delivery rule: an unverified message reaches `user` only when `contacts` (the
/// user's `[[users]] contacts`) lists `sender` (`user@host` of the sender's identity, scheme optional).
pub fn unverified_delivery(
    policy: &Policy,
    trust: &MessageTrust,
    domain: &DomainName,
    sender: &str,
    user: &str,
    contacts: &[String],
) -> Option<Finding> {
    if trust.verified {
        return None;
    }
    let sender = address(sender);
    if contacts.iter().any(|c| address(c) == sender) {
        return None;
    }
    Some(Finding::UnverifiedSender {
        domain: domain.clone(),
        sender,
        user: user.to_owned(),
        partner: trust.partner,
        level: policy.verification_level(domain),
        trust: trust.render(),
    })
}

#[cfg(test)]
mod tests;
