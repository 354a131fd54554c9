//! [`Taps`]: the one object the Edge and the outbound side call at the points where something is seen on
//! the wire — a connection accepted, its handshake's result, a SIP message in or out, a decision, the end of
//! the connection — and which hands each fact to the sinks that are on: the pcapng writer, the HEP sender,
//! the Prometheus metrics and the web view's hub. With no sink on ([`Taps::default`]) every hook returns at
//! once, so the hooks cost nothing when nobody looks.
//!
//! The hooks are one line each at their call sites (`src/edge/transport.rs`, `handshake.rs`,
//! `src/outbound/exchange.rs`); what is derived from the facts (the handshake result's class, a response's
//! status and ms-diagnostics code, the Call-ID, who closed) is worked out here.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::hep::{Direction, HepSender};
use super::metrics::{DnsResult, EdgeMetrics, HandshakeResult, Sink};
use super::pcap::{PcapWriter, Side};
use crate::diagnostics::DecisionEvent;
use crate::dns::{DnsFailure, Lookup, LookupFuture, SrvRecord};
use crate::pki::{CertFacts, ChainStatus};
use crate::sip::Message;
use crate::ui::{
    Closer, ConnectionClosed, ConnectionView, MessageDirection, SipMessage, UiEvent, UiHub,
};

/// The sinks a [`Taps`] feeds; each is optional.
#[derive(Debug, Default, Clone)]
pub struct TapSinks {
    /// Decrypted SIP as pcapng (`--pcap`).
    pub pcap: Option<PcapWriter>,
    /// Every SIP message as HEP3 (`--hep`).
    pub hep: Option<HepSender>,
    /// Prometheus metrics (`--metrics`).
    pub metrics: Option<Arc<EdgeMetrics>>,
    /// The web view (`--ui`).
    pub ui: Option<UiHub>,
}

#[derive(Debug)]
struct Inner {
    sinks: TapSinks,
    /// Connections opened in the sinks and not yet closed: a close is written once, whichever hook sees it
    /// first (the peer's FIN, or the end of the connection task).
    open: Mutex<HashSet<u64>>,
    /// Connection ids for the outbound side (the Edge numbers its inbound connections itself).
    next_outbound: AtomicU64,
    /// The next [`Taps::for_edge`] offset.
    next_edge: AtomicU64,
}

/// The wire taps of one Edge or one outbound run; clone freely (all clones feed the same sinks).
#[derive(Debug, Default, Clone)]
pub struct Taps {
    inner: Option<Arc<Inner>>,
    /// Added to the connection ids in the capture, so that several Edges (which all number their
    /// connections from 0x100) can share one pcapng file ([`Taps::for_edge`]).
    offset: u64,
}

/// Decrements the open-connections gauge when the connection task ends, however it ends.
#[derive(Debug)]
#[must_use = "the connection counts as open while the guard lives"]
pub struct OpenGuard {
    metrics: Option<Arc<EdgeMetrics>>,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if let Some(m) = &self.metrics {
            m.conn_closed();
        }
    }
}

/// The status and ms-diagnostics code of a response (`None` for a request or bytes that do not parse).
pub fn response_facts(m: &Message) -> Option<(u16, Option<u32>)> {
    let status = m.status_code()?;
    let code = m.header_named("ms-diagnostics").and_then(|h| {
        let v = h.value();
        let digits: Vec<u8> = v
            .iter()
            .copied()
            .skip_while(u8::is_ascii_whitespace)
            .take_while(u8::is_ascii_digit)
            .collect();
        std::str::from_utf8(&digits).ok()?.parse().ok()
    });
    Some((status, code))
}

/// The Call-ID of a message as text (bounded: HEP's correlation id and the web view).
fn call_id_text(m: &Message) -> Option<String> {
    let c = m.call_id().ok()?;
    let c = &c[..c.len().min(256)];
    Some(String::from_utf8_lossy(c).into_owned())
}

