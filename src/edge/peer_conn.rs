//! The Edge's own outbound connections: requests the Edge originates toward a federated peer (the user's BYE
//! after `hangup_after_ms`; NOTIFY, BENOTIFY and IM replies as they come) all go through [`send_to_peer`].
//!
//! A real Edge sends them over its own mutual-TLS connection to the peer's federation SRV target, with the Edge
//! certificate as client certificate, keeping up to `OutgoingTlsCountForFederatedPartners` (default 4) such
//! connections per partner. That is the path that tests whether the Expressway-E accepts the Edge's certificate:
//! when it does not (or the peer's DNS or certificate fails the Edge's rules), the calls *from* the peer work and
//! everything the Edge originates fails — the "works one way only" lab failure. The route is resolved and judged
//! exactly as `call` does (the rulebook's `plan_outbound`, `decide_outbound_srv`, `addresses`,
//! `outbound_connect_failure`, `decide_outbound_cert`), so a failure carries the same 1008/1009/1010/1046/1047
//! findings. `[edge] reuse_inbound_connection = true` sends them back on the inbound connection instead.
//!
//! Each partner's requests leave in order through one queue and task of its own ([`send_to_peer`]), so a NOTIFY
//! never overtakes the one before it and a partner that cannot be reached holds up no other.
//!
//! What the peer sends on an outbound connection is read, bounded by the framer's limits and the idle timeout:
//! the answers to NOTIFY and BENOTIFY go to the presence hub ([`super::subscriptions::Hub::handle_response`],
//! whose bookkeeping ends a subscription whose NOTIFY is refused or never answered); other answers (the users'
//! MESSAGE replies and BYEs) need nothing more and are logged at debug. A request from the peer on it (the
//! Expressway reusing the connection) is answered without reaching the users, a documented choice: OPTIONS
//! 200, ACK nothing, anything else `403` with a Warning saying the Edge takes requests on its listening port.
//!
//! A failure (the route, the connection, the peer's certificate, or a TLS alert refusing the Edge's) is a
//! decision like any other: its event in the events file, its Edge record in the log file when the finding
//! has one, a warning line, and [`super::Edge::outbound_failures`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::Edge;
use super::subscriptions::Hub;
use crate::outbound::OutboundContext;
use crate::outbound::conn::{self, ConnectError, TlsVersions};
use crate::rules::{self, ConnectFailure, DomainName, Finding, OutboundPlan, Verdict};
use crate::sip::{self, Frame, Framer, Message, ResponseBuilder};

/// Most failures [`Pool::failures`] keeps.
const KEPT_FAILURES: usize = 100;
/// Most requests waiting in one partner's queue before a sender waits for room (in a task of its own).
const PARTNER_QUEUE: usize = 1024;
/// Most partners with a queue and task of their own; past it a request is sent from a task of its own.
const MAX_PARTNER_QUEUES: usize = 1024;
/// The Warning of a request the peer sends on a connection the Edge opened.
const NOT_HERE: &str = "The Edge takes the peer's requests on its listening port; this connection carries the Edge's own requests";

/// A request the Edge originates toward a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Originated {
    /// The peer's SIP domain (the federation route is chosen by it).
    pub(super) domain: String,
    /// The method, for logs.
    pub(super) method: String,
    /// The serialized request.
    pub(super) bytes: Bytes,
}

type Writer = Arc<tokio::sync::Mutex<WriteHalf<TlsStream<TcpStream>>>>;

/// One outbound TLS connection to a partner.
struct Link {
    writer: Writer,
    closed: Arc<AtomicBool>,
    /// The last request written and not yet answered: the one a TLS alert after the handshake fails.
    pending: Arc<std::sync::Mutex<Option<(String, String)>>>,
}

/// The failures of the Edge's own connections, kept for [`Edge::outbound_failures`] and logged.
#[derive(Debug, Default)]
struct Failures {
    kept: std::sync::Mutex<VecDeque<OutboundFailure>>,
}

