//! Chain, validity and EKU checks with webpki. Names are not checked here: that is [`crate::rules::names_match`].
//!
//! Trust anchors come from lab CA files and, on request (`tls.use_system_roots`), from the system's root store
//! (a peer with a public-CA certificate, as Office 365 requires, then needs no CA file).

use std::path::Path;

use rustls::DistinguishedName;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::facts::load_pem_chain;
use super::{ChainProblem, ChainStatus, PkiError, reason};

/// Which purpose the chain must allow (EKU "required if present"; anyExtendedKeyUsage also counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Usage {
    /// TLS server certificate (the Edge calling the peer).
    ServerAuth,
    /// TLS client certificate (the peer calling the Edge).
    ClientAuth,
    /// Chain and validity only.
    Any,
}

const OID_SERVER_AUTH: &[usize] = &[1, 3, 6, 1, 5, 5, 7, 3, 1];
const OID_CLIENT_AUTH: &[usize] = &[1, 3, 6, 1, 5, 5, 7, 3, 2];
const OID_ANY_EKU: &[usize] = &[2, 5, 29, 37, 0];

impl ExtendedKeyUsageValidator for Usage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut present = Vec::new();
        for id in iter {
            present.push(id?.to_decoded_oid());
        }
        let (required, usage) = match self {
            Usage::ServerAuth => (OID_SERVER_AUTH, webpki::KeyUsage::server_auth()),
            Usage::ClientAuth => (OID_CLIENT_AUTH, webpki::KeyUsage::client_auth()),
            Usage::Any => return Ok(()),
        };
        // webpki's own KeyUsage ignores anyExtendedKeyUsage; CertFacts counts it, so this does too.
        if present.is_empty() || present.iter().any(|o| o == required || o == OID_ANY_EKU) {
            Ok(())
        } else {
            Err(webpki::Error::RequiredEkuNotFoundContext(
                webpki::RequiredEkuNotFoundContext {
                    required: usage,
                    present,
                },
            ))
        }
    }
}

/// The CAs the Edge trusts, plus their subjects for the TLS CertificateRequest CA list.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    anchors: Vec<TrustAnchor<'static>>,
    hints: Vec<DistinguishedName>,
}

impl TrustAnchors {
    /// Anchors from DER CA certificates; `origin` names them in errors.
    pub fn from_certs(certs: &[CertificateDer<'_>], origin: &str) -> Result<Self, PkiError> {
        let mut out = TrustAnchors::default();
        for der in certs {
            out.add(der, origin)?;
        }
        Ok(out)
    }

    /// Anchors from PEM or DER files (every certificate in each file becomes an anchor).
    pub fn from_files<P: AsRef<Path>>(paths: &[P]) -> Result<Self, PkiError> {
        let mut out = TrustAnchors::default();
        for path in paths {
            let path = path.as_ref();
            let origin = path.display().to_string();
            for der in load_pem_chain(path)? {
                out.add(&der, &origin)?;
            }
        }
        Ok(out)
    }

    /// Adds one CA certificate.
    pub fn add(&mut self, der: &CertificateDer<'_>, origin: &str) -> Result<(), PkiError> {
        let bad = |reason: String| PkiError::BadAnchor {
            origin: origin.to_string(),
            reason,
        };
        let anchor = webpki::anchor_from_trusted_cert(der)
            .map_err(|e| bad(reason::anchor(&e)))?
            .to_owned();
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| bad(reason::x509(&e)))?;
        self.hints
            .push(DistinguishedName::from(cert.subject().as_raw().to_vec()));
        self.anchors.push(anchor);
        Ok(())
    }

