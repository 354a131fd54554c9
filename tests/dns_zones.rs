//! Zone data: TOML records, zone inference, master files (good and bad), and the `edgesim dns serve` binary.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};

use edgesim::dns::{
    DnsFailure, DnsServer, DnsZonesConfig, FaultKind, HickoryLookup, Lookup, RecordSpec,
    ResolverSettings, ZoneError, ZoneSet,
};

#[derive(serde::Deserialize)]
struct Lab {
    dns: DnsZonesConfig,
}

const LAB_TOML: &str = r#"
[[dns.records]]
name = "_sipfederationtls._tcp.acano.steven.lab"
type = "SRV"
priority = 0
weight = 0
port = 5061
target = "vcse.acano.steven.lab"
ttl = 60

[[dns.records]]
name = "vcse.acano.steven.lab"
type = "A"
address = "127.0.0.1"

[[dns.records]]
name = "sip.skype.lab"
type = "AAAA"
address = "::1"

[[dns.records]]
name = "broken.steven.lab"
type = "FAULT"
kind = "servfail"

[[dns.zones]]
origin = "cms.steven.lab"
records = [
  { name = "_sipfederationtls._tcp.cms.steven.lab", type = "SRV", priority = 0, weight = 0, port = 5061, target = "vcse.steven.lab" },
  { name = "cms.steven.lab", type = "TXT", text = "v=lab" },
]
"#;

#[test]
fn toml_records_deserialize_with_defaults() {
    let lab: Lab = toml::from_str(LAB_TOML).unwrap();
    assert_eq!(lab.dns.records.len(), 4);
    assert_eq!(
        lab.dns.records[1],
        RecordSpec::A {
            name: "vcse.acano.steven.lab".into(),
            address: Ipv4Addr::LOCALHOST,
            ttl: 60
        }
    );
    assert_eq!(
        lab.dns.records[3],
        RecordSpec::Fault {
            name: "broken.steven.lab".into(),
            kind: FaultKind::Servfail
        }
    );
    assert_eq!(lab.dns.zones[0].records.len(), 2);
}

#[test]
fn toml_unknown_field_is_named() {
    let bad = "[[dns.records]]\nname = \"a.steven.lab\"\ntype = \"A\"\naddres = \"127.0.0.1\"\n";
    let error = toml::from_str::<Lab>(bad).err().unwrap().to_string();
    assert!(error.contains("addres"), "{error}");
}

#[test]
fn zones_are_inferred_from_the_last_two_labels() {
    let lab: Lab = toml::from_str(LAB_TOML).unwrap();
    let zones = ZoneSet::from_config(&lab.dns, None).unwrap();
    let origins: Vec<String> = zones.zones().iter().map(|z| z.origin.to_string()).collect();
    // cms.steven.lab is explicit and wins over the inferred steven.lab for its own records.
    // DNS canonical order: a subzone follows its parent.
    assert_eq!(
        origins,
        vec!["skype.lab.", "steven.lab.", "cms.steven.lab."]
    );
    for zone in zones.zones() {
        assert_eq!(zone.records[0].record_type().to_string(), "SOA");
    }
}

#[test]
fn single_label_and_outside_zone_are_config_errors() {
    let err = ZoneSet::from_records(&[RecordSpec::A {
        name: "vcse".into(),
        address: Ipv4Addr::LOCALHOST,
        ttl: 60,
    }])
    .unwrap_err();
    assert!(matches!(err, ZoneError::SingleLabel { .. }), "{err}");
    assert!(err.to_string().contains("dns.records"), "{err}");
    let err = ZoneSet::from_zones(&[edgesim::dns::Zone {
        origin: "cms.steven.lab".into(),
        records: vec![RecordSpec::A {
            name: "vcse.steven.lab".into(),
            address: Ipv4Addr::LOCALHOST,
            ttl: 60,
        }],
    }])
    .unwrap_err();
    assert!(matches!(err, ZoneError::OutsideZone { .. }), "{err}");
}

fn seed_zone() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/zones/steven.lab.zone"
    ))
}

