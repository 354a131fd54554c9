//! The request → facts → rules → decision step of the inbound Edge: one [`Outcome`] per request the Edge answers
//! itself, from which the response, the log record and the decision event are all taken.
//!
//! The federation rules run once per request (`rules::inbound::inbound`, then `Pending::decide` with the SRV
//! answer); findings before them (the request rate, the hop count) take the same path without a record. Once
//! they pass, the partner step ([`partner_step`]): the `ms-edge-proxy-message-trust` the request would carry
//! inward (in the event), the discovered-partner limits with the Edge's shared counts (`partners`), and the
//! verification level's delivery rule against the user's contacts; a refusal there is a finding like any other.

use std::net::SocketAddr;

use bytes::Bytes;
use tokio::time::Instant;

use super::Edge;
use super::respond::{Responder, text};
use crate::diagnostics::{DecisionEvent, EventContext};
use crate::pki::CertFacts;
use crate::rules::{self, Decision, DomainName, Finding, InboundFacts, Step, Verdict};
use crate::sip::Message;

/// One decision, whole: the verdict (its finding, diagnostic and record), the response it sends (none for an
/// acceptance: the users answer), and its event.
#[derive(Debug)]
pub(super) struct Outcome {
    /// The decision and what is rendered from it.
    pub(super) verdict: Verdict,
    /// The Edge's own answer, for a refusal.
    pub(super) response: Option<Bytes>,
    /// The decision event (an acceptance's status is filled in with the users' answer).
    pub(super) event: DecisionEvent,
}

/// What the Edge knows about the connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer<'a> {
    /// The peer's address.
    pub(super) remote: SocketAddr,
    /// The Edge's address on the connection.
    pub(super) local: SocketAddr,
    /// The peer's client certificate, if it presented one.
    pub(super) cert: Option<&'a CertFacts>,
    /// Its display name.
    pub(super) cert_name: Option<&'a str>,
}

/// The sender domain of a request: first `sip:`/`sips:` P-Asserted-Identity host, else From host.
fn sender_domain(m: &Message) -> Option<DomainName> {
    let pai_host = m.p_asserted_identities().ok().and_then(|p| {
        p.into_iter()
            .find(|n| matches!(n.uri.scheme.as_str(), "sip" | "sips"))
            .map(|n| n.uri.host())
    });
    let from_host = m.from().ok().map(|f| f.uri.host());
    rules::sender_domain(pai_host.as_deref(), from_host.as_deref())
}

/// The request side of the decision event.
pub(super) fn context(m: &Message, method: &str, call_id: &str, peer: Peer<'_>) -> EventContext {
    EventContext {
        time: time::OffsetDateTime::now_utc(),
        remote: super::remote_text(peer.remote),
        peer_cert: peer.cert_name.map(str::to_owned),
        method: method.to_owned(),
        call_id: call_id.to_owned(),
        domain: sender_domain(m).map(|d| d.to_string()),
    }
}

/// The facts of `m` the rules read.
fn facts<'a>(m: &Message, ctx: &EventContext, peer: Peer<'a>) -> InboundFacts<'a> {
    let cseq = m
        .cseq()
        .map(|c| format!("{} {}", c.seq, c.method))
        .unwrap_or_default();
    let name = peer
        .cert_name
        .map_or_else(|| peer.remote.ip().to_string(), str::to_owned);
    InboundFacts {
        method: ctx.method.clone(),
        request_uri: text(m.request_uri_raw().unwrap_or_default()),
        call_id: ctx.call_id.clone(),
        cseq,
        start_line: text(m.start_line()),
        sender_domain: ctx.domain.as_deref().map(DomainName::new),
        peer: format!("{name}:{}", peer.remote.port()),
        srv: None,
        cert: peer.cert,
        request_host: m.request_uri().map(|u| u.host()).unwrap_or_default(),
        local_ip: Some(peer.local.ip()),
    }
}

/// The outcome of a verdict on `m`: a refusal's response through the one response path, and the event.
fn outcome(verdict: Verdict, m: &Message, ctx: EventContext, out: &mut Responder) -> Outcome {
    let response = verdict.finding().map(|f| out.refuse(Instant::now(), m, f));
    Outcome {
        event: verdict.to_event(ctx),
        verdict,
        response,
    }
}

/// A finding before the federation rules (the request rate, the hop count): answered, with no record.
pub(super) fn before_rules(
    edge: &Edge,
    m: &Message,
    f: Finding,
    ctx: EventContext,
    out: &mut Responder,
) -> Outcome {
    outcome(Verdict::refuse(f, &edge.policy.edge_fqdn), m, ctx, out)
}

