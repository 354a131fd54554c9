//! The DNS lines of the report: SRV records (and `.` targets), Rule 1 per target, A/AAAA per target.

use std::net::IpAddr;

use super::{Report, Status};
use crate::dns::{DnsFailure, SrvRecord};
use crate::outbound::{OutboundContext, words};
use crate::rules::{
    NoSrv, SrvDecision, rule1_in_domain, rule1_pick, srv_decidedly_unavailable, srv_decision,
};

/// Why Rule 1 refused a target, in words.
fn rule1_why(target: &str, domain: &str) -> &'static str {
    let t = target.trim_end_matches('.').to_ascii_lowercase();
    if t == domain {
        "it is the domain itself (the apex), which this Edge is configured to refuse (policy.accept_apex_target = false)"
    } else if t.ends_with(&format!(".{domain}")) {
        "it is in a subdomain of it"
    } else {
        "it is in another domain"
    }
}

fn suggested_target(target: &str, domain: &str) -> String {
    // For the apex itself, its first label is the domain's own: "apex.apex.x" would be no advice at all.
    if target.trim_end_matches('.').eq_ignore_ascii_case(domain) {
        return format!("sip.{domain}");
    }
    let label = target
        .split('.')
        .next()
        .filter(|l| !l.is_empty() && *l != "*")
        .unwrap_or("sip");
    format!("{label}.{domain}")
}

/// The SRV lines: the records found (or why none), and each `.` target (RFC 2782). Returns the records
/// Rule 1 looks at, or `None` when there is no usable one (the report ends there).
pub(super) async fn srv_records(
    ctx: &OutboundContext,
    r: &mut Report,
    domain: &str,
    srv_name: &str,
) -> Option<Vec<SrvRecord>> {
    let server = ctx.lookup.server();
    let publish = format!(
        "publish {srv_name} → <host>.{domain}:5061 (a host directly in {domain}, e.g. sip.{domain}) with an A record for it"
    );
    let answer = ctx.lookup.srv(srv_name).await;
    let records = match answer {
        Ok(recs) if !recs.is_empty() => recs,
        Ok(_) => {
            let words = DnsFailure::NoRecords.describe(&server);
            let text =
                format!("{srv_name}: {words}; the Edge answers 504 with ms-diagnostics 1008");
            r.push("dns-srv", Status::Fail, text, Some(publish));
            return None;
        }
        Err(f) if f.is_answer() => {
            let words = f.describe(&server);
            let text =
                format!("{srv_name}: {words}; the Edge answers 504 with ms-diagnostics 1008");
            r.push("dns-srv", Status::Fail, text, Some(publish));
            return None;
        }
        Err(f) => {
            // The server failed: nothing is known about the record, so publishing it is not the advice.
            r.push(
                "dns-srv",
                Status::Fail,
                format!(
                    "{srv_name}: {}, so whether {domain} publishes the record is unknown; an Edge whose DNS server fails like this answers 504 with ms-diagnostics 1008",
                    f.describe(&server)
                ),
                Some(format!(
                    "check that the DNS server {server} runs and answers DNS on UDP and TCP, or give --dns IP[:PORT] of a DNS server that serves {domain}"
                )),
            );
            return None;
        }
    };
    let no_usable = matches!(
        srv_decision(domain, &Ok(records.clone()), ctx.policy.accept_apex_target),
        SrvDecision::NoSrv(NoSrv::DecidedlyNotAvailable)
    );
    for rec in &records {
        let line = format!(
            "{srv_name} priority {} weight {} port {} → {}",
            rec.priority,
            rec.weight,
            rec.port,
            words::srv_target(rec)
        );
        if !srv_decidedly_unavailable(rec) {
            r.pass("dns-srv", line);
        } else if no_usable {
            r.push(
                "dns-srv",
                Status::Fail,
                format!(
                    "{line}: a target of \".\" means \"service decidedly not available\" (RFC 2782), so {domain} says it does not federate; the Edge answers 504 with ms-diagnostics 1008 (no usable SRV record), both directions"
                ),
                Some(format!(
                    "if {domain} should federate, replace this record: {publish}"
                )),
            );
        } else {
            r.push(
                "dns-srv",
                Status::Warn,
                format!(
                    "{line}: a target of \".\" (RFC 2782: \"service decidedly not available\") next to other records; the Edge ignores it"
                ),
                Some(format!(
                    "remove this record from {srv_name}: \".\" belongs only in the single SRV record of a domain that does not federate"
                )),
            );
        }
    }
    if no_usable {
        return None;
    }
    Some(
        records
            .into_iter()
            .filter(|rec| !srv_decidedly_unavailable(rec))
            .collect(),
    )
}

