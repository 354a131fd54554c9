//! The `check` lines of the certificate findings: the Edge's own certificate, the peer's as server (names,
//! EKUs, validity, chain) and as the client certificate the Edge validates inbound.

use super::words::{
    CLIENT_AUTH_REMOVAL, PEER_CLIENT_AUTH_FIX, chain_phrase, chain_words, date, edge_answer,
    name_match_text,
};
use super::{Finding, ValidityState};
use crate::pki::{CertFacts, ChainStatus, NO_NAME};
use crate::report::{Line, Status};
use crate::rules::{DomainName, NameMatch, Role};

fn line(status: Status, rule: &str, detail: impl Into<String>, fix: Option<String>) -> Line {
    Line::new(status, rule, detail, fix)
}

/// The `check` lines of a certificate finding (the others are `check.rs`'s).
pub(super) fn lines(f: &Finding) -> Vec<Line> {
    use Finding as F;
    let status = f.severity();
    let rule = f.rule();
    let one = |detail: String, fix: Option<String>| vec![line(status, rule, detail, fix)];
    match f {
            F::EdgeCertClientAuth { cert, allowed } => {
                if *allowed {
                    one(
                        format!(
                            "Edge certificate {cert} can act as TLS client certificate (Client Authentication EKU or no EKU extension)"
                        ),
                        None,
                    )
                } else {
                    one(
                        format!(
                            "{CLIENT_AUTH_REMOVAL}: the Edge certificate {cert} has no Client Authentication EKU, and the Edge presents it as TLS client certificate when it calls the Expressway-E"
                        ),
                        Some(format!(
                            "reissue {cert} with both Server and Client Authentication EKUs (a private CA, or a CA that still issues clientAuth)"
                        )),
                    )
                }
            }
            F::CertPresented {
                target,
                subject,
                issuer,
                san,
            } => {
                let subject = if subject.is_empty() {
                    "(empty subject)"
                } else {
                    subject
                };
                one(
                    format!(
                        "{target} presents {subject} issued by {issuer}; SAN: {}",
                        san_text(san.as_deref())
                    ),
                    None,
                )
            }
            F::NoPeerCertificate { target, .. } => one(
                format!("{target} presented no readable certificate"),
                Some(format!(
                    "install a server certificate for {target} on the Expressway-E"
                )),
            ),
            F::NameMatches { target, how } => one(
                format!("{} (Rule 2, both directions)", name_match_text(how, target)),
                None,
            ),
            F::NameMismatch { target, cert, how } => {
                let detail = match how {
                    NameMatch::Absent => format!(
                        "{target} is not in the certificate of {} (SAN: {}); the Edge answers {}",
                        cert.display_name(),
                        san_text(cert.san_dns.as_deref()),
                        edge_answer(f)
                    ),
                    other => name_match_text(other, target),
                };
                one(
                    detail,
                    Some(format!("add {target} to the certificate's SAN")),
                )
            }
            F::NoSan { names } => one(
                "the certificate has no SAN extension: the Edge falls back to the subject CN, Expressway and modern clients do not".into(),
                Some(format!("reissue the certificate with {names} in the SAN")),
            ),
            F::WildcardName { names } => one(
                "the certificate carries a wildcard name: the Skype for Business Edge does not accept wildcard matches, and Expressway does not support wildcard certificates".into(),
                Some(format!("name {names} explicitly in the SAN")),
            ),
            F::Eku {
                eku,
                client_required,
            } => {
                let (server, client) = crate::rules::cert::eku_pair(eku.as_ref());
                let server_line = if server {
                    line(
                        Status::Pass,
                        rule,
                        "EKU: Server Authentication allowed (calls from the Edge)",
                        None,
                    )
                } else {
                    line(
                        Status::Fail,
                        rule,
                        "EKU: no Server Authentication; the Edge refuses the certificate on its calls to the peer",
                        Some("reissue the certificate with the Server Authentication EKU".into()),
                    )
                };
                let client_line = if client {
                    line(
                        Status::Pass,
                        rule,
                        "EKU: Client Authentication allowed (calls to the Edge, mutual TLS)",
                        None,
                    )
                } else {
                    line(
                        if *client_required {
                            Status::Fail
                        } else {
                            Status::Warn
                        },
                        rule,
                        format!(
                            "{CLIENT_AUTH_REMOVAL}: this certificate has Server Authentication but no Client Authentication EKU, and the Expressway-E presents it as its TLS client certificate when it calls the Edge (federation is mutual TLS)"
                        ),
                        Some(PEER_CLIENT_AUTH_FIX.to_string()),
                    )
                };
                vec![server_line, client_line]
            }
            F::Validity {
                state,
                not_before,
                not_after,
                days_left,
                target,
            } => {
                let target = target.as_ref().map_or("the peer", DomainName::as_str);
                match state {
                    ValidityState::NotYetValid => one(
                        format!("the certificate is not valid before {}", date(*not_before)),
                        Some("check the clocks, or reissue the certificate".to_string()),
                    ),
                    ValidityState::Expired => {
                        let refused = F::ChainRefused {
                            target: None,
                            cert: None,
                            chain: ChainStatus::Expired,
                            role: Role::Server,
                            anchors: None,
                        };
                        one(
                            format!(
                                "the certificate expired on {}; the Edge answers {}",
                                date(*not_after),
                                edge_answer(&refused)
                            ),
                            Some(format!("renew the certificate of {target}")),
                        )
                    }
                    ValidityState::Expiring => one(
                        format!(
                            "the certificate expires on {} ({days_left} days left)",
                            date(*not_after)
                        ),
                        Some(format!(
                            "renew the certificate of {target} before {}",
                            date(*not_after)
                        )),
                    ),
                    ValidityState::Valid => one(
                        format!(
                            "valid until {} ({days_left} days left)",
                            date(*not_after)
                        ),
                        None,
                    ),
                }
            }
            F::ChainTrusted { target, .. } => one(
                format!(
                    "the certificate chain of {} leads to a CA the Edge trusts",
                    target_text(target.as_ref())
                ),
                None,
            ),
            F::ChainRefused {
                target,
                cert,
                chain,
                role,
                ..
            } => chain_lines(f, target.as_ref(), cert.as_deref(), chain, *role),
            F::ClientAuthEkuMissing { cert, target, .. } => one(
                format!(
                    "{CLIENT_AUTH_REMOVAL}: {cert} has no Client Authentication EKU, so the Edge refuses it as the Expressway-E's client certificate and calls from {} to the Edge fail",
                    target_text(target.as_ref())
                ),
                Some(PEER_CLIENT_AUTH_FIX.to_string()),
            ),
            F::ClientCertAccepted { cert } => one(
                format!(
                    "{cert} passes the Edge's client-certificate validation (trusted chain, valid, Client Authentication allowed): calls from the Expressway-E can be accepted"
                ),
                None,
            ),
        other => {
            let x = other.explain();
            one(x.problem, x.fix)
        }
    }
}