/// How a failed handshake counts (`e` is what the TLS acceptor returned).
pub fn handshake_class(e: &std::io::Error) -> HandshakeResult {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::NoCertificatesPresented) => HandshakeResult::NoCertificate,
        Some(_) => HandshakeResult::TlsError,
        None if e.kind() == std::io::ErrorKind::InvalidData => HandshakeResult::TlsError,
        None => HandshakeResult::Lost,
    }
}

/// True for keep-alive bytes (CRLF pings and pongs), which are not SIP messages.
fn is_keepalive(b: &[u8]) -> bool {
    b.iter().all(|c| matches!(c, b'\r' | b'\n'))
}

impl Taps {
    /// Taps feeding `sinks`; none at all when every sink is off.
    pub fn new(sinks: TapSinks) -> Taps {
        let any = sinks.pcap.is_some()
            || sinks.hep.is_some()
            || sinks.metrics.is_some()
            || sinks.ui.is_some();
        if let Some(m) = &sinks.metrics {
            // The backlog gauges are read at each scrape, not left at the last message's figure.
            let (pcap, hep) = (sinks.pcap.clone(), sinks.hep.clone());
            m.on_scrape(Box::new(move |m| {
                if let Some(p) = &pcap {
                    m.backlog(Sink::Pcap, p.backlog());
                }
                if let Some(h) = &hep {
                    m.backlog(Sink::Hep, h.backlog());
                }
            }));
        }
        Taps {
            inner: any.then(|| {
                Arc::new(Inner {
                    sinks,
                    open: Mutex::new(HashSet::new()),
                    next_outbound: AtomicU64::new(1),
                    next_edge: AtomicU64::new(1),
                })
            }),
            offset: 0,
        }
    }

    /// The taps for one more Edge feeding the same sinks: its connection ids are kept apart from the other
    /// Edges' in the capture (`scenario run` starts an Edge per case, several at once).
    pub fn for_edge(&self) -> Taps {
        let offset = self
            .inner
            .as_deref()
            .map_or(0, |i| i.next_edge.fetch_add(1, Ordering::Relaxed) << 32);
        Taps {
            inner: self.inner.clone(),
            offset,
        }
    }

    /// The capture's key of connection `conn`.
    fn key(&self, conn: u64) -> u64 {
        self.offset.wrapping_add(conn)
    }

    /// True when at least one sink is on.
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    fn sinks(&self) -> Option<&TapSinks> {
        self.inner.as_deref().map(|i| &i.sinks)
    }

    /// The metrics, if on.
    pub fn metrics(&self) -> Option<&Arc<EdgeMetrics>> {
        self.sinks().and_then(|s| s.metrics.as_ref())
    }

    /// `lookup`, with each lookup counted by result in the metrics (unchanged when metrics are off).
    pub fn count_lookups(&self, lookup: Arc<dyn Lookup>) -> Arc<dyn Lookup> {
        match self.metrics() {
            Some(m) => Arc::new(CountedLookup {
                inner: lookup,
                metrics: m.clone(),
            }),
            None => lookup,
        }
    }

    /// A TCP connection was accepted: it counts as open until the returned guard is dropped.
    pub fn accepted(&self) -> OpenGuard {
        let metrics = self.metrics().cloned();
        if let Some(m) = &metrics {
            m.conn_opened();
        }
        OpenGuard { metrics }
    }

    /// The TLS handshake did not complete in time.
    pub fn handshake_timeout(&self) {
        if let Some(m) = self.metrics() {
            m.handshake(HandshakeResult::Timeout);
        }
    }

    /// The TLS handshake failed with `e`.
    pub fn handshake_failed(&self, e: &std::io::Error) {
        if let Some(m) = self.metrics() {
            m.handshake(handshake_class(e));
        }
    }

