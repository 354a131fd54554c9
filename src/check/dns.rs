//! The DNS lines of the report: SRV records (and `.` targets), Rule 1 per target, A/AAAA per target.

use std::net::IpAddr;

use super::Report;
use crate::dns::SrvRecord;
use crate::outbound::OutboundContext;
use crate::rules::{DomainName, Finding, srv};

/// The SRV lines: the records found (or why none), and each `.` target (RFC 2782). Returns the records
/// Rule 1 looks at, or `None` when there is no usable one (the report ends there).
pub(super) async fn srv_records(
    ctx: &OutboundContext,
    r: &mut Report,
    domain: &DomainName,
) -> Option<Vec<SrvRecord>> {
    let answer = ctx.lookup.srv(&domain.srv_name()).await;
    match &answer {
        Ok(records) if !records.is_empty() => {
            for f in srv::record_findings(domain, records) {
                r.push(&f);
            }
            let usable: Vec<SrvRecord> = records
                .iter()
                .filter(|rec| !srv::srv_decidedly_unavailable(rec))
                .cloned()
                .collect();
            (!usable.is_empty()).then_some(usable)
        }
        // No record, or the lookup failed: the finding the Edge itself would return.
        _ => {
            if let Err(f) =
                ctx.policy
                    .srv_target(domain, &answer, crate::rules::Direction::Outbound)
            {
                r.push(&f);
            }
            None
        }
    }
}

/// Rule 1 per target: PASS, WARN (ignored, another passes) or FAIL. Returns the record the rest of the
/// report follows: Rule 1's pick, else the first by preference (its certificate problems matter too).
pub(super) fn rule1_lines(
    ctx: &OutboundContext,
    r: &mut Report,
    domain: &DomainName,
    records: &[SrvRecord],
) -> Option<SrvRecord> {
    for f in srv::rule1_findings(&ctx.policy, domain, records) {
        r.push(&f);
    }
    srv::followed(&ctx.policy, domain, records).cloned()
}

/// A/AAAA per target; returns the addresses of `chosen` (empty: the report ends).
pub(super) async fn address_lines(
    ctx: &OutboundContext,
    r: &mut Report,
    domain: &DomainName,
    records: &[SrvRecord],
    chosen: &SrvRecord,
) -> Vec<IpAddr> {
    let mut chosen_addrs: Vec<IpAddr> = Vec::new();
    for rec in records {
        let answer = ctx.lookup.addrs(&rec.target).await;
        let f = ctx.policy.addresses(domain, &rec.target, answer);
        if let Finding::Addresses { addrs, .. } = &f
            && rec.target == chosen.target
        {
            chosen_addrs = addrs.clone();
        }
        r.push(&f);
    }
    chosen_addrs
}
