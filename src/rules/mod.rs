//! The federation rules as pure functions: (request facts, SRV answer, certificate facts, policy) → `Verdict`.
//! This is the only place a rule lives. No sockets, no clocks: time and lookup answers are passed in.
//!
//! Inbound is two-phase because the SRV lookup is I/O: `Policy::plan_inbound` says what to look up, then
//! `decide_inbound` decides with the answer. Choices where no source exists (FEDERATION.md "Open questions"):
//! - blocked sender domain, or not allowed with discovery off: `403 Forbidden`, ms-diagnostics 1002, synthetic
//!   log record (0xc3e93e02 / 0xc3e93e03);
//! - no SRV (any failure kind): `504 Server time-out`, ms-diagnostics 1008, synthetic record 0xc3e93e01 with a
//!   `reason` Data key naming the failure kind;
//! - an SRV answer whose only targets are `.` (RFC 2782: "service decidedly not available"): no usable SRV,
//!   both directions, exactly like no SRV at all (504 + 1008, record 0xc3e93e01 with
//!   `reason="DECIDEDLY_NOT_AVAILABLE"`); a `.` record next to real ones is ignored (Rule 1 sees the others);
//! - Rule 1 failure: 504 + 1009 (as the Edge shows outbound) + the seed's 0xc3e93d6f record;
//! - Rule 2 failure: 504 + 1010 with `PeerServer` and `SEC_E_WRONG_PRINCIPAL` + the seed's 0xc3e93d67 record;
//! - clientAuth EKU missing: checked here, first, after the handshake (not in the TLS verifier) so the lab gets
//!   a 504 that explains the EKU sunset instead of a bare reset: 1010 with `SEC_E_CERT_WRONG_USAGE` + synthetic
//!   record 0xc3e93e05. The handshake verifier should therefore not enforce clientAuth itself;
//! - no client certificate (`tls.client_cert` optional or none): Rule 2 cannot hold, 504 + 1010 with
//!   `SEC_E_NO_CREDENTIALS` and `PeerServer=""` + synthetic record 0xc3e93e10 (`inbound`);
//! - a Request-URI outside the Edge's domain and FQDN, after the federation rules passed: `404 Not Found` with
//!   1005 + synthetic record 0xc3e93e11 (`inbound`): the Edge does not relay between federated domains;
//! - a peer that offers only TLS versions the Edge does not accept: the handshake fails, synthetic record
//!   0xc3e93e12 (`handshake`).
//!
//! The diagnostic in a `Verdict` is what the Edge would show internally; leaving it out toward the peer in
//! `faithful` mode is the listener's job.

use crate::config::{ClientCertMode, EdgeConfig, Identity, PolicyConfig};
use crate::diagnostics::{
    DecisionEvent, EventContext, Hresult, LogRecord, MsDiagnostic, ResultCode, VerdictKind, Winsock,
};
use crate::dns::{DnsFailure, SrvRecord, federation_srv_name};
use crate::pki::{CertFacts, ChainProblem, ChainStatus};

mod cert_text;
mod handshake;
mod inbound;
mod names;
mod srv;
use cert_text::{cert_names, chain_problem, other_ca_same_name};
pub use handshake::{OfferedTls, tls_version_name, tls_version_rejection};
pub use names::{NameMatch, names_match};
pub use srv::{
    NoSrv, Rule1Failure, SrvDecision, rule1_in_domain, rule1_pick, srv_decidedly_unavailable,
    srv_decision,
};
use srv::{no_srv_explanation, rule1_explanation};

/// Lower-case, without the trailing root dot.
fn norm(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Reason phrase of 504.
const SERVER_TIMEOUT: &str = "Server time-out";
/// Reason phrase of 403.
const FORBIDDEN: &str = "Forbidden";

/// The federation policy of one Edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The Edge's SIP domain (normalised).
    pub edge_domain: String,
    /// The Edge's FQDN, `source=` of diagnostics.
    pub edge_fqdn: String,
    /// Blocked domains (normalised).
    pub blocked: Vec<String>,
    /// Allowed domains with an optional fixed partner Edge FQDN (normalised).
    pub allowed: Vec<(String, Option<String>)>,
    /// Discover partners not on the allowed list.
    pub partner_discovery: bool,
    /// Accept an SRV target equal to the domain.
    pub accept_apex_target: bool,
    /// Accept a wildcard SAN match.
    pub allow_wildcard: bool,
    /// Require clientAuth on inbound peer certificates that carry an EKU extension.
    pub require_client_auth_eku: bool,
    /// Send bare responses to the peer (read by the listener).
    pub faithful: bool,
    /// The DNS server the Edge asks, as explanations name it (e.g. `127.0.0.1:5353`); empty until
    /// [`Policy::with_dns_server`] sets it.
    pub dns_server: String,
    /// Whether the Edge asks for a client certificate (explanations name the setting).
    pub client_cert: ClientCertMode,
}

