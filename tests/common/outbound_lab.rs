//! Shared lab for the outbound tests, from the one lab builder (`edgesim::lab::builder`): a lab CA, the Edge
//! identity, the embedded DNS server on port 0 and emulated Expressway-E servers, all on 127.0.0.1.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use edgesim::config::{Identity as EdgeIdentity, PolicyConfig};
use edgesim::dns::{DnsServer, Lookup, RecordSpec};
use edgesim::lab::builder::{self, LabCerts, LabDns};
use edgesim::lab::peer::server::{PeerBehaviour, PeerServer, PeerServerSpec};
use edgesim::outbound::{OutboundContext, Timeouts};
use edgesim::pki::{IssuedCert, LabCa, LeafSpec, TrustAnchors};
use edgesim::rules::Policy;

#[allow(unused_imports)]
pub use edgesim::lab::builder::{a, a_at, srv};

pub const EDGE_FQDN: &str = "sip.skype.lab";

pub struct Lab {
    pub ca: LabCa,
    pub edge: IssuedCert,
    pub anchors: TrustAnchors,
}

impl Lab {
    pub fn new() -> Lab {
        let LabCerts { ca, edge, anchors } = LabCerts::new("edgesim test CA", EDGE_FQDN).unwrap();
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
        builder::peer_server(spec).await.unwrap()
    }

    /// The outbound context for the Edge sip.skype.lab, resolving through `dns`.
    pub fn ctx(&self, dns: &DnsServer) -> OutboundContext {
        let lookup = builder::resolver(dns.local_addr(), 300, 0).unwrap();
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
            taps: Default::default(),
            proxy_port: 5061,
        }
    }
}

pub async fn dns(records: &[RecordSpec]) -> DnsServer {
    LabDns::with_records(records).await.unwrap().server
}

/// The embedded DNS server with one federation route: `domain`'s SRV → `target`:`port`, and `target`'s A record.
pub async fn dns_route(domain: &str, target: &str, port: u16) -> DnsServer {
    dns(&[srv(domain, target, port), a(target)]).await
}

/// A port on 127.0.0.1 where nothing listens (bound, then closed).
pub async fn closed_port() -> u16 {
    builder::closed_port().await.unwrap()
}
