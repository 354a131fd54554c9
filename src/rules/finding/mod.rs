//! [`Finding`]: every outcome of the federation rules, as a value with its facts. Only the rule functions of the
//! rulebook build one; everything a user reads about it is a method, defined here once:
//!
//! - [`Finding::severity`], [`Finding::rule`]: PASS/WARN/FAIL and the area of the shared `--json` vocabulary;
//! - [`Finding::sip`], [`Finding::response_headers`]: the status and reason the Edge sends (inbound) or the Skype
//!   client receives (outbound), and the headers that go with them (`Retry-After`, `Unsupported`);
//! - [`Finding::ms_diagnostic`], [`Finding::log_record`] (`wire.rs`): the ms-diagnostics and the Edge log record;
//! - [`Finding::class`], [`Finding::verdict_kind`]: the exit-code class of `call`, the `verdict` of an event;
//! - [`Finding::explain`] (`explain.rs`): the Edge's explanation and its fix;
//! - [`Finding::check_lines`] (`check.rs`) and [`Finding::inspect_line`] (`inspect.rs`): the lines of `check`
//!   and `certs inspect`, which word some facts for their audience; the codes they quote come from `sip` and
//!   `ms_diagnostic`, so they cannot drift from what the Edge sends.
//!
//! The model is rustls' mapping of each error to the alert it sends, and linkerd's typed authorization refusals.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::{Direction, DomainName, NameMatch, NoSrv, OfferedTls, Outside, Role, Rule1Failure};
use crate::config::{ClientCertMode, TlsVersion};
use crate::dns::{DnsFailure, SrvRecord};
use crate::pki::{CertFacts, ChainStatus, Eku};
use crate::rules::outbound::ConnectFailure;

mod check;
mod check_cert;
mod classify;
mod cmdlet;
mod explain;
mod inspect;
mod wire;
mod words;

pub use cmdlet::CmdletOutcome;
pub use inspect::Inspected;
#[cfg(test)]
pub(crate) use words::name_match_text;
pub use words::{chain_phrase, chain_words, datetime, tls_version};