impl Policy {
    /// Builds the policy from the Edge identity and policy section.
    pub fn new(edge: &Identity, cfg: &PolicyConfig, faithful: bool) -> Self {
        Policy {
            edge_domain: norm(&edge.domain),
            edge_fqdn: edge.fqdn.clone(),
            blocked: cfg.blocked_domains.iter().map(|d| norm(d)).collect(),
            allowed: cfg
                .allowed_domains
                .iter()
                .map(|a| (norm(&a.domain), a.proxy_fqdn.as_deref().map(norm)))
                .collect(),
            partner_discovery: cfg.partner_discovery,
            accept_apex_target: cfg.accept_apex_target,
            allow_wildcard: cfg.allow_wildcard,
            require_client_auth_eku: cfg.require_client_auth_eku,
            faithful,
            dns_server: String::new(),
            client_cert: ClientCertMode::Required,
        }
    }

    /// Names the DNS server the Edge asks in explanations of DNS failures (`Lookup::server`).
    pub fn with_dns_server(mut self, server: impl Into<String>) -> Self {
        self.dns_server = server.into();
        self
    }

    /// Builds the policy from a whole configuration.
    pub fn from_config(cfg: &EdgeConfig) -> Self {
        Policy {
            client_cert: cfg.tls.client_cert,
            ..Self::new(&cfg.edge, &cfg.policy, cfg.faithful)
        }
    }

    /// How a domain is routed: blocked, fixed partner FQDN, SRV discovery, or not allowed.
    pub fn route(&self, domain: &str) -> Route {
        let d = norm(domain);
        if self.blocked.contains(&d) {
            return Route::Blocked;
        }
        match self.allowed.iter().find(|(a, _)| *a == d) {
            Some((_, Some(fqdn))) => Route::FixedFqdn(fqdn.clone()),
            Some((_, None)) => Route::Discover,
            None if self.partner_discovery => Route::Discover,
            None => Route::NotAllowed,
        }
    }

    /// Phase 1 inbound: what to look up for these facts (their `srv` is ignored), or an early rejection.
    pub fn plan_inbound(&self, facts: &InboundFacts) -> InboundPlan {
        if let Some(v) = self.inbound_client_auth(facts) {
            return InboundPlan::Reject(v);
        }
        let Some(domain) = facts.sender_domain.as_deref().map(norm) else {
            return InboundPlan::Reject(self.inbound_no_domain(facts));
        };
        match self.route(&domain) {
            Route::Blocked => InboundPlan::Reject(self.inbound_refused(facts, &domain, true)),
            Route::NotAllowed => InboundPlan::Reject(self.inbound_refused(facts, &domain, false)),
            Route::FixedFqdn(f) => InboundPlan::UseFixedFqdn(f),
            Route::Discover => InboundPlan::LookupSrv(federation_srv_name(&domain)),
        }
    }

    /// Phase 1 outbound: what to look up for a target domain, or a rejection to the internal client.
    pub fn plan_outbound(&self, target_domain: &str) -> OutboundPlan {
        let d = norm(target_domain);
        match self.route(&d) {
            route @ (Route::Blocked | Route::NotAllowed) => {
                let blocked = route == Route::Blocked;
                OutboundPlan::Reject(Verdict::Reject {
                    status: 403,
                    reason: FORBIDDEN,
                    diagnostic: Some(MsDiagnostic::e1002(&self.edge_fqdn)),
                    log: None,
                    explanation: if blocked {
                        format!(
                            "{d} is on the Edge's blocked domain list. Fix: remove it from policy.blocked_domains."
                        )
                    } else {
                        format!(
                            "{d} is not an allowed federated domain and partner discovery is off. Fix: add it to policy.allowed_domains or set policy.partner_discovery = true."
                        )
                    },
                })
            }
            Route::FixedFqdn(f) => OutboundPlan::UseFixedFqdn(f),
            Route::Discover => OutboundPlan::LookupSrv(federation_srv_name(&d)),
        }
    }

