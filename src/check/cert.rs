//! The certificate lines of the report: the Edge's own, the peer's as server (names, EKUs, validity,
//! chain) and as the client certificate the Edge validates inbound.

use rustls_pki_types::UnixTime;

use super::{Report, Status};
use crate::outbound::OutboundContext;
use crate::pki::{CertFacts, ChainStatus, Usage, verify_chain};
use crate::rules::{NameMatch, names_match};

/// The opening of every line about a missing Client Authentication EKU (one wording for all of them).
const CLIENT_AUTH_REMOVAL: &str = "Public CAs stop issuing clientAuth (2026–2027; Cisco FN74362)";

/// The fix for a peer certificate without the Client Authentication EKU.
const PEER_CLIENT_AUTH_FIX: &str = "reissue it with both Server and Client Authentication EKUs (a private CA, or a CA that still issues clientAuth), or on Expressway X15.5+ install a separate client certificate";

fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| unix.to_string())
}

pub(super) fn check_edge_cert(ctx: &OutboundContext, r: &mut Report) {
    let Some(facts) = ctx
        .identity
        .chain
        .first()
        .and_then(|d| CertFacts::from_der(d).ok())
    else {
        return;
    };
    let name = facts.display_name();
    if facts.allows_client_auth() {
        r.pass(
            "edge-cert",
            format!("Edge certificate {name} can act as TLS client certificate (Client Authentication EKU or no EKU extension)"),
        );
    } else {
        r.push(
            "edge-cert",
            Status::Warn,
            format!(
                "{CLIENT_AUTH_REMOVAL}: the Edge certificate {name} has no Client Authentication EKU, and the Edge presents it as TLS client certificate when it calls the Expressway-E"
            ),
            Some(format!(
                "reissue {name} with both Server and Client Authentication EKUs (a private CA, or a CA that still issues clientAuth)"
            )),
        );
    }
}

