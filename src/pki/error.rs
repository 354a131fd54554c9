//! Errors of the pki layer. Configuration errors name the file and say how to fix it.
//!
//! I/O causes are fields named `cause`, not `source`: the message already includes them, and a `source`
//! would make `anyhow`'s `{:#}` print them twice.

use std::path::PathBuf;

use super::name::NameError;

/// What went wrong reading, issuing or configuring certificates.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error(
        "cannot read certificate file {}: {cause} — check the path and the file's permissions", path.display()
    )]
    ReadCert {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "{origin}: no certificate found — give a PEM file with a BEGIN CERTIFICATE block, or a DER certificate"
    )]
    NoCertificate { origin: String },
    #[error("{origin}: not a valid X.509 certificate ({reason}) — give a PEM or DER certificate")]
    BadCertificate { origin: String, reason: String },
    #[error(
        "cannot read key file {}: {cause} — check the path and the file's permissions", path.display()
    )]
    ReadKey {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "{origin}: no private key found ({reason}) — give a PEM or DER private key (PKCS#8, PKCS#1 or SEC1)"
    )]
    BadKey { origin: String, reason: String },
    #[error(
        "{} is not the private key of the certificate in {}: {reason} — give the key that was issued with that certificate (tls.cert with tls.key, --cert with --key)", key.display(), cert.display()
    )]
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error(
        "{origin}: cannot be used as a trust anchor ({reason}) — give the CA certificate (PEM or DER)"
    )]
    BadAnchor { origin: String, reason: String },
    #[error(
        "cannot load the system's trusted roots ({reason}) — set SSL_CERT_FILE or SSL_CERT_DIR to a CA bundle, or give the CA files with tls.ca / --ca"
    )]
    SystemRoots { reason: String },
    #[error("cannot write {}: {cause} — check that the directory exists and is writable", path.display())]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "{field} \"{}\" is not a DNS name: {reason} — give host names such as vcse.steven.lab",
        name.escape_debug()
    )]
    BadName {
        /// Which part of the certificate, e.g. `SAN entry`.
        field: &'static str,
        name: String,
        reason: NameError,
    },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(
        "TLS configuration refused the certificate or key: {} — check that the key matches the certificate",
        super::reason::tls(.0)
    )]
    Tls(#[from] rustls::Error),
}