    /// Outbound: pick the SRV target (Rule 1) or reject with 1008 / 1009.
    pub fn decide_outbound_srv<'a>(
        &self,
        domain: &str,
        answer: &'a Result<Vec<SrvRecord>, DnsFailure>,
    ) -> Result<&'a SrvRecord, Verdict> {
        let d = norm(domain);
        match srv_decision(&d, answer, self.accept_apex_target) {
            SrvDecision::Target(r) => Ok(r),
            SrvDecision::NoSrv(why) => Err(Verdict::Reject {
                status: 504,
                reason: SERVER_TIMEOUT,
                diagnostic: Some(MsDiagnostic::e1008(&d, &self.edge_fqdn)),
                log: None,
                explanation: no_srv_explanation(&d, &why, &self.dns_server),
            }),
            SrvDecision::Mismatch(f) => Err(Verdict::Reject {
                status: 504,
                reason: SERVER_TIMEOUT,
                diagnostic: Some(MsDiagnostic::e1009(&f.domain, &f.fqdns, &self.edge_fqdn)),
                log: None,
                explanation: rule1_explanation(&f, "the peer's certificate"),
            }),
        }
    }

    /// Outbound: check the peer's server certificate for `target` (chain first, then Rule 2) → 1010 on failure.
    pub fn decide_outbound_cert(
        &self,
        target: &str,
        cert: &CertFacts,
        chain: &ChainStatus,
    ) -> Result<(), Verdict> {
        let t = norm(target);
        let name = cert.display_name();
        let (hresult, explanation) = match chain {
            ChainStatus::Trusted => match names_match(cert, &t, self.allow_wildcard) {
                NameMatch::Absent | NameMatch::CommonNameIgnored => {
                    (Hresult::WrongPrincipal, rule2_explanation(&t, cert))
                }
                NameMatch::WildcardRefused(p) => {
                    (Hresult::WrongPrincipal, wildcard_explanation(&t, &p))
                }
                _ => return Ok(()),
            },
            ChainStatus::Missing => (
                Hresult::CertUnknown,
                format!(
                    "{t} presented no certificate. Fix: install a server certificate on the peer."
                ),
            ),
            ChainStatus::UntrustedRoot => (
                Hresult::UntrustedRoot,
                format!(
                    "The certificate of {t} ({name}, issued by {}) does not chain to a CA the Edge trusts. Fix: add that CA to tls.ca, or use a public CA certificate on the peer.",
                    cert.issuer
                ),
            ),
            ChainStatus::Expired | ChainStatus::NotYetValid => (
                Hresult::CertExpired,
                format!(
                    "The certificate of {t} ({name}) is outside its validity period. Fix: renew it, and check both clocks."
                ),
            ),
            ChainStatus::WrongUsage => (
                Hresult::CertWrongUsage,
                format!(
                    "The certificate of {t} ({name}) has an EKU extension without Server Authentication. Fix: issue it with the Server Authentication EKU."
                ),
            ),
            ChainStatus::Invalid(ChainProblem::OtherCaSameName) => (
                Hresult::UntrustedRoot,
                other_ca_same_name(&format!("The certificate of {t} ({name})"), cert),
            ),
            ChainStatus::Invalid(p) => (
                Hresult::CertUnknown,
                chain_problem(&format!("The certificate of {t} ({name})"), p),
            ),
        };
        Err(Verdict::Reject {
            status: 504,
            reason: SERVER_TIMEOUT,
            diagnostic: Some(MsDiagnostic::e1010(hresult, &t, &name, &self.edge_fqdn)),
            log: None,
            explanation,
        })
    }

    /// Outbound: the connection or the TLS handshake to `target` failed → 504 with 1046 / 1047.
    pub fn outbound_connect_failure(&self, target: &str, kind: ConnectFailure) -> Verdict {
        let t = norm(target);
        let (diagnostic, explanation) = match kind {
            ConnectFailure::ResetDuringHandshake => (
                MsDiagnostic::e1047(Winsock::ConnReset, &self.edge_fqdn),
                format!(
                    "{t} reset the TLS negotiation: it most likely does not trust the Edge's certificate (or requires a Client Authentication EKU it lacks). Fix: import the Edge's CA on the peer and check the Edge certificate's EKUs."
                ),
            ),
            ConnectFailure::Refused => (
                MsDiagnostic::e1046(Winsock::ConnRefused, &self.edge_fqdn),
                format!(
                    "Nothing accepts connections on {t}. Fix: check the SRV port and that the peer listens for TLS there."
                ),
            ),
            ConnectFailure::TimedOut => (
                MsDiagnostic::e1046(Winsock::TimedOut, &self.edge_fqdn),
                format!(
                    "{t} did not answer the connection in time. Fix: check firewalls and the A record of {t}."
                ),
            ),
            ConnectFailure::HostUnreachable => (
                MsDiagnostic::e1046(Winsock::HostUnreachable, &self.edge_fqdn),
                format!("{t} is unreachable. Fix: check routing and the A record of {t}."),
            ),
        };
        Verdict::Reject {
            status: 504,
            reason: SERVER_TIMEOUT,
            diagnostic: Some(diagnostic),
            log: None,
            explanation,
        }
    }

    /// Outbound: the 1034 to add to a peer's error final response that carried no ms-diagnostics of its own.
    pub fn outbound_peer_response(
        &self,
        status: u16,
        had_ms_diagnostics: bool,
        domain: &str,
        peer_server: &str,
    ) -> Option<MsDiagnostic> {
        (status >= 400 && !had_ms_diagnostics)
            .then(|| MsDiagnostic::e1034(&norm(domain), &norm(peer_server), &self.edge_fqdn))
    }

    fn log(
        &self,
        facts: &InboundFacts,
        code: ResultCode,
        data: Vec<(String, String)>,
    ) -> Box<LogRecord> {
        Box::new(LogRecord::new(
            code,
            &facts.start_line,
            &facts.call_id,
            &facts.cseq,
            &facts.peer,
            data,
        ))
    }

    /// The clientAuth EKU check (emulates the handshake, so it runs first; `tls-target` is the certificate name
    /// because no SRV target is known yet).
    fn inbound_client_auth(&self, facts: &InboundFacts) -> Option<Verdict> {
        // Without a certificate there is no EKU to judge; Rule 2 says what is missing.
        let cert = facts.cert?;
        if !self.require_client_auth_eku || has_client_auth(cert) {
            return None;
        }
        let name = cert.display_name();
        Some(Verdict::Reject {
            status: 504,
            reason: SERVER_TIMEOUT,
            diagnostic: Some(MsDiagnostic::e1010(
                Hresult::CertWrongUsage,
                &name,
                &name,
                &self.edge_fqdn,
            )),
            log: Some(self.log(
                facts,
                ResultCode::CERT_NO_CLIENT_AUTH,
                vec![
                    kv("certName", &name),
                    kv("info", "The peer certificate has an Extended Key Usage extension without Client Authentication"),
                ],
            )),
            explanation: format!(
                "The peer certificate {name} lists Extended Key Usages but not Client Authentication, and the peer uses it as its TLS client certificate toward the Edge (federation is mutual TLS). Public CAs are removing the Client Authentication EKU from server certificates in 2026-2027 (Cisco field notice FN74362 for Expressway). Fix: use a certificate with both Server and Client Authentication EKUs (a private CA, or a CA that still issues clientAuth), or on Expressway X15.5+ a separate client certificate; to relax this check in edgesim set policy.require_client_auth_eku = false."
            ),
        })
    }

    fn inbound_no_domain(&self, facts: &InboundFacts) -> Verdict {
        Verdict::Reject {
            status: 403,
            reason: FORBIDDEN,
            diagnostic: Some(MsDiagnostic::e1002(&self.edge_fqdn)),
            log: Some(self.log(
                facts,
                ResultCode::DOMAIN_NOT_ALLOWED,
                vec![kv("domain", "")],
            )),
            explanation: "The request has no sip: P-Asserted-Identity or From host, so the Edge cannot tell which domain sent it. Fix: send a From (or PAI) sip: URI with the partner's domain.".into(),
        }
    }

    fn inbound_refused(&self, facts: &InboundFacts, d: &str, blocked: bool) -> Verdict {
        let (code, explanation) = if blocked {
            (
                ResultCode::BLOCKED_DOMAIN,
                format!(
                    "{d} is on the Edge's blocked domain list. Fix: remove it from policy.blocked_domains."
                ),
            )
        } else {
            (
                ResultCode::DOMAIN_NOT_ALLOWED,
                format!(
                    "{d} is not an allowed federated domain and partner discovery is off. Fix: add it to policy.allowed_domains or set policy.partner_discovery = true."
                ),
            )
        };
        Verdict::Reject {
            status: 403,
            reason: FORBIDDEN,
            diagnostic: Some(MsDiagnostic::e1002(&self.edge_fqdn)),
            log: Some(self.log(facts, code, vec![kv("domain", d)])),
            explanation,
        }
    }
}

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