    /// The handshake completed and the client certificate chain was refused (the connection is reset).
    pub fn certificate_refused(
        &self,
        conn: u64,
        local: SocketAddr,
        remote: SocketAddr,
        tls: &rustls::ServerConnection,
        status: &ChainStatus,
    ) {
        let Some(s) = self.sinks() else { return };
        if let Some(m) = &s.metrics {
            m.handshake(HandshakeResult::CertificateRefused);
        }
        if let Some(hub) = &s.ui {
            hub.publish(UiEvent::Connection(ConnectionView::from_tls(
                conn,
                local,
                remote,
                tls,
                Some(status),
            )));
            hub.publish(UiEvent::ConnectionClosed(ConnectionClosed {
                time: time::OffsetDateTime::now_utc(),
                conn,
                remote,
                by: Closer::Edge,
                reason: format!(
                    "client certificate refused ({}): reset",
                    crate::rules::chain_phrase(status)
                ),
            }));
        }
    }

    /// An inbound connection is established: the handshake is done and the client certificate, if the peer
    /// sent one, was checked and trusted (a refused one went to [`Taps::certificate_refused`]).
    pub async fn established(
        &self,
        conn: u64,
        local: SocketAddr,
        remote: SocketAddr,
        tls: &rustls::ServerConnection,
    ) {
        let Some(s) = self.sinks() else { return };
        if let Some(m) = &s.metrics {
            m.handshake(HandshakeResult::Ok);
        }
        let chain = crate::pki::peer_chain(tls);
        if let Some(hub) = &s.ui {
            let status = (!chain.is_empty()).then_some(&ChainStatus::Trusted);
            hub.publish(UiEvent::Connection(ConnectionView::from_tls(
                conn, local, remote, tls, status,
            )));
        }
        let name = chain
            .first()
            .and_then(|c| CertFacts::from_der(c.as_ref()).ok())
            .map(|f| f.display_name());
        self.opened(conn, Side::Remote, local, remote, name.as_deref())
            .await;
    }

    /// Runs a connection's task `serve` to its end, then writes the connection's close (the Edge's, unless
    /// the peer's was seen first: [`Taps::closed`]).
    pub async fn serving(&self, conn: u64, remote: SocketAddr, serve: impl Future<Output = ()>) {
        serve.await;
        self.closed(
            conn,
            remote,
            Closer::Edge,
            "closed by the Edge (timeout, bad input, a failed write or shutdown)",
        )
        .await;
    }

    /// An outbound TLS connection to `remote` is up; returns its connection id for the other hooks.
    /// `peer_name` names `remote` in the pcapng (the server certificate's name).
    pub async fn connected_out(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        peer_name: Option<&str>,
    ) -> u64 {
        let Some(inner) = self.inner.as_deref() else {
            return 0;
        };
        let conn = inner.next_outbound.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &inner.sinks.metrics {
            m.handshake(HandshakeResult::Ok);
        }
        self.opened(conn, Side::Local, local, remote, peer_name)
            .await;
        conn
    }

    async fn opened(
        &self,
        conn: u64,
        opener: Side,
        local: SocketAddr,
        remote: SocketAddr,
        peer_name: Option<&str>,
    ) {
        let Some(inner) = self.inner.as_deref() else {
            return;
        };
        if let Ok(mut open) = inner.open.lock() {
            open.insert(self.key(conn));
        }
        if let Some(p) = &inner.sinks.pcap {
            p.conn_opened(self.key(conn), opener, local, remote, peer_name)
                .await;
        }
        self.backlogs();
    }

    /// A whole SIP message read from the peer.
    pub async fn received(&self, conn: u64, local: SocketAddr, remote: SocketAddr, m: &Message) {
        let Some(s) = self.sinks() else { return };
        if let Some(metrics) = &s.metrics
            && let Some(method) = m.method()
        {
            metrics.request(&String::from_utf8_lossy(method));
        }
        self.message(conn, local, remote, Direction::In, m.as_bytes(), Some(m))
            .await;
    }

