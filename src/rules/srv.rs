//! The SRV step of both directions: Rule 1 (the target must be exactly in the domain), and when there is no
//! usable SRV record at all (a failed lookup, no records, or only `.` targets, RFC 2782), with the words
//! that explain each.

use super::norm;
use crate::dns::{DnsFailure, SrvRecord, federation_srv_name};

/// Rule 1: `target` minus its first label equals `domain` (or equals it, when `accept_apex`).
pub fn rule1_in_domain(target: &str, domain: &str, accept_apex: bool) -> bool {
    let (t, d) = (norm(target), norm(domain));
    if t.is_empty() || d.is_empty() {
        return false;
    }
    if t == d {
        return accept_apex;
    }
    t.split_once('.')
        .is_some_and(|(first, rest)| !first.is_empty() && rest == d)
}

/// Rule 1 found no acceptable target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule1Failure {
    /// The domain (normalised).
    pub domain: String,
    /// The targets seen, `T:port`, in priority order.
    pub fqdns: Vec<String>,
}

/// RFC 2782: an SRV target of `.` means the service is "decidedly not available" at the domain.
pub fn srv_decidedly_unavailable(record: &SrvRecord) -> bool {
    norm(&record.target).is_empty()
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
            NoSrv::Dns(f) => dns_failure_reason(f),
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

/// Rule 1 over an SRV answer: the first acceptable record by priority (ascending) then weight (descending).
/// Records with the target `.` are not candidates and are not listed in the failure.
pub fn rule1_pick<'a>(
    domain: &str,
    records: &'a [SrvRecord],
    accept_apex: bool,
) -> Result<&'a SrvRecord, Rule1Failure> {
    let mut sorted: Vec<&SrvRecord> = records
        .iter()
        .filter(|r| !srv_decidedly_unavailable(r))
        .collect();
    sorted.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
    sorted
        .iter()
        .find(|r| rule1_in_domain(&r.target, domain, accept_apex))
        .copied()
        .ok_or_else(|| Rule1Failure {
            domain: norm(domain),
            fqdns: sorted
                .iter()
                .map(|r| format!("{}:{}", norm(&r.target), r.port))
                .collect(),
        })
}

/// The `reason` Data value of the synthetic no-SRV record.
fn dns_failure_reason(f: &DnsFailure) -> &'static str {
    match f {
        DnsFailure::NxDomain => "NXDOMAIN",
        DnsFailure::NoRecords => "NODATA",
        DnsFailure::ServFail => "SERVFAIL",
        DnsFailure::Refused => "REFUSED",
        DnsFailure::Timeout => "TIMEOUT",
        DnsFailure::Other(_) => "OTHER",
    }
}

pub(super) fn no_srv_explanation(d: &str, why: &NoSrv, server: &str) -> String {
    let srv = federation_srv_name(d);
    let asked = if server.is_empty() {
        String::new()
    } else {
        format!(" (answered by {server})")
    };
    let who = if server.is_empty() {
        "the Edge's DNS server"
    } else {
        server
    };
    match why {
        NoSrv::DecidedlyNotAvailable => format!(
            "{srv} has no usable SRV record: its target is \".\", which RFC 2782 defines as \"service decidedly not available\" at {d}{asked}. {d} says it does not federate. Fix: if it should, replace that record with {srv} → <edge host>.{d}:5061, with an A record for that host in {d}."
        ),
        NoSrv::Dns(f) if f.is_answer() => format!(
            "{srv} has no SRV record ({}). Fix: publish {srv} → <edge host>.{d}:5061, with an A record for that host in {d} (or point the Edge at the DNS server that serves {d}).",
            f.describe(server)
        ),
        NoSrv::Dns(f) => format!(
            "The SRV lookup of {srv} failed: {}. Fix: check that {who} runs and answers DNS (UDP and TCP) and serves the zone of {d}, or point the Edge at a DNS server that does.",
            f.describe(server)
        ),
    }
}

pub(super) fn rule1_explanation(f: &Rule1Failure, cert_owner: &str) -> String {
    let d = &f.domain;
    let srv = federation_srv_name(d);
    let targets: Vec<&str> = f
        .fqdns
        .iter()
        .map(|x| x.rsplit_once(':').map_or(x.as_str(), |(h, _)| h))
        .collect();
    // A target equal to the domain only fails Rule 1 when the apex switch is off, so say that instead of
    // "d is not in d", and never suggest "<first label of d>.d" for it.
    let apex = targets.iter().any(|t| t == d);
    let first_label = targets
        .iter()
        .find(|t| *t != d)
        .and_then(|t| t.split('.').next())
        .filter(|l| !l.is_empty())
        .unwrap_or("sip");
    let suggestion = format!("{first_label}.{d}");
    let apex_fix = " or set policy.accept_apex_target = true";
    if targets.len() == 1 && apex {
        return format!(
            "{srv} points to {d} itself (the domain apex), which this Edge is configured to refuse (policy.accept_apex_target = false). Fix: publish {srv} → a host inside the domain such as {suggestion} (an A record in {d}) and put that name in {cert_owner}'s SAN,{apex_fix}."
        );
    }
    let which = if targets.len() == 1 {
        format!("{}, which is not", targets[0])
    } else {
        format!("{}, none of which is", targets.join(", "))
    };
    if apex {
        return format!(
            "{srv} points to {which} in {d}; {d} itself is the domain apex, which this Edge is configured to refuse (policy.accept_apex_target = false). Fix: publish {srv} → {suggestion} (an A record in {d}) and put that name in {cert_owner}'s SAN,{apex_fix}."
        );
    }
    format!(
        "{srv} points to {which} in {d}. Fix: publish {srv} → {suggestion} (an A record in {d}) and put that name in {cert_owner}'s SAN."
    )
}
