//! The one lab builder: a lab CA and the Edge's certificate, the embedded DNS server on 127.0.0.1:0 with a
//! resolver that asks only it, emulated Expressway-E servers, and an Edge served on 127.0.0.1:0 until stopped.
//! The integration tests (`tests/common`), the scenario runner and the load harness (`examples/bench_edge.rs`)
//! all build their labs from these parts, so a lab means the same thing everywhere.
//!
//! Everything binds loopback, port 0 unless the caller gives an address.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::dns::{DnsServer, FaultKind, HickoryLookup, RecordSpec, ResolverSettings, ZoneSet};
use crate::edge::{Edge, EdgeError, EdgeParts};
use crate::lab::peer::server::{PeerServer, PeerServerSpec};
use crate::pki::{IssuedCert, KeyType, LabCa, LeafSpec, PkiError, TrustAnchors};

/// Why a lab could not be built or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A certificate could not be issued.
    #[error("lab certificates: {0}")]
    Pki(#[from] PkiError),
    /// The DNS records do not form zones.
    #[error("lab DNS records: {0}")]
    Zones(#[from] crate::dns::ZoneError),
    /// The DNS server or a listener could not bind.
    #[error("cannot bind {what} on {addr}: {cause}")]
    Bind {
        /// What was to listen.
        what: &'static str,
        /// Where.
        addr: SocketAddr,
        /// The socket error.
        cause: std::io::Error,
    },
    /// The resolver could not be built.
    #[error("the Edge's resolver: {0}")]
    Resolver(#[from] crate::dns::ResolverError),
    /// The Edge did not start, or stopped with an error.
    #[error("the Edge: {0}")]
    Edge(#[from] EdgeError),
    /// The Edge did not stop in time.
    #[error("the Edge did not stop within {0:?}")]
    Stuck(Duration),
    /// The Edge's task panicked or was cancelled.
    #[error("the Edge task failed: {0}")]
    Task(String),
    /// The emulated Expressway-E's server did not start.
    #[error("the peer server: {0}")]
    Peer(String),
}

/// 127.0.0.1:0.
fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// The federation SRV record of `domain`: `_sipfederationtls._tcp.<domain>` → `target:port` (priority 10,
/// weight 10, TTL 60 s).
pub fn srv(domain: &str, target: &str, port: u16) -> RecordSpec {
    RecordSpec::Srv {
        name: crate::dns::federation_srv_name(domain),
        priority: 10,
        weight: 10,
        port,
        target: target.into(),
        ttl: 60,
    }
}

/// An A record of `name` at 127.0.0.1.
pub fn a(name: &str) -> RecordSpec {
    a_at(name, Ipv4Addr::LOCALHOST)
}

/// An A record of `name` at another loopback address (127.0.0.2 …), e.g. one where nothing listens.
pub fn a_at(name: &str, address: Ipv4Addr) -> RecordSpec {
    RecordSpec::A {
        name: name.into(),
        address,
        ttl: 60,
    }
}

/// A DNS fault (SERVFAIL, REFUSED or silence) for `name` and below.
pub fn fault(name: &str, kind: FaultKind) -> RecordSpec {
    RecordSpec::Fault {
        name: name.into(),
        kind,
    }
}

/// A lab CA and the Edge's certificate from it (ECDSA P-256: fast to issue).
pub struct LabCerts {
    /// The CA.
    pub ca: LabCa,
    /// The Edge's certificate.
    pub edge: IssuedCert,
    /// What the Edge trusts: the CA.
    pub anchors: TrustAnchors,
}

impl LabCerts {
    /// A CA named `ca_name` and a certificate for the Edge `edge_fqdn`.
    pub fn new(ca_name: &str, edge_fqdn: &str) -> Result<Self, LabError> {
        let ca = LabCa::generate(ca_name, KeyType::EcdsaP256)?;
        let edge = ca.issue(&LeafSpec::new(edge_fqdn))?;
        let anchors = TrustAnchors::from_certs(std::slice::from_ref(ca.cert_der()), ca_name)?;
        Ok(LabCerts { ca, edge, anchors })
    }

    /// A certificate from the lab CA.
    pub fn issue(&self, spec: &LeafSpec) -> Result<IssuedCert, LabError> {
        Ok(self.ca.issue(spec)?)
    }
}

/// The embedded DNS server on 127.0.0.1:0 and the resolver settings that ask only it.
pub struct LabDns {
    /// The running server.
    pub server: DnsServer,
}

impl LabDns {
    /// Serves `zones`.
    pub async fn start(zones: ZoneSet) -> Result<Self, LabError> {
        let addr = loopback();
        let server = DnsServer::bind(zones, addr)
            .await
            .map_err(|cause| LabError::Bind {
                what: "the lab's DNS server",
                addr,
                cause,
            })?;
        Ok(LabDns { server })
    }

    /// Serves `records` (zones inferred).
    pub async fn with_records(records: &[RecordSpec]) -> Result<Self, LabError> {
        Self::start(ZoneSet::from_records(records)?).await
    }

    /// Where it answers.
    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// A resolver that asks only this server: one attempt of `timeout_ms`, cache as given (0: none).
    pub fn lookup(
        &self,
        timeout_ms: u64,
        cache_max_entries: usize,
    ) -> Result<HickoryLookup, LabError> {
        Ok(resolver(self.addr(), timeout_ms, cache_max_entries)?)
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.server.shutdown().await;
    }
}

/// A resolver that asks only `server` (which may be a closed port, for "DNS down"): one attempt of `timeout_ms`,
/// a cache of `cache_max_entries` (0: none).
pub fn resolver(
    server: SocketAddr,
    timeout_ms: u64,
    cache_max_entries: usize,
) -> Result<HickoryLookup, crate::dns::ResolverError> {
    HickoryLookup::new(ResolverSettings {
        timeout_ms,
        attempts: 1,
        cache_max_entries,
        ..ResolverSettings::server(server)
    })
}

/// An Edge served by [`crate::edge::serve`] until [`RunningEdge::stop`].
pub struct RunningEdge {
    /// The Edge (events, log records, configuration).
    pub edge: Arc<Edge>,
    /// Where it listens.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), EdgeError>>,
}

impl RunningEdge {
    /// Builds the Edge from `parts` and serves it on 127.0.0.1:0.
    pub async fn start(parts: EdgeParts) -> Result<Self, LabError> {
        Self::start_on(parts, loopback()).await
    }

    /// Builds the Edge from `parts` and serves it on `listen`.
    pub async fn start_on(parts: EdgeParts, listen: SocketAddr) -> Result<Self, LabError> {
        Self::serve_on(parts, self::listen("the Edge", listen).await?)
    }

    /// Builds the Edge from `parts` and serves it on `listener` (bound first when the lab's DNS must name its
    /// port).
    pub fn serve_on(parts: EdgeParts, listener: TcpListener) -> Result<Self, LabError> {
        let edge = Arc::new(Edge::new(parts)?);
        let addr = listener.local_addr().map_err(|cause| LabError::Bind {
            what: "the Edge",
            addr: loopback(),
            cause,
        })?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(crate::edge::serve(listener, edge.clone(), shutdown.clone()));
        Ok(RunningEdge {
            edge,
            addr,
            shutdown,
            task,
        })
    }

    /// The shutdown token `serve` watches.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Stops the Edge and waits, at most `within`, for `serve` to return.
    pub async fn stop(self, within: Duration) -> Result<(), LabError> {
        self.shutdown.cancel();
        let ended = tokio::time::timeout(within, self.task)
            .await
            .map_err(|_| LabError::Stuck(within))?;
        served(ended)
    }

    /// Serves until the process ends (the load harness).
    pub async fn serve_forever(self) -> Result<(), LabError> {
        served(self.task.await)
    }
}

/// How `serve`'s task ended.
fn served(ended: Result<Result<(), EdgeError>, tokio::task::JoinError>) -> Result<(), LabError> {
    match ended {
        Ok(r) => Ok(r?),
        Err(join) => Err(LabError::Task(join.to_string())),
    }
}

/// A TCP listener on `addr` for `what`.
async fn listen(what: &'static str, addr: SocketAddr) -> Result<TcpListener, LabError> {
    TcpListener::bind(addr)
        .await
        .map_err(|cause| LabError::Bind { what, addr, cause })
}

/// An emulated Expressway-E server on 127.0.0.1:0 with `spec`.
pub async fn peer_server(spec: PeerServerSpec) -> Result<PeerServer, LabError> {
    let listener = listen("the peer server", loopback()).await?;
    PeerServer::start(listener, spec).map_err(|e| LabError::Peer(e.to_string()))
}

/// A port on 127.0.0.1 where nothing listens (bound, then closed).
pub async fn closed_port() -> Result<u16, LabError> {
    let l = listen("a probe socket", loopback()).await?;
    let port = l.local_addr().map(|a| a.port()).unwrap_or_default();
    drop(l);
    Ok(port)
}
