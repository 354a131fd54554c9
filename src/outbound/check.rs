//! `edgesim check`: is a domain ready to federate with a Skype for Business / Lync Edge, both directions?
//!
//! DNS SRV, Rule 1 per target, A/AAAA, TCP, TLS 1.2 and 1.3 separately, the certificate (names, SAN vs CN,
//! wildcard, EKUs, validity, chain), and a SIP OPTIONS ping. Each line is PASS, WARN or FAIL with the fix.
//! Rules come from [`crate::policy`]; this module only gathers facts and words them.

use std::net::IpAddr;

use rustls_pki_types::UnixTime;
use serde::Serialize;

use super::conn::{self, ConnectError, TlsVersions};
use super::words;
use super::{CallMethod, CallRequest, OutboundContext};
use crate::dns::{DnsFailure, SrvRecord, federation_srv_name};
use crate::pki::{CertFacts, ChainStatus, Usage, verify_chain};
use crate::policy::{
    ConnectFailure, NameMatch, NoSrv, SrvDecision, names_match, rule1_in_domain, rule1_pick,
    srv_decidedly_unavailable, srv_decision,
};

/// The opening of every line about a missing Client Authentication EKU (one wording for all of them).
const CLIENT_AUTH_REMOVAL: &str = "Public CAs stop issuing clientAuth (2026–2027; Cisco FN74362)";

/// The fix for a peer certificate without the Client Authentication EKU.
const PEER_CLIENT_AUTH_FIX: &str = "reissue it with both Server and Client Authentication EKUs (a private CA, or a CA that still issues clientAuth), or on Expressway X15.5+ install a separate client certificate";

/// PASS, WARN or FAIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    /// `PASS`, `WARN` or `FAIL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckLine {
    /// What was checked: `dns-srv`, `rule1`, `dns-a`, `tcp`, `tls`, `cert`, `inbound`, `sip`, `edge-cert`.
    pub area: String,
    /// The verdict.
    pub status: Status,
    /// What was found.
    pub text: String,
    /// The concrete fix, for WARN and FAIL.
    pub fix: Option<String>,
}

/// The readiness report for one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The domain checked.
    pub domain: String,
    /// The lines in check order.
    pub lines: Vec<CheckLine>,
}

impl Report {
    fn push(&mut self, area: &str, status: Status, text: impl Into<String>, fix: Option<String>) {
        self.lines.push(CheckLine {
            area: area.to_string(),
            status,
            text: text.into(),
            fix,
        });
    }

    fn pass(&mut self, area: &str, text: impl Into<String>) {
        self.push(area, Status::Pass, text, None);
    }

    /// True when any line is FAIL.
    pub fn has_fail(&self) -> bool {
        self.lines.iter().any(|l| l.status == Status::Fail)
    }

    /// Lines of one area.
    pub fn area(&self, area: &str) -> Vec<&CheckLine> {
        self.lines.iter().filter(|l| l.area == area).collect()
    }

    /// The report for people: one line each, the fix indented under it.
    pub fn render(&self) -> String {
        let mut out = format!(
            "Federation readiness of {} with a Skype for Business Edge\n",
            self.domain
        );
        for l in &self.lines {
            out.push_str(&format!("{} {:<9} {}\n", l.status.as_str(), l.area, l.text));
            if let Some(fix) = &l.fix {
                out.push_str(&format!("     {:<9} fix: {fix}\n", ""));
            }
        }
        let fails = self
            .lines
            .iter()
            .filter(|l| l.status == Status::Fail)
            .count();
        let warns = self
            .lines
            .iter()
            .filter(|l| l.status == Status::Warn)
            .count();
        out.push_str(&format!("{fails} FAIL, {warns} WARN\n"));
        out
    }
}

/// Why Rule 1 refused a target, in words.
fn rule1_why(target: &str, domain: &str) -> &'static str {
    let t = target.trim_end_matches('.').to_ascii_lowercase();
    if t == domain {
        "it is the domain itself (the apex), which this Edge is configured to refuse (policy.accept_apex_target = false)"
    } else if t.ends_with(&format!(".{domain}")) {
        "it is in a subdomain of it"
    } else {
        "it is in another domain"
    }
}

