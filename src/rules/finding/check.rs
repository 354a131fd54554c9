//! The `check` lines of each finding (the certificate ones in `check_cert.rs`): PASS, WARN or FAIL, the area, what was found and the fix. Where a line says
//! how the Edge answers, the status and codes come from the finding the Edge itself would return.

use super::words::{diagnostic_words, edge_answer};
use super::{Finding, TlsProbe};
use crate::config::TlsVersion;
use crate::dns::SrvRecord;
use crate::report::{Line, Status};
use crate::rules::outbound::ConnectFailure;
use crate::rules::srv::srv_target_text;
use crate::rules::{DomainName, NoSrv, Outside, Rule1Failure};

fn line(status: Status, rule: &str, detail: impl Into<String>, fix: Option<String>) -> Line {
    Line::new(status, rule, detail, fix)
}

/// `_sipfederationtls._tcp.D priority P weight W port N → T`.
fn record_line(domain: &DomainName, r: &SrvRecord) -> String {
    format!(
        "{} priority {} weight {} port {} → {}",
        domain.srv_name(),
        r.priority,
        r.weight,
        r.port,
        srv_target_text(r)
    )
}

/// The advice for a domain without a usable SRV record.
fn publish(domain: &DomainName) -> String {
    format!(
        "publish {} → <host>.{domain}:5061 (a host directly in {domain}, e.g. sip.{domain}) with an A record for it",
        domain.srv_name()
    )
}

/// The target to publish instead of `target` for `domain`: its first label in the domain (`sip` for the apex).
fn suggested_target(target: &DomainName, domain: &DomainName) -> String {
    // For the apex itself, its first label is the domain's own: "apex.apex.x" would be no advice at all.
    if target == domain {
        return format!("sip.{domain}");
    }
    let label = target.first_label().filter(|l| *l != "*").unwrap_or("sip");
    format!("{label}.{domain}")
}

fn outside_words(why: Outside) -> &'static str {
    match why {
        Outside::Apex => {
            "it is the domain itself (the apex), which this Edge is configured to refuse (policy.accept_apex_target = false)"
        }
        Outside::Subdomain => "it is in a subdomain of it",
        Outside::OtherDomain => "it is in another domain",
    }
}

fn tls_label(v: TlsVersion) -> &'static str {
    match v {
        TlsVersion::Tls12 => "TLS 1.2",
        TlsVersion::Tls13 => "TLS 1.3",
    }
}

/// How a TCP connection failed, with the Winsock symbol the Edge reports for it.
fn connect_words(kind: ConnectFailure) -> String {
    let what = match kind {
        ConnectFailure::Refused => "connection refused",
        ConnectFailure::TimedOut => "timed out",
        ConnectFailure::HostUnreachable => "unreachable",
        ConnectFailure::ResetDuringHandshake => "reset",
    };
    let failed = Finding::ConnectFailed {
        target: DomainName::default(),
        kind,
    };
    let symbol = failed.winsock().map(|w| w.symbol()).unwrap_or_default();
    format!("{what}, {symbol}")
}