/// One outcome of the federation rules, with the facts it is about. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    // ---- who may federate
    /// The request names no sender domain (no sip: P-Asserted-Identity or From host). Inbound, 403 / 1002.
    NoSenderDomain,
    /// AllowFederatedUsers is False: every federated domain is refused. 403 / 1002, record 0xc3e93e06.
    FederationOff {
        /// The domain refused.
        domain: DomainName,
    },
    /// The domain is on the blocked list. 403 / 1002.
    DomainBlocked {
        /// The domain.
        domain: DomainName,
    },
    /// The domain is not allowed and partner discovery is off. 403 / 1002.
    DomainNotAllowed {
        /// The domain.
        domain: DomainName,
    },
    /// `call` was given a target that is not a sip: URI with a domain. 400.
    BadTarget {
        /// The target as given.
        target: String,
    },

    // ---- DNS SRV and Rule 1
    /// No usable federation SRV record. 504 / 1008.
    NoSrv {
        /// The domain looked up.
        domain: DomainName,
        /// Why there is none.
        why: NoSrv,
        /// The DNS server asked, as explanations name it (may be empty).
        server: String,
    },
    /// Rule 1: no SRV target is a host directly in the domain. 504 / 1009.
    SrvNotInDomain {
        /// The domain and the targets seen.
        failure: Rule1Failure,
        /// Which way: the explanation names whose certificate must carry the fixed target.
        dir: Direction,
    },
    /// `check`: one usable SRV record of the domain.
    SrvRecordFound {
        /// The record.
        record: SrvRecord,
        /// The domain.
        domain: DomainName,
    },
    /// `check`: an SRV record whose target is `.` (RFC 2782), alone (no usable SRV) or beside others (ignored).
    SrvDotRecord {
        /// The record.
        record: SrvRecord,
        /// The domain.
        domain: DomainName,
        /// No other record: the domain says it does not federate.
        alone: bool,
    },
    /// Rule 1 accepts this target.
    TargetInDomain {
        /// The SRV target.
        target: DomainName,
        /// The domain.
        domain: DomainName,
    },
    /// `check`: Rule 1 refuses this target; `ignored` when another target passes (the Edge skips this one).
    TargetOutsideDomain {
        /// The SRV target.
        target: DomainName,
        /// The domain.
        domain: DomainName,
        /// Why Rule 1 refuses it.
        why: Outside,
        /// Another target passes, so the Edge ignores this record.
        ignored: bool,
    },

    // ---- addresses and connections
    /// The SRV target's addresses.
    Addresses {
        /// The SRV target.
        target: DomainName,
        /// Its A/AAAA addresses.
        addrs: Vec<IpAddr>,
    },
    /// The SRV target has no address. 504 / 1014 (outbound).
    NoAddress {
        /// The domain whose SRV target it is.
        domain: DomainName,
        /// The SRV target.
        target: DomainName,
        /// The lookup's failure; `None` when it answered without addresses.
        failure: Option<DnsFailure>,
        /// The DNS server asked.
        server: String,
    },
    /// `check`: an address of the target accepts TCP.
    TcpAccepts {
        /// The SRV target.
        target: DomainName,
        /// The address.
        addr: SocketAddr,
    },
    /// `check`: an address of the target does not accept TCP; `live` is one that does, if any.
    AddressDead {
        /// The SRV target.
        target: DomainName,
        /// The dead address.
        addr: SocketAddr,
        /// How the connection failed, when it maps to a Winsock failure.
        kind: Option<ConnectFailure>,
        /// The socket's own words.
        detail: String,
        /// An address of the target that answers (on the same port).
        live: Option<IpAddr>,
    },
    /// `check`: one TLS version probed with the Edge certificate as client certificate.
    TlsProbe {
        /// The SRV target.
        target: DomainName,
        /// The version probed.
        version: TlsVersion,
        /// What happened.
        probe: TlsProbe,
    },
    /// `check`: no TLS version could be negotiated with the target.
    NoTlsVersion {
        /// The SRV target.
        target: DomainName,
    },
    /// The TCP connection or the TLS handshake to the target failed. 504 / 1046, 1047.
    ConnectFailed {
        /// The SRV target.
        target: DomainName,
        /// How.
        kind: ConnectFailure,
    },
    /// The Edge's own certificate cannot be used as TLS client certificate. 500.
    EdgeCertUnusable {
        /// Why.
        why: String,
    },

    // ---- certificates
    /// `check`: whether the Edge's own certificate can act as TLS client certificate.
    EdgeCertClientAuth {
        /// Its name.
        cert: String,
        /// Client Authentication EKU or no EKU extension.
        allowed: bool,
    },
    /// `check`: the certificate the target presents.
    CertPresented {
        /// The SRV target.
        target: DomainName,
        /// Subject DN.
        subject: String,
        /// Issuer DN.
        issuer: String,
        /// SAN dNSNames, `None` without a SAN extension.
        san: Option<Vec<String>>,
    },
    /// The peer presented no certificate. 504 / 1010 `SEC_E_NO_CREDENTIALS`; inbound record 0xc3e93e10.
    NoPeerCertificate {
        /// The name the certificate should have named (SRV target or fixed FQDN).
        target: DomainName,
        /// Which way.
        dir: Direction,
        /// Inbound: the sender domain whose route leads to `target`.
        sender: DomainName,
        /// Inbound: the `tls.client_cert` setting that let the peer in.
        setting: ClientCertMode,
    },
    /// Rule 2 holds: the certificate names the target.
    NameMatches {
        /// The target.
        target: DomainName,
        /// How (SAN, CN without SAN, allowed wildcard).
        how: NameMatch,
    },
    /// Rule 2 fails: the certificate does not name the target. 504 / 1010 `SEC_E_WRONG_PRINCIPAL`; inbound
    /// record 0xc3e93d67.
    NameMismatch {
        /// The target.
        target: DomainName,
        /// The certificate.
        cert: Box<CertFacts>,
        /// How it fails (absent, CN ignored, wildcard refused).
        how: NameMatch,
    },
    /// The certificate has no SAN extension (WARN).
    NoSan {
        /// The names the certificate should carry, for the fix.
        names: String,
    },
    /// The certificate carries a wildcard name (WARN).
    WildcardName {
        /// The names the certificate should carry, for the fix.
        names: String,
    },
    /// The certificate's Extended Key Usages: Server Authentication (the Edge calls the peer) and Client
    /// Authentication (the peer calls the Edge).
    Eku {
        /// The EKU extension; `None` without one (any usage).
        eku: Option<Eku>,
        /// `policy.require_client_auth_eku`: a missing Client Authentication is a FAIL, else a WARN.
        client_required: bool,
    },
    /// The peer's client certificate has an EKU extension without Client Authentication (Cisco FN74362).
    /// Inbound 504 / 1010 `SEC_E_CERT_WRONG_USAGE` and record 0xc3e93e05 when required; a WARN otherwise.
    ClientAuthEkuMissing {
        /// The certificate's name.
        cert: String,
        /// `check`: the SRV target whose calls to the Edge fail.
        target: Option<DomainName>,
        /// `policy.require_client_auth_eku`.
        required: bool,
    },
    /// The certificate's validity at the time the rules were given.
    Validity {
        /// Valid, expiring, expired or not yet valid.
        state: ValidityState,
        /// Start, Unix seconds.
        not_before: i64,
        /// End, Unix seconds.
        not_after: i64,
        /// Days left (a started day counts), negative once expired.
        days_left: i64,
        /// The target whose certificate it is (`check`).
        target: Option<DomainName>,
    },
    /// The chain leads to a CA the Edge trusts.
    ChainTrusted {
        /// The target whose certificate it is (`check`).
        target: Option<DomainName>,
        /// The CAs trusted, when named (`certs inspect`: the --ca files).
        anchors: Option<String>,
    },
    /// The chain is refused: as a server certificate (outbound 504 / 1010 with the HRESULT of the chain status) or
    /// as a client certificate (the handshake is refused, record 0xc3e93e04).
    ChainRefused {
        /// The target whose certificate it is.
        target: Option<DomainName>,
        /// The certificate, when one was presented.
        cert: Option<Box<CertFacts>>,
        /// What webpki found.
        chain: ChainStatus,
        /// Server or client certificate.
        role: Role,
        /// The CAs trusted, when named (`certs inspect`).
        anchors: Option<String>,
    },
    /// `check`: the certificate passes the Edge's client-certificate validation.
    ClientCertAccepted {
        /// Its name.
        cert: String,
    },
    /// The peer's ClientHello offers no TLS version the Edge accepts: the handshake is refused, record
    /// 0xc3e93e12.
    TlsVersionRefused {
        /// What the hello offered.
        offered: OfferedTls,
        /// `tls.versions`.
        accepted: Vec<TlsVersion>,
    },

    // ---- destination, users, limits (inbound)
    /// The Request-URI is not for this Edge. 404 / 1005, record 0xc3e93e11.
    ForeignRequestUri {
        /// The Request-URI.
        uri: String,
        /// Its host (empty for a URI without one, such as `tel:`).
        host: DomainName,
        /// The Edge's SIP domain.
        edge_domain: DomainName,
        /// The Edge's FQDN.
        edge_fqdn: DomainName,
    },
    /// No such user behind the Edge. 404 / 4005 (the federation rules passed: verdict `accept`).
    UnknownUser {
        /// The Request-URI.
        uri: String,
        /// The configured users (user parts); empty: every user answers, so the URI named none.
        users: Vec<String>,
    },
    /// `Require` names extensions the Edge does not support. 420 with `Unsupported`.
    BadExtension {
        /// The unsupported option tags.
        tags: Vec<String>,
    },
    /// `Max-Forwards: 0` on a request for a user. 483.
    TooManyHops {
        /// The Request-URI.
        uri: String,
    },
    /// Over `limits.max_requests_per_sec` on one connection. 503 with `Retry-After` (verdict `limit`).
    RateLimited {
        /// The limit.
        max: u32,
    },
    /// The connection holds the most calls the Edge keeps. 503 with `Retry-After` (verdict `limit`).
    TooManyCalls {
        /// The most calls per connection.
        max: usize,
    },
    /// The Edge pool member the request reached is in fault mode `503` (switched out of service). 503 with
    /// `Retry-After` and ms-diagnostics 1090 (verdict `limit`).
    MemberOutOfService {
        /// The member's address, `ip:port`.
        member: String,
    },
    /// A discovered partner over DiscoveredPartnerStandardRate. 503 with `Retry-After`, record 0xc3e93e07
    /// (verdict `limit`).
    PartnerThrottled {
        /// The partner's domain.
        domain: DomainName,
        /// Messages counted in this one-second window, this one included.
        sent: u32,
        /// DiscoveredPartnerStandardRate.
        rate: u32,
        /// The `ms-edge-proxy-message-trust` its messages get.
        trust: String,
    },
    /// A discovered partner reaching a new user past MaxContactsPerDiscoveredPartner in the report period. 403,
    /// record 0xc3e93e08 (verdict `limit`).
    PartnerContactsLimit {
        /// The partner's domain.
        domain: DomainName,
        /// The new user (Request-URI user part).
        user: String,
        /// MaxContactsPerDiscoveredPartner.
        max: u32,
        /// DiscoveredPartnerReportPeriodMinutes.
        period_minutes: u32,
        /// The `ms-edge-proxy-message-trust` its messages get.
        trust: String,
    },
    /// An unverified message (VerificationLevel AlwaysUnverifiable) for a user who does not list the sender as a
    /// contact. 403, record 0xc3e93e09.
    UnverifiedSender {
        /// The sender domain.
        domain: DomainName,
        /// The sender's address (`user@host`).
        sender: String,
        /// The user it is for (Request-URI user part).
        user: String,
        /// The partner's type (which setting holds its level).
        partner: super::PartnerType,
        /// Its verification level.
        level: crate::config::VerificationLevel,
        /// The `ms-edge-proxy-message-trust` its messages get.
        trust: String,
    },

    // ---- the peer's answers (outbound)
    /// The peer answered 2xx: federation works.
    PeerAnswered(Box<PeerAnswer>),
    /// The peer answered an error: passed through, with 1034 added when the peer gave no ms-diagnostics.
    PeerRejected(Box<PeerAnswer>),
    /// The peer accepted TLS but gave no final response in time. 408.
    PeerTimeout {
        /// The SRV target.
        target: DomainName,
        /// INVITE or OPTIONS.
        method: String,
        /// The Edge's own domain (the fix names it).
        edge_domain: DomainName,
    },
    /// `check`: the OPTIONS ping was not sent, because the Edge refuses the peer's certificate.
    OptionsNotSent {
        /// The OPTIONS Request-URI.
        callee: String,
    },
    /// `check`: the OPTIONS ping failed.
    OptionsFailed {
        /// The OPTIONS Request-URI.
        callee: String,
        /// The call's explanation.
        explanation: String,
        /// The SRV target.
        target: DomainName,
        /// The SRV port.
        port: u16,
    },
}

