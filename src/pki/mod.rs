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
    ClientAuthMode, Identity, StrictClientVerifier, client_config, client_config_with_versions,
    peer_chain, server_config, server_config_with_versions, strict_server_config,
    strict_server_config_with_versions,
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

/// Outcome of checking a chain against the trust anchors (name rules are `rules`'s job, not this one's).
///
/// `Display` is for people: what is wrong, then the fix after a dash ([`ChainStatus::problem`] and
/// [`ChainStatus::fix`] give the two halves).
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

impl ChainStatus {
    /// What is wrong, for people (lower case, no final period).
    pub fn problem(&self) -> String {
        match self {
            ChainStatus::Trusted => "it chains to a CA the Edge trusts".into(),
            ChainStatus::Missing => "no certificate was presented".into(),
            ChainStatus::UntrustedRoot => "it was issued by a CA the Edge does not trust".into(),
            ChainStatus::Expired => {
                "it, or a CA certificate in its chain, has expired".into()
            }
            ChainStatus::NotYetValid => {
                "it, or a CA certificate in its chain, is not valid yet".into()
            }
            ChainStatus::WrongUsage => "its Extended Key Usage does not allow this use (TLS server or client authentication)".into(),
            ChainStatus::Invalid(p) => p.problem(),
        }
    }

    /// The fix, for people (lower case, no final period).
    pub fn fix(&self) -> String {
        match self {
            ChainStatus::Trusted => "nothing to do".into(),
            ChainStatus::Missing => "make the peer present its certificate".into(),
            ChainStatus::UntrustedRoot => "add that CA to tls.ca (or --ca), and make the peer send its intermediate CA certificates with its own certificate".into(),
            ChainStatus::Expired => "renew it, and check both clocks".into(),
            ChainStatus::NotYetValid => {
                "check both clocks, or reissue it with a start date in the past".into()
            }
            ChainStatus::WrongUsage => {
                "reissue it with both Server and Client Authentication EKUs".into()
            }
            ChainStatus::Invalid(p) => p.fix(),
        }
    }
}

impl std::fmt::Display for ChainStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainStatus::Trusted => f.write_str(&self.problem()),
            _ => write!(f, "{} — {}", self.problem(), self.fix()),
        }
    }
}

impl ChainProblem {
    /// What is wrong, for people (lower case, no final period).
    pub fn problem(&self) -> String {
        match self {
            ChainProblem::OtherCaSameName => "it was issued by a CA the Edge does not trust: its issuer has the name of a CA the Edge knows, but the signature does not verify with that CA's key, so another CA with the same name (another lab CA?) issued it".into(),
            ChainProblem::TooLong => format!("its chain is too long: the Edge follows at most {MAX_INTERMEDIATES} intermediate CAs between a certificate and a trusted CA"),
            ChainProblem::TooComplex => "its chain holds too many candidate CA certificates for the Edge to find a path to a trusted CA".into(),
            ChainProblem::Malformed => "it, or a CA certificate in its chain, is not a well-formed X.509 certificate".into(),
            ChainProblem::UnsupportedAlgorithm => "it, or a CA certificate in its chain, is signed with an algorithm the Edge does not accept (such as SHA-1)".into(),
            ChainProblem::UnsupportedCriticalExtension => "it, or a CA certificate in its chain, has a critical extension the Edge does not understand".into(),
            ChainProblem::CaAsLeaf => "it is a CA certificate, not a server certificate".into(),
            ChainProblem::LeafAsCa => "its chain uses a certificate that is not a CA as an issuer".into(),
            ChainProblem::PathLength => "a CA in its chain has more CAs below it than its path length constraint (basicConstraints pathLen) allows".into(),
            ChainProblem::NameConstraints => "a CA in its chain may not issue certificates for its names (name constraints)".into(),
            ChainProblem::Other => "its chain could not be verified (revoked or distrusted certificate, or an unsupported name type)".into(),
        }
    }

    /// The fix, for people (lower case, no final period).
    pub fn fix(&self) -> String {
        match self {
            ChainProblem::OtherCaSameName => {
                "add the CA that issued it to tls.ca (or --ca); give each lab CA its own name"
                    .into()
            }
            ChainProblem::TooLong => format!(
                "issue it from a CA at most {MAX_INTERMEDIATES} intermediates below the root, or trust an intermediate CA of the chain directly in tls.ca"
            ),
            ChainProblem::TooComplex => {
                "send only the certificate followed by the intermediate CAs of its own chain".into()
            }
            ChainProblem::Malformed | ChainProblem::Other => {
                "reissue the certificate from a CA the Edge trusts".into()
            }
            ChainProblem::UnsupportedAlgorithm => {
                "reissue it signed with SHA-256 or better (RSA-2048 or ECDSA P-256 keys)".into()
            }
            ChainProblem::UnsupportedCriticalExtension => {
                "reissue it without that extension, or with it marked non-critical".into()
            }
            ChainProblem::CaAsLeaf => {
                "present the server certificate issued by that CA instead".into()
            }
            ChainProblem::LeafAsCa => {
                "send the certificate followed by its intermediate CA certificates only".into()
            }
            ChainProblem::PathLength | ChainProblem::NameConstraints => {
                "issue it from a CA allowed to issue it".into()
            }
        }
    }

    /// A short tag for records and events (`reason` Data), e.g. `chain too long`.
    pub fn tag(&self) -> &'static str {
        match self {
            ChainProblem::OtherCaSameName => "untrusted root",
            ChainProblem::TooLong => "chain too long",
            ChainProblem::TooComplex => "chain too complex",
            ChainProblem::Malformed => "malformed",
            ChainProblem::UnsupportedAlgorithm => "unsupported algorithm",
            ChainProblem::UnsupportedCriticalExtension => "unsupported critical extension",
            ChainProblem::CaAsLeaf => "CA certificate as leaf",
            ChainProblem::LeafAsCa => "leaf as CA",
            ChainProblem::PathLength => "path length exceeded",
            ChainProblem::NameConstraints => "name constraints",
            ChainProblem::Other => "invalid",
        }
    }
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} — {}", self.problem(), self.fix())
    }
}

#[cfg(test)]
mod tests;