fn suggested_target(target: &str, domain: &str) -> String {
    // For the apex itself, its first label is the domain's own: "apex.apex.x" would be no advice at all.
    if target.trim_end_matches('.').eq_ignore_ascii_case(domain) {
        return format!("sip.{domain}");
    }
    let label = target
        .split('.')
        .next()
        .filter(|l| !l.is_empty() && *l != "*")
        .unwrap_or("sip");
    format!("{label}.{domain}")
}

fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// Runs every check for `domain` and returns the report.
pub async fn check(ctx: &OutboundContext, domain: &str) -> Report {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let mut r = Report {
        domain: domain.clone(),
        lines: Vec::new(),
    };
    check_edge_cert(ctx, &mut r);
    let srv_name = federation_srv_name(&domain);
    let Some(records) = srv_records(ctx, &mut r, &domain, &srv_name).await else {
        return r;
    };

    // Rule 1, per target.
    let accept_apex = ctx.policy.accept_apex_target;
    let picked = rule1_pick(&domain, &records, accept_apex).ok().cloned();
    for rec in &records {
        if rule1_in_domain(&rec.target, &domain, accept_apex) {
            r.pass("rule1", format!("{} is in {domain}", rec.target));
            continue;
        }
        let fix_target = suggested_target(&rec.target, &domain);
        let text = format!(
            "{} is not in {domain}: {}",
            rec.target,
            rule1_why(&rec.target, &domain)
        );
        if picked.is_some() {
            r.push(
                "rule1",
                Status::Warn,
                format!("{text}; the Edge ignores this record"),
                Some(format!("remove this record from {srv_name}")),
            );
        } else {
            r.push(
                "rule1",
                Status::Fail,
                format!("{text}; the Edge answers 504 with ms-diagnostics 1009 (both directions)"),
                Some(format!(
                    "publish {srv_name} → {fix_target} (and add {fix_target} to the certificate's SAN){}",
                    if rec.target.trim_end_matches('.').eq_ignore_ascii_case(&domain) {
                        ", or set policy.accept_apex_target = true"
                    } else {
                        ""
                    }
                )),
            );
        }
    }
    // Without an acceptable target, go on with the first one: its certificate problems matter too.
    let chosen: SrvRecord = match picked {
        Some(p) => p,
        None => {
            let mut sorted = records.clone();
            sorted.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
            match sorted.into_iter().next() {
                Some(s) => s,
                None => return r,
            }
        }
    };

    // A/AAAA per target.
    let mut chosen_addrs: Vec<IpAddr> = Vec::new();
    for rec in &records {
        match ctx.lookup.addrs(&rec.target).await {
            Ok(a) if !a.is_empty() => {
                let list: Vec<String> = a.iter().map(ToString::to_string).collect();
                r.pass("dns-a", format!("{} → {}", rec.target, list.join(", ")));
                if rec.target == chosen.target {
                    chosen_addrs = a;
                }
            }
            other => {
                let why = match other {
                    Err(f) => f.describe(&ctx.lookup.server()),
                    Ok(_) => "no addresses".to_string(),
                };
                r.push(
                    "dns-a",
                    Status::Fail,
                    format!("{}: {why}", rec.target),
                    Some(format!("publish an A record for {}", rec.target)),
                );
            }
        }
    }
    if chosen_addrs.is_empty() {
        return r;
    }

    let target = chosen.target.clone();
    let port = chosen.port;
    let Some(ip) = tcp_lines(ctx, &mut r, &target, port, &chosen_addrs).await else {
        return r;
    };

    // TLS versions, separately.
    let mut chain = None;
    let mut resets = 0;
    for (versions, label) in [
        (TlsVersions::Tls12, "TLS 1.2"),
        (TlsVersions::Tls13, "TLS 1.3"),
    ] {
        match probe_tls(ctx, ip, port, &target, versions).await {
            Ok(c) => {
                let note = if versions == TlsVersions::Tls13 {
                    " (a Skype for Business Edge on Windows Server 2019 or older negotiates 1.2)"
                } else {
                    ""
                };
                r.pass("tls", format!("{label} offered by {target}{note}"));
                if chain.is_none() {
                    chain = Some(c);
                }
            }
            Err(ConnectError::Tls {
                kind: ConnectFailure::ResetDuringHandshake,
                detail,
                ..
            }) if is_version_refusal(&detail) => {
                if versions == TlsVersions::Tls12 {
                    r.push(
                        "tls",
                        Status::Fail,
                        format!("{label} not offered by {target} ({detail})"),
                        Some(
                            "enable TLS 1.2 on the Expressway-E SIP TLS port: a Skype for Business Edge negotiates TLS 1.2"
                                .to_string(),
                        ),
                    );
                } else {
                    r.pass(
                        "tls",
                        format!("{label} not offered by {target} (fine: the Edge uses TLS 1.2)"),
                    );
                }
            }
            Err(ConnectError::Tls { detail, kind, .. }) => {
                resets += 1;
                r.push(
                    "tls",
                    Status::Fail,
                    format!(
                        "{label}: {target} {} the handshake with the Edge certificate as client certificate ({detail})",
                        if kind == ConnectFailure::TimedOut { "did not finish" } else { "reset" }
                    ),
                    Some(format!(
                        "make {target} trust the Edge's CA (import it on the Expressway-E trusted CA list) and check that the Edge certificate has the Client Authentication EKU; the Edge sees this as ms-diagnostics 1047 WSAECONNRESET"
                    )),
                );
            }
            Err(e) => r.push("tls", Status::Fail, format!("{label}: {e}"), None),
        }
    }
    let Some(chain) = chain else {
        if resets == 0 {
            r.push(
                "tls",
                Status::Fail,
                format!("no TLS version could be negotiated with {target}"),
                Some("enable TLS 1.2 on the Expressway-E".to_string()),
            );
        }
        return r;
    };
    check_certificate(ctx, &mut r, &target, &chain);
    check_inbound_chain(ctx, &mut r, &target, &chain);

    // SIP OPTIONS over a fresh connection, as the Edge would send it.
    options_ping(ctx, &mut r, &domain, &target, port, &chosen_addrs).await;
    r
}

