//! Certificates: the facts the Edge rules read (names, EKU, validity, chain) and the lab CA/issuer.
//!
//! Owned by the pki work. Other modules rely on the types below; keep their shape.
//!
//! - [`facts`]: parse a certificate into [`CertFacts`]; load PEM/DER certificate and key files.
//! - [`chain`]: chain, validity and EKU checks with webpki → [`ChainStatus`] (no name checks).
//! - [`issue`]: the lab CA and leaf issuer (rcgen); names are checked with [`check_cert_name`].
//! - [`tls`]: rustls server/client configs for the Edge ("accept any, judge afterwards", or strict).

pub mod chain;
mod error;
pub mod facts;
pub mod issue;
mod name;
mod reason;
pub mod tls;

pub use chain::{TrustAnchors, Usage, verify_chain};
pub use error::PkiError;
pub use facts::{is_wildcard_name, load_key, load_pem_chain, parse_certs, parse_key};
pub use issue::{EkuChoice, IssuedCert, KeyType, LAB_CA_NAME, LabCa, LeafSpec};
pub use name::{NameError, check_cert_name, check_dns_name};
pub use tls::{
    ClientAuthMode, TlsIdentity, client_config, client_config_with_versions, peer_chain,
    server_config, server_config_with_versions,
};

/// What the federation rules need to know about one certificate (parsed with x509-parser).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct CertFacts {
    /// Subject common names, as written (the last is the most specific: [`CertFacts::common_name`]).
    pub common_names: Vec<String>,
    /// SAN dNSNames; `None` when the certificate has no subjectAltName extension at all.
    pub san_dns: Option<Vec<String>>,
    /// SAN iPAddresses, as text (the Edge matches none of them; shown when there is no dNSName).
    pub san_ip: Vec<String>,
    /// Extended key usage; `None` when the certificate has no EKU extension.
    pub eku: Option<Eku>,
    /// Validity window, seconds since the Unix epoch.
    pub not_before: i64,
    /// Validity window, seconds since the Unix epoch.
    pub not_after: i64,
    /// Issuer distinguished name, e.g. `CN=edgesim lab CA 2025-06-01 1a2b3c`.
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
    /// The most specific (last) subject CN: the one the Edge reads when there is no SAN extension
    /// (RFC 2818 §3.1).
    pub fn common_name(&self) -> Option<&str> {
        self.common_names.last().map(String::as_str)
    }

    /// The name edgesim shows for the certificate (`certName`, `PeerServer`, `peer_cert`): a name the Edge
    /// reads, never empty. With a SAN extension the CN is ignored, so it is the first SAN dNSName, else the
    /// first SAN iPAddress; without one, the most specific CN; else [`NO_NAME`]. A CN is never shown for a
    /// certificate with a SAN extension: it could be the very FQDN the Edge did not find.
    pub fn display_name(&self) -> String {
        let name = match &self.san_dns {
            Some(dns) => dns.first().or(self.san_ip.first()).map(String::as_str),
            None => self.common_name(),
        };
        name.filter(|n| !n.is_empty())
            .unwrap_or(NO_NAME)
            .to_string()
    }
}

/// What [`CertFacts::display_name`] shows for a certificate that names nothing the Edge reads.
pub const NO_NAME: &str = "(no name)";

/// Outcome of checking a chain against the trust anchors (name rules are the rulebook's job, not this one's,
/// and so is the wording: [`crate::rules::chain_words`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ChainStatus {
    Trusted,
    /// No certificate was presented.
    Missing,
    /// The issuer is not a trusted CA and no intermediate sent leads to one.
    UntrustedRoot,
    Expired,
    NotYetValid,
    /// The required EKU (serverAuth or clientAuth) is absent from a present EKU extension.
    WrongUsage,
    /// Anything else webpki refused, by kind.
    Invalid(ChainProblem),
}

/// Why webpki refused a chain, beyond the common [`ChainStatus`] cases. Each maps one or more webpki errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ChainProblem {
    /// The issuer has the name of a CA the Edge knows, but the signature does not verify with that CA's key
    /// (another CA with the same name issued it, e.g. another lab CA): an untrusted issuer in disguise.
    OtherCaSameName,
    /// More intermediate CAs than the verifier follows ([`MAX_INTERMEDIATES`]).
    TooLong,
    /// So many candidate issuers that the verifier's budget ran out before a path was found.
    TooComplex,
    /// Not well-formed DER / X.509.
    Malformed,
    /// Signed with an algorithm the verifier does not accept (e.g. SHA-1).
    UnsupportedAlgorithm,
    /// A critical extension the verifier does not understand.
    UnsupportedCriticalExtension,
    /// The certificate presented is a CA certificate.
    CaAsLeaf,
    /// A certificate that is not a CA was used as an issuer.
    LeafAsCa,
    /// A CA's basicConstraints path length is exceeded.
    PathLength,
    /// A CA's name constraints do not permit the certificate's names.
    NameConstraints,
    /// Something else (revocation, distrust): webpki gave no reason edgesim classifies.
    Other,
}

/// The most intermediate CAs webpki follows between a certificate and its trust anchor.
pub const MAX_INTERMEDIATES: usize = 6;

#[cfg(test)]
mod tests;
