//! The Edge's explanation of each finding: what is wrong, and the fix (events, log lines, `call`, scenarios).

use super::words::{cert_names, chain_problem, other_ca_same_name};
use super::{Explanation, Finding};
use crate::config::ClientCertMode;
use crate::pki::{CertFacts, ChainProblem, ChainStatus, NO_NAME};
use crate::rules::handshake::{tls_version_fix, versions_text};
use crate::rules::outbound::ConnectFailure;
use crate::rules::{Direction, DomainName, NameMatch, NoSrv, Role, Rule1Failure};
use crate::sip::ua::EDGE_SUPPORTED;

impl Finding {
    /// What is wrong and the fix, in plain language: the explanation the Edge logs and sends in its events,
    /// and `call` prints. `check` and `certs inspect` word some facts for their audience
    /// ([`Finding::check_lines`], [`Finding::inspect_line`]).
    pub fn explain(&self) -> Explanation {
        use Finding as F;
        match self {
            F::NoSenderDomain => Explanation::new(
                "The request has no sip: P-Asserted-Identity or From host, so the Edge cannot tell which domain sent it.",
                "send a From (or PAI) sip: URI with the partner's domain.",
            ),
            F::FederationOff { domain } => Explanation::new(
                format!(
                    "Federation is off on this Edge: AllowFederatedUsers is False, so it refuses every federated domain, {domain} included; the Edge answered {}.",
                    self.answered()
                ),
                "set allow_federated_users = true in [access_edge] (on a real Edge: Set-CsAccessEdgeConfiguration -AllowFederatedUsers $true), or paste a Get-CsAccessEdgeConfiguration that shows AllowFederatedUsers : True.",
            ),
            F::PartnerThrottled {
                domain, sent, rate, ..
            } => Explanation::new(
                format!(
                    "{domain} is a discovered partner (found by DNS SRV, not on the allowed list) and sent {sent} messages within one second, over DiscoveredPartnerStandardRate = {rate}: the Edge answered {}.",
                    self.answered()
                ),
                format!(
                    "slow the peer down, or list {domain} as an allowed domain ([[allowed_domains]] Identity = \"{domain}\"; on a real Edge New-CsAllowedDomain -Identity {domain}), as Microsoft advises for a partner that sends more than {rate} messages per second; or raise access_edge.discovered_partner_standard_rate."
                ),
            ),
            F::PartnerContactsLimit {
                domain,
                user,
                max,
                period_minutes,
                ..
            } => Explanation::new(
                format!(
                    "{domain} is a discovered partner and has already reached {max} distinct users in this report period of {period_minutes} minutes (MaxContactsPerDiscoveredPartner = {max}): the request for {user}, a user it has not reached before, got {}.",
                    self.answered()
                ),
                format!(
                    "list {domain} as an allowed domain ([[allowed_domains]] Identity = \"{domain}\"; on a real Edge New-CsAllowedDomain -Identity {domain}), as Microsoft advises for a partner that must reach more than {max} users; or raise access_edge.max_contacts_per_discovered_partner, or set access_edge.enable_discovered_partner_contacts_limit = false."
                ),
            ),
            F::UnverifiedSender {
                domain,
                sender,
                user,
                partner,
                ..
            } => {
                let setting = match partner {
                    super::super::PartnerType::Discovered => {
                        "access_edge.discovered_partner_verification_level".to_owned()
                    }
                    _ => format!("the VerificationLevel of the allowed domain {domain}"),
                };
                Explanation::new(
                    format!(
                        "Messages from {domain} are unverified (AlwaysUnverifiable, {setting}): the Edge delivers them only to users who have the sender in their contacts, and {user} does not list {sender}; the Edge answered {}.",
                        self.answered()
                    ),
                    format!(
                        "add \"{sender}\" to the contacts of {user} ([[users]] contacts = [\"{sender}\"]), or set {setting} to UseSourceVerification or AlwaysVerifiable."
                    ),
                )
            }
            F::DomainBlocked { domain } => Explanation::new(
                format!("{domain} is on the Edge's blocked domain list."),
                format!(
                    "remove it from [[blocked_domains]] (or policy.blocked_domains; on a real Edge Remove-CsBlockedDomain -Identity {domain})."
                ),
            ),
            F::DomainNotAllowed { domain } => Explanation::new(
                format!(
                    "{domain} is not an allowed federated domain and partner discovery is off."
                ),
                format!(
                    "add it to [[allowed_domains]] (or policy.allowed_domains; on a real Edge New-CsAllowedDomain -Identity {domain}), or turn partner discovery on (access_edge.enable_partner_discovery = true, or policy.partner_discovery = true)."
                ),
            ),
            F::BadTarget { target } => Explanation::new(
                format!("{target} is not a sip: URI with a domain."),
                "call sip:user@domain.",
            ),
            F::NoSrv {
                domain,
                why,
                server,
            } => no_srv(domain, why, server),
            F::SrvNotInDomain { failure, dir } => rule1(
                failure,
                match dir {
                    Direction::Inbound => "the Expressway-E certificate",
                    Direction::Outbound => "the peer's certificate",
                },
            ),
            F::NoAddress {
                domain,
                target,
                failure,
                server,
            } => match failure {
                Some(f) if !f.is_answer() => Explanation::new(
                    format!(
                        "The A/AAAA lookup of {target}, the SRV target of {domain}, failed: {}.",
                        f.describe(server)
                    ),
                    format!(
                        "check that the DNS server {server} runs and answers DNS (UDP and TCP) and serves the zone of {target}."
                    ),
                ),
                _ => {
                    let why = failure
                        .as_ref()
                        .map_or_else(|| "no addresses".to_owned(), |f| f.describe(server));
                    Explanation::new(
                        format!(
                            "The SRV target {target} of {domain} has no A/AAAA record ({why})."
                        ),
                        format!("publish an A record for {target}."),
                    )
                }
            },
            F::ConnectFailed { target: t, kind } => match kind {
                ConnectFailure::ResetDuringHandshake => Explanation::new(
                    format!(
                        "{t} reset the TLS negotiation: it most likely does not trust the Edge's certificate (or requires a Client Authentication EKU it lacks)."
                    ),
                    "import the Edge's CA on the peer and check the Edge certificate's EKUs.",
                ),
                ConnectFailure::Refused => Explanation::new(
                    format!("Nothing accepts connections on {t}."),
                    "check the SRV port and that the peer listens for TLS there.",
                ),
                ConnectFailure::TimedOut => Explanation::new(
                    format!("{t} did not answer the connection in time."),
                    format!("check firewalls and the A record of {t}."),
                ),
                ConnectFailure::HostUnreachable => Explanation::new(
                    format!("{t} is unreachable."),
                    format!("check routing and the A record of {t}."),
                ),
            },
            F::EdgeCertUnusable { why } => {
                Explanation::only(format!("The Edge certificate cannot be used: {why}"))
            }
            F::NoPeerCertificate {
                target,
                dir,
                sender,
                setting,
            } => no_peer_certificate(target, *dir, sender, *setting),
            F::NameMismatch { target, cert, how } => match how {
                NameMatch::WildcardRefused(pattern) => Explanation::new(
                    format!(
                        "The peer certificate names {target} only through the wildcard {pattern}, and a Skype for Business Edge does not accept wildcards."
                    ),
                    format!(
                        "add {target} explicitly to the SAN, or set policy.allow_wildcard = true in edgesim."
                    ),
                ),
                _ => Explanation::new(
                    format!(
                        "The peer certificate {} does not name {target}: {}.",
                        cert.display_name(),
                        cert_names(target, cert)
                    ),
                    format!(
                        "add {target} to the certificate's SAN (the SIP domain itself need not be there)."
                    ),
                ),
            },
            F::ClientAuthEkuMissing { cert, .. } => Explanation::new(
                format!(
                    "The peer certificate {cert} lists Extended Key Usages but not Client Authentication, and the peer uses it as its TLS client certificate toward the Edge (federation is mutual TLS). Public CAs are removing the Client Authentication EKU from server certificates in 2026-2027 (Cisco field notice FN74362 for Expressway)."
                ),
                "use a certificate with both Server and Client Authentication EKUs (a private CA, or a CA that still issues clientAuth), or on Expressway X15.5+ a separate client certificate; to relax this check in edgesim set policy.require_client_auth_eku = false.",
            ),
            F::ChainRefused {
                target,
                cert,
                chain,
                role,
                ..
            } => chain_refused(target.as_ref(), cert.as_deref(), chain, *role),
            F::TlsVersionRefused { offered, accepted } => Explanation::new(
                format!(
                    "The peer offered only {} in its TLS ClientHello, and this Edge accepts {} (tls.versions): the handshake was refused.",
                    offered.describe(),
                    versions_text(accepted)
                ),
                tls_version_fix(offered, accepted),
            ),
            F::ForeignRequestUri {
                uri,
                host,
                edge_domain: edge,
                edge_fqdn: fqdn,
            } => {
                let what = if host.is_empty() {
                    format!("{uri}, which names no SIP domain")
                } else {
                    format!("{uri}, in {host}")
                };
                Explanation::new(
                    format!(
                        "The request is for {what}, but this Edge answers only for {edge} (and its own name {fqdn}); an Edge does not relay between federated domains."
                    ),
                    format!(
                        "address the Microsoft user in {edge} (sip:user@{edge}), and on the peer send only {edge} requests to this Edge (on an Expressway-E: the search rule toward the Microsoft DNS zone should match {edge} only)."
                    ),
                )
            }
            F::UnknownUser { uri, users } => {
                let answered = self.answered();
                if users.is_empty() {
                    Explanation::new(
                        format!("{uri} names no user: the Edge answered {answered}."),
                        "address a user (sip:user@<the Edge's domain>).",
                    )
                } else {
                    Explanation::new(
                        format!(
                            "{uri} is not one of the Edge's users ({}): the Edge answered {answered}.",
                            users.join(", ")
                        ),
                        "call one of them, or add the user to [[users]] in the Edge configuration.",
                    )
                }
            }
            F::BadExtension { tags } => {
                let list = tags.join(", ");
                Explanation::new(
                    format!(
                        "The request requires {list} (Require), which the Edge does not support (Supported: {EDGE_SUPPORTED}): the Edge answered {}.",
                        self.answered()
                    ),
                    format!("on the peer, stop requiring {list} toward Microsoft federation."),
                )
            }
            F::TooManyHops { uri } => Explanation::new(
                format!(
                    "The request for {uri} arrived with Max-Forwards: 0, so the Edge may not forward it to the user: the Edge answered {}.",
                    self.answered()
                ),
                "look for a routing loop between the peer and the hops before it (search rules, zones), or a hop that lowers Max-Forwards too far.",
            ),
            F::RateLimited { max } => Explanation::new(
                format!(
                    "The peer sent more than {max} requests within one second on this connection, over limits.max_requests_per_sec = {max}: the Edge answered {}.",
                    self.answered()
                ),
                "slow the peer down, or raise limits.max_requests_per_sec in the Edge configuration (ACK, and BYE/CANCEL of calls the connection holds, do not count).",
            ),
            F::TooManyCalls { max } => Explanation::new(
                format!(
                    "This connection already holds {max} calls, the most the Edge keeps per connection: the Edge answered {}.",
                    self.answered()
                ),
                "end calls (ACK every final response, BYE answered calls), or spread them over more connections.",
            ),
            F::MemberOutOfService { member } => Explanation::new(
                format!(
                    "The Edge pool member {member} is switched out of service (fault mode 503): the Edge answered {}.",
                    self.answered()
                ),
                "a peer should try the next SRV target or address of the pool; to put the member back, switch its fault mode to accept (Pool::set_fault, or the faults file and SIGUSR1).",
            ),
            F::PeerAnswered(a) => Explanation::only(format!(
                "{} answered the {} with {} {}: DNS SRV, the certificate (both directions of mutual TLS) and SIP routing to {} work.",
                a.target, a.method, a.status, a.reason, a.domain
            )),
            F::PeerRejected(a) => {
                let (target, status, reason) = (&a.target, a.status, &a.reason);
                match (&a.peer_diag, self.diagnostic_code()) {
                    (Some(d), _) => Explanation::new(
                        format!(
                            "{target} answered {status} {reason} with its own diagnostics ({d}). The federation path (DNS, TLS, certificates) works; the refusal comes from the peer side."
                        ),
                        "read the peer's diagnostic and its search history for this Call-ID.",
                    ),
                    (None, Some(added)) => Explanation::new(
                        format!(
                            "{target} answered {status} {reason} without ms-diagnostics, so the Edge added {added}. The federation path (DNS, TLS, certificates) works; the refusal comes from the peer side."
                        ),
                        format!(
                            "on the Expressway-E check the search rules/zones toward {} and that {} exists (Status > Search History shows this call).",
                            a.domain, a.callee
                        ),
                    ),
                    (None, None) => {
                        Explanation::only(format!("{target} answered {status} {reason}."))
                    }
                }
            }
            F::PeerTimeout {
                target,
                method,
                edge_domain,
            } => Explanation::new(
                format!(
                    "{target} accepted the TLS connection but did not answer the {method} in time."
                ),
                format!(
                    "check the Expressway-E search rules and zones for calls from {edge_domain}, and its event log for this Call-ID."
                ),
            ),
            // What only `check` reports is explained by its line.
            F::SrvRecordFound { .. }
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
            | F::OptionsFailed { .. } => {
                let lines = self.check_lines();
                let detail = lines.iter().map(|l| l.detail.as_str()).collect::<Vec<_>>();
                let fix = lines.iter().find_map(|l| l.fix.clone());
                Explanation {
                    problem: format!("{}.", detail.join("; ")),
                    fix: fix.map(|f| format!("{f}.")),
                }
            }
        }
    }