/// True unless the certificate has an EKU extension that allows neither clientAuth nor any purpose.
fn has_client_auth(cert: &CertFacts) -> bool {
    cert.eku.is_none_or(|e| e.client_auth || e.any)
}

/// How a domain is routed by the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// On the blocked list.
    Blocked,
    /// Allowed Partner Server: skip SRV, use this FQDN.
    FixedFqdn(String),
    /// Look up the federation SRV.
    Discover,
    /// Not allowed and discovery is off.
    NotAllowed,
}

/// What inbound handling must do before `decide_inbound`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundPlan {
    /// Refuse now.
    Reject(Verdict),
    /// Look up this SRV name (`_sipfederationtls._tcp.<domain>`).
    LookupSrv(String),
    /// No lookup: the fixed partner FQDN must be in the certificate.
    UseFixedFqdn(String),
}

/// What outbound handling must do before connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundPlan {
    /// Refuse now (to the internal client).
    Reject(Verdict),
    /// Look up this SRV name.
    LookupSrv(String),
    /// Connect to this fixed partner FQDN (port 5061).
    UseFixedFqdn(String),
}

/// How an outbound connection failed before TLS completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// The peer reset the TLS handshake (10054).
    ResetDuringHandshake,
    /// TCP refused (10061).
    Refused,
    /// TCP timed out (10060).
    TimedOut,
    /// No route (10065).
    HostUnreachable,
}

