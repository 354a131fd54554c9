//! An Edge pool: several listening addresses (members) serving one [`Edge`], each with a fault mode that can be
//! switched while it runs, so that a peer's SRV and address failover can be tested against real sockets.
//!
//! A member's mode applies to each new connection ([`FaultMode`]):
//! - `accept`: served normally (the Edge's connection path);
//! - `refuse-tls`: TCP accepted; the ClientHello is read (bounded) and answered with a fatal
//!   `handshake_failure` alert, then the connection is closed;
//! - `reset`: TCP accepted, then reset at once (RST);
//! - `silent`: TCP accepted and never answered: what arrives is read and dropped (no buffer grows), and the
//!   connection is closed after `limits.handshake_timeout_ms` (it holds its slot of `limits.max_connections`
//!   until then);
//! - `503`: TLS completed, every request answered `503 Service Unavailable` with `Retry-After: 30` and
//!   `ms-diagnostics: 1090;reason="Edge pool member is out of service";member="ip:port";source="<fqdn>"`
//!   (the rulebook's [`crate::rules::users::member_out_of_service`]; code 1090 is edgesim's, no field trace
//!   exists); each answer is a decision event (verdict `limit`, status 503).
//!
//! Each member has its own `limits.max_connections`, as each server of a real pool does; the policy, users,
//! records and events are the one Edge's.
//!
//! A switch ([`Pool::set_fault`], or [`Pool::apply_faults`] for a faults file) closes the member's open connections, as a member going down or coming back
//! does, so the peer's next request meets the new mode. Each switch is logged (`edgesim::edge::pool`) and is a
//! decision event: `remote` is the member's address, `method`, `call_id` and `status` are null, `verdict` is
//! `reject` for a fault and `accept` for `accept`, `log_data` holds `member`, `fault`, `previous` and `via`, and
//! `explanation` says what peers now meet.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

pub use crate::config::pool::FaultMode;

use super::decide::{self, Peer};
use super::respond::{Responder, Src, text};
use super::{Edge, EdgeError};
use crate::diagnostics::{DecisionEvent, VerdictKind};
use crate::pki::{self, CertFacts};
use crate::sip::{self, Frame, Framer};

/// Why a pool operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// No member answers to the name given.
    #[error(
        "`{given}` is not a member of the pool (members: {members}); name a member by its ip:port, or by its ip when only one member has it"
    )]
    UnknownMember {
        /// What was asked for.
        given: String,
        /// The members, `ip:port` each.
        members: String,
    },
    /// The name is an IP address shared by several members.
    #[error("`{given}` is the address of several members ({members}): name one by its ip:port")]
    Ambiguous {
        /// What was asked for.
        given: String,
        /// The members with that address.
        members: String,
    },
}

/// One member: its bound address, the SRV target it is published under, its current mode.
#[derive(Debug)]
struct Member {
    addr: SocketAddr,
    target: String,
    initial: FaultMode,
    mode: AtomicU8,
    /// Cancelled (and replaced) at each switch: the member's open connections hang below it.
    connections: Mutex<CancellationToken>,
}

/// A member as [`Pool::members`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The SRV target (and A record name) it is published under.
    pub target: String,
    /// Its mode now.
    pub fault: FaultMode,
    /// The mode it started in (the configuration's).
    pub initial: FaultMode,
}

/// One switch of a member's mode, as [`Pool::set_fault`] made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultChange {
    /// The member.
    pub member: SocketAddr,
    /// Its mode before.
    pub previous: FaultMode,
    /// Its mode now.
    pub fault: FaultMode,
}

/// A member to start: its bound listener, its target, its initial mode.
#[derive(Debug)]
pub struct PoolMember {
    /// The member's bound socket.
    pub listener: TcpListener,
    /// The SRV target it is published under (usually the Edge FQDN).
    pub target: String,
    /// The mode it starts in.
    pub fault: FaultMode,
}

fn encode(m: FaultMode) -> u8 {
    match m {
        FaultMode::Accept => 0,
        FaultMode::RefuseTls => 1,
        FaultMode::Reset => 2,
        FaultMode::Silent => 3,
        FaultMode::Unavailable => 4,
    }
}

fn decode_mode(b: u8) -> FaultMode {
    match b {
        1 => FaultMode::RefuseTls,
        2 => FaultMode::Reset,
        3 => FaultMode::Silent,
        4 => FaultMode::Unavailable,
        _ => FaultMode::Accept,
    }
}

