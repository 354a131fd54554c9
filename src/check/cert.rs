//! The certificate lines of the report: the Edge's own, the peer's as server (names, EKUs, validity, chain) and
//! as the client certificate the Edge validates inbound, all judged by the rulebook at once.

use rustls_pki_types::UnixTime;

use super::Report;
use crate::outbound::OutboundContext;
use crate::pki::{CertFacts, Usage, verify_chain};
use crate::rules::{CertJudgement, DomainName, cert, judge_certificate};

pub(super) fn check_edge_cert(ctx: &OutboundContext, r: &mut Report) {
    if let Some(facts) = ctx
        .identity
        .chain
        .first()
        .and_then(|d| CertFacts::from_der(d).ok())
    {
        r.push(&cert::edge_cert(&facts));
    }
}

/// Every finding for the peer's certificate: as the server certificate of `target` (what the Edge checks when
/// it calls), then as the client certificate the peer presents when it calls the Edge (the same certificate).
pub(super) fn check_certificate(
    ctx: &OutboundContext,
    r: &mut Report,
    target: &DomainName,
    chain: &[rustls_pki_types::CertificateDer<'static>],
) {
    let Some(facts) = chain.first().and_then(|d| CertFacts::from_der(d).ok()) else {
        r.push(&cert::absent(target));
        return;
    };
    let now = UnixTime::now();
    // Chain and validity only, as the Edge's handshake judges a client certificate; the EKUs are their own rule.
    let status = verify_chain(chain, &ctx.anchors, Usage::Any, now);
    let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    r.push(&cert::presented(&facts, target));
    let CertJudgement {
        names,
        san,
        wildcard,
        eku,
        validity,
        chain: chain_finding,
    } = judge_certificate(
        &ctx.policy,
        std::slice::from_ref(target),
        &facts,
        Some((&status, None)),
        secs,
    );
    for f in names.iter().chain(&san).chain(&wildcard) {
        r.push(f);
    }
    r.push(&eku);
    r.push(&validity);
    if let Some(f) = &chain_finding {
        r.push(f);
    }
    // The other direction: the Expressway-E presents the same certificate as TLS client when it calls the Edge.
    r.push(&cert::as_client(&ctx.policy, target, &facts, &status));
}
