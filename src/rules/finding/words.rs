//! The wording of facts that several findings (and audiences) share: what a certificate names, chain problems,
//! name matches, TLS versions, dates, and how the Edge answers (built from a finding's own status and codes, so
//! a `check` line quotes exactly what the Edge sends).

use super::Finding;
use crate::pki::{CertFacts, ChainProblem, ChainStatus, MAX_INTERMEDIATES};
use crate::rules::{DomainName, NameMatch};

/// Retry-After of a request over the rate: the window is one second.
pub(crate) const RATE_RETRY_AFTER: u32 = 1;
/// Retry-After when the connection holds too many calls: a few seconds for calls to end.
pub(crate) const CALLS_RETRY_AFTER: u32 = 5;
/// Retry-After of a pool member out of service (fault mode `503`): long enough that a peer that honours it
/// moves to another member rather than hammering this one.
pub(crate) const POOL_RETRY_AFTER: u32 = 30;

/// The opening of every line about a missing Client Authentication EKU (one wording for all of them).
pub(super) const CLIENT_AUTH_REMOVAL: &str =
    "Public CAs stop issuing clientAuth (2026–2027; Cisco FN74362)";

/// The fix for a peer certificate without the Client Authentication EKU.
pub(super) const PEER_CLIENT_AUTH_FIX: &str = "reissue it with both Server and Client Authentication EKUs (a private CA, or a CA that still issues clientAuth), or on Expressway X15.5+ install a separate client certificate";

/// How the Edge answers `f`: `504 with ms-diagnostics 1010 SEC_E_WRONG_PRINCIPAL` (the HRESULT or Winsock
/// symbol when the diagnostic carries one).
pub(super) fn edge_answer(f: &Finding) -> String {
    let status = f.sip().map(|(s, _)| s.to_string()).unwrap_or_default();
    format!("{status} with ms-diagnostics {}", diagnostic_words(f))
}

/// The diagnostic of `f` as people quote it: `1010 SEC_E_WRONG_PRINCIPAL`, `1047 WSAECONNRESET`, `1008`.
pub(super) fn diagnostic_words(f: &Finding) -> String {
    let code = f
        .diagnostic_code()
        .map(|c| c.to_string())
        .unwrap_or_default();
    match (f.hresult(), f.winsock()) {
        (Some(h), _) => format!("{code} {}", h.symbol()),
        (None, Some(w)) => format!("{code} {}", w.symbol()),
        (None, None) => code,
    }
}

/// "a, b and c".
fn list(items: &[String]) -> String {
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => items.join(""),
    }
}

/// What the certificate names, as the Edge reads it (Rule 2 failed for `target`).
pub(super) fn cert_names(target: &DomainName, cert: &CertFacts) -> String {
    let cn_ignored = if cert
        .common_names
        .iter()
        .any(|cn| DomainName::new(cn) == *target)
    {
        format!(
            "; its CN is {target}, but the Edge ignores the CN of a certificate with a SAN extension"
        )
    } else {
        String::new()
    };
    match (&cert.san_dns, cert.common_name()) {
        (Some(san), _) if !san.is_empty() => {
            format!("its SAN lists {}{cn_ignored}", san.join(", "))
        }
        (Some(_), _) => {
            let ips = match cert.san_ip.as_slice() {
                [] => String::new(),
                [one] => format!(", only the IP address {one}"),
                many => format!(", only the IP addresses {}", list(many)),
            };
            format!(
                "its SAN extension names no DNS name{ips}, and the Edge matches DNS names only{cn_ignored}"
            )
        }
        (None, Some(cn)) if cert.common_names.len() > 1 => format!(
            "it has no SAN extension, and its most specific CN (the last of {}), the only one the Edge reads, is {cn}",
            cert.common_names.join(", ")
        ),
        (None, Some(cn)) => format!("it has no SAN extension and its CN is {cn}"),
        (None, None) => "it has no SAN extension and no CN".to_owned(),
    }
}

