//! rustls configurations for the Edge: the listener (server) and the outbound caller (client).
//!
//! Two ways to treat the peer's certificate:
//! - **judge afterwards** ([`server_config`], [`client_config`]): the handshake accepts any chain but still
//!   checks the CertificateVerify signature (the peer holds the key). After the handshake, take
//!   [`peer_chain`] and decide with [`super::verify_chain`] and [`crate::rules::names_match`]; to act like the
//!   Edge on an untrusted/expired/missing client certificate, drop the connection without a SIP answer.
//!   This way the reason can be logged precisely.
//! - **strict** (the emulated Expressway-E's, `crate::lab::peer::strict`): rustls refuses the client in the
//!   handshake with the matching TLS alert. With TLS 1.3 the client's `connect()` still succeeds and the
//!   refusal shows on its first read.
//!
//! Session resumption is off on both sides: resumed handshakes skip the verifiers, and every connection
//! must present its certificate as a real Edge would see it.
//!
//! Every configuration built here logs its TLS secrets to the process's key log when one is set
//! ([`set_key_log`], e.g. an `SSLKEYLOGFILE` writer from `crate::wire::keylog`); by default none is.

use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::server::NoServerSessionStorage;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    ClientConfig, CommonState, DigitallySignedStruct, DistinguishedName, Error, KeyLog,
    ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::PkiError;
use super::facts::{load_key, load_pem_chain};
use super::issue::IssuedCert;

/// A TLS identity: a certificate chain (leaf first) and its private key (named apart from
/// [`crate::config::Identity`], the Edge's names in the configuration).
#[derive(Debug)]
pub struct TlsIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        TlsIdentity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl TlsIdentity {
    /// Loads the chain and key from PEM or DER files, and checks that the key belongs to the leaf.
    pub fn from_pem_files(cert: &std::path::Path, key: &std::path::Path) -> Result<Self, PkiError> {
        let id = TlsIdentity {
            chain: load_pem_chain(cert)?,
            key: load_key(key)?,
        };
        let mismatch = |reason: String| PkiError::KeyMismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason,
        };
        match rustls::sign::CertifiedKey::from_der(
            id.chain.clone(),
            id.key.clone_key(),
            &provider(),
        ) {
            Ok(_) => Ok(id),
            Err(Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Err(mismatch(
                "its public key differs from the certificate's".into(),
            )),
            Err(e) => Err(mismatch(e.to_string())),
        }
    }
}

impl From<&IssuedCert> for TlsIdentity {
    fn from(issued: &IssuedCert) -> Self {
        TlsIdentity {
            chain: issued.chain.clone(),
            key: issued.key_der.clone_key(),
        }
    }
}

/// Whether the server asks for a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuthMode {
    /// Asks, and the handshake fails without one (like the Edge's MTLS port).
    #[default]
    Required,
    /// Asks; a client without a certificate still connects (check `peer_chain(..).is_empty()`).
    Optional,
    /// Does not ask.
    None,
}

/// The only crypto provider edgesim uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The key log every configuration built from now on gets (none by default): one per process, as
/// `SSLKEYLOGFILE` is, so the Edge, the caller and the load generator all log without each being told.
static KEY_LOG: RwLock<Option<Arc<dyn KeyLog>>> = RwLock::new(None);

/// Sets (or with `None` clears) the key log of every TLS configuration built after this call.
pub fn set_key_log(log: Option<Arc<dyn KeyLog>>) {
    if let Ok(mut slot) = KEY_LOG.write() {
        *slot = log;
    }
}

/// The process's key log, if one is set.
fn key_log() -> Option<Arc<dyn KeyLog>> {
    KEY_LOG.read().ok().and_then(|slot| slot.clone())
}

