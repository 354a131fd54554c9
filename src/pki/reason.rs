//! Library errors in words. The crates under `pki` print some of their errors with `{:?}` even through
//! `Display` (webpki always; x509-parser's nom wrapper; rustls for key mismatches; PEM markers as byte
//! lists), so every one that reaches a message is translated here first.

use x509_parser::der_parser::error::BerError;
use x509_parser::error::X509Error;
use x509_parser::nom;

/// Why x509-parser could not read a certificate.
pub(super) fn x509(e: &nom::Err<X509Error>) -> String {
    match e {
        nom::Err::Incomplete(_) => truncated(),
        nom::Err::Error(e) | nom::Err::Failure(e) => x509_error(e),
    }
}

/// Why x509-parser could not read a certificate or one of its extensions.
pub(super) fn x509_error(e: &X509Error) -> String {
    match e {
        X509Error::NomError(nom::error::ErrorKind::Eof)
        | X509Error::Der(BerError::Incomplete(_)) => truncated(),
        X509Error::NomError(_) | X509Error::Der(_) => {
            "the bytes are not the DER encoding of an X.509 certificate".to_string()
        }
        // The other variants are worded by x509-parser itself ("invalid X.509 name", ...).
        other => other.to_string(),
    }
}

fn truncated() -> String {
    "the data ends before a whole certificate: a truncated file, or not a certificate at all"
        .to_string()
}

/// Why a PEM file could not be read.
pub(super) fn pem(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { .. } => {
            "a BEGIN line has no matching END line: a truncated file?".into()
        }
        E::IllegalSectionStart { .. } => "a BEGIN line is malformed".into(),
        E::Base64Decode(_) => "the text between BEGIN and END is not valid base64".into(),
        E::NoItemsFound => "no PEM section found".into(),
        other => other.to_string(),
    }
}

/// Why webpki cannot use a certificate as a trust anchor.
pub(super) fn anchor(e: &webpki::Error) -> String {
    match e {
        webpki::Error::UnsupportedCertVersion => "not an X.509 version 3 certificate".into(),
        webpki::Error::UnsupportedCriticalExtension => {
            "it has a critical extension webpki does not understand".into()
        }
        _ => "not a well-formed X.509 certificate".into(),
    }
}

/// Why rustls refused a certificate and key as the Edge's identity.
pub(super) fn tls(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            "the private key does not belong to the certificate".into()
        }
        rustls::Error::InconsistentKeys(_) => {
            "the private key cannot be checked against the certificate".into()
        }
        rustls::Error::General(why) => why.clone(),
        other => other.to_string(),
    }
}
