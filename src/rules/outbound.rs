//! The outbound direction, one rule per step of `call`: the partner policy, the SRV step, the A/AAAA step, the
//! connection, the server certificate (chain, then Rule 2), and the peer's answer. Each returns what the step may
//! go on with, or the finding the internal Skype client gets (rendered as a [`Verdict`] without log record).

use std::net::{IpAddr, SocketAddr};

use super::{
    Direction, DomainName, Finding, OutcomeClass, PeerAnswer, Policy, Role, Route, TlsProbe,
    Verdict, cert,
};
use crate::config::TlsVersion;
use crate::diagnostics::MsDiagnostic;
use crate::dns::{DnsFailure, SrvRecord};
use crate::pki::{CertFacts, ChainStatus};

/// How an outbound connection failed before TLS completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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

/// What outbound handling must do before connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundPlan {
    /// Refuse now (to the internal client), for this route.
    Reject {
        /// Blocked, or not allowed.
        route: Route,
        /// The 403 / 1002.
        verdict: Verdict,
    },
    /// Look up this SRV name.
    LookupSrv(String),
    /// Connect to this fixed partner FQDN (port 5061).
    UseFixedFqdn(DomainName),
}

/// `call` was given a target without a domain.
pub fn bad_target(target: &str) -> Finding {
    Finding::BadTarget {
        target: target.to_owned(),
    }
}

/// The Edge's own certificate cannot be used as TLS client certificate.
pub fn edge_cert_unusable(why: impl std::fmt::Display) -> Finding {
    Finding::EdgeCertUnusable {
        why: why.to_string(),
    }
}

/// How one TCP attempt went: `Ok`, or the Winsock failure it maps to (if any) and the socket's own words.
pub type TcpResult = Result<(), (Option<ConnectFailure>, String)>;

/// `check`: TCP to each address of `target`, in order. An address
/// that fails while another answers is a WARN naming the live one (the Edge tries the addresses in order and
/// connects through the one that answers); all failing is a FAIL each.
pub fn tcp_findings(target: &DomainName, results: &[(SocketAddr, TcpResult)]) -> Vec<Finding> {
    let live = results
        .iter()
        .find(|(_, r)| r.is_ok())
        .map(|(addr, _)| addr.ip());
    results
        .iter()
        .map(|(addr, r)| match r {
            Ok(()) => Finding::TcpAccepts {
                target: target.clone(),
                addr: *addr,
            },
            Err((kind, detail)) => Finding::AddressDead {
                target: target.clone(),
                addr: *addr,
                kind: *kind,
                detail: detail.clone(),
                live,
            },
        })
        .collect()
}

/// `check`: what probing one TLS version of `target` showed.
pub fn tls_probe(target: &DomainName, version: TlsVersion, probe: TlsProbe) -> Finding {
    Finding::TlsProbe {
        target: target.clone(),
        version,
        probe,
    }
}

/// `check`: no TLS version could be negotiated with `target`.
pub fn no_tls_version(target: &DomainName) -> Finding {
    Finding::NoTlsVersion {
        target: target.clone(),
    }
}

/// `check`: the OPTIONS ping to `callee` and its call's finding (the peer's answer, a certificate the Edge
/// refuses, or another failure of the call to `target:port`).
pub fn options_ping(callee: &str, call: Finding, target: &DomainName, port: u16) -> Finding {
    match call.class() {
        Some(OutcomeClass::Connected | OutcomeClass::Rejected(_)) => call,
        Some(
            OutcomeClass::CertMismatch | OutcomeClass::CertUntrusted | OutcomeClass::CertExpired,
        ) => Finding::OptionsNotSent {
            callee: callee.to_owned(),
        },
        _ => Finding::OptionsFailed {
            callee: callee.to_owned(),
            explanation: call.explain().to_string(),
            target: target.clone(),
            port,
        },
    }
}

impl Policy {
    /// The A/AAAA step for `target`, the SRV target of `domain`: its addresses, or no address (504 / 1014).
    pub fn addresses(
        &self,
        domain: &DomainName,
        target: &str,
        answer: Result<Vec<IpAddr>, DnsFailure>,
    ) -> Finding {
        let target = DomainName::new(target);
        match answer {
            Ok(addrs) if !addrs.is_empty() => Finding::Addresses { target, addrs },
            other => Finding::NoAddress {
                domain: domain.clone(),
                target,
                failure: other.err(),
                server: self.dns_server.clone(),
            },
        }
    }