/// The peer's final answer to the Edge's request (outbound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAnswer {
    /// The SRV target.
    pub target: DomainName,
    /// INVITE or OPTIONS.
    pub method: String,
    /// The status.
    pub status: u16,
    /// Its reason phrase.
    pub reason: String,
    /// The peer's own ms-diagnostics header value, verbatim, if it sent one.
    pub peer_diag: Option<String>,
    /// The federated domain.
    pub domain: DomainName,
    /// The callee URI.
    pub callee: String,
    /// The Edge's own domain (a fix names it).
    pub edge_domain: DomainName,
}

/// What one TLS version's probe showed (`check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsProbe {
    /// The handshake completed.
    Offered,
    /// The peer does not speak this version.
    NotOffered {
        /// The TLS library's words.
        detail: String,
    },
    /// The peer reset the handshake (or did not finish it) with the Edge certificate as client certificate.
    Refused {
        /// The TLS library's words.
        detail: String,
        /// It did not finish in time rather than reset.
        timed_out: bool,
    },
    /// Anything else.
    Error {
        /// What went wrong.
        error: String,
    },
}

/// Where a certificate is in its validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidityState {
    /// Valid for 30 days or more.
    Valid,
    /// Valid, fewer than 30 days left.
    Expiring,
    /// Past its end.
    Expired,
    /// Before its start.
    NotYetValid,
}

