//! The `check` lines of each finding: PASS, WARN or FAIL, the area, what was found and the fix. Where a line says
//! how the Edge answers, the status and codes come from the finding the Edge itself would return.

use super::words::{
    CLIENT_AUTH_REMOVAL, PEER_CLIENT_AUTH_FIX, chain_phrase, chain_words, date, diagnostic_words,
    edge_answer, name_match_text,
};
use super::{Finding, TlsProbe, ValidityState};
use crate::config::TlsVersion;
use crate::dns::SrvRecord;
use crate::pki::{CertFacts, ChainStatus, NO_NAME};
use crate::report::{Line, Status};
use crate::rules::outbound::ConnectFailure;
use crate::rules::srv::srv_target_text;
use crate::rules::{DomainName, NameMatch, NoSrv, Outside, Role, Rule1Failure};

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
                        edge_answer(self)
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
            } => chain_lines(self, target.as_ref(), cert.as_deref(), chain, *role),
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
            | F::DomainBlocked { .. }
            | F::DomainNotAllowed { .. }
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
            | F::PeerTimeout { .. } => {
                let x = self.explain();
                one(x.problem, x.fix)
            }
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
