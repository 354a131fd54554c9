//! `edgesim serve --serve-dns` as a complete lab (issue 11 item 8): the embedded DNS server publishes the
//! Edge's own SRV and A records next to the configuration's, prints every record it serves, and logs a query
//! for a name in no served zone with the zones it serves; `edgesim dns serve` says when it has no records.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use edgesim::dns::{DnsFailure, HickoryLookup, Lookup, ResolverSettings, SrvRecord};
use edgesim::pki::{KeyType, LabCa, LeafSpec};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a child's pipe, as they come.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (bounded) for a line containing `needle`; returns every line seen until then.
fn wait_for(rx: &mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(_) => panic!("no line with {needle:?} in:\n{}", seen.join("\n")),
        }
    }
}

fn after<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no {prefix:?} in:\n{}", lines.join("\n")))
}

#[tokio::test]
async fn serve_dns_publishes_the_edge_and_logs_queries_outside_its_zones() {
    let dir = tempfile::tempdir().unwrap();
    let ca = LabCa::generate("serve-dns test CA", KeyType::EcdsaP256).unwrap();
    ca.issue(&LeafSpec::new("sip.skype.lab"))
        .unwrap()
        .write(dir.path(), "edge")
        .unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.chain_pem()).unwrap();
    let config = dir.path().join("edge.toml");
    std::fs::write(
        &config,
        r#"
[edge]
public_address = "127.0.0.9"

[tls]
cert = "edge.chain.pem"
key = "edge.key"
ca = ["ca.pem"]

[[dns.records]]
name = "_sipfederationtls._tcp.acano.steven.lab"
type = "SRV"
priority = 0
weight = 0
port = 5061
target = "vcse.acano.steven.lab"
"#,
    )
    .unwrap();
    let mut child = Kill(
        Command::new(env!("CARGO_BIN_EXE_edgesim"))
            .args(["--log", "warn", "serve", "--listen", "127.0.0.1:0"])
            .args(["--serve-dns", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = lines_of(child.0.stdout.take().unwrap());
    let stderr = lines_of(child.0.stderr.take().unwrap());
    // The start-up lines, whatever their order: the DNS server, the Edge, the resolver.
    let mut seen = Vec::new();
    for needle in [
        "serving DNS on udp+tcp ",
        "listening on tls ",
        "resolving SRV records with",
    ] {
        if !seen.iter().any(|l: &String| l.contains(needle)) {
            seen.extend(wait_for(&stdout, needle));
        }
    }
    let text = seen.join("\n");
    let dns: SocketAddr = after(&seen, "serving DNS on udp+tcp ").parse().unwrap();
    let edge: SocketAddr = after(&seen, "listening on tls ").parse().unwrap();
    let port = edge.port();
    // Every record is printed, and which of them are the Edge's own.
    for line in [
        "adding the Edge's own _sipfederationtls._tcp.skype.lab. SRV record (the configuration has none)".to_string(),
        "adding the Edge's own sip.skype.lab. A record (the configuration has none)".to_string(),
        "zone skype.lab.".to_string(),
        format!("  _sipfederationtls._tcp.skype.lab. 60 IN SRV 0 0 {port} sip.skype.lab."),
        "  sip.skype.lab. 60 IN A 127.0.0.9".to_string(),
        "zone steven.lab.".to_string(),
        "  _sipfederationtls._tcp.acano.steven.lab. 60 IN SRV 0 0 5061 vcse.acano.steven.lab."
            .to_string(),
        format!("resolving SRV records with {dns}"),
        "note: an Expressway's DNS server setting takes an address only and asks port 53; to point one at this server use --serve-dns 127.0.0.1:53".to_string(),
    ] {
        assert!(seen.contains(&line), "no line {line:?} in:\n{text}");
    }

    // An Expressway pointed at this server finds the Edge.
    let lookup = HickoryLookup::new(ResolverSettings {
        timeout_ms: 1000,
        attempts: 1,
        cache_max_entries: 0,
        ..ResolverSettings::server(dns)
    })
    .unwrap();
    assert_eq!(
        lookup
            .srv("_sipfederationtls._tcp.skype.lab")
            .await
            .unwrap(),
        vec![SrvRecord {
            priority: 0,
            weight: 0,
            port,
            target: "sip.skype.lab".into()
        }]
    );
    assert_eq!(
        lookup.addrs("sip.skype.lab").await.unwrap(),
        vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9))]
    );

    // A name in no served zone: REFUSED, and the log says which zones are served.
    assert_eq!(
        lookup.srv("_sipfederationtls._tcp.nowhere.example").await,
        Err(DnsFailure::Refused)
    );
    let logged = wait_for(
        &stderr,
        "DNS query for a name in no zone this server serves",
    );
    let line = logged.last().unwrap();
    assert!(
        line.contains("zones served: skype.lab., steven.lab."),
        "{line}"
    );
    assert!(
        line.contains("_sipfederationtls._tcp.nowhere.example"),
        "{line}"
    );
}

#[test]
fn dns_serve_says_when_it_serves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("empty.zone");
    std::fs::write(&zone, "; nothing here yet\n").unwrap();
    let mut child = Kill(
        Command::new(env!("CARGO_BIN_EXE_edgesim"))
            .args(["dns", "serve", "--listen", "127.0.0.1:0", "--zone"])
            .arg(&zone)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = lines_of(child.0.stdout.take().unwrap());
    let seen = wait_for(&stdout, "no records to serve");
    assert!(
        seen[0].starts_with("serving DNS on udp+tcp 127.0.0.1:"),
        "{seen:?}"
    );
    assert_eq!(
        seen[1],
        "no records to serve: every query is answered REFUSED (add [[dns.records]], [[dns.zones]] or zone files)"
    );
}