    /// Adds the system's trusted roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else the platform store) as
    /// anchors, and returns how many were added. Roots webpki cannot parse are skipped and logged, not fatal:
    /// one odd certificate in a distribution bundle must not stop the Edge.
    pub fn add_system_roots(&mut self) -> Result<usize, PkiError> {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() && !found.errors.is_empty() {
            let reason = found
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(PkiError::SystemRoots { reason });
        }
        for e in &found.errors {
            tracing::warn!(error = %e, "part of the system root store could not be read");
        }
        let mut added = 0;
        let mut skipped = 0;
        for der in &found.certs {
            match webpki::anchor_from_trusted_cert(der) {
                // Anchors only, no hint: a CertificateRequest listing a few hundred public CA names overflows
                // what Schannel (the Skype for Business side) handles, and a truncated CA list makes it pick
                // no client certificate at all. Peers with a public-CA certificate need no hint to send it.
                Ok(anchor) => {
                    self.anchors.push(anchor.to_owned());
                    added += 1;
                }
                Err(e) => {
                    skipped += 1;
                    tracing::debug!(reason = %reason::anchor(&e), "skipping an unparsable system root");
                }
            }
        }
        if skipped > 0 {
            tracing::warn!(
                added,
                skipped,
                "system roots: skipped unparsable certificates"
            );
        }
        Ok(added)
    }

    /// The webpki trust anchors.
    pub fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    /// CA subjects to send in the CertificateRequest (Schannel clients pick their certificate with it).
    pub fn hints(&self) -> Vec<DistinguishedName> {
        self.hints.clone()
    }

    /// True when no CA was given (neither files nor system roots).
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

/// Verifies `chain` (leaf first, then intermediates) against `anchors` for `usage` at `now`.
pub fn verify_chain(
    chain: &[CertificateDer<'_>],
    anchors: &TrustAnchors,
    usage: Usage,
    now: UnixTime,
) -> ChainStatus {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return ChainStatus::Missing;
    };
    let ee = match EndEntityCert::try_from(leaf) {
        Ok(ee) => ee,
        Err(e) => return map_error(e),
    };
    match ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        anchors.anchors(),
        intermediates,
        now,
        usage,
        None,
        None,
    ) {
        Ok(_) => ChainStatus::Trusted,
        Err(e) => map_error(e),
    }
}

/// webpki's error as a typed reason. webpki reports the most specific error over every path it tried, so a
/// signature error means an issuer with the right *name* was found (a trust anchor or a sent intermediate)
/// whose key did not sign the certificate: another CA of the same name.
fn map_error(e: webpki::Error) -> ChainStatus {
    use webpki::Error as E;
    let problem = match e {
        E::UnknownIssuer => return ChainStatus::UntrustedRoot,
        E::CertExpired { .. } => return ChainStatus::Expired,
        E::CertNotValidYet { .. } => return ChainStatus::NotYetValid,
        #[allow(deprecated)]
        E::RequiredEkuNotFound => return ChainStatus::WrongUsage,
        E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => return ChainStatus::WrongUsage,
        #[allow(deprecated)]
        E::InvalidSignatureForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => ChainProblem::OtherCaSameName,
        #[allow(deprecated)]
        E::UnsupportedSignatureAlgorithm | E::UnsupportedSignatureAlgorithmContext(_) => {
            ChainProblem::UnsupportedAlgorithm
        }
        E::MaximumPathDepthExceeded => ChainProblem::TooLong,
        E::MaximumSignatureChecksExceeded
        | E::MaximumPathBuildCallsExceeded
        | E::MaximumNameConstraintComparisonsExceeded => ChainProblem::TooComplex,
        E::BadDer
        | E::BadDerTime
        | E::TrailingData(_)
        | E::MalformedExtensions
        | E::ExtensionValueInvalid
        | E::InvalidCertValidity
        | E::InvalidSerialNumber
        | E::SignatureAlgorithmMismatch
        | E::UnsupportedCertVersion
        | E::MalformedDnsIdentifier
        | E::MalformedNameConstraint => ChainProblem::Malformed,
        E::UnsupportedCriticalExtension => ChainProblem::UnsupportedCriticalExtension,
        E::CaUsedAsEndEntity => ChainProblem::CaAsLeaf,
        E::EndEntityUsedAsCa => ChainProblem::LeafAsCa,
        E::PathLenConstraintViolated => ChainProblem::PathLength,
        E::NameConstraintViolation | E::InvalidNetworkMaskConstraint => {
            ChainProblem::NameConstraints
        }
        _ => ChainProblem::Other,
    };
    ChainStatus::Invalid(problem)
}