    /// A framed message from the peer that did not parse (the Edge answers 400 or drops it): captured as it
    /// came, so the capture shows what the Edge refused. Not counted as a request.
    pub async fn malformed(&self, conn: u64, local: SocketAddr, remote: SocketAddr, raw: &[u8]) {
        if self.inner.is_none() {
            return;
        }
        self.message(conn, local, remote, Direction::In, raw, None)
            .await;
    }

    /// Bytes read from the peer that are one SIP message by their framing (for the outbound side, which
    /// reads through its own framer).
    pub async fn received_bytes(
        &self,
        conn: u64,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        if self.inner.is_none() {
            return;
        }
        let parsed = Message::parse(Bytes::copy_from_slice(bytes)).ok();
        if let (Some(metrics), Some(m)) = (self.metrics(), &parsed)
            && let Some((status, code)) = response_facts(m)
        {
            metrics.response(status, code);
        }
        self.message(conn, local, remote, Direction::In, bytes, parsed.as_ref())
            .await;
    }

    /// Messages written to the peer, in order (keep-alive CRLFs are skipped). Responses count in the
    /// metrics by status and ms-diagnostics code; outbound requests by method.
    pub async fn sent(&self, conn: u64, local: SocketAddr, remote: SocketAddr, out: &[Bytes]) {
        if self.inner.is_none() {
            return;
        }
        for b in out.iter().filter(|b| !is_keepalive(b)) {
            self.sent_one(conn, local, remote, b).await;
        }
    }

    /// One message written to the peer.
    pub async fn sent_one(&self, conn: u64, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        if self.inner.is_none() {
            return;
        }
        let parsed = Message::parse(Bytes::copy_from_slice(bytes)).ok();
        if let (Some(metrics), Some(m)) = (self.metrics(), &parsed) {
            if let Some((status, code)) = response_facts(m) {
                metrics.response(status, code);
            } else if let Some(method) = m.method() {
                metrics.request(&String::from_utf8_lossy(method));
            }
        }
        self.message(conn, local, remote, Direction::Out, bytes, parsed.as_ref())
            .await;
    }

    async fn message(
        &self,
        conn: u64,
        local: SocketAddr,
        remote: SocketAddr,
        direction: Direction,
        bytes: &[u8],
        parsed: Option<&Message>,
    ) {
        let Some(s) = self.sinks() else { return };
        if let Some(h) = &s.hep {
            let call_id = parsed.and_then(call_id_text);
            h.message(local, remote, direction, bytes, call_id.as_deref());
        }
        if let Some(hub) = &s.ui {
            let d = match direction {
                Direction::In => MessageDirection::In,
                Direction::Out => MessageDirection::Out,
            };
            hub.publish(UiEvent::Message(SipMessage::from_bytes(
                conn, local, remote, d, bytes,
            )));
        }
        if let Some(p) = &s.pcap {
            p.message(self.key(conn), direction, bytes).await;
        }
        self.backlogs();
    }

    /// A decision of the Edge on connection `conn`, about to be published as `event`, with the Edge record
    /// written for it (as rendered): its latency (from the request's arrival, the event's time) is observed,
    /// and the web view gets it rule by rule ([`crate::ui::steps`]; a refused handshake is one step).
    pub fn decision(
        &self,
        conn: u64,
        verdict: &crate::rules::Verdict,
        event: &DecisionEvent,
        record: Option<&str>,
        policy: &crate::rules::Policy,
    ) {
        let Some(s) = self.sinks() else { return };
        if let Some(m) = &s.metrics
            && event.method.is_some()
        {
            let took = time::OffsetDateTime::now_utc() - event.time;
            m.decision_latency(took.try_into().unwrap_or_default());
        }
        if let Some(hub) = &s.ui {
            let mut view = crate::ui::bridge::decision_view(event, record.map(str::to_owned));
            view.conn = Some(conn);
            if event.method.is_some() {
                let fixed = event.domain.as_deref().and_then(|d| {
                    match policy.route(&crate::rules::DomainName::new(d)) {
                        crate::rules::Route::FixedFqdn(f) => Some(f.to_string()),
                        _ => None,
                    }
                });
                view.steps = crate::ui::steps::request_steps(verdict, event, fixed.as_deref());
            }
            hub.publish(UiEvent::Decision(view.bounded()));
        }
    }

