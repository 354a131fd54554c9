//! `--config` as a user runs it from the built binary: every relative path in the file is relative to the file's
//! directory for every command (`serve`, `call`), whatever the working directory; and the configuration messages
//! name the file, the field and the fix (a key that is not the certificate's, a bad value inside an array of
//! tables, a missing file, an unopenable log file, a limit out of range).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use edgesim::dns::{DnsServer, HickoryLookup, Lookup, ResolverSettings, ZoneSet};
use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient};
use edgesim::pki::{KeyType, LabCa, LeafSpec, TlsIdentity};

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A lab directory `lab/` with a CA (`pki/ca.pem`), the Edge certificate (`pki/edge.chain.pem`,
/// `pki/edge.key`) and a zone file (`zones/steven.lab.zone`), and `lab/edge.toml` naming them all with paths
/// relative to `lab/`.
struct LabDir {
    _root: tempfile::TempDir,
    lab: PathBuf,
    config: PathBuf,
    /// A working directory that is not `lab/`.
    elsewhere: PathBuf,
    ca: LabCa,
}

const CONFIG: &str = r#"
log_file = "logs/edge.log"
events_file = "events.jsonl"

[tls]
cert = "pki/edge.chain.pem"
key = "pki/edge.key"
ca = ["pki/ca.pem"]

[[users]]
user = "stejanss"
ring_ms = 0

[dns]
zone_files = ["zones/steven.lab.zone"]
"#;

fn lab_dir(config: &str) -> LabDir {
    let root = tempfile::tempdir().unwrap();
    let lab = root.path().join("lab");
    let elsewhere = root.path().join("elsewhere");
    for d in ["pki", "zones", "logs"] {
        std::fs::create_dir_all(lab.join(d)).unwrap();
    }
    std::fs::create_dir_all(&elsewhere).unwrap();
    let ca = LabCa::generate("edgesim config test CA", KeyType::EcdsaP256).unwrap();
    ca.save(&lab.join("pki")).unwrap();
    ca.issue(&LeafSpec::new("sip.skype.lab"))
        .unwrap()
        .write(&lab.join("pki"), "edge")
        .unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/zones/steven.lab.zone"),
        lab.join("zones/steven.lab.zone"),
    )
    .unwrap();
    let path = lab.join("edge.toml");
    std::fs::write(&path, config).unwrap();
    LabDir {
        _root: root,
        lab,
        config: path,
        elsewhere,
        ca,
    }
}

fn edgesim(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgesim"));
    c.current_dir(cwd).env_remove("RUST_LOG");
    c
}

