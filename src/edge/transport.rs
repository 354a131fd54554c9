//! One peer connection: TLS handshake and certificate judgement, then SIP requests one by one through the
//! federation rules to the emulated users (`calls`). Every read is bounded in size (the framer's limits) and in
//! time (handshake, header and idle timeouts).
//!
//! Every answer the Edge sends, its own error answers included (400 for a request that does not parse or
//! validate, 413, 513), goes through [`Conn::edge_response`]: all Vias copied, `received`,
//! `ms-received-port` and `ms-received-cid` on the top one, a To tag, `Server`, `Content-Length`. Responses
//! from the peer are never answered (RFC 3261 §18.1.2): answers to the Edge's own BYEs are taken, anything
//! else is dropped, malformed or not.
//!
//! The order a request goes through: ACK (absorbed by its call and transaction) → INVITE retransmission
//! (answered from its transaction) → request rate (503) → `Max-Forwards: 0` (483) → federation rules and
//! destination (`rules`) → `Require` (420) → the users. Each answered step is one decision event carrying the
//! status sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use super::dialogs::{Answer, Dialog, Timer};
use super::limits::RequestRate;
use super::tx::InviteTransactions;
use super::{Edge, handshake, remote_text, uas};
use crate::diagnostics::{DecisionEvent, EventContext};
use crate::pki::{self, CertFacts, ChainStatus, Usage};
use crate::rules::{self, Decision, Finding, InboundFacts, Step, Verdict};
use crate::sip::{self, Frame, Framer, Message, ResponseBuilder, ua};

/// Most answers to its own BYEs the Edge waits for on one connection.
const MAX_PENDING_BYES: usize = 64;

/// A connection after a handshake the Edge accepted.
pub(super) struct Conn {
    pub(super) edge: Arc<Edge>,
    pub(super) remote: SocketAddr,
    pub(super) local: SocketAddr,
    cid: u64,
    cert: Option<CertFacts>,
    cert_name: Option<String>,
    pub(super) dialogs: HashMap<String, Dialog>,
    pub(super) timers: mpsc::UnboundedSender<Timer>,
    pub(super) out: Vec<Bytes>,
    rate: RequestRate,
    invites: InviteTransactions,
    /// Top Via branches of the BYEs the Edge sent, until their final answer.
    pub(super) byes: Vec<String>,
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
    let cert = chain
        .first()
        .and_then(|c| CertFacts::from_der(c.as_ref()).ok());
    if let Some(c) = &cert {
        tracing::Span::current().record("peer_cert", c.display_name());
    }
    if !chain.is_empty() || edge.config.tls.client_cert == crate::config::ClientCertMode::Required {
        // Trust and validity only: the clientAuth EKU is policy's rule (a 504 that explains beats a reset).
        let status = pki::verify_chain(
            &chain,
            &edge.anchors,
            Usage::Any,
            rustls_pki_types::UnixTime::now(),
        );
        if status != ChainStatus::Trusted {
            handshake::reject_certificate(&edge, remote, cid, &status, cert.as_ref());
            // A reset, not a close_notify: what a lab sees from a real Edge refusing the certificate.
            let _ = stream.get_ref().0.set_zero_linger();
            drop(stream);
            return;
        }
    }
    let (timers, timer_rx) = mpsc::unbounded_channel();
    let cert_name = cert.as_ref().map(CertFacts::display_name);
    let conn = Conn {
        edge,
        remote,
        local,
        cid,
        cert,
        cert_name,
        dialogs: HashMap::new(),
        timers,
        out: Vec::new(),
        rate: RequestRate::new(Instant::now()),
        invites: InviteTransactions::default(),
        byes: Vec::new(),
    };
    tracing::debug!("TLS established");
    conn.serve(stream, timer_rx, shutdown).await;
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

pub(super) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// True when raw bytes start like a status line (`SIP/2.0 …`): a response, however malformed.
fn is_response(raw: &[u8]) -> bool {
    raw.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
}

/// The top Via branch of a message, or empty.
pub(super) fn branch(m: &Message) -> String {
    m.top_via()
        .ok()
        .and_then(|v| v.branch().map(str::to_owned))
        .unwrap_or_default()
}

/// A message the Edge answers: parsed, or raw bytes that did not parse.
#[derive(Clone, Copy)]
enum Src<'a> {
    Parsed(&'a Message),
    Raw(&'a [u8]),
}

impl Conn {
    async fn serve(
        mut self,
        mut stream: TlsStream<TcpStream>,
        mut timer_rx: mpsc::UnboundedReceiver<Timer>,
        shutdown: CancellationToken,
    ) {
        let limits = self.edge.config.limits.clone();
        let max = limits.max_message_bytes;
        let mut framer = Framer::new(sip::Limits {
            max_head: max,
            max_body: max,
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
                    Ok(Some(Frame::Message(m))) => self.handle(m).await,
                    Ok(Some(Frame::Ping)) => self.out.push(Bytes::from_static(b"\r\n")),
                    Ok(Some(Frame::Pong)) => {}
                    Ok(Some(Frame::Invalid { error, raw })) => {
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
                    let _ = tokio::time::timeout(Duration::from_millis(200), stream.shutdown()).await;
                    return;
                }
                Some(t) = timer_rx.recv() => self.timer(t),
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
                        tracing::debug!("peer closed the connection");
                        return;
                    }
                    Ok(Err(e)) => {
                        tracing::info!(error = %e, "read failed: closing");
                        return;
                    }
                    Ok(Ok(_)) => last_read = Instant::now(),
                }
            }
        }
    }

