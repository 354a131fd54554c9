//! One peer connection: TLS handshake and certificate judgement, then SIP requests one by one through the
//! federation rules to the emulated users. Every read is bounded in size (the framer's limits) and in time
//! (handshake, header and idle timeouts).

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

use super::uas::{self, MethodClass};
use super::{Edge, remote_text};
use crate::config::UserAction;
use crate::diagnostics::{DecisionEvent, EventContext, MsDiagnostic, VerdictKind};
use crate::pki::{self, CertFacts, ChainStatus, Usage};
use crate::policy::{self, InboundFacts, InboundPlan, Verdict};
use crate::sip::{self, Frame, Framer, Message, ResponseBuilder};

/// Timers the connection sets for itself (ringing, hang-up).
#[derive(Debug)]
enum Timer {
    /// Ringing is over: the user acts (answer, decline...).
    RingDone(String),
    /// The Edge side ends the call with BYE.
    Hangup(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ringing,
    Answered,
    Confirmed,
    /// A final non-2xx was sent; waiting for the ACK.
    Terminated,
}

#[derive(Debug)]
struct Dialog {
    invite: Message,
    tag: String,
    state: State,
    action: UserAction,
    hangup_after_ms: Option<u64>,
}

/// Most calls (dialogs) one connection may hold at once.
const MAX_DIALOGS: usize = 1024;

/// A connection after a handshake the Edge accepted.
struct Conn {
    edge: Arc<Edge>,
    remote: SocketAddr,
    local: SocketAddr,
    cid: u64,
    cert: CertFacts,
    cert_name: Option<String>,
    dialogs: HashMap<String, Dialog>,
    timers: mpsc::UnboundedSender<Timer>,
    out: Vec<Bytes>,
    window_start: Instant,
    window_count: u32,
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
    let handshake = tokio::time::timeout(
        edge.ms(limits.handshake_timeout_ms),
        edge.acceptor.accept(tcp),
    );
    let stream = tokio::select! {
        () = shutdown.cancelled() => return,
        r = handshake => match r {
            Err(_) => {
                tracing::info!("TLS handshake not completed in {} ms: dropping the connection", limits.handshake_timeout_ms);
                return;
            }
            Ok(Err(e)) => {
                handshake_failed(&edge, remote, cid, &e);
                return;
            }
            Ok(Ok(s)) => s,
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
            reject_certificate(&edge, remote, cid, &status, cert.as_ref());
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
        cert: cert.unwrap_or_default(),
        cert_name,
        dialogs: HashMap::new(),
        timers,
        out: Vec::new(),
        window_start: Instant::now(),
        window_count: 0,
    };
    tracing::debug!("TLS established");
    conn.serve(stream, timer_rx, shutdown).await;
}

/// A handshake that failed: log why; a missing certificate is the Edge's business (record + event),
/// anything else (plain TCP bytes, a TLS version mismatch) is only traced.
fn handshake_failed(edge: &Edge, remote: SocketAddr, cid: u64, e: &std::io::Error) {
    let tls = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::NoCertificatesPresented) => {
            reject_certificate(edge, remote, cid, &ChainStatus::Missing, None);
        }
        Some(t) => {
            tracing::info!(error = %t, "TLS handshake failed: closing (not a TLS peer, or no common parameters)")
        }
        None => tracing::info!(error = %e, "connection lost during the TLS handshake"),
    }
}

