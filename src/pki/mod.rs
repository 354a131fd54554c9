//! Certificates: the facts the Edge rules read (names, EKU, validity, chain) and the lab CA/issuer.
//!
//! Owned by the pki work. Other modules rely on the types below; keep their shape.
//!
//! - [`facts`]: parse a certificate into [`CertFacts`]; load PEM/DER certificate and key files.
//! - [`chain`]: chain, validity and EKU checks with webpki → [`ChainStatus`] (no name checks).
//! - [`issue`]: the lab CA and leaf issuer (rcgen).
//! - [`tls`]: rustls server/client configs for the Edge ("accept any, judge afterwards", or strict).

pub mod chain;
mod error;
pub mod facts;
pub mod issue;
pub mod tls;

pub use chain::{TrustAnchors, Usage, verify_chain};
pub use error::PkiError;
pub use facts::{is_wildcard_name, load_key, load_pem_chain, parse_certs, parse_key};
pub use issue::{EkuChoice, IssuedCert, KeyType, LabCa, LeafSpec};
pub use tls::{
    ClientAuthMode, Identity, StrictClientVerifier, client_config, peer_chain, server_config,
    server_config_with_versions, strict_server_config,
};

/// What the federation rules need to know about one certificate (parsed with x509-parser).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct CertFacts {
    /// Subject common names, as written.
    pub common_names: Vec<String>,
    /// SAN dNSNames; `None` when the certificate has no subjectAltName extension at all.
    pub san_dns: Option<Vec<String>>,
    /// Extended key usage; `None` when the certificate has no EKU extension.
    pub eku: Option<Eku>,
    /// Validity window, seconds since the Unix epoch.
    pub not_before: i64,
    /// Validity window, seconds since the Unix epoch.
    pub not_after: i64,
    /// Issuer distinguished name, e.g. `CN=edgesim lab CA`.
    pub issuer: String,
    /// Subject distinguished name.
    pub subject: String,
    /// Serial number as hex.
    pub serial: String,
    /// basicConstraints CA flag.
    pub is_ca: bool,
}

/// The EKU purposes the Edge cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Eku {
    pub server_auth: bool,
    pub client_auth: bool,
    /// anyExtendedKeyUsage
    pub any: bool,
}

impl CertFacts {
    /// The name a Lync/SfB Edge prints as `certName` / `PeerServer`: the subject CN, else the first SAN dNSName.
    pub fn display_name(&self) -> String {
        self.common_names
            .first()
            .cloned()
            .or_else(|| self.san_dns.as_ref().and_then(|s| s.first().cloned()))
            .unwrap_or_default()
    }
}

/// Outcome of checking a chain against the trust anchors (name rules are `policy`'s job, not this one's).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum ChainStatus {
    Trusted,
    /// No certificate was presented.
    Missing,
    UntrustedRoot,
    Expired,
    NotYetValid,
    /// The required EKU (serverAuth or clientAuth) is absent from a present EKU extension.
    WrongUsage,
    /// Anything else webpki refused, with its reason.
    Invalid(String),
}

#[cfg(test)]
mod tests;