pub(super) fn check_certificate(
    ctx: &OutboundContext,
    r: &mut Report,
    target: &str,
    chain: &[rustls_pki_types::CertificateDer<'static>],
) {
    let Some(facts) = chain.first().and_then(|d| CertFacts::from_der(d).ok()) else {
        r.push(
            "cert",
            Status::Fail,
            format!("{target} presented no readable certificate"),
            Some(format!(
                "install a server certificate for {target} on the Expressway-E"
            )),
        );
        return;
    };
    let name = facts.display_name();
    let san = match &facts.san_dns {
        Some(s) => s.join(", "),
        None => "(no SAN extension)".to_string(),
    };
    r.pass(
        "cert",
        format!(
            "{target} presents {} issued by {}; SAN: {san}",
            if facts.subject.is_empty() {
                "(empty subject)".to_string()
            } else {
                facts.subject.clone()
            },
            facts.issuer
        ),
    );

    // Rule 2 (both directions: the same certificate is the Expressway's TLS client certificate toward the Edge).
    let m = names_match(&facts, target, ctx.policy.allow_wildcard);
    if m.passes() {
        r.pass(
            "cert",
            format!("{} (Rule 2, both directions)", m.explain(target)),
        );
    } else {
        let text = match &m {
            NameMatch::Absent => format!(
                "{target} is not in the certificate of {name} (SAN: {san}); the Edge answers 504 with ms-diagnostics 1010 SEC_E_WRONG_PRINCIPAL"
            ),
            other => other.explain(target),
        };
        r.push(
            "cert",
            Status::Fail,
            text,
            Some(format!("add {target} to the certificate's SAN")),
        );
    }
    if facts.san_dns.is_none() {
        r.push(
            "cert",
            Status::Warn,
            "the certificate has no SAN extension: the Edge falls back to the subject CN, Expressway and modern clients do not",
            Some(format!("reissue the certificate with {target} in the SAN")),
        );
    }
    if facts.has_wildcard() {
        r.push(
            "cert",
            Status::Warn,
            "the certificate carries a wildcard name: the Skype for Business Edge does not accept wildcard matches, and Expressway does not support wildcard certificates",
            Some(format!("name {target} explicitly in the SAN")),
        );
    }

    // EKUs.
    if facts.allows_server_auth() {
        r.pass(
            "cert",
            "EKU: Server Authentication allowed (calls from the Edge)",
        );
    } else {
        r.push(
            "cert",
            Status::Fail,
            "EKU: no Server Authentication; the Edge refuses the certificate on its calls to the peer",
            Some("reissue the certificate with the Server Authentication EKU".to_string()),
        );
    }
    if facts.allows_client_auth() {
        r.pass(
            "cert",
            "EKU: Client Authentication allowed (calls to the Edge, mutual TLS)",
        );
    } else {
        let status = if ctx.policy.require_client_auth_eku {
            Status::Fail
        } else {
            Status::Warn
        };
        r.push(
            "cert",
            status,
            format!("{CLIENT_AUTH_REMOVAL}: this certificate has Server Authentication but no Client Authentication EKU, and the Expressway-E presents it as its TLS client certificate when it calls the Edge (federation is mutual TLS)"),
            Some(PEER_CLIENT_AUTH_FIX.to_string()),
        );
    }

    // Validity.
    let now = UnixTime::now().as_secs() as i64;
    let days = facts.days_left(now);
    if now < facts.not_before {
        r.push(
            "cert",
            Status::Fail,
            format!(
                "the certificate is not valid before {}",
                date(facts.not_before)
            ),
            Some("check the clocks, or reissue the certificate".to_string()),
        );
    } else if days < 0 || now > facts.not_after {
        r.push(
            "cert",
            Status::Fail,
            format!("the certificate expired on {}; the Edge answers 504 with ms-diagnostics 1010 SEC_E_CERT_EXPIRED", date(facts.not_after)),
            Some(format!("renew the certificate of {target}")),
        );
    } else if days < 30 {
        r.push(
            "cert",
            Status::Warn,
            format!(
                "the certificate expires on {} ({days} days left)",
                date(facts.not_after)
            ),
            Some(format!(
                "renew the certificate of {target} before {}",
                date(facts.not_after)
            )),
        );
    } else {
        r.pass(
            "cert",
            format!("valid until {} ({days} days left)", date(facts.not_after)),
        );
    }

    // Chain to the Edge's trust store.
    match verify_chain(chain, &ctx.anchors, Usage::Any, UnixTime::now()) {
        ChainStatus::Trusted => r.pass("cert", format!("the chain of {name} leads to a CA the Edge trusts")),
        ChainStatus::UntrustedRoot => r.push(
            "cert",
            Status::Fail,
            format!(
                "the chain of {name} (issuer {}) does not lead to a CA the Edge trusts; the Edge answers 504 with ms-diagnostics 1010 SEC_E_UNTRUSTED_ROOT",
                facts.issuer
            ),
            Some(format!(
                "import the CA of {} into the Edge's trusted store (edgesim: --ca / tls.ca), or use a public CA certificate; send the intermediate certificates in the chain",
                facts.issuer
            )),
        ),
        ChainStatus::Expired | ChainStatus::NotYetValid => {}
        other => r.push(
            "cert",
            Status::Fail,
            format!("the chain of {name} is not usable: {}", other.problem()),
            Some("reissue the certificate from a CA the Edge trusts".to_string()),
        ),
    }
}

/// The other direction: the Expressway-E presents the same certificate as TLS client when it calls the Edge,
/// and the Edge validates it as a client certificate (chain, validity, Client Authentication EKU).
pub(super) fn check_inbound_chain(
    ctx: &OutboundContext,
    r: &mut Report,
    target: &str,
    chain: &[rustls_pki_types::CertificateDer<'static>],
) {
    let Some(facts) = chain.first().and_then(|d| CertFacts::from_der(d).ok()) else {
        return; // check_certificate already said so
    };
    let name = facts.display_name();
    let reset = format!(
        "the Edge resets the TLS handshake when the Expressway-E calls it with {name} as client certificate"
    );
    match verify_chain(chain, &ctx.anchors, Usage::ClientAuth, UnixTime::now()) {
        ChainStatus::Trusted => r.pass(
            "inbound",
            format!("{name} passes the Edge's client-certificate validation (trusted chain, valid, Client Authentication allowed): calls from the Expressway-E can be accepted"),
        ),
        ChainStatus::WrongUsage => {
            // The same switch as the Edge's own inbound rule: edgesim can be told to let it through.
            let status = if ctx.policy.require_client_auth_eku {
                Status::Fail
            } else {
                Status::Warn
            };
            r.push(
                "inbound",
                status,
                format!("{CLIENT_AUTH_REMOVAL}: {name} has no Client Authentication EKU, so the Edge refuses it as the Expressway-E's client certificate and calls from {target} to the Edge fail"),
                Some(PEER_CLIENT_AUTH_FIX.to_string()),
            );
        }
        ChainStatus::UntrustedRoot => r.push(
            "inbound",
            Status::Fail,
            format!("{reset}: its chain (issuer {}) does not lead to a CA the Edge trusts", facts.issuer),
            Some(format!(
                "import the CA of {} into the Edge's trusted store (edgesim: --ca / tls.ca, or --system-roots / tls.use_system_roots for a public CA), and make the Expressway-E send its intermediate certificates",
                facts.issuer
            )),
        ),
        ChainStatus::Expired | ChainStatus::NotYetValid => r.push(
            "inbound",
            Status::Fail,
            format!(
                "{reset}: it is outside its validity period ({} to {})",
                date(facts.not_before),
                date(facts.not_after)
            ),
            Some(format!(
                "renew the certificate of {target} (the Expressway-E uses it as client certificate too), and check both clocks"
            )),
        ),
        ChainStatus::Missing => {}
        ChainStatus::Invalid(why) => r.push(
            "inbound",
            Status::Fail,
            format!("{reset}: {why}"),
            Some("reissue the certificate from a CA the Edge trusts".to_string()),
        ),
    }
}
