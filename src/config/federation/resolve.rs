//! From what a TOML file and `--sfb-config` files say to the [`FederationSettings`] in force: the alias rules,
//! Microsoft's versus edgesim's defaults, and how pasted settings join the file's.

use std::path::Path;

use super::{
    AccessEdgeConfig, AllowedDomainEntry, BlockedDomain, BlockedDomainEntry, FederatedDomain,
    FederationSettings, Source, Written, norm,
};
use crate::config::validate::{self, ListProblem, SettingProblem, snake_case};
use crate::config::{ConfigError, EdgeConfig};

/// An old `[policy]` key and its SfB spelling, both set.
struct Conflict {
    old: &'static str,
    new: &'static str,
    fix: &'static str,
}

const CONFLICTS: [Conflict; 3] = [
    Conflict {
        old: "policy.blocked_domains",
        new: "[[blocked_domains]] (New-CsBlockedDomain)",
        fix: "move each domain into a [[blocked_domains]] table (identity = \"spam.lab\") and delete policy.blocked_domains",
    },
    Conflict {
        old: "policy.allowed_domains",
        new: "[[allowed_domains]] (New-CsAllowedDomain)",
        fix: "move each domain into an [[allowed_domains]] table (identity = \"fabrikam.com\", proxy_fqdn = \"sip.fabrikam.com\") and delete policy.allowed_domains",
    },
    Conflict {
        old: "policy.partner_discovery",
        new: "access_edge.enable_partner_discovery (EnablePartnerDiscovery)",
        fix: "delete policy.partner_discovery",
    },
];

/// The federation settings of a parsed configuration file (`path` labels errors).
pub(crate) fn resolve(
    c: &EdgeConfig,
    w: Written,
    path: &Path,
) -> Result<FederationSettings, ConfigError> {
    let both = [
        w.policy_blocked && w.blocked,
        w.policy_allowed && w.allowed,
        w.policy_discovery && w.access_edge_discovery,
    ];
    if let Some((_, k)) = both.iter().zip(&CONFLICTS).find(|(b, _)| **b) {
        return Err(invalid(
            path,
            k.old,
            format!(
                "set twice: `{}` (edgesim's older name) and `{}` say the same thing; keep one: {}",
                k.old, k.new, k.fix
            ),
        ));
    }
    // The [policy] lists first (with their old sources), then the SfB tables.
    let mut f = FederationSettings::from_policy(&c.policy);
    if let Some(a) = &c.access_edge {
        let mut a = a.clone();
        if w.policy_discovery {
            a.enable_partner_discovery = c.policy.partner_discovery;
        }
        validate::access_edge(&a).map_err(|p| {
            invalid(
                path,
                &format!("access_edge.{}", snake_case(p.setting)),
                p.message,
            )
        })?;
        f.origin = Source::Table("access_edge", 0);
        f.access_edge = a;
    }
    for (i, e) in c.allowed_domains.iter().enumerate() {
        let d = allowed_entry(e, Source::Table("allowed_domains", i))
            .map_err(|p| invalid(path, &entry_field("allowed_domains", i, &p), p.message))?;
        f.allowed.push(d);
    }
    for (i, e) in c.blocked_domains.iter().enumerate() {
        let d = blocked_entry(e, Source::Table("blocked_domains", i))
            .map_err(|p| invalid(path, &entry_field("blocked_domains", i, &p), p.message))?;
        f.blocked.push(d);
    }
    Ok(f)
}

fn invalid(path: &Path, field: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_owned(),
        field: field.to_owned(),
        message,
    }
}

fn entry_field(table: &str, i: usize, p: &SettingProblem) -> String {
    format!("{table}[{i}].{}", snake_case(p.setting))
}

/// The domain an entry names: Identity or Domain (both: equal).
fn entry_domain(identity: Option<&str>, domain: Option<&str>) -> Result<String, SettingProblem> {
    fn given(v: Option<&str>) -> Option<&str> {
        v.map(str::trim).filter(|s| !s.is_empty())
    }
    let name = match (given(identity), given(domain)) {
        (None, None) => {
            return Err(SettingProblem {
                setting: "Identity",
                message: "missing: give the SIP domain (Identity, or Domain), e.g. fabrikam.com"
                    .into(),
            });
        }
        (Some(i), Some(d)) if norm(i) != norm(d) => {
            return Err(SettingProblem {
                setting: "Domain",
                message: format!(
                    "\"{d}\" differs from Identity \"{i}\": both name the same domain; give one of them"
                ),
            });
        }
        (Some(n), _) | (None, Some(n)) => n,
    };
    validate::domain_name(name, "the SIP domain alone, e.g. fabrikam.com").map_err(|message| {
        SettingProblem {
            setting: if given(identity).is_some() {
                "Identity"
            } else {
                "Domain"
            },
            message,
        }
    })?;
    Ok(name.to_owned())
}