    /// Writes the queued messages, in order, with one write and one flush (one TLS record and one syscall for
    /// the answers to a read's pipelined requests rather than one each); false when the peer is gone or too
    /// slow to take them.
    async fn flush(&mut self, stream: &mut TlsStream<TcpStream>) -> bool {
        // Taken, not drained: an idle connection keeps no queue allocation.
        let mut out = std::mem::take(&mut self.out);
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
        match self.error_answer(Src::Raw(raw), error) {
            Some(r) => self.out.push(r),
            None => tracing::info!("no Via in the malformed input: nothing to answer"),
        }
    }

    /// The Edge's answer to a request that failed parsing or validation: the error's status and reason with a
    /// `Warning` naming the error, through the one response path.
    fn error_answer(&self, src: Src<'_>, error: &sip::SipError) -> Option<Bytes> {
        let (code, reason) = error.status();
        let warning = error.warning(&self.edge.config.edge.fqdn);
        let b = match src {
            Src::Parsed(m) => ResponseBuilder::from_request(m, code, reason),
            Src::Raw(raw) => ResponseBuilder::from_raw(raw, code, reason)?,
        };
        let tag = ua::edge_tag();
        Some(self.edge_response(b, Some(&tag), &[("Warning", &warning)], b""))
    }

    /// The marks of every Edge response on `b`: the top Via's `received`, `ms-received-port`,
    /// `ms-received-cid` (and `rport` filled when present), the To tag (when To has none), extra headers,
    /// `Server`, `Content-Length`.
    fn edge_response<'a>(
        &'a self,
        b: ResponseBuilder<'a>,
        tag: Option<&'a str>,
        headers: &[(&'a str, &'a str)],
        body: &'a [u8],
    ) -> Bytes {
        let mut b = b
            .fill_rport(self.remote.port())
            .top_via_param("received", self.remote.ip().to_string())
            .top_via_param("ms-received-port", self.remote.port().to_string())
            .top_via_param("ms-received-cid", format!("{:X}", self.cid));
        if let Some(t) = tag {
            b = b.to_tag(t);
        }
        for (n, v) in headers {
            b = b.header(n, v);
        }
        b.header("Server", &self.edge.config.edge.server_header)
            .body(body)
            .build()
    }

    /// A response to `req` through the one response path; an INVITE's latest answer is kept for its
    /// retransmissions.
    pub(super) fn respond(
        &mut self,
        req: &Message,
        code: u16,
        reason: &str,
        tag: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Bytes {
        tracing::debug!(code, reason, "response");
        let r = self.edge_response(
            ResponseBuilder::from_request(req, code, reason),
            tag,
            headers,
            body,
        );
        if req.method() == Some(b"INVITE") {
            let call_id = req.call_id().map(|c| text(&c)).unwrap_or_default();
            self.invites
                .record(&branch(req), &call_id, r.clone(), Instant::now());
        }
        r
    }

    /// A response from the peer: the answer to one of the Edge's BYEs, or dropped.
    fn response_received(&mut self, m: &Message) {
        let code = m.status_code().unwrap_or_default();
        let b = branch(m);
        match self.byes.iter().position(|x| !b.is_empty() && *x == b) {
            Some(i) => {
                if code >= 200 {
                    self.byes.swap_remove(i);
                }
                tracing::debug!(code, "answer to the Edge's BYE");
            }
            None => tracing::info!(
                code,
                "a response that matches no transaction of the Edge: dropped (RFC 3261 §18.1.2)"
            ),
        }
    }

    /// Remembers the branch of a BYE the Edge sends, to recognise its answer.
    pub(super) fn bye_sent(&mut self, branch: String) {
        if self.byes.len() >= MAX_PENDING_BYES {
            self.byes.remove(0);
        }
        self.byes.push(branch);
    }

    async fn handle(&mut self, m: Message) {
        if !m.is_request() {
            self.response_received(&m);
            return;
        }
        if let Err(e) = m.validate() {
            tracing::info!(error = %e, "invalid request");
            if let Some(r) = self.error_answer(Src::Parsed(&m), &e) {
                self.out.push(r);
            }
            return;
        }
        let method = text(m.method().unwrap_or_default());
        let call_id = m.call_id().map(|c| text(&c)).unwrap_or_default();
        let span = tracing::info_span!("request", %method, %call_id);
        let _enter = span.enter();
        if method == "ACK" {
            self.invites.acknowledged(&call_id);
            self.ack(&call_id);
            return;
        }
        if method == "INVITE"
            && let Some(r) = self
                .invites
                .retransmission(&branch(&m), &call_id, Instant::now())
        {
            tracing::debug!("INVITE retransmission: its last response again");
            self.out.push(r);
            return;
        }
        let ctx = EventContext {
            time: time::OffsetDateTime::now_utc(),
            remote: remote_text(self.remote),
            peer_cert: self.cert_name.clone(),
            method: method.clone(),
            call_id: call_id.clone(),
            domain: sender_domain(&m),
        };
        let max = self.edge.config.limits.max_requests_per_sec;
        let ends_held_call =
            matches!(method.as_str(), "BYE" | "CANCEL") && self.dialogs.contains_key(&call_id);
        let over_rate = rules::users::counts_toward_rate(&method, ends_held_call)
            && self.rate.over(Instant::now(), max);
        let before_rules = if over_rate {
            Some(rules::users::rate_limited(max))
        } else {
            uas::hop_limit(&m, &method)
        };
        if let Some(f) = before_rules {
            let answer = self.refuse(&m, &f);
            self.publish_answer(ctx, answer);
            return;
        }
        drop(_enter);
        let verdict = self.decide(&m, &ctx).await;
        let _enter = span.enter();
        let mut event = verdict.to_event(ctx);
        match &verdict.decision {
            Decision::Refuse(f) => {
                let r = self.refusal_response(&m, f, verdict.diagnostic().map(|d| d.render()));
                self.out.push(r);
            }
            Decision::Accept { target } => {
                tracing::info!(matched_target = %target, "federation rules pass");
                let answer = self.accepted(m, &method, call_id);
                event.status = answer.status;
                event.verdict = answer.verdict;
                if let Some(why) = answer.explanation {
                    tracing::info!("{why}");
                    event.explanation = Some(why);
                }
            }
        }
        self.edge.publish(event);
    }

    /// The Edge's answer to `m` for a finding: its status and reason, its headers, and the ms-diagnostics
    /// `diagnostic` unless the Edge is `faithful`.
    pub(super) fn refusal_response(
        &mut self,
        m: &Message,
        f: &Finding,
        diagnostic: Option<String>,
    ) -> Bytes {
        let (status, reason) = f.sip().unwrap_or((500, "Server Internal Error"));
        let extra = f.response_headers();
        let mut headers: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
        if let Some(d) = &diagnostic
            && !self.edge.policy.faithful
        {
            headers.push(("ms-diagnostics", d.as_str()));
        }
        self.respond(m, status, reason, Some(&ua::edge_tag()), &headers, b"")
    }

    /// Answers `m` with a finding that is not the federation rules' (limits, hops, the users' refusals), and
    /// says what the event records.
    pub(super) fn refuse(&mut self, m: &Message, f: &Finding) -> Answer {
        let diagnostic = f
            .ms_diagnostic(&self.edge.config.edge.fqdn)
            .map(|d| d.render());
        let r = self.refusal_response(m, f, diagnostic);
        self.out.push(r);
        Answer::explained(
            f.sip().map_or(500, |(s, _)| s),
            f.verdict_kind(),
            f.explain().to_string(),
        )
    }

    /// Publishes an answer that did not come from the federation rules (limits, 483).
    fn publish_answer(&self, ctx: EventContext, answer: Answer) {
        if let Some(why) = &answer.explanation {
            tracing::warn!("{why}");
        }
        self.edge.publish(DecisionEvent {
            status: answer.status,
            explanation: answer.explanation,
            ..DecisionEvent::for_request(ctx, answer.verdict)
        });
    }

    /// The federation rules for one request, with the SRV lookup between the two phases; writes the record.
    async fn decide(&self, m: &Message, ctx: &EventContext) -> Verdict {
        let cseq = m
            .cseq()
            .map(|c| format!("{} {}", c.seq, c.method))
            .unwrap_or_default();
        let peer = format!(
            "{}:{}",
            self.cert_name
                .clone()
                .unwrap_or_else(|| self.remote.ip().to_string()),
            self.remote.port()
        );
        let facts = InboundFacts {
            method: ctx.method.clone(),
            request_uri: text(m.request_uri_raw().unwrap_or_default()),
            call_id: ctx.call_id.clone(),
            cseq,
            start_line: text(m.start_line()),
            sender_domain: ctx.domain.as_deref().map(rules::DomainName::new),
            peer,
            srv: None,
            cert: self.cert.as_ref(),
            request_host: m.request_uri().map(|u| u.host()).unwrap_or_default(),
            local_ip: Some(self.local.ip()),
        };
        let policy = &self.edge.policy;
        let decision = match rules::inbound::inbound(policy, &facts) {
            Step::Decided(d) => d,
            Step::Lookup(pending) => {
                let name = pending.srv_name();
                let answer = self.edge.lookup.srv(&name).await;
                match &answer {
                    Ok(records) => {
                        let list: Vec<String> = records.iter().map(rules::srv::srv_text).collect();
                        tracing::debug!(srv = %name, "SRV lookup: {}", list.join(", "));
                    }
                    Err(failure) => tracing::debug!(srv = %name, %failure, "SRV lookup failed"),
                }
                pending.decide(policy, &facts, &answer)
            }
        };
        let verdict = Verdict::new(decision, &policy.edge_fqdn, Some(&facts.request_line()));
        if let Some(record) = verdict.log() {
            self.edge.write_record(record, self.cid);
        }
        if let (Some(x), Some(status)) = (verdict.explanation(), verdict.status()) {
            let domain = ctx.domain.as_deref().unwrap_or("(none)");
            tracing::warn!(status, domain, "{x}");
        }
        verdict
    }
}

/// The sender domain of a request: first `sip:`/`sips:` P-Asserted-Identity host, else From host.
fn sender_domain(m: &Message) -> Option<String> {
    let pai_host = m.p_asserted_identities().ok().and_then(|p| {
        p.into_iter()
            .find(|n| matches!(n.uri.scheme.as_str(), "sip" | "sips"))
            .map(|n| n.uri.host())
    });
    let from_host = m.from().ok().map(|f| f.uri.host());
    rules::sender_domain(pai_host.as_deref(), from_host.as_deref()).map(|d| d.to_string())
}
