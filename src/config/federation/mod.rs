//! The federation settings as Skype for Business names them, and what they resolve to.
//!
//! - `[access_edge]`: `Set-CsAccessEdgeConfiguration`'s settings ([`AccessEdgeConfig`]); keys in snake_case
//!   (`allow_federated_users`) or as the cmdlet spells them (`AllowFederatedUsers`), values as the cmdlet prints
//!   them (`"UseSourceVerification"`).
//! - `[[allowed_domains]]` (`New-CsAllowedDomain`: Identity/Domain, ProxyFqdn, VerificationLevel,
//!   MarkForMonitoring, Comment) and `[[blocked_domains]]` (`New-CsBlockedDomain`: Identity/Domain, Comment).
//! - `serve --sfb-config FILE`: the same settings read from the cmdlets' `Format-List` output ([`super::sfb`]).
//!
//! Defaults, precisely:
//! - **No `[access_edge]` table and no pasted `Get-CsAccessEdgeConfiguration`**: edgesim's lab defaults,
//!   AllowFederatedUsers True and EnablePartnerDiscovery = `policy.partner_discovery` (default true), every
//!   other setting Microsoft's default. A real Edge ships with AllowFederatedUsers False and
//!   EnablePartnerDiscovery False; edgesim's lab default is True so that an empty file federates.
//! - **`[access_edge]` present (even empty), or a pasted `Get-CsAccessEdgeConfiguration`**: every setting it
//!   leaves out takes Microsoft's default, AllowFederatedUsers False (federation off) included.
//!
//! Older `[policy]` keys are aliases: `policy.blocked_domains` of `[[blocked_domains]]`, `policy.allowed_domains`
//! of `[[allowed_domains]]`, `policy.partner_discovery` of `access_edge.enable_partner_discovery`; a file that
//! sets both spellings is refused with a message naming both. edgesim's own switches (`accept_apex_target`,
//! `allow_wildcard`, `require_client_auth_eku`) stay in `[policy]`.
//!
//! [`FederationSettings`] is the result, computed when the configuration loads (`EdgeConfig::federation`), and
//! [`FederationSettings::apply_to`] writes the part today's `Policy` reads into `EdgeConfig::policy`, so an
//! old file gives exactly the policy it gave before.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{AllowedDomain, PolicyConfig};

mod report;
mod resolve;
pub use resolve::Pasted;
pub(crate) use resolve::{allowed_entry, blocked_entry, resolve};

/// How messages from a partner are verified (`VerificationLevelType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum VerificationLevel {
    /// Every message is accepted as verified; the Edge adds the verification header if it is missing.
    AlwaysVerifiable,
    /// Every message is unverified: delivered only to users who have the sender in their contacts.
    AlwaysUnverifiable,
    /// The partner's own verification header decides (Microsoft's default for allowed domains).
    #[default]
    UseSourceVerification,
}

impl VerificationLevel {
    /// Every level, as the cmdlets spell them.
    pub const ALL: [VerificationLevel; 3] = [
        VerificationLevel::AlwaysVerifiable,
        VerificationLevel::AlwaysUnverifiable,
        VerificationLevel::UseSourceVerification,
    ];

    /// The cmdlet's name of the level.
    pub fn name(self) -> &'static str {
        match self {
            VerificationLevel::AlwaysVerifiable => "AlwaysVerifiable",
            VerificationLevel::AlwaysUnverifiable => "AlwaysUnverifiable",
            VerificationLevel::UseSourceVerification => "UseSourceVerification",
        }
    }
}