impl Finding {
    /// The `check` lines of this finding (one for most, two for the EKUs, none for a missing client
    /// certificate, which `check` never sees).
    pub fn check_lines(&self) -> Vec<Line> {
        use Finding as F;
        let status = self.severity();
        let rule = self.rule();
        let one = |detail: String, fix: Option<String>| vec![line(status, rule, detail, fix)];
        match self {
            F::EdgeCertClientAuth { .. }
            | F::CertPresented { .. }
            | F::NoPeerCertificate { .. }
            | F::NameMatches { .. }
            | F::NameMismatch { .. }
            | F::NoSan { .. }
            | F::WildcardName { .. }
            | F::Eku { .. }
            | F::Validity { .. }
            | F::ChainTrusted { .. }
            | F::ChainRefused { .. }
            | F::ClientAuthEkuMissing { .. }
            | F::ClientCertAccepted { .. } => super::check_cert::lines(self),
            F::NoSrv {
                domain,
                why,
                server,
            } => {
                let srv = domain.srv_name();
                match why {
                    NoSrv::Dns(f) if !f.is_answer() => one(
                        format!(
                            "{srv}: {}, so whether {domain} publishes the record is unknown; an Edge whose DNS server fails like this answers {}",
                            f.describe(server),
                            edge_answer(self)
                        ),
                        Some(format!(
                            "check that the DNS server {server} runs and answers DNS on UDP and TCP, or give --dns IP[:PORT] of a DNS server that serves {domain}"
                        )),
                    ),
                    NoSrv::Dns(f) => one(
                        format!(
                            "{srv}: {}; the Edge answers {}",
                            f.describe(server),
                            edge_answer(self)
                        ),
                        Some(publish(domain)),
                    ),
                    NoSrv::DecidedlyNotAvailable => one(
                        format!(
                            "{srv}: no usable SRV record (only \".\" targets); the Edge answers {}",
                            edge_answer(self)
                        ),
                        Some(publish(domain)),
                    ),
                }
            }
            F::SrvRecordFound { record, domain } => one(record_line(domain, record), None),
            F::SrvDotRecord {
                record,
                domain,
                alone,
            } => {
                let text = record_line(domain, record);
                if *alone {
                    let no_srv = F::NoSrv {
                        domain: domain.clone(),
                        why: NoSrv::DecidedlyNotAvailable,
                        server: String::new(),
                    };
                    one(
                        format!(
                            "{text}: a target of \".\" means \"service decidedly not available\" (RFC 2782), so {domain} says it does not federate; the Edge answers {} (no usable SRV record), both directions",
                            edge_answer(&no_srv)
                        ),
                        Some(format!(
                            "if {domain} should federate, replace this record: {}",
                            publish(domain)
                        )),
                    )
                } else {
                    one(
                        format!(
                            "{text}: a target of \".\" (RFC 2782: \"service decidedly not available\") next to other records; the Edge ignores it"
                        ),
                        Some(format!(
                            "remove this record from {}: \".\" belongs only in the single SRV record of a domain that does not federate",
                            domain.srv_name()
                        )),
                    )
                }
            }
            F::TargetInDomain { target, domain } => one(format!("{target} is in {domain}"), None),
            F::TargetOutsideDomain {
                target,
                domain,
                why,
                ignored,
            } => {
                let text = format!("{target} is not in {domain}: {}", outside_words(*why));
                let srv = domain.srv_name();
                if *ignored {
                    one(
                        format!("{text}; the Edge ignores this record"),
                        Some(format!("remove this record from {srv}")),
                    )
                } else {
                    let mismatch = F::SrvNotInDomain {
                        failure: Rule1Failure {
                            domain: domain.clone(),
                            fqdns: Vec::new(),
                        },
                        dir: crate::rules::Direction::Outbound,
                    };
                    let fix_target = suggested_target(target, domain);
                    let apex = if target == domain {
                        ", or set policy.accept_apex_target = true"
                    } else {
                        ""
                    };
                    one(
                        format!(
                            "{text}; the Edge answers {} (both directions)",
                            edge_answer(&mismatch)
                        ),
                        Some(format!(
                            "publish {srv} → {fix_target} (and add {fix_target} to the certificate's SAN){apex}"
                        )),
                    )
                }
            }
            F::Addresses { target, addrs } => {
                let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                one(format!("{target} → {}", list.join(", ")), None)
            }
            F::NoAddress {
                target,
                failure,
                server,
                ..
            } => {
                let publish = format!("publish an A record for {target}");
                let (why, fix) = match failure {
                    Some(f) if !f.is_answer() => (
                        f.describe(server),
                        format!(
                            "check that the DNS server {server} runs and answers DNS on UDP and TCP, or give --dns IP[:PORT] of a DNS server that serves {target}"
                        ),
                    ),
                    Some(f) => (f.describe(server), publish),
                    None => ("no addresses".to_string(), publish),
                };
                one(format!("{target}: {why}"), Some(fix))
            }
            F::TcpAccepts { target, addr } => {
                one(format!("{target} {addr} accepts TCP connections"), None)
            }
            F::AddressDead {
                target,
                addr,
                kind,
                detail,
                live,
            } => {
                let why = match kind {
                    Some(k) => format!("{detail} ({})", connect_words(*k)),
                    None => detail.clone(),
                };
                let port = addr.port();
                match live {
                    Some(good) => one(
                        format!(
                            "{target} {addr}: {why}; another address of {target} answers and the Edge connects through {}, so calls still work",
                            std::net::SocketAddr::new(*good, port)
                        ),
                        Some(format!(
                            "remove {} from the A/AAAA records of {target}, or make it accept SIP TLS on port {port} as well",
                            addr.ip()
                        )),
                    ),
                    None => one(
                        format!("{target} {addr}: {why}"),
                        Some(format!(
                            "check that the Expressway-E listens for SIP TLS on port {port} (the SRV port) and that firewalls allow it from the Edge"
                        )),
                    ),
                }
            }
            F::TlsProbe {
                target,
                version,
                probe,
            } => {
                let label = tls_label(*version);
                match probe {
                    TlsProbe::Offered => {
                        let note = if *version == TlsVersion::Tls13 {
                            " (a Skype for Business Edge on Windows Server 2019 or older negotiates 1.2)"
                        } else {
                            ""
                        };
                        one(format!("{label} offered by {target}{note}"), None)
                    }
                    TlsProbe::NotOffered { detail } if *version == TlsVersion::Tls12 => one(
                        format!("{label} not offered by {target} ({detail})"),
                        Some(
                            "enable TLS 1.2 on the Expressway-E SIP TLS port: a Skype for Business Edge negotiates TLS 1.2"
                                .to_string(),
                        ),
                    ),
                    TlsProbe::NotOffered { .. } => one(
                        format!("{label} not offered by {target} (fine: the Edge uses TLS 1.2)"),
                        None,
                    ),
                    TlsProbe::Refused { detail, timed_out } => {
                        let reset = F::ConnectFailed {
                            target: target.clone(),
                            kind: ConnectFailure::ResetDuringHandshake,
                        };
                        one(
                            format!(
                                "{label}: {target} {} the handshake with the Edge certificate as client certificate ({detail})",
                                if *timed_out { "did not finish" } else { "reset" }
                            ),
                            Some(format!(
                                "make {target} trust the Edge's CA (import it on the Expressway-E trusted CA list) and check that the Edge certificate has the Client Authentication EKU; the Edge sees this as ms-diagnostics {}",
                                diagnostic_words(&reset)
                            )),
                        )
                    }
                    TlsProbe::Error { error } => one(format!("{label}: {error}"), None),
                }
            }
            F::NoTlsVersion { target } => one(
                format!("no TLS version could be negotiated with {target}"),
                Some("enable TLS 1.2 on the Expressway-E".to_string()),
            ),
            F::PeerAnswered(a) => one(
                format!("{} {} → {} {}", a.method, a.callee, a.status, a.reason),
                None,
            ),
            F::PeerRejected(a) => one(
                format!(
                    "{m} {} → {} {}: the peer answers SIP but refuses {m}",
                    a.callee,
                    a.status,
                    a.reason,
                    m = a.method
                ),
                Some(format!(
                    "allow {} from {} on the Expressway-E (search rules / zones) if the Edge's monitoring needs it",
                    a.method, a.edge_domain
                )),
            ),
            F::OptionsNotSent { callee } => one(
                format!(
                    "OPTIONS {callee} not sent: the Edge does not send SIP to a peer whose certificate it refuses (see the cert lines)"
                ),
                None,
            ),
            F::OptionsFailed {
                callee,
                explanation,
                target,
                port,
            } => one(
                format!("OPTIONS {callee} failed: {explanation}"),
                Some(format!(
                    "check that {target}:{port} answers SIP over TLS and accepts the Edge's client certificate"
                )),
            ),
            // The Edge's own outcomes: their explanation is the line.
            F::NoSenderDomain
            | F::FederationOff { .. }
            | F::DomainBlocked { .. }
            | F::DomainNotAllowed { .. }
            | F::PartnerThrottled { .. }
            | F::PartnerContactsLimit { .. }
            | F::UnverifiedSender { .. }
            | F::BadTarget { .. }
            | F::SrvNotInDomain { .. }
            | F::ConnectFailed { .. }
            | F::EdgeCertUnusable { .. }
            | F::TlsVersionRefused { .. }
            | F::ForeignRequestUri { .. }
            | F::UnknownUser { .. }
            | F::BadExtension { .. }
            | F::TooManyHops { .. }
            | F::RateLimited { .. }
            | F::TooManyCalls { .. }
            | F::MemberOutOfService { .. }
            | F::PeerTimeout { .. } => {
                let x = self.explain();
                one(x.problem, x.fix)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Why Rule 1 refuses a target, in `check`'s words.
    fn rule1_why(target: &str, domain: &str) -> &'static str {
        let why = Outside::of(target, &domain.into(), false).expect("refused");
        outside_words(why)
    }

    #[test]
    fn rule1_wording_and_suggestion() {
        let suggested_target = |t: &str, d: &str| suggested_target(&t.into(), &d.into());
        assert_eq!(
            rule1_why("vcse.steven.lab", "acano.steven.lab"),
            "it is in another domain"
        );
        assert_eq!(
            rule1_why("vcse.sub.cms.steven.lab.", "cms.steven.lab"),
            "it is in a subdomain of it"
        );
        assert_eq!(
            suggested_target("vcse.steven.lab", "acano.steven.lab"),
            "vcse.acano.steven.lab"
        );
        assert_eq!(suggested_target("*.steven.lab", "x.lab"), "sip.x.lab");
        assert_eq!(
            suggested_target("Apex.steven.lab.", "apex.steven.lab"),
            "sip.apex.steven.lab"
        );
        assert_eq!(
            rule1_why("apex.steven.lab", "apex.steven.lab"),
            "it is the domain itself (the apex), which this Edge is configured to refuse (policy.accept_apex_target = false)"
        );
    }
}
