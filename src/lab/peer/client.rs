//! The emulated Expressway-E as a TLS SIP client: connects to an Edge with (or without) a client
//! certificate, sends Expressway-style requests and reads the answers.
//!
//! Everything here is real on the wire: TCP, TLS (tokio-rustls with [`pki::client_config`]) and SIP bytes.
//! With TLS 1.3 a server that refuses the client certificate does so after the client's `connect()` has
//! returned, so such a refusal surfaces on the first [`PeerClient::recv`] as [`PeerError::Handshake`].

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::pki;
use crate::sip::{self, Frame, Framer, Limits, ua};

/// Why talking to the Edge failed, in the terms a lab engineer uses.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Nothing listens at the address (TCP RST on connect).
    #[error("connection refused by {addr}")]
    ConnectRefused {
        /// The address dialled.
        addr: SocketAddr,
    },
    /// TCP connect failed for another reason (unreachable, ...).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address dialled.
        addr: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// The TLS handshake failed; `alert` is the TLS alert or rustls error text (e.g. `received fatal alert: CertificateRequired`).
    #[error("TLS handshake refused: {alert}")]
    Handshake {
        /// The alert or error text.
        alert: String,
    },
    /// The peer reset the connection (TCP RST) — how an Edge that refuses a certificate often looks.
    #[error("connection reset by the Edge")]
    Reset,
    /// Nothing arrived in time.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, &'static str),
    /// The Edge closed the connection before a final response.
    #[error("connection closed by the Edge")]
    Closed,
    /// The Edge sent bytes that are not a SIP response we can use.
    #[error("bad response from the Edge: {0}")]
    BadResponse(String),
    /// The TLS client configuration could not be built (bad identity).
    #[error("TLS client configuration: {0}")]
    Config(#[from] pki::PkiError),
    /// `server_name` is not a valid DNS name or IP address.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    /// Any other socket error.
    #[error("I/O error: {0}")]
    Io(io::Error),
}

/// Most bytes buffered while waiting for one message: bounds every read.
const MAX_BUFFER: usize = 256 * 1024;

/// A TLS SIP connection from the emulated Expressway-E to the Edge.
#[derive(Debug)]
pub struct PeerClient {
    stream: TlsStream<TcpStream>,
    buf: BytesMut,
    framer: Framer,
    local: SocketAddr,
    peer: SocketAddr,
}

/// Maps a socket or TLS error to what the lab engineer should read.
fn classify(e: io::Error) -> PeerError {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => return PeerError::Reset,
        io::ErrorKind::UnexpectedEof => return PeerError::Closed,
        _ => {}
    }
    // tokio-rustls wraps rustls errors (alerts included) as InvalidData with the rustls::Error inside.
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return PeerError::Handshake {
            alert: tls.to_string(),
        };
    }
    PeerError::Io(e)
}