/// The request a log record is about: its start line, Call-ID, CSeq and the peer (`name:port`), or only the peer
/// for a refusal at the handshake. Borrowed: a record copies what it keeps, and only a refusal makes one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestLine<'a> {
    /// e.g. `INVITE sip:stejanss@skype.lab SIP/2.0`.
    pub start_line: &'a str,
    /// The Call-ID.
    pub call_id: &'a str,
    /// e.g. `2066245576 INVITE`.
    pub cseq: &'a str,
    /// Certificate name and source port (`vcse.steven.lab:25002`), or `ip:port` at the handshake.
    pub peer: &'a str,
}

impl<'a> RequestLine<'a> {
    /// A connection whose handshake was refused: no request was read.
    pub fn connection(peer: &'a str) -> Self {
        RequestLine {
            peer,
            ..RequestLine::default()
        }
    }
}

/// What is wrong and the fix, for people: written `"{problem} Fix: {fix}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// What happened (ends with a period).
    pub problem: String,
    /// What to change, when there is something to change.
    pub fix: Option<String>,
}

impl Explanation {
    fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Explanation {
            problem: problem.into(),
            fix: Some(fix.into()),
        }
    }

    fn only(problem: impl Into<String>) -> Self {
        Explanation {
            problem: problem.into(),
            fix: None,
        }
    }
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.fix {
            Some(fix) => write!(f, "{} Fix: {fix}", self.problem),
            None => f.write_str(&self.problem),
        }
    }
}