/// The federation rules for `m`, with the SRV lookup between their two phases.
pub(super) async fn federation(
    edge: &Edge,
    m: &Message,
    ctx: EventContext,
    peer: Peer<'_>,
    out: &mut Responder,
) -> Outcome {
    let facts = facts(m, &ctx, peer);
    let policy = &edge.policy;
    let decision = match rules::inbound::inbound(policy, &facts) {
        Step::Decided(d) => d,
        Step::Lookup(pending) => {
            let name = pending.srv_name();
            let answer = edge.lookup.srv(&name).await;
            match &answer {
                Ok(records) => {
                    let list: Vec<String> = records.iter().map(rules::srv::srv_text).collect();
                    tracing::debug!(srv = %name, "SRV lookup: {}", list.join(", "));
                }
                Err(failure) => tracing::debug!(srv = %name, %failure, "SRV lookup failed"),
            }
            pending.decide(policy, &facts, &answer)
        }
    };
    let mut trust = None;
    let decision = match decision {
        Decision::Accept { target } => {
            tracing::debug!(matched_target = %target, "federation rules pass");
            let (d, t) = partner_step(edge, m, &facts, peer, target);
            trust = t;
            d
        }
        refused => refused,
    };
    let verdict = Verdict::new(decision, &policy.edge_fqdn, Some(&facts.request_line()));
    let mut outcome = outcome(verdict, m, ctx, out);
    if let Some(t) = trust {
        outcome.event.message_trust = Some(t.render());
        outcome.event.partner_type = Some(t.partner.name());
    }
    outcome
}

/// The sender's address (`user@host`): the first `sip:`/`sips:` P-Asserted-Identity, else From.
fn sender_address(m: &Message) -> Option<String> {
    let pai = m.p_asserted_identities().ok().and_then(|p| {
        p.into_iter()
            .find(|n| matches!(n.uri.scheme.as_str(), "sip" | "sips"))
            .map(|n| n.uri)
    });
    let uri = pai.or_else(|| m.from().ok().map(|f| f.uri))?;
    Some(match uri.user.as_deref() {
        Some(u) if !u.is_empty() => format!("{u}@{}", uri.host()),
        _ => uri.host(),
    })
}

/// After the federation rules passed: the trust stamped inward, the discovered-partner limits, the
/// verification level. Returns the decision and the trust.
fn partner_step(
    edge: &Edge,
    m: &Message,
    facts: &InboundFacts<'_>,
    peer: Peer<'_>,
    target: DomainName,
) -> (Decision, Option<rules::MessageTrust>) {
    let policy = &edge.policy;
    let Some(domain) = facts.sender_domain.as_ref() else {
        return (Decision::Accept { target }, None);
    };
    let Some(trust) = policy.message_trust(domain, &target) else {
        return (Decision::Accept { target }, None);
    };
    let uri = m.request_uri().ok();
    let user = uri
        .as_ref()
        .and_then(|u| u.user.as_deref())
        .filter(|u| !u.is_empty())
        .map(str::to_ascii_lowercase);
    if trust.partner == rules::PartnerType::Discovered {
        let counted = rules::partners::counts_toward_partner_rate(&facts.method);
        // The lab defaults count (the watch list) without enforcing: see `Policy::enforce_partner_limits`.
        let enforce = policy.enforce_partner_limits;
        let seen =
            edge.partners
                .observe(domain, user.as_deref(), counted, Instant::now(), |counts| {
                    let limits = &policy.discovered;
                    enforce
                        .then(|| {
                            rules::partners::discovered_partner_limit(
                                limits,
                                domain,
                                user.as_deref(),
                                counts,
                                &trust,
                            )
                        })
                        .flatten()
                });
        if let Some((reason, entry)) = seen.change
            && enforce
        {
            edge.publish_watch(&crate::diagnostics::WatchEvent::new(reason, vec![entry]));
        }
        if let Some(f) = seen.finding {
            return (Decision::Refuse(f), Some(trust));
        }
    }
    if !trust.verified
        && let (Some(uri), Some(user)) = (&uri, &user)
        && let Some(u) =
            super::uas::find_user(&edge.config.users, uri, policy, Some(peer.local.ip()))
    {
        let sender = sender_address(m).unwrap_or_default();
        if let Some(f) =
            rules::partners::unverified_delivery(policy, &trust, domain, &sender, user, &u.contacts)
        {
            return (Decision::Refuse(f), Some(trust));
        }
    }
    (Decision::Accept { target }, Some(trust))
}