#[tokio::test]
async fn seed_zone_file_parses_and_serves() {
    let zones = ZoneSet::from_zone_file(seed_zone()).unwrap();
    let origins: Vec<String> = zones.zones().iter().map(|z| z.origin.to_string()).collect();
    assert_eq!(origins, vec!["skype.lab.", "steven.lab."]);
    let server = DnsServer::bind(zones, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let lookup = HickoryLookup::new(ResolverSettings::server(server.local_addr())).unwrap();
    let acano = lookup
        .srv("_sipfederationtls._tcp.acano.steven.lab")
        .await
        .unwrap();
    assert_eq!(acano[0].target, "vcse.acano.steven.lab");
    assert_eq!(acano[0].port, 5061);
    let cms = lookup
        .srv("_sipfederationtls._tcp.cms.steven.lab")
        .await
        .unwrap();
    assert_eq!(cms[0].target, "vcse.steven.lab");
    let skype = lookup
        .srv("_sipfederationtls._tcp.skype.lab")
        .await
        .unwrap();
    assert_eq!(skype[0].target, "sip.skype.lab");
    for host in ["vcse.acano.steven.lab", "vcse.steven.lab", "sip.skype.lab"] {
        assert_eq!(
            lookup.addrs(host).await.unwrap(),
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            "{host}"
        );
    }
    server.shutdown().await;
}

#[test]
fn zone_file_without_soa_and_with_all_types() {
    let text = "\
; absolute names, no $ORIGIN, no SOA: zones inferred
$TTL 30
_sipfederationtls._tcp.example.lab. IN SRV 10 20 5061 Sip.Example.Lab.
sip.example.lab.   IN A     127.0.0.1
sip.example.lab.   IN AAAA  ::1
alias.example.lab. 45 IN CNAME sip.example.lab.
example.lab.       IN TXT   \"hello world\"
";
    let zones = ZoneSet::from_zone_text(text, Path::new("inline.zone")).unwrap();
    let built = zones.zones();
    assert_eq!(built.len(), 1);
    assert_eq!(built[0].origin.to_string(), "example.lab.");
    // synthesized SOA + 5 records
    assert_eq!(built[0].records.len(), 6);
    let alias = built[0]
        .records
        .iter()
        .find(|r| r.name.to_string() == "alias.example.lab.")
        .unwrap();
    assert_eq!(alias.ttl, 45);
}

#[test]
fn bad_zone_file_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.zone");
    let text = "\
$ORIGIN steven.lab.
$TTL 60
@ IN SOA ns hostmaster (
    1 3600 600
    86400 60 )
vcse IN A 127.0.0.1
broken IN A 300.1.2.3
ok IN A 127.0.0.2
";
    std::fs::write(&path, text).unwrap();
    let err = ZoneSet::from_zone_file(&path).unwrap_err();
    match &err {
        ZoneError::Parse { line, .. } => assert_eq!(*line, 7, "{err}"),
        other => panic!("expected a parse error, got {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("bad.zone:7:"), "{message}");
    assert!(message.contains("fix that line"), "{message}");

    let err = ZoneSet::from_zone_file(dir.path().join("missing.zone")).unwrap_err();
    assert!(matches!(err, ZoneError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing.zone"), "{err}");
}

#[test]
fn relative_name_without_origin_is_rejected() {
    let err = ZoneSet::from_zone_text("vcse 60 IN A 127.0.0.1\n", Path::new("x.zone")).unwrap_err();
    assert!(matches!(err, ZoneError::SingleLabel { .. }), "{err}");
    assert!(err.to_string().contains("x.zone"), "{err}");
}

#[tokio::test]
async fn fault_covers_names_below() {
    let mut zones = ZoneSet::from_zone_file(seed_zone()).unwrap();
    zones
        .add_fault("acano.steven.lab", FaultKind::Servfail)
        .unwrap();
    let server = DnsServer::bind(zones, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let lookup = HickoryLookup::new(ResolverSettings::server(server.local_addr())).unwrap();
    assert_eq!(
        lookup.srv("_sipfederationtls._tcp.acano.steven.lab").await,
        Err(DnsFailure::ServFail)
    );
    assert!(
        lookup
            .srv("_sipfederationtls._tcp.cms.steven.lab")
            .await
            .is_ok()
    );
    server.shutdown().await;
}

/// Kills the child even when an assertion fails.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn cli_serve_and_query() {
    let exe = env!("CARGO_BIN_EXE_edgesim");
    let mut child = Child(
        Command::new(exe)
            .args(["dns", "serve", "--listen", "127.0.0.1:0", "--zone"])
            .arg(seed_zone())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    // Keep draining: the server goes on printing its zones, and a closed pipe would stop it.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let addr: SocketAddr = first
        .trim()
        .strip_prefix("serving DNS on udp+tcp ")
        .unwrap()
        .parse()
        .unwrap();
    let query = |name: &str| {
        Command::new(exe)
            .args(["dns", "query", name, "--server", &addr.to_string()])
            .output()
            .unwrap()
    };
    let found = (
        query("_sipfederationtls._tcp.acano.steven.lab"),
        query("_sipfederationtls._tcp.nope.steven.lab"),
    );
    assert!(found.0.status.success(), "{:?}", found.0);
    assert_eq!(
        String::from_utf8_lossy(&found.0.stdout),
        "SRV 0 0 5061 vcse.acano.steven.lab\n"
    );
    assert_eq!(found.1.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&found.1.stdout).starts_with("NXDOMAIN"));
}