    /// The partner policy for a target domain: what to look up, or the refusal.
    pub fn plan_outbound(&self, target_domain: &str) -> OutboundPlan {
        let d = DomainName::new(target_domain);
        let route = self.route(&d);
        if let Some(f) = route.refusal(&d) {
            return OutboundPlan::Reject {
                route,
                verdict: Verdict::refuse(f, &self.edge_fqdn),
            };
        }
        match route {
            Route::FixedFqdn(f) => OutboundPlan::UseFixedFqdn(f),
            _ => OutboundPlan::LookupSrv(d.srv_name()),
        }
    }

    /// The SRV step: the record Rule 1 picked, or the 1008 / 1009 refusal.
    pub fn decide_outbound_srv<'a>(
        &self,
        domain: &str,
        answer: &'a Result<Vec<SrvRecord>, DnsFailure>,
    ) -> Result<&'a SrvRecord, Verdict> {
        self.srv_target(&DomainName::new(domain), answer, Direction::Outbound)
            .map_err(|f| Verdict::refuse(f, &self.edge_fqdn))
    }

    /// The server certificate of `target`: the chain first, then Rule 2; the 1010 refusal when either fails.
    pub fn decide_outbound_cert(
        &self,
        target: &str,
        cert: &CertFacts,
        chain: &ChainStatus,
    ) -> Result<(), Verdict> {
        let t = DomainName::new(target);
        let refusal = match chain {
            ChainStatus::Missing => Some(Finding::NoPeerCertificate {
                target: t,
                dir: Direction::Outbound,
                sender: DomainName::default(),
                setting: self.client_cert,
            }),
            ChainStatus::Trusted => Some(cert::name_rule(self, cert, &t)).filter(Finding::refuses),
            other => Some(cert::chain_rule(
                Some(&t),
                Some(cert),
                other,
                Role::Server,
                None,
            )),
        };
        match refusal {
            Some(f) => Err(Verdict::refuse(f, &self.edge_fqdn)),
            None => Ok(()),
        }
    }

    /// The connection or the TLS handshake to `target` failed → 504 with 1046 / 1047.
    pub fn outbound_connect_failure(&self, target: &str, kind: ConnectFailure) -> Verdict {
        let f = Finding::ConnectFailed {
            target: DomainName::new(target),
            kind,
        };
        Verdict::refuse(f, &self.edge_fqdn)
    }

    /// The peer accepted TLS but did not answer `method` in time → 408.
    pub fn peer_timeout(&self, target: &str, method: &str) -> Verdict {
        let f = Finding::PeerTimeout {
            target: DomainName::new(target),
            method: method.to_owned(),
            edge_domain: self.edge_domain.clone(),
        };
        Verdict::refuse(f, &self.edge_fqdn)
    }

    /// The peer's final answer to `method` for `callee` in `domain`: a 2xx, or an error passed through (with 1034
    /// added when the peer gave no ms-diagnostics).
    #[allow(clippy::too_many_arguments)]
    pub fn peer_answer(
        &self,
        target: &str,
        method: &str,
        status: u16,
        reason: &str,
        peer_diag: Option<String>,
        domain: &str,
        callee: &str,
    ) -> Finding {
        let answer = Box::new(PeerAnswer {
            target: DomainName::new(target),
            method: method.to_owned(),
            status,
            reason: reason.to_owned(),
            peer_diag,
            domain: DomainName::new(domain),
            callee: callee.to_owned(),
            edge_domain: self.edge_domain.clone(),
        });
        if (200..300).contains(&status) {
            Finding::PeerAnswered(answer)
        } else {
            Finding::PeerRejected(answer)
        }
    }

    /// The 1034 the Edge adds to a peer's error final response that carried no ms-diagnostics of its own.
    pub fn outbound_peer_response(
        &self,
        status: u16,
        had_ms_diagnostics: bool,
        domain: &str,
        peer_server: &str,
    ) -> Option<MsDiagnostic> {
        if status < 400 || had_ms_diagnostics {
            return None;
        }
        self.peer_answer(peer_server, "", status, "", None, domain, "")
            .ms_diagnostic(&self.edge_fqdn)
    }
}
