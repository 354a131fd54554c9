//! The emulated Expressway-E as a TLS SIP server: what the Edge's outbound calls reach.
//!
//! The caller binds the listener (port 0 in tests) and chooses the certificate chain, whether a client
//! certificate is required, the TLS versions and how the "Expressway" answers. Everything the server saw
//! (requests, client chains, SNI) is recorded for assertions. Reads are bounded by the SIP framer's limits
//! and an idle timeout, so a misbehaving client cannot hold it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use rustls::{DistinguishedName, ServerConfig};
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::pki::{self, ClientAuthMode, PkiError, TlsIdentity, TrustAnchors, Usage, peer_chain};
use crate::sip::{Frame, Framer, Message, ResponseBuilder, ua};

/// How the emulated Expressway-E treats a connection and the requests on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerBehaviour {
    /// Completes TLS and answers INVITE (and other requests) with this status and reason: 100 Trying, then
    /// 180 Ringing and a 200 with an SDP answer for a 2xx, or the failure alone. OPTIONS get 200; BYE 200.
    Answer(u16, String),
    /// Like [`PeerBehaviour::Answer`], with this `ms-diagnostics` header value on the final response.
    AnswerWithDiagnostics(u16, String),
    /// Reads the ClientHello, then resets the TCP connection (RST): an Edge that does not trust the client.
    ResetHandshake,
    /// Completes TLS, then closes the connection without reading a request.
    CloseAfterHandshake,
    /// Completes TLS, records requests, never answers.
    Silent,
}

/// Which TLS versions the emulated server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerTlsVersions {
    /// TLS 1.2 and 1.3.
    #[default]
    Both,
    /// TLS 1.2 only (what SfB-era Windows servers do).
    Tls12Only,
    /// TLS 1.3 only.
    Tls13Only,
}

/// Everything that shapes one emulated Expressway-E server.
#[derive(Debug, Clone)]
pub struct PeerServerSpec {
    /// The server certificate chain (leaf first) and key.
    pub identity: TlsIdentity,
    /// What to do on each connection.
    pub behaviour: PeerBehaviour,
    /// Whether a client certificate is requested / required (Expressway-E: required on its MTLS port).
    pub client_auth: ClientAuthMode,
    /// CA subjects for the CertificateRequest (may be empty).
    pub ca_hints: Vec<DistinguishedName>,
    /// When set, the handshake refuses a client chain these CAs do not validate for clientAuth (a TLS alert,
    /// like an Expressway-E that does not trust the Edge's CA); otherwise any client chain is accepted.
    pub client_trust: Option<Arc<TrustAnchors>>,
    /// TLS versions offered.
    pub tls_versions: PeerTlsVersions,
    /// `Server:` header on responses.
    pub server_header: String,
    /// A connection with no complete message for this long is closed.
    pub idle_timeout: Duration,
}

impl PeerServerSpec {
    /// An Expressway-E with `identity` and `behaviour`: client certificate required, TLS 1.2 + 1.3.
    pub fn new(identity: TlsIdentity, behaviour: PeerBehaviour) -> Self {
        PeerServerSpec {
            identity,
            behaviour,
            client_auth: ClientAuthMode::Required,
            ca_hints: Vec::new(),
            client_trust: None,
            tls_versions: PeerTlsVersions::Both,
            server_header: "TANDBERG/4352 (X15.2.0)".to_string(),
            idle_timeout: Duration::from_secs(30),
        }
    }

    /// Sets whether a client certificate is asked for.
    pub fn client_auth(mut self, mode: ClientAuthMode) -> Self {
        self.client_auth = mode;
        self
    }

    /// Refuses, in the handshake, client chains that `anchors` do not validate for clientAuth.
    pub fn trust_clients(mut self, anchors: TrustAnchors) -> Self {
        self.ca_hints = anchors.hints();
        self.client_trust = Some(Arc::new(anchors));
        self
    }

    /// Restricts the TLS versions offered.
    pub fn tls_versions(mut self, versions: PeerTlsVersions) -> Self {
        self.tls_versions = versions;
        self
    }
}

/// One accepted connection as the server saw it.
#[derive(Debug, Clone, Default)]
pub struct SeenConnection {
    /// The client's address.
    pub remote: Option<SocketAddr>,
    /// SNI sent by the client (`None` when absent or the handshake did not get that far).
    pub sni: Option<String>,
    /// The client certificate chain (leaf first); empty when none was presented.
    pub client_chain: Vec<CertificateDer<'static>>,
    /// Negotiated TLS version, e.g. `TLSv1_3`.
    pub tls_version: Option<String>,
    /// Whether the TLS handshake completed.
    pub handshake_ok: bool,
}

