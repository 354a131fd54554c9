//! One peer connection's transport: the TLS handshake and the client certificate's judgement, then reading
//! (bounded in size by the framer's limits and in time by the handshake, header and idle timeouts), framing,
//! the request rate, and batched writes. Each request goes through [`super::decide`] and, when the rules let it
//! through, to the emulated users ([`super::dialogs`]), whose timers this loop waits for.
//!
//! Responses from the peer are never answered (RFC 3261 §18.1.2): answers to the Edge's own BYEs are taken,
//! anything else is dropped, malformed or not.
//!
//! The order a request goes through: ACK (absorbed by its call and transaction) → INVITE retransmission
//! (answered from its transaction) → request rate (503) → `Max-Forwards: 0` (483) → federation rules and
//! destination (`rules`) → `Require` (420) → the users. Each answered step is one decision event carrying the
//! status sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use super::conversations::Conversations;
use super::decide::{self, Outcome, Peer};
use super::dialogs::Dialogs;
use super::limits::RequestRate;
use super::respond::{Responder, Src, text};
use super::{Edge, handshake, peer_conn, uas};
use crate::diagnostics::protocol::Direction;
use crate::pki::{self, CertFacts, ChainStatus};
use crate::rules::{self, Decision};
use crate::sip::{self, Frame, Framer, Message};

/// A connection after a handshake the Edge accepted.
struct Connection {
    edge: Arc<Edge>,
    remote: SocketAddr,
    local: SocketAddr,
    cid: u64,
    cert: Option<CertFacts>,
    cert_name: Option<String>,
    rate: RequestRate,
    respond: Responder,
    dialogs: Dialogs,
    /// Presence and IM (`conversations`).
    conversations: Conversations,
    /// What to write next, in order.
    out: Vec<Bytes>,
}

/// Runs one accepted TCP connection to its end.
pub(super) async fn run(
    tcp: TcpStream,
    remote: SocketAddr,
    cid: u64,
    edge: Arc<Edge>,
    shutdown: CancellationToken,
) {
    let _ = tcp.set_nodelay(true);
    let local = tcp
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let _open = edge.taps().accepted();
    let limits = edge.config.limits.clone();
    let handshake = async {
        // What the hello offers is read before rustls consumes it, to explain a version mismatch.
        let offer = handshake::peek_offer(&tcp).await;
        (offer, edge.acceptor.accept(tcp).await)
    };
    let handshake = tokio::time::timeout(
        Duration::from_millis(limits.handshake_timeout_ms),
        handshake,
    );
    let stream = tokio::select! {
        () = shutdown.cancelled() => return,
        r = handshake => match r {
            Err(_) => {
                edge.taps().handshake_timeout();
                tracing::info!("TLS handshake not completed in {} ms: dropping the connection", limits.handshake_timeout_ms);
                return;
            }
            Ok((offer, Err(e))) => {
                handshake::failed(&edge, remote, cid, &e, offer.as_ref());
                return;
            }
            Ok((_, Ok(s))) => s,
        }
    };
    let chain = pki::peer_chain(stream.get_ref().1);
    // Trust and validity only: the clientAuth EKU is the rulebook's (a 504 that explains beats a reset). Kept
    // per distinct chain (`handshake::PeerCache`).
    let (cert, status) = edge
        .peers
        .judge(&chain, &edge.anchors, rustls_pki_types::UnixTime::now());
    if let Some(c) = &cert {
        tracing::Span::current().record("peer_cert", c.display_name());
    }
    if (!chain.is_empty() || edge.config.tls.client_cert == crate::config::ClientCertMode::Required)
        && status != ChainStatus::Trusted
    {
        edge.taps()
            .certificate_refused(cid, local, remote, stream.get_ref().1, &status);
        handshake::reject_certificate(&edge, remote, cid, &status, cert.as_ref());
        // A reset, not a close_notify: what a lab sees from a real Edge refusing the certificate.
        let _ = stream.get_ref().0.set_zero_linger();
        drop(stream);
        return;
    }
    let cert_name = cert.as_ref().map(CertFacts::display_name);
    let respond = Responder::new(
        remote,
        cid,
        edge.config.edge.server(),
        &edge.config.edge.fqdn,
        edge.config.diagnostic_headers(),
        edge.config.limits.idle_timeout_ms / 1000,
    )
    .with_record_route(edge.route_key.clone(), route_peer(cert.as_ref(), remote));
    let conn = Connection {
        dialogs: Dialogs::new(edge.users.clone(), local),
        conversations: Conversations::new(&edge, cid, local),
        respond,
        edge,
        remote,
        local,
        cid,
        cert,
        cert_name,
        rate: RequestRate::new(Instant::now()),
        out: Vec::new(),
    };
    tracing::debug!("TLS established");
    conn.edge
        .taps()
        .established(cid, local, remote, stream.get_ref().1)
        .await;
    conn.edge
        .taps()
        .clone()
        .serving(cid, remote, conn.serve(stream, shutdown))
        .await;
}