fn text(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// An allowed domain entry (TOML or pasted) in force; an empty ProxyFqdn means DNS SRV, as Format-List
/// prints it.
pub(crate) fn allowed_entry(
    e: &AllowedDomainEntry,
    source: Source,
) -> Result<FederatedDomain, SettingProblem> {
    let domain = entry_domain(e.identity.as_deref(), e.domain.as_deref())?;
    let proxy_fqdn = text(&e.proxy_fqdn);
    if let Some(p) = &proxy_fqdn {
        validate::domain_name(
            p,
            "the partner Edge's FQDN, e.g. sip.fabrikam.com (empty: DNS SRV)",
        )
        .map_err(|message| SettingProblem {
            setting: "ProxyFqdn",
            message,
        })?;
    }
    Ok(FederatedDomain {
        domain,
        proxy_fqdn,
        verification_level: e.verification_level,
        mark_for_monitoring: e.mark_for_monitoring,
        comment: text(&e.comment),
        source,
    })
}

/// A blocked domain entry (TOML or pasted) in force.
pub(crate) fn blocked_entry(
    e: &BlockedDomainEntry,
    source: Source,
) -> Result<BlockedDomain, SettingProblem> {
    Ok(BlockedDomain {
        domain: entry_domain(e.identity.as_deref(), e.domain.as_deref())?,
        comment: text(&e.comment),
        source,
    })
}

/// What `--sfb-config` files held ([`crate::config::sfb::parse`]), before it joins the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pasted {
    /// A `Get-CsAccessEdgeConfiguration` block: its settings (Microsoft's defaults for what it leaves out)
    /// and where it starts.
    pub access_edge: Option<(AccessEdgeConfig, Source)>,
    /// `Get-CsAllowedDomain` blocks.
    pub allowed: Vec<FederatedDomain>,
    /// `Get-CsBlockedDomain` blocks.
    pub blocked: Vec<BlockedDomain>,
    /// Warnings and notes (`file:line: warning: …`), for the start-up report.
    pub notes: Vec<String>,
}

/// A `--sfb-config` error at `source` (a pasted line), or in the configuration file.
pub(crate) fn error_at(source: &Source, config: Option<&Path>, message: String) -> ConfigError {
    match source {
        Source::Pasted(path, line) => ConfigError::Pasted {
            path: path.clone(),
            line: *line,
            message,
        },
        other => invalid(
            config.unwrap_or(Path::new("the configuration")),
            &other.field(),
            message,
        ),
    }
}

impl Pasted {
    /// Adds the next file's content; a second Access Edge configuration is refused (an Edge has one).
    pub fn combine(&mut self, next: Pasted) -> Result<(), ConfigError> {
        if let (Some((_, first)), Some((_, second))) = (&self.access_edge, &next.access_edge) {
            return Err(error_at(
                second,
                None,
                format!(
                    "a second Get-CsAccessEdgeConfiguration (the first is at {first}): an Edge has one global Access Edge configuration; give one"
                ),
            ));
        }
        if next.access_edge.is_some() {
            self.access_edge = next.access_edge;
        }
        self.allowed.extend(next.allowed);
        self.blocked.extend(next.blocked);
        self.notes.extend(next.notes);
        Ok(())
    }
}

impl FederationSettings {
    /// Joins what `--sfb-config` read: a pasted Access Edge configuration replaces this one (the file's
    /// `[access_edge]` or the lab defaults; a note says so), pasted domains join the lists, and the lists are
    /// checked again. Returns the notes for the start-up report. `config` names the configuration file.
    pub fn merge_pasted(
        &mut self,
        p: Pasted,
        config: Option<&Path>,
    ) -> Result<Vec<String>, ConfigError> {
        let mut notes = p.notes;
        match p.access_edge {
            Some((a, source)) => {
                if let Source::Table(..) = self.origin {
                    notes.push(format!(
                        "note: the [access_edge] of {} is replaced by the pasted Get-CsAccessEdgeConfiguration ({source})",
                        config.map_or("the configuration".into(), |c| c.display().to_string())
                    ));
                }
                self.access_edge = a;
                self.origin = source;
            }
            None => notes.push(format!(
                "warning: no Get-CsAccessEdgeConfiguration among the --sfb-config files: the Access Edge settings stay {}; paste `Get-CsAccessEdgeConfiguration | Format-List` too to reproduce the customer's Edge",
                report_origin(&self.origin, config)
            )),
        }
        self.allowed.extend(p.allowed);
        self.blocked.extend(p.blocked);
        validate::domain_lists(self)
            .map_err(|ListProblem { at, message }| error_at(&at, config, message))?;
        Ok(notes)
    }
}

/// Where the Access Edge settings come from, in a sentence.
pub(crate) fn report_origin(origin: &Source, config: Option<&Path>) -> String {
    match origin {
        Source::Pasted(..) => format!(
            "the pasted Get-CsAccessEdgeConfiguration ({origin}; what it leaves out: Microsoft's defaults)"
        ),
        Source::Table(..) | Source::Policy(..) => format!(
            "[access_edge] of {} (what it leaves out: Microsoft's defaults)",
            config.map_or("the configuration".into(), |c| c.display().to_string())
        ),
        Source::LabDefaults => "edgesim's lab defaults (no [access_edge]: AllowFederatedUsers True, where a real Edge ships with False)".into(),
    }
}
