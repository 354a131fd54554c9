//! `edgesim serve` start-up and shutdown (issue 11 items 6, 10, 29, 14): everything is loaded and checked
//! before the "listening" line, a failed start says only why, SIGTERM stops it like Ctrl-C, and the start-up
//! report names the trusted CAs and where ms-diagnostics go. Every run serves its own DNS on 127.0.0.1:0 (no
//! system resolver).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient};
use edgesim::pki::{KeyType, LabCa, LeafSpec, TlsIdentity};

const CONFIG: &str = r#"
[[users]]
user = "stejanss"
ring_ms = 10

[[users]]
user = "alice@other.lab"

[[dns.records]]
type = "SRV"
name = "_sipfederationtls._tcp.acano.steven.lab"
priority = 10
weight = 10
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

fn serve(dir: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgesim"));
    c.args(["--log", "info", "serve", "--serve-dns", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(extra)
        .current_dir(dir);
    c
}

/// A start that must fail: its output, after it exited by itself.
fn failed_start(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("listening"),
        "a failed start announced itself: {stdout}"
    );
    out
}

/// Starts serve, reads its start-up report (up to the resolver line) and the bound address.
fn started(
    mut cmd: Command,
) -> (
    Kill,
    std::net::SocketAddr,
    String,
    std::process::ChildStderr,
) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.starts_with("edgesim Edge sip.skype.lab listening on tls "),
        "{first}"
    );
    let addr = first.rsplit_once(' ').unwrap().1.parse().unwrap();
    let mut report = vec![first];
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("resolving SRV records with");
        report.push(line);
        if done {
            break;
        }
    }
    (Kill(child), addr, report.join("\n"), stderr)
}

#[tokio::test]
async fn sigterm_stops_like_ctrl_c_and_the_report_names_trust_and_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("edge.toml"), CONFIG).unwrap();
    let events = dir.path().join("events.jsonl");
    let (mut child, addr, report, mut stderr) = started(serve(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--config",
            "edge.toml",
            "--events",
            "events.jsonl",
        ],
    ));
    let data = dir.path().join("data");
    assert!(
        report.contains("trusting peer certificates issued by: CN=edgesim lab CA ")
            && report.contains(&format!("({}, the lab CA)", data.join("ca.pem").display())),
        "{report}"
    );
    assert!(
        report.contains("ms-diagnostics: sent to the peer on every Edge answer"),
        "{report}"
    );
    assert!(
        report.contains("profile: sfb2015 (Skype for Business Server 2015): Server: RTC/6.0; a real one offers TLS 1.2, 1.1, 1.0; edgesim offers TLS 1.2 (from the profile; rustls has no TLS 1.0/1.1)"),
        "{report}"
    );
    assert!(
        report.contains("warning: [[users]] user = \"alice@other.lab\" is in other.lab"),
        "{report}"
    );

    // One call answered, one refused certificate, then SIGTERM.
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
    assert_eq!(
        peer.request(&req.build(), t).await.unwrap().status_code(),
        Some(200)
    );
    let stranger = LabCa::generate("another lab CA", KeyType::EcdsaP256).unwrap();
    let bad = TlsIdentity::from(
        &stranger
            .issue(&LeafSpec::new("vcse.acano.steven.lab"))
            .unwrap(),
    );
    if let Ok(mut p) = PeerClient::connect(addr, "sip.skype.lab", Some(&bad), t).await {
        let _ = p.request(&req.build(), t).await;
    }
    let pid = child.0.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM must stop serve cleanly");
    let ev = std::fs::read_to_string(&events).unwrap();
    assert_eq!(ev.lines().count(), 2, "{ev}");
    assert!(ev.ends_with('\n'), "complete lines: {ev}");
    assert!(ev.lines().all(|l| l.starts_with("{\"schema\":1,")), "{ev}");

    // Item 14: the console shows no Option or Debug wrappers.
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert!(err.contains("SIGTERM: shutting down"), "{err}");
    assert!(!err.contains("Some("), "{err}");
    assert!(
        !err.contains("UntrustedRoot") && !err.contains("UnknownIssuer"),
        "{err}"
    );
}