/// Whom the Edge's Record-Route is signed for: the peer's certificate name (a new connection from the same peer
/// may carry the dialog on), else its IP address.
fn route_peer(cert: Option<&CertFacts>, remote: SocketAddr) -> String {
    cert.map(CertFacts::display_name)
        .unwrap_or_else(|| remote.ip().to_string())
}

/// Bytes asked for per read.
const READ_CHUNK: usize = 8192;

/// Reads what the peer sent into `buf`. While `buf` is empty (a connection between requests, and every idle
/// one) the read goes through a buffer on the stack, live only during the poll, and only the bytes received
/// are copied into `buf`: waiting costs no heap buffer. With a partial message in `buf`, it reads in place.
async fn read_some(
    stream: &mut TlsStream<TcpStream>,
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    if !buf.is_empty() {
        if buf.capacity() - buf.len() < READ_CHUNK / 8 {
            buf.reserve(READ_CHUNK);
        }
        return stream.read_buf(buf).await;
    }
    std::future::poll_fn(|cx| {
        let mut tmp = [0u8; READ_CHUNK];
        let mut rb = tokio::io::ReadBuf::new(&mut tmp);
        std::task::ready!(std::pin::Pin::new(&mut *stream).poll_read(cx, &mut rb))?;
        buf.extend_from_slice(rb.filled());
        std::task::Poll::Ready(Ok(rb.filled().len()))
    })
    .await
}

/// True when raw bytes start like a status line (`SIP/…`): a response, however malformed.
fn is_response(raw: &[u8]) -> bool {
    raw.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
}

