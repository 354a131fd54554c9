//! Shared lab for the outbound tests: a lab CA, the Edge identity, the embedded DNS server on port 0 and
//! emulated Expressway-E servers, all on 127.0.0.1.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use edgesim::config::{Identity as EdgeIdentity, PolicyConfig};
use edgesim::dns::{DnsServer, HickoryLookup, Lookup, RecordSpec, ResolverSettings, ZoneSet};
use edgesim::lab::peer::server::{PeerBehaviour, PeerServer, PeerServerSpec};
use edgesim::outbound::{OutboundContext, Timeouts};
use edgesim::pki::{IssuedCert, KeyType, LabCa, LeafSpec, TrustAnchors};
use edgesim::rules::Policy;
use tokio::net::TcpListener;

pub const EDGE_FQDN: &str = "sip.skype.lab";

pub struct Lab {
    pub ca: LabCa,
    pub edge: IssuedCert,
    pub anchors: TrustAnchors,
}

impl Lab {
    pub fn new() -> Lab {
        let ca = LabCa::generate("edgesim test CA", KeyType::EcdsaP256).unwrap();
        let edge = ca.issue(&LeafSpec::new(EDGE_FQDN)).unwrap();
        let anchors = TrustAnchors::from_certs(std::slice::from_ref(ca.cert_der()), "ca").unwrap();
        Lab { ca, edge, anchors }
    }

    /// A peer certificate from the lab CA.
    pub fn peer_cert(&self, spec: &LeafSpec) -> IssuedCert {
        self.ca.issue(spec).unwrap()
    }

    /// Starts an emulated Expressway-E with `cert` and `behaviour` on 127.0.0.1:0.
    pub async fn peer(&self, cert: &IssuedCert, behaviour: PeerBehaviour) -> PeerServer {
        self.peer_with(PeerServerSpec::new(cert.into(), behaviour))
            .await
    }

    pub async fn peer_with(&self, spec: PeerServerSpec) -> PeerServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        PeerServer::start(listener, spec).unwrap()
    }

    /// The outbound context for the Edge sip.skype.lab, resolving through `dns`.
    pub fn ctx(&self, dns: &DnsServer) -> OutboundContext {
        let settings = ResolverSettings {
            timeout_ms: 300,
            attempts: 1,
            cache_max_entries: 0,
            ..ResolverSettings::server(dns.local_addr())
        };
        let lookup = HickoryLookup::new(settings).unwrap();
        OutboundContext {
            policy: Policy::new(&EdgeIdentity::default(), &PolicyConfig::default(), false)
                .with_dns_server(lookup.server()),
            identity: (&self.edge).into(),
            anchors: self.anchors.clone(),
            lookup: Arc::new(lookup),
            edge_fqdn: EDGE_FQDN.to_string(),
            timeouts: Timeouts {
                connect: Duration::from_secs(2),
                handshake: Duration::from_secs(2),
                response: Duration::from_millis(1500),
            },
        }
    }
}

pub fn srv(domain: &str, target: &str, port: u16) -> RecordSpec {
    RecordSpec::Srv {
        name: format!("_sipfederationtls._tcp.{domain}"),
        priority: 10,
        weight: 10,
        port,
        target: target.into(),
        ttl: 60,
    }
}

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

pub async fn dns(records: &[RecordSpec]) -> DnsServer {
    DnsServer::bind(
        ZoneSet::from_records(records).unwrap(),
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
    )
    .await
    .unwrap()
}

/// The embedded DNS server with one federation route: `domain`'s SRV → `target`:`port`, and `target`'s A record.
pub async fn dns_route(domain: &str, target: &str, port: u16) -> DnsServer {
    dns(&[srv(domain, target, port), a(target)]).await
}

/// A port on 127.0.0.1 where nothing listens (bound, then closed).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}
