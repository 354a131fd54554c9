//! The TLS handshake's refusals: a client certificate the Edge does not accept, a peer that offers no TLS
//! version the Edge accepts (read from its ClientHello by peeking at the connection's first bytes before
//! rustls consumes them), and any other failure in words rather than rustls' Debug forms. Each refusal the
//! Edge owns is a record and an event with null method, Call-ID and status (no request was read).
//!
//! And what the Edge learns from a peer's certificate chain, kept: [`PeerCache`] holds the parsed facts and
//! the chain verdict per distinct chain, as a real Edge keeps the peers it accepted, so a peer reconnecting
//! with the same certificate costs a hash and a compare instead of an X.509 parse and a path build.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::net::TcpStream;

use super::{Edge, remote_text};
use crate::pki::{self, CertFacts, ChainStatus, TrustAnchors, Usage};
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
        offer.and_then(|o| rules::tls_version_rejection(o, edge.config.tls_versions(), &peer))
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
    // The console's line is the event's (`console_line`); the explanation is in the record and the event.
    tracing::debug!(reason, "{}", rejection.explanation().unwrap_or_default());
    let record = rejection.log().map(|r| edge.write_record(r, cid));
    let event = rejection.to_handshake_event(
        time::OffsetDateTime::now_utc(),
        remote_text(remote),
        cert.map(CertFacts::display_name),
    );
    edge.taps()
        .decision(cid, rejection, &event, record.as_deref(), &edge.policy);
    edge.publish(event);
}

/// Distinct peer chains the Edge keeps (a federation Edge sees a few partners, a load test one; the bound keeps a
/// peer that presents a new certificate per connection from growing memory).
pub(super) const PEER_CACHE: usize = 1024;
/// The longest a kept verdict is reused, whatever the certificates' validity says.
pub(super) const PEER_MAX_AGE: Duration = Duration::from_secs(3600);

/// The facts and chain verdict of the peer chains seen, keyed by a hash of their DER (each entry keeps the
/// chain itself, so a hash collision is a miss, never another peer's verdict). An entry is used only before
/// the earliest `notAfter` of its chain, before the `notBefore` of a certificate that was not yet valid when
/// it was judged (the verdict's basis changes at those instants) and within [`PEER_MAX_AGE`]. The trust
/// anchors and the usage are the Edge's and fixed for its life, so they are not part of the key.
#[derive(Debug)]
pub(super) struct PeerCache {
    capacity: usize,
    keys: std::collections::hash_map::RandomState,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    map: HashMap<u64, Vec<Entry>>,
    len: usize,
    next: u64,
    hits: u64,
    misses: u64,
}

#[derive(Debug)]
struct Entry {
    chain: Vec<CertificateDer<'static>>,
    facts: Option<CertFacts>,
    status: ChainStatus,
    /// Unix seconds from which the entry is no longer used.
    until: u64,
    /// Insertion order, for eviction.
    seq: u64,
}

impl PeerCache {
    /// An empty cache of at most `capacity` chains.
    pub(super) fn new(capacity: usize) -> PeerCache {
        PeerCache {
            capacity: capacity.max(1),
            keys: std::collections::hash_map::RandomState::new(),
            inner: Mutex::default(),
        }
    }