    /// The connection ended; `by` closed it, for `reason`. Written once per connection: the first call wins.
    pub async fn closed(&self, conn: u64, remote: SocketAddr, by: Closer, reason: &str) {
        let Some(inner) = self.inner.as_deref() else {
            return;
        };
        let was_open = inner
            .open
            .lock()
            .map(|mut o| o.remove(&self.key(conn)))
            .unwrap_or(false);
        if !was_open {
            return;
        }
        if let Some(p) = &inner.sinks.pcap {
            let side = match by {
                Closer::Peer => Side::Remote,
                Closer::Edge => Side::Local,
            };
            p.conn_closed(self.key(conn), side).await;
        }
        if let Some(hub) = &inner.sinks.ui {
            hub.publish(UiEvent::ConnectionClosed(ConnectionClosed {
                time: time::OffsetDateTime::now_utc(),
                conn,
                remote,
                by,
                reason: reason.to_owned(),
            }));
        }
        self.backlogs();
    }

    /// Sets the backlog gauges from the sinks' queues (the events file is written synchronously: it has no
    /// queue, so its gauge stays 0).
    fn backlogs(&self) {
        let Some(s) = self.sinks() else { return };
        let Some(m) = &s.metrics else { return };
        if let Some(p) = &s.pcap {
            m.backlog(Sink::Pcap, p.backlog());
        }
        if let Some(h) = &s.hep {
            m.backlog(Sink::Hep, h.backlog());
        }
    }

    /// Writes out what the pcap and HEP sinks hold and stops them (at shutdown); the pcap writer's error,
    /// if it had one.
    pub async fn shutdown(&self) -> Result<(), super::WireError> {
        let Some(s) = self.sinks() else {
            return Ok(());
        };
        if let Some(h) = &s.hep {
            let stats = h.shutdown().await;
            if stats.dropped_full + stats.send_errors + stats.dropped_unencodable > 0 {
                tracing::warn!(?stats, "HEP: some messages did not reach the collector");
            }
        }
        if let Some(p) = &s.pcap {
            let stats = p.shutdown().await?;
            tracing::debug!(?stats, "pcap written");
        }
        Ok(())
    }
}

/// The taps of one outbound connection (`call`, `check`): [`Taps::outbound`] opens it in the sinks.
#[derive(Debug)]
pub struct OutTap {
    taps: Taps,
    conn: u64,
    local: SocketAddr,
    remote: SocketAddr,
}

impl Taps {
    /// An outbound TLS connection is up on `stream`: opened in the sinks, named by the server
    /// certificate's name.
    pub async fn outbound(
        &self,
        stream: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    ) -> OutTap {
        let (tcp, tls) = stream.get_ref();
        let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
        let local = tcp.local_addr().unwrap_or(unknown);
        let remote = tcp.peer_addr().unwrap_or(unknown);
        let name = crate::pki::peer_chain(tls)
            .first()
            .and_then(|c| CertFacts::from_der(c.as_ref()).ok())
            .map(|f| f.display_name());
        let conn = self.connected_out(local, remote, name.as_deref()).await;
        OutTap {
            taps: self.clone(),
            conn,
            local,
            remote,
        }
    }
}

impl OutTap {
    /// One message sent to the peer.
    pub async fn sent(&self, bytes: &[u8]) {
        self.taps
            .sent_one(self.conn, self.local, self.remote, bytes)
            .await;
    }

    /// One message read from the peer.
    pub async fn received(&self, m: &Message) {
        self.taps
            .received_bytes(self.conn, self.local, self.remote, m.as_bytes())
            .await;
    }

    /// The exchange is over: edgesim closes the connection.
    pub async fn closed(&self) {
        self.taps
            .closed(
                self.conn,
                self.remote,
                Closer::Edge,
                "closed by edgesim after the exchange",
            )
            .await;
    }
}