/// The outcome of the federation rules for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The rules pass; `matched_target` is the SRV target or fixed FQDN that the certificate named.
    Accept {
        /// The accepted FQDN.
        matched_target: String,
    },
    /// The rules refuse.
    Reject {
        /// SIP status.
        status: u16,
        /// Reason phrase.
        reason: &'static str,
        /// The ms-diagnostics the Edge would show internally.
        diagnostic: Option<MsDiagnostic>,
        /// The Edge log record, if the Edge writes one (boxed: it is large and most verdicts are small).
        log: Option<Box<LogRecord>>,
        /// What is wrong and the fix, in plain language.
        explanation: String,
    },
}

impl Verdict {
    /// True for `Accept`.
    pub fn is_accept(&self) -> bool {
        matches!(self, Verdict::Accept { .. })
    }

    /// The status of a rejection.
    pub fn status(&self) -> Option<u16> {
        match self {
            Verdict::Reject { status, .. } => Some(*status),
            Verdict::Accept { .. } => None,
        }
    }

    /// The ms-diagnostics of a rejection.
    pub fn diagnostic(&self) -> Option<&MsDiagnostic> {
        match self {
            Verdict::Reject { diagnostic, .. } => diagnostic.as_ref(),
            Verdict::Accept { .. } => None,
        }
    }

    /// The log record of a rejection.
    pub fn log(&self) -> Option<&LogRecord> {
        match self {
            Verdict::Reject { log, .. } => log.as_deref(),
            Verdict::Accept { .. } => None,
        }
    }

    /// The `--events` line for this verdict. A rejection's status is the one sent; an acceptance has none yet
    /// (the users answer: the listener fills in the status it sent).
    pub fn to_event(&self, ctx: EventContext) -> DecisionEvent {
        let diagnostic = self.diagnostic();
        let log = self.log();
        let kind = if self.is_accept() {
            VerdictKind::Accept
        } else {
            VerdictKind::Reject
        };
        DecisionEvent {
            status: self.status(),
            ms_diagnostics_code: diagnostic.map(|d| d.code),
            ms_diagnostics: diagnostic.map(MsDiagnostic::render),
            result_code: log.map(|l| l.result_code.render()),
            log_data: log.map(|l| l.data.clone()).unwrap_or_default(),
            explanation: self.explanation().map(str::to_owned),
            ..DecisionEvent::for_request(ctx, kind)
        }
    }

    /// The explanation of a rejection.
    pub fn explanation(&self) -> Option<&str> {
        match self {
            Verdict::Reject { explanation, .. } => Some(explanation),
            Verdict::Accept { .. } => None,
        }
    }
}

