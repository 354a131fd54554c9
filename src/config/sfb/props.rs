//! The properties each cmdlet prints, their types, and a pasted value read as its type.

use crate::config::federation::{RoutingMethod, VerificationLevel};

/// The type of a property's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
    Bool,
    U32,
    Text,
    Level,
    Routing,
}

/// Get-CsAccessEdgeConfiguration's properties, in Format-List order (`AccessEdgeConfig`'s aliases).
pub(super) const ACCESS_EDGE: &[(&str, Ty)] = &[
    ("Identity", Ty::Text),
    ("AllowAnonymousUsers", Ty::Bool),
    ("AllowFederatedUsers", Ty::Bool),
    ("AllowOutsideUsers", Ty::Bool),
    ("BeClearingHouse", Ty::Bool),
    ("EnablePartnerDiscovery", Ty::Bool),
    ("DiscoveredPartnerVerificationLevel", Ty::Level),
    ("EnableArchivingDisclaimer", Ty::Bool),
    ("EnableUserReplicator", Ty::Bool),
    ("KeepCrlsUpToDateForPeers", Ty::Bool),
    ("MarkSourceVerifiableOnOutgoingMessages", Ty::Bool),
    ("OutgoingTlsCountForFederatedPartners", Ty::U32),
    ("DnsSrvCacheRecordCount", Ty::U32),
    ("DiscoveredPartnerStandardRate", Ty::U32),
    ("EnableDiscoveredPartnerContactsLimit", Ty::Bool),
    ("MaxContactsPerDiscoveredPartner", Ty::U32),
    ("DiscoveredPartnerReportPeriodMinutes", Ty::U32),
    ("EnableDiscoveredPartnerResponseMonitor", Ty::Bool),
    ("MaxAcceptedCertificatesStored", Ty::U32),
    ("MaxRejectedCertificatesStored", Ty::U32),
    ("CertificatesDeletedPercentage", Ty::U32),
    ("SkypeSearchUrl", Ty::Text),
    ("RoutingMethod", Ty::Routing),
];

/// Access Edge properties recognised but not modelled: default routing's own (refused through
/// RoutingMethod), and two that Microsoft's own diagnostics show for SfB Server 2019.
pub(super) const ACCESS_EDGE_IGNORED: &[&str] = &[
    "DefaultRouteFqdn",
    "IsPublicProvider",
    "VerificationLevel",
    "EnablePartnerMonitoringCosmosOutput",
    "EnablePartnerMonitoringIfxLog",
];

/// Get-CsAllowedDomain's properties (`AllowedDomainEntry`'s aliases).
pub(super) const ALLOWED: &[(&str, Ty)] = &[
    ("Identity", Ty::Text),
    ("Domain", Ty::Text),
    ("ProxyFqdn", Ty::Text),
    ("Comment", Ty::Text),
    ("MarkForMonitoring", Ty::Bool),
    ("VerificationLevel", Ty::Level),
];

/// Get-CsBlockedDomain's properties (`BlockedDomainEntry`'s aliases).
pub(super) const BLOCKED: &[(&str, Ty)] = &[
    ("Identity", Ty::Text),
    ("Domain", Ty::Text),
    ("Comment", Ty::Text),
];

/// What PowerShell remoting adds to every object.
pub(super) const REMOTING: &[&str] = &["PSComputerName", "RunspaceId", "PSShowComputerName"];

/// Get-CsHostingProvider's own properties: such a block is skipped (hosting providers are not emulated).
pub(super) const HOSTING_PROVIDER: &[&str] = &[
    "HostsOCSUsers",
    "EnabledSharedAddressSpace",
    "AutodiscoverUrl",
];

/// A cmdlet whose output is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmdlet {
    AccessEdge,
    Allowed,
    Blocked,
}

impl Cmdlet {
    pub(super) fn name(self) -> &'static str {
        match self {
            Cmdlet::AccessEdge => "Get-CsAccessEdgeConfiguration",
            Cmdlet::Allowed => "Get-CsAllowedDomain",
            Cmdlet::Blocked => "Get-CsBlockedDomain",
        }
    }

    pub(super) fn properties(self) -> &'static [(&'static str, Ty)] {
        match self {
            Cmdlet::AccessEdge => ACCESS_EDGE,
            Cmdlet::Allowed => ALLOWED,
            Cmdlet::Blocked => BLOCKED,
        }
    }

    pub(super) fn from_name(word: &str) -> Option<Cmdlet> {
        [Cmdlet::AccessEdge, Cmdlet::Allowed, Cmdlet::Blocked]
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(word))
    }
}

/// The value of property `name` of type `ty`; none when it is empty (Microsoft's default stays).
pub(super) fn typed(name: &str, ty: Ty, value: &str) -> Result<Option<toml::Value>, String> {
    let value = match value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
        Some(list) => {
            let items: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            match items.as_slice() {
                [] => return Ok(None),
                [one] if !one.ends_with("...") => *one,
                _ => {
                    return Err(format!(
                        "`{name}`: expected one value, found the list {{{list}}}"
                    ));
                }
            }
        }
        None => value,
    };
    if value.is_empty() {
        return Ok(None);
    }
    let found = |expected: &str| format!("`{name}`: expected {expected}, found \"{value}\"");
    let v = match ty {
        Ty::Text => toml::Value::String(value.to_owned()),
        Ty::Bool => match value.to_ascii_lowercase().as_str() {
            "true" => toml::Value::Boolean(true),
            "false" => toml::Value::Boolean(false),
            _ => return Err(found("True or False")),
        },
        Ty::U32 => match value.parse::<u32>() {
            Ok(n) => toml::Value::Integer(i64::from(n)),
            Err(_) => return Err(found("a whole number from 0 to 4294967295 (UInt32)")),
        },
        Ty::Level => match VerificationLevel::ALL
            .iter()
            .find(|l| l.name().eq_ignore_ascii_case(value))
        {
            Some(l) => toml::Value::String(l.name().to_owned()),
            None => {
                return Err(found(
                    "AlwaysVerifiable, AlwaysUnverifiable or UseSourceVerification",
                ));
            }
        },
        Ty::Routing => {
            match [
                RoutingMethod::UseDnsSrvRouting,
                RoutingMethod::UseDefaultRouting,
            ]
            .iter()
            .find(|r| r.name().eq_ignore_ascii_case(value))
            {
                Some(r) => toml::Value::String(r.name().to_owned()),
                None => return Err(found("UseDnsSrvRouting or UseDefaultRouting")),
            }
        }
    };
    Ok(Some(v))
}