    fn key(&self, chain: &[CertificateDer<'_>]) -> u64 {
        let mut h = self.keys.build_hasher();
        for c in chain {
            h.write_usize(c.len());
            h.write(c.as_ref());
        }
        h.finish()
    }

    /// The leaf's facts (`None` when it does not parse or there is none) and the chain's verdict (trust and
    /// validity, [`Usage::Any`]) at `now`: kept ones when still valid, else judged now and kept.
    pub(super) fn judge(
        &self,
        chain: &[CertificateDer<'_>],
        anchors: &TrustAnchors,
        now: UnixTime,
    ) -> (Option<CertFacts>, ChainStatus) {
        if chain.is_empty() {
            return (None, ChainStatus::Missing);
        }
        let secs = now.as_secs();
        let key = self.key(chain);
        if let Ok(mut inner) = self.inner.lock() {
            let found = inner.map.get(&key).and_then(|bucket| {
                bucket
                    .iter()
                    .find(|e| secs < e.until && e.chain.as_slice() == chain)
                    .map(|e| (e.facts.clone(), e.status))
            });
            if let Some(found) = found {
                inner.hits += 1;
                return found;
            }
            inner.misses += 1;
        }
        let facts = chain
            .first()
            .and_then(|c| CertFacts::from_der(c.as_ref()).ok());
        let status = pki::verify_chain(chain, anchors, Usage::Any, now);
        if let Some(until) = verdict_basis_ends(chain, secs) {
            self.keep(key, chain, &facts, status, until);
        }
        (facts, status)
    }

    fn keep(
        &self,
        key: u64,
        chain: &[CertificateDer<'_>],
        facts: &Option<CertFacts>,
        status: ChainStatus,
        until: u64,
    ) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let inner = &mut *inner;
        // Drop what is stale for this chain (an expired entry of the same certificate), then make room.
        if let Some(bucket) = inner.map.get_mut(&key) {
            let before = bucket.len();
            bucket.retain(|e| e.chain.as_slice() != chain);
            inner.len -= before - bucket.len();
        }
        if inner.len >= self.capacity {
            let oldest = inner
                .map
                .iter()
                .flat_map(|(k, b)| b.iter().map(move |e| (e.seq, *k)))
                .min();
            if let Some((seq, k)) = oldest
                && let Some(bucket) = inner.map.get_mut(&k)
            {
                bucket.retain(|e| e.seq != seq);
                inner.len -= 1;
                if bucket.is_empty() {
                    inner.map.remove(&k);
                }
            }
        }
        let seq = inner.next;
        inner.next += 1;
        inner.len += 1;
        inner.map.entry(key).or_default().push(Entry {
            chain: chain.iter().map(|c| c.clone().into_owned()).collect(),
            facts: facts.clone(),
            status,
            until,
            seq,
        });
    }

    /// (chains kept, hits, misses).
    #[cfg(test)]
    fn stats(&self) -> (usize, u64, u64) {
        let inner = self.inner.lock().unwrap();
        (inner.len, inner.hits, inner.misses)
    }
}

/// Until when (Unix seconds) a verdict on `chain` judged at `now` stays true: the earliest instant ahead at which
/// one of its certificates starts or stops being valid, and at most [`PEER_MAX_AGE`] from now. `None`
/// (do not keep) when a certificate's validity cannot be read.
fn verdict_basis_ends(chain: &[CertificateDer<'_>], now: u64) -> Option<u64> {
    use x509_parser::prelude::FromDer;
    let mut until = now.saturating_add(PEER_MAX_AGE.as_secs());
    for c in chain {
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(c.as_ref()).ok()?;
        let v = cert.validity();
        // webpki accepts a certificate from its notBefore second through its notAfter second: the verdict can
        // change at notBefore and one second after notAfter, when these are still ahead (time only moves on).
        let after = u64::try_from(v.not_after.timestamp())
            .unwrap_or(0)
            .saturating_add(1);
        let before = u64::try_from(v.not_before.timestamp()).unwrap_or(0);
        for change in [before, after] {
            if change > now {
                until = until.min(change);
            }
        }
    }
    Some(until)
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
    use crate::pki::{KeyType, LabCa, LeafSpec};

    /// A lab CA and the anchors trusting it.
    fn lab(name: &str) -> (LabCa, TrustAnchors) {
        let ca = LabCa::generate(name, KeyType::EcdsaP256).unwrap();
        let anchors = TrustAnchors::from_certs(&[ca.cert_der().clone()], "test").unwrap();
        (ca, anchors)
    }

    /// A leaf valid from `from` to `to` (Unix seconds), as a one-certificate chain.
    fn leaf(ca: &LabCa, name: &str, from: i64, to: i64) -> Vec<CertificateDer<'static>> {
        let mut spec = LeafSpec::new(name);
        spec.not_before = time::OffsetDateTime::from_unix_timestamp(from).unwrap();
        spec.not_after = time::OffsetDateTime::from_unix_timestamp(to).unwrap();
        vec![ca.issue(&spec).unwrap().cert_der]
    }

    fn at(secs: i64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(secs).unwrap()))
    }

    /// 2026-12-01 00:00:00 UTC.
    const NOW: i64 = 1_764_547_200;
    const DAY: i64 = 86_400;

    #[test]
    fn the_same_chain_is_judged_once_with_the_same_answer() {
        let (ca, anchors) = lab("cache test CA");
        let chain = leaf(&ca, "vcse.steven.lab", NOW - DAY, NOW + 30 * DAY);
        let cache = PeerCache::new(8);
        let first = cache.judge(&chain, &anchors, at(NOW));
        assert_eq!(first.1, ChainStatus::Trusted);
        assert_eq!(first.0, Some(CertFacts::from_der(&chain[0]).unwrap()));
        assert_eq!(first.0.as_ref().unwrap().display_name(), "vcse.steven.lab");
        let again = cache.judge(&chain, &anchors, at(NOW + 60));
        assert_eq!(again, first);
        assert_eq!(cache.stats(), (1, 1, 1));
        // Another chain with the same leaf (an intermediate sent along) is another entry.
        let mut longer = chain.clone();
        longer.push(ca.cert_der().clone());
        assert_eq!(
            cache.judge(&longer, &anchors, at(NOW)).1,
            ChainStatus::Trusted
        );
        assert_eq!(cache.stats(), (2, 1, 2));
        assert_eq!(
            cache.judge(&[], &anchors, at(NOW)),
            (None, ChainStatus::Missing)
        );
    }