impl fmt::Display for VerificationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the Edge finds federated partners (`RoutingMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RoutingMethod {
    /// DNS SRV records (`-UseDnsSrvRouting`, Microsoft's default): the only method edgesim emulates.
    #[default]
    UseDnsSrvRouting,
    /// Every federation request through one `DefaultRouteFqdn` (`-UseDefaultRouting`): refused by validation.
    UseDefaultRouting,
}

impl RoutingMethod {
    /// The cmdlet's name of the method.
    pub fn name(self) -> &'static str {
        match self {
            RoutingMethod::UseDnsSrvRouting => "UseDnsSrvRouting",
            RoutingMethod::UseDefaultRouting => "UseDefaultRouting",
        }
    }
}

/// `[access_edge]`: the global Access Edge configuration (`Get-CsAccessEdgeConfiguration`), with Microsoft's
/// defaults (`Set-CsAccessEdgeConfiguration` reference). The fields are in the order `Format-List` prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessEdgeConfig {
    /// Always `Global`: there is one Access Edge configuration.
    #[serde(alias = "Identity")]
    pub identity: String,
    /// Anonymous users may join meetings through the Edge (False; not emulated).
    #[serde(alias = "AllowAnonymousUsers")]
    pub allow_anonymous_users: bool,
    /// Internal users may communicate with federated domains (False: federation off).
    #[serde(alias = "AllowFederatedUsers")]
    pub allow_federated_users: bool,
    /// Remote users may sign in through the Edge (True; not emulated).
    #[serde(alias = "AllowOutsideUsers")]
    pub allow_outside_users: bool,
    /// The Edge is directly connected to other organisations (False; not emulated).
    #[serde(alias = "BeClearingHouse")]
    pub be_clearing_house: bool,
    /// Discover partners not on the allowed list through DNS SRV (False: only allowed domains federate).
    #[serde(alias = "EnablePartnerDiscovery")]
    pub enable_partner_discovery: bool,
    /// Verification level of discovered partners (UseSourceVerification).
    #[serde(alias = "DiscoveredPartnerVerificationLevel")]
    pub discovered_partner_verification_level: VerificationLevel,
    /// Send an archiving disclaimer to federated partners (False; not emulated).
    #[serde(alias = "EnableArchivingDisclaimer")]
    pub enable_archiving_disclaimer: bool,
    /// (False; not emulated.)
    #[serde(alias = "EnableUserReplicator")]
    pub enable_user_replicator: bool,
    /// Check the CRLs of federated partners' certificates (True; edgesim checks no CRLs).
    #[serde(alias = "KeepCrlsUpToDateForPeers")]
    pub keep_crls_up_to_date_for_peers: bool,
    /// Mark outgoing messages as verifiable (True).
    #[serde(alias = "MarkSourceVerifiableOnOutgoingMessages")]
    pub mark_source_verifiable_on_outgoing_messages: bool,
    /// TLS connections per federated partner, 1 to 4 (4).
    #[serde(alias = "OutgoingTlsCountForFederatedPartners")]
    pub outgoing_tls_count_for_federated_partners: u32,
    /// Size of the SRV cache (SfB 2015+; 131072 as Microsoft's own diagnostics show it; not emulated).
    #[serde(alias = "DnsSrvCacheRecordCount")]
    pub dns_srv_cache_record_count: u32,
    /// Messages per second a discovered partner may send (20).
    #[serde(alias = "DiscoveredPartnerStandardRate")]
    pub discovered_partner_standard_rate: u32,
    /// Limit the distinct users a discovered partner reaches (True).
    #[serde(alias = "EnableDiscoveredPartnerContactsLimit")]
    pub enable_discovered_partner_contacts_limit: bool,
    /// Distinct users a discovered partner may reach per report period (1000).
    #[serde(alias = "MaxContactsPerDiscoveredPartner")]
    pub max_contacts_per_discovered_partner: u32,
    /// The period the contact limit counts over, minutes (60).
    #[serde(alias = "DiscoveredPartnerReportPeriodMinutes")]
    pub discovered_partner_report_period_minutes: u32,
    /// Watch discovered partners' response ratio (False; not in Microsoft's cmdlet reference).
    #[serde(alias = "EnableDiscoveredPartnerResponseMonitor")]
    pub enable_discovered_partner_response_monitor: bool,
    /// Accepted peer certificates cached (1000; not emulated).
    #[serde(alias = "MaxAcceptedCertificatesStored")]
    pub max_accepted_certificates_stored: u32,
    /// Rejected peer certificates cached (500; not emulated).
    #[serde(alias = "MaxRejectedCertificatesStored")]
    pub max_rejected_certificates_stored: u32,
    /// Share of the certificate caches deleted when full, percent (20; not emulated).
    #[serde(alias = "CertificatesDeletedPercentage")]
    pub certificates_deleted_percentage: u32,
    /// The Skype directory search URL (SfB 2015+; not emulated).
    #[serde(alias = "SkypeSearchUrl")]
    pub skype_search_url: Option<String>,
    /// How partners are found (UseDnsSrvRouting).
    #[serde(alias = "RoutingMethod")]
    pub routing_method: RoutingMethod,
}

impl Default for AccessEdgeConfig {
    /// Microsoft's defaults: federation off.
    fn default() -> Self {
        AccessEdgeConfig {
            identity: "Global".into(),
            allow_anonymous_users: false,
            allow_federated_users: false,
            allow_outside_users: true,
            be_clearing_house: false,
            enable_partner_discovery: false,
            discovered_partner_verification_level: VerificationLevel::UseSourceVerification,
            enable_archiving_disclaimer: false,
            enable_user_replicator: false,
            keep_crls_up_to_date_for_peers: true,
            mark_source_verifiable_on_outgoing_messages: true,
            outgoing_tls_count_for_federated_partners: 4,
            dns_srv_cache_record_count: 131_072,
            discovered_partner_standard_rate: 20,
            enable_discovered_partner_contacts_limit: true,
            max_contacts_per_discovered_partner: 1000,
            discovered_partner_report_period_minutes: 60,
            enable_discovered_partner_response_monitor: false,
            max_accepted_certificates_stored: 1000,
            max_rejected_certificates_stored: 500,
            certificates_deleted_percentage: 20,
            skype_search_url: None,
            routing_method: RoutingMethod::UseDnsSrvRouting,
        }
    }
}

impl AccessEdgeConfig {
    /// edgesim's lab: Microsoft's defaults with federation on, and partner discovery as given.
    pub fn lab(partner_discovery: bool) -> Self {
        AccessEdgeConfig {
            allow_federated_users: true,
            enable_partner_discovery: partner_discovery,
            ..AccessEdgeConfig::default()
        }
    }
}

/// `[[allowed_domains]]`: one `New-CsAllowedDomain`, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AllowedDomainEntry {
    /// The partner's SIP domain (`-Identity`).
    #[serde(alias = "Identity")]
    pub identity: Option<String>,
    /// The same (`-Domain`): give one of the two, or both equal.
    #[serde(alias = "Domain")]
    pub domain: Option<String>,
    /// The partner Edge's FQDN: no SRV lookup, the peer certificate must name it; empty: DNS SRV.
    #[serde(alias = "ProxyFqdn")]
    pub proxy_fqdn: Option<String>,
    /// How its messages are verified (UseSourceVerification).
    #[serde(alias = "VerificationLevel")]
    pub verification_level: VerificationLevel,
    /// Monitored by the Monitoring Server (False; recorded only).
    #[serde(alias = "MarkForMonitoring")]
    pub mark_for_monitoring: bool,
    /// Free text.
    #[serde(alias = "Comment")]
    pub comment: Option<String>,
}

/// `[[blocked_domains]]`: one `New-CsBlockedDomain`, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct BlockedDomainEntry {
    /// The blocked SIP domain (`-Identity`).
    #[serde(alias = "Identity")]
    pub identity: Option<String>,
    /// The same (`-Domain`): give one of the two, or both equal.
    #[serde(alias = "Domain")]
    pub domain: Option<String>,
    /// Free text.
    #[serde(alias = "Comment")]
    pub comment: Option<String>,
}

/// Where a setting came from; errors and the start-up report name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// edgesim's lab defaults (no `[access_edge]`).
    LabDefaults,
    /// `policy.<key>[index]` (the older spelling).
    Policy(&'static str, usize),
    /// `<table>[index]`, or `access_edge` itself (index 0).
    Table(&'static str, usize),
    /// A line of a `--sfb-config` file.
    Pasted(PathBuf, usize),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::LabDefaults => f.write_str("edgesim's lab defaults"),
            Source::Policy(key, i) => write!(f, "policy.{key}[{i}]"),
            Source::Table("access_edge", _) => f.write_str("[access_edge]"),
            Source::Table(key, i) => write!(f, "{key}[{i}]"),
            Source::Pasted(path, line) => write!(f, "{}:{line}", path.display()),
        }
    }
}

impl Source {
    /// The key a configuration error names: `policy.blocked_domains` (as before the SfB tables),
    /// `blocked_domains[1]`, `access_edge`; a pasted line: its `file:line`.
    pub fn field(&self) -> String {
        match self {
            Source::Policy(key, _) => format!("policy.{key}"),
            Source::LabDefaults | Source::Table("access_edge", _) => "access_edge".into(),
            other => other.to_string(),
        }
    }
}

/// An allowed partner domain in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedDomain {
    /// The SIP domain, as written.
    pub domain: String,
    /// The partner Edge's FQDN (Allowed Partner Server): no SRV lookup.
    pub proxy_fqdn: Option<String>,
    /// How its messages are verified.
    pub verification_level: VerificationLevel,
    /// MarkForMonitoring.
    pub mark_for_monitoring: bool,
    /// Comment.
    pub comment: Option<String>,
    /// Where it was listed.
    pub source: Source,
}

/// A blocked domain in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedDomain {
    /// The SIP domain, as written.
    pub domain: String,
    /// Comment.
    pub comment: Option<String>,
    /// Where it was listed.
    pub source: Source,
}

/// The limits the Edge puts on a discovered partner (issue 15's watch list reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveredPartnerLimits {
    /// DiscoveredPartnerStandardRate: messages per second.
    pub rate_per_sec: u32,
    /// MaxContactsPerDiscoveredPartner, when EnableDiscoveredPartnerContactsLimit is True.
    pub max_contacts: Option<u32>,
    /// DiscoveredPartnerReportPeriodMinutes, in seconds.
    pub report_period_secs: u64,
    /// DiscoveredPartnerVerificationLevel.
    pub verification_level: VerificationLevel,
}

/// The federation settings in force: every Access Edge setting with its default applied, and the allowed and
/// blocked domains from every source (`[policy]` aliases, the SfB tables, `--sfb-config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationSettings {
    /// Where the Access Edge settings came from.
    pub origin: Source,
    /// The Access Edge settings.
    pub access_edge: AccessEdgeConfig,
    /// Allowed partner domains.
    pub allowed: Vec<FederatedDomain>,
    /// Blocked domains.
    pub blocked: Vec<BlockedDomain>,
}

impl Default for FederationSettings {
    /// edgesim's lab: federation and partner discovery on, no lists.
    fn default() -> Self {
        FederationSettings {
            origin: Source::LabDefaults,
            access_edge: AccessEdgeConfig::lab(true),
            allowed: Vec::new(),
            blocked: Vec::new(),
        }
    }
}

/// Lower-case, without the trailing root dot: how domains compare.
pub(crate) fn norm(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

impl FederationSettings {
    /// The settings an in-memory `[policy]` gives (what an old file without the SfB tables resolves to).
    pub fn from_policy(policy: &PolicyConfig) -> Self {
        FederationSettings {
            origin: Source::LabDefaults,
            access_edge: AccessEdgeConfig::lab(policy.partner_discovery),
            allowed: policy
                .allowed_domains
                .iter()
                .enumerate()
                .map(|(i, a)| FederatedDomain {
                    domain: a.domain.clone(),
                    proxy_fqdn: a.proxy_fqdn.clone(),
                    verification_level: VerificationLevel::default(),
                    mark_for_monitoring: false,
                    comment: None,
                    source: Source::Policy("allowed_domains", i),
                })
                .collect(),
            blocked: policy
                .blocked_domains
                .iter()
                .enumerate()
                .map(|(i, b)| BlockedDomain {
                    domain: b.clone(),
                    comment: None,
                    source: Source::Policy("blocked_domains", i),
                })
                .collect(),
        }
    }

    /// AllowFederatedUsers: federation on at all.
    pub fn federation_enabled(&self) -> bool {
        self.access_edge.allow_federated_users
    }

    /// Partners not on the allowed list are discovered through DNS SRV.
    pub fn partner_discovery(&self) -> bool {
        self.federation_enabled() && self.access_edge.enable_partner_discovery
    }

    /// The allowed entry of `domain`, if any.
    pub fn allowed_domain(&self, domain: &str) -> Option<&FederatedDomain> {
        let d = norm(domain);
        self.allowed.iter().find(|a| norm(&a.domain) == d)
    }

    /// The verification level of messages from `domain`: its allowed entry's, else the discovered partners'.
    pub fn verification_level(&self, domain: &str) -> VerificationLevel {
        self.allowed_domain(domain).map_or(
            self.access_edge.discovered_partner_verification_level,
            |a| a.verification_level,
        )
    }

    /// The discovered-partner limits.
    pub fn discovered_partner_limits(&self) -> DiscoveredPartnerLimits {
        let a = &self.access_edge;
        DiscoveredPartnerLimits {
            rate_per_sec: a.discovered_partner_standard_rate,
            max_contacts: a
                .enable_discovered_partner_contacts_limit
                .then_some(a.max_contacts_per_discovered_partner),
            report_period_secs: u64::from(a.discovered_partner_report_period_minutes) * 60,
            verification_level: a.discovered_partner_verification_level,
        }
    }

    /// Writes what today's `Policy` reads into `policy`: the blocked domains; the allowed domains (none when
    /// federation is off, so every domain is refused); partner discovery (AllowFederatedUsers and
    /// EnablePartnerDiscovery). An old file's `[policy]` comes out unchanged.
    pub fn apply_to(&self, policy: &mut PolicyConfig) {
        policy.blocked_domains = self.blocked.iter().map(|b| b.domain.clone()).collect();
        policy.allowed_domains = if self.federation_enabled() {
            self.allowed
                .iter()
                .map(|a| AllowedDomain {
                    domain: a.domain.clone(),
                    proxy_fqdn: a.proxy_fqdn.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };
        policy.partner_discovery = self.partner_discovery();
    }

    /// One line per setting that matters, for `serve`'s start-up report.
    pub fn report(&self, config_file: Option<&Path>) -> Vec<String> {
        report::lines(self, config_file)
    }
}

/// Which federation keys a TOML file spells out (presence, not value: a default and an explicit value differ
/// for aliases and for Microsoft's defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Written {
    pub policy_blocked: bool,
    pub policy_allowed: bool,
    pub policy_discovery: bool,
    pub blocked: bool,
    pub allowed: bool,
    pub access_edge_discovery: bool,
}

impl Written {
    /// The keys present in the TOML `text` (already known to parse).
    pub(crate) fn of(text: &str) -> Self {
        let Ok(t) = toml::from_str::<toml::Table>(text) else {
            return Written::default();
        };
        let has = |table: &str, keys: &[&str]| {
            t.get(table)
                .and_then(toml::Value::as_table)
                .is_some_and(|s| keys.iter().any(|k| s.contains_key(*k)))
        };
        Written {
            policy_blocked: has("policy", &["blocked_domains"]),
            policy_allowed: has("policy", &["allowed_domains"]),
            policy_discovery: has("policy", &["partner_discovery"]),
            blocked: t.contains_key("blocked_domains"),
            allowed: t.contains_key("allowed_domains"),
            access_edge_discovery: has(
                "access_edge",
                &["enable_partner_discovery", "EnablePartnerDiscovery"],
            ),
        }
    }
}