    /// What the Edge answered, as people quote it: `404 Not Found with ms-diagnostics 4005`,
    /// `503 Service Unavailable with Retry-After: 1`, `420 Bad Extension with Unsupported: 100rel`.
    fn answered(&self) -> String {
        let (status, reason) = self.sip().unwrap_or((0, ""));
        let mut text = format!("{status} {reason}");
        if let Some(code) = self.diagnostic_code() {
            text.push_str(&format!(" with ms-diagnostics {code}"));
        }
        for (name, value) in self.response_headers() {
            text.push_str(&format!(" with {name}: {value}"));
        }
        text
    }
}

fn no_srv(d: &DomainName, why: &NoSrv, server: &str) -> Explanation {
    let srv = d.srv_name();
    let asked = if server.is_empty() {
        String::new()
    } else {
        format!(" (answered by {server})")
    };
    let who = if server.is_empty() {
        "the Edge's DNS server"
    } else {
        server
    };
    match why {
        NoSrv::DecidedlyNotAvailable => Explanation::new(
            format!(
                "{srv} has no usable SRV record: its target is \".\", which RFC 2782 defines as \"service decidedly not available\" at {d}{asked}. {d} says it does not federate."
            ),
            format!(
                "if it should, replace that record with {srv} → <edge host>.{d}:5061, with an A record for that host in {d}."
            ),
        ),
        NoSrv::Dns(f) if f.is_answer() => Explanation::new(
            format!("{srv} has no SRV record ({}).", f.describe(server)),
            format!(
                "publish {srv} → <edge host>.{d}:5061, with an A record for that host in {d} (or point the Edge at the DNS server that serves {d})."
            ),
        ),
        NoSrv::Dns(f) => Explanation::new(
            format!("The SRV lookup of {srv} failed: {}.", f.describe(server)),
            format!(
                "check that {who} runs and answers DNS (UDP and TCP) and serves the zone of {d}, or point the Edge at a DNS server that does."
            ),
        ),
    }
}