impl Failures {
    /// Keeps and logs the failure of `v`; `None` when `v` is no refusal.
    fn record(
        &self,
        domain: &str,
        method: &str,
        v: &Verdict,
        edge_fqdn: &str,
    ) -> Option<OutboundFailure> {
        let f = v.finding()?;
        let failure = OutboundFailure {
            domain: domain.to_owned(),
            method: method.to_owned(),
            ms_diagnostics: f.ms_diagnostics_value(edge_fqdn),
            explanation: format!("{} {ONE_WAY}", f.explain()),
        };
        tracing::warn!(
            domain = %failure.domain,
            method = %failure.method,
            ms_diagnostics = failure.ms_diagnostics.as_deref().unwrap_or("-"),
            "the Edge's own {} did not reach the peer: {}",
            failure.method,
            failure.explanation
        );
        if let Ok(mut all) = self.kept.lock() {
            if all.len() >= KEPT_FAILURES {
                all.pop_front();
            }
            all.push_back(failure.clone());
        }
        Some(failure)
    }
}

/// The Edge's outbound connections, per partner domain.
pub(super) struct Pool {
    ctx: OutboundContext,
    /// Most connections per partner (`OutgoingTlsCountForFederatedPartners`).
    max_per_partner: usize,
    idle: Duration,
    links: tokio::sync::Mutex<HashMap<String, Vec<Arc<Link>>>>,
    /// Each partner's queue, drained in order by a task of its own.
    queues: Mutex<HashMap<String, tokio::sync::mpsc::Sender<Originated>>>,
    failures: Arc<Failures>,
    /// Takes the answers to the NOTIFYs.
    hub: Arc<Mutex<Hub>>,
    /// Requests handed to [`send_to_peer`] and not yet sent or refused, for [`Pool::drain`].
    in_flight: std::sync::atomic::AtomicUsize,
    drained: tokio::sync::Notify,
    /// Ends every connection's reader when the Edge goes (the pool is dropped with it).
    cancel: tokio_util::sync::CancellationToken,
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// An Edge-originated request that could not reach or trust the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundFailure {
    /// The partner domain.
    pub domain: String,
    /// The request's method.
    pub method: String,
    /// The finding's ms-diagnostics, as `call` would show it to the internal client.
    pub ms_diagnostics: Option<String>,
    /// What happened and the fix, with the "works one way only" note.
    pub explanation: String,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("max_per_partner", &self.max_per_partner)
            .finish_non_exhaustive()
    }
}

/// The note every failure of the Edge's own connection carries.
pub const ONE_WAY: &str = "This is the \"works one way only\" lab failure: requests from the peer reach the Edge, but what the Edge originates (here over its own TLS connection to the peer's federation SRV target, with the Edge certificate as client certificate) does not reach the peer.";

