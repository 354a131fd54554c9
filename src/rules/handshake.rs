//! A TLS handshake that fails on the protocol version: the peer's ClientHello offers no version the Edge
//! accepts (`tls.versions`). rustls reports it in its own terms (a TLS 1.0 hello lacks the
//! signature_algorithms extension: `SignatureAlgorithmsExtensionRequired`, alert 40); the Edge reads the
//! versions from the hello itself and says what they were.
//!
//! The handshake also refuses a client certificate whose chain the Edge does not trust ([`client_chain`]).
//!
//! Choice (no Microsoft source): the refusal gets a record like a refused client certificate, synthetic code
//! 0xc3e93e12 with `reason="TLS version"`, `offered`, `accepted`. A real Skype for Business Server 2015 Edge
//! still speaks TLS 1.0 and 1.1; edgesim cannot (rustls implements neither), and says so.

use super::{Finding, Role, Verdict};
use crate::config::TlsVersion;
use crate::pki::{CertFacts, ChainStatus};

/// TLS 1.2 on the wire.
const TLS12: u16 = 0x0303;

/// The TLS versions a ClientHello offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferedTls {
    /// No supported_versions extension: `legacy_version` is the client's highest version (TLS 1.2 and older
    /// clients), and it speaks the versions below too.
    UpTo(u16),
    /// The supported_versions extension's list (GREASE values removed), in the client's order.
    List(Vec<u16>),
}

impl OfferedTls {
    /// Whether the client offered the wire version `v`.
    pub fn offers(&self, v: u16) -> bool {
        match self {
            OfferedTls::UpTo(max) => (0x0300..=*max).contains(&v),
            OfferedTls::List(l) => l.contains(&v),
        }
    }

    /// The highest version offered.
    pub fn best(&self) -> Option<u16> {
        match self {
            OfferedTls::UpTo(max) => Some(*max),
            OfferedTls::List(l) => l.iter().copied().max(),
        }
    }

    /// `TLS 1.1 at most`, or the list: `TLS 1.2, TLS 1.1`.
    pub fn describe(&self) -> String {
        match self {
            OfferedTls::UpTo(max) => format!("{} at most", tls_version_name(*max)),
            OfferedTls::List(l) if l.is_empty() => "no version".to_owned(),
            OfferedTls::List(l) => names(l.iter().copied()),
        }
    }
}

/// `TLS 1.2` for 0x0303, `SSL 3.0` for 0x0300, `0x7f1c` for anything else.
pub fn tls_version_name(v: u16) -> String {
    match v {
        0x0300 => "SSL 3.0".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        other => format!("0x{other:04x}"),
    }
}

fn names(v: impl Iterator<Item = u16>) -> String {
    v.map(tls_version_name).collect::<Vec<_>>().join(", ")
}

fn wire(v: TlsVersion) -> u16 {
    match v {
        TlsVersion::Tls12 => TLS12,
        TlsVersion::Tls13 => 0x0304,
    }
}

/// The accepted versions in words: `TLS 1.2, TLS 1.3`.
pub fn versions_text(accepted: &[TlsVersion]) -> String {
    names(accepted.iter().map(|v| wire(*v)))
}

/// The fix for a ClientHello that offered none of `accepted`.
pub(super) fn tls_version_fix(offered: &OfferedTls, accepted: &[TlsVersion]) -> String {
    match offered.best() {
        Some(best) if best >= TLS12 => format!(
            "add \"{}\" to tls.versions in the Edge configuration, or enable {} on the peer.",
            match best {
                TLS12 => "1.2",
                _ => "1.3",
            },
            versions_text(accepted)
        ),
        _ => "enable TLS 1.2 on the peer. edgesim cannot accept TLS 1.0 or 1.1 (rustls implements neither), although a real Skype for Business Server 2015 Edge still does.".to_owned(),
    }
}

/// The refusal of a ClientHello that offered none of `accepted`; `None` when it offered one of them (the
/// handshake failed for another reason).
pub fn tls_version_refusal(offered: &OfferedTls, accepted: &[TlsVersion]) -> Option<Finding> {
    if accepted.iter().any(|v| offered.offers(wire(*v))) {
        return None;
    }
    Some(Finding::TlsVersionRefused {
        offered: offered.clone(),
        accepted: accepted.to_vec(),
    })
}