impl PeerClient {
    /// Connects over TCP and completes the TLS handshake, presenting `identity` as client certificate.
    /// The server certificate is not judged here (the caller may read [`PeerClient::peer_chain`]).
    pub async fn connect(
        addr: SocketAddr,
        server_name: &str,
        identity: Option<&pki::TlsIdentity>,
        timeout: Duration,
    ) -> Result<PeerClient, PeerError> {
        let config = pki::client_config(identity)?;
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|_| PeerError::ServerName(server_name.to_string()))?;
        let work = async {
            let tcp = TcpStream::connect(addr).await.map_err(|e| match e.kind() {
                io::ErrorKind::ConnectionRefused => PeerError::ConnectRefused { addr },
                // Accepted and reset before connect() returned: a reset all the same.
                io::ErrorKind::ConnectionReset => PeerError::Reset,
                _ => PeerError::Connect { addr, source: e },
            })?;
            // SIP requests are small and latency matters more than throughput.
            let _ = tcp.set_nodelay(true);
            let local = tcp.local_addr().map_err(PeerError::Io)?;
            let stream = TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(classify)?;
            Ok::<_, PeerError>((stream, local))
        };
        let (stream, local) = tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| PeerError::Timeout(timeout, "TCP connect and TLS handshake"))??;
        Ok(PeerClient {
            stream,
            buf: BytesMut::with_capacity(8192),
            framer: Framer::new(Limits::default()),
            local,
            peer: addr,
        })
    }

    /// The local (source) address of the connection: the port the Edge reports in `ms-received-port`.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The Edge's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The certificate chain the Edge presented (leaf first).
    pub fn peer_chain(&self) -> Vec<rustls_pki_types::CertificateDer<'static>> {
        pki::peer_chain(self.stream.get_ref().1)
    }

    /// Negotiated TLS version, e.g. `TLSv1_3`.
    pub fn tls_version(&self) -> Option<String> {
        self.stream
            .get_ref()
            .1
            .protocol_version()
            .map(|v| format!("{v:?}"))
    }

    /// Writes raw bytes (a request, garbage, a keep-alive...) and flushes.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), PeerError> {
        self.stream.write_all(bytes).await.map_err(classify)?;
        self.stream.flush().await.map_err(classify)
    }

    /// Reads the next SIP message. `Ok(None)`: the Edge closed the connection (cleanly or by reset
    /// after a refusal that carried no alert). Keep-alive CRLFs are skipped.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Option<sip::Message>, PeerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.framer.decode(&mut self.buf) {
                Ok(Some(Frame::Message(m))) => return Ok(Some(m)),
                Ok(Some(Frame::Ping | Frame::Pong)) => continue,
                Ok(Some(Frame::Invalid { error, .. })) => {
                    return Err(PeerError::BadResponse(error.to_string()));
                }
                Ok(None) => {}
                Err(e) => return Err(PeerError::BadResponse(e.to_string())),
            }
            if self.buf.len() > MAX_BUFFER {
                return Err(PeerError::BadResponse("message too large".into()));
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await;
            match read {
                Err(_) => return Err(PeerError::Timeout(timeout, "a SIP message")),
                Ok(Ok(0)) => return Ok(None),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => match classify(e) {
                    PeerError::Closed => return Ok(None),
                    other => return Err(other),
                },
            }
        }
    }

    /// Sends a request and returns its final response, skipping provisional (1xx) ones.
    pub async fn request(
        &mut self,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<sip::Message, PeerError> {
        self.send(bytes).await?;
        self.final_response(timeout).await
    }

    /// Reads until a final (>= 200) response; requests the Edge sends meanwhile are skipped.
    pub async fn final_response(&mut self, timeout: Duration) -> Result<sip::Message, PeerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(m) = self.recv(left).await? else {
                return Err(PeerError::Closed);
            };
            if m.status_code().is_some_and(|c| c >= 200) {
                return Ok(m);
            }
        }
    }

    /// Reads until the Edge sends a request (NOTIFY, BENOTIFY, MESSAGE, BYE); responses meanwhile are
    /// skipped. `Err(Closed)` when the connection ends first.
    pub async fn next_request(&mut self, timeout: Duration) -> Result<sip::Message, PeerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(m) = self.recv(left).await? else {
                return Err(PeerError::Closed);
            };
            if m.is_request() {
                return Ok(m);
            }
        }
    }

    /// Answers a request the Edge sent in a dialog (a NOTIFY, an IM reply, a BYE) with `code`, as the
    /// Expressway relays its client's answer. A BENOTIFY is never answered (MS-SIP §4.4): nothing is sent.
    pub async fn answer(&mut self, req: &sip::Message, code: u16) -> Result<(), PeerError> {
        if req.method() == Some(b"BENOTIFY") {
            return Ok(());
        }
        let r = sip::ResponseBuilder::from_request(req, code, ua::reason_phrase(code))
            .header("User-Agent", "TANDBERG/4352 (X14.3.1)")
            .build();
        self.send(&r).await
    }

    /// Closes the TLS session (close_notify) and the socket.
    pub async fn close(mut self) {
        let _ = self.stream.shutdown().await;
    }
}

/// One address a failover walk tried ([`request_with_srv_failover`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverAttempt {
    /// The SRV target, e.g. `sip1.skype.lab`.
    pub target: String,
    /// The address dialled.
    pub addr: SocketAddr,
    /// The final status, when one came.
    pub status: Option<u16>,
    /// What happened, in words: `200 OK`, `503 Service Unavailable`, or the [`PeerError`].
    pub outcome: String,
}

/// Where a failover walk ended: the connection that gave a final answer other than 503 (with that answer), and
/// every address tried, in order.
#[derive(Debug)]
pub struct Failover {
    /// The answering connection and its final response; `None` when every address failed.
    pub answered: Option<(PeerClient, sip::Message)>,
    /// Every address tried, in order (the answering one last).
    pub attempts: Vec<FailoverAttempt>,
}

