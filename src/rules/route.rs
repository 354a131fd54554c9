//! The partner policy (which domains may federate, and how they are found) and the destination rule (which
//! hosts the Edge answers for).
//!
//! Destination (no Microsoft source): the Edge answers for its SIP domain (`edge.domain`), its own FQDN
//! (`edge.fqdn`, where its Contact sends in-dialog requests) and the address the request arrived on. Anything
//! else (`sip:x@evil.lab`, a `tel:` URI) is `404 Not Found` (RFC 3261 §8.2.2.1: "not an address the UAS is
//! willing to accept requests for") with `1005;reason="Cannot route to destination domain"` and record
//! 0xc3e93e11. The check follows the federation rules, so an unauthenticated peer learns nothing about the
//! Edge's domains.

use std::net::IpAddr;

use super::{DomainName, Finding, Policy};

/// How a domain is routed by the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// AllowFederatedUsers is False: no domain federates.
    FederationOff,
    /// On the blocked list.
    Blocked,
    /// Allowed Partner Server: skip SRV, use this FQDN.
    FixedFqdn(DomainName),
    /// Look up the federation SRV.
    Discover,
    /// Not allowed and discovery is off.
    NotAllowed,
}

impl Route {
    /// How the policy routes a domain, in words.
    pub fn describe(&self) -> String {
        match self {
            Route::FederationOff => "refused: federation is off (AllowFederatedUsers False)".into(),
            Route::Blocked => "on the blocked domain list".into(),
            Route::FixedFqdn(f) => format!("an allowed partner with the fixed Edge {f}"),
            Route::Discover => "partner discovery (DNS SRV)".into(),
            Route::NotAllowed => "not an allowed domain, and partner discovery is off".into(),
        }
    }

    /// The refusal of a blocked or not-allowed route (either direction), `None` for the others.
    pub fn refusal(&self, domain: &DomainName) -> Option<Finding> {
        let domain = domain.clone();
        match self {
            Route::FederationOff => Some(Finding::FederationOff { domain }),
            Route::Blocked => Some(Finding::DomainBlocked { domain }),
            Route::NotAllowed => Some(Finding::DomainNotAllowed { domain }),
            Route::FixedFqdn(_) | Route::Discover => None,
        }
    }
}

impl Policy {
    /// How a domain is routed: federation off, blocked, fixed partner FQDN, SRV discovery, or not allowed.
    pub fn route(&self, domain: &DomainName) -> Route {
        if !self.federation_enabled {
            return Route::FederationOff;
        }
        if self.blocked.contains(domain) {
            return Route::Blocked;
        }
        match self.allowed.iter().find(|(a, _)| a == domain) {
            Some((_, Some(fqdn))) => Route::FixedFqdn(fqdn.clone()),
            Some((_, None)) => Route::Discover,
            None if self.partner_discovery => Route::Discover,
            None => Route::NotAllowed,
        }
    }

    /// Whether a Request-URI host is one this Edge answers for: its SIP domain, its FQDN, or `local_ip`.
    pub fn serves_host(&self, host: &str, local_ip: Option<IpAddr>) -> bool {
        let h = super::domain::bare(host.trim_start_matches('[').trim_end_matches(']'));
        if h.is_empty() {
            return false;
        }
        if self.edge_domain.is(h) || self.edge_host.is(h) {
            return true;
        }
        match (h.parse::<IpAddr>(), local_ip) {
            (Ok(ip), Some(local)) => ip == local,
            _ => false,
        }
    }

    /// The destination rule: `None` when the Request-URI is for this Edge, else the 404 / 1005 refusal.
    pub fn destination(
        &self,
        request_uri: &str,
        request_host: &str,
        local_ip: Option<IpAddr>,
    ) -> Option<Finding> {
        if self.serves_host(request_host, local_ip) {
            return None;
        }
        Some(Finding::ForeignRequestUri {
            uri: request_uri.to_owned(),
            host: DomainName::new(request_host),
            edge_domain: self.edge_domain.clone(),
            edge_fqdn: self.edge_host.clone(),
        })
    }
}
