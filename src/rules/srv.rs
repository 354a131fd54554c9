//! The SRV step of both directions: the order the Edge tries the records in (one sort, used by the Edge, `call`
//! and `check`), Rule 1 (the target must be a host directly in the domain), and when there is no usable SRV
//! record at all (a failed lookup, no records, or only `.` targets, RFC 2782).

use super::{Direction, DomainName, Finding, Policy};
use crate::dns::{DnsFailure, SrvRecord};

/// Rule 1: `target` minus its first label equals `domain` (or equals it, when `accept_apex`); compared as
/// [`DomainName`]s compare (case and trailing dot ignored), without building them: it runs per SRV record.
pub fn rule1_in_domain(target: &str, domain: &str, accept_apex: bool) -> bool {
    let (t, d) = (super::domain::bare(target), super::domain::bare(domain));
    if t.is_empty() || d.is_empty() {
        return false;
    }
    if t.eq_ignore_ascii_case(d) {
        return accept_apex;
    }
    t.split_once('.')
        .is_some_and(|(first, rest)| !first.is_empty() && rest.eq_ignore_ascii_case(d))
}

/// Why Rule 1 refuses a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    /// The target is the domain itself, and `policy.accept_apex_target` is off.
    Apex,
    /// The target is in a subdomain of the domain.
    Subdomain,
    /// The target is in another domain (the parent domain, or an unrelated one).
    OtherDomain,
}

impl Outside {
    /// Why `target` is not acceptable for `domain`, or `None` when Rule 1 accepts it.
    pub fn of(target: &str, domain: &DomainName, accept_apex: bool) -> Option<Outside> {
        if rule1_in_domain(target, domain.as_str(), accept_apex) {
            return None;
        }
        let t = DomainName::new(target);
        Some(if t == *domain {
            Outside::Apex
        } else if t.as_str().ends_with(&format!(".{domain}")) {
            Outside::Subdomain
        } else {
            Outside::OtherDomain
        })
    }
}

/// Rule 1 found no acceptable target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule1Failure {
    /// The domain.
    pub domain: DomainName,
    /// The targets seen, `T:port`, in preference order.
    pub fqdns: Vec<String>,
}

/// RFC 2782: an SRV target of `.` means the service is "decidedly not available" at the domain.
pub fn srv_decidedly_unavailable(record: &SrvRecord) -> bool {
    super::domain::bare(&record.target).is_empty()
}

/// Why a domain has no usable federation SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoSrv {
    /// The lookup failed (NXDOMAIN, NODATA, SERVFAIL, REFUSED, timeout, …).
    Dns(DnsFailure),
    /// Every record's target is `.` (RFC 2782: "service decidedly not available").
    DecidedlyNotAvailable,
}

impl NoSrv {
    /// The `reason` Data value of the synthetic no-SRV record.
    pub fn reason_tag(&self) -> &'static str {
        match self {
            NoSrv::Dns(DnsFailure::NxDomain) => "NXDOMAIN",
            NoSrv::Dns(DnsFailure::NoRecords) => "NODATA",
            NoSrv::Dns(DnsFailure::ServFail) => "SERVFAIL",
            NoSrv::Dns(DnsFailure::Refused) => "REFUSED",
            NoSrv::Dns(DnsFailure::Timeout) => "TIMEOUT",
            NoSrv::Dns(DnsFailure::Other(_)) => "OTHER",
            NoSrv::DecidedlyNotAvailable => "DECIDEDLY_NOT_AVAILABLE",
        }
    }
}

/// The SRV step of both directions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrvDecision<'a> {
    /// Rule 1 picked this record.
    Target(&'a SrvRecord),
    /// No usable SRV record (1008).
    NoSrv(NoSrv),
    /// Records, but none in the domain (1009).
    Mismatch(Rule1Failure),
}

/// The order the Edge tries SRV records in: priority ascending, then weight descending (a stable sort, so equal
/// records keep the answer's order); records with the target `.` are not candidates.
pub fn preference_order(records: &[SrvRecord]) -> Vec<&SrvRecord> {
    let mut sorted: Vec<&SrvRecord> = records
        .iter()
        .filter(|r| !srv_decidedly_unavailable(r))
        .collect();
    sorted.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
    sorted
}

/// The SRV step over a lookup answer: no usable record (failure, empty, or only `.` targets), Rule 1's pick,
/// or Rule 1's failure. `.` records next to real ones are ignored.
pub fn srv_decision<'a>(
    domain: &str,
    answer: &'a Result<Vec<SrvRecord>, DnsFailure>,
    accept_apex: bool,
) -> SrvDecision<'a> {
    match answer {
        Err(f) => SrvDecision::NoSrv(NoSrv::Dns(f.clone())),
        Ok(r) if r.is_empty() => SrvDecision::NoSrv(NoSrv::Dns(DnsFailure::NoRecords)),
        Ok(r) if r.iter().all(srv_decidedly_unavailable) => {
            SrvDecision::NoSrv(NoSrv::DecidedlyNotAvailable)
        }
        Ok(r) => match rule1_pick(domain, r, accept_apex) {
            Ok(pick) => SrvDecision::Target(pick),
            Err(f) => SrvDecision::Mismatch(f),
        },
    }
}

/// Rule 1 over an SRV answer: the first acceptable record in [`preference_order`]. Records with the target `.`
/// are not candidates and are not listed in the failure.
pub fn rule1_pick<'a>(
    domain: &str,
    records: &'a [SrvRecord],
    accept_apex: bool,
) -> Result<&'a SrvRecord, Rule1Failure> {
    let sorted = preference_order(records);
    sorted
        .iter()
        .find(|r| rule1_in_domain(&r.target, domain, accept_apex))
        .copied()
        .ok_or_else(|| Rule1Failure {
            domain: DomainName::new(domain),
            fqdns: sorted
                .iter()
                .map(|r| format!("{}:{}", DomainName::new(&r.target), r.port))
                .collect(),
        })
}

