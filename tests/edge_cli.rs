//! `edgesim serve` as a lab engineer runs it: first run creates the lab CA under --data-dir, the Edge serves
//! its configuration's DNS zones itself, and an Expressway certificate issued from that CA gets a call through.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient};
use edgesim::pki::{LabCa, LeafSpec, TlsIdentity};

const CONFIG: &str = r#"
[limits]
idle_timeout_ms = 3000

[[users]]
user = "stejanss"
ring_ms = 10

[[dns.records]]
type = "SRV"
name = "_sipfederationtls._tcp.acano.steven.lab"
priority = 10
weight = 10
port = 5061
target = "vcse.acano.steven.lab"
"#;

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn first_run_creates_the_lab_ca_and_answers_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edge.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let data = dir.path().join("data");
    let events = dir.path().join("events.jsonl");
    let mut child = Kill(
        Command::new(env!("CARGO_BIN_EXE_edgesim"))
            .args([
                "--log",
                "warn",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--serve-dns",
                "127.0.0.1:0",
            ])
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .arg("--events")
            .arg(&events)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr: std::net::SocketAddr = first
        .rsplit_once("listening on tls ")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let mut seen = vec![first];
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("resolving SRV records with");
        seen.push(line);
        if done {
            break;
        }
    }
    let text = seen.join("\n");
    assert!(text.contains("created a lab CA"), "{text}");
    assert!(text.contains("import it into the Expressway-E"), "{text}");

    let ca = LabCa::load_dir(&data).unwrap();
    let id = TlsIdentity::from(&ca.issue(&LeafSpec::new("vcse.acano.steven.lab")).unwrap());
    let t = Duration::from_secs(5);
    let mut peer = PeerClient::connect(addr, "sip.skype.lab", Some(&id), t)
        .await
        .unwrap();
    let req = ExpresswayRequest::new(
        "INVITE",
        "sip:2000@acano.steven.lab",
        "sip:stejanss@skype.lab",
    );
    let r = peer.request(&req.build(), t).await.unwrap();
    assert_eq!(r.status_code(), Some(200));
    // The running serve's background writer puts the line on disk within its 100 ms flush bound: waited for.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let ev = loop {
        let ev = std::fs::read_to_string(&events).unwrap_or_default();
        if ev.contains("\"verdict\":\"accept\"") || std::time::Instant::now() > deadline {
            break ev;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(ev.contains("\"verdict\":\"accept\""), "{ev}");
}