/// `serve --config FILE` in `cwd` that is expected to stop at start: its exit status and stderr.
fn serve_fails(cwd: &Path, config: &Path) -> (Option<i32>, String) {
    let out: Output = edgesim(cwd)
        .args(["--log", "error", "serve", "--listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(cwd.join("data"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_every_file_of_its_configuration_relative_to_it_from_any_directory() {
    let d = lab_dir(CONFIG);
    let mut child = Kill(
        edgesim(&d.elsewhere)
            .args([
                "--log",
                "error",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--serve-dns",
                "127.0.0.1:0",
            ])
            .arg("--config")
            .arg(&d.config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let lines: Vec<String> = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .take_while(|l| !l.starts_with("resolving SRV records with"))
            .collect()
    })
    .await
    .unwrap();
    let text = lines.join("\n");
    let addr: SocketAddr = lines
        .iter()
        .find_map(|l| l.rsplit_once("listening on tls "))
        .map(|(_, a)| a.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no listening line in {text}"));
    let dns: SocketAddr = lines
        .iter()
        .find_map(|l| l.split_once("udp+tcp "))
        .and_then(|(_, a)| {
            a.split_whitespace()
                .next()?
                .trim_end_matches([',', ':'])
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no DNS line in {text}"));
    // The served zone is the configuration's zone file (zones/ next to it, not in the working directory).
    let lookup = HickoryLookup::new(ResolverSettings::server(dns)).unwrap();
    let srv = lookup
        .srv("_sipfederationtls._tcp.acano.steven.lab")
        .await
        .unwrap();
    assert!(!srv.is_empty());
    // The Edge presents pki/edge.chain.pem and trusts pki/ca.pem: a peer from that CA gets through.
    let id = TlsIdentity::from(&d.ca.issue(&LeafSpec::new("vcse.acano.steven.lab")).unwrap());
    let t = Duration::from_secs(5);
    let mut peer = PeerClient::connect(addr, "sip.skype.lab", Some(&id), t)
        .await
        .unwrap();
    let req = ExpresswayRequest::new("OPTIONS", "sip:vcse@steven.lab", "sip:stejanss@skype.lab");
    let r = peer.request(&req.build(), t).await.unwrap();
    assert!(r.status_code().is_some());
    // log_file and events_file were opened next to the configuration, not in the working directory.
    assert!(d.lab.join("logs/edge.log").is_file());
    assert!(d.lab.join("events.jsonl").is_file());
    assert!(!d.elsewhere.join("events.jsonl").exists());
    assert!(!d.elsewhere.join("logs").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_reads_tls_cert_key_and_ca_relative_to_its_configuration() {
    let d = lab_dir(CONFIG);
    // A DNS server with no zone: the call stops at the SRV lookup, after the certificates are loaded.
    let dns = DnsServer::bind(ZoneSet::new(), SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let addr = dns.local_addr().to_string();
    let (cwd, config) = (d.elsewhere.clone(), d.config.clone());
    let out = tokio::task::spawn_blocking(move || {
        edgesim(&cwd)
            .args([
                "--log",
                "error",
                "call",
                "sip:space@cms.steven.lab",
                "--json",
            ])
            .arg("--config")
            .arg(&config)
            .args(["--dns", &addr])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    dns.shutdown().await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 11: no SRV record — the Edge certificate and the CA loaded (a wrong path would be 2).
    assert_eq!(out.status.code(), Some(11), "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let notes = v["notes"].to_string();
    assert!(!notes.contains("ephemeral"), "{notes}");
    assert!(!notes.contains("no trusted CA"), "{notes}");
}

#[test]
fn a_missing_certificate_is_named_with_the_path_tried_and_not_told_to_give_a_pem() {
    let d = lab_dir(&CONFIG.replace("pki/edge.chain.pem", "pki/absent.pem"));
    let (code, err) = serve_fails(&d.elsewhere, &d.config);
    assert_eq!(code, Some(2), "{err}");
    let tried = d.lab.join("pki/absent.pem");
    assert!(
        err.contains(&format!(
            "cannot read certificate file {}: No such file or directory (os error 2) — check the path and the \
             file's permissions",
            tried.display()
        )),
        "{err}"
    );
    assert!(!err.contains("give a PEM"), "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
}

#[test]
fn a_key_that_is_not_the_certificates_names_both_files_and_both_keys() {
    let d = lab_dir(CONFIG);
    let other = d.ca.issue(&LeafSpec::new("other.skype.lab")).unwrap();
    other.write(&d.lab.join("pki"), "other").unwrap();
    std::fs::write(&d.config, CONFIG.replace("pki/edge.key", "pki/other.key")).unwrap();
    let (code, err) = serve_fails(&d.elsewhere, &d.config);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{} is not the private key of the certificate in {}: its public key differs from the certificate's \
             — give the key that was issued with that certificate (tls.cert with tls.key, --cert with --key)",
            d.lab.join("pki/other.key").display(),
            d.lab.join("pki/edge.chain.pem").display()
        )),
        "{err}"
    );
}

#[test]
fn a_bad_value_in_an_array_of_tables_is_reported_at_its_key_with_the_field() {
    let d = lab_dir(
        "[[dns.records]]\nname = \"_sipfederationtls._tcp.a.lab\"\ntype = \"SRV\"\nport = \"5061\"\n\
         target = \"sip.a.lab\"\n",
    );
    let (code, err) = serve_fails(&d.elsewhere, &d.config);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err,
        format!(
            "edgesim: {}:4:1: field `dns.records.port`: invalid type: string \"5061\", expected u16\n  hint: give \
             the value the type shown (quote strings, no quotes around numbers and booleans)\n",
            d.config.display()
        )
    );
}

#[test]
fn a_missing_configuration_prints_the_os_error_once() {
    let d = lab_dir(CONFIG);
    let absent = d.lab.join("absent.toml");
    let (code, err) = serve_fails(&d.elsewhere, &absent);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err,
        format!(
            "edgesim: {}: cannot read the configuration: No such file or directory (os error 2); check the path \
             given to --config\n",
            absent.display()
        )
    );
}

#[test]
fn an_unopenable_log_file_names_log_file() {
    let d = lab_dir(&CONFIG.replace("logs/edge.log", "no-such-dir/edge.log"));
    let (code, err) = serve_fails(&d.elsewhere, &d.config);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "log_file: cannot open {}: No such file or directory (os error 2); check that its directory exists \
             and is writable",
            d.lab.join("no-such-dir/edge.log").display()
        )),
        "{err}"
    );
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
}

#[test]
fn a_limit_beyond_its_range_is_refused_at_start_without_a_panic() {
    for (line, field, want) in [
        (
            "max_connections = 3000000000000000000",
            "limits.max_connections",
            "3000000000000000000 is out of range: give a number of concurrent connections from 1 to 1000000",
        ),
        (
            "idle_timeout_ms = 0",
            "limits.idle_timeout_ms",
            "0 is out of range (0 does not mean \"off\"): give milliseconds from 1 to 86400000",
        ),
        (
            "max_requests_per_sec = 0",
            "limits.max_requests_per_sec",
            "0 is out of range (0 does not mean \"off\"): give requests per second per connection (the top of \
             the range for no practical limit) from 1 to 1000000",
        ),
    ] {
        let d = lab_dir(&format!("[limits]\n{line}\n"));
        let (code, err) = serve_fails(&d.elsewhere, &d.config);
        assert_eq!(code, Some(2), "{err}");
        assert_eq!(
            err,
            format!("edgesim: {}: `{field}`: {want}\n", d.config.display())
        );
    }
}

#[test]
fn a_missing_zone_file_is_looked_for_next_to_the_configuration_and_its_error_printed_once() {
    let d = lab_dir(&CONFIG.replace("zones/steven.lab.zone", "zones/absent.zone"));
    let out = edgesim(&d.elsewhere)
        .args([
            "--log",
            "error",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--serve-dns",
            "127.0.0.1:0",
        ])
        .arg("--config")
        .arg(&d.config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "cannot read zone file {}: No such file or directory (os error 2)",
            d.lab.join("zones/absent.zone").display()
        )),
        "{err}"
    );
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
}