/// The SRV lines: the records found (or why none), and each `.` target (RFC 2782). Returns the records
/// Rule 1 looks at, or `None` when there is no usable one (the report ends there).
async fn srv_records(
    ctx: &OutboundContext,
    r: &mut Report,
    domain: &str,
    srv_name: &str,
) -> Option<Vec<SrvRecord>> {
    let server = ctx.lookup.server();
    let publish = format!(
        "publish {srv_name} → <host>.{domain}:5061 (a host directly in {domain}, e.g. sip.{domain}) with an A record for it"
    );
    let answer = ctx.lookup.srv(srv_name).await;
    let records = match answer {
        Ok(recs) if !recs.is_empty() => recs,
        Ok(_) => {
            let words = DnsFailure::NoRecords.describe(&server);
            let text =
                format!("{srv_name}: {words}; the Edge answers 504 with ms-diagnostics 1008");
            r.push("dns-srv", Status::Fail, text, Some(publish));
            return None;
        }
        Err(f) if f.is_answer() => {
            let words = f.describe(&server);
            let text =
                format!("{srv_name}: {words}; the Edge answers 504 with ms-diagnostics 1008");
            r.push("dns-srv", Status::Fail, text, Some(publish));
            return None;
        }
        Err(f) => {
            // The server failed: nothing is known about the record, so publishing it is not the advice.
            r.push(
                "dns-srv",
                Status::Fail,
                format!(
                    "{srv_name}: {}, so whether {domain} publishes the record is unknown; an Edge whose DNS server fails like this answers 504 with ms-diagnostics 1008",
                    f.describe(&server)
                ),
                Some(format!(
                    "check that the DNS server {server} runs and answers DNS on UDP and TCP, or give --dns IP[:PORT] of a DNS server that serves {domain}"
                )),
            );
            return None;
        }
    };
    let no_usable = matches!(
        srv_decision(domain, &Ok(records.clone()), ctx.policy.accept_apex_target),
        SrvDecision::NoSrv(NoSrv::DecidedlyNotAvailable)
    );
    for rec in &records {
        let line = format!(
            "{srv_name} priority {} weight {} port {} → {}",
            rec.priority,
            rec.weight,
            rec.port,
            words::srv_target(rec)
        );
        if !srv_decidedly_unavailable(rec) {
            r.pass("dns-srv", line);
        } else if no_usable {
            r.push(
                "dns-srv",
                Status::Fail,
                format!(
                    "{line}: a target of \".\" means \"service decidedly not available\" (RFC 2782), so {domain} says it does not federate; the Edge answers 504 with ms-diagnostics 1008 (no usable SRV record), both directions"
                ),
                Some(format!(
                    "if {domain} should federate, replace this record: {publish}"
                )),
            );
        } else {
            r.push(
                "dns-srv",
                Status::Warn,
                format!(
                    "{line}: a target of \".\" (RFC 2782: \"service decidedly not available\") next to other records; the Edge ignores it"
                ),
                Some(format!(
                    "remove this record from {srv_name}: \".\" belongs only in the single SRV record of a domain that does not federate"
                )),
            );
        }
    }
    if no_usable {
        return None;
    }
    Some(
        records
            .into_iter()
            .filter(|rec| !srv_decidedly_unavailable(rec))
            .collect(),
    )
}

