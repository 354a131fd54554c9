//! TCP and TLS toward the peer: connect to each address, handshake with the Edge certificate as client
//! certificate and SNI = the SRV target, and classify every failure the way the Edge reports it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::pki::{Identity, PkiError, peer_chain};
use crate::policy::ConnectFailure;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// TCP failed on every address; the last address and failure.
    Tcp {
        addr: SocketAddr,
        kind: ConnectFailure,
        detail: String,
    },
    /// TCP connected, the TLS handshake did not complete.
    Tls {
        addr: SocketAddr,
        kind: ConnectFailure,
        detail: String,
    },
    /// The target is not a name rustls can send as SNI.
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
    /// Negotiated version, e.g. `TLSv1_2`.
    pub version: String,
}

/// The Edge's client config for `versions`: accepts any server chain in the handshake (judged afterwards with
/// `verify_chain` and Rule 2), presents `identity`, never resumes.
pub fn client_config(
    identity: Option<&Identity>,
    versions: TlsVersions,
) -> Result<Arc<ClientConfig>, PkiError> {
    use rustls::version::{TLS12, TLS13};
    let list: &[&rustls::SupportedProtocolVersion] = match versions {
        TlsVersions::Any => &[&TLS13, &TLS12],
        TlsVersions::Tls12 => &[&TLS12],
        TlsVersions::Tls13 => &[&TLS13],
    };
    let provider = crate::pki::tls::provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(list)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(JudgeLater { provider }));
    let mut cfg = match identity {
        Some(id) => builder.with_client_auth_cert(id.chain.clone(), id.key.clone_key())?,
        None => builder.with_no_client_auth(),
    };
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(cfg))
}

/// Accepts any server chain and name in the handshake; signatures stay real.
#[derive(Debug)]
struct JudgeLater {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for JudgeLater {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Maps a TCP connect error to the Winsock failure the Edge would report.
pub fn tcp_failure(e: &std::io::Error) -> ConnectFailure {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => ConnectFailure::Refused,
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
        .map(|v| format!("{v:?}"))
        .unwrap_or_default();
    Ok(Connected {
        stream,
        addr,
        chain,
        version,
    })
}

/// Tries every address in order (TCP then TLS); returns the first TLS connection, or the last failure.
/// A TLS failure ends the attempt: the peer answered, and another address of the same pool would judge alike.
pub async fn connect_any(
    addrs: &[IpAddr],
    port: u16,
    target: &str,
    config: Arc<ClientConfig>,
    connect_timeout: Duration,
    handshake_timeout: Duration,
) -> Result<Connected, ConnectError> {
    let mut last = None;
    for ip in addrs {
        let addr = SocketAddr::new(*ip, port);
        match tcp_connect(addr, connect_timeout).await {
            Ok(tcp) => {
                return tls_handshake(tcp, addr, target, config, handshake_timeout).await;
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or(ConnectError::Tcp {
        addr: SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port),
        kind: ConnectFailure::HostUnreachable,
        detail: "no address to connect to".into(),
    }))
}
