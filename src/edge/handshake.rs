//! The TLS handshake's refusals: a client certificate the Edge does not accept, a peer that offers no TLS
//! version the Edge accepts (read from its ClientHello by peeking at the connection's first bytes before
//! rustls consumes them), and any other failure in words rather than rustls' Debug forms. Each refusal the
//! Edge owns is a record and an event with null method, Call-ID and status (no request was read).

use std::net::SocketAddr;

use tokio::net::TcpStream;

use super::{Edge, remote_text};
use crate::pki::{CertFacts, ChainStatus};
use crate::rules::{self, OfferedTls, Verdict};

/// How much of the first bytes is peeked: a ClientHello up to its extensions fits in most cases; a longer one
/// is still judged by its `legacy_version`.
const PEEK: usize = 2048;

/// Waits for the peer's first bytes and reads the TLS versions its ClientHello offers, without consuming
/// anything. `None` when they are not a ClientHello or do not say.
pub(super) async fn peek_offer(tcp: &TcpStream) -> Option<OfferedTls> {
    // On the heap: the buffer must not live in every connection task's state.
    let mut buf = vec![0u8; PEEK];
    let n = tcp.peek(&mut buf).await.ok()?;
    offered_versions(buf.get(..n)?)
}

/// A handshake that failed: the Edge's business (record + event) when the peer offered no TLS version the Edge
/// accepts or presented no certificate; anything else (plain TCP bytes, no common cipher suite) is only traced.
pub(super) fn failed(
    edge: &Edge,
    remote: SocketAddr,
    cid: u64,
    e: &std::io::Error,
    offer: Option<&OfferedTls>,
) {
    edge.taps().handshake_failed(e);
    let peer = remote_text(remote);
    if let Some(rejection) =
        offer.and_then(|o| rules::tls_version_rejection(o, &edge.config.tls.versions, &peer))
    {
        publish_rejection(edge, remote, cid, &rejection, None);
        return;
    }
    let tls = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::NoCertificatesPresented) => {
            reject_certificate(edge, remote, cid, &ChainStatus::Missing, None);
        }
        Some(t) => {
            tracing::info!("TLS handshake failed: {}; closing", describe_tls_failure(t));
            tracing::debug!(error = %t, "rustls error");
        }
        None => tracing::info!(error = %e, "connection lost during the TLS handshake"),
    }
}

/// Writes the handshake rejection record and event.
pub(super) fn reject_certificate(
    edge: &Edge,
    remote: SocketAddr,
    cid: u64,
    status: &ChainStatus,
    cert: Option<&CertFacts>,
) {
    let peer = remote_text(remote);
    if let Some(rejection) = rules::handshake_rejection(status, cert, &peer) {
        publish_rejection(edge, remote, cid, &rejection, cert);
    }
}

/// A refused handshake: console, record, event (no request was read: method, Call-ID and status are null), all
/// from the one verdict.
fn publish_rejection(
    edge: &Edge,
    remote: SocketAddr,
    cid: u64,
    rejection: &Verdict,
    cert: Option<&CertFacts>,
) {
    let reason = rejection
        .log()
        .and_then(|l| l.data_value("reason"))
        .unwrap_or_default();
    tracing::warn!(reason, "{}", rejection.explanation().unwrap_or_default());
    let record = rejection.log().map(|r| edge.write_record(r, cid));
    let event = rejection.to_handshake_event(
        time::OffsetDateTime::now_utc(),
        remote_text(remote),
        cert.map(CertFacts::display_name),
    );
    edge.taps()
        .decision(cid, rejection, &event, record, &edge.policy);
    edge.publish(event);
}

/// Reads a big-endian u16 at `at`.
fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// GREASE values (RFC 8701) are not versions.
fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a
}

/// The versions offered by the ClientHello at the start of `bytes` (a TLS record). Without a
/// supported_versions extension, the `legacy_version` is the client's highest version. `None` when the bytes
/// are not a ClientHello, or when they are cut before the extensions of a hello whose `legacy_version` is
/// TLS 1.2 (it may still offer TLS 1.3 in an extension not seen).
pub(super) fn offered_versions(bytes: &[u8]) -> Option<OfferedTls> {
    // Record: type 22 (handshake), version, length; then handshake type 1 (ClientHello), 3-byte length.
    if bytes.first() != Some(&22) || bytes.get(5) != Some(&1) {
        return None;
    }
    let record_end = 5 + usize::from(u16_at(bytes, 3)?);
    let b = bytes.get(..record_end.min(bytes.len()))?;
    let legacy = u16_at(b, 9)?;
    let cut = || (legacy < 0x0303).then_some(OfferedTls::UpTo(legacy));
    let hello_len = (usize::from(*b.get(6)?) << 16) | usize::from(u16_at(b, 7)?);
    let hello_end = 9 + hello_len;
    // random (32), session id, cipher suites, compression methods.
    let mut at = 11 + 32;
    let Some(&sid) = b.get(at) else { return cut() };
    at += 1 + usize::from(sid);
    let Some(suites) = u16_at(b, at) else {
        return cut();
    };
    at += 2 + usize::from(suites);
    let Some(&comp) = b.get(at) else { return cut() };
    at += 1 + usize::from(comp);
    if at >= hello_end {
        // No extensions at all (TLS 1.0 clients may send none).
        return Some(OfferedTls::UpTo(legacy));
    }
    let Some(ext_len) = u16_at(b, at) else {
        return cut();
    };
    at += 2;
    let ext_end = at + usize::from(ext_len);
    while at + 4 <= ext_end {
        let (Some(kind), Some(len)) = (u16_at(b, at), u16_at(b, at + 2)) else {
            return cut();
        };
        let data = at + 4;
        let next = data + usize::from(len);
        if kind == 0x002b {
            let Some((&n, list)) = b.get(data..next).and_then(<[u8]>::split_first) else {
                return cut();
            };
            let versions = list
                .get(..usize::from(n))?
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .filter(|v| !is_grease(*v))
                .collect();
            return Some(OfferedTls::List(versions));
        }
        at = next;
    }
    if ext_end > b.len() {
        return cut();
    }
    Some(OfferedTls::UpTo(legacy))
}

