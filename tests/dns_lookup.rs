//! Real DNS over loopback: the embedded server on port 0 answering HickoryLookup, every failure kind distinct,
//! and the Edge's cache honouring TTLs (counted at the server).
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use edgesim::dns::{
    DnsFailure, DnsServer, FaultKind, HickoryLookup, Lookup, RecordSpec, ResolverSettings,
    SrvRecord, ZoneSet,
};

const SRV_NAME: &str = "_sipfederationtls._tcp.acano.steven.lab";

fn srv(name: &str, priority: u16, weight: u16, target: &str, ttl: u32) -> RecordSpec {
    RecordSpec::Srv {
        name: name.into(),
        priority,
        weight,
        port: 5061,
        target: target.into(),
        ttl,
    }
}

fn a(name: &str, ttl: u32) -> RecordSpec {
    RecordSpec::A {
        name: name.into(),
        address: Ipv4Addr::LOCALHOST,
        ttl,
    }
}

fn lab_records(ttl: u32) -> Vec<RecordSpec> {
    vec![
        // Deliberately out of order, one target in upper case with a trailing dot.
        srv(SRV_NAME, 20, 0, "backup.acano.steven.lab", ttl),
        srv(SRV_NAME, 10, 5, "b.acano.steven.lab", ttl),
        srv(SRV_NAME, 10, 50, "VCSE.acano.steven.lab.", ttl),
        a("vcse.acano.steven.lab", ttl),
        RecordSpec::Aaaa {
            name: "vcse.acano.steven.lab".into(),
            address: Ipv6Addr::LOCALHOST,
            ttl,
        },
        a("v4only.steven.lab", ttl),
        RecordSpec::Fault {
            name: "servfail.steven.lab".into(),
            kind: FaultKind::Servfail,
        },
        RecordSpec::Fault {
            name: "refused.steven.lab".into(),
            kind: FaultKind::Refused,
        },
        RecordSpec::Fault {
            name: "drop.steven.lab".into(),
            kind: FaultKind::Drop,
        },
    ]
}

