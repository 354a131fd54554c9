//! What a finding puts on the wire and in the Edge log: its ms-diagnostics and its log record.

use super::{Finding, RequestLine};
use crate::diagnostics::{Hresult, LogRecord, MsDiagnostic, ResultCode, Winsock};
use crate::pki::{CertFacts, ChainProblem, ChainStatus};
use crate::rules::Role;
use crate::rules::outbound::ConnectFailure;

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

/// The HRESULT a 1010 carries for a server certificate's chain status.
fn chain_hresult(chain: &ChainStatus) -> Hresult {
    match chain {
        ChainStatus::UntrustedRoot | ChainStatus::Invalid(ChainProblem::OtherCaSameName) => {
            Hresult::UntrustedRoot
        }
        ChainStatus::Trusted | ChainStatus::Invalid(_) => Hresult::CertUnknown,
        ChainStatus::Missing => Hresult::NoCredentials,
        ChainStatus::Expired | ChainStatus::NotYetValid => Hresult::CertExpired,
        ChainStatus::WrongUsage => Hresult::CertWrongUsage,
    }
}

impl Finding {
    /// The HRESULT of the finding's 1010, if it has one.
    pub fn hresult(&self) -> Option<Hresult> {
        match self {
            Finding::NoPeerCertificate { .. } => Some(Hresult::NoCredentials),
            Finding::NameMismatch { .. } => Some(Hresult::WrongPrincipal),
            Finding::ClientAuthEkuMissing { required: true, .. } => Some(Hresult::CertWrongUsage),
            Finding::ChainRefused {
                role: Role::Server,
                chain,
                ..
            } => Some(chain_hresult(chain)),
            _ => None,
        }
    }

    /// The Winsock failure of the finding's 1046 / 1047, if it has one.
    pub fn winsock(&self) -> Option<Winsock> {
        match self {
            Finding::ConnectFailed { kind, .. } => Some(match kind {
                ConnectFailure::ResetDuringHandshake => Winsock::ConnReset,
                ConnectFailure::Refused => Winsock::ConnRefused,
                ConnectFailure::TimedOut => Winsock::TimedOut,
                ConnectFailure::HostUnreachable => Winsock::HostUnreachable,
            }),
            _ => None,
        }
    }

    /// The ms-diagnostics code, if the finding has a diagnostic.
    pub fn diagnostic_code(&self) -> Option<u32> {
        self.ms_diagnostic("").map(|d| d.code)
    }

    /// The ms-diagnostics the Edge shows for this finding, `source` being the Edge's FQDN; `None` for what has
    /// none (a limit, a refused handshake, a `check` observation). A peer's own diagnostic is read back from its
    /// header.
    pub fn ms_diagnostic(&self, source: &str) -> Option<MsDiagnostic> {
        use Finding as F;
        Some(match self {
            F::NoSenderDomain
            | F::FederationOff { .. }
            | F::DomainBlocked { .. }
            | F::DomainNotAllowed { .. } => MsDiagnostic::e1002(source),
            F::NoSrv { domain, .. } => MsDiagnostic::e1008(domain.as_str(), source),
            F::SrvNotInDomain { failure, .. } => {
                MsDiagnostic::e1009(failure.domain.as_str(), &failure.fqdns, source)
            }
            F::NoAddress { target, .. } => MsDiagnostic::e1014(target.as_str(), source),
            F::ConnectFailed { kind, .. } => {
                let winsock = self.winsock()?;
                match kind {
                    ConnectFailure::ResetDuringHandshake => MsDiagnostic::e1047(winsock, source),
                    _ => MsDiagnostic::e1046(winsock, source),
                }
            }
            F::NoPeerCertificate { target, .. } => {
                MsDiagnostic::e1010(Hresult::NoCredentials, target.as_str(), "", source)
            }
            F::NameMismatch { target, cert, .. } => MsDiagnostic::e1010(
                Hresult::WrongPrincipal,
                target.as_str(),
                &cert.display_name(),
                source,
            ),
            F::ClientAuthEkuMissing {
                cert,
                required: true,
                ..
            } => MsDiagnostic::e1010(Hresult::CertWrongUsage, cert, cert, source),
            F::ChainRefused {
                role: Role::Server,
                target,
                cert,
                chain,
                ..
            } => MsDiagnostic::e1010(
                chain_hresult(chain),
                target.as_ref().map_or("", |t| t.as_str()),
                &cert
                    .as_deref()
                    .map(CertFacts::display_name)
                    .unwrap_or_default(),
                source,
            ),
            F::ForeignRequestUri { .. } => MsDiagnostic::e1005(source),
            F::UnknownUser { .. } => MsDiagnostic::e4005(),
            F::MemberOutOfService { member } => MsDiagnostic::e1090(member, source),
            F::PeerAnswered(a) => MsDiagnostic::parse(a.peer_diag.as_deref()?)?,
            F::PeerRejected(a) => match &a.peer_diag {
                Some(d) => MsDiagnostic::parse(d)?,
                None if a.status >= 400 => {
                    MsDiagnostic::e1034(a.domain.as_str(), a.target.as_str(), source)
                }
                None => return None,
            },
            _ => return None,
        })
    }