/// A TLS alert's name (RFC 8446 §6), for people; unknown ones by number.
fn alert_name(code: u8) -> String {
    let name = match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => return format!("alert {code}"),
    };
    format!("{name} ({code})")
}

/// Why a handshake failed, in words (not rustls' Debug forms).
pub(super) fn describe_tls_failure(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateHandshakeMessage { .. } => {
            "the peer's bytes are not a TLS handshake the Edge can read (plain SIP over TCP, or another protocol, on the TLS port?)".into()
        }
        rustls::Error::PeerIncompatible(_) => {
            "the peer and the Edge have no TLS parameters in common (protocol versions, cipher suites, signature algorithms or key exchange groups)".into()
        }
        rustls::Error::AlertReceived(a) => format!(
            "the peer aborted the handshake with the TLS alert {}",
            alert_name(u8::from(*a))
        ),
        rustls::Error::PeerMisbehaved(_) => "the peer broke the TLS protocol".into(),
        rustls::Error::NoCertificatesPresented => "the peer presented no client certificate".into(),
        rustls::Error::InvalidCertificate(_) => "the peer's certificate was refused".into(),
        _ => "the TLS handshake failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello record with `legacy` and these extensions (type, data).
    fn hello(legacy: u16, exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = legacy.to_be_bytes().to_vec();
        body.extend([7u8; 32]);
        body.push(0); // session id
        body.extend([0, 4, 0x00, 0x2f, 0x00, 0x35]); // two suites
        body.extend([1, 0]); // null compression
        if !exts.is_empty() {
            let mut e = Vec::new();
            for (t, d) in exts {
                e.extend(t.to_be_bytes());
                e.extend((d.len() as u16).to_be_bytes());
                e.extend(d);
            }
            body.extend((e.len() as u16).to_be_bytes());
            body.extend(e);
        }
        let mut hs = vec![1, 0];
        hs.extend((body.len() as u16).to_be_bytes());
        hs.extend(body);
        let mut rec = vec![22, 3, 1];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    #[test]
    fn legacy_hellos_say_their_highest_version() {
        assert_eq!(
            offered_versions(&hello(0x0301, &[])),
            Some(OfferedTls::UpTo(0x0301))
        );
        let sni = (0u16, vec![0, 5, 0, 0, 2, b'a', b'b']);
        assert_eq!(
            offered_versions(&hello(0x0302, &[sni])),
            Some(OfferedTls::UpTo(0x0302))
        );
        // Cut right after the version: still enough for a TLS 1.1 client, not for a TLS 1.2 one.
        assert_eq!(
            offered_versions(&hello(0x0302, &[])[..11]),
            Some(OfferedTls::UpTo(0x0302))
        );
        assert_eq!(offered_versions(&hello(0x0303, &[])[..40]), None);
    }

    #[test]
    fn supported_versions_wins_and_grease_is_dropped() {
        let sv = (0x002b, vec![6, 0x1a, 0x1a, 0x03, 0x04, 0x03, 0x03]);
        assert_eq!(
            offered_versions(&hello(0x0303, &[(0, vec![]), sv])),
            Some(OfferedTls::List(vec![0x0304, 0x0303]))
        );
    }

    #[test]
    fn other_bytes_are_not_hellos() {
        assert_eq!(offered_versions(b"OPTIONS sip:x SIP/2.0\r\n"), None);
        assert_eq!(offered_versions(&[]), None);
        assert_eq!(offered_versions(&[22, 3, 1, 0, 4, 2, 0, 0, 0]), None);
    }

    #[test]
    fn failures_in_words() {
        assert_eq!(
            describe_tls_failure(&rustls::Error::AlertReceived(
                rustls::AlertDescription::UnknownCA
            )),
            "the peer aborted the handshake with the TLS alert unknown_ca (48)"
        );
        assert_eq!(
            describe_tls_failure(&rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::SignatureAlgorithmsExtensionRequired
            )),
            "the peer and the Edge have no TLS parameters in common (protocol versions, cipher suites, signature algorithms or key exchange groups)"
        );
        assert_eq!(alert_name(200), "alert 200");
    }
}
