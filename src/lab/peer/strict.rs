//! The emulated Expressway-E's strict client-certificate check: the handshake itself refuses an untrusted,
//! expired, wrong-usage or missing client certificate with the TLS alert rustls's own verifier would send (an
//! Expressway checks the Edge's client certificate this way). With TLS 1.3 the client's `connect()` still
//! succeeds and the refusal shows on its first read. The Edge itself judges after the handshake instead
//! (`crate::pki::server_config`).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::pki::tls::{self, verify_signatures_with_provider};
use crate::pki::{
    ChainProblem, ChainStatus, PkiError, TlsIdentity, TrustAnchors, Usage, verify_chain,
};

/// Refuses, in the handshake, a client whose chain [`verify_chain`] does not find `Trusted` for `usage`.
/// A missing certificate is refused too (mandatory).
#[derive(Debug)]
pub struct StrictClientVerifier {
    provider: Arc<CryptoProvider>,
    anchors: Arc<TrustAnchors>,
    hints: Vec<DistinguishedName>,
    usage: Usage,
}

impl StrictClientVerifier {
    /// `usage` is normally [`Usage::ClientAuth`]; [`Usage::Any`] relaxes the EKU check.
    pub fn new(anchors: Arc<TrustAnchors>, usage: Usage) -> Self {
        StrictClientVerifier {
            provider: crate::pki::tls::provider(),
            hints: anchors.hints(),
            anchors,
            usage,
        }
    }
}

/// The TLS error (and so the alert) for a refused chain: the alert rustls's own verifier would send; kinds
/// rustls has no variant for carry the [`ChainProblem`] itself, so its message is the one logged.
fn chain_error(status: ChainStatus) -> Result<(), Error> {
    let e = match status {
        ChainStatus::Trusted => return Ok(()),
        ChainStatus::Missing => return Err(Error::NoCertificatesPresented),
        ChainStatus::UntrustedRoot | ChainStatus::Invalid(ChainProblem::OtherCaSameName) => {
            CertificateError::UnknownIssuer
        }
        ChainStatus::Expired => CertificateError::Expired,
        ChainStatus::NotYetValid => CertificateError::NotValidYet,
        ChainStatus::WrongUsage => CertificateError::InvalidPurpose,
        ChainStatus::Invalid(ChainProblem::Malformed) => CertificateError::BadEncoding,
        ChainStatus::Invalid(ChainProblem::UnsupportedCriticalExtension) => {
            CertificateError::UnhandledCriticalExtension
        }
        ChainStatus::Invalid(ChainProblem::UnsupportedAlgorithm) => CertificateError::BadSignature,
        ChainStatus::Invalid(p) => CertificateError::Other(rustls::OtherError(Arc::new(Refusal(
            crate::rules::chain_phrase(&ChainStatus::Invalid(p)),
        )))),
    };
    Err(Error::InvalidCertificate(e))
}

/// A [`ChainProblem`] inside a rustls error, in the rulebook's words. rustls prints `CertificateError::Other`
/// with `{:?}`, so this `Debug` is the sentence too: a log of the TLS error then reads as one.
struct Refusal(String);

impl std::fmt::Debug for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

impl ClientCertVerifier for StrictClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        true
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let mut chain = Vec::with_capacity(1 + intermediates.len());
        chain.push(end_entity.clone());
        chain.extend(intermediates.iter().cloned());
        chain_error(verify_chain(&chain, &self.anchors, self.usage, now))?;
        Ok(ClientCertVerified::assertion())
    }
    verify_signatures_with_provider!();
}

/// The Edge listener's config with the handshake refusing untrusted, expired, wrong-usage or missing
/// client certificates ([`StrictClientVerifier`]); no session resumption.
pub fn strict_server_config(
    identity: &TlsIdentity,
    anchors: Arc<TrustAnchors>,
    usage: Usage,
) -> Result<Arc<ServerConfig>, PkiError> {
    strict_server_config_with_versions(identity, anchors, usage, tls::VERSIONS)
}

/// [`strict_server_config`] limited to the given TLS versions.
pub fn strict_server_config_with_versions(
    identity: &TlsIdentity,
    anchors: Arc<TrustAnchors>,
    usage: Usage,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Arc<ServerConfig>, PkiError> {
    tls::finish_server(
        Arc::new(StrictClientVerifier::new(anchors, usage)),
        identity,
        versions,
    )
}
