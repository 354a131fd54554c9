//! The `certs inspect` lines of the certificate findings: each rule as `STATUS rule: what was found — the fix`
//! in text, and as a [`Line`] of the shared `--json` vocabulary.

use super::words::{chain_phrase, datetime, name_match_text};
use super::{Finding, ValidityState};
use crate::pki::ChainStatus;
use crate::report::{Line, Status};
use crate::rules::NameMatch;

/// One `certs inspect` line: the JSON line, and the text printed for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    /// The line of the `--json` document.
    pub line: Line,
    /// The text after `STATUS rule: `.
    pub text: String,
}

impl Inspected {
    /// A rule worded "what was found — what to change" (the fix, for WARN and FAIL, after the dash).
    fn worded(status: Status, rule: impl Into<String>, text: String) -> Self {
        let (detail, fix) = match text.split_once(" — ") {
            Some((detail, fix)) if status != Status::Pass => {
                (detail.to_owned(), Some(fix.to_owned()))
            }
            _ => (text.clone(), None),
        };
        Inspected {
            line: Line::new(status, rule, detail, fix),
            text,
        }
    }
}

impl Finding {
    /// The `certs inspect` line of a certificate finding; `None` for the findings `certs inspect` never gets.
    pub fn inspect_line(&self) -> Option<Inspected> {
        use Finding as F;
        let status = self.severity();
        Some(match self {
            F::Validity {
                state,
                not_before,
                not_after,
                days_left,
                ..
            } => {
                let (nb, na) = (datetime(*not_before), datetime(*not_after));
                let text = match state {
                    ValidityState::NotYetValid => format!(
                        "not valid until {nb} — check the clock, or reissue with a start date in the past"
                    ),
                    ValidityState::Expired => format!("expired on {na} — renew the certificate"),
                    ValidityState::Expiring => format!(
                        "expires on {na} ({days_left} days left) — renew the certificate before {na}"
                    ),
                    ValidityState::Valid => format!("valid until {na} ({days_left} days left)"),
                };
                Inspected::worded(status, "validity", text)
            }
            F::Eku { eku, .. } => {
                let (server, client) = crate::rules::cert::eku_pair(eku.as_ref());
                let text = match (server, client) {
                    (true, true) if eku.is_none() => {
                        "no EKU extension: any usage is allowed".to_string()
                    }
                    (true, true) => "serverAuth and clientAuth present".to_string(),
                    (true, false) => "serverAuth present but clientAuth missing: the certificate cannot be the TLS client certificate \
                         in mutual TLS, so federation breaks in one direction (the Edge resets a peer that connects with it). \
                         Public CAs are removing the Client Authentication EKU from server certificates in 2026–2027 \
                         (Cisco field notice FN74362 for Expressway) — reissue it with both Server and Client \
                         Authentication EKUs (e.g. from a private CA), or on Expressway X15.5+ configure a separate \
                         client certificate"
                        .to_string(),
                    (false, true) => "clientAuth present but serverAuth missing: the certificate cannot be a TLS server certificate — \
                         reissue it with both Server and Client Authentication EKUs"
                        .to_string(),
                    (false, false) => "neither serverAuth nor clientAuth: the certificate cannot be used for TLS — reissue it with \
                         both Server and Client Authentication EKUs"
                        .to_string(),
                };
                Inspected::worded(status, "eku", text)
            }
            F::ChainTrusted { anchors, .. } => Inspected::worded(
                status,
                "chain",
                format!(
                    "trusted: leads to {}",
                    anchors.as_deref().unwrap_or("a CA the Edge trusts")
                ),
            ),
            F::ChainRefused {
                chain,
                anchors,
                cert,
                ..
            } => {
                let cas = anchors.as_deref().unwrap_or("a CA the Edge trusts");
                let issuer = cert.as_ref().map(|c| c.issuer.as_str()).unwrap_or_default();
                let text = match chain {
                    ChainStatus::Trusted => format!("trusted: leads to {cas}"),
                    ChainStatus::Missing => {
                        "no certificate in the file — give the certificate, leaf first, as PEM or DER".into()
                    }
                    ChainStatus::UntrustedRoot => format!(
                        "the chain does not lead to {cas} — give the issuing CA with --ca, import that CA into the \
                         Edge's trusted root store, or put the intermediates after the leaf in the file"
                    ),
                    ChainStatus::Expired => "a certificate in the chain is expired — renew it".into(),
                    ChainStatus::NotYetValid => {
                        "a certificate in the chain is not valid yet — check the clock".into()
                    }
                    ChainStatus::WrongUsage => {
                        "a CA in the chain does not allow TLS use (EKU) — use a CA without that restriction".into()
                    }
                    ChainStatus::Invalid(crate::pki::ChainProblem::OtherCaSameName) => format!(
                        "issued by a CA that is not one in {cas}: its issuer {issuer} has the name of a CA given with \
                         --ca, but the signature does not verify with that CA's key, so another CA with the same name \
                         issued it — give the CA that issued it with --ca (and import that one into the Edge's trusted \
                         roots)"
                    ),
                    other => chain_phrase(other),
                };
                Inspected::worded(status, "chain", text)
            }
            F::NameMatches { target, how } => {
                let rule = format!("name {target}");
                let text = name_match_text(how, target);
                match how {
                    NameMatch::Wildcard(_) => Inspected::worded(
                        status,
                        rule,
                        format!(
                            "{text} — a real Edge refuses wildcard matches: name {target} explicitly in the certificate's SAN"
                        ),
                    ),
                    _ => Inspected::worded(status, rule, text),
                }
            }
            F::NameMismatch { target, how, .. } => {
                let rule = format!("name {target}");
                let text = name_match_text(how, target);
                match how {
                    // The whole wording is the fix; the detail says what was found.
                    NameMatch::Absent => Inspected {
                        line: Line::new(
                            status,
                            rule,
                            format!(
                                "the certificate does not name {target} (in its SAN, or in its CN without a SAN)"
                            ),
                            Some(text.clone()),
                        ),
                        text,
                    },
                    _ => Inspected::worded(status, rule, text),
                }
            }
            F::NoSan { names } => Inspected::worded(
                status,
                "san",
                format!(
                    "no SAN extension: the Edge falls back to the subject CN, Expressway and modern clients do not — \
                     reissue the certificate with {names} in the SAN"
                ),
            ),
            F::WildcardName { names } => Inspected::worded(
                status,
                "wildcard",
                format!(
                    "the certificate carries a wildcard name: the Skype for Business Edge does not accept wildcard \
                     matches, and Expressway does not support wildcard certificates — name {names} explicitly in the SAN"
                ),
            ),
            _ => return None,
        })
    }
}
