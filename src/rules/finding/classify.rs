//! How a finding is classified: PASS/WARN/FAIL, its area, the SIP status it answers with and the headers that go
//! with it, the exit-code class of `call`, and the `verdict` of its event.

use super::{Finding, OutcomeClass, TlsProbe, ValidityState, words};
use crate::config::TlsVersion;
use crate::diagnostics::VerdictKind;
use crate::pki::ChainStatus;
use crate::report::Status;
use crate::rules::outbound::ConnectFailure;
use crate::rules::{NameMatch, Role};
use crate::sip::ua::edge_reason_phrase;

/// The status and reason of a federation failure the Edge reports: `504 Server time-out`.
const FEDERATION_FAILURE: u16 = 504;

/// FAIL when `fails`, else WARN.
fn warn_unless(fails: bool) -> Status {
    if fails { Status::Fail } else { Status::Warn }
}

impl Finding {
    /// PASS, WARN or FAIL.
    pub fn severity(&self) -> Status {
        use Finding as F;
        match self {
            F::SrvRecordFound { .. }
            | F::TargetInDomain { .. }
            | F::Addresses { .. }
            | F::TcpAccepts { .. }
            | F::ChainTrusted { .. }
            | F::ClientCertAccepted { .. }
            | F::PeerAnswered(_) => Status::Pass,
            F::CertPresented { .. } => Status::Pass,
            F::NoSan { .. } | F::WildcardName { .. } | F::OptionsNotSent { .. } => Status::Warn,
            F::PeerRejected(_) => Status::Warn,
            F::SrvDotRecord { alone, .. } => warn_unless(*alone),
            F::TargetOutsideDomain { ignored, .. } => warn_unless(!ignored),
            F::AddressDead { live, .. } => warn_unless(live.is_none()),
            F::TlsProbe { version, probe, .. } => match probe {
                TlsProbe::Offered => Status::Pass,
                TlsProbe::NotOffered { .. } => Status::pass_if(*version == TlsVersion::Tls13),
                TlsProbe::Refused { .. } | TlsProbe::Error { .. } => Status::Fail,
            },
            F::EdgeCertClientAuth { allowed, .. } => {
                if *allowed {
                    Status::Pass
                } else {
                    Status::Warn
                }
            }
            F::NameMatches { how, .. } => match how {
                // Allowed by configuration, refused by every real Edge.
                NameMatch::Wildcard(_) => Status::Warn,
                _ => Status::Pass,
            },
            F::Eku {
                eku,
                client_required,
            } => {
                let (server, client) = crate::rules::cert::eku_pair(eku.as_ref());
                if !server || (!client && *client_required) {
                    Status::Fail
                } else if !client {
                    Status::Warn
                } else {
                    Status::Pass
                }
            }
            F::ClientAuthEkuMissing { required, .. } => {
                if *required {
                    Status::Fail
                } else {
                    Status::Warn
                }
            }
            F::Validity { state, .. } => match state {
                ValidityState::Valid => Status::Pass,
                ValidityState::Expiring => Status::Warn,
                ValidityState::Expired | ValidityState::NotYetValid => Status::Fail,
            },
            F::NoSenderDomain
            | F::FederationOff { .. }
            | F::DomainBlocked { .. }
            | F::DomainNotAllowed { .. }
            | F::BadTarget { .. }
            | F::PartnerThrottled { .. }
            | F::PartnerContactsLimit { .. }
            | F::UnverifiedSender { .. }
            | F::NoSrv { .. }
            | F::SrvNotInDomain { .. }
            | F::NoAddress { .. }
            | F::NoTlsVersion { .. }
            | F::ConnectFailed { .. }
            | F::EdgeCertUnusable { .. }
            | F::NoPeerCertificate { .. }
            | F::NameMismatch { .. }
            | F::ChainRefused { .. }
            | F::TlsVersionRefused { .. }
            | F::ForeignRequestUri { .. }
            | F::UnknownUser { .. }
            | F::BadExtension { .. }
            | F::TooManyHops { .. }
            | F::RateLimited { .. }
            | F::TooManyCalls { .. }
            | F::MemberOutOfService { .. }
            | F::PeerTimeout { .. }
            | F::OptionsFailed { .. } => Status::Fail,
        }
    }

