//! The rulebook: every federation rule as a pure function, and every outcome as a typed [`Finding`].
//!
//! Callers (the inbound Edge, `call`, `check`, `certs inspect`, the scenario expectations) gather facts, ask these
//! functions, and render the findings they get back; none of them judges a rule or writes a code, reason, HRESULT
//! or explanation itself. What a user reads about an outcome — SIP status and reason, ms-diagnostics, the Edge log
//! record, the exit-code class of `call`, the explanation with its fix, a `check` line, a `certs inspect` line — is
//! a method of [`Finding`], defined once (`finding/`). No sockets, no clocks: lookup answers and the time are
//! passed in.
//!
//! The rules, one file each:
//! - [`domain`]: names compared as [`DomainName`]s, normalised once;
//! - [`sender`]: the sender domain (P-Asserted-Identity, else From);
//! - [`route`]: the partner policy (blocked / allowed with a fixed Edge / discovery / not allowed), and which
//!   hosts the Edge answers for (the destination);
//! - [`srv`]: the SRV preference order, Rule 1, and SRV records whose target is `.`;
//! - [`names`]: Rule 2's name match (SAN, CN without SAN, wildcards);
//! - [`cert`]: the certificate's EKUs, validity (against a clock passed in) and chain, all of it at once in
//!   [`judge_certificate`];
//! - [`handshake`]: refusals at the TLS handshake (client certificate, TLS versions);
//! - [`partners`]: once the rules pass, the partner's type, the `ms-edge-proxy-message-trust` it gets, the
//!   discovered-partner limits and the verification levels;
//! - [`users`]: what the Edge checks as the proxy in front of its users (hops, extensions, unknown users,
//!   limits);
//! - [`inbound`] and [`outbound`]: the two directions' rules in the Edge's order.
//!
//! Choices where no source exists (FEDERATION.md "Open questions"):
//! - blocked sender domain, or not allowed with discovery off: `403 Forbidden`, ms-diagnostics 1002, synthetic
//!   log record (0xc3e93e02 / 0xc3e93e03);
//! - federation off (AllowFederatedUsers False): `403 Forbidden`, 1002, synthetic record 0xc3e93e06;
//! - the discovered-partner rate and contacts limit and the verification levels: [`partners`] (503 / 403,
//!   synthetic records 0xc3e93e07, 0xc3e93e08, 0xc3e93e09);
//! - no SRV (any failure kind): `504 Server time-out`, ms-diagnostics 1008, synthetic record 0xc3e93e01 with a
//!   `reason` Data key naming the failure kind;
//! - an SRV answer whose only targets are `.` (RFC 2782: "service decidedly not available"): no usable SRV,
//!   both directions, exactly like no SRV at all (504 + 1008, record 0xc3e93e01 with
//!   `reason="DECIDEDLY_NOT_AVAILABLE"`); a `.` record next to real ones is ignored (Rule 1 sees the others);
//! - Rule 1 failure: 504 + 1009 (as the Edge shows outbound) + the seed's 0xc3e93d6f record;
//! - Rule 2 failure: 504 + 1010 with `PeerServer` and `SEC_E_WRONG_PRINCIPAL` + the seed's 0xc3e93d67 record;
//! - clientAuth EKU missing: checked here, first, after the handshake (not in the TLS verifier) so the lab gets
//!   a 504 that explains the EKU sunset instead of a bare reset: 1010 with `SEC_E_CERT_WRONG_USAGE` + synthetic
//!   record 0xc3e93e05. The handshake verifier should therefore not enforce clientAuth itself;
//! - no peer certificate, either direction: 1010 with `SEC_E_NO_CREDENTIALS` ("no credentials": nothing was
//!   presented to check) and `PeerServer=""`; inbound (`tls.client_cert` optional or none) with the synthetic
//!   record 0xc3e93e10. `SEC_E_CERT_UNKNOWN` is for a certificate that was presented and could not be used;
//! - a Request-URI outside the Edge's domain and FQDN, after the federation rules passed: `404 Not Found` with
//!   1005 + synthetic record 0xc3e93e11 (`inbound`): the Edge does not relay between federated domains;
//! - a peer that offers only TLS versions the Edge does not accept: the handshake fails, synthetic record
//!   0xc3e93e12 (`handshake`).
//!
//! The diagnostic of a refusal is what the Edge would show internally; leaving it out toward the peer in
//! `faithful` mode is the listener's job.

use crate::config::federation::DiscoveredPartnerLimits;
use crate::config::{
    ClientCertMode, EdgeConfig, FederationSettings, Identity, PolicyConfig, VerificationLevel,
};

pub mod cert;
pub mod domain;
mod finding;
pub mod handshake;
pub mod inbound;
pub mod names;
pub mod outbound;
pub mod partners;
pub mod route;
pub mod sender;
pub mod srv;
pub mod users;
mod verdict;