fn rule1(f: &Rule1Failure, cert_owner: &str) -> Explanation {
    let d = &f.domain;
    let srv = d.srv_name();
    let targets: Vec<&str> = f
        .fqdns
        .iter()
        .map(|x| x.rsplit_once(':').map_or(x.as_str(), |(h, _)| h))
        .collect();
    // A target equal to the domain only fails Rule 1 when the apex switch is off, so say that instead of
    // "d is not in d", and never suggest "<first label of d>.d" for it.
    let apex = targets.iter().any(|t| *t == d.as_str());
    let first_label = targets
        .iter()
        .find(|t| **t != d.as_str())
        .and_then(|t| t.split('.').next())
        .filter(|l| !l.is_empty())
        .unwrap_or("sip");
    let suggestion = format!("{first_label}.{d}");
    let apex_fix = " or set policy.accept_apex_target = true";
    if targets.len() == 1 && apex {
        return Explanation::new(
            format!(
                "{srv} points to {d} itself (the domain apex), which this Edge is configured to refuse (policy.accept_apex_target = false)."
            ),
            format!(
                "publish {srv} → a host inside the domain such as {suggestion} (an A record in {d}) and put that name in {cert_owner}'s SAN,{apex_fix}."
            ),
        );
    }
    let which = if targets.len() == 1 {
        format!("{}, which is not", targets[0])
    } else {
        format!("{}, none of which is", targets.join(", "))
    };
    if apex {
        return Explanation::new(
            format!(
                "{srv} points to {which} in {d}; {d} itself is the domain apex, which this Edge is configured to refuse (policy.accept_apex_target = false)."
            ),
            format!(
                "publish {srv} → {suggestion} (an A record in {d}) and put that name in {cert_owner}'s SAN,{apex_fix}."
            ),
        );
    }
    Explanation::new(
        format!("{srv} points to {which} in {d}."),
        format!(
            "publish {srv} → {suggestion} (an A record in {d}) and put that name in {cert_owner}'s SAN."
        ),
    )
}