    /// The area of the rule, as `check` lines and the `--json` vocabulary name it: `sender`, `policy`,
    /// `dns-srv`, `rule1`, `dns-a`, `tcp`, `tls`, `edge-cert`, `cert`, `inbound`, `destination`, `users`,
    /// `limits`, `sip`.
    pub fn rule(&self) -> &'static str {
        use Finding as F;
        match self {
            F::NoSenderDomain => "sender",
            F::FederationOff { .. }
            | F::DomainBlocked { .. }
            | F::DomainNotAllowed { .. }
            | F::BadTarget { .. }
            | F::UnverifiedSender { .. } => "policy",
            F::PartnerThrottled { .. } | F::PartnerContactsLimit { .. } => "limits",
            F::NoSrv { .. } | F::SrvRecordFound { .. } | F::SrvDotRecord { .. } => "dns-srv",
            F::SrvNotInDomain { .. } | F::TargetInDomain { .. } | F::TargetOutsideDomain { .. } => {
                "rule1"
            }
            F::Addresses { .. } | F::NoAddress { .. } => "dns-a",
            F::TcpAccepts { .. } | F::AddressDead { .. } => "tcp",
            F::TlsProbe { .. }
            | F::NoTlsVersion { .. }
            | F::ConnectFailed { .. }
            | F::EdgeCertUnusable { .. }
            | F::TlsVersionRefused { .. } => "tls",
            F::EdgeCertClientAuth { .. } => "edge-cert",
            F::CertPresented { .. }
            | F::NoPeerCertificate { .. }
            | F::NameMatches { .. }
            | F::NameMismatch { .. }
            | F::NoSan { .. }
            | F::WildcardName { .. }
            | F::Eku { .. }
            | F::Validity { .. }
            | F::ChainTrusted { .. } => "cert",
            F::ChainRefused { role, .. } => match role {
                Role::Server => "cert",
                Role::Client => "inbound",
            },
            F::ClientAuthEkuMissing { .. } | F::ClientCertAccepted { .. } => "inbound",
            F::ForeignRequestUri { .. } => "destination",
            F::UnknownUser { .. } | F::BadExtension { .. } | F::TooManyHops { .. } => "users",
            F::RateLimited { .. } | F::TooManyCalls { .. } => "limits",
            F::MemberOutOfService { .. } => "pool",
            F::PeerAnswered(_)
            | F::PeerRejected(_)
            | F::PeerTimeout { .. }
            | F::OptionsNotSent { .. }
            | F::OptionsFailed { .. } => "sip",
        }
    }

    /// The status and reason phrase the Edge sends (inbound) or the internal Skype client receives (outbound);
    /// `None` for what gets no SIP answer (a refused handshake, a `check` observation).
    pub fn sip(&self) -> Option<(u16, &str)> {
        use Finding as F;
        let status = match self {
            F::NoSenderDomain
            | F::FederationOff { .. }
            | F::DomainBlocked { .. }
            | F::DomainNotAllowed { .. }
            | F::PartnerContactsLimit { .. }
            | F::UnverifiedSender { .. } => 403,
            F::PartnerThrottled { .. } => 503,
            F::BadTarget { .. } => 400,
            F::NoSrv { .. }
            | F::SrvNotInDomain { .. }
            | F::NoAddress { .. }
            | F::ConnectFailed { .. }
            | F::NoPeerCertificate { .. }
            | F::NameMismatch { .. } => FEDERATION_FAILURE,
            F::ClientAuthEkuMissing { required: true, .. } => FEDERATION_FAILURE,
            F::ChainRefused {
                role: Role::Server, ..
            } => FEDERATION_FAILURE,
            F::EdgeCertUnusable { .. } => 500,
            F::ForeignRequestUri { .. } | F::UnknownUser { .. } => 404,
            F::BadExtension { .. } => 420,
            F::TooManyHops { .. } => 483,
            F::RateLimited { .. } | F::TooManyCalls { .. } | F::MemberOutOfService { .. } => 503,
            F::PeerTimeout { .. } => 408,
            F::PeerAnswered(a) | F::PeerRejected(a) => {
                return Some((a.status, &a.reason));
            }
            F::ClientAuthEkuMissing {
                required: false, ..
            }
            | F::ChainRefused {
                role: Role::Client, ..
            }
            | F::TlsVersionRefused { .. }
            | F::SrvRecordFound { .. }
            | F::SrvDotRecord { .. }
            | F::TargetInDomain { .. }
            | F::TargetOutsideDomain { .. }
            | F::Addresses { .. }
            | F::TcpAccepts { .. }
            | F::AddressDead { .. }
            | F::TlsProbe { .. }
            | F::NoTlsVersion { .. }
            | F::EdgeCertClientAuth { .. }
            | F::CertPresented { .. }
            | F::NameMatches { .. }
            | F::NoSan { .. }
            | F::WildcardName { .. }
            | F::Eku { .. }
            | F::Validity { .. }
            | F::ChainTrusted { .. }
            | F::ClientCertAccepted { .. }
            | F::OptionsNotSent { .. }
            | F::OptionsFailed { .. } => return None,
        };
        Some((status, edge_reason_phrase(status)))
    }

    /// Headers the Edge's answer carries besides the usual ones: `Retry-After` for a limit, `Unsupported` for
    /// a 420.
    pub fn response_headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Finding::RateLimited { .. } | Finding::PartnerThrottled { .. } => {
                vec![("Retry-After", words::RATE_RETRY_AFTER.to_string())]
            }
            Finding::TooManyCalls { .. } => {
                vec![("Retry-After", words::CALLS_RETRY_AFTER.to_string())]
            }
            Finding::MemberOutOfService { .. } => {
                vec![("Retry-After", words::POOL_RETRY_AFTER.to_string())]
            }
            Finding::BadExtension { tags } => vec![("Unsupported", tags.join(", "))],
            _ => Vec::new(),
        }
    }

    /// The exit-code class of `call` for an outbound outcome; `None` for what `call` never sees.
    pub fn class(&self) -> Option<OutcomeClass> {
        use Finding as F;
        Some(match self {
            F::PeerAnswered(_) => OutcomeClass::Connected,
            F::PeerRejected(a) => OutcomeClass::Rejected(a.status),
            F::BadTarget { .. } => OutcomeClass::Rejected(400),
            F::FederationOff { .. } | F::DomainBlocked { .. } | F::DomainNotAllowed { .. } => {
                OutcomeClass::Blocked
            }
            F::NoSrv { .. } => OutcomeClass::NoSrv,
            F::SrvNotInDomain { .. } => OutcomeClass::SrvMismatch,
            F::NoAddress { .. } => OutcomeClass::NoAddress,
            F::ConnectFailed {
                kind: ConnectFailure::ResetDuringHandshake,
                ..
            }
            | F::EdgeCertUnusable { .. } => OutcomeClass::HandshakeReset,
            F::ConnectFailed { .. } => OutcomeClass::ConnectFailed,
            F::NameMismatch { .. } => OutcomeClass::CertMismatch,
            F::ChainRefused {
                chain: ChainStatus::Expired | ChainStatus::NotYetValid,
                ..
            } => OutcomeClass::CertExpired,
            F::ChainRefused { .. } | F::NoPeerCertificate { .. } => OutcomeClass::CertUntrusted,
            F::PeerTimeout { .. } => OutcomeClass::Timeout,
            F::NoSenderDomain
            | F::SrvRecordFound { .. }
            | F::SrvDotRecord { .. }
            | F::TargetInDomain { .. }
            | F::TargetOutsideDomain { .. }
            | F::Addresses { .. }
            | F::TcpAccepts { .. }
            | F::AddressDead { .. }
            | F::TlsProbe { .. }
            | F::NoTlsVersion { .. }
            | F::EdgeCertClientAuth { .. }
            | F::CertPresented { .. }
            | F::NameMatches { .. }
            | F::NoSan { .. }
            | F::WildcardName { .. }
            | F::Eku { .. }
            | F::ClientAuthEkuMissing { .. }
            | F::Validity { .. }
            | F::ChainTrusted { .. }
            | F::ClientCertAccepted { .. }
            | F::TlsVersionRefused { .. }
            | F::ForeignRequestUri { .. }
            | F::UnknownUser { .. }
            | F::BadExtension { .. }
            | F::TooManyHops { .. }
            | F::RateLimited { .. }
            | F::TooManyCalls { .. }
            | F::MemberOutOfService { .. }
            | F::PartnerThrottled { .. }
            | F::PartnerContactsLimit { .. }
            | F::UnverifiedSender { .. }
            | F::OptionsNotSent { .. }
            | F::OptionsFailed { .. } => return None,
        })
    }

    /// The `verdict` of the decision event: `limit` for the Edge's limits, `accept` for what the users answer
    /// after the federation rules passed (an unknown user, an unsupported extension), `reject` otherwise.
    pub fn verdict_kind(&self) -> VerdictKind {
        match self {
            Finding::RateLimited { .. }
            | Finding::TooManyCalls { .. }
            | Finding::MemberOutOfService { .. } => VerdictKind::Limit,
            Finding::PartnerThrottled { .. } | Finding::PartnerContactsLimit { .. } => {
                VerdictKind::Limit
            }
            Finding::UnknownUser { .. } | Finding::BadExtension { .. } => VerdictKind::Accept,
            _ => VerdictKind::Reject,
        }
    }

    /// True when the Edge refuses on this finding (a FAIL); WARN and PASS let the request go on.
    pub fn refuses(&self) -> bool {
        self.severity() == Status::Fail
    }
}
