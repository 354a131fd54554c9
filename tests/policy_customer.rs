//! Issue 15: a customer's Edge reproduced from their pasted Get-Cs* output. The checked-in scenario
//! (`scenarios/customer-policy.toml`, with `scenarios/customer-policy/get-cs-federation.txt`) passes, and
//! `edgesim serve --sfb-config` with the same pasted file enforces the discovered-partner rate and prints the
//! watch list when it stops (SIGTERM), over real TLS and the Edge's own DNS server on loopback.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient};
use edgesim::lab::scenario::{report::render_table, run_file};
use edgesim::pki::{LabCa, LeafSpec, TlsIdentity};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_customer_scenario_reproduces_the_pasted_policy() {
    let report = run_file(&root().join("scenarios/customer-policy.toml"))
        .await
        .expect("the scenario loads, with its pasted file, and its lab starts");
    assert!(report.passed(), "{}", render_table(&report));
    let table = render_table(&report);
    assert!(table.contains("6 of 6 passed"), "{table}");
}

/// The lab around the pasted file: users (stejanss lists sip:2000@acano.steven.lab), the partners' DNS, and no
/// per-connection limit in the way of DiscoveredPartnerStandardRate.
const CONFIG: &str = r#"
[limits]
idle_timeout_ms = 5000
max_requests_per_sec = 1000

[[users]]
user = "stejanss"
im = "silent"
contacts = ["sip:2000@acano.steven.lab"]

[[dns.records]]
type = "SRV"
name = "_sipfederationtls._tcp.acano.steven.lab"
port = 5061
target = "vcse.acano.steven.lab"
"#;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pasted() -> PathBuf {
    root().join("scenarios/customer-policy/get-cs-federation.txt")
}

#[tokio::test]
async fn serve_throttles_a_discovered_partner_and_prints_the_watch_list_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("edge.toml"), CONFIG).unwrap();
    let mut child = Kill(
        Command::new(env!("CARGO_BIN_EXE_edgesim"))
            .args(["--log", "warn", "serve", "--listen", "127.0.0.1:0"])
            .args(["--serve-dns", "127.0.0.1:0", "--config", "edge.toml"])
            .args(["--events", "events.jsonl"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--sfb-config")
            .arg(pasted())
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr: SocketAddr = first
        .trim()
        .rsplit_once("listening on tls ")
        .unwrap()
        .1
        .parse()
        .unwrap();

    let ca = LabCa::load_dir(&dir.path().join("data")).unwrap();
    let id = TlsIdentity::from(&ca.issue(&LeafSpec::new("vcse.acano.steven.lab")).unwrap());
    let t = Duration::from_secs(5);
    let mut peer = PeerClient::connect(addr, "sip.skype.lab", Some(&id), t)
        .await
        .unwrap();
    let mut all = Vec::new();
    for _ in 0..25 {
        let mut r = ExpresswayRequest::new(
            "MESSAGE",
            "sip:2000@acano.steven.lab",
            "sip:stejanss@skype.lab",
        );
        r.body = Some(bytes::Bytes::from_static(b"hi"));
        r.content_type = Some("text/plain".into());
        all.extend_from_slice(&r.build());
    }
    peer.send(&all).await.unwrap();
    let mut codes = Vec::new();
    for _ in 0..25 {
        codes.push(peer.final_response(t).await.unwrap().status_code().unwrap());
    }
    assert_eq!(codes.iter().filter(|&&c| c == 200).count(), 20, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 503).count(), 5, "{codes:?}");
    peer.close().await;

    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
    assert!(
        rest.contains("\nwatch list of discovered partners: 1\n  acano.steven.lab: 25 messages (25 in this 60-minute period), 1 distinct users (limit 1000), 5 throttled over 20/s, 0 new users refused\n"),
        "{rest}"
    );
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(events.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "watch-list");
    assert_eq!(last["reason"], "shutdown");
    assert_eq!(last["partners"][0]["throttled"], 5);
}
