//! The network lines of the report: TCP per address, then TLS 1.2 and 1.3 separately (the facts gathered here,
//! the findings and their words from the rulebook).
//!
//! TLS is probed on the addresses that accepted TCP, in order, until one completes a handshake: as `call`
//! (`conn::connect_any`) moves on when an address refuses TLS, resets or stays silent (one Edge pool member
//! down behind DNS load balancing), so does `check`. With more than one address probed, each line names its
//! address, and the failures of an address before one that completed are WARN: the Edge gets through.

use std::net::{IpAddr, SocketAddr};

use rustls_pki_types::CertificateDer;

use super::{CheckLine, Report, Status};
use crate::config::TlsVersion;
use crate::outbound::OutboundContext;
use crate::outbound::conn::{self, ConnectError, TlsVersions};
use crate::rules::{self, ConnectFailure, DomainName, Finding, TlsProbe};

/// TCP to every address of the target (the rulebook words a dead one beside a live one as a WARN). Returns the
/// addresses that answered, in order.
pub(super) async fn tcp_lines(
    ctx: &OutboundContext,
    r: &mut Report,
    target: &DomainName,
    port: u16,
    addrs: &[IpAddr],
) -> Vec<IpAddr> {
    let mut results = Vec::new();
    for ip in addrs {
        let addr = std::net::SocketAddr::new(*ip, port);
        let result = match conn::tcp_connect(addr, ctx.timeouts.connect).await {
            Ok(_) => Ok(()),
            Err(ConnectError::Tcp { kind, detail, .. }) => Err((Some(kind), detail)),
            Err(e) => Err((None, e.to_string())),
        };
        results.push((addr, result));
    }
    for f in rules::outbound::tcp_findings(target, &results) {
        r.push(&f);
    }
    results
        .iter()
        .filter(|(_, res)| res.is_ok())
        .map(|(addr, _)| addr.ip())
        .collect()
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

/// TLS 1.2 and 1.3 separately on each of `ips` in turn until one completes, with the Edge certificate as
/// client certificate; returns the server chain of the first that completed (none: the report ends).
pub(super) async fn tls_lines(
    ctx: &OutboundContext,
    r: &mut Report,
    ips: &[IpAddr],
    port: u16,
    target: &DomainName,
) -> Option<Vec<CertificateDer<'static>>> {
    let mut probed = Vec::new();
    let mut chain = None;
    for ip in ips {
        let (findings, got) = tls_of_address(ctx, *ip, port, target).await;
        probed.push((SocketAddr::new(*ip, port), findings));
        if got.is_some() {
            chain = got;
            break;
        }
    }
    let many = probed.len() > 1;
    let through = chain.as_ref().and(probed.last().map(|(a, _)| *a));
    for (addr, findings) in &probed {
        let mut lines: Vec<CheckLine> = findings.iter().flat_map(Finding::check_lines).collect();
        if many {
            for l in &mut lines {
                per_address(l, *addr, through.filter(|t| t != addr));
            }
        }
        r.lines.extend(lines);
    }
    chain
}

/// A TLS line of one of several addresses probed: named by its address; a failure before `through`, the
/// address that completed, is a WARN (the Edge gets through that one).
fn per_address(line: &mut CheckLine, addr: SocketAddr, through: Option<SocketAddr>) {
    line.detail = format!("{addr}: {}", line.detail);
    if let (Some(t), Status::Fail) = (through, line.status) {
        line.status = Status::Warn;
        line.detail.push_str(&format!(
            "; the Edge moves on to the next address and connects through {t}"
        ));
    }
}

/// The TLS 1.2 and 1.3 findings of one address, and the server chain of the first version that completed.
async fn tls_of_address(
    ctx: &OutboundContext,
    ip: IpAddr,
    port: u16,
    target: &DomainName,
) -> (Vec<Finding>, Option<Vec<CertificateDer<'static>>>) {
    let mut findings = Vec::new();
    let mut chain = None;
    let mut resets = 0;
    for (versions, version) in [
        (TlsVersions::Tls12, TlsVersion::Tls12),
        (TlsVersions::Tls13, TlsVersion::Tls13),
    ] {
        let probe = match probe_tls(ctx, ip, port, target.as_str(), versions).await {
            Ok(c) => {
                chain.get_or_insert(c);
                TlsProbe::Offered
            }
            Err(ConnectError::Tls {
                kind: ConnectFailure::ResetDuringHandshake,
                detail,
                ..
            }) if is_version_refusal(&detail) => TlsProbe::NotOffered { detail },
            Err(ConnectError::Tls { detail, kind, .. }) => {
                resets += 1;
                TlsProbe::Refused {
                    detail,
                    timed_out: kind == ConnectFailure::TimedOut,
                }
            }
            Err(e) => TlsProbe::Error {
                error: e.to_string(),
            },
        };
        findings.push(rules::outbound::tls_probe(target, version, probe));
    }
    if chain.is_none() && resets == 0 {
        findings.push(rules::outbound::no_tls_version(target));
    }
    (findings, chain)
}