/// TCP to every address of the target. An address that fails while another answers is a WARN naming it (the
/// Edge tries the addresses in order and connects through the one that answers); all failing is a FAIL.
/// Returns the first address that answered.
async fn tcp_lines(
    ctx: &OutboundContext,
    r: &mut Report,
    target: &str,
    port: u16,
    addrs: &[IpAddr],
) -> Option<IpAddr> {
    let mut results = Vec::new();
    for ip in addrs {
        let addr = std::net::SocketAddr::new(*ip, port);
        results.push((addr, conn::tcp_connect(addr, ctx.timeouts.connect).await));
    }
    let answering: Vec<std::net::SocketAddr> = results
        .iter()
        .filter(|(_, res)| res.is_ok())
        .map(|(addr, _)| *addr)
        .collect();
    let listen_fix = format!(
        "check that the Expressway-E listens for SIP TLS on port {port} (the SRV port) and that firewalls allow it from the Edge"
    );
    for (addr, res) in results {
        let why = match res {
            Ok(_) => {
                r.pass("tcp", format!("{target} {addr} accepts TCP connections"));
                continue;
            }
            Err(ConnectError::Tcp { kind, detail, .. }) => {
                format!("{detail} ({})", failure_word(kind))
            }
            Err(e) => e.to_string(),
        };
        match answering.first() {
            Some(good) => r.push(
                "tcp",
                Status::Warn,
                format!(
                    "{target} {addr}: {why}; another address of {target} answers and the Edge connects through {good}, so calls still work"
                ),
                Some(format!(
                    "remove {} from the A/AAAA records of {target}, or make it accept SIP TLS on port {port} as well",
                    addr.ip()
                )),
            ),
            None => r.push(
                "tcp",
                Status::Fail,
                format!("{target} {addr}: {why}"),
                Some(listen_fix.clone()),
            ),
        }
    }
    answering.first().map(std::net::SocketAddr::ip)
}

fn failure_word(kind: ConnectFailure) -> &'static str {
    match kind {
        ConnectFailure::Refused => "connection refused, WSAECONNREFUSED",
        ConnectFailure::TimedOut => "timed out, WSAETIMEDOUT",
        ConnectFailure::HostUnreachable => "unreachable, WSAEHOSTUNREACH",
        ConnectFailure::ResetDuringHandshake => "reset, WSAECONNRESET",
    }
}

fn is_version_refusal(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("protocolversion")
        || d.contains("protocol version")
        || d.contains("handshakefailure")
}