pub use cert::{CertJudgement, Role, eku_allows, judge_certificate};
pub use domain::DomainName;
pub use finding::{
    CmdletOutcome, Explanation, Finding, Inspected, OutcomeClass, PeerAnswer, RequestLine,
    TlsProbe, ValidityState, chain_phrase, chain_words, datetime, tls_version,
};
pub use handshake::{
    OfferedTls, client_chain, handshake_rejection, tls_version_name, tls_version_refusal,
    tls_version_rejection,
};
pub use inbound::{InboundFacts, Pending, Step, decide_inbound};
pub use names::{NameMatch, names_match};
pub use outbound::{ConnectFailure, OutboundPlan};
pub use partners::{MessageTrust, PartnerCounts, PartnerType};
pub use route::Route;
pub use sender::sender_domain;
pub use srv::{
    NoSrv, Outside, Rule1Failure, SrvDecision, preference_order, rule1_in_domain, rule1_pick,
    srv_decidedly_unavailable, srv_decision,
};
pub use verdict::{Decision, Verdict};

/// Which way a federated request goes through the Edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A federated peer (the Expressway-E) sends a request to the Edge.
    Inbound,
    /// The Edge calls a federated peer for an internal Skype user.
    Outbound,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        })
    }
}

/// The federation policy of one Edge: its identity and its `[policy]` switches, names normalised once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The Edge's SIP domain.
    pub edge_domain: DomainName,
    /// The Edge's FQDN, `source=` of diagnostics (as configured).
    pub edge_fqdn: String,
    /// The Edge's FQDN as a name (its own host: in-dialog requests are sent to it).
    pub edge_host: DomainName,
    /// Blocked domains.
    pub blocked: Vec<DomainName>,
    /// Allowed domains with an optional fixed partner Edge FQDN.
    pub allowed: Vec<(DomainName, Option<DomainName>)>,
    /// Discover partners not on the allowed list.
    pub partner_discovery: bool,
    /// Accept an SRV target equal to the domain.
    pub accept_apex_target: bool,
    /// Accept a wildcard SAN match.
    pub allow_wildcard: bool,
    /// Require clientAuth on inbound peer certificates that carry an EKU extension.
    pub require_client_auth_eku: bool,
    /// Send bare responses to the peer (read by the listener).
    pub faithful: bool,
    /// The DNS server the Edge asks, as explanations name it (e.g. `127.0.0.1:5353`); empty until
    /// [`Policy::with_dns_server`] sets it.
    pub dns_server: String,
    /// Whether the Edge asks for a client certificate (explanations name the setting).
    pub client_cert: ClientCertMode,
    /// AllowFederatedUsers: false refuses every federated domain ([`Finding::FederationOff`]).
    pub federation_enabled: bool,
    /// The verification level of each allowed domain (VerificationLevel of its `[[allowed_domains]]` entry).
    pub verification_levels: Vec<(DomainName, VerificationLevel)>,
    /// The limits and verification level of discovered partners (`[access_edge]`).
    pub discovered: DiscoveredPartnerLimits,
    /// Enforce the discovered-partner limits: true once the Access Edge settings are the customer's (an
    /// `[access_edge]` table or a pasted Get-CsAccessEdgeConfiguration); edgesim's lab defaults federate with
    /// anyone at any rate (the watch list still counts).
    pub enforce_partner_limits: bool,
}

impl Policy {
    /// Builds the policy from the Edge identity and policy section.
    pub fn new(edge: &Identity, cfg: &PolicyConfig, faithful: bool) -> Self {
        Policy {
            edge_domain: DomainName::new(&edge.domain),
            edge_fqdn: edge.fqdn.clone(),
            edge_host: DomainName::new(&edge.fqdn),
            blocked: cfg.blocked_domains.iter().map(DomainName::from).collect(),
            allowed: cfg
                .allowed_domains
                .iter()
                .map(|a| {
                    (
                        DomainName::new(&a.domain),
                        a.proxy_fqdn.as_deref().map(DomainName::new),
                    )
                })
                .collect(),
            partner_discovery: cfg.partner_discovery,
            accept_apex_target: cfg.accept_apex_target,
            allow_wildcard: cfg.allow_wildcard,
            require_client_auth_eku: cfg.require_client_auth_eku,
            faithful,
            dns_server: String::new(),
            client_cert: ClientCertMode::Required,
            federation_enabled: true,
            verification_levels: Vec::new(),
            discovered: FederationSettings::default().discovered_partner_limits(),
            enforce_partner_limits: false,
        }
    }

    /// Names the DNS server the Edge asks in explanations of DNS failures (`Lookup::server`).
    pub fn with_dns_server(mut self, server: impl Into<String>) -> Self {
        self.dns_server = server.into();
        self
    }

    /// Builds the policy from a whole configuration: `[policy]` (which the federation settings were written
    /// into when the file loaded) and the federation settings in force (AllowFederatedUsers, verification
    /// levels, discovered-partner limits).
    pub fn from_config(cfg: &EdgeConfig) -> Self {
        let fed = &cfg.federation;
        Policy {
            client_cert: cfg.tls.client_cert,
            federation_enabled: fed.federation_enabled(),
            verification_levels: fed
                .allowed
                .iter()
                .map(|a| (DomainName::new(&a.domain), a.verification_level))
                .collect(),
            discovered: fed.discovered_partner_limits(),
            enforce_partner_limits: fed.origin != crate::config::federation::Source::LabDefaults,
            ..Self::new(&cfg.edge, &cfg.policy, cfg.faithful)
        }
    }
}

#[cfg(test)]
mod tests;
