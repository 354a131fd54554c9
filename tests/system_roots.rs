//! `--system-roots` / `tls.use_system_roots`: the real binary trusts what `SSL_CERT_FILE` / `SSL_CERT_DIR` hold,
//! set here to a lab CA in a tempdir so the test never depends on the machine's CA store.
#![allow(clippy::unwrap_used)]

#[path = "common/outbound_lab.rs"]
mod lab;

use lab::{Lab, dns_route};

use edgesim::lab::peer::server::PeerBehaviour;
use edgesim::pki::LeafSpec;

/// Runs `edgesim check acano.steven.lab --json` with the roots environment pointing at `roots`; returns the
/// chain line (status, text) and the exit code.
async fn check_chain(
    dns_addr: std::net::SocketAddr,
    roots: &std::path::Path,
    extra: &[&str],
) -> (String, String, Option<i32>) {
    let tmp = tempfile::tempdir().unwrap();
    let empty_dir = tmp.path().join("certs");
    std::fs::create_dir(&empty_dir).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgesim"))
        .args(["--log", "error", "check", "acano.steven.lab", "--json"])
        .arg("--dns")
        .arg(dns_addr.to_string())
        // An empty data dir: an ephemeral Edge certificate, and no lab CA trusted from it.
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .args(extra)
        .env("SSL_CERT_FILE", roots)
        .env("SSL_CERT_DIR", &empty_dir)
        .output()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let line = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| {
            l["rule"] == "cert"
                && l["detail"]
                    .as_str()
                    .unwrap()
                    .contains("certificate chain of")
        })
        .unwrap_or_else(|| panic!("no chain line in {v:#}"))
        .clone();
    (
        line["status"].as_str().unwrap().to_string(),
        line["detail"].as_str().unwrap().to_string(),
        out.status.code(),
    )
}

#[tokio::test]
async fn check_trusts_the_system_roots_only_when_asked() {
    let lab = Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab"));
    let peer = lab
        .peer(&cert, PeerBehaviour::Answer(200, "OK".into()))
        .await;
    let dns = dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let roots_dir = tempfile::tempdir().unwrap();
    let roots = roots_dir.path().join("roots.pem");
    std::fs::write(&roots, lab.ca.chain_pem()).unwrap();

    let (status, text, _) = check_chain(dns.local_addr(), &roots, &["--system-roots"]).await;
    assert_eq!(status, "PASS", "{text}");
    assert!(text.contains("leads to a CA the Edge trusts"), "{text}");

    let (status, text, code) = check_chain(dns.local_addr(), &roots, &[]).await;
    assert_eq!(status, "FAIL", "{text}");
    assert!(text.contains("SEC_E_UNTRUSTED_ROOT"), "{text}");
    assert_eq!(code, Some(1));

    // The configuration key does the same as the flag.
    let config = roots_dir.path().join("edge.toml");
    std::fs::write(&config, "[tls]\nuse_system_roots = true\n").unwrap();
    let config = config.to_str().unwrap();
    let (status, text, _) = check_chain(dns.local_addr(), &roots, &["--config", config]).await;
    assert_eq!(status, "PASS", "{text}");
}

#[test]
fn unreadable_roots_file_is_a_configuration_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgesim"))
        .args([
            "check",
            "acano.steven.lab",
            "--system-roots",
            "--dns",
            "127.0.0.1:9",
        ])
        .arg("--data-dir")
        .arg(tmp.path())
        .env("SSL_CERT_FILE", tmp.path().join("missing.pem"))
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot load the system's trusted roots"),
        "{err}"
    );
}

/// Starts `edgesim serve` with `config` and the roots environment at `roots`; returns the child, its TLS
/// address and the start-up lines.
fn serve(
    config: &std::path::Path,
    roots: &std::path::Path,
    empty_dir: &std::path::Path,
) -> (Kill, std::net::SocketAddr, String) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Kill(
        Command::new(env!("CARGO_BIN_EXE_edgesim"))
            .args(["--log", "error", "serve", "--listen", "127.0.0.1:0"])
            .args(["--serve-dns", "127.0.0.1:0", "--config"])
            .arg(config)
            .env("SSL_CERT_FILE", roots)
            .env("SSL_CERT_DIR", empty_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
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
    (child, addr, seen.join("\n"))
}

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_trusts_the_system_roots_with_the_config_key() {
    use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient};
    use edgesim::pki::TlsIdentity;
    use std::time::Duration;

    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let empty_dir = dir.path().join("certs");
    std::fs::create_dir(&empty_dir).unwrap();
    let roots = dir.path().join("roots.pem");
    std::fs::write(&roots, lab.ca.chain_pem()).unwrap();
    lab.edge.write(dir.path(), "edge").unwrap();
    let base = r#"
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

[tls]
cert = "edge.chain.pem"
key = "edge.key"
"#;
    let peer_id = TlsIdentity::from(&lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab")));
    let t = Duration::from_secs(5);
    let invite = ExpresswayRequest::new(
        "INVITE",
        "sip:2000@acano.steven.lab",
        "sip:stejanss@skype.lab",
    )
    .build();

    // tls.ca is empty: only the system roots (the lab CA, through SSL_CERT_FILE) can make the peer trusted.
    let on = dir.path().join("on.toml");
    std::fs::write(&on, format!("{base}use_system_roots = true\n")).unwrap();
    let (_edge, addr, text) = serve(&on, &roots, &empty_dir);
    assert!(text.contains("trusting 1 system root CAs"), "{text}");
    let mut peer = PeerClient::connect(addr, "sip.skype.lab", Some(&peer_id), t)
        .await
        .unwrap();
    let r = peer.request(&invite, t).await.unwrap();
    assert_eq!(r.status_code(), Some(200));

    let off = dir.path().join("off.toml");
    std::fs::write(&off, base).unwrap();
    let (_edge, addr, text) = serve(&off, &roots, &empty_dir);
    assert!(!text.contains("system root"), "{text}");
    // The Edge resets an untrusted client after the handshake: no answer to the INVITE.
    let refused = match PeerClient::connect(addr, "sip.skype.lab", Some(&peer_id), t).await {
        Err(_) => true,
        Ok(mut p) => p.request(&invite, t).await.is_err(),
    };
    assert!(refused, "an untrusted peer got an answer");
}