/// The handle of a running pool: its members and their fault modes. Cheap to clone.
#[derive(Clone)]
pub struct Pool {
    edge: Arc<Edge>,
    members: Arc<Vec<Member>>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("members", &self.members())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// The members, in order.
    pub fn members(&self) -> Vec<MemberInfo> {
        self.members
            .iter()
            .map(|m| MemberInfo {
                addr: m.addr,
                target: m.target.clone(),
                fault: decode_mode(m.mode.load(Ordering::Acquire)),
                initial: m.initial,
            })
            .collect()
    }

    /// The member `given` names: its `ip:port`, or its `ip` when only one member has it.
    fn find(&self, given: &str) -> Result<&Member, PoolError> {
        let all = |ms: &mut dyn Iterator<Item = &Member>| {
            ms.map(|m| m.addr.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let given = given.trim();
        if let Ok(addr) = given.parse::<SocketAddr>()
            && let Some(m) = self.members.iter().find(|m| m.addr == addr)
        {
            return Ok(m);
        }
        if let Ok(ip) = given.parse::<std::net::IpAddr>() {
            let same: Vec<&Member> = self.members.iter().filter(|m| m.addr.ip() == ip).collect();
            match same.as_slice() {
                [one] => return Ok(one),
                [] => {}
                _ => {
                    return Err(PoolError::Ambiguous {
                        given: given.to_owned(),
                        members: all(&mut same.iter().copied()),
                    });
                }
            }
        }
        Err(PoolError::UnknownMember {
            given: given.to_owned(),
            members: all(&mut self.members.iter()),
        })
    }

    /// The mode of the member `member` names (`ip:port`, or `ip` when unique).
    pub fn fault(&self, member: &str) -> Result<FaultMode, PoolError> {
        self.find(member)
            .map(|m| decode_mode(m.mode.load(Ordering::Acquire)))
    }

    /// Switches the member `member` names (`ip:port`, or `ip` when unique) to `mode`, from now on: its open
    /// connections are closed, and the switch is logged and published as an event (`via` `api`). `Ok(None)`
    /// when the member already has that mode (no event).
    pub fn set_fault(
        &self,
        member: &str,
        mode: FaultMode,
    ) -> Result<Option<FaultChange>, PoolError> {
        self.set_fault_via(member, mode, "api")
    }

    /// [`Pool::set_fault`], with `via` saying who asked (`faults file …, SIGUSR1`), for the log and the event.
    pub fn set_fault_via(
        &self,
        member: &str,
        mode: FaultMode,
        via: &str,
    ) -> Result<Option<FaultChange>, PoolError> {
        let m = self.find(member)?;
        let previous = decode_mode(m.mode.swap(encode(mode), Ordering::AcqRel));
        if previous == mode {
            return Ok(None);
        }
        if let Ok(mut token) = m.connections.lock() {
            token.cancel();
            *token = self.shutdown.child_token();
        }
        let change = FaultChange {
            member: m.addr,
            previous,
            fault: mode,
        };
        self.publish_change(&change, &m.target, via);
        Ok(Some(change))
    }

    /// Applies a faults file's lines: each named member to its mode, every other member back to its initial
    /// mode. All names are checked first, so a bad file changes nothing.
    pub fn apply_faults(
        &self,
        lines: &[(String, FaultMode)],
        via: &str,
    ) -> Result<Vec<FaultChange>, PoolError> {
        let mut wanted: Vec<FaultMode> = self.members.iter().map(|m| m.initial).collect();
        for (name, mode) in lines {
            let m = self.find(name)?;
            if let Some(i) = self.members.iter().position(|o| o.addr == m.addr) {
                wanted[i] = *mode;
            }
        }
        let mut changes = Vec::new();
        for (m, mode) in self.members.iter().zip(wanted) {
            if let Ok(Some(c)) = self.set_fault_via(&m.addr.to_string(), mode, via) {
                changes.push(c);
            }
        }
        Ok(changes)
    }

    /// Logs a switch and publishes it as a decision event.
    fn publish_change(&self, c: &FaultChange, target: &str, via: &str) {
        let explanation = format!(
            "Edge pool member {} ({target}) switched from {} to {} (via {via}): new connections are {}; its open connections were closed.",
            c.member,
            c.previous,
            c.fault,
            c.fault.describe()
        );
        tracing::warn!(target: "edgesim::edge::pool", member = %c.member, fault = %c.fault, previous = %c.previous, via, "{explanation}");
        let event = DecisionEvent {
            schema: crate::diagnostics::EVENT_SCHEMA,
            time: time::OffsetDateTime::now_utc(),
            remote: c.member.to_string(),
            peer_cert: None,
            method: None,
            call_id: None,
            domain: None,
            verdict: if c.fault == FaultMode::Accept {
                VerdictKind::Accept
            } else {
                VerdictKind::Reject
            },
            status: None,
            ms_diagnostics_code: None,
            ms_diagnostics: None,
            result_code: None,
            log_data: vec![
                ("member".into(), c.member.to_string()),
                ("fault".into(), c.fault.to_string()),
                ("previous".into(), c.previous.to_string()),
                ("via".into(), via.to_owned()),
            ],
            explanation: Some(explanation),
            message_trust: None,
            partner_type: None,
            event: "decision",
        };
        self.edge.publish(event);
    }

    /// The mode and the connection token of member `index`, for a new connection.
    pub(super) fn admit(&self, index: usize) -> (FaultMode, CancellationToken) {
        match self.members.get(index) {
            Some(m) => {
                let token = m
                    .connections
                    .lock()
                    .map(|t| t.child_token())
                    .unwrap_or_else(|_| self.shutdown.child_token());
                (decode_mode(m.mode.load(Ordering::Acquire)), token)
            }
            None => (FaultMode::Accept, self.shutdown.child_token()),
        }
    }
}

/// Starts the pool's members on `edge` until `shutdown`: one accept loop per member, sharing the Edge (its
/// policy, users, limits, records and events). Returns the handle and the task that ends when all loops have.
pub fn start(
    edge: Arc<Edge>,
    members: Vec<PoolMember>,
    shutdown: CancellationToken,
) -> Result<(Pool, tokio::task::JoinHandle<Result<(), EdgeError>>), EdgeError> {
    let mut listeners = Vec::new();
    let mut state = Vec::new();
    for m in members {
        let addr = m.listener.local_addr().map_err(EdgeError::Io)?;
        state.push(Member {
            addr,
            target: m.target,
            initial: m.fault,
            mode: AtomicU8::new(encode(m.fault)),
            connections: Mutex::new(shutdown.child_token()),
        });
        listeners.push(m.listener);
    }
    let pool = Pool {
        edge: edge.clone(),
        members: Arc::new(state),
        shutdown: shutdown.clone(),
    };
    let mut loops = tokio::task::JoinSet::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let member = Some((pool.clone(), i));
        loops.spawn(super::listener::serve_member(
            listener,
            edge.clone(),
            member,
            shutdown.clone(),
        ));
    }
    let task = tokio::spawn(async move {
        let mut result = Ok(());
        while let Some(r) = loops.join_next().await {
            if let Ok(Err(e)) = r {
                result = Err(e);
            }
        }
        result
    });
    Ok((pool, task))
}

/// A connection a member in a fault mode accepted (never `accept`: that is the Edge's own path).
pub(super) async fn faulty(
    mode: FaultMode,
    tcp: TcpStream,
    remote: SocketAddr,
    cid: u64,
    edge: Arc<Edge>,
    token: CancellationToken,
) {
    let hold = Duration::from_millis(edge.config.limits.handshake_timeout_ms);
    match mode {
        FaultMode::Accept => super::transport::run(tcp, remote, cid, edge, token).await,
        FaultMode::Reset => {
            tracing::info!("pool fault reset: resetting the connection");
            let _ = tcp.set_zero_linger();
            drop(tcp);
        }
        FaultMode::RefuseTls => refuse_tls(tcp, hold, token).await,
        FaultMode::Silent => {
            tracing::info!("pool fault silent: reading and dropping, never answering");
            let _ = tokio::time::timeout(hold, drain(tcp, token)).await;
        }
        FaultMode::Unavailable => out_of_service(tcp, remote, cid, edge, hold, token).await,
    }
}

/// A fatal `handshake_failure` alert (TLS record type 21, level 2 = fatal, description 40), in the record
/// version both TLS 1.2 and 1.3 clients accept before the handshake.
const HANDSHAKE_FAILURE_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 40];