#[derive(Debug, Default)]
struct Seen {
    requests: Vec<Message>,
    connections: Vec<SeenConnection>,
}

#[derive(Debug, Default)]
struct Shared {
    seen: Mutex<Seen>,
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Seen> {
        // A panicking connection task must not hide what was recorded before it.
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why a peer server could not start.
#[derive(Debug, thiserror::Error)]
pub enum PeerServerError {
    #[error("peer server TLS configuration: {0}")]
    Pki(#[from] PkiError),
    #[error("peer server listener: {0}")]
    Io(#[from] std::io::Error),
}

/// A running emulated Expressway-E TLS SIP server.
#[derive(Debug)]
pub struct PeerServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl PeerServer {
    /// Starts serving on `listener` (bound by the caller) in the current tokio runtime.
    pub fn start(
        listener: TcpListener,
        spec: PeerServerSpec,
    ) -> Result<PeerServer, PeerServerError> {
        let addr = listener.local_addr()?;
        let config = tls_config(&spec)?;
        let shared = Arc::new(Shared::default());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::new(spec),
            config,
            shared.clone(),
            cancel.clone(),
        ));
        Ok(PeerServer {
            addr,
            shared,
            cancel,
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order.
    pub fn received(&self) -> Vec<Message> {
        self.shared.lock().requests.clone()
    }

    /// Methods of the requests received so far, e.g. `["INVITE", "ACK", "BYE"]`.
    pub fn received_methods(&self) -> Vec<String> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter_map(|m| m.method().map(|b| String::from_utf8_lossy(b).into_owned()))
            .collect()
    }

    /// Every connection accepted so far (SNI, client chain, TLS version).
    pub fn connections(&self) -> Vec<SeenConnection> {
        self.shared.lock().connections.clone()
    }

    /// The client certificate chains seen, one per completed handshake.
    pub fn client_chains(&self) -> Vec<Vec<CertificateDer<'static>>> {
        self.connections()
            .into_iter()
            .filter(|c| c.handshake_ok)
            .map(|c| c.client_chain)
            .collect()
    }

    /// Waits until a request with `method` has been received, up to `timeout`; returns whether it was.
    pub async fn wait_for(&self, method: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            if self
                .received_methods()
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method))
            {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Waits until at least `n` connections have been recorded (handshake done or failed), up to `timeout`.
    pub async fn wait_connections(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            if self.shared.lock().connections.len() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Stops accepting, closes every connection and waits for the tasks to end.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn tls_config(spec: &PeerServerSpec) -> Result<Arc<ServerConfig>, PkiError> {
    use rustls::version::{TLS12, TLS13};
    let versions: &[&rustls::SupportedProtocolVersion] = match spec.tls_versions {
        PeerTlsVersions::Both => &[&TLS13, &TLS12],
        PeerTlsVersions::Tls12Only => &[&TLS12],
        PeerTlsVersions::Tls13Only => &[&TLS13],
    };
    // Both configs refuse resumption: every connection must show its certificate.
    match (spec.client_auth, &spec.client_trust) {
        (ClientAuthMode::None, _) | (_, None) => pki::server_config_with_versions(
            &spec.identity,
            spec.client_auth,
            spec.ca_hints.clone(),
            versions,
        ),
        (_, Some(anchors)) => super::strict::strict_server_config_with_versions(
            &spec.identity,
            anchors.clone(),
            Usage::ClientAuth,
            versions,
        ),
    }
}

async fn accept_loop(
    listener: TcpListener,
    spec: Arc<PeerServerSpec>,
    config: Arc<ServerConfig>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => {
                let Ok((tcp, remote)) = accepted else {
                    // e.g. out of file descriptors: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (spec, config, shared, cancel) =
                    (spec.clone(), config.clone(), shared.clone(), cancel.clone());
                tasks.spawn(async move {
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = connection(tcp, remote, &spec, config, &shared) => {}
                    }
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.shutdown().await;
}

fn record_connection(shared: &Shared, seen: SeenConnection) {
    shared.lock().connections.push(seen);
    shared.changed.notify_waiters();
}

async fn connection(
    tcp: TcpStream,
    remote: SocketAddr,
    spec: &PeerServerSpec,
    config: Arc<ServerConfig>,
    shared: &Shared,
) {
    let mut seen = SeenConnection {
        remote: Some(remote),
        ..SeenConnection::default()
    };
    if spec.behaviour == PeerBehaviour::ResetHandshake {
        reset_during_handshake(tcp, spec.idle_timeout).await;
        record_connection(shared, seen);
        return;
    }
    let acceptor = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
    let Ok(Ok(start)) = tokio::time::timeout(spec.idle_timeout, acceptor).await else {
        record_connection(shared, seen);
        return;
    };
    seen.sni = start.client_hello().server_name().map(str::to_string);
    let tls = match tokio::time::timeout(spec.idle_timeout, start.into_stream(config)).await {
        Ok(Ok(tls)) => tls,
        _ => {
            record_connection(shared, seen);
            return;
        }
    };
    {
        let (_, conn) = tls.get_ref();
        seen.client_chain = peer_chain(conn);
        seen.tls_version = conn.protocol_version().map(|v| format!("{v:?}"));
        seen.handshake_ok = true;
    }
    record_connection(shared, seen);
    if spec.behaviour == PeerBehaviour::CloseAfterHandshake {
        let mut tls = tls;
        let _ = tls.shutdown().await;
        return;
    }
    serve_sip(tls, spec, shared).await;
}

/// Waits for the ClientHello's first bytes, then closes with SO_LINGER 0 so the client gets an RST.
async fn reset_during_handshake(mut tcp: TcpStream, timeout: Duration) {
    let mut buf = [0u8; 512];
    let _ = tokio::time::timeout(timeout, tcp.read(&mut buf)).await;
    // Linger 0 makes the close an RST and never blocks (the deprecation is about non-zero linger).
    #[allow(deprecated)]
    let _ = tcp.set_linger(Some(Duration::ZERO));
    drop(tcp);
}

async fn serve_sip<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    spec: &PeerServerSpec,
    shared: &Shared,
) {
    let mut framer = Framer::default();
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let to_tag = ua::expressway_tag();
    loop {
        let frame = match framer.decode(&mut buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                match tokio::time::timeout(spec.idle_timeout, stream.read_buf(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => continue,
                    _ => return,
                }
            }
            Err(_) => return,
        };
        let msg = match frame {
            Frame::Message(m) if m.is_request() => m,
            Frame::Ping => {
                if stream.write_all(b"\r\n").await.is_err() {
                    return;
                }
                continue;
            }
            _ => continue,
        };
        shared.lock().requests.push(msg.clone());
        shared.changed.notify_waiters();
        for response in responses(&msg, spec, &to_tag) {
            if stream.write_all(&response).await.is_err() {
                return;
            }
        }
    }
}

fn responses(req: &Message, spec: &PeerServerSpec, to_tag: &str) -> Vec<bytes::Bytes> {
    let method = req.method().unwrap_or_default().to_ascii_uppercase();
    let server = spec.server_header.as_str();
    let simple = |code: u16, reason: &str| {
        ResponseBuilder::from_request(req, code, reason)
            .to_tag(to_tag)
            .header("Server", server)
            .build()
    };
    let (code, reason, diag) = match &spec.behaviour {
        PeerBehaviour::Answer(code, reason) => (*code, reason.as_str(), None),
        PeerBehaviour::AnswerWithDiagnostics(code, header) => {
            (*code, ua::reason_phrase(*code), Some(header.as_str()))
        }
        _ => return Vec::new(),
    };
    match method.as_slice() {
        b"ACK" => Vec::new(),
        b"OPTIONS" | b"BYE" | b"CANCEL" => vec![simple(200, "OK")],
        b"INVITE" => {
            let mut out = vec![
                ResponseBuilder::from_request(req, 100, "Trying")
                    .header("Server", server)
                    .build(),
            ];
            if (200..300).contains(&code) {
                out.push(simple(180, "Ringing"));
                let contact = format!("<sip:{}>", req_host(req));
                out.push(
                    ResponseBuilder::from_request(req, code, reason)
                        .to_tag(to_tag)
                        .header("Contact", &contact)
                        .header("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE")
                        .header("Server", server)
                        .header("Content-Type", "application/sdp")
                        .body(ua::EXPRESSWAY_SDP_ANSWER.as_bytes())
                        .build(),
                );
            } else {
                out.push(final_failure(req, code, reason, diag, server, to_tag));
            }
            out
        }
        _ => vec![final_failure(req, code, reason, diag, server, to_tag)],
    }
}

fn final_failure(
    req: &Message,
    code: u16,
    reason: &str,
    diag: Option<&str>,
    server: &str,
    to_tag: &str,
) -> bytes::Bytes {
    let mut b = ResponseBuilder::from_request(req, code, reason).to_tag(to_tag);
    if let Some(d) = diag {
        b = b.header("ms-diagnostics", d);
    }
    b.header("Server", server).build()
}

fn req_host(req: &Message) -> String {
    req.request_uri()
        .map(|u| u.host())
        .unwrap_or_else(|_| "expressway".to_string())
}