/// The facts of one inbound request that the rules read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundFacts<'a> {
    /// SIP method.
    pub method: String,
    /// Request-URI.
    pub request_uri: String,
    /// Call-ID.
    pub call_id: String,
    /// CSeq value, e.g. `2066245576 INVITE`.
    pub cseq: String,
    /// Request line, e.g. `INVITE sip:stejanss@skype.lab SIP/2.0`.
    pub start_line: String,
    /// From `sender_domain`.
    pub sender_domain: Option<String>,
    /// Certificate display name and source port, e.g. `vcse.steven.lab:25002`.
    pub peer: String,
    /// SRV answer; `None` when no lookup was made (fixed FQDN, or before `plan_inbound`).
    pub srv: Option<Result<Vec<SrvRecord>, DnsFailure>>,
    /// The peer's client certificate (chain trust was decided at the handshake); `None` when the peer
    /// presented none (`tls.client_cert` optional or none).
    pub cert: Option<&'a CertFacts>,
    /// The Request-URI host, lower-case (empty for a URI without host, such as `tel:`).
    pub request_host: String,
    /// The Edge address the request arrived on (a Request-URI may name it).
    pub local_ip: Option<std::net::IpAddr>,
}

/// The sender domain: the first sip:/sips: P-Asserted-Identity host, else the From host; lower-case, no trailing
/// dot. The caller passes hosts only, skipping tel: PAIs (they carry no domain).
pub fn sender_domain(first_pai_sip_host: Option<&str>, from_host: Option<&str>) -> Option<String> {
    first_pai_sip_host
        .map(norm)
        .filter(|h| !h.is_empty())
        .or_else(|| from_host.map(norm).filter(|h| !h.is_empty()))
}

/// Phase 2 inbound: FEDERATION.md "Inbound" steps 2–6 with the SRV answer in `facts.srv`, then the destination:
/// a request that passes the federation rules must be for the Edge's own domain (or FQDN).
pub fn decide_inbound(facts: &InboundFacts, policy: &Policy) -> Verdict {
    let verdict = federation_rules(facts, policy);
    if verdict.is_accept()
        && let Some(refused) = policy.inbound_destination(facts)
    {
        return refused;
    }
    verdict
}

/// Steps 2–6: sender domain, route, SRV (Rule 1), certificate (Rule 2).
fn federation_rules(facts: &InboundFacts, policy: &Policy) -> Verdict {
    let target = match policy.plan_inbound(facts) {
        InboundPlan::Reject(v) => return v,
        InboundPlan::UseFixedFqdn(f) => f,
        InboundPlan::LookupSrv(_) => {
            let d = facts.sender_domain.as_deref().map(norm).unwrap_or_default();
            let not_made = Err(DnsFailure::Other("the SRV lookup was not made".into()));
            let answer = facts.srv.as_ref().unwrap_or(&not_made);
            match srv_decision(&d, answer, policy.accept_apex_target) {
                SrvDecision::Target(r) => return rule2_inbound(facts, policy, &norm(&r.target)),
                SrvDecision::Mismatch(f) => {
                    let mut data = vec![kv("domain", &f.domain)];
                    data.extend(
                        f.fqdns
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (format!("fqdn{}", i + 1), x.clone())),
                    );
                    return Verdict::Reject {
                        status: 504,
                        reason: SERVER_TIMEOUT,
                        diagnostic: Some(MsDiagnostic::e1009(
                            &f.domain,
                            &f.fqdns,
                            &policy.edge_fqdn,
                        )),
                        log: Some(policy.log(facts, ResultCode::NO_SRV_MATCH, data)),
                        explanation: rule1_explanation(&f, "the Expressway-E certificate"),
                    };
                }
                SrvDecision::NoSrv(why) => {
                    return Verdict::Reject {
                        status: 504,
                        reason: SERVER_TIMEOUT,
                        diagnostic: Some(MsDiagnostic::e1008(&d, &policy.edge_fqdn)),
                        log: Some(policy.log(
                            facts,
                            ResultCode::NO_SRV,
                            vec![kv("domain", &d), kv("reason", why.reason_tag())],
                        )),
                        explanation: no_srv_explanation(&d, &why, &policy.dns_server),
                    };
                }
            }
        }
    };
    rule2_inbound(facts, policy, &target)
}