/// What kind of result a call had (each maps to an exit code of `edgesim call`); serialised as its
/// [`OutcomeClass::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeClass {
    /// The peer answered 2xx.
    Connected,
    /// The peer answered with this error status.
    Rejected(u16),
    /// No federation SRV record (1008).
    NoSrv,
    /// No SRV target in the domain (1009, Rule 1).
    SrvMismatch,
    /// The peer certificate does not name the SRV target (1010 SEC_E_WRONG_PRINCIPAL, Rule 2).
    CertMismatch,
    /// The peer chain is not trusted or not usable (1010 SEC_E_UNTRUSTED_ROOT and others).
    CertUntrusted,
    /// The peer certificate is expired or not yet valid (1010 SEC_E_CERT_EXPIRED).
    CertExpired,
    /// The SRV target has no A/AAAA address.
    NoAddress,
    /// TCP failed: refused, unreachable or timed out (1046).
    ConnectFailed,
    /// The peer reset or refused the TLS negotiation (1047).
    HandshakeReset,
    /// The Edge's policy refuses the domain (403).
    Blocked,
    /// No final response in time.
    Timeout,
}

impl Serialize for OutcomeClass {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl OutcomeClass {
    /// A stable name for `--json`: `connected`, `rejected`, `no-srv`, `srv-mismatch`, `cert-mismatch`,
    /// `cert-untrusted`, `cert-expired`, `no-address`, `connect-failed`, `handshake-reset`, `blocked`,
    /// `timeout` (a rejection's status is the outcome's `final_status`).
    pub fn name(self) -> &'static str {
        match self {
            OutcomeClass::Connected => "connected",
            OutcomeClass::Rejected(_) => "rejected",
            OutcomeClass::NoSrv => "no-srv",
            OutcomeClass::SrvMismatch => "srv-mismatch",
            OutcomeClass::CertMismatch => "cert-mismatch",
            OutcomeClass::CertUntrusted => "cert-untrusted",
            OutcomeClass::CertExpired => "cert-expired",
            OutcomeClass::NoAddress => "no-address",
            OutcomeClass::ConnectFailed => "connect-failed",
            OutcomeClass::HandshakeReset => "handshake-reset",
            OutcomeClass::Blocked => "blocked",
            OutcomeClass::Timeout => "timeout",
        }
    }

    /// The exit code of `edgesim call` for this class (0 connected; 10–17 failures; 2 is usage).
    pub fn exit_code(self) -> u8 {
        match self {
            OutcomeClass::Connected => 0,
            OutcomeClass::Rejected(_) => 10,
            OutcomeClass::NoSrv => 11,
            OutcomeClass::SrvMismatch => 12,
            OutcomeClass::CertMismatch => 13,
            OutcomeClass::CertUntrusted | OutcomeClass::CertExpired => 14,
            OutcomeClass::NoAddress
            | OutcomeClass::ConnectFailed
            | OutcomeClass::HandshakeReset => 15,
            OutcomeClass::Blocked => 16,
            OutcomeClass::Timeout => 17,
        }
    }
}

#[cfg(test)]
mod tests;