/// Rule 1 per target: PASS, WARN (ignored, another passes) or FAIL. Returns the record the rest of the
/// report follows: Rule 1's pick, else the first by priority (its certificate problems matter too).
pub(super) fn rule1_lines(
    ctx: &OutboundContext,
    r: &mut Report,
    domain: &str,
    srv_name: &str,
    records: &[SrvRecord],
) -> Option<SrvRecord> {
    let accept_apex = ctx.policy.accept_apex_target;
    let picked = rule1_pick(domain, records, accept_apex).ok().cloned();
    for rec in records {
        if rule1_in_domain(&rec.target, domain, accept_apex) {
            r.pass("rule1", format!("{} is in {domain}", rec.target));
            continue;
        }
        let fix_target = suggested_target(&rec.target, domain);
        let text = format!(
            "{} is not in {domain}: {}",
            rec.target,
            rule1_why(&rec.target, domain)
        );
        if picked.is_some() {
            r.push(
                "rule1",
                Status::Warn,
                format!("{text}; the Edge ignores this record"),
                Some(format!("remove this record from {srv_name}")),
            );
        } else {
            r.push(
                "rule1",
                Status::Fail,
                format!("{text}; the Edge answers 504 with ms-diagnostics 1009 (both directions)"),
                Some(format!(
                    "publish {srv_name} → {fix_target} (and add {fix_target} to the certificate's SAN){}",
                    if rec.target.trim_end_matches('.').eq_ignore_ascii_case(domain) {
                        ", or set policy.accept_apex_target = true"
                    } else {
                        ""
                    }
                )),
            );
        }
    }
    // Without an acceptable target, go on with the first one: its certificate problems matter too.
    picked.or_else(|| {
        let mut sorted = records.to_vec();
        sorted.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
        sorted.into_iter().next()
    })
}

/// A/AAAA per target; returns the addresses of `chosen` (empty: the report ends).
pub(super) async fn address_lines(
    ctx: &OutboundContext,
    r: &mut Report,
    records: &[SrvRecord],
    chosen: &SrvRecord,
) -> Vec<IpAddr> {
    let mut chosen_addrs: Vec<IpAddr> = Vec::new();
    for rec in records {
        match ctx.lookup.addrs(&rec.target).await {
            Ok(a) if !a.is_empty() => {
                let list: Vec<String> = a.iter().map(ToString::to_string).collect();
                r.pass("dns-a", format!("{} → {}", rec.target, list.join(", ")));
                if rec.target == chosen.target {
                    chosen_addrs = a;
                }
            }
            other => {
                let server = ctx.lookup.server();
                let publish = format!("publish an A record for {}", rec.target);
                let (why, fix) = match other {
                    Err(f) if !f.is_answer() => (
                        f.describe(&server),
                        format!(
                            "check that the DNS server {server} runs and answers DNS on UDP and TCP, or give --dns IP[:PORT] of a DNS server that serves {}",
                            rec.target
                        ),
                    ),
                    Err(f) => (f.describe(&server), publish),
                    Ok(_) => ("no addresses".to_string(), publish),
                };
                r.push(
                    "dns-a",
                    Status::Fail,
                    format!("{}: {why}", rec.target),
                    Some(fix),
                );
            }
        }
    }
    chosen_addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule1_wording_and_suggestion() {
        assert_eq!(
            rule1_why("vcse.steven.lab", "acano.steven.lab"),
            "it is in another domain"
        );
        assert_eq!(
            rule1_why("vcse.sub.cms.steven.lab.", "cms.steven.lab"),
            "it is in a subdomain of it"
        );
        assert_eq!(
            suggested_target("vcse.steven.lab", "acano.steven.lab"),
            "vcse.acano.steven.lab"
        );
        assert_eq!(suggested_target("*.steven.lab", "x.lab"), "sip.x.lab");
        assert_eq!(
            suggested_target("Apex.steven.lab.", "apex.steven.lab"),
            "sip.apex.steven.lab"
        );
        assert_eq!(
            rule1_why("apex.steven.lab", "apex.steven.lab"),
            "it is the domain itself (the apex), which this Edge is configured to refuse (policy.accept_apex_target = false)"
        );
    }
}
