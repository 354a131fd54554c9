//! Not one record lost (issue 13): the real `edgesim serve` with `--log-file` and `--events`, N INVITEs over real
//! mutual TLS from several connections at once (each with a burst of requests in flight), SIGTERM right after
//! the last answer with the connections still open — and then exactly N records in the log file and N events,
//! one per Call-ID sent. The answers arrive long before the writer's 100 ms tick, so the last batch is still in
//! memory when the signal lands: only the graceful drain puts it on disk.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use edge_lab::T;
use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient};
use edgesim::pki::{LabCa, LeafSpec, TlsIdentity};

/// `acano.steven.lab` points its federation SRV record outside its domain: every INVITE from it is refused
/// with 504 (ms-diagnostics 1009) and one Edge record. No rate limit, so every request reaches the rules.
const CONFIG: &str = r#"
[limits]
max_requests_per_sec = 1000000

[[dns.records]]
type = "SRV"
name = "_sipfederationtls._tcp.acano.steven.lab"
priority = 10
weight = 10
port = 5061
target = "vcse.steven.lab"
"#;

/// Connections at once.
const CONNS: usize = 8;
/// Requests sent together on one connection before reading their answers.
const BURST: usize = 25;
/// Bursts per connection.
const ROUNDS: usize = 4;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One connection's share: ROUNDS bursts of BURST INVITEs, each answer read (504) and acknowledged. Returns
/// the Call-IDs, and the connection still open.
async fn one_connection(addr: std::net::SocketAddr, id: TlsIdentity) -> (Vec<String>, PeerClient) {
    let mut peer = PeerClient::connect(addr, "sip.skype.lab", Some(&id), T)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..ROUNDS {
        let reqs: Vec<ExpresswayRequest> = (0..BURST)
            .map(|_| {
                ExpresswayRequest::new(
                    "INVITE",
                    "sip:2000@acano.steven.lab",
                    "sip:stejanss@skype.lab",
                )
            })
            .collect();
        let burst: Vec<u8> = reqs.iter().flat_map(|r| r.build().to_vec()).collect();
        peer.send(&burst).await.unwrap();
        let mut acks = Vec::new();
        for _ in &reqs {
            let answer = peer.final_response(T).await.unwrap();
            assert_eq!(answer.status_code(), Some(504));
            let call_id = String::from_utf8_lossy(&answer.call_id().unwrap()).into_owned();
            let req = reqs.iter().find(|r| r.call_id == call_id).unwrap();
            let tag = answer.to().unwrap().tag().unwrap().to_string();
            acks.extend(req.follow_up("ACK", Some(&tag)).build().to_vec());
            ids.push(call_id);
        }
        peer.send(&acks).await.unwrap();
    }
    (ids, peer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_leaves_exactly_one_record_and_one_event_per_request() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("edge.toml"), CONFIG).unwrap();
    let data = dir.path().join("data");
    let mut child = Kill(
        Command::new(env!("CARGO_BIN_EXE_edgesim"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--serve-dns",
                "127.0.0.1:0",
            ])
            .args([
                "--config",
                "edge.toml",
                "--log-file",
                "edge.log",
                "--events",
                "events.jsonl",
            ])
            .arg("--data-dir")
            .arg(&data)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Read all along: a console line per decision would fill a pipe nobody reads, and block serve.
    let mut stderr = child.0.stderr.take().unwrap();
    let console = std::thread::spawn(move || {
        let mut err = String::new();
        stderr.read_to_string(&mut err).unwrap();
        err
    });
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr: std::net::SocketAddr = first.rsplit_once(' ').unwrap().1.parse().unwrap();
    // The rest of the start-up report, so that serve never blocks on a full stdout pipe.
    std::thread::spawn(move || for _ in lines {});

    let ca = LabCa::load_dir(&data).unwrap();
    let id = TlsIdentity::from(&ca.issue(&LeafSpec::new("vcse.steven.lab")).unwrap());
    let tasks: Vec<_> = (0..CONNS)
        .map(|_| tokio::spawn(one_connection(addr, id.clone())))
        .collect();
    let mut sent = BTreeSet::new();
    let mut open = Vec::new();
    for t in tasks {
        let (ids, peer) = t.await.unwrap();
        sent.extend(ids);
        open.push(peer);
    }
    let n = CONNS * ROUNDS * BURST;
    assert_eq!(sent.len(), n, "distinct Call-IDs answered");

    // Stop it now, with every connection still open.
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.0.wait().unwrap();
    let err = console.join().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    drop(open);

    let log = std::fs::read_to_string(dir.path().join("edge.log")).unwrap();
    let heads: Vec<&str> = log.lines().filter(|l| l.starts_with("TL ")).collect();
    assert_eq!(heads.len(), n, "log records");
    assert!(heads.iter().all(|l| l.contains("(TF_DIAG)")));
    assert!(log.ends_with("$$end_record\n"), "the last record is whole");
    let logged: BTreeSet<String> = log
        .lines()
        .filter_map(|l| l.split(" SIP-Call-ID: ").nth(1))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_owned)
        .collect();
    assert_eq!(logged, sent, "one record per Call-ID sent");

    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    assert!(events.ends_with('\n'), "the last event is whole");
    let mut evented = BTreeSet::new();
    for line in events.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["status"], 504, "{line}");
        assert_eq!(v["ms_diagnostics_code"], 1009, "{line}");
        evented.insert(v["call_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(events.lines().count(), n, "events");
    assert_eq!(evented, sent, "one event per Call-ID sent");

    // The shutdown says what was written, and the console had one short line per decision.
    assert!(err.contains("SIGTERM: shutting down"), "{err}");
    assert!(
        err.contains(&format!("wrote {n} log record(s) and {n} event(s)")),
        "{err}"
    );
    let consoled: BTreeSet<String> = err
        .lines()
        .filter_map(|l| l.split_once(": 504 INVITE from acano.steven.lab ("))
        .filter_map(|(_, rest)| {
            rest.strip_suffix("): 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH")
        })
        .map(str::to_owned)
        .collect();
    assert_eq!(
        consoled, sent,
        "one console line per decision, with its Call-ID"
    );
    let lines = err.lines().filter(|l| l.contains(" 504 INVITE ")).count();
    assert_eq!(
        lines,
        n,
        "{}",
        err.lines().take(5).collect::<Vec<_>>().join("\n")
    );
    assert!(
        !err.contains("$$begin record"),
        "the console does not get the record"
    );
    assert!(
        !err.contains('\u{1b}'),
        "no colour when stderr is not a terminal"
    );
}
