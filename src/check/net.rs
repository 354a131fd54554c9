//! The network lines of the report: TCP per address, then TLS 1.2 and 1.3 separately.

use std::net::IpAddr;

use rustls_pki_types::CertificateDer;

use super::{Report, Status};
use crate::outbound::OutboundContext;
use crate::outbound::conn::{self, ConnectError, TlsVersions};
use crate::rules::ConnectFailure;

/// TCP to every address of the target. An address that fails while another answers is a WARN naming it (the
/// Edge tries the addresses in order and connects through the one that answers); all failing is a FAIL.
/// Returns the first address that answered.
pub(super) async fn tcp_lines(
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

/// TLS 1.2 and 1.3 separately, with the Edge certificate as client certificate; returns the server chain
/// of the first that completed (none: the report ends).
pub(super) async fn tls_lines(
    ctx: &OutboundContext,
    r: &mut Report,
    ip: IpAddr,
    port: u16,
    target: &str,
) -> Option<Vec<CertificateDer<'static>>> {
    let mut chain = None;
    let mut resets = 0;
    for (versions, label) in [
        (TlsVersions::Tls12, "TLS 1.2"),
        (TlsVersions::Tls13, "TLS 1.3"),
    ] {
        match probe_tls(ctx, ip, port, target, versions).await {
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
        return None;
    };
    Some(chain)
}