/// Writes the handshake rejection record and event.
fn reject_certificate(
    edge: &Edge,
    remote: SocketAddr,
    cid: u64,
    status: &ChainStatus,
    cert: Option<&CertFacts>,
) {
    let peer = remote_text(remote);
    let Some(rejection) = policy::handshake_rejection(status, cert, &peer) else {
        return;
    };
    tracing::warn!(reason = ?status, "{}", rejection.explanation);
    edge.write_record(&rejection.log, cid);
    edge.publish(DecisionEvent {
        time: time::OffsetDateTime::now_utc(),
        remote: peer,
        peer_cert: cert.map(CertFacts::display_name),
        method: String::new(),
        call_id: String::new(),
        domain: None,
        verdict: VerdictKind::Reject,
        status: 0,
        ms_diagnostics_code: None,
        ms_diagnostics: None,
        result_code: Some(rejection.log.result_code.render()),
        log_data: rejection.log.data.clone(),
        explanation: Some(rejection.explanation),
    });
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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Conn {
    async fn serve(
        mut self,
        mut stream: TlsStream<TcpStream>,
        mut timer_rx: mpsc::UnboundedReceiver<Timer>,
        shutdown: CancellationToken,
    ) {
        let limits = self.edge.config.limits.clone();
        let max = limits.max_message_bytes.max(1024);
        let mut framer = Framer::new(sip::Limits {
            max_head: max,
            max_body: max,
            max_headers: 256,
        });
        let idle = self.edge.ms(limits.idle_timeout_ms);
        let header = self.edge.ms(limits.header_timeout_ms);
        let mut buf = BytesMut::new();
        let mut last_read = Instant::now();
        let mut partial_since: Option<Instant> = None;
        loop {
            // Everything complete in the buffer first.
            let mut close = false;
            loop {
                match framer.decode(&mut buf) {
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

    /// A best-effort answer (400 with Warning, 413, 513...) to something that did not parse.
    fn bad_input(&mut self, raw: &[u8], error: &sip::SipError) {
        let agent = self.edge.config.edge.fqdn.clone();
        match sip::bad_request_from_raw(raw, error, &agent) {
            Some(r) => self.out.push(r),
            None => tracing::info!("no Via in the malformed input: nothing to answer"),
        }
    }

    /// A response with the Edge's Via handling, To tag, extra headers, Server and Content-Length.
    fn respond(
        &self,
        req: &Message,
        code: u16,
        reason: &str,
        tag: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Bytes {
        tracing::debug!(code, reason, "response");
        let received = self.remote.ip().to_string();
        let port = self.remote.port().to_string();
        let cid = format!("{:X}", self.cid);
        let mut b = ResponseBuilder::from_request(req, code, reason)
            .fill_rport(self.remote.port())
            .top_via_param("received", &received)
            .top_via_param("ms-received-port", &port)
            .top_via_param("ms-received-cid", &cid);
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

    /// Requests per second per connection, the Edge's flood protection.
    fn over_rate(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.window_count = 0;
        }
        self.window_count += 1;
        self.window_count > self.edge.config.limits.max_requests_per_sec.max(1)
    }

    async fn handle(&mut self, m: Message) {
        if !m.is_request() {
            // Answers to our BYEs; nothing to do with them.
            tracing::debug!(status = ?m.status_code(), "response received");
            return;
        }
        if let Err(e) = m.validate() {
            tracing::info!(error = %e, "invalid request");
            self.bad_input(m.as_bytes(), &e);
            return;
        }
        let method = text(m.method().unwrap_or_default());
        let call_id = m.call_id().map(|c| text(&c)).unwrap_or_default();
        let span = tracing::info_span!("request", %method, %call_id);
        let _enter = span.enter();
        if method == "ACK" {
            self.ack(&call_id);
            return;
        }
        if self.over_rate() {
            tracing::warn!(
                max = self.edge.config.limits.max_requests_per_sec,
                "request rate exceeded: 503"
            );
            let r = self.unavailable(&m, "1");
            self.out.push(r);
            return;
        }
        drop(_enter);
        let verdict = self.decide(&m, &method, &call_id).await;
        let _enter = span.enter();
        match verdict {
            Verdict::Reject {
                status,
                reason,
                diagnostic,
                ..
            } => {
                let diag = diagnostic.as_ref().map(MsDiagnostic::render);
                let mut headers = Vec::new();
                if let Some(d) = &diag
                    && !self.edge.policy.faithful
                {
                    headers.push(("ms-diagnostics", d.as_str()));
                }
                let r = self.respond(&m, status, reason, Some(&uas::to_tag()), &headers, b"");
                self.out.push(r);
            }
            Verdict::Accept { matched_target } => {
                tracing::info!(%matched_target, "federation rules pass");
                self.accepted(m, &method, call_id);
            }
        }
    }

    /// The federation rules for one request, with the SRV lookup between the two phases; logs and publishes.
    async fn decide(&mut self, m: &Message, method: &str, call_id: &str) -> Verdict {
        let pai_host = m.p_asserted_identities().ok().and_then(|p| {
            p.into_iter()
                .find(|n| matches!(n.uri.scheme.as_str(), "sip" | "sips"))
                .map(|n| n.uri.host())
        });
        let from_host = m.from().ok().map(|f| f.uri.host());
        let domain = policy::sender_domain(pai_host.as_deref(), from_host.as_deref());
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
        let mut facts = InboundFacts {
            method: method.to_string(),
            request_uri: text(m.request_uri_raw().unwrap_or_default()),
            call_id: call_id.to_string(),
            cseq,
            start_line: text(m.start_line()),
            sender_domain: domain.clone(),
            peer,
            srv: None,
            cert: &self.cert,
        };
        let verdict = match self.edge.policy.plan_inbound(&facts) {
            InboundPlan::Reject(v) => v,
            InboundPlan::UseFixedFqdn(_) => policy::decide_inbound(&facts, &self.edge.policy),
            InboundPlan::LookupSrv(name) => {
                let answer = self.edge.lookup.srv(&name).await;
                tracing::debug!(srv = %name, ?answer, "SRV lookup");
                facts.srv = Some(answer);
                policy::decide_inbound(&facts, &self.edge.policy)
            }
        };
        if let Some(record) = verdict.log() {
            self.edge.write_record(record, self.cid);
        }
        if let Some(x) = verdict.explanation() {
            tracing::warn!(status = ?verdict.status(), domain = ?domain, "{x}");
        }
        self.edge.publish(verdict.to_event(EventContext {
            time: time::OffsetDateTime::now_utc(),
            remote: remote_text(self.remote),
            peer_cert: self.cert_name.clone(),
            method: method.to_string(),
            call_id: call_id.to_string(),
            domain,
        }));
        verdict
    }

    /// A request the federation rules let through reaches the emulated users.
    fn accepted(&mut self, m: Message, method: &str, call_id: String) {
        let class = uas::classify(method);
        let r = match class {
            MethodClass::Invite => return self.invite(m, call_id),
            MethodClass::Ack => return self.ack(&call_id),
            MethodClass::Absorb => return,
            MethodClass::Bye => {
                let known = self
                    .dialogs
                    .get(&call_id)
                    .is_some_and(|d| matches!(d.state, State::Answered | State::Confirmed));
                if known {
                    self.dialogs.remove(&call_id);
                    self.respond(&m, 200, "OK", None, &[], b"")
                } else {
                    self.respond(
                        &m,
                        481,
                        "Call Leg/Transaction Does Not Exist",
                        Some(&uas::to_tag()),
                        &[],
                        b"",
                    )
                }
            }
            MethodClass::Cancel => return self.cancel(&m, &call_id),
            MethodClass::Options => self.respond(
                &m,
                200,
                "OK",
                Some(&uas::to_tag()),
                &[
                    ("Allow", uas::ALLOW),
                    ("Supported", uas::SUPPORTED),
                    ("Accept", "application/sdp"),
                ],
                b"",
            ),
            MethodClass::Ok200 => {
                if method == "MESSAGE" && !self.user_exists(&m) {
                    self.not_found(&m)
                } else {
                    self.respond(&m, 200, "OK", Some(&uas::to_tag()), &[], b"")
                }
            }
            MethodClass::NotAllowed => self.respond(
                &m,
                405,
                "Method Not Allowed",
                Some(&uas::to_tag()),
                &[("Allow", uas::ALLOW)],
                b"",
            ),
            MethodClass::NotImplemented => self.respond(
                &m,
                501,
                "Not Implemented",
                Some(&uas::to_tag()),
                &[("Allow", uas::ALLOW)],
                b"",
            ),
        };
        self.out.push(r);
    }

    fn user_exists(&self, m: &Message) -> bool {
        self.user(m).is_some()
    }

    fn user(&self, m: &Message) -> Option<crate::config::UserConfig> {
        let uri = m.request_uri().ok()?;
        uas::find_user(&self.edge.config.users, &uri, &self.edge.config.edge.domain)
    }

    /// 503 with `Retry-After` (seconds): a limit was reached, the peer may try again.
    fn unavailable(&self, m: &Message, retry_after: &str) -> Bytes {
        self.respond(
            m,
            503,
            "Service Unavailable",
            Some(&uas::to_tag()),
            &[("Retry-After", retry_after)],
            b"",
        )
    }

    fn not_found(&self, m: &Message) -> Bytes {
        let diag = MsDiagnostic::e4005().render();
        let headers: Vec<(&str, &str)> = if self.edge.policy.faithful {
            Vec::new()
        } else {
            vec![("ms-diagnostics", diag.as_str())]
        };
        self.respond(m, 404, "Not Found", Some(&uas::to_tag()), &headers, b"")
    }

    fn invite(&mut self, m: Message, call_id: String) {
        let in_dialog = m.to().ok().is_some_and(|t| t.tag().is_some());
        if in_dialog {
            // A re-INVITE (session refresh, hold): answer it within the dialog if we know it.
            let tag = self.dialogs.get(&call_id).map(|d| d.tag.clone());
            let r = match tag {
                Some(tag) => self.ok_with_sdp(&m, &tag),
                None => self.respond(
                    &m,
                    481,
                    "Call Leg/Transaction Does Not Exist",
                    Some(&uas::to_tag()),
                    &[],
                    b"",
                ),
            };
            self.out.push(r);
            return;
        }
        let Some(user) = self.user(&m) else {
            tracing::info!("unknown user: 404 / 4005");
            let r = self.not_found(&m);
            self.out.push(r);
            return;
        };
        if self.dialogs.len() >= MAX_DIALOGS {
            // A peer that never ACKs its failed calls must not grow the table without bound.
            self.dialogs.retain(|_, d| d.state != State::Terminated);
        }
        if self.dialogs.len() >= MAX_DIALOGS {
            tracing::warn!(max = MAX_DIALOGS, "too many calls on one connection: 503");
            let r = self.unavailable(&m, "5");
            self.out.push(r);
            return;
        }
        let tag = uas::to_tag();
        let immediate = match user.action {
            UserAction::Busy => Some((486, "Busy Here")),
            UserAction::Unavailable => Some((480, "Temporarily Unavailable")),
            _ => None,
        };
        if let Some((code, reason)) = immediate {
            let r = self.respond(&m, code, reason, Some(&tag), &[], b"");
            self.out.push(r);
            self.dialogs.insert(
                call_id,
                Dialog {
                    invite: m,
                    tag,
                    state: State::Terminated,
                    action: user.action,
                    hangup_after_ms: None,
                },
            );
            return;
        }
        let contact = self.contact(&user.user);
        let r = self.respond(
            &m,
            180,
            "Ringing",
            Some(&tag),
            &[("Contact", &contact)],
            b"",
        );
        self.out.push(r);
        if user.action != UserAction::RingForever {
            let tx = self.timers.clone();
            let id = call_id.clone();
            let ring = Duration::from_millis(user.ring_ms);
            tokio::spawn(async move {
                tokio::time::sleep(ring).await;
                let _ = tx.send(Timer::RingDone(id));
            });
        }
        self.dialogs.insert(
            call_id,
            Dialog {
                invite: m,
                tag,
                state: State::Ringing,
                action: user.action,
                hangup_after_ms: user.hangup_after_ms,
            },
        );
    }

    fn contact(&self, user: &str) -> String {
        let user = user
            .trim_start_matches("sips:")
            .trim_start_matches("sip:")
            .split('@')
            .next()
            .unwrap_or("user");
        format!(
            "<sip:{user}@{}:{};transport=tls>",
            self.edge.config.edge.fqdn,
            self.local.port()
        )
    }

    fn ok_with_sdp(&self, m: &Message, tag: &str) -> Bytes {
        let ip = self.local.ip().to_string();
        let sdp = uas::sdp_answer(m.body(), &ip);
        let user = m
            .request_uri()
            .ok()
            .and_then(|u| u.user)
            .unwrap_or_else(|| "user".into());
        let contact = self.contact(&user);
        self.respond(
            m,
            200,
            "OK",
            Some(tag),
            &[
                ("Contact", &contact),
                ("Allow", uas::ALLOW),
                ("Content-Type", "application/sdp"),
            ],
            sdp.as_bytes(),
        )
    }

    fn ack(&mut self, call_id: &str) {
        match self.dialogs.get_mut(call_id).map(|d| d.state) {
            Some(State::Answered) => {
                if let Some(d) = self.dialogs.get_mut(call_id) {
                    d.state = State::Confirmed;
                }
            }
            Some(State::Terminated) => {
                self.dialogs.remove(call_id);
            }
            _ => {}
        }
    }

    fn cancel(&mut self, m: &Message, call_id: &str) {
        let ringing = self
            .dialogs
            .get(call_id)
            .filter(|d| d.state == State::Ringing)
            .map(|d| (d.invite.clone(), d.tag.clone()));
        match ringing {
            Some((invite, tag)) => {
                let ok = self.respond(m, 200, "OK", Some(&tag), &[], b"");
                let terminated =
                    self.respond(&invite, 487, "Request Terminated", Some(&tag), &[], b"");
                self.out.push(ok);
                self.out.push(terminated);
                if let Some(d) = self.dialogs.get_mut(call_id) {
                    d.state = State::Terminated;
                }
            }
            None => {
                let r = self.respond(
                    m,
                    481,
                    "Call Leg/Transaction Does Not Exist",
                    Some(&uas::to_tag()),
                    &[],
                    b"",
                );
                self.out.push(r);
            }
        }
    }

    fn timer(&mut self, t: Timer) {
        match t {
            Timer::RingDone(call_id) => {
                let Some(d) = self.dialogs.get(&call_id) else {
                    return;
                };
                if d.state != State::Ringing {
                    return;
                }
                let (invite, tag, action, hangup) =
                    (d.invite.clone(), d.tag.clone(), d.action, d.hangup_after_ms);
                let (r, state) = match action {
                    UserAction::Decline => (
                        self.respond(&invite, 603, "Decline", Some(&tag), &[], b""),
                        State::Terminated,
                    ),
                    _ => (self.ok_with_sdp(&invite, &tag), State::Answered),
                };
                self.out.push(r);
                if let Some(d) = self.dialogs.get_mut(&call_id) {
                    d.state = state;
                }
                if state == State::Answered
                    && let Some(ms) = hangup
                {
                    let tx = self.timers.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        let _ = tx.send(Timer::Hangup(call_id));
                    });
                }
            }
            Timer::Hangup(call_id) => {
                let up = self
                    .dialogs
                    .get(&call_id)
                    .is_some_and(|d| matches!(d.state, State::Answered | State::Confirmed));
                if !up {
                    return;
                }
                if let Some(d) = self.dialogs.remove(&call_id) {
                    tracing::info!("hang-up timer: the Edge side ends the call with BYE");
                    if let Some(bye) = self.bye(&d) {
                        self.out.push(bye);
                    }
                }
            }
        }
    }

    /// A BYE from the emulated user within the dialog of `d` (UAS side: From/To swapped, route = Record-Route).
    fn bye(&self, d: &Dialog) -> Option<Bytes> {
        let inv = &d.invite;
        let target = inv
            .contacts()
            .ok()
            .and_then(|c| {
                c.into_iter().find_map(|c| match c {
                    sip::Contact::Addr(n) => Some(n.uri.as_str().to_string()),
                    sip::Contact::Star => None,
                })
            })
            .or_else(|| inv.from().ok().map(|f| f.uri.as_str().to_string()))?;
        let from = format!("<{}>;tag={}", inv.to().ok()?.uri.as_str(), d.tag);
        let to = text(inv.header(sip::HeaderKind::From)?.value().as_ref());
        let call_id = text(&inv.call_id().ok()?);
        let via = format!(
            "SIP/2.0/TLS {}:{};branch=z9hG4bK{}",
            self.local.ip(),
            self.local.port(),
            uas::hex(12)
        );
        let routes: Vec<String> = inv
            .values(sip::HeaderKind::RecordRoute)
            .iter()
            .map(|v| text(v))
            .collect();
        let mut b = sip::RequestBuilder::new("BYE", &target)
            .header("Via", &via)
            .header("Max-Forwards", "70")
            .header("From", &from)
            .header("To", &to)
            .header("Call-ID", &call_id)
            .header("CSeq", "1 BYE");
        for r in &routes {
            b = b.header("Route", r);
        }
        Some(
            b.header("User-Agent", &self.edge.config.edge.server_header)
                .build(),
        )
    }
}