async fn probe_tls(
    ctx: &OutboundContext,
    ip: IpAddr,
    port: u16,
    target: &str,
    versions: TlsVersions,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, ConnectError> {
    let config =
        conn::client_config(Some(&ctx.identity), versions).map_err(|e| ConnectError::Tls {
            addr: std::net::SocketAddr::new(ip, port),
            kind: ConnectFailure::ResetDuringHandshake,
            detail: e.to_string(),
        })?;
    let addr = std::net::SocketAddr::new(ip, port);
    let tcp = conn::tcp_connect(addr, ctx.timeouts.connect).await?;
    let mut c = conn::tls_handshake(tcp, addr, target, config, ctx.timeouts.handshake).await?;
    if versions == TlsVersions::Tls13 {
        // TLS 1.3: a server refusing our client certificate says so after our Finished, on the first read.
        use tokio::io::AsyncReadExt;
        let mut byte = [0u8; 1];
        let first = tokio::time::timeout(
            std::time::Duration::from_millis(150),
            c.stream.read(&mut byte),
        )
        .await;
        match first {
            Ok(Err(e)) => {
                return Err(ConnectError::Tls {
                    addr,
                    kind: conn::tls_failure(&e),
                    detail: e.to_string(),
                });
            }
            Ok(Ok(0)) => {
                return Err(ConnectError::Tls {
                    addr,
                    kind: ConnectFailure::ResetDuringHandshake,
                    detail: "the peer closed the connection right after the handshake".into(),
                });
            }
            _ => {}
        }
    }
    Ok(c.chain)
}

fn check_edge_cert(ctx: &OutboundContext, r: &mut Report) {
    let Some(facts) = ctx
        .identity
        .chain
        .first()
        .and_then(|d| CertFacts::from_der(d).ok())
    else {
        return;
    };
    let name = facts.display_name();
    if facts.allows_client_auth() {
        r.pass(
            "edge-cert",
            format!("Edge certificate {name} can act as TLS client certificate (Client Authentication EKU or no EKU extension)"),
        );
    } else {
        r.push(
            "edge-cert",
            Status::Warn,
            format!(
                "{CLIENT_AUTH_REMOVAL}: the Edge certificate {name} has no Client Authentication EKU, and the Edge presents it as TLS client certificate when it calls the Expressway-E"
            ),
            Some(format!(
                "reissue {name} with both Server and Client Authentication EKUs (a private CA, or a CA that still issues clientAuth)"
            )),
        );
    }
}

fn check_certificate(
    ctx: &OutboundContext,
    r: &mut Report,
    target: &str,
    chain: &[rustls_pki_types::CertificateDer<'static>],
) {
    let Some(facts) = chain.first().and_then(|d| CertFacts::from_der(d).ok()) else {
        r.push(
            "cert",
            Status::Fail,
            format!("{target} presented no readable certificate"),
            Some(format!(
                "install a server certificate for {target} on the Expressway-E"
            )),
        );
        return;
    };
    let name = facts.display_name();
    let san = match &facts.san_dns {
        Some(s) => s.join(", "),
        None => "(no SAN extension)".to_string(),
    };
    r.pass(
        "cert",
        format!(
            "{target} presents {} issued by {}; SAN: {san}",
            if facts.subject.is_empty() {
                "(empty subject)".to_string()
            } else {
                facts.subject.clone()
            },
            facts.issuer
        ),
    );

    // Rule 2 (both directions: the same certificate is the Expressway's TLS client certificate toward the Edge).
    let m = names_match(&facts, target, ctx.policy.allow_wildcard);
    if m.passes() {
        r.pass(
            "cert",
            format!("{} (Rule 2, both directions)", m.explain(target)),
        );
    } else {
        let text = match &m {
            NameMatch::Absent => format!(
                "{target} is not in the certificate of {name} (SAN: {san}); the Edge answers 504 with ms-diagnostics 1010 SEC_E_WRONG_PRINCIPAL"
            ),
            other => other.explain(target),
        };
        r.push(
            "cert",
            Status::Fail,
            text,
            Some(format!("add {target} to the certificate's SAN")),
        );
    }
    if facts.san_dns.is_none() {
        r.push(
            "cert",
            Status::Warn,
            "the certificate has no SAN extension: the Edge falls back to the subject CN, Expressway and modern clients do not",
            Some(format!("reissue the certificate with {target} in the SAN")),
        );
    }
    if facts.has_wildcard() {
        r.push(
            "cert",
            Status::Warn,
            "the certificate carries a wildcard name: the Skype for Business Edge does not accept wildcard matches, and Expressway does not support wildcard certificates",
            Some(format!("name {target} explicitly in the SAN")),
        );
    }

    // EKUs.
    if facts.allows_server_auth() {
        r.pass(
            "cert",
            "EKU: Server Authentication allowed (calls from the Edge)",
        );
    } else {
        r.push(
            "cert",
            Status::Fail,
            "EKU: no Server Authentication; the Edge refuses the certificate on its calls to the peer",
            Some("reissue the certificate with the Server Authentication EKU".to_string()),
        );
    }
    if facts.allows_client_auth() {
        r.pass(
            "cert",
            "EKU: Client Authentication allowed (calls to the Edge, mutual TLS)",
        );
    } else {
        let status = if ctx.policy.require_client_auth_eku {
            Status::Fail
        } else {
            Status::Warn
        };
        r.push(
            "cert",
            status,
            format!("{CLIENT_AUTH_REMOVAL}: this certificate has Server Authentication but no Client Authentication EKU, and the Expressway-E presents it as its TLS client certificate when it calls the Edge (federation is mutual TLS)"),
            Some(PEER_CLIENT_AUTH_FIX.to_string()),
        );
    }

    // Validity.
    let now = UnixTime::now().as_secs() as i64;
    let days = facts.days_left(now);
    if now < facts.not_before {
        r.push(
            "cert",
            Status::Fail,
            format!(
                "the certificate is not valid before {}",
                date(facts.not_before)
            ),
            Some("check the clocks, or reissue the certificate".to_string()),
        );
    } else if days < 0 || now > facts.not_after {
        r.push(
            "cert",
            Status::Fail,
            format!("the certificate expired on {}; the Edge answers 504 with ms-diagnostics 1010 SEC_E_CERT_EXPIRED", date(facts.not_after)),
            Some(format!("renew the certificate of {target}")),
        );
    } else if days < 30 {
        r.push(
            "cert",
            Status::Warn,
            format!(
                "the certificate expires on {} ({days} days left)",
                date(facts.not_after)
            ),
            Some(format!(
                "renew the certificate of {target} before {}",
                date(facts.not_after)
            )),
        );
    } else {
        r.pass(
            "cert",
            format!("valid until {} ({days} days left)", date(facts.not_after)),
        );
    }

    // Chain to the Edge's trust store.
    match verify_chain(chain, &ctx.anchors, Usage::Any, UnixTime::now()) {
        ChainStatus::Trusted => r.pass("cert", format!("the chain of {name} leads to a CA the Edge trusts")),
        ChainStatus::UntrustedRoot => r.push(
            "cert",
            Status::Fail,
            format!(
                "the chain of {name} (issuer {}) does not lead to a CA the Edge trusts; the Edge answers 504 with ms-diagnostics 1010 SEC_E_UNTRUSTED_ROOT",
                facts.issuer
            ),
            Some(format!(
                "import the CA of {} into the Edge's trusted store (edgesim: --ca / tls.ca), or use a public CA certificate; send the intermediate certificates in the chain",
                facts.issuer
            )),
        ),
        ChainStatus::Expired | ChainStatus::NotYetValid => {}
        other => r.push(
            "cert",
            Status::Fail,
            format!("the chain of {name} is not usable: {}", words::chain(&other)),
            Some("reissue the certificate from a CA the Edge trusts".to_string()),
        ),
    }
}

/// The other direction: the Expressway-E presents the same certificate as TLS client when it calls the Edge,
/// and the Edge validates it as a client certificate (chain, validity, Client Authentication EKU).
fn check_inbound_chain(
    ctx: &OutboundContext,
    r: &mut Report,
    target: &str,
    chain: &[rustls_pki_types::CertificateDer<'static>],
) {
    let Some(facts) = chain.first().and_then(|d| CertFacts::from_der(d).ok()) else {
        return; // check_certificate already said so
    };
    let name = facts.display_name();
    let reset = format!(
        "the Edge resets the TLS handshake when the Expressway-E calls it with {name} as client certificate"
    );
    match verify_chain(chain, &ctx.anchors, Usage::ClientAuth, UnixTime::now()) {
        ChainStatus::Trusted => r.pass(
            "inbound",
            format!("{name} passes the Edge's client-certificate validation (trusted chain, valid, Client Authentication allowed): calls from the Expressway-E can be accepted"),
        ),
        ChainStatus::WrongUsage => {
            // The same switch as the Edge's own inbound rule: edgesim can be told to let it through.
            let status = if ctx.policy.require_client_auth_eku {
                Status::Fail
            } else {
                Status::Warn
            };
            r.push(
                "inbound",
                status,
                format!("{CLIENT_AUTH_REMOVAL}: {name} has no Client Authentication EKU, so the Edge refuses it as the Expressway-E's client certificate and calls from {target} to the Edge fail"),
                Some(PEER_CLIENT_AUTH_FIX.to_string()),
            );
        }
        ChainStatus::UntrustedRoot => r.push(
            "inbound",
            Status::Fail,
            format!("{reset}: its chain (issuer {}) does not lead to a CA the Edge trusts", facts.issuer),
            Some(format!(
                "import the CA of {} into the Edge's trusted store (edgesim: --ca / tls.ca, or --system-roots / tls.use_system_roots for a public CA), and make the Expressway-E send its intermediate certificates",
                facts.issuer
            )),
        ),
        ChainStatus::Expired | ChainStatus::NotYetValid => r.push(
            "inbound",
            Status::Fail,
            format!(
                "{reset}: it is outside its validity period ({} to {})",
                date(facts.not_before),
                date(facts.not_after)
            ),
            Some(format!(
                "renew the certificate of {target} (the Expressway-E uses it as client certificate too), and check both clocks"
            )),
        ),
        ChainStatus::Missing => {}
        ChainStatus::Invalid(why) => r.push(
            "inbound",
            Status::Fail,
            format!("{reset}: {why}"),
            Some("reissue the certificate from a CA the Edge trusts".to_string()),
        ),
    }
}

async fn options_ping(
    ctx: &OutboundContext,
    r: &mut Report,
    domain: &str,
    target: &str,
    port: u16,
    addrs: &[IpAddr],
) {
    let req = CallRequest {
        target: format!("sip:Options_User@{domain}"),
        from: format!("sip:edgesim@{}", ctx.policy.edge_domain),
        method: CallMethod::Options,
        hold_ms: 0,
    };
    let out = super::call_to(ctx, &req, target, port, addrs.to_vec()).await;
    match out.class {
        super::OutcomeClass::Connected => r.pass(
            "sip",
            format!("OPTIONS {} → {} {}", req.target, out.final_status, out.reason),
        ),
        super::OutcomeClass::Rejected(code) => r.push(
            "sip",
            Status::Warn,
            format!(
                "OPTIONS {} → {code} {}: the peer answers SIP but refuses OPTIONS",
                req.target, out.reason
            ),
            Some(format!(
                "allow OPTIONS from {} on the Expressway-E (search rules / zones) if the Edge's monitoring needs it",
                ctx.policy.edge_domain
            )),
        ),
        super::OutcomeClass::CertMismatch
        | super::OutcomeClass::CertUntrusted
        | super::OutcomeClass::CertExpired => r.push(
            "sip",
            Status::Warn,
            format!(
                "OPTIONS {} not sent: the Edge does not send SIP to a peer whose certificate it refuses (see the cert lines)",
                req.target
            ),
            None,
        ),
        _ => r.push(
            "sip",
            Status::Fail,
            format!("OPTIONS {} failed: {}", req.target, out.explanation),
            Some(format!(
                "check that {target}:{port} answers SIP over TLS and accepts the Edge's client certificate"
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule1_wording_and_suggestion() {
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