impl Pool {
    /// A pool that connects as `ctx` says, keeping up to `max_per_partner` connections per domain, each closed
    /// after `idle` without a byte from the peer.
    pub(super) fn new(
        ctx: OutboundContext,
        max_per_partner: usize,
        idle: Duration,
        hub: Arc<Mutex<Hub>>,
    ) -> Self {
        Pool {
            ctx,
            max_per_partner: max_per_partner.max(1),
            idle,
            links: tokio::sync::Mutex::new(HashMap::new()),
            queues: Mutex::new(HashMap::new()),
            failures: Arc::new(Failures::default()),
            hub,
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            drained: tokio::sync::Notify::new(),
            cancel: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// The failures so far, oldest first (the last 100).
    pub(super) fn failures(&self) -> Vec<OutboundFailure> {
        self.failures
            .kept
            .lock()
            .map(|f| f.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Waits until every request handed to [`send_to_peer`] was sent or refused, at most `within`; false when
    /// some were still on their way.
    pub(super) async fn drain(&self, within: Duration) -> bool {
        let all_done = async {
            loop {
                let done = self.drained.notified();
                if self.in_flight.load(Ordering::Acquire) == 0 {
                    return;
                }
                done.await;
            }
        };
        tokio::time::timeout(within, all_done).await.is_ok()
    }

    fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn finished(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.drained.notify_waiters();
        }
    }

    /// How many open connections the pool holds to `domain`.
    pub(super) async fn open_to(&self, domain: &str) -> usize {
        let links = self.links.lock().await;
        links.get(&domain.to_ascii_lowercase()).map_or(0, |l| {
            l.iter()
                .filter(|l| !l.closed.load(Ordering::Relaxed))
                .count()
        })
    }

    /// Sends `req` over a connection to its partner: a free one, else a new one while under the limit, else
    /// the first one when it is free. A refusal is the finding the Edge's rules gave.
    pub(super) async fn send(&self, edge: &Weak<Edge>, req: &Originated) -> Result<(), Verdict> {
        let domain = req.domain.to_ascii_lowercase();
        let link = {
            let mut all = self.links.lock().await;
            let links = all.entry(domain.clone()).or_default();
            links.retain(|l| !l.closed.load(Ordering::Relaxed));
            let free = links.iter().find(|l| l.writer.try_lock().is_ok()).cloned();
            match free {
                Some(l) => l,
                None if links.len() < self.max_per_partner => {
                    // Connecting under the table's lock keeps the count exact; a partner's requests wait for
                    // its connection anyway.
                    let l = Arc::new(self.connect(&domain, edge).await?);
                    links.push(l.clone());
                    l
                }
                None => links[0].clone(),
            }
        };
        match write_to(&link.writer, &req.bytes, self.ctx.timeouts.connect).await {
            Ok(()) => {
                if let Ok(mut p) = link.pending.lock() {
                    *p = Some((req.domain.clone(), req.method.clone()));
                }
                Ok(())
            }
            Err(kind) => {
                link.closed.store(true, Ordering::Relaxed);
                Err(self.ctx.policy.outbound_connect_failure(&domain, kind))
            }
        }
    }

    /// Resolves and judges the partner's route as `call` does, connects with the Edge certificate, checks the
    /// peer's certificate, and starts the reader of the connection's answers.
    async fn connect(&self, domain: &str, edge: &Weak<Edge>) -> Result<Link, Verdict> {
        let ctx = &self.ctx;
        let fqdn = &ctx.edge_fqdn;
        let (target, port) = match ctx.policy.plan_outbound(domain) {
            OutboundPlan::Reject { verdict, .. } => return Err(verdict),
            OutboundPlan::UseFixedFqdn(f) => (f.to_string(), 5061),
            OutboundPlan::LookupSrv(name) => {
                let answer = ctx.lookup.srv(&name).await;
                let r = ctx.policy.decide_outbound_srv(domain, &answer)?;
                (r.target.clone(), r.port)
            }
        };
        let answer = ctx.lookup.addrs(&target).await;
        let addrs = match ctx
            .policy
            .addresses(&DomainName::new(domain), &target, answer)
        {
            Finding::Addresses { addrs, .. } => addrs,
            refusal => return Err(Verdict::refuse(refusal, fqdn)),
        };
        let config = conn::client_config(Some(&ctx.identity), TlsVersions::Any)
            .map_err(|e| Verdict::refuse(rules::outbound::edge_cert_unusable(&e), fqdn))?;
        let t = ctx.timeouts;
        let connected = conn::connect_any(
            &addrs,
            port,
            &target,
            config,
            t.connect,
            t.handshake,
            &mut Vec::new(),
        )
        .await
        .map_err(|e| {
            let kind = match &e {
                ConnectError::Tcp { kind, .. } | ConnectError::Tls { kind, .. } => *kind,
                ConnectError::BadName(_) => ConnectFailure::HostUnreachable,
            };
            ctx.policy.outbound_connect_failure(&target, kind)
        })?;
        let (facts, status) = connected.judge_chain(&ctx.anchors);
        ctx.policy.decide_outbound_cert(&target, &facts, &status)?;
        tracing::info!(%domain, %target, addr = %connected.addr, "the Edge's own connection to the peer is up");
        let (reader, writer) = tokio::io::split(connected.stream);
        let writer = Arc::new(tokio::sync::Mutex::new(writer));
        let closed = Arc::new(AtomicBool::new(false));
        let pending = Arc::new(std::sync::Mutex::new(None));
        tokio::spawn(read_answers(
            reader,
            Reader {
                closed: closed.clone(),
                pending: pending.clone(),
                writer: writer.clone(),
                hub: self.hub.clone(),
                edge: edge.clone(),
                policy: ctx.policy.clone(),
                idle: self.idle,
                target,
                cancel: self.cancel.clone(),
            },
        ));
        Ok(Link {
            writer,
            closed,
            pending,
        })
    }

    /// Keeps and logs the failure of `req` (for [`Edge::outbound_failures`]).
    pub(super) fn record(
        &self,
        domain: &str,
        method: &str,
        v: &Verdict,
    ) -> Option<OutboundFailure> {
        self.failures.record(domain, method, v, &self.ctx.edge_fqdn)
    }
}

/// What the reader of one outbound connection shares with the pool.
struct Reader {
    closed: Arc<AtomicBool>,
    pending: Arc<std::sync::Mutex<Option<(String, String)>>>,
    /// For the answers to the peer's own requests on this connection.
    writer: Writer,
    hub: Arc<Mutex<Hub>>,
    /// Where a failure becomes a decision (gone when the Edge is).
    edge: Weak<Edge>,
    policy: rules::Policy,
    idle: Duration,
    target: String,
    cancel: tokio_util::sync::CancellationToken,
}

/// Reads what the peer sends on an outbound connection (the answers to the Edge's requests) until it closes,
/// fails, sends what does not frame, or stays silent for `idle`.
async fn read_answers(mut reader: ReadHalf<TlsStream<TcpStream>>, r: Reader) {
    let mut framer = Framer::new(sip::Limits::default());
    let mut buf = BytesMut::new();
    loop {
        loop {
            match framer.decode(&mut buf) {
                Ok(Some(Frame::Message(m))) => {
                    if let Ok(mut p) = r.pending.lock() {
                        *p = None;
                    }
                    if !r.take(m).await {
                        r.closed.store(true, Ordering::Relaxed);
                        return;
                    }
                }
                Ok(Some(Frame::Ping)) => {
                    if !r.write(bytes::Bytes::from_static(b"\r\n")).await {
                        r.closed.store(true, Ordering::Relaxed);
                        return;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(target = %r.target, error = %e, "unframeable input on the Edge's own connection: closing");
                    r.closed.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
        let read = tokio::select! {
            () = r.cancel.cancelled() => return,
            read = tokio::time::timeout(r.idle, reader.read_buf(&mut buf)) => read,
        };
        match read {
            Ok(Ok(n)) if n > 0 => {}
            Ok(Err(e)) => {
                r.closed.store(true, Ordering::Relaxed);
                // With TLS 1.3 the client's handshake is over before the server judges the client certificate:
                // a peer refusing the Edge's certificate says so with an alert on the first read.
                let pending = r.pending.lock().ok().and_then(|mut p| p.take());
                if let Some((domain, method)) = pending {
                    let v = r
                        .policy
                        .outbound_connect_failure(&r.target, conn::tls_failure(&e));
                    if let Some(edge) = r.edge.upgrade() {
                        edge.outbound_failed(&domain, &method, None, &v);
                    }
                }
                return;
            }
            _ => {
                r.closed.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}

impl Reader {
    /// One message from the peer: an answer goes to the hub (NOTIFY, BENOTIFY) or is logged; a request is
    /// answered here. False when the answer could not be written.
    async fn take(&self, m: Message) -> bool {
        if !m.is_request() {
            let taken = self
                .hub
                .lock()
                .is_ok_and(|mut h| h.handle_response(std::time::Instant::now(), &m));
            if !taken {
                tracing::debug!(target = %self.target, status = m.status_code(), "answer on the Edge's own connection");
            }
            return true;
        }
        let answer = match m.method().unwrap_or_default() {
            b"ACK" => return true,
            b"OPTIONS" => ResponseBuilder::from_request(&m, 200, "OK").build(),
            _ => {
                let fqdn = self.edge.upgrade().map(|e| e.config.edge.fqdn.clone());
                let warning = format!(
                    "399 {} \"{NOT_HERE}\"",
                    fqdn.as_deref().unwrap_or("edgesim")
                );
                ResponseBuilder::from_request(&m, 403, "Forbidden")
                    .header("Warning", &warning)
                    .build()
            }
        };
        tracing::info!(target = %self.target, "a request from the peer on the Edge's own connection: answered here");
        self.write(answer).await
    }

    async fn write(&self, bytes: bytes::Bytes) -> bool {
        write_to(&self.writer, &bytes, Duration::from_secs(5))
            .await
            .is_ok()
    }
}

/// Writes and flushes `bytes` on an outbound connection within `within`; the failure as `call` names it.
async fn write_to(writer: &Writer, bytes: &[u8], within: Duration) -> Result<(), ConnectFailure> {
    let mut w = writer.lock().await;
    let write = async {
        w.write_all(bytes).await?;
        w.flush().await
    };
    match tokio::time::timeout(within, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(conn::tls_failure(&e)),
        Err(_) => Err(ConnectFailure::TimedOut),
    }
}

/// The one switch point of every request the Edge originates toward the peer (a user's BYE after
/// `hangup_after_ms`, NOTIFY and BENOTIFY, the users' IM replies and BYEs): back on the inbound connection
/// (`out`, when `[edge] reuse_inbound_connection`), or into its partner's queue, whose task sends it over the
/// Edge's own connection to the partner, so that the inbound connection never waits for it. A failure is a
/// decision ([`Edge::outbound_failed`]) with the finding `call` would report.
pub(super) fn send_to_peer(edge: &Arc<Edge>, req: Originated, out: &mut Vec<Bytes>) {
    if edge.config.edge.reuse_inbound_connection {
        out.push(req.bytes);
        return;
    }
    let domain = req.domain.to_ascii_lowercase();
    let Ok(mut queues) = edge.pool.queues.lock() else {
        return;
    };
    edge.pool.started();
    if !queues.contains_key(&domain) && queues.len() >= MAX_PARTNER_QUEUES {
        drop(queues);
        let edge = Arc::downgrade(edge);
        tokio::spawn(async move { deliver(&edge, req).await });
        return;
    }
    let tx = queues
        .entry(domain)
        .or_insert_with(|| partner_queue(Arc::downgrade(edge), edge.pool.cancel.clone()));
    match tx.try_send(req) {
        Ok(()) => {}
        Err(tokio::sync::mpsc::error::TrySendError::Full(req)) => {
            // A partner that does not keep up: the sender waits for room, the inbound connection does not.
            let tx = tx.clone();
            let edge = Arc::downgrade(edge);
            tokio::spawn(async move {
                if tx.send(req).await.is_err()
                    && let Some(edge) = edge.upgrade()
                {
                    edge.pool.finished();
                }
            });
        }
        Err(tokio::sync::mpsc::error::TrySendError::Closed(req)) => {
            // Its task ended (the Edge is stopping): a new one takes it.
            let fresh = partner_queue(Arc::downgrade(edge), edge.pool.cancel.clone());
            if fresh.try_send(req).is_err() {
                edge.pool.finished();
            }
            *tx = fresh;
        }
    }
}

/// A partner's queue and the task that sends what it holds, in order, until the Edge goes.
fn partner_queue(
    edge: Weak<Edge>,
    cancel: tokio_util::sync::CancellationToken,
) -> tokio::sync::mpsc::Sender<Originated> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(PARTNER_QUEUE);
    tokio::spawn(async move {
        loop {
            let req = tokio::select! {
                () = cancel.cancelled() => return,
                req = rx.recv() => match req {
                    Some(r) => r,
                    None => return,
                },
            };
            deliver(&edge, req).await;
        }
    });
    tx
}

/// Sends one request over the Edge's own connection; a refusal becomes the Edge's decision.
async fn deliver(edge: &Weak<Edge>, req: Originated) {
    let Some(strong) = edge.upgrade() else { return };
    if let Err(v) = strong.pool.send(edge, &req).await {
        strong.outbound_failed(&req.domain, &req.method, Some(&req.bytes), &v);
    }
    strong.pool.finished();
}