fn no_peer_certificate(
    target: &DomainName,
    dir: Direction,
    sender: &DomainName,
    setting: ClientCertMode,
) -> Explanation {
    if dir == Direction::Outbound {
        return Explanation::new(
            format!("{target} presented no certificate."),
            "install a server certificate on the peer.",
        );
    }
    let setting = match setting {
        ClientCertMode::Optional => r#"tls.client_cert = "optional""#,
        ClientCertMode::None => r#"tls.client_cert = "none""#,
        // Cannot happen (the handshake requires one); say what would have let it in.
        ClientCertMode::Required => r#"a tls.client_cert other than "required""#,
    };
    Explanation::new(
        format!(
            "The peer presented no TLS client certificate, so the Edge cannot check that it is {target} (where the federation route of {sender} leads). The connection got this far only because of {setting}; a real Edge refuses it at the TLS handshake."
        ),
        format!(
            "on the peer (Expressway-E), present a certificate with {target} in its SAN and the Client Authentication EKU when it connects as a TLS client; on the Edge, set tls.client_cert = \"required\" (the default) to refuse such peers at the handshake as a real Edge does."
        ),
    )
}

fn chain_refused(
    target: Option<&DomainName>,
    cert: Option<&CertFacts>,
    chain: &ChainStatus,
    role: Role,
) -> Explanation {
    let name = cert.map_or_else(|| NO_NAME.to_owned(), CertFacts::display_name);
    let issuer = cert.map(|c| c.issuer.as_str()).unwrap_or_default();
    let (problem, fix) = match role {
        Role::Server => {
            let t = target.map(DomainName::as_str).unwrap_or_default();
            let subject = format!("The certificate of {t} ({name})");
            match chain {
                ChainStatus::Trusted => (format!("{subject} is trusted."), String::new()),
                ChainStatus::Missing => (
                    format!("{t} presented no certificate."),
                    "install a server certificate on the peer.".into(),
                ),
                ChainStatus::UntrustedRoot => (
                    format!(
                        "The certificate of {t} ({name}, issued by {issuer}) does not chain to a CA the Edge trusts."
                    ),
                    "add that CA to tls.ca, or use a public CA certificate on the peer.".into(),
                ),
                ChainStatus::Expired | ChainStatus::NotYetValid => (
                    format!("{subject} is outside its validity period."),
                    "renew it, and check both clocks.".into(),
                ),
                ChainStatus::WrongUsage => (
                    format!("{subject} has an EKU extension without Server Authentication."),
                    "issue it with the Server Authentication EKU.".into(),
                ),
                ChainStatus::Invalid(ChainProblem::OtherCaSameName) => {
                    other_ca_same_name(&subject, issuer)
                }
                ChainStatus::Invalid(p) => chain_problem(&subject, p),
            }
        }
        Role::Client => {
            let subject = format!("The client certificate {name}");
            match chain {
                ChainStatus::Trusted => (format!("{subject} is trusted."), String::new()),
                ChainStatus::Missing => (
                    "The peer sent no client certificate; federation is mutual TLS.".into(),
                    "configure the peer (Expressway-E) to present its certificate as TLS client."
                        .into(),
                ),
                ChainStatus::UntrustedRoot => (
                    format!(
                        "The client certificate {name} (issued by {issuer}) does not chain to a CA the Edge trusts."
                    ),
                    "add that CA to tls.ca (or use a public CA certificate on the peer).".into(),
                ),
                ChainStatus::Expired | ChainStatus::NotYetValid => (
                    format!("{subject} is outside its validity period."),
                    "renew it, and check both clocks.".into(),
                ),
                ChainStatus::WrongUsage => (
                    format!(
                        "{subject} has no Client Authentication EKU. Public CAs are removing it from server certificates in 2026-2027 (Cisco field notice FN74362)."
                    ),
                    "use a certificate with both Server and Client Authentication EKUs.".into(),
                ),
                ChainStatus::Invalid(ChainProblem::OtherCaSameName) => {
                    other_ca_same_name(&subject, issuer)
                }
                ChainStatus::Invalid(p) => chain_problem(&subject, p),
            }
        }
    };
    if fix.is_empty() {
        Explanation::only(problem)
    } else {
        Explanation::new(problem, fix)
    }
}