/// A [`Lookup`] that counts every lookup by result in the metrics.
struct CountedLookup {
    inner: Arc<dyn Lookup>,
    metrics: Arc<EdgeMetrics>,
}

impl CountedLookup {
    fn count<T>(&self, r: &Result<Vec<T>, DnsFailure>) {
        self.metrics.dns(match r {
            Ok(_) => DnsResult::Ok,
            Err(f) => DnsResult::from(f),
        });
    }
}

impl Lookup for CountedLookup {
    fn srv<'a>(&'a self, name: &'a str) -> LookupFuture<'a, Vec<SrvRecord>> {
        Box::pin(async move {
            let r = self.inner.srv(name).await;
            self.count(&r);
            r
        })
    }

    fn addrs<'a>(&'a self, host: &'a str) -> LookupFuture<'a, Vec<IpAddr>> {
        Box::pin(async move {
            let r = self.inner.addrs(host).await;
            self.count(&r);
            r
        })
    }

    fn server(&self) -> String {
        self.inner.server()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_gives_its_status_and_diagnostics_code() {
        let m = Message::parse(Bytes::from_static(
            b"SIP/2.0 504 Server time-out\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nCall-ID: c1\r\n\
              CSeq: 1 INVITE\r\nms-diagnostics: 1009;reason=\"No match\";source=\"sip.skype.lab\"\r\n\
              Content-Length: 0\r\n\r\n",
        ))
        .unwrap();
        assert_eq!(response_facts(&m), Some((504, Some(1009))));
        assert_eq!(call_id_text(&m).as_deref(), Some("c1"));
        let bare = Message::parse(Bytes::from_static(
            b"SIP/2.0 200 OK\r\nCall-ID: c2\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap();
        assert_eq!(response_facts(&bare), Some((200, None)));
        let req = Message::parse(Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: c3\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap();
        assert_eq!(response_facts(&req), None);
    }

    #[test]
    fn keepalives_are_not_messages() {
        assert!(is_keepalive(b"\r\n"));
        assert!(is_keepalive(b"\r\n\r\n"));
        assert!(!is_keepalive(b"OPTIONS"));
    }

    #[test]
    fn handshake_failures_are_classed() {
        let io = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        assert_eq!(
            handshake_class(&io(rustls::Error::NoCertificatesPresented)),
            HandshakeResult::NoCertificate
        );
        assert_eq!(
            handshake_class(&io(rustls::Error::HandshakeNotComplete)),
            HandshakeResult::TlsError
        );
        assert_eq!(
            handshake_class(&std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
            HandshakeResult::Lost
        );
    }

    #[tokio::test]
    async fn off_taps_do_nothing_and_metrics_count_through_the_hooks() {
        let off = Taps::default();
        assert!(!off.is_on());
        drop(off.accepted());
        let metrics = Arc::new(EdgeMetrics::new());
        let taps = Taps::new(TapSinks {
            metrics: Some(metrics.clone()),
            ..TapSinks::default()
        });
        let guard = taps.accepted();
        let a: SocketAddr = "127.0.0.1:5061".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        taps.sent(
            7,
            a,
            b,
            &[
                Bytes::from_static(b"\r\n"),
                Bytes::from_static(
                    b"SIP/2.0 403 Forbidden\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nms-diagnostics: 1002;reason=\"x\"\r\nContent-Length: 0\r\n\r\n",
                ),
            ],
        )
        .await;
        let text = metrics.encode();
        assert!(text.contains("edgesim_tls_connections_open 1\n"), "{text}");
        assert!(
            text.contains(
                "edgesim_sip_responses_total{status=\"403\",ms_diagnostics=\"1002\"} 1\n"
            ),
            "{text}"
        );
        drop(guard);
        assert!(
            metrics
                .encode()
                .contains("edgesim_tls_connections_open 0\n"),
            "{}",
            metrics.encode()
        );
    }
}
