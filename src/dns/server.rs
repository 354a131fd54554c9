//! The embedded authoritative DNS server: a [`ZoneSet`] served over UDP and TCP on sockets the caller binds,
//! with fault injection (SERVFAIL, REFUSED, silence) per name. A query for a name in no served zone is
//! answered REFUSED and logged (warn) with the zones served, so a resolver pointed at the wrong server shows
//! up in the log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, ResponseCode};
use hickory_proto::rr::{LowerName, Name};
use hickory_resolver::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::Server;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, MessageResponseBuilder, ZoneType};
use tokio::net::{TcpListener, UdpSocket};

pub use super::edge::{EdgeRecord, EdgeRecords, PoolMemberRecord};
pub use super::zones::{
    BuiltZone, DEFAULT_NEGATIVE_TTL, DEFAULT_TTL, DnsZonesConfig, FaultKind, RecordSpec, Zone,
    ZoneError, ZoneSet,
};

/// The authoritative catalog of `zones`.
fn catalog(zones: &ZoneSet) -> Catalog {
    let mut catalog = Catalog::new();
    for zone in zones.zones() {
        let mut handler = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
            zone.origin.clone(),
            ZoneType::Primary,
            AxfrPolicy::Deny,
        );
        for record in zone.records {
            handler.upsert_mut(record, 1);
        }
        catalog.upsert(LowerName::from(zone.origin), vec![Arc::new(handler)]);
    }
    catalog
}

/// The request handler: faults first, then the authoritative catalog (REFUSED for zones not served).
struct FaultyCatalog {
    catalog: Catalog,
    faults: Vec<(Name, FaultKind)>,
    queries: Arc<AtomicU64>,
    /// The zones served, for the log line about a query outside all of them.
    origins: Vec<Name>,
    /// The same, as text: `steven.lab., skype.lab.` or `none`.
    origins_text: String,
}

impl FaultyCatalog {
    /// Logs a query for a name in no served zone (the catalog answers it REFUSED).
    fn note_unserved(&self, request: &Request) {
        let Ok(info) = request.request_info() else {
            return;
        };
        let name = Name::from(info.query.name());
        if self.origins.iter().any(|o| o.zone_of(&name)) {
            return;
        }
        tracing::warn!(
            query = %name,
            qtype = %info.query.query_type(),
            from = %info.src,
            "DNS query for a name in no zone this server serves: answered REFUSED (zones served: {})",
            self.origins_text
        );
    }
}

#[async_trait::async_trait]
impl RequestHandler for FaultyCatalog {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let fault = request.request_info().ok().and_then(|info| {
            let name = Name::from(info.query.name());
            self.faults
                .iter()
                .filter(|(f, _)| f.zone_of(&name))
                .max_by_key(|(f, _)| f.num_labels())
                .map(|(_, kind)| *kind)
        });
        let code = match fault {
            None => {
                self.note_unserved(request);
                return self
                    .catalog
                    .handle_request::<R, T>(request, response_handle)
                    .await;
            }
            Some(FaultKind::Servfail) => ResponseCode::ServFail,
            Some(FaultKind::Refused) => ResponseCode::Refused,
            Some(FaultKind::Drop) => {
                // Send nothing; the header is only what the server records about this request.
                let metadata = Metadata::new(
                    request.metadata.id,
                    MessageType::Response,
                    request.metadata.op_code,
                );
                return ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                });
            }
        };
        let response =
            MessageResponseBuilder::new(&request.queries, None).error_msg(&request.metadata, code);
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "could not send the injected DNS fault");
                let mut metadata = Metadata::new(
                    request.metadata.id,
                    MessageType::Response,
                    request.metadata.op_code,
                );
                metadata.response_code = code;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

/// A running authoritative server; stop it with [`DnsServer::shutdown`] (dropping it aborts its tasks).
pub struct DnsServer {
    server: Server<FaultyCatalog>,
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    queries: Arc<AtomicU64>,
}

impl DnsServer {
    /// Serves `zones` on the given sockets (bound by the caller, port 0 in tests); call within a tokio runtime.
    pub fn start(zones: ZoneSet, udp: UdpSocket, tcp: TcpListener) -> std::io::Result<DnsServer> {
        let udp_addr = udp.local_addr()?;
        let tcp_addr = tcp.local_addr()?;
        let queries = Arc::new(AtomicU64::new(0));
        let origins = zones.origins();
        let origins_text = if origins.is_empty() {
            "none".to_string()
        } else {
            origins
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let handler = FaultyCatalog {
            catalog: catalog(&zones),
            faults: zones.faults().to_vec(),
            queries: queries.clone(),
            origins,
            origins_text,
        };
        let mut server = Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 4096);
        Ok(DnsServer {
            server,
            udp_addr,
            tcp_addr,
            queries,
        })
    }

    /// Binds UDP and TCP on the same port of `addr` (port 0 picks one) and serves `zones`.
    pub async fn bind(zones: ZoneSet, addr: SocketAddr) -> std::io::Result<DnsServer> {
        // With port 0 the kernel picks a free UDP port, but the same TCP port may be taken: pick again.
        let attempts = if addr.port() == 0 { 20 } else { 1 };
        let mut last = None;
        for _ in 0..attempts {
            let udp = UdpSocket::bind(addr).await?;
            let bound = udp.local_addr()?;
            match TcpListener::bind(bound).await {
                Ok(tcp) => return Self::start(zones, udp, tcp),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::AddrInUse)))
    }

    /// The UDP address (also the TCP address when both were bound on one port).
    pub fn local_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    /// The TCP address.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// Requests received so far (UDP and TCP, faults included).
    pub fn queries_received(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Stops accepting and waits for the server tasks to end.
    pub async fn shutdown(mut self) {
        if let Err(e) = self.server.shutdown_gracefully().await {
            tracing::debug!(error = %e, "DNS server ended with an error");
        }
    }
}
