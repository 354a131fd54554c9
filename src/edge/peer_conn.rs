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
//! Answers on an outbound connection are read (bounded by the framer's limits and the idle timeout) and
//! dropped after a debug line: the Edge's own requests need no answer to proceed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::Edge;
use crate::outbound::OutboundContext;
use crate::outbound::conn::{self, ConnectError, TlsVersions};
use crate::rules::{self, ConnectFailure, DomainName, Finding, OutboundPlan, Verdict};
use crate::sip::{self, Frame, Framer};

/// Most failures [`Pool::failures`] keeps.
const KEPT_FAILURES: usize = 100;

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

/// One outbound TLS connection to a partner.
struct Link {
    writer: tokio::sync::Mutex<WriteHalf<TlsStream<TcpStream>>>,
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
    fn record(&self, domain: &str, method: &str, v: &Verdict, edge_fqdn: &str) {
        let Some(f) = v.finding() else { return };
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
            all.push_back(failure);
        }
    }
}

/// The Edge's outbound connections, per partner domain.
pub(super) struct Pool {
    ctx: OutboundContext,
    /// Most connections per partner (`OutgoingTlsCountForFederatedPartners`).
    max_per_partner: usize,
    idle: Duration,
    links: tokio::sync::Mutex<HashMap<String, Vec<Arc<Link>>>>,
    failures: Arc<Failures>,
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
    pub(super) fn new(ctx: OutboundContext, max_per_partner: usize, idle: Duration) -> Self {
        Pool {
            ctx,
            max_per_partner: max_per_partner.max(1),
            idle,
            links: tokio::sync::Mutex::new(HashMap::new()),
            failures: Arc::new(Failures::default()),
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
    pub(super) async fn send(&self, req: &Originated) -> Result<(), Verdict> {
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
                    let l = Arc::new(self.connect(&domain).await?);
                    links.push(l.clone());
                    l
                }
                None => links[0].clone(),
            }
        };
        let mut w = link.writer.lock().await;
        let write = async {
            w.write_all(&req.bytes).await?;
            w.flush().await
        };
        match tokio::time::timeout(self.ctx.timeouts.connect, write).await {
            Ok(Ok(())) => {
                if let Ok(mut p) = link.pending.lock() {
                    *p = Some((req.domain.clone(), req.method.clone()));
                }
                Ok(())
            }
            Ok(Err(e)) => {
                link.closed.store(true, Ordering::Relaxed);
                Err(self
                    .ctx
                    .policy
                    .outbound_connect_failure(&domain, conn::tls_failure(&e)))
            }
            Err(_) => {
                link.closed.store(true, Ordering::Relaxed);
                Err(self
                    .ctx
                    .policy
                    .outbound_connect_failure(&domain, ConnectFailure::TimedOut))
            }
        }
    }

    /// Resolves and judges the partner's route as `call` does, connects with the Edge certificate, checks the
    /// peer's certificate, and starts the reader of the connection's answers.
    async fn connect(&self, domain: &str) -> Result<Link, Verdict> {
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
        let closed = Arc::new(AtomicBool::new(false));
        let pending = Arc::new(std::sync::Mutex::new(None));
        tokio::spawn(read_answers(
            reader,
            Reader {
                closed: closed.clone(),
                pending: pending.clone(),
                failures: self.failures.clone(),
                policy: ctx.policy.clone(),
                edge_fqdn: ctx.edge_fqdn.clone(),
                idle: self.idle,
                target,
                cancel: self.cancel.clone(),
            },
        ));
        Ok(Link {
            writer: tokio::sync::Mutex::new(writer),
            closed,
            pending,
        })
    }

    fn record(&self, req: &Originated, v: &Verdict) {
        self.failures
            .record(&req.domain, &req.method, v, &self.ctx.edge_fqdn);
    }
}

/// What the reader of one outbound connection shares with the pool.
struct Reader {
    closed: Arc<AtomicBool>,
    pending: Arc<std::sync::Mutex<Option<(String, String)>>>,
    failures: Arc<Failures>,
    policy: rules::Policy,
    edge_fqdn: String,
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
                    tracing::debug!(target = %r.target, status = m.status_code(), "answer on the Edge's own connection");
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
                    r.failures.record(&domain, &method, &v, &r.edge_fqdn);
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

/// The one switch point of every request the Edge originates toward the peer: back on the inbound connection
/// (`out`, when `[edge] reuse_inbound_connection`), or over the Edge's own connection to the partner, in a task
/// of its own so that the inbound connection never waits for it. A failure is logged and kept
/// ([`Edge::outbound_failures`]) with the finding `call` would report.
pub(super) fn send_to_peer(edge: &Arc<Edge>, req: Originated, out: &mut Vec<Bytes>) {
    if edge.config.edge.reuse_inbound_connection {
        out.push(req.bytes);
        return;
    }
    let edge = edge.clone();
    tokio::spawn(async move {
        if let Err(v) = edge.pool.send(&req).await {
            edge.pool.record(&req, &v);
        }
    });
}