/// Rule 2 inbound: the peer's client certificate must name the target.
fn rule2_inbound(facts: &InboundFacts, policy: &Policy, target: &str) -> Verdict {
    let Some(cert) = facts.cert else {
        return policy.inbound_no_certificate(facts, target);
    };
    let check = names_match(cert, target, policy.allow_wildcard);
    if check.passes() {
        return Verdict::Accept {
            matched_target: target.to_owned(),
        };
    }
    let name = cert.display_name();
    let explanation = match &check {
        NameMatch::WildcardRefused(p) => wildcard_explanation(target, p),
        _ => rule2_explanation(target, cert),
    };
    Verdict::Reject {
        status: 504,
        reason: SERVER_TIMEOUT,
        diagnostic: Some(MsDiagnostic::e1010(
            Hresult::WrongPrincipal,
            target,
            &name,
            &policy.edge_fqdn,
        )),
        log: Some(policy.log(
            facts,
            ResultCode::CERT_MISMATCH,
            vec![
                kv("expectedfqdn", target),
                kv("certName", &name),
                kv(
                    "info",
                    "The peer certificate does not contain a matching FQDN",
                ),
            ],
        )),
        explanation,
    }
}

/// A TLS handshake the Edge aborted because of the peer's client certificate: no SIP response, only a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRejection {
    /// The synthetic `SIPPROXY_E_TLS_CLIENT_CERT_REJECTED` record (no SIP fields: no request was read).
    pub log: LogRecord,
    /// What is wrong and the fix.
    pub explanation: String,
}

/// The record for a client certificate refused at the handshake; `None` when the chain is trusted.
/// `peer` is `ip:port` (no certificate name is trustworthy yet).
pub fn handshake_rejection(
    chain: &ChainStatus,
    cert: Option<&CertFacts>,
    peer: &str,
) -> Option<HandshakeRejection> {
    let name = cert.map(CertFacts::display_name).unwrap_or_default();
    let issuer = cert.map(|c| c.issuer.as_str()).unwrap_or_default();
    let subject = format!("The client certificate {name}");
    let (reason, explanation) = match chain {
        ChainStatus::Trusted => return None,
        ChainStatus::Missing => (
            "missing".to_owned(),
            "The peer sent no client certificate; federation is mutual TLS. Fix: configure the peer (Expressway-E) to present its certificate as TLS client.".to_owned(),
        ),
        ChainStatus::UntrustedRoot => (
            "untrusted root".to_owned(),
            format!("The client certificate {name} (issued by {issuer}) does not chain to a CA the Edge trusts. Fix: add that CA to tls.ca (or use a public CA certificate on the peer)."),
        ),
        ChainStatus::Expired | ChainStatus::NotYetValid => (
            "expired".to_owned(),
            format!("The client certificate {name} is outside its validity period. Fix: renew it, and check both clocks."),
        ),
        ChainStatus::WrongUsage => (
            "wrong usage".to_owned(),
            format!("The client certificate {name} has no Client Authentication EKU. Public CAs are removing it from server certificates in 2026-2027 (Cisco field notice FN74362). Fix: use a certificate with both Server and Client Authentication EKUs."),
        ),
        ChainStatus::Invalid(ChainProblem::OtherCaSameName) => (
            ChainProblem::OtherCaSameName.tag().to_owned(),
            other_ca_same_name(&subject, cert.unwrap_or(&CertFacts::default())),
        ),
        ChainStatus::Invalid(p) => (p.tag().to_owned(), chain_problem(&subject, p)),
    };
    let mut data = vec![kv("reason", &reason)];
    if cert.is_some() {
        data.push(kv("certName", &name));
    }
    Some(HandshakeRejection {
        log: LogRecord::new(ResultCode::CLIENT_CERT_REJECTED, "", "", "", peer, data),
        explanation,
    })
}

fn rule2_explanation(target: &str, cert: &CertFacts) -> String {
    let names = cert_names(target, cert);
    format!(
        "The peer certificate {} does not name {target}: {names}. Fix: add {target} to the certificate's SAN (the SIP domain itself need not be there).",
        cert.display_name()
    )
}

fn wildcard_explanation(target: &str, pattern: &str) -> String {
    format!(
        "The peer certificate names {target} only through the wildcard {pattern}, and a Skype for Business Edge does not accept wildcards. Fix: add {target} explicitly to the SAN, or set policy.allow_wildcard = true in edgesim."
    )
}

#[cfg(test)]
mod tests;