/// A signature that does not verify against the trusted CA of the same name: say so, with the issuer's name,
/// since "issued by CN=X" next to a trusted "CN=X" is otherwise baffling.
pub(super) fn other_ca_same_name(subject: &str, issuer: &str) -> (String, String) {
    (
        format!(
            "{subject} was issued by a CA the Edge does not trust: its issuer {issuer} has the name of a CA the Edge trusts, but the signature does not verify with that CA's key, so another CA with the same name (another lab CA?) issued it."
        ),
        "add the CA that issued it to tls.ca, and give each lab CA its own name (edgesim certs ca does).".into(),
    )
}

/// The other chain problems: what webpki found and its fix.
pub(super) fn chain_problem(subject: &str, p: &ChainProblem) -> (String, String) {
    let (problem, fix) = problem_words(p);
    (
        format!("{subject} was refused: {problem}."),
        format!("{fix}."),
    )
}

/// What is wrong with a chain and the fix, for people (lower case, no final period).
pub fn chain_words(status: &ChainStatus) -> (String, String) {
    let (problem, fix): (&str, &str) = match status {
        ChainStatus::Trusted => ("it chains to a CA the Edge trusts", "nothing to do"),
        ChainStatus::Missing => (
            "no certificate was presented",
            "make the peer present its certificate",
        ),
        ChainStatus::UntrustedRoot => (
            "it was issued by a CA the Edge does not trust",
            "add that CA to tls.ca (or --ca), and make the peer send its intermediate CA certificates with its own certificate",
        ),
        ChainStatus::Expired => (
            "it, or a CA certificate in its chain, has expired",
            "renew it, and check both clocks",
        ),
        ChainStatus::NotYetValid => (
            "it, or a CA certificate in its chain, is not valid yet",
            "check both clocks, or reissue it with a start date in the past",
        ),
        ChainStatus::WrongUsage => (
            "its Extended Key Usage does not allow this use (TLS server or client authentication)",
            "reissue it with both Server and Client Authentication EKUs",
        ),
        ChainStatus::Invalid(p) => return problem_words(p),
    };
    (problem.to_owned(), fix.to_owned())
}

/// A chain status as one phrase: `what is wrong — the fix` (the problem alone when trusted).
pub fn chain_phrase(status: &ChainStatus) -> String {
    let (problem, fix) = chain_words(status);
    match status {
        ChainStatus::Trusted => problem,
        _ => format!("{problem} — {fix}"),
    }
}

/// What webpki refused and the fix (lower case, no final period).
fn problem_words(p: &ChainProblem) -> (String, String) {
    let (problem, fix) = match p {
        ChainProblem::OtherCaSameName => (
            "it was issued by a CA the Edge does not trust: its issuer has the name of a CA the Edge knows, but the signature does not verify with that CA's key, so another CA with the same name (another lab CA?) issued it".into(),
            "add the CA that issued it to tls.ca (or --ca); give each lab CA its own name".into(),
        ),
        ChainProblem::TooLong => (
            format!("its chain is too long: the Edge follows at most {MAX_INTERMEDIATES} intermediate CAs between a certificate and a trusted CA"),
            format!("issue it from a CA at most {MAX_INTERMEDIATES} intermediates below the root, or trust an intermediate CA of the chain directly in tls.ca"),
        ),
        ChainProblem::TooComplex => (
            "its chain holds too many candidate CA certificates for the Edge to find a path to a trusted CA".into(),
            "send only the certificate followed by the intermediate CAs of its own chain".into(),
        ),
        ChainProblem::Malformed => (
            "it, or a CA certificate in its chain, is not a well-formed X.509 certificate".into(),
            "reissue the certificate from a CA the Edge trusts".into(),
        ),
        ChainProblem::UnsupportedAlgorithm => (
            "it, or a CA certificate in its chain, is signed with an algorithm the Edge does not accept (such as SHA-1)".into(),
            "reissue it signed with SHA-256 or better (RSA-2048 or ECDSA P-256 keys)".into(),
        ),
        ChainProblem::UnsupportedCriticalExtension => (
            "it, or a CA certificate in its chain, has a critical extension the Edge does not understand".into(),
            "reissue it without that extension, or with it marked non-critical".into(),
        ),
        ChainProblem::CaAsLeaf => (
            "it is a CA certificate, not a server certificate".into(),
            "present the server certificate issued by that CA instead".into(),
        ),
        ChainProblem::LeafAsCa => (
            "its chain uses a certificate that is not a CA as an issuer".into(),
            "send the certificate followed by its intermediate CA certificates only".into(),
        ),
        ChainProblem::PathLength => (
            "a CA in its chain has more CAs below it than its path length constraint (basicConstraints pathLen) allows".into(),
            "issue it from a CA allowed to issue it".into(),
        ),
        ChainProblem::NameConstraints => (
            "a CA in its chain may not issue certificates for its names (name constraints)".into(),
            "issue it from a CA allowed to issue it".into(),
        ),
        ChainProblem::Other => (
            "its chain could not be verified (revoked or distrusted certificate, or an unsupported name type)".into(),
            "reissue the certificate from a CA the Edge trusts".into(),
        ),
    };
    (problem, fix)
}

