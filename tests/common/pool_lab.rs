//! Shared by the pool tests (`pool_faults`, `check_pool`): an Edge pool from the library with members on
//! 127.0.0.2, 127.0.0.3, … serving one Edge, the embedded DNS publishing them (SRV priorities, or one name with
//! an A record per member), and the Edge of fabrikam.lab that places `call`s and `check`s into it.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edgesim::config::{EdgeConfig, Identity as EdgeIdentity, PolicyConfig};
use edgesim::dns::{EdgeRecords, Lookup, PoolMemberRecord, ZoneSet};
use edgesim::edge::pool::{self, FaultMode, Pool, PoolMember};
use edgesim::edge::{Edge, EdgeParts};
use edgesim::lab::builder::{self, LabCerts, LabDns};
use edgesim::lab::peer::client::{PeerClient, PeerError};
use edgesim::outbound::{OutboundContext, Timeouts};
use edgesim::pki::{LeafSpec, TlsIdentity};
use edgesim::rules::Policy;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Generous per-step timeout; the steps themselves take milliseconds.
pub const T: Duration = Duration::from_secs(3);
/// What a silent member gets before the client gives up on it.
pub const SILENT_WAIT: Duration = Duration::from_millis(400);

/// How the pool is published.
#[derive(Clone, Copy, PartialEq)]
pub enum Layout {
    /// One SRV target per member, priorities 10, 20, 30.
    SrvPriorities,
    /// One target `sip.skype.lab` with an A record per member (one port).
    DnsLoadBalancing,
}

pub struct PoolLab {
    pub certs: LabCerts,
    pub edge: Arc<Edge>,
    pub pool: Pool,
    pub members: Vec<SocketAddr>,
    pub dns: LabDns,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), edgesim::edge::EdgeError>>,
}

impl PoolLab {
    pub async fn start(layout: Layout, n: u8) -> PoolLab {
        let certs = LabCerts::new("pool test CA", "sip.skype.lab").unwrap();
        let mut listeners: Vec<(TcpListener, String)> = Vec::new();
        for i in 0..n {
            let ip = [127, 0, 0, 2 + i];
            let port = match (layout, listeners.first()) {
                (Layout::DnsLoadBalancing, Some((first, _))) => first.local_addr().unwrap().port(),
                _ => 0,
            };
            let l = TcpListener::bind(SocketAddr::from((ip, port)))
                .await
                .unwrap();
            let target = match layout {
                Layout::SrvPriorities => format!("sip{}.skype.lab", i + 1),
                Layout::DnsLoadBalancing => "sip.skype.lab".to_owned(),
            };
            listeners.push((l, target));
        }
        let members: Vec<SocketAddr> = listeners
            .iter()
            .map(|(l, _)| l.local_addr().unwrap())
            .collect();
        let mut zones = ZoneSet::from_records(&[
            // The callers' domains, for the Edge's own SRV check of the sender.
            builder::srv("steven.lab", "vcse.steven.lab", 5061),
            builder::srv("fabrikam.lab", "sip.fabrikam.lab", 5061),
        ])
        .unwrap();
        let records: Vec<PoolMemberRecord> = listeners
            .iter()
            .enumerate()
            .map(|(i, (l, target))| PoolMemberRecord {
                target: target.clone(),
                priority: if layout == Layout::SrvPriorities {
                    10 * (i as u16 + 1)
                } else {
                    0
                },
                weight: 0,
                port: l.local_addr().unwrap().port(),
                address: EdgeRecords::address_for(
                    None,
                    l.local_addr().unwrap(),
                    SocketAddr::from(([127, 0, 0, 1], 53)),
                ),
            })
            .collect();
        zones.add_pool_records("skype.lab", &records).unwrap();
        let dns = LabDns::start(zones).await.unwrap();
        let mut config = EdgeConfig::default();
        config.limits.handshake_timeout_ms = 700;
        config.limits.idle_timeout_ms = 5000;
        let edge = Arc::new(
            Edge::new(EdgeParts {
                config,
                identity: TlsIdentity::from(&certs.edge),
                anchors: certs.anchors.clone(),
                lookup: Arc::new(dns.lookup(300, 0).unwrap()),
            })
            .unwrap(),
        );
        let shutdown = CancellationToken::new();
        let (pool, task) = pool::start(
            edge.clone(),
            listeners
                .into_iter()
                .map(|(listener, target)| PoolMember {
                    listener,
                    target,
                    fault: FaultMode::Accept,
                })
                .collect(),
            shutdown.clone(),
        )
        .unwrap();
        PoolLab {
            certs,
            edge,
            pool,
            members,
            dns,
            shutdown,
            task,
        }
    }

    pub fn expressway(&self) -> TlsIdentity {
        TlsIdentity::from(&self.certs.issue(&LeafSpec::new("vcse.steven.lab")).unwrap())
    }

    pub async fn connect(&self, member: usize, timeout: Duration) -> Result<PeerClient, PeerError> {
        PeerClient::connect(
            self.members[member],
            "sip.skype.lab",
            Some(&self.expressway()),
            timeout,
        )
        .await
    }

    pub fn set(&self, member: usize, mode: FaultMode) {
        self.pool
            .set_fault(&self.members[member].to_string(), mode)
            .unwrap();
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the pool stops")
            .unwrap()
            .unwrap();
        self.dns.stop().await;
    }
}

/// The Edge of fabrikam.lab placing `call`s into the pool's domain skype.lab.
pub fn caller(lab: &PoolLab) -> OutboundContext {
    let lookup = lab.dns.lookup(300, 0).unwrap();
    let me = EdgeIdentity {
        fqdn: "sip.fabrikam.lab".into(),
        domain: "fabrikam.lab".into(),
        ..EdgeIdentity::default()
    };
    let identity = TlsIdentity::from(&lab.certs.issue(&LeafSpec::new("sip.fabrikam.lab")).unwrap());
    OutboundContext {
        policy: Policy::new(&me, &PolicyConfig::default(), false).with_dns_server(lookup.server()),
        identity,
        anchors: lab.certs.anchors.clone(),
        lookup: Arc::new(lookup),
        edge_fqdn: "sip.fabrikam.lab".into(),
        timeouts: Timeouts {
            connect: T,
            handshake: SILENT_WAIT,
            response: T,
        },
        taps: edgesim::wire::Taps::default(),
        proxy_port: 5061,
    }
}