/// TLS 1.3 and 1.2.
pub(crate) const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The signature half of a certificate verifier, the same for every verifier here: checks the
/// CertificateVerify / key-exchange signatures with `self.provider`'s algorithms, so an accept-any
/// verifier still proves the peer holds the key. Expands inside a `ClientCertVerifier` or
/// `ServerCertVerifier` impl whose type has a `provider: Arc<CryptoProvider>` field.
macro_rules! verify_signatures_with_provider {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}
pub(crate) use verify_signatures_with_provider;

/// Accepts any client chain in the handshake (the application judges it afterwards); signatures stay real.
#[derive(Debug)]
pub struct AcceptAnyClientCert {
    provider: Arc<CryptoProvider>,
    hints: Vec<DistinguishedName>,
    mandatory: bool,
}

impl ClientCertVerifier for AcceptAnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        Ok(ClientCertVerified::assertion())
    }
    verify_signatures_with_provider!();
}

/// Accepts any server chain and name in the handshake (the caller judges afterwards); signatures stay real.
#[derive(Debug)]
pub struct AcceptAnyServerCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }
    verify_signatures_with_provider!();
}

/// A server configuration around `verifier`: the identity, the versions, no session resumption, the key log.
pub(crate) fn finish_server(
    verifier: Arc<dyn ClientCertVerifier>,
    identity: &TlsIdentity,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Arc<ServerConfig>, PkiError> {
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())?;
    cfg.session_storage = Arc::new(NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    if let Some(log) = key_log() {
        cfg.key_log = log;
    }
    Ok(Arc::new(cfg))
}

/// The Edge listener's config: TLS 1.2 + 1.3, accept-any client verifier ("judge afterwards"), `hints` as
/// the CertificateRequest CA list (usually [`TrustAnchors::hints`]), no session resumption.
pub fn server_config(
    identity: &TlsIdentity,
    client_auth: ClientAuthMode,
    hints: Vec<DistinguishedName>,
) -> Result<Arc<ServerConfig>, PkiError> {
    server_config_with_versions(identity, client_auth, hints, VERSIONS)
}

/// [`server_config`] limited to the given TLS versions (a real SfB Edge speaks 1.2 only).
pub fn server_config_with_versions(
    identity: &TlsIdentity,
    client_auth: ClientAuthMode,
    hints: Vec<DistinguishedName>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Arc<ServerConfig>, PkiError> {
    let verifier: Arc<dyn ClientCertVerifier> = match client_auth {
        ClientAuthMode::None => rustls::server::WebPkiClientVerifier::no_client_auth(),
        mode => Arc::new(AcceptAnyClientCert {
            provider: provider(),
            hints,
            mandatory: mode == ClientAuthMode::Required,
        }),
    };
    finish_server(verifier, identity, versions)
}

/// The outbound caller's config: accept-any server verifier (check [`peer_chain`] afterwards with
/// `verify_chain(.., Usage::ServerAuth, ..)` and `names_match`), optional client certificate, no resumption.
pub fn client_config(identity: Option<&TlsIdentity>) -> Result<Arc<ClientConfig>, PkiError> {
    client_config_with_versions(identity, VERSIONS)
}

/// [`client_config`] limited to the given TLS versions.
pub fn client_config_with_versions(
    identity: Option<&TlsIdentity>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Arc<ClientConfig>, PkiError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert {
            provider: provider(),
        }));
    let mut cfg = match identity {
        Some(id) => builder.with_client_auth_cert(id.chain.clone(), id.key.clone_key())?,
        None => builder.with_no_client_auth(),
    };
    cfg.resumption = rustls::client::Resumption::disabled();
    if let Some(log) = key_log() {
        cfg.key_log = log;
    }
    Ok(Arc::new(cfg))
}

/// The peer's certificate chain (leaf first) after the handshake; empty when none was presented.
/// Takes a `ServerConnection` or `ClientConnection` (both deref to `CommonState`).
pub fn peer_chain(conn: &CommonState) -> Vec<CertificateDer<'static>> {
    conn.peer_certificates()
        .map(<[CertificateDer<'static>]>::to_vec)
        .unwrap_or_default()
}
