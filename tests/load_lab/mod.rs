//! A lab for the load and robustness tests: a lab CA, the embedded DNS server on port 0, an `edge::serve` on
//! 127.0.0.1:0 with short limits, and peer certificates issued at run time.
//!
//! DNS: `acano.steven.lab`'s SRV points outside its domain (`vcse.steven.lab`: the seed's mis-configuration,
//! 504 with 1009); `steven.lab`'s SRV points at `vcse.steven.lab` (passes with a `vcse.steven.lab`
//! certificate); `servfail.lab` answers SERVFAIL (504 with 1008).
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use edgesim::config::EdgeConfig;
use edgesim::dns::{DnsServer, FaultKind, HickoryLookup, RecordSpec, ResolverSettings, ZoneSet};
use edgesim::edge::{Edge, EdgeParts};
use edgesim::peer::client::{ExpresswayRequest, PeerClient};
use edgesim::pki::{Identity, KeyType, LabCa, LeafSpec, TrustAnchors};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Generous per-step timeout; the steps themselves take milliseconds.
pub const T: Duration = Duration::from_secs(3);

pub fn srv(name: &str, target: &str) -> RecordSpec {
    RecordSpec::Srv {
        name: name.into(),
        priority: 10,
        weight: 10,
        port: 5061,
        target: target.into(),
        ttl: 60,
    }
}

/// The lab's DNS records.
pub fn records() -> Vec<RecordSpec> {
    vec![
        srv("_sipfederationtls._tcp.acano.steven.lab", "vcse.steven.lab"),
        srv("_sipfederationtls._tcp.steven.lab", "vcse.steven.lab"),
        RecordSpec::Fault {
            name: "_sipfederationtls._tcp.servfail.lab".into(),
            kind: FaultKind::Servfail,
        },
    ]
}

/// Short limits so that the robustness cases end quickly; no rate limit unless a test sets one.
pub fn config() -> EdgeConfig {
    let mut c = EdgeConfig::default();
    c.limits.handshake_timeout_ms = 700;
    c.limits.header_timeout_ms = 700;
    c.limits.idle_timeout_ms = 5000;
    c.limits.max_requests_per_sec = 1_000_000;
    c.limits.max_message_bytes = 16 * 1024;
    c
}

pub struct Lab {
    pub ca: LabCa,
    pub edge: Arc<Edge>,
    pub addr: SocketAddr,
    pub dns: Option<DnsServer>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

/// A lab with the embedded DNS server.
pub async fn lab(tweak: impl FnOnce(&mut EdgeConfig)) -> Lab {
    // `DnsServer::bind` binds TCP on the port the OS chose for UDP, which may be taken by a TCP socket
    // (TIME_WAIT after many connections): try a few ports.
    let mut attempt = 0;
    let dns = loop {
        let zones = ZoneSet::from_records(&records()).unwrap();
        match DnsServer::bind(zones, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await {
            Ok(d) => break d,
            Err(e) if attempt < 5 && e.kind() == std::io::ErrorKind::AddrInUse => attempt += 1,
            Err(e) => panic!("cannot start the DNS server: {e}"),
        }
    };
    let resolver = dns.local_addr();
    lab_with_resolver(resolver, Some(dns), tweak).await
}

/// A lab whose resolver asks `resolver` (which may be a closed port).
pub async fn lab_with_resolver(
    resolver: SocketAddr,
    dns: Option<DnsServer>,
    tweak: impl FnOnce(&mut EdgeConfig),
) -> Lab {
    let ca = LabCa::generate("edgesim load test CA", KeyType::EcdsaP256).unwrap();
    let edge_cert = ca.issue(&LeafSpec::new("sip.skype.lab")).unwrap();
    let anchors = TrustAnchors::from_certs(&[ca.cert_der().clone()], "test CA").unwrap();
    let lookup = HickoryLookup::new(ResolverSettings {
        timeout_ms: 300,
        attempts: 1,
        ..ResolverSettings::server(resolver)
    })
    .unwrap();
    let mut cfg = config();
    tweak(&mut cfg);
    let edge = Arc::new(
        Edge::new(EdgeParts {
            config: cfg,
            identity: Identity::from(&edge_cert),
            anchors,
            lookup: Arc::new(lookup),
        })
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let edge = edge.clone();
        let shutdown = shutdown.clone();
        async move {
            edgesim::edge::serve(listener, edge, shutdown)
                .await
                .unwrap()
        }
    });
    Lab {
        ca,
        edge,
        addr,
        dns,
        shutdown,
        task,
    }
}

impl Lab {
    /// A peer identity naming `name` (CN and SAN), from the lab CA.
    pub fn cert(&self, name: &str) -> Identity {
        Identity::from(&self.ca.issue(&LeafSpec::new(name)).unwrap())
    }

    /// A connected Expressway-E with a `vcse.steven.lab` certificate.
    pub async fn peer(&self) -> PeerClient {
        let id = self.cert("vcse.steven.lab");
        PeerClient::connect(self.addr, "sip.skype.lab", Some(&id), T)
            .await
            .unwrap()
    }

    /// The health check run after every robustness case: a new connection gets 200 to an OPTIONS that
    /// passes the federation rules.
    pub async fn assert_healthy(&self) {
        let mut p = self.peer().await;
        let req =
            ExpresswayRequest::new("OPTIONS", "sip:vcse@steven.lab", "sip:stejanss@skype.lab")
                .build();
        let r = p.request(&req, T).await.unwrap();
        assert_eq!(
            r.status_code(),
            Some(200),
            "the Edge no longer answers a good request"
        );
        p.close().await;
    }

    /// Stops the Edge and checks that `serve` returns.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .unwrap()
            .unwrap();
        if let Some(dns) = self.dns {
            dns.shutdown().await;
        }
    }
}

/// The ms-diagnostics code of a response.
pub fn diag_code(m: &edgesim::sip::Message) -> Option<String> {
    let v = m.header_named("ms-diagnostics")?.value();
    let t = String::from_utf8_lossy(&v).into_owned();
    t.split(';').next().map(|c| c.trim().to_owned())
}
