//! Shared lab for the Edge tests: a lab CA, the embedded DNS server on port 0, an Edge on 127.0.0.1:0, and
//! emulated Expressway-E clients with certificates issued at run time.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use edgesim::config::{EdgeConfig, UserAction, UserConfig};
use edgesim::diagnostics::DecisionEvent;
use edgesim::dns::{DnsServer, FaultKind, HickoryLookup, RecordSpec, ResolverSettings, ZoneSet};
use edgesim::edge::{Edge, EdgeParts};
use edgesim::peer::client::{ExpresswayRequest, PeerClient};
use edgesim::pki::{Identity, KeyType, LabCa, LeafSpec, TrustAnchors};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const T: Duration = Duration::from_secs(3);
pub const SRV_ACANO: &str = "_sipfederationtls._tcp.acano.steven.lab";

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

pub fn fault(name: &str, kind: FaultKind) -> RecordSpec {
    RecordSpec::Fault {
        name: name.into(),
        kind,
    }
}

pub fn user(name: &str, action: UserAction) -> UserConfig {
    UserConfig {
        user: name.into(),
        action,
        ring_ms: 50,
        hangup_after_ms: None,
    }
}

/// The lab's Edge config: short timeouts, a few users, a log file in a temp dir.
pub fn config(dir: &std::path::Path) -> EdgeConfig {
    let mut c = EdgeConfig {
        users: vec![
            user("stejanss", UserAction::Answer),
            user("busy", UserAction::Busy),
            user("ringer", UserAction::RingForever),
        ],
        ..EdgeConfig::default()
    };
    c.limits.handshake_timeout_ms = 1000;
    c.limits.header_timeout_ms = 500;
    c.limits.idle_timeout_ms = 2000;
    c.log_file = Some(dir.join("edge.log"));
    c.events_file = Some(dir.join("events.jsonl"));
    c
}

pub struct Lab {
    pub ca: LabCa,
    pub edge: Arc<Edge>,
    pub addr: SocketAddr,
    pub dns: DnsServer,
    pub shutdown: CancellationToken,
    pub dir: tempfile::TempDir,
    pub task: tokio::task::JoinHandle<()>,
}

pub async fn lab(records: Vec<RecordSpec>, tweak: impl FnOnce(&mut EdgeConfig)) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let ca = LabCa::generate("edgesim test CA", KeyType::EcdsaP256).unwrap();
    let edge_cert = ca.issue(&LeafSpec::new("sip.skype.lab")).unwrap();
    let anchors = TrustAnchors::from_certs(&[ca.cert_der().clone()], "test CA").unwrap();
    let zones = ZoneSet::from_records(&records).unwrap();
    // DnsServer::bind puts TCP on the UDP port it got; that TCP port is occasionally taken: try again.
    let mut attempt = 0;
    let dns = loop {
        match DnsServer::bind(zones.clone(), SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await {
            Ok(d) => break d,
            Err(e) if attempt < 10 && e.kind() == std::io::ErrorKind::AddrInUse => attempt += 1,
            Err(e) => panic!("DNS server: {e}"),
        }
    };
    let lookup = HickoryLookup::new(ResolverSettings {
        timeout_ms: 300,
        attempts: 1,
        ..ResolverSettings::server(dns.local_addr())
    })
    .unwrap();
    let mut cfg = config(dir.path());
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
        dir,
        task,
    }
}

impl Lab {
    /// A peer certificate from the lab CA.
    pub fn cert(&self, spec: LeafSpec) -> Identity {
        Identity::from(&self.ca.issue(&spec).unwrap())
    }

    /// An Expressway-E connected with a certificate naming `names` (CN = first).
    pub async fn peer(&self, names: &[&str]) -> PeerClient {
        let id = self.cert(LeafSpec::new(names[0]).san(names));
        self.peer_with(Some(&id)).await
    }

    pub async fn peer_with(&self, id: Option<&Identity>) -> PeerClient {
        PeerClient::connect(self.addr, "sip.skype.lab", id, T)
            .await
            .unwrap()
    }

    /// The next decision event.
    pub async fn event(rx: &mut tokio::sync::broadcast::Receiver<DecisionEvent>) -> DecisionEvent {
        tokio::time::timeout(T, rx.recv()).await.unwrap().unwrap()
    }

    /// Stops the Edge and checks that `serve` returns.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(3), self.task)
            .await
            .unwrap()
            .unwrap();
        self.dns.shutdown().await;
    }
}

/// An INVITE from 2000@acano.steven.lab to stejanss@skype.lab, Expressway style.
pub fn invite() -> ExpresswayRequest {
    ExpresswayRequest::new(
        "INVITE",
        "sip:2000@acano.steven.lab",
        "sip:stejanss@skype.lab",
    )
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The value of a header of a message, as text.
pub fn header(m: &edgesim::sip::Message, name: &str) -> Option<String> {
    m.header_named(name).map(|h| text(&h.value()))
}
