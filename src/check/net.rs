//! The network lines of the report: TCP per address, then TLS 1.2 and 1.3 separately (the facts gathered here,
//! the findings and their words from the rulebook).

use std::net::IpAddr;

use rustls_pki_types::CertificateDer;

use super::Report;
use crate::config::TlsVersion;
use crate::outbound::OutboundContext;
use crate::outbound::conn::{self, ConnectError, TlsVersions};
use crate::rules::{self, ConnectFailure, DomainName, TlsProbe};

/// TCP to every address of the target (the rulebook words a dead one beside a live one as a WARN). Returns the
/// first address that answered.
pub(super) async fn tcp_lines(
    ctx: &OutboundContext,
    r: &mut Report,
    target: &DomainName,
    port: u16,
    addrs: &[IpAddr],
) -> Option<IpAddr> {
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
        .find(|(_, res)| res.is_ok())
        .map(|(addr, _)| addr.ip())
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

/// TLS 1.2 and 1.3 separately, with the Edge certificate as client certificate; returns the server chain
/// of the first that completed (none: the report ends).
pub(super) async fn tls_lines(
    ctx: &OutboundContext,
    r: &mut Report,
    ip: IpAddr,
    port: u16,
    target: &DomainName,
) -> Option<Vec<CertificateDer<'static>>> {
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
        r.push(&rules::outbound::tls_probe(target, version, probe));
    }
    if chain.is_none() && resets == 0 {
        r.push(&rules::outbound::no_tls_version(target));
    }
    chain
}