/// Waits until `at`, or forever without a timer.
async fn timer(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Connection {
    async fn serve(mut self, mut stream: TlsStream<TcpStream>, shutdown: CancellationToken) {
        let limits = self.edge.config.limits.clone();
        // The head and the body are bounded apart: a real Edge's body limit is its MaxServerMessageBodySizeKb.
        let mut framer = Framer::new(sip::Limits {
            max_head: limits.max_message_bytes,
            max_body: limits.max_server_message_body_size_kb.saturating_mul(1024),
            max_headers: 256,
        });
        let idle = Duration::from_millis(limits.idle_timeout_ms);
        let header = Duration::from_millis(limits.header_timeout_ms);
        let mut buf = BytesMut::new();
        let mut last_read = Instant::now();
        let mut partial_since: Option<Instant> = None;
        loop {
            // Everything complete in the buffer first.
            let mut close = false;
            let mut progressed = false;
            loop {
                let frame = framer.decode(&mut buf);
                progressed |= matches!(frame, Ok(Some(_)));
                match frame {
                    Ok(Some(Frame::Message(m))) => {
                        self.log_protocol(Direction::Incoming, m.as_bytes());
                        self.handle(m).await;
                    }
                    Ok(Some(Frame::Ping)) => self.out.push(Bytes::from_static(b"\r\n")),
                    Ok(Some(Frame::Pong)) => {}
                    Ok(Some(Frame::Invalid { error, raw })) => {
                        self.edge
                            .taps()
                            .malformed(self.cid, self.local, self.remote, &raw)
                            .await;
                        self.log_protocol(Direction::Incoming, &raw);
                        tracing::info!(%error, "malformed message");
                        self.bad_input(&raw, &error);
                        if error.closes_connection() {
                            close = true;
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::info!(%error, "unframeable input: answering if possible, then closing");
                        self.bad_input(&buf, &error);
                        close = true;
                        break;
                    }
                }
            }
            if !self.flush(&mut stream).await || close {
                let _ = tokio::time::timeout(Duration::from_millis(200), stream.shutdown()).await;
                return;
            }
            partial_since = if buf.is_empty() {
                // Let go of the read allocation (its spent front is shared with the handled messages): a
                // connection waiting for its next request holds no read buffer (see `read_some`).
                if buf.capacity() > 0 {
                    buf = BytesMut::new();
                }
                None
            } else if progressed {
                // A pipelining peer keeps the buffer busy: the header timeout is for a message that stalls,
                // so it starts again with each message that completes.
                Some(Instant::now())
            } else {
                partial_since.or(Some(Instant::now()))
            };
            let deadline = match partial_since {
                Some(t) => t + header,
                None => last_read + idle,
            };
            tokio::select! {
                () = shutdown.cancelled() => {
                    // The subscriptions that came here end with their final NOTIFY before the connection
                    // closes (over the Edge's own connection, or on this one).
                    self.conversations.deactivate();
                    self.take_transmits();
                    self.flush(&mut stream).await;
                    let _ = tokio::time::timeout(Duration::from_millis(200), stream.shutdown()).await;
                    return;
                }
                () = timer(self.dialogs.poll_timeout()) => {
                    self.dialogs.handle_timeout(Instant::now(), &mut self.respond);
                    self.take_transmits();
                }
                () = timer(self.conversations.poll_timeout()) => {
                    self.conversations.handle_timeout(Instant::now());
                    self.take_transmits();
                }
                () = self.conversations.wake.notified() => self.take_transmits(),
                r = tokio::time::timeout_at(deadline, read_some(&mut stream, &mut buf)) => match r {
                    Err(_) => {
                        if partial_since.is_some() {
                            tracing::info!("incomplete message for {} ms: dropping a slow peer", limits.header_timeout_ms);
                        } else {
                            tracing::info!("idle for {} ms: closing", limits.idle_timeout_ms);
                        }
                        let _ = tokio::time::timeout(Duration::from_millis(200), stream.shutdown()).await;
                        return;
                    }
                    Ok(Ok(0)) => {
                        self.edge.taps().closed(self.cid, self.remote, crate::ui::Closer::Peer, "closed by the peer").await;
                        tracing::debug!("peer closed the connection");
                        return;
                    }
                    Ok(Err(e)) => {
                        self.edge.taps().closed(self.cid, self.remote, crate::ui::Closer::Peer, "reset or broken by the peer").await;
                        tracing::info!(error = %e, "read failed: closing");
                        return;
                    }
                    Ok(Ok(_)) => last_read = Instant::now(),
                }
            }
        }
    }

    /// A message in or out as a protocol record (`[log] protocol`), the peer named as in the TF_DIAG records.
    fn log_protocol(&self, direction: Direction, message: &[u8]) {
        if !self.edge.config.log.protocol {
            return;
        }
        let peer = match &self.cert_name {
            Some(n) => format!("{n}:{}", self.remote.port()),
            None => self.remote.to_string(),
        };
        self.edge.log_protocol(direction, &peer, message, self.cid);
    }

    /// The refusal of a request whose Route is not the Edge's signed Record-Route for this dialog and peer.
    fn route_refusal(&self, m: &Message) -> Option<rules::Finding> {
        let peer = route_peer(self.cert.as_ref(), self.remote);
        let problem = self
            .edge
            .route_key
            .check(m, &self.edge.config.edge.fqdn, &peer)
            .err()?;
        let (route, why) = problem.parts();
        tracing::warn!(route, why, "Route refused");
        Some(rules::Finding::RouteRefused {
            route: route.to_owned(),
            why,
        })
    }

    /// Moves what the dialogs want sent to the write queue, in order, and what the Edge originates toward the
    /// peer to the one switch point that sends it ([`peer_conn::send_to_peer`]).
    fn take_transmits(&mut self) {
        while let Some(b) = self.dialogs.poll_transmit() {
            self.out.push(b);
        }
        while let Some(b) = self.conversations.poll_transmit() {
            self.out.push(b);
        }
        let dialogs = std::iter::from_fn(|| self.dialogs.poll_originated());
        let originated: Vec<_> = dialogs
            .chain(std::iter::from_fn(|| self.conversations.poll_originated()))
            .collect();
        for req in originated {
            if self.edge.config.log.protocol && !self.edge.config.edge.reuse_inbound_connection {
                // Logged here, as it leaves for the Edge's own connection (the inbound queue logs its own).
                self.log_protocol(Direction::Outgoing, &req.bytes);
            }
            peer_conn::send_to_peer(&self.edge, req, &mut self.out);
        }
    }

    /// Writes the queued messages, in order, with one write and one flush (one TLS record and one syscall for
    /// the answers to a read's pipelined requests rather than one each); false when the peer is gone or too
    /// slow to take them.
    async fn flush(&mut self, stream: &mut TlsStream<TcpStream>) -> bool {
        // Taken, not drained: an idle connection keeps no queue allocation.
        let mut out = std::mem::take(&mut self.out);
        for b in &out {
            // A keep-alive pong is not a message.
            if &b[..] != b"\r\n" {
                self.log_protocol(Direction::Outgoing, b);
            }
        }
        self.edge
            .taps()
            .sent(self.cid, self.local, self.remote, &out)
            .await;
        let batch = match out.len() {
            0 => return true,
            1 => out.pop().unwrap_or_default(),
            _ => {
                let mut all = Vec::with_capacity(out.iter().map(Bytes::len).sum());
                for b in &out {
                    all.extend_from_slice(b);
                }
                Bytes::from(all)
            }
        };
        let write = async {
            stream.write_all(&batch).await?;
            stream.flush().await
        };
        match tokio::time::timeout(Duration::from_secs(5), write).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::info!(error = %e, "write failed: closing");
                false
            }
            Err(_) => {
                tracing::info!("peer not reading for 5 s: closing");
                false
            }
        }
    }

    /// Something that did not parse: its error status (400 with Warning, 413, 513...) when it is a request
    /// with a Via; a response is dropped, never answered.
    fn bad_input(&mut self, raw: &[u8], error: &sip::SipError) {
        if is_response(raw) {
            tracing::info!(%error, "a malformed response from the peer: dropped (responses are never answered)");
            return;
        }
        match self.respond.error_answer(Src::Raw(raw), error) {
            Some(r) => self.out.push(r),
            None => tracing::info!("no Via in the malformed input: nothing to answer"),
        }
    }

    async fn handle(&mut self, m: Message) {
        self.edge
            .taps()
            .received(self.cid, self.local, self.remote, &m)
            .await;
        if !m.is_request() {
            if !self.conversations.handle_response(&m) {
                self.dialogs.handle_response(&m);
            }
            self.take_transmits();
            return;
        }
        if let Err(e) = m.validate() {
            tracing::info!(error = %e, "invalid request");
            if let Some(r) = self.respond.error_answer(Src::Parsed(&m), &e) {
                self.out.push(r);
            }
            return;
        }
        let method = text(m.method().unwrap_or_default());
        let call_id = m.call_id().map(|c| text(&c)).unwrap_or_default();
        // At debug: the console's one line per decision names method and Call-ID itself (`Edge::publish`), and
        // an info span per request costs more than the line.
        let span = tracing::debug_span!("request", %method, %call_id);
        let _enter = span.enter();
        if method == "ACK" {
            self.respond.acknowledged(&call_id);
            self.dialogs.handle_ack(&call_id);
            self.conversations.handle_ack(&call_id);
            self.take_transmits();
            return;
        }
        let now = Instant::now();
        if method == "INVITE"
            && let Some(r) = self.respond.retransmission(&m, &call_id, now)
        {
            tracing::debug!("INVITE retransmission: its last response again");
            self.out.push(r);
            return;
        }
        let peer = Peer {
            remote: self.remote,
            local: self.local,
            cert: self.cert.as_ref(),
            cert_name: self.cert_name.as_deref(),
        };
        let ctx = decide::context(&m, &method, &call_id, peer);
        let max = self.edge.config.limits.max_requests_per_sec;
        let ends_held_call =
            matches!(method.as_str(), "BYE" | "CANCEL") && self.dialogs.holds(&call_id);
        let over_rate =
            rules::users::counts_toward_rate(&method, ends_held_call) && self.rate.over(now, max);
        let before_rules = if over_rate {
            Some(rules::users::rate_limited(max))
        } else {
            uas::hop_limit(&m, &method)
        };
        if let Some(f) = before_rules {
            let outcome = decide::before_rules(&self.edge, &m, f, ctx, &mut self.respond);
            self.publish(outcome);
            return;
        }
        if let Some(f) = self.route_refusal(&m) {
            let peer = Peer {
                remote: self.remote,
                local: self.local,
                cert: self.cert.as_ref(),
                cert_name: self.cert_name.as_deref(),
            };
            let outcome =
                decide::before_rules_logged(&self.edge, &m, f, ctx, peer, &mut self.respond);
            self.publish(outcome);
            return;
        }
        drop(_enter);
        let peer = Peer {
            remote: self.remote,
            local: self.local,
            cert: self.cert.as_ref(),
            cert_name: self.cert_name.as_deref(),
        };
        let mut outcome = decide::federation(&self.edge, &m, ctx, peer, &mut self.respond).await;
        let _enter = span.enter();
        if let Decision::Accept { .. } = outcome.verdict.decision {
            let answer = if self.conversations.claims(&m, &method, &call_id) {
                self.conversations.handle_request(
                    Instant::now(),
                    m,
                    &method,
                    call_id,
                    &mut self.respond,
                )
            } else {
                self.dialogs
                    .handle_request(Instant::now(), m, &method, call_id, &mut self.respond)
            };
            self.take_transmits();
            outcome.event.status = answer.status;
            outcome.event.verdict = answer.verdict;
            if let Some(why) = answer.explanation {
                tracing::debug!("{why}");
                outcome.event.explanation = Some(why);
            }
        }
        self.publish(outcome);
    }

    /// What one decision leaves behind: its response queued, its record written, its explanation logged, its
    /// event published.
    fn publish(&mut self, outcome: Outcome) {
        let Outcome {
            verdict,
            response,
            event,
        } = outcome;
        self.out.extend(response);
        let record = verdict.log().map(|r| self.edge.write_record(r, self.cid));
        // The explanation is rendered for this line only when it is shown.
        if tracing::enabled!(tracing::Level::DEBUG)
            && let (Some(x), Some(status)) = (verdict.explanation(), verdict.status())
        {
            let domain = event.domain.as_deref().unwrap_or("(none)");
            tracing::debug!(status, domain, "{x}");
        }
        self.edge.taps().decision(
            self.cid,
            &verdict,
            &event,
            record.as_deref(),
            &self.edge.policy,
        );
        self.edge.publish(event);
    }
}