    /// The ms-diagnostics header value the client receives: a peer's own, verbatim, else [`Self::ms_diagnostic`]
    /// rendered.
    pub fn ms_diagnostics_value(&self, source: &str) -> Option<String> {
        match self {
            Finding::PeerRejected(a) | Finding::PeerAnswered(a) if a.peer_diag.is_some() => {
                a.peer_diag.clone()
            }
            Finding::PeerAnswered(_) => None,
            _ => self.ms_diagnostic(source).map(|d| d.render()),
        }
    }

    /// The Edge log record of this finding about `req`, where the Edge writes one (inbound refusals, refused
    /// handshakes).
    pub fn log_record(&self, req: &RequestLine<'_>) -> Option<LogRecord> {
        use Finding as F;
        let (code, data) = match self {
            F::NoSenderDomain => (ResultCode::DOMAIN_NOT_ALLOWED, vec![kv("domain", "")]),
            F::DomainBlocked { domain } => (
                ResultCode::BLOCKED_DOMAIN,
                vec![kv("domain", domain.as_str())],
            ),
            F::DomainNotAllowed { domain } => (
                ResultCode::DOMAIN_NOT_ALLOWED,
                vec![kv("domain", domain.as_str())],
            ),
            F::FederationOff { domain } => (
                ResultCode::FEDERATION_DISABLED,
                vec![
                    kv("domain", domain.as_str()),
                    kv("AllowFederatedUsers", "False"),
                ],
            ),
            F::PartnerThrottled {
                domain,
                sent,
                rate,
                trust,
            } => (
                ResultCode::PARTNER_THROTTLED,
                vec![
                    kv("domain", domain.as_str()),
                    kv("messagesInSecond", &sent.to_string()),
                    kv("DiscoveredPartnerStandardRate", &rate.to_string()),
                    kv("msEdgeProxyMessageTrust", trust),
                ],
            ),
            F::PartnerContactsLimit {
                domain,
                user,
                max,
                period_minutes,
                trust,
            } => (
                ResultCode::PARTNER_CONTACTS_LIMIT,
                vec![
                    kv("domain", domain.as_str()),
                    kv("user", user),
                    kv("MaxContactsPerDiscoveredPartner", &max.to_string()),
                    kv(
                        "DiscoveredPartnerReportPeriodMinutes",
                        &period_minutes.to_string(),
                    ),
                    kv("msEdgeProxyMessageTrust", trust),
                ],
            ),
            F::UnverifiedSender {
                domain,
                sender,
                user,
                level,
                trust,
                ..
            } => (
                ResultCode::UNVERIFIED_SENDER,
                vec![
                    kv("domain", domain.as_str()),
                    kv("sender", sender),
                    kv("user", user),
                    kv("VerificationLevel", level.name()),
                    kv("msEdgeProxyMessageTrust", trust),
                ],
            ),
            F::NoSrv { domain, why, .. } => (
                ResultCode::NO_SRV,
                vec![
                    kv("domain", domain.as_str()),
                    kv("reason", why.reason_tag()),
                ],
            ),
            F::SrvNotInDomain { failure, .. } => {
                let mut data = vec![kv("domain", failure.domain.as_str())];
                data.extend(
                    failure
                        .fqdns
                        .iter()
                        .enumerate()
                        .map(|(i, x)| (format!("fqdn{}", i + 1), x.clone())),
                );
                (ResultCode::NO_SRV_MATCH, data)
            }
            F::NoPeerCertificate { target, .. } => (
                ResultCode::NO_PEER_CERT,
                vec![
                    kv("expectedfqdn", target.as_str()),
                    kv("info", "The peer did not present a TLS client certificate"),
                ],
            ),
            F::NameMismatch { target, cert, .. } => (
                ResultCode::CERT_MISMATCH,
                vec![
                    kv("expectedfqdn", target.as_str()),
                    kv("certName", &cert.display_name()),
                    kv(
                        "info",
                        "The peer certificate does not contain a matching FQDN",
                    ),
                ],
            ),
            F::ClientAuthEkuMissing {
                cert,
                required: true,
                ..
            } => (
                ResultCode::CERT_NO_CLIENT_AUTH,
                vec![
                    kv("certName", cert),
                    kv(
                        "info",
                        "The peer certificate has an Extended Key Usage extension without Client Authentication",
                    ),
                ],
            ),
            F::ForeignRequestUri {
                host, edge_domain, ..
            } => (
                ResultCode::FOREIGN_DESTINATION,
                vec![
                    kv("destinationDomain", host.as_str()),
                    kv("edgeDomain", edge_domain.as_str()),
                ],
            ),
            F::ChainRefused {
                role: Role::Client,
                chain,
                cert,
                ..
            } => {
                let mut data = vec![kv("reason", super::words::chain_tag(chain))];
                if let Some(c) = cert {
                    data.push(kv("certName", &c.display_name()));
                }
                (ResultCode::CLIENT_CERT_REJECTED, data)
            }
            F::TlsVersionRefused { offered, accepted } => (
                ResultCode::TLS_VERSION_REFUSED,
                vec![
                    kv("reason", "TLS version"),
                    kv("offered", &offered.describe()),
                    kv(
                        "accepted",
                        &crate::rules::handshake::versions_text(accepted),
                    ),
                ],
            ),
            _ => return None,
        };
        Some(LogRecord::new(
            code,
            req.start_line,
            req.call_id,
            req.cseq,
            req.peer,
            data,
        ))
    }
}