/// [`tls_version_refusal`] rendered for the connection from `peer` (`ip:port`): its record and explanation.
pub fn tls_version_rejection(
    offered: &OfferedTls,
    accepted: &[TlsVersion],
    peer: &str,
) -> Option<Verdict> {
    tls_version_refusal(offered, accepted).map(|f| Verdict::at_handshake(f, peer))
}

/// The handshake's judgement of the peer's client certificate chain (trust and validity only: the clientAuth
/// EKU is judged after the handshake, so the lab gets a 504 that explains it); `None` when the chain is trusted.
pub fn client_chain(chain: &ChainStatus, cert: Option<&CertFacts>) -> Option<Finding> {
    (*chain != ChainStatus::Trusted).then(|| Finding::ChainRefused {
        target: None,
        cert: cert.map(|c| Box::new(c.clone())),
        chain: *chain,
        role: Role::Client,
        anchors: None,
    })
}

/// [`client_chain`] rendered for the connection from `peer` (`ip:port`: no certificate name is trustworthy
/// yet): the record of a client certificate refused at the handshake, and its explanation.
pub fn handshake_rejection(
    chain: &ChainStatus,
    cert: Option<&CertFacts>,
    peer: &str,
) -> Option<Verdict> {
    client_chain(chain, cert).map(|f| Verdict::at_handshake(f, peer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::ResultCode;

    const BOTH: &[TlsVersion] = &[TlsVersion::Tls12, TlsVersion::Tls13];

    #[test]
    fn tls10_and_tls11_clients_are_refused_and_told_why() {
        let r = tls_version_rejection(&OfferedTls::UpTo(0x0301), BOTH, "127.0.0.1:40000").unwrap();
        let log = r.log().unwrap();
        assert_eq!(log.result_code, ResultCode::TLS_VERSION_REFUSED);
        assert_eq!(log.peer, "127.0.0.1:40000");
        assert_eq!(
            log.render_data(),
            r#"reason="TLS version";offered="TLS 1.0 at most";accepted="TLS 1.2, TLS 1.3""#
        );
        assert_eq!(
            r.explanation().unwrap(),
            "The peer offered only TLS 1.0 at most in its TLS ClientHello, and this Edge accepts TLS 1.2, TLS 1.3 (tls.versions): the handshake was refused. Fix: enable TLS 1.2 on the peer. edgesim cannot accept TLS 1.0 or 1.1 (rustls implements neither), although a real Skype for Business Server 2015 Edge still does."
        );
        let r = tls_version_rejection(&OfferedTls::UpTo(0x0302), BOTH, "p").unwrap();
        assert_eq!(
            r.log().unwrap().data_value("offered"),
            Some("TLS 1.1 at most")
        );
    }

    #[test]
    fn versions_the_edge_speaks_but_has_switched_off() {
        let only13 = [TlsVersion::Tls13];
        let r = tls_version_rejection(&OfferedTls::UpTo(0x0303), &only13, "p").unwrap();
        assert_eq!(
            r.explanation().unwrap(),
            "The peer offered only TLS 1.2 at most in its TLS ClientHello, and this Edge accepts TLS 1.3 (tls.versions): the handshake was refused. Fix: add \"1.2\" to tls.versions in the Edge configuration, or enable TLS 1.3 on the peer."
        );
        let only12 = [TlsVersion::Tls12];
        let r = tls_version_rejection(&OfferedTls::List(vec![0x0304]), &only12, "p").unwrap();
        assert_eq!(r.log().unwrap().data_value("offered"), Some("TLS 1.3"));
        assert!(r.explanation().unwrap().ends_with("Fix: add \"1.3\" to tls.versions in the Edge configuration, or enable TLS 1.2 on the peer."));
    }

    #[test]
    fn an_acceptable_offer_is_not_a_version_refusal() {
        assert!(tls_version_rejection(&OfferedTls::UpTo(0x0303), BOTH, "p").is_none());
        assert!(
            tls_version_rejection(&OfferedTls::List(vec![0x0304, 0x0303]), BOTH, "p").is_none()
        );
        assert_eq!(tls_version_name(0x7f1c), "0x7f1c");
        assert_eq!(OfferedTls::List(vec![]).describe(), "no version");
    }
}