async fn start(zones: ZoneSet) -> DnsServer {
    DnsServer::bind(zones, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap()
}

fn settings(server: &DnsServer) -> ResolverSettings {
    ResolverSettings {
        timeout_ms: 300,
        attempts: 1,
        ..ResolverSettings::server(server.local_addr())
    }
}

#[tokio::test]
async fn srv_found_sorted_and_normalised() {
    let server = start(ZoneSet::from_records(&lab_records(60)).unwrap()).await;
    let lookup = HickoryLookup::new(settings(&server)).unwrap();
    let records = lookup.srv(SRV_NAME).await.unwrap();
    let targets: Vec<(u16, u16, &str)> = records
        .iter()
        .map(|r| (r.priority, r.weight, r.target.as_str()))
        .collect();
    assert_eq!(
        targets,
        vec![
            (10, 50, "vcse.acano.steven.lab"),
            (10, 5, "b.acano.steven.lab"),
            (20, 0, "backup.acano.steven.lab"),
        ]
    );
    // Trailing dot and case in the question do not matter.
    let again = lookup
        .srv("_SIPfederationtls._tcp.ACANO.steven.lab.")
        .await
        .unwrap();
    assert_eq!(again, records);
    server.shutdown().await;
}

#[tokio::test]
async fn a_and_aaaa() {
    let server = start(ZoneSet::from_records(&lab_records(60)).unwrap()).await;
    let lookup = HickoryLookup::new(settings(&server)).unwrap();
    let mut both = lookup.addrs("vcse.acano.steven.lab").await.unwrap();
    both.sort();
    assert_eq!(
        both,
        vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        ]
    );
    assert_eq!(
        lookup.addrs("v4only.steven.lab").await.unwrap(),
        vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
    );
    assert_eq!(
        lookup.ipv6("vcse.acano.steven.lab").await.unwrap(),
        vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]
    );
    assert_eq!(
        lookup.ipv6("v4only.steven.lab").await,
        Err(DnsFailure::NoRecords)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn nxdomain_and_nodata_are_distinct() {
    let server = start(ZoneSet::from_records(&lab_records(60)).unwrap()).await;
    let lookup = HickoryLookup::new(settings(&server)).unwrap();
    assert_eq!(
        lookup.srv("_sipfederationtls._tcp.nope.steven.lab").await,
        Err(DnsFailure::NxDomain)
    );
    // The name exists (it has an A record) but no SRV.
    assert_eq!(
        lookup.srv("vcse.acano.steven.lab").await,
        Err(DnsFailure::NoRecords)
    );
    assert_eq!(
        lookup.addrs("nope.steven.lab").await,
        Err(DnsFailure::NxDomain)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn servfail_refused_and_timeout_are_distinct() {
    let server = start(ZoneSet::from_records(&lab_records(60)).unwrap()).await;
    let lookup = HickoryLookup::new(settings(&server)).unwrap();
    assert_eq!(
        lookup
            .srv("_sipfederationtls._tcp.servfail.steven.lab")
            .await,
        Err(DnsFailure::ServFail)
    );
    assert_eq!(
        lookup.srv("refused.steven.lab").await,
        Err(DnsFailure::Refused)
    );
    // A zone the server does not serve: the catalog refuses.
    assert_eq!(
        lookup.srv("_sipfederationtls._tcp.example.org").await,
        Err(DnsFailure::Refused)
    );
    let started = Instant::now();
    assert_eq!(
        lookup.srv("drop.steven.lab").await,
        Err(DnsFailure::Timeout)
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    // Failures of the server are not cached: the fault is asked again.
    let before = server.queries_received();
    assert_eq!(
        lookup.srv("refused.steven.lab").await,
        Err(DnsFailure::Refused)
    );
    assert!(server.queries_received() > before);
    server.shutdown().await;
}

#[tokio::test]
async fn cache_honours_positive_ttl() {
    // 2 s rather than 1 s: several lookups must fit inside the TTL even on a loaded machine.
    let server = start(ZoneSet::from_records(&lab_records(2)).unwrap()).await;
    let lookup = HickoryLookup::new(settings(&server)).unwrap();
    let first = lookup.srv(SRV_NAME).await.unwrap();
    let after_first = server.queries_received();
    assert!(after_first >= 1);
    // Within the TTL: answered from the Edge's cache, the server sees nothing.
    assert_eq!(lookup.srv(SRV_NAME).await.unwrap(), first);
    assert_eq!(
        lookup.addrs("vcse.acano.steven.lab").await.unwrap().len(),
        2
    );
    let after_addrs = server.queries_received();
    assert_eq!(lookup.srv(SRV_NAME).await.unwrap(), first);
    assert_eq!(
        lookup.addrs("vcse.acano.steven.lab").await.unwrap().len(),
        2
    );
    assert_eq!(server.queries_received(), after_addrs);
    assert_eq!(lookup.cached_entries(), 3);
    // After the TTL: asked again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(lookup.srv(SRV_NAME).await.unwrap(), first);
    assert!(server.queries_received() > after_addrs);
    // clear() forgets.
    let before_clear = server.queries_received();
    lookup.clear();
    assert_eq!(lookup.cached_entries(), 0);
    lookup.srv(SRV_NAME).await.unwrap();
    assert!(server.queries_received() > before_clear);
    server.shutdown().await;
}

#[tokio::test]
async fn cache_honours_negative_ttl_from_soa() {
    let zones = ZoneSet::from_records(&lab_records(60))
        .unwrap()
        .with_negative_ttl(1);
    let server = start(zones).await;
    let lookup = HickoryLookup::new(settings(&server)).unwrap();
    let name = "_sipfederationtls._tcp.nope.steven.lab";
    assert_eq!(lookup.srv(name).await, Err(DnsFailure::NxDomain));
    assert_eq!(
        lookup.srv("v4only.steven.lab").await,
        Err(DnsFailure::NoRecords)
    );
    let after = server.queries_received();
    assert_eq!(lookup.srv(name).await, Err(DnsFailure::NxDomain));
    assert_eq!(
        lookup.srv("v4only.steven.lab").await,
        Err(DnsFailure::NoRecords)
    );
    assert_eq!(server.queries_received(), after);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(lookup.srv(name).await, Err(DnsFailure::NxDomain));
    assert!(server.queries_received() > after);
    server.shutdown().await;
}

#[tokio::test]
async fn negative_ttl_is_capped() {
    // The zone says 60 s; the Edge caps negative answers at 1 s.
    let server = start(ZoneSet::from_records(&lab_records(60)).unwrap()).await;
    let lookup = HickoryLookup::new(ResolverSettings {
        negative_ttl_max_secs: 1,
        ..settings(&server)
    })
    .unwrap();
    assert_eq!(
        lookup.srv("nope.steven.lab").await,
        Err(DnsFailure::NxDomain)
    );
    let after = server.queries_received();
    assert_eq!(
        lookup.srv("nope.steven.lab").await,
        Err(DnsFailure::NxDomain)
    );
    assert_eq!(server.queries_received(), after);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        lookup.srv("nope.steven.lab").await,
        Err(DnsFailure::NxDomain)
    );
    assert!(server.queries_received() > after);
    server.shutdown().await;
}

#[tokio::test]
async fn cache_max_entries_evicts() {
    let server = start(ZoneSet::from_records(&lab_records(60)).unwrap()).await;
    let lookup = HickoryLookup::new(ResolverSettings {
        cache_max_entries: 1,
        ..settings(&server)
    })
    .unwrap();
    lookup.srv(SRV_NAME).await.unwrap();
    lookup.ipv4("v4only.steven.lab").await.unwrap();
    assert_eq!(lookup.cached_entries(), 1);
    let before = server.queries_received();
    lookup.srv(SRV_NAME).await.unwrap();
    assert!(
        server.queries_received() > before,
        "the SRV entry was evicted"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn explicit_zone_and_cname() {
    let zones = ZoneSet::from_zones(&[edgesim::dns::Zone {
        origin: "cms.steven.lab".into(),
        records: vec![
            srv(
                "_sipfederationtls._tcp.cms.steven.lab",
                0,
                0,
                "edge.cms.steven.lab",
                60,
            ),
            RecordSpec::Cname {
                name: "edge.cms.steven.lab".into(),
                target: "real.cms.steven.lab".into(),
                ttl: 60,
            },
            a("real.cms.steven.lab", 60),
        ],
    }])
    .unwrap();
    let origins: Vec<String> = zones.zones().iter().map(|z| z.origin.to_string()).collect();
    assert_eq!(origins, vec!["cms.steven.lab."]);
    let server = start(zones).await;
    let lookup = HickoryLookup::new(settings(&server)).unwrap();
    assert_eq!(
        lookup
            .srv("_sipfederationtls._tcp.cms.steven.lab")
            .await
            .unwrap(),
        vec![SrvRecord {
            priority: 0,
            weight: 0,
            port: 5061,
            target: "edge.cms.steven.lab".into()
        }]
    );
    assert_eq!(
        lookup.ipv4("edge.cms.steven.lab").await.unwrap(),
        vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
    );
    // steven.lab itself is not served by this zone set.
    assert_eq!(lookup.srv("steven.lab").await, Err(DnsFailure::Refused));
    server.shutdown().await;
}

/// Without a server, the resolver falls back to a resolv.conf and says so, naming the servers and the file
/// (a resolv.conf written here, naming the embedded server: never the system's configuration in a test).
#[tokio::test]
async fn fallback_resolver_names_its_servers_and_their_file() {
    let server = start(ZoneSet::from_records(&lab_records(60)).unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("resolv.conf");
    std::fs::write(&conf, "nameserver 127.0.0.1\n").unwrap();
    let fallback = ResolverSettings {
        server: None,
        timeout_ms: 300,
        attempts: 1,
        ..ResolverSettings::default()
    };
    let lookup = HickoryLookup::with_resolv_conf(fallback, &conf).unwrap();
    assert!(lookup.is_system());
    assert_eq!(
        lookup.server(),
        format!(
            "127.0.0.1:53 (the system resolver, from {})",
            conf.display()
        )
    );
    let given = HickoryLookup::new(settings(&server)).unwrap();
    assert!(!given.is_system());
    assert_eq!(given.server(), server.local_addr().to_string());
    server.shutdown().await;
}
