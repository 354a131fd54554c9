//! `edgesim check`: is a domain ready to federate with a Skype for Business / Lync Edge, both directions?
//!
//! DNS SRV, Rule 1 per target, A/AAAA, TCP, TLS 1.2 and 1.3 separately, the certificate (names, SAN vs CN,
//! wildcard, EKUs, validity, chain), and a SIP OPTIONS ping. This module gathers the facts, asks the rulebook
//! ([`crate::rules`]) and prints every finding it returns as [`Finding::check_lines`]: PASS, WARN or FAIL with
//! the fix, and the status and codes the Edge itself answers with.
//!
//! Choices: a DNS server that fails (SERVFAIL, REFUSED, no answer) is reported as that, naming the server,
//! never as a missing record; an SRV target of `.` (RFC 2782) alone is a FAIL (no usable SRV, 1008), next to
//! other records a WARN; an address of the target that does not accept TCP while another does is a WARN
//! naming it (the Edge tries the addresses in order and connects through the one that answers), all
//! addresses failing is a FAIL. TLS likewise: probed on the addresses that accepted TCP, in order, until one
//! completes (as `call` moves on past a member that refuses TLS), each line naming its address when more than
//! one was probed, the failures before the one that completed a WARN.

use std::net::IpAddr;

use serde::Serialize;

use crate::outbound::{self, CallMethod, CallRequest, OutboundContext};
use crate::rules::{self, DomainName, Finding};

mod cert;
mod dns;
mod federated_partner;
mod net;

pub use federated_partner::{CmdletReport, test_cs_federated_partner, timespan};

/// PASS, WARN or FAIL: the shared `--json` vocabulary.
pub use crate::report::Status;

/// One line of the report: `rule` is what was checked (`dns-srv`, `rule1`, `dns-a`, `tcp`, `tls`, `cert`,
/// `inbound`, `sip`, `edge-cert`), `detail` what was found, `fix` the concrete fix for WARN and FAIL.
pub type CheckLine = crate::report::Line;

/// The readiness report for one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The domain checked.
    pub domain: String,
    /// The lines in check order.
    pub lines: Vec<CheckLine>,
}

impl Report {
    /// Adds the lines of a finding.
    fn push(&mut self, finding: &Finding) {
        self.lines.extend(finding.check_lines());
    }

    /// True when any line is FAIL.
    pub fn has_fail(&self) -> bool {
        self.lines.iter().any(|l| l.status == Status::Fail)
    }

    /// Lines of one rule (the area checked: `cert`, `tls` …).
    pub fn area(&self, rule: &str) -> Vec<&CheckLine> {
        self.lines.iter().filter(|l| l.rule == rule).collect()
    }

    /// The worst status of the lines.
    pub fn status(&self) -> Status {
        crate::report::worst(&self.lines)
    }

    /// The report for people: one line each, the fix indented under it.
    pub fn render(&self) -> String {
        let mut out = format!(
            "Federation readiness of {} with a Skype for Business Edge\n",
            self.domain
        );
        for l in &self.lines {
            out.push_str(&format!(
                "{} {:<9} {}\n",
                l.status.as_str(),
                l.rule,
                l.detail
            ));
            if let Some(fix) = &l.fix {
                out.push_str(&format!("     {:<9} fix: {fix}\n", ""));
            }
        }
        let count = |s: Status| self.lines.iter().filter(|l| l.status == s).count();
        out.push_str(&format!(
            "{} FAIL, {} WARN\n",
            count(Status::Fail),
            count(Status::Warn)
        ));
        out
    }
}

/// Runs every check for `domain` and returns the report.
pub async fn check(ctx: &OutboundContext, domain: &str) -> Report {
    let domain = DomainName::new(domain.trim());
    let mut r = Report {
        domain: domain.to_string(),
        lines: Vec::new(),
    };
    cert::check_edge_cert(ctx, &mut r);
    let Some(records) = dns::srv_records(ctx, &mut r, &domain).await else {
        return r;
    };
    let Some(chosen) = dns::rule1_lines(ctx, &mut r, &domain, &records) else {
        return r;
    };
    let chosen_addrs = dns::address_lines(ctx, &mut r, &domain, &records, &chosen).await;
    if chosen_addrs.is_empty() {
        return r;
    }

    let target = DomainName::new(&chosen.target);
    let port = chosen.port;
    let live = net::tcp_lines(ctx, &mut r, &target, port, &chosen_addrs).await;
    if live.is_empty() {
        return r;
    }
    let Some(chain) = net::tls_lines(ctx, &mut r, &live, port, &target).await else {
        return r;
    };
    cert::check_certificate(ctx, &mut r, &target, &chain);

    // SIP OPTIONS over a fresh connection, as the Edge would send it.
    options_ping(ctx, &mut r, &domain, &target, port, &chosen_addrs).await;
    r
}

async fn options_ping(
    ctx: &OutboundContext,
    r: &mut Report,
    domain: &DomainName,
    target: &DomainName,
    port: u16,
    addrs: &[IpAddr],
) {
    let req = CallRequest {
        target: format!("sip:Options_User@{domain}"),
        from: format!("sip:edgesim@{}", ctx.policy.edge_domain),
        method: CallMethod::Options,
        hold_ms: 0,
        route: None,
        im_text: None,
    };
    let out = outbound::call_to(ctx, &req, target.as_str(), port, addrs.to_vec()).await;
    r.push(&rules::outbound::options_ping(
        &req.target,
        out.finding,
        target,
        port,
    ));
}
