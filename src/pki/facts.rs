//! Certificate facts (x509-parser) and loading certificates and keys from PEM or DER files.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::{CertFacts, Eku, PkiError, reason};

const SECONDS_PER_DAY: i64 = 86_400;

impl CertFacts {
    /// Parses one DER certificate into the facts the Edge rules read.
    pub fn from_der(der: &[u8]) -> Result<CertFacts, PkiError> {
        Self::from_der_named(der, "certificate")
    }

    /// Like [`CertFacts::from_der`], with `origin` (a file name) in the error message.
    pub fn from_der_named(der: &[u8], origin: &str) -> Result<CertFacts, PkiError> {
        let bad = |reason: String| PkiError::BadCertificate {
            origin: origin.to_string(),
            reason,
        };
        let (rest, cert) = X509Certificate::from_der(der).map_err(|e| bad(reason::x509(&e)))?;
        if !rest.is_empty() {
            return Err(bad(format!(
                "{} bytes of trailing data after the certificate",
                rest.len()
            )));
        }
        let san = cert
            .subject_alternative_name()
            .map_err(|e| bad(format!("subjectAltName: {}", reason::x509_error(&e))))?;
        let general_names = san.as_ref().map(|s| s.value.general_names.as_slice());
        let san_dns = general_names.map(|names| {
            names
                .iter()
                .filter_map(|g| match g {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        });
        let san_ip = general_names
            .unwrap_or_default()
            .iter()
            .filter_map(|g| match g {
                GeneralName::IPAddress(bytes) => ip_text(bytes),
                _ => None,
            })
            .collect();
        let common_names = cert
            .subject()
            .iter_common_name()
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect();
        let eku = cert
            .extended_key_usage()
            .map_err(|e| bad(format!("extendedKeyUsage: {}", reason::x509_error(&e))))?
            .map(|e| Eku {
                server_auth: e.value.server_auth,
                client_auth: e.value.client_auth,
                any: e.value.any,
            });
        let is_ca = cert
            .basic_constraints()
            .map_err(|e| bad(format!("basicConstraints: {}", reason::x509_error(&e))))?
            .is_some_and(|b| b.value.ca);
        let validity = cert.validity();
        Ok(CertFacts {
            common_names,
            san_dns,
            san_ip,
            eku,
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            issuer: cert.issuer().to_string(),
            subject: cert.subject().to_string(),
            serial: cert.raw_serial_as_string(),
            is_ca,
        })
    }

    /// Days until `not_after` at `now` (Unix seconds), a started day counting as a day: a 365-day certificate
    /// reads 365 for its whole first day (rounding down made it 365 in the second it was issued and 364 a
    /// second later, so `certs inspect` run right after `certs issue` and `check` disagreed), and 2 hours left
    /// is 1 day. Once expired, minus the days since, counted the same way (an hour ago is -1), so the sign
    /// always tells. The only computation of "days left": `certs inspect` and `check` both print this, each
    /// from its own reading of the clock passed in as `now`.
    pub fn days_left(&self, now: i64) -> i64 {
        let whole_days_up = |secs: i64| {
            secs.saturating_add(SECONDS_PER_DAY - 1)
                .div_euclid(SECONDS_PER_DAY)
        };
        let diff = self.not_after.saturating_sub(now);
        if diff >= 0 {
            whole_days_up(diff)
        } else {
            -whole_days_up(diff.saturating_neg())
        }
    }

    /// True when any SAN dNSName or CN is a wildcard name.
    pub fn has_wildcard(&self) -> bool {
        self.common_names.iter().any(|n| is_wildcard_name(n))
            || self.san_dns.iter().flatten().any(|n| is_wildcard_name(n))
    }
}

/// An iPAddress SAN entry as text; `None` for a length that is neither IPv4 nor IPv6.
fn ip_text(bytes: &[u8]) -> Option<String> {
    let ip = match bytes.len() {
        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some(ip.to_string())
}

/// True for a wildcard name such as `*.steven.lab` (any `*` in the name).
pub fn is_wildcard_name(name: &str) -> bool {
    name.contains('*')
}

fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Parses PEM (all CERTIFICATE blocks, in order) or one DER certificate; `origin` names the source in errors.
pub fn parse_certs(bytes: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs: Vec<CertificateDer<'static>> = if looks_like_pem(bytes) {
        CertificateDer::pem_slice_iter(bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| PkiError::BadCertificate {
                origin: origin.to_string(),
                reason: format!("PEM: {}", reason::pem(&e)),
            })?
    } else {
        vec![CertificateDer::from(bytes.to_vec())]
    };
    if certs.is_empty() {
        return Err(PkiError::NoCertificate {
            origin: origin.to_string(),
        });
    }
    // Parse each one now so a bad file is reported here, by name, not later in a handshake.
    for der in &certs {
        CertFacts::from_der_named(der, origin)?;
    }
    Ok(certs)
}

/// Loads a certificate chain (leaf first) from a PEM or DER file.
pub fn load_pem_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let bytes = std::fs::read(path).map_err(|cause| PkiError::ReadCert {
        path: path.to_path_buf(),
        cause,
    })?;
    parse_certs(&bytes, &path.display().to_string())
}

/// Parses a private key from PEM (PKCS#8, PKCS#1 or SEC1) or DER bytes.
pub fn parse_key(bytes: &[u8], origin: &str) -> Result<PrivateKeyDer<'static>, PkiError> {
    let bad = |reason: String| PkiError::BadKey {
        origin: origin.to_string(),
        reason,
    };
    if looks_like_pem(bytes) {
        PrivateKeyDer::from_pem_slice(bytes).map_err(|e| bad(format!("PEM: {}", reason::pem(&e))))
    } else {
        PrivateKeyDer::try_from(bytes.to_vec()).map_err(|e| bad(format!("DER: {e}")))
    }
}

/// Loads a private key from a PEM or DER file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    let bytes = std::fs::read(path).map_err(|cause| PkiError::ReadKey {
        path: path.to_path_buf(),
        cause,
    })?;
    parse_key(&bytes, &path.display().to_string())
}