#[test]
fn faithful_says_diagnostics_are_withheld() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, _addr, report, _err) = started(serve(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--faithful"],
    ));
    assert!(
        report.contains("ms-diagnostics: withheld from the peer (faithful"),
        "{report}"
    );
}

#[test]
fn address_in_use_asks_whether_another_edgesim_runs() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = failed_start(&mut serve(dir.path(), &["--listen", &addr]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot listen on {addr}: the address is already in use — is another edgesim running?"
        )),
        "{err}"
    );
}

#[test]
fn an_edge_certificate_from_another_ca_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // The Edge certificate from one CA, the data directory's CA replaced by another of the same name.
    let old = LabCa::generate("edgesim lab CA", KeyType::EcdsaP256).unwrap();
    old.issue(&LeafSpec::new("sip.skype.lab"))
        .unwrap()
        .write(&data, "edge")
        .unwrap();
    LabCa::generate("edgesim lab CA", KeyType::EcdsaP256)
        .unwrap()
        .save(&data)
        .unwrap();
    let out = failed_start(&mut serve(dir.path(), &["--listen", "127.0.0.1:0"]));
    let err = String::from_utf8_lossy(&out.stderr);
    let chain = data.join("edge.chain.pem").display().to_string();
    let ca = data.join("ca.pem").display().to_string();
    assert!(
        err.contains(&format!(
            "the Edge certificate {chain} does not chain to the lab CA {ca} that serve tells the Expressway-E to trust"
        )),
        "{err}"
    );
    assert!(err.contains("another CA with the same name"), "{err}");
    assert!(
        err.contains(&format!(
            "Fix: delete {chain} and {}",
            data.join("edge.key").display()
        )),
        "{err}"
    );
}

#[test]
fn files_that_do_not_load_stop_the_start_before_it_announces_itself() {
    let dir = tempfile::tempdir().unwrap();
    // A trust anchor file that is not there.
    std::fs::write(
        dir.path().join("edge.toml"),
        "[tls]\nca = [\"missing-ca.pem\"]\n",
    )
    .unwrap();
    let out = failed_start(&mut serve(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--config", "edge.toml"],
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tls.ca") && err.contains("missing-ca.pem"),
        "{err}"
    );
    // A log file that cannot be opened.
    let out = failed_start(&mut serve(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--log-file",
            "no/such/dir/edge.log",
        ],
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("log_file: cannot open no/such/dir/edge.log: "),
        "{err}"
    );
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "the OS error once: {err}"
    );
}

#[test]
fn a_configured_edge_certificate_peers_would_refuse_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let ca = LabCa::generate("edgesim test CA", KeyType::EcdsaP256).unwrap();
    ca.issue(&LeafSpec::new("edge.other.lab").eku(edgesim::pki::EkuChoice::ServerAuth))
        .unwrap()
        .write(dir.path(), "edge")
        .unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.chain_pem()).unwrap();
    std::fs::write(
        dir.path().join("edge.toml"),
        "[tls]\ncert = \"edge.chain.pem\"\nkey = \"edge.key\"\nca = [\"ca.pem\"]\n",
    )
    .unwrap();
    let (_child, _addr, report, _err) = started(serve(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--config", "edge.toml"],
    ));
    assert!(
        report.contains("trusting peer certificates issued by: CN=edgesim test CA (")
            && report.contains("ca.pem)"),
        "{report}"
    );
    assert!(
        report.contains("edge.chain.pem does not name edge.fqdn = sip.skype.lab (in its SAN)"),
        "{report}"
    );
    assert!(
        report.contains("lacks the Server or the Client Authentication EKU"),
        "{report}"
    );
    assert!(!report.contains("outside its validity period"), "{report}");
}
