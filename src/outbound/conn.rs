//! TCP and TLS toward the peer: connect to each address, handshake with the Edge certificate as client
//! certificate and SNI = the SRV target, and classify every failure the way the Edge reports it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::pki::{self, PkiError, TlsIdentity, peer_chain};
use crate::rules::ConnectFailure;

/// Which TLS versions a connection may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum TlsVersions {
    /// 1.2 and 1.3 (what `call` uses).
    Any,
    /// 1.2 only.
    Tls12,
    /// 1.3 only.
    Tls13,
}

/// How a connection attempt ended before the SIP exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// TCP failed on every address; the last address and failure.
    #[error("TCP to {addr} failed: {detail}")]
    Tcp {
        addr: SocketAddr,
        kind: ConnectFailure,
        detail: String,
    },
    /// TCP connected, the TLS handshake did not complete.
    #[error("the TLS handshake with {addr} failed: {detail}")]
    Tls {
        addr: SocketAddr,
        kind: ConnectFailure,
        detail: String,
    },
    /// The target is not a name rustls can send as SNI.
    #[error("{0} is not a DNS name that can be sent as TLS server name (SNI)")]
    BadName(String),
}

/// A completed TLS connection and what it showed.
#[derive(Debug)]
pub struct Connected {
    /// The stream, ready for SIP.
    pub stream: TlsStream<TcpStream>,
    /// The address that answered.
    pub addr: SocketAddr,
    /// The server chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Negotiated version, e.g. `TLS 1.2`.
    pub version: String,
}

impl Connected {
    /// The server chain judged as the Edge judges a peer it called: trust and validity for serverAuth now, and
    /// the leaf's facts (empty when it does not parse) for Rule 2.
    pub fn judge_chain(&self, anchors: &pki::TrustAnchors) -> (pki::CertFacts, pki::ChainStatus) {
        let status = pki::verify_chain(
            &self.chain,
            anchors,
            pki::Usage::ServerAuth,
            rustls_pki_types::UnixTime::now(),
        );
        let facts = self
            .chain
            .first()
            .and_then(|leaf| pki::CertFacts::from_der(leaf).ok())
            .unwrap_or_default();
        (facts, status)
    }
}

/// The Edge's client config for `versions`: accepts any server chain in the handshake (judged afterwards with
/// `verify_chain` and Rule 2), presents `identity`, never resumes.
pub fn client_config(
    identity: Option<&TlsIdentity>,
    versions: TlsVersions,
) -> Result<Arc<ClientConfig>, PkiError> {
    use rustls::version::{TLS12, TLS13};
    let list: &[&rustls::SupportedProtocolVersion] = match versions {
        TlsVersions::Any => &[&TLS13, &TLS12],
        TlsVersions::Tls12 => &[&TLS12],
        TlsVersions::Tls13 => &[&TLS13],
    };
    pki::client_config_with_versions(identity, list)
}

/// Maps a TCP connect error to the Winsock failure the Edge would report.
pub fn tcp_failure(e: &std::io::Error) -> ConnectFailure {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => ConnectFailure::Refused,
        // Accepted, then reset before the connect completed (a pool member in fault mode `reset` can be that
        // quick): the peer forced the connection closed, 10054 as in the handshake.
        K::ConnectionReset => ConnectFailure::ResetDuringHandshake,
        K::TimedOut => ConnectFailure::TimedOut,
        _ => ConnectFailure::HostUnreachable,
    }
}

/// Maps an error during the handshake or the first read: resets, closes and TLS alerts all mean the peer
/// refused us (10054); a timeout stays a timeout.
pub fn tls_failure(e: &std::io::Error) -> ConnectFailure {
    match e.kind() {
        std::io::ErrorKind::TimedOut => ConnectFailure::TimedOut,
        _ => ConnectFailure::ResetDuringHandshake,
    }
}

/// TCP to one address with a timeout.
pub async fn tcp_connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, ConnectError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(ConnectError::Tcp {
            addr,
            kind: tcp_failure(&e),
            detail: e.to_string(),
        }),
        Err(_) => Err(ConnectError::Tcp {
            addr,
            kind: ConnectFailure::TimedOut,
            detail: format!("no answer within {} ms", timeout.as_millis()),
        }),
    }
}

/// TLS over an open TCP stream, SNI = `target`.
pub async fn tls_handshake(
    tcp: TcpStream,
    addr: SocketAddr,
    target: &str,
    config: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<Connected, ConnectError> {
    let name = ServerName::try_from(target.trim_end_matches('.').to_string())
        .map_err(|_| ConnectError::BadName(target.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let stream = match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(ConnectError::Tls {
                addr,
                kind: tls_failure(&e),
                detail: e.to_string(),
            });
        }
        Err(_) => {
            return Err(ConnectError::Tls {
                addr,
                kind: ConnectFailure::TimedOut,
                detail: format!(
                    "TLS handshake not finished within {} ms",
                    timeout.as_millis()
                ),
            });
        }
    };
    let (_, conn) = stream.get_ref();
    let chain = peer_chain(conn);
    let version = conn
        .protocol_version()
        .map(crate::rules::tls_version)
        .unwrap_or_default();
    Ok(Connected {
        stream,
        addr,
        chain,
        version,
    })
}

/// Tries every address in order (TCP then TLS) and returns the first TLS connection, or the last failure; the
/// failures before it go to `failed`, in order. A failed TLS handshake moves on to the next address too, as a
/// TCP failure does: behind one name with several A records (an Edge pool's DNS load balancing) an address
/// that accepts TCP and then resets, refuses TLS or stays silent is one member down, and the next may answer.
pub async fn connect_any(
    addrs: &[IpAddr],
    port: u16,
    target: &str,
    config: Arc<ClientConfig>,
    connect_timeout: Duration,
    handshake_timeout: Duration,
    failed: &mut Vec<ConnectError>,
) -> Result<Connected, ConnectError> {
    let mut last = None;
    for ip in addrs {
        let addr = SocketAddr::new(*ip, port);
        let tried = match tcp_connect(addr, connect_timeout).await {
            Ok(tcp) => tls_handshake(tcp, addr, target, config.clone(), handshake_timeout).await,
            Err(e) => Err(e),
        };
        match tried {
            Ok(c) => {
                failed.extend(last.take());
                return Ok(c);
            }
            // Not a name problem of this address: every address would fail alike.
            Err(e @ ConnectError::BadName(_)) => return Err(e),
            Err(e) => failed.extend(last.replace(e)),
        }
    }
    Err(last.unwrap_or(ConnectError::Tcp {
        addr: SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port),
        kind: ConnectFailure::HostUnreachable,
        detail: "no address to connect to".into(),
    }))
}