/// Reads the first TLS record (the ClientHello; at most a record's 16 KiB and within `hold`), answers it
/// with the alert, and closes.
async fn refuse_tls(mut tcp: TcpStream, hold: Duration, token: CancellationToken) {
    let read_hello = async {
        let mut head = [0u8; 5];
        tcp.read_exact(&mut head).await?;
        let len = usize::from(u16::from_be_bytes([head[3], head[4]])).min(16 * 1024 + 256);
        let mut body = vec![0u8; len];
        tcp.read_exact(&mut body).await?;
        Ok::<_, std::io::Error>(head[0])
    };
    let read = tokio::select! {
        () = token.cancelled() => return,
        r = tokio::time::timeout(hold, read_hello) => r,
    };
    match read {
        Ok(Ok(_)) => {
            tracing::info!(
                "pool fault refuse-tls: answering the ClientHello with handshake_failure"
            );
            let _ = tcp.write_all(&HANDSHAKE_FAILURE_ALERT).await;
            let _ = tcp.shutdown().await;
        }
        Ok(Err(e)) => tracing::info!(error = %e, "pool fault refuse-tls: no ClientHello"),
        Err(_) => tracing::info!("pool fault refuse-tls: no ClientHello in time"),
    }
}

/// Reads and drops until the peer closes or `token` is cancelled.
async fn drain(mut tcp: TcpStream, token: CancellationToken) {
    let mut sink = [0u8; 4096];
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            r = tcp.read(&mut sink) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

/// Fault mode `503`: completes TLS (no certificate judged: the member is out of service, not deciding), then
/// answers every request 503 until the peer closes, `limits.idle_timeout_ms` passes without a request (or
/// `limits.header_timeout_ms` inside one), or the member is switched. Reads are bounded by the framer's limits.
async fn out_of_service(
    tcp: TcpStream,
    remote: SocketAddr,
    cid: u64,
    edge: Arc<Edge>,
    hold: Duration,
    token: CancellationToken,
) {
    let local = tcp
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let handshake = tokio::select! {
        () = token.cancelled() => return,
        r = tokio::time::timeout(hold, edge.acceptor.accept(tcp)) => r,
    };
    let mut stream = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::info!(error = %e, "pool fault 503: TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!("pool fault 503: TLS handshake not completed in time");
            return;
        }
    };
    let cert = pki::peer_chain(stream.get_ref().1)
        .first()
        .and_then(|c| CertFacts::from_der(c.as_ref()).ok());
    let cert_name = cert.as_ref().map(CertFacts::display_name);
    let mut respond = Responder::new(
        remote,
        cid,
        &edge.config.edge.server_header,
        &edge.config.edge.fqdn,
        edge.policy.faithful,
    );
    let max = edge.config.limits.max_message_bytes;
    let mut framer = Framer::new(sip::Limits {
        max_head: max,
        max_body: max,
        max_headers: 256,
    });
    let idle = Duration::from_millis(edge.config.limits.idle_timeout_ms);
    let header = Duration::from_millis(edge.config.limits.header_timeout_ms);
    let member = local.to_string();
    let mut buf = BytesMut::new();
    loop {
        let mut out = Vec::new();
        let mut close = false;
        loop {
            match framer.decode(&mut buf) {
                Ok(Some(Frame::Message(m))) => {
                    if !m.is_request() {
                        continue;
                    }
                    if let Err(e) = m.validate() {
                        out.extend(respond.error_answer(Src::Parsed(&m), &e));
                        continue;
                    }
                    let method = text(m.method().unwrap_or_default());
                    let call_id = m.call_id().map(|c| text(&c)).unwrap_or_default();
                    if method == "ACK" {
                        respond.acknowledged(&call_id);
                        continue;
                    }
                    let peer = Peer {
                        remote,
                        local,
                        cert: cert.as_ref(),
                        cert_name: cert_name.as_deref(),
                    };
                    let ctx = decide::context(&m, &method, &call_id, peer);
                    let finding = crate::rules::users::member_out_of_service(&member);
                    let outcome = decide::before_rules(&edge, &m, finding, ctx, &mut respond);
                    out.extend(outcome.response);
                    edge.publish(outcome.event);
                }
                Ok(Some(Frame::Ping)) => out.push(bytes::Bytes::from_static(b"\r\n")),
                Ok(Some(Frame::Pong)) => {}
                Ok(Some(Frame::Invalid { error, raw })) => {
                    if let Some(r) = respond.error_answer(Src::Raw(&raw), &error) {
                        out.push(r);
                    }
                    if error.closes_connection() {
                        close = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    if let Some(r) = respond.error_answer(Src::Raw(&buf), &error) {
                        out.push(r);
                    }
                    close = true;
                    break;
                }
            }
        }
        if !write_all(&mut stream, &out).await || close {
            let _ = tokio::time::timeout(Duration::from_millis(200), stream.shutdown()).await;
            return;
        }
        let read = tokio::select! {
            () = token.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_millis(200), stream.shutdown()).await;
                return;
            }
            // A message begun must complete within the header timeout, as on the Edge's own connections.
            r = tokio::time::timeout(if buf.is_empty() { idle } else { header }, stream.read_buf(&mut buf)) => r,
        };
        match read {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    }
}

/// Writes the answers (5 s at most); false when the peer is gone.
async fn write_all(stream: &mut TlsStream<TcpStream>, out: &[bytes::Bytes]) -> bool {
    if out.is_empty() {
        return true;
    }
    let work = async {
        for b in out {
            stream.write_all(b).await?;
        }
        stream.flush().await
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), work).await,
        Ok(Ok(()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_survive_their_encoding() {
        for m in FaultMode::ALL {
            assert_eq!(decode_mode(encode(m)), m);
        }
    }
}