    #[test]
    fn an_entry_never_outlives_the_certificate() {
        let (ca, anchors) = lab("cache test CA");
        let to = NOW + 100;
        let chain = leaf(&ca, "vcse.steven.lab", NOW - DAY, to);
        let cache = PeerCache::new(8);
        assert_eq!(
            cache.judge(&chain, &anchors, at(NOW)).1,
            ChainStatus::Trusted
        );
        // Valid through its notAfter second (as webpki counts), judged anew one second later.
        assert_eq!(
            cache.judge(&chain, &anchors, at(to)).1,
            ChainStatus::Trusted
        );
        assert_eq!(cache.stats(), (1, 1, 1));
        assert_eq!(
            cache.judge(&chain, &anchors, at(to + 1)).1,
            ChainStatus::Expired
        );
        assert_eq!(cache.stats(), (1, 1, 2));
        // The refusal is kept too, in place of the old verdict.
        assert_eq!(
            cache.judge(&chain, &anchors, at(to + 2)).1,
            ChainStatus::Expired
        );
        assert_eq!(cache.stats(), (1, 2, 2));
    }

    #[test]
    fn a_not_yet_valid_verdict_ends_when_the_certificate_starts() {
        let (ca, anchors) = lab("cache test CA");
        let from = NOW + 600;
        let chain = leaf(&ca, "vcse.steven.lab", from, NOW + 30 * DAY);
        let cache = PeerCache::new(8);
        assert_eq!(
            cache.judge(&chain, &anchors, at(NOW)).1,
            ChainStatus::NotYetValid
        );
        assert_eq!(
            cache.judge(&chain, &anchors, at(from - 1)).1,
            ChainStatus::NotYetValid
        );
        assert_eq!(
            cache.judge(&chain, &anchors, at(from)).1,
            ChainStatus::Trusted
        );
        assert_eq!(cache.stats(), (1, 1, 2));
    }

    #[test]
    fn a_verdict_is_reused_for_an_hour_at_most_and_untrusted_ones_are_kept_too() {
        let (ca, anchors) = lab("cache test CA");
        let chain = leaf(&ca, "vcse.steven.lab", NOW - DAY, NOW + 30 * DAY);
        let (stranger, _) = lab("another lab CA");
        let other = leaf(&stranger, "vcse.steven.lab", NOW - DAY, NOW + 30 * DAY);
        let cache = PeerCache::new(8);
        let hour = i64::try_from(PEER_MAX_AGE.as_secs()).unwrap();
        cache.judge(&chain, &anchors, at(NOW));
        assert_eq!(
            cache.judge(&other, &anchors, at(NOW)).1,
            ChainStatus::UntrustedRoot
        );
        assert_eq!(
            cache.judge(&other, &anchors, at(NOW + 1)).1,
            ChainStatus::UntrustedRoot
        );
        cache.judge(&chain, &anchors, at(NOW + hour - 1));
        assert_eq!(cache.stats(), (2, 2, 2));
        cache.judge(&chain, &anchors, at(NOW + hour));
        assert_eq!(cache.stats(), (2, 2, 3));
    }

    #[test]
    fn the_cache_is_bounded_and_drops_the_oldest() {
        let (ca, anchors) = lab("cache test CA");
        let chains: Vec<_> = (0..6)
            .map(|n| leaf(&ca, &format!("peer{n}.steven.lab"), NOW - DAY, NOW + DAY))
            .collect();
        let cache = PeerCache::new(4);
        for c in &chains {
            cache.judge(c, &anchors, at(NOW));
        }
        assert_eq!(cache.stats(), (4, 0, 6));
        // The newest are kept, the first two were dropped.
        cache.judge(&chains[5], &anchors, at(NOW));
        cache.judge(&chains[2], &anchors, at(NOW));
        assert_eq!(cache.stats(), (4, 2, 6));
        cache.judge(&chains[0], &anchors, at(NOW));
        assert_eq!(cache.stats(), (4, 2, 7));
    }

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
