//! `edgesim check` on an Edge pool behind DNS load balancing (one name, an A record per member) whose first
//! member refuses TLS: `check` probes TLS on the next address as `call` does (`conn::connect_any`), reports
//! each address's TLS lines named by its address, and counts the first member's refusal as a WARN because the
//! Edge connects through the second. With both members refusing, both stay FAIL. The pool set-up is
//! `tests/pool_faults.rs`'s, over real TCP and TLS on 127.0.0.2 and 127.0.0.3 and the embedded DNS.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edgesim::check::{Status, check};
use edgesim::config::{EdgeConfig, Identity as EdgeIdentity, PolicyConfig};
use edgesim::dns::{EdgeRecords, Lookup, PoolMemberRecord, ZoneSet};
use edgesim::edge::pool::{self, FaultMode, Pool, PoolMember};
use edgesim::edge::{Edge, EdgeParts};
use edgesim::lab::builder::{self, LabCerts, LabDns};
use edgesim::outbound::{OutboundContext, Timeouts};
use edgesim::pki::{LeafSpec, TlsIdentity};
use edgesim::rules::Policy;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Generous per-step timeout; the steps themselves take milliseconds.
const T: Duration = Duration::from_secs(3);
/// What a silent member gets before the client gives up on it.
const SILENT_WAIT: Duration = Duration::from_millis(400);

/// How the pool is published.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// One SRV target per member, priorities 10, 20, 30.
    SrvPriorities,
    /// One target `sip.skype.lab` with an A record per member (one port).
    DnsLoadBalancing,
}

struct PoolLab {
    certs: LabCerts,
    pool: Pool,
    members: Vec<SocketAddr>,
    dns: LabDns,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), edgesim::edge::EdgeError>>,
}

impl PoolLab {
    async fn start(layout: Layout, n: u8) -> PoolLab {
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
            pool,
            members,
            dns,
            shutdown,
            task,
        }
    }

    fn set(&self, member: usize, mode: FaultMode) {
        self.pool
            .set_fault(&self.members[member].to_string(), mode)
            .unwrap();
    }

    async fn stop(self) {
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
fn caller(lab: &PoolLab) -> OutboundContext {
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

/// The `tls` lines of a report: (status, detail).
fn tls_lines(r: &edgesim::check::Report) -> Vec<(Status, String)> {
    r.area("tls")
        .iter()
        .map(|l| (l.status, l.detail.clone()))
        .collect()
}

#[tokio::test]
async fn check_probes_tls_on_the_next_address_when_the_first_member_refuses_it() {
    let lab = PoolLab::start(Layout::DnsLoadBalancing, 2).await;
    let ctx = caller(&lab);
    let (first, second) = (lab.members[0], lab.members[1]);

    // Both members up: one address probed, the lines as for a single Edge.
    let r = check(&ctx, "skype.lab").await;
    let tls = tls_lines(&r);
    assert_eq!(tls.len(), 2, "{}", r.render());
    assert_eq!(
        tls[0],
        (Status::Pass, "TLS 1.2 offered by sip.skype.lab".to_string())
    );
    assert!(!r.has_fail(), "{}", r.render());

    lab.set(0, FaultMode::RefuseTls);
    let r = check(&ctx, "skype.lab").await;
    assert!(
        !r.has_fail(),
        "the Edge gets through the second member: {}",
        r.render()
    );
    let tls = tls_lines(&r);
    let of = |addr: SocketAddr| -> Vec<&(Status, String)> {
        tls.iter()
            .filter(|(_, d)| d.starts_with(&format!("{addr}: ")))
            .collect()
    };
    assert_eq!(
        of(first).len() + of(second).len(),
        tls.len(),
        "{}",
        r.render()
    );
    // The first member: its refusal is a WARN that names where the Edge connects instead.
    assert!(!of(first).is_empty(), "{}", r.render());
    for (status, detail) in of(first) {
        assert_ne!(*status, Status::Fail, "{detail}");
    }
    let moved = format!("; the Edge moves on to the next address and connects through {second}");
    assert!(
        of(first)
            .iter()
            .any(|(s, d)| *s == Status::Warn && d.ends_with(&moved)),
        "{}",
        r.render()
    );
    // The second member: probed, and it offers TLS 1.2.
    assert_eq!(
        of(second)[0],
        &(
            Status::Pass,
            format!("{second}: TLS 1.2 offered by sip.skype.lab")
        )
    );
    // The OPTIONS ping went through too, as `call` would.
    assert!(
        r.area("sip").iter().all(|l| l.status == Status::Pass),
        "{}",
        r.render()
    );

    // Both members refuse TLS: every address is probed, and the refusals stay FAILs.
    lab.set(1, FaultMode::RefuseTls);
    let r = check(&ctx, "skype.lab").await;
    assert!(r.has_fail(), "{}", r.render());
    let tls = tls_lines(&r);
    assert!(
        tls.iter()
            .any(|(s, d)| *s == Status::Fail && d.starts_with(&format!("{first}: "))),
        "{}",
        r.render()
    );
    assert!(
        tls.iter()
            .any(|(s, d)| *s == Status::Fail && d.starts_with(&format!("{second}: "))),
        "{}",
        r.render()
    );
    assert!(
        tls.iter().all(|(_, d)| !d.contains("moves on")),
        "{}",
        r.render()
    );
    lab.stop().await;
}