/// The Expressway-E reaching a federated domain through DNS, as RFC 3263 §4.3 has a SIP client do it: resolves
/// `_sipfederationtls._tcp.<domain>` with `lookup`, takes the targets by priority (lower first; within one
/// priority the higher weight first, so that a lab run is repeatable where RFC 2782 would draw by weight), each
/// target's addresses in the order DNS gives them, and sends `request` (with a new Via branch per attempt) until
/// a final response other than 503 arrives. A refused or reset connection, a refused TLS handshake, a timeout
/// (`timeout` for the connection and for the answer each) and a 503 all move to the next address. `Err` only
/// when the SRV lookup itself fails; a target whose addresses do not resolve is an attempt with no address.
pub async fn request_with_srv_failover(
    lookup: &dyn crate::dns::Lookup,
    domain: &str,
    identity: Option<&pki::TlsIdentity>,
    request: &ExpresswayRequest,
    timeout: Duration,
) -> Result<Failover, crate::dns::DnsFailure> {
    let mut targets = lookup.srv(&crate::dns::federation_srv_name(domain)).await?;
    // "." (stored as empty) is RFC 2782's "decidedly not available": nothing to try.
    targets.retain(|t| !t.target.is_empty());
    targets.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
    let mut attempts = Vec::new();
    for srv in targets {
        let addrs = match lookup.addrs(&srv.target).await {
            Ok(a) => a,
            Err(e) => {
                attempts.push(FailoverAttempt {
                    target: srv.target.clone(),
                    addr: SocketAddr::from(([0, 0, 0, 0], srv.port)),
                    status: None,
                    outcome: format!("no address: {e}"),
                });
                continue;
            }
        };
        for ip in addrs {
            let addr = SocketAddr::new(ip, srv.port);
            let mut req = request.clone();
            req.branch = ua::branch_id();
            let tried = async {
                let mut c = PeerClient::connect(addr, &srv.target, identity, timeout).await?;
                let answer = c.request(&req.build(), timeout).await?;
                Ok::<_, PeerError>((c, answer))
            }
            .await;
            let (status, outcome) = match &tried {
                Ok((_, m)) => {
                    let code = m.status_code().unwrap_or_default();
                    let reason = m.reason().map(text_of).unwrap_or_default();
                    (Some(code), format!("{code} {reason}"))
                }
                Err(e) => (None, e.to_string()),
            };
            attempts.push(FailoverAttempt {
                target: srv.target.clone(),
                addr,
                status,
                outcome,
            });
            match tried {
                Ok((c, m)) if m.status_code() != Some(503) => {
                    return Ok(Failover {
                        answered: Some((c, m)),
                        attempts,
                    });
                }
                Ok((c, _)) => c.close().await,
                Err(_) => {}
            }
        }
    }
    Ok(Failover {
        answered: None,
        attempts,
    })
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A request as a Cisco Expressway-E sends it from its DNS zone to a federated Microsoft Edge.
#[derive(Debug, Clone)]
pub struct ExpresswayRequest {
    /// `INVITE`, `OPTIONS`, `MESSAGE`, `BYE`, ...
    pub method: String,
    /// e.g. `sip:stejanss@skype.lab`
    pub request_uri: String,
    /// From URI, e.g. `sip:2000@acano.steven.lab`.
    pub from: String,
    /// From display name.
    pub from_display: Option<String>,
    /// From tag.
    pub from_tag: String,
    /// To URI.
    pub to: String,
    /// To tag (in-dialog requests).
    pub to_tag: Option<String>,
    /// P-Asserted-Identity URI, if any.
    pub pai: Option<String>,
    /// Call-ID.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// Expressway-E address in the top Via and Contact (e.g. `10.48.36.47`).
    pub via_host: String,
    /// Top Via branch (without the `z9hG4bK` magic cookie added).
    pub branch: String,
    /// The Expressway's `proxy-call-id` on the top Via (kept so a CANCEL repeats the INVITE's Via exactly).
    pub proxy_call_id: String,
    /// The second Via (the hop from the Expressway-C over the traversal zone), without `Via: `.
    pub second_via: String,
    /// Body (Content-Type given by `content_type`); for INVITE defaults to an SDP offer when `None`.
    pub body: Option<Bytes>,
    /// Content-Type of `body`.
    pub content_type: Option<String>,
    /// Extra headers appended before Content-Length.
    pub extra_headers: Vec<(String, String)>,
}

impl ExpresswayRequest {
    /// A request with fresh Call-ID, tag and branch, as `vcse` at 10.48.36.47 would send it.
    pub fn new(method: &str, from: &str, to: &str) -> ExpresswayRequest {
        ExpresswayRequest {
            method: method.to_string(),
            request_uri: to.to_string(),
            from: from.to_string(),
            from_display: None,
            from_tag: ua::expressway_tag(),
            to: to.to_string(),
            to_tag: None,
            pai: None,
            call_id: ua::uuid(),
            cseq: 1,
            via_host: "10.48.36.47".to_string(),
            branch: ua::branch_id(),
            proxy_call_id: ua::uuid(),
            // The hop from the Expressway-C over the traversal zone, as the seed trace shows it.
            second_via: format!(
                "SIP/2.0/TLS 10.48.36.46:5061;egress-zone=TraversalZoneClient1;branch=z9hG4bK{};proxy-call-id={};received=10.48.36.46;rport=28119;ingress-zone=TraversalZoneServer1",
                ua::branch_id(),
                ua::uuid()
            ),
            body: None,
            content_type: None,
            extra_headers: Vec::new(),
        }
    }

    /// A presence SUBSCRIBE (`Event: presence`) with `options`' Accept, Supported and Expires, as a Cisco
    /// IM and Presence server sends it through the Expressway.
    pub fn subscribe(
        from: &str,
        to: &str,
        options: &crate::presence::client::SubscribeOptions,
    ) -> ExpresswayRequest {
        let mut r = ExpresswayRequest::new("SUBSCRIBE", from, to);
        r.extra_headers = options
            .headers()
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
        r
    }

    /// A session-mode IM INVITE (`m=message … sip null`) with `first` embedded in `ms-text-format`, as a
    /// Skype for Business client sends it.
    pub fn im_invite(from: &str, to: &str, first: Option<&str>) -> ExpresswayRequest {
        let mut r = ExpresswayRequest::new("INVITE", from, to);
        r.extra_headers = crate::im::invite_headers(first, &ua::uuid())
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
        r.body = Some(Bytes::from(crate::im::sdp::offer(&r.via_host, 5061)));
        r.content_type = Some("application/sdp".into());
        r
    }

    /// An in-dialog MESSAGE of `text` (plain, UTF-8) after this request's INVITE was answered with `to_tag`.
    pub fn im_message(&self, to_tag: &str, text: &str) -> ExpresswayRequest {
        let mut r = self.follow_up("MESSAGE", Some(to_tag));
        r.extra_headers.clear();
        r.body = Some(Bytes::from(text.to_owned()));
        r.content_type = Some(crate::im::message::TEXT_PLAIN_UTF8.into());
        r
    }

    /// Sets the P-Asserted-Identity URI.
    pub fn pai(mut self, uri: &str) -> Self {
        self.pai = Some(uri.to_string());
        self
    }

    /// The same request as another method in the same transaction or dialog: `ACK`/`BYE` within the dialog
    /// (give the To tag from the answer; BYE takes the next CSeq and a new branch), `CANCEL` (same branch and CSeq).
    pub fn follow_up(&self, method: &str, to_tag: Option<&str>) -> ExpresswayRequest {
        let mut r = self.clone();
        r.method = method.to_string();
        r.body = Some(Bytes::new());
        r.content_type = None;
        if let Some(t) = to_tag {
            r.to_tag = Some(t.to_string());
        }
        match method {
            "CANCEL" => {}
            // ACK of a 2xx is a new transaction; ACK of a non-2xx reuses the INVITE's branch.
            "ACK" if to_tag.is_some() => r.branch = ua::branch_id(),
            "ACK" => {}
            _ => {
                r.cseq = self.cseq.saturating_add(1);
                r.branch = ua::branch_id();
            }
        }
        r
    }

    /// The default SDP offer (audio, SRTP, as in the seed trace).
    pub fn sdp_offer(host: &str) -> String {
        ua::expressway_sdp_offer(host)
    }

    /// Serializes the request in the Expressway-E's header order.
    pub fn build(&self) -> Bytes {
        let top_via = format!(
            "SIP/2.0/TLS {}:5061;egress-zone=DNSZone;branch=z9hG4bK{};proxy-call-id={};rport",
            self.via_host, self.branch, self.proxy_call_id
        );
        let from = match &self.from_display {
            Some(d) => format!("\"{d}\" <{}>;tag={}", self.from, self.from_tag),
            None => format!("<{}>;tag={}", self.from, self.from_tag),
        };
        let to = match &self.to_tag {
            Some(t) => format!("<{}>;tag={t}", self.to),
            None => format!("<{}>", self.to),
        };
        let cseq = format!("{} {}", self.cseq, self.method);
        let user = self
            .from
            .split_once(':')
            .map(|(_, r)| r.split('@').next().unwrap_or(r))
            .unwrap_or("expressway");
        let contact = format!("<sip:{user}@{}:5061;transport=tls>", self.via_host);
        let pai = self.pai.as_ref().map(|p| format!("<{p}>"));
        let default_sdp;
        let (body, ctype): (&[u8], Option<&str>) = match (&self.body, self.method.as_str()) {
            (Some(b), _) => (b, self.content_type.as_deref()),
            (None, "INVITE") => {
                default_sdp = Self::sdp_offer(&self.via_host);
                (default_sdp.as_bytes(), Some("application/sdp"))
            }
            (None, _) => (b"", None),
        };
        let mut b = sip::RequestBuilder::new(&self.method, &self.request_uri)
            .header("Via", &top_via)
            .header("Via", &self.second_via)
            .header("Call-ID", &self.call_id)
            .header("CSeq", &cseq)
            .header("Contact", &contact)
            .header("From", &from)
            .header("To", &to)
            .header("Max-Forwards", "70");
        if let Some(p) = &pai {
            b = b.header("P-Asserted-Identity", p);
        }
        b = b
            .header(
                "Allow",
                "INVITE,ACK,CANCEL,OPTIONS,BYE,INFO,REFER,NOTIFY,MESSAGE,SUBSCRIBE",
            )
            .header("Supported", "replaces,timer,gruu")
            .header("User-Agent", "TANDBERG/4352 (X14.3.1)");
        for (n, v) in &self.extra_headers {
            b = b.header(n, v);
        }
        if let Some(ct) = ctype {
            b = b.header("Content-Type", ct);
        }
        b.body(body).build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_parses_and_carries_expressway_headers() {
        let req = ExpresswayRequest::new(
            "INVITE",
            "sip:2000@acano.steven.lab",
            "sip:stejanss@skype.lab",
        )
        .pai("sip:2000@acano.steven.lab")
        .build();
        let m = sip::Message::parse(req).unwrap();
        m.validate().unwrap();
        let vias = m.vias().unwrap();
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[0].param("egress-zone"), Some(Some("DNSZone")));
        assert_eq!(vias[0].rport(), Some(None));
        assert!(vias[0].branch().unwrap().starts_with("z9hG4bK"));
        assert_eq!(m.p_asserted_identities().unwrap().len(), 1);
        assert!(m.body().starts_with(b"v=0"));
        assert_eq!(m.cseq().unwrap().seq, 1);
    }

    #[test]
    fn cancel_repeats_the_invite_vias_and_bye_moves_on() {
        let inv = ExpresswayRequest::new("INVITE", "sip:2000@acano.steven.lab", "sip:a@skype.lab");
        let via = |r: &ExpresswayRequest| {
            let m = sip::Message::parse(r.build()).unwrap();
            (
                m.values(sip::HeaderKind::Via)
                    .iter()
                    .map(|v| v.to_vec())
                    .collect::<Vec<_>>(),
                m.cseq().unwrap(),
            )
        };
        let (v0, c0) = via(&inv);
        let (v1, c1) = via(&inv.follow_up("CANCEL", None));
        assert_eq!((v0.clone(), c0.seq), (v1, c1.seq));
        assert_eq!(c1.method, "CANCEL");
        let bye = inv.follow_up("BYE", Some("T"));
        let (v2, c2) = via(&bye);
        assert_ne!(v0[0], v2[0]);
        assert_eq!(c2.seq, 2);
        assert!(sip::Message::parse(bye.build()).unwrap().body().is_empty());
    }
}