impl Policy {
    /// The SRV step for `domain` in direction `dir`: Rule 1's pick, or the no-SRV (1008) / Rule 1 (1009) finding.
    pub fn srv_target<'a>(
        &self,
        domain: &DomainName,
        answer: &'a Result<Vec<SrvRecord>, DnsFailure>,
        dir: Direction,
    ) -> Result<&'a SrvRecord, Finding> {
        match srv_decision(domain.as_str(), answer, self.accept_apex_target) {
            SrvDecision::Target(r) => Ok(r),
            SrvDecision::NoSrv(why) => Err(Finding::NoSrv {
                domain: domain.clone(),
                why,
                server: self.dns_server.clone(),
            }),
            SrvDecision::Mismatch(failure) => Err(Finding::SrvNotInDomain { failure, dir }),
        }
    }
}

/// `check`: every record of a (non-empty) SRV answer as a finding: the usable ones, and those whose target is
/// `.` (alone: the domain does not federate; beside others: ignored).
pub fn record_findings(domain: &DomainName, records: &[SrvRecord]) -> Vec<Finding> {
    let alone = records.iter().all(srv_decidedly_unavailable);
    records
        .iter()
        .map(|record| {
            if srv_decidedly_unavailable(record) {
                Finding::SrvDotRecord {
                    record: record.clone(),
                    domain: domain.clone(),
                    alone,
                }
            } else {
                Finding::SrvRecordFound {
                    record: record.clone(),
                    domain: domain.clone(),
                }
            }
        })
        .collect()
}

/// `check`: Rule 1 for each usable record, in the answer's order; a refused target is ignored by the Edge when
/// another one passes.
pub fn rule1_findings(policy: &Policy, domain: &DomainName, records: &[SrvRecord]) -> Vec<Finding> {
    let apex = policy.accept_apex_target;
    let picked = rule1_pick(domain.as_str(), records, apex).is_ok();
    records
        .iter()
        .filter(|r| !srv_decidedly_unavailable(r))
        .map(|r| {
            let target = DomainName::new(&r.target);
            match Outside::of(&r.target, domain, apex) {
                None => Finding::TargetInDomain {
                    target,
                    domain: domain.clone(),
                },
                Some(why) => Finding::TargetOutsideDomain {
                    target,
                    domain: domain.clone(),
                    why,
                    ignored: picked,
                },
            }
        })
        .collect()
}

/// The record whose target `check` follows: Rule 1's pick, else the first in [`preference_order`] (its
/// certificate problems matter too).
pub fn followed<'a>(
    policy: &Policy,
    domain: &DomainName,
    records: &'a [SrvRecord],
) -> Option<&'a SrvRecord> {
    rule1_pick(domain.as_str(), records, policy.accept_apex_target)
        .ok()
        .or_else(|| preference_order(records).first().copied())
}

/// An SRV target as written in DNS: `.` for RFC 2782's "decidedly not available", else the name.
pub fn srv_target_text(record: &SrvRecord) -> &str {
    if srv_decidedly_unavailable(record) {
        "."
    } else {
        &record.target
    }
}

/// One SRV record in words: `priority weight port target`.
pub fn srv_text(record: &SrvRecord) -> String {
    format!(
        "{} {} {} {}",
        record.priority,
        record.weight,
        record.port,
        srv_target_text(record)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port: 5061,
            target: target.into(),
        }
    }

    #[test]
    fn one_preference_order() {
        let recs = [
            rec(20, 0, "c.lab"),
            rec(10, 5, "b.lab"),
            rec(10, 50, "a.lab"),
            rec(0, 0, ""),
            rec(10, 5, "b2.lab"),
        ];
        let order: Vec<&str> = preference_order(&recs)
            .iter()
            .map(|r| r.target.as_str())
            .collect();
        assert_eq!(order, ["a.lab", "b.lab", "b2.lab", "c.lab"]);
    }

    #[test]
    fn why_rule1_refuses() {
        let d = DomainName::new("cms.steven.lab");
        assert_eq!(Outside::of("vcse.cms.steven.lab", &d, false), None);
        assert_eq!(
            Outside::of("vcse.sub.cms.steven.lab.", &d, false),
            Some(Outside::Subdomain)
        );
        assert_eq!(
            Outside::of("vcse.steven.lab", &d, false),
            Some(Outside::OtherDomain)
        );
        assert_eq!(
            Outside::of("CMS.steven.lab", &d, false),
            Some(Outside::Apex)
        );
        assert_eq!(Outside::of("cms.steven.lab", &d, true), None);
    }

    #[test]
    fn words_for_people() {
        use crate::rules::{Route, tls_version};
        assert_eq!(
            Route::NotAllowed.describe(),
            "not an allowed domain, and partner discovery is off"
        );
        assert_eq!(tls_version(rustls::ProtocolVersion::TLSv1_2), "TLS 1.2");
        assert_eq!(
            tls_version(rustls::ProtocolVersion::TLSv1_1),
            "TLS version 0x0302"
        );
        let dot = SrvRecord {
            priority: 0,
            weight: 0,
            port: 0,
            target: String::new(),
        };
        assert_eq!(srv_text(&dot), "0 0 0 .");
    }

    #[test]
    fn records_in_words() {
        let dot = rec(0, 0, "");
        assert_eq!(srv_text(&dot), "0 0 5061 .");
        assert_eq!(srv_target_text(&rec(1, 2, "x.lab")), "x.lab");
    }
}