/// A short tag for records and events (`reason` Data), e.g. `chain too long`.
pub(super) fn chain_tag(status: &ChainStatus) -> &'static str {
    match status {
        ChainStatus::Trusted => "trusted",
        ChainStatus::Missing => "missing",
        ChainStatus::UntrustedRoot => "untrusted root",
        ChainStatus::Expired | ChainStatus::NotYetValid => "expired",
        ChainStatus::WrongUsage => "wrong usage",
        ChainStatus::Invalid(p) => match p {
            ChainProblem::OtherCaSameName => "untrusted root",
            ChainProblem::TooLong => "chain too long",
            ChainProblem::TooComplex => "chain too complex",
            ChainProblem::Malformed => "malformed",
            ChainProblem::UnsupportedAlgorithm => "unsupported algorithm",
            ChainProblem::UnsupportedCriticalExtension => "unsupported critical extension",
            ChainProblem::CaAsLeaf => "CA certificate as leaf",
            ChainProblem::LeafAsCa => "leaf as CA",
            ChainProblem::PathLength => "path length exceeded",
            ChainProblem::NameConstraints => "name constraints",
            ChainProblem::Other => "invalid",
        },
    }
}

/// One line saying what matched or what to change.
pub(crate) fn name_match_text(m: &NameMatch, fqdn: &DomainName) -> String {
    match m {
        NameMatch::San => format!("{fqdn} is in the certificate's SAN"),
        NameMatch::CommonName => {
            format!("{fqdn} is the subject CN and the certificate has no SAN extension")
        }
        NameMatch::Wildcard(w) => {
            format!("{fqdn} matches the wildcard {w} (wildcards allowed by configuration)")
        }
        NameMatch::WildcardRefused(w) => format!(
            "{fqdn} matches only the wildcard {w}, and the Edge does not accept wildcards — add {fqdn} to the certificate's SAN"
        ),
        NameMatch::CommonNameIgnored => format!(
            "{fqdn} is only the subject CN, which is ignored because the certificate has a SAN extension — add {fqdn} to the certificate's SAN"
        ),
        NameMatch::Absent => format!("add {fqdn} to the certificate's SAN"),
    }
}

/// A negotiated TLS version as people write it: `TLS 1.2`, `TLS 1.3`.
pub fn tls_version(version: rustls::ProtocolVersion) -> String {
    match version {
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".into(),
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".into(),
        other => format!("TLS version 0x{:04x}", u16::from(other)),
    }
}

/// A day: `2026-05-01`.
pub(super) fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// A moment: `2026-05-01 12:00:00 UTC` (how `certs inspect` shows a certificate's validity).
pub fn datetime(unix: i64) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| unix.to_string())
}