fn san_text(san: Option<&[String]>) -> String {
    match san {
        Some(s) => s.join(", "),
        None => "(no SAN extension)".to_string(),
    }
}

fn target_text(target: Option<&DomainName>) -> &str {
    target.map_or("the peer", DomainName::as_str)
}

/// The chain lines: as the server certificate the Edge validates when it calls (`cert`), or as the client
/// certificate it validates when the peer calls (`inbound`).
fn chain_lines(
    f: &Finding,
    target: Option<&DomainName>,
    cert: Option<&CertFacts>,
    chain: &ChainStatus,
    role: Role,
) -> Vec<Line> {
    let status = f.severity();
    let rule = f.rule();
    let t = target_text(target);
    let name = cert.map_or_else(|| NO_NAME.to_owned(), CertFacts::display_name);
    let issuer = cert.map(|c| c.issuer.as_str()).unwrap_or_default();
    let reissue = Some("reissue the certificate from a CA the Edge trusts".to_string());
    let (detail, fix) = match (role, chain) {
        (_, ChainStatus::Trusted) | (Role::Client, ChainStatus::Missing) => return Vec::new(),
        (Role::Server, ChainStatus::UntrustedRoot) => (
            format!(
                "the certificate chain of {t} (issuer {issuer}) does not lead to a CA the Edge trusts; the Edge answers {}",
                edge_answer(f)
            ),
            Some(format!(
                "import the CA of {issuer} into the Edge's trusted store (edgesim: --ca / tls.ca), or use a public CA certificate; send the intermediate certificates in the chain"
            )),
        ),
        (Role::Server, other) => (
            format!(
                "the certificate chain of {t} is not usable: {}",
                chain_words(other).0
            ),
            reissue,
        ),
        (Role::Client, other) => {
            let reset = format!(
                "the Edge resets the TLS handshake when the Expressway-E calls it with {name} as client certificate"
            );
            match other {
                ChainStatus::UntrustedRoot => (
                    format!(
                        "{reset}: its chain (issuer {issuer}) does not lead to a CA the Edge trusts"
                    ),
                    Some(format!(
                        "import the CA of {issuer} into the Edge's trusted store (edgesim: --ca / tls.ca, or --system-roots / tls.use_system_roots for a public CA), and make the Expressway-E send its intermediate certificates"
                    )),
                ),
                ChainStatus::Expired | ChainStatus::NotYetValid => {
                    let (nb, na) = cert.map_or((0, 0), |c| (c.not_before, c.not_after));
                    (
                        format!(
                            "{reset}: it is outside its validity period ({} to {})",
                            date(nb),
                            date(na)
                        ),
                        Some(format!(
                            "renew the certificate of {t} (the Expressway-E uses it as client certificate too), and check both clocks"
                        )),
                    )
                }
                other => (format!("{reset}: {}", chain_phrase(other)), reissue),
            }
        }
    };
    vec![line(status, rule, detail, fix)]
}
