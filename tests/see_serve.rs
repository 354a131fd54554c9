//! Seeing the wire through the real binary: `edgesim serve --keylog --pcap --metrics --hep` takes a good call
//! and a failing one placed by `edgesim call --pcap --keylog` (Edge to Edge over mutual TLS on loopback), and
//! the lab's tools read what both wrote:
//! - tcpdump captures the TLS on `lo`; tshark decrypts it with the Edge's key log and finds every message,
//!   the failing call's INVITE and 504 among them, with their Call-IDs; with the caller's key log, exactly the
//!   connection that caller made;
//! - tshark reads the Edge's and the caller's pcapng files (no keys) and lists every message in order;
//! - the metrics exposition, parsed by `prometheus-parse`, counts the handshakes, requests, responses (with
//!   their ms-diagnostics codes), decisions and DNS lookups;
//! - sngrep's HEP listener receives every message, with its Call-ID, from the Edge and from the caller.
//!
//! One lab for all of it: a single serve process and two calls keep the test to a few seconds.
#![allow(clippy::unwrap_used)]

#[path = "common/wire_tools.rs"]
mod wire_tools;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use edgesim::pki::{KeyType, LabCa, LeafSpec};
use prometheus_parse::{Scrape, Value};
use wire_tools::{Capture, Sngrep, eventually, tshark};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The stdout lines of `child` until one contains `needle` (bounded wait).
fn lines_until(rx: &mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => {
                let done = line.contains(needle);
                seen.push(line);
                if done {
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

/// The lab: a CA, the inbound Edge sip.fabrikam.lab (user bob answers) and the caller's certificate
/// sip.skype.lab; the Edge's DNS serves skype.lab's SRV so that the caller passes Rule 1 and Rule 2.
fn lab(dir: &Path) -> std::path::PathBuf {
    let ca = LabCa::generate("see test CA", KeyType::EcdsaP256).unwrap();
    ca.issue(&LeafSpec::new("sip.fabrikam.lab"))
        .unwrap()
        .write(dir, "fab")
        .unwrap();
    ca.issue(&LeafSpec::new("sip.skype.lab"))
        .unwrap()
        .write(dir, "sky")
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.chain_pem()).unwrap();
    let config = dir.join("edge.toml");
    std::fs::write(
        &config,
        r#"
[edge]
fqdn = "sip.fabrikam.lab"
domain = "fabrikam.lab"

[tls]
cert = "fab.chain.pem"
key = "fab.key"
ca = ["ca.pem"]

[[users]]
user = "bob"
action = "answer"
ring_ms = 10

[[dns.records]]
name = "_sipfederationtls._tcp.skype.lab"
type = "SRV"
priority = 0
weight = 0
port = 5061
target = "sip.skype.lab"

[[dns.records]]
name = "sip.skype.lab"
type = "A"
address = "127.0.0.1"
"#,
    )
    .unwrap();
    config
}

/// `edgesim call sip:bob@fabrikam.lab` as sip.skype.lab from `from`; returns the exit code and the Call-ID
/// of the response it prints.
fn call(
    dir: &Path,
    dns: SocketAddr,
    from: &str,
    extra: &[&str],
    keylog_env: Option<&Path>,
) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_edgesim"))
        .args([
            "call",
            "sip:bob@fabrikam.lab",
            "--from",
            from,
            "--timeout",
            "10",
        ])
        .args(["--dns", &dns.to_string()])
        .arg("--cert")
        .arg(dir.join("sky.chain.pem"))
        .arg("--key")
        .arg(dir.join("sky.key"))
        .arg("--ca")
        .arg(dir.join("ca.pem"))
        .args(extra)
        .env_remove("SSLKEYLOGFILE")
        .envs(keylog_env.map(|k| ("SSLKEYLOGFILE", k)))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let call_id = text
        .lines()
        .find_map(|l| l.strip_prefix("Call-ID: "))
        .unwrap_or_else(|| {
            panic!(
                "no Call-ID in:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_owned();
    (out.status.code().unwrap(), call_id)
}

fn scrape(addr: SocketAddr) -> Scrape {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(b) => b.iter().map(|b| b.count).fold(0.0, f64::max),
            other => panic!("{name}: {other:?}"),
        })
        .unwrap_or_else(|| panic!("no sample {name} {labels:?} in {:#?}", s.samples))
}

/// `method\tstatus\tcall-id` of each SIP message tshark reads in `file` (`extra` arguments first).
fn sip_in(file: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["-r", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "-Y",
        "sip",
        "-T",
        "fields",
        "-e",
        "sip.Method",
        "-e",
        "sip.Status-Code",
        "-e",
        "sip.Call-ID",
    ]);
    tshark(&args).lines().map(str::to_owned).collect()
}

/// The capture on `lo` as tshark decrypts it with `keys`.
fn decrypted(capture: &Path, port: u16, keys: &Path) -> Vec<String> {
    let decode = format!("tcp.port=={port},tls");
    let sip_on_tls = format!("tls.port=={port},sip");
    let keylog = format!("tls.keylog_file:{}", keys.display());
    sip_in(capture, &["-d", &decode, "-d", &sip_on_tls, "-o", &keylog])
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn serve_and_call_show_the_wire_to_tshark_prometheus_and_sngrep() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = lab(d);
    let sngrep = Sngrep::start(d, None);
    let (keys, pcap) = (d.join("edge.keys"), d.join("edge.pcapng"));
    let mut serve = Kill(
        Command::new(env!("CARGO_BIN_EXE_edgesim"))
            .args(["--log", "warn", "serve", "--listen", "127.0.0.1:0"])
            .args(["--serve-dns", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
            .args(["--hep", &format!("udp:127.0.0.1:{}", sngrep.port)])
            .args(["--hep-capture-id", "77"])
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(d.join("data"))
            .arg("--keylog")
            .arg(&keys)
            .arg("--pcap")
            .arg(&pcap)
            .env_remove("SSLKEYLOGFILE")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    let stdout = serve.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let seen = lines_until(&rx, "Prometheus metrics on http://");
    let text = seen.join("\n");
    let edge: SocketAddr = after(&seen, "listening on tls ").parse().unwrap();
    let dns: SocketAddr = after(&seen, "serving DNS on udp+tcp ").parse().unwrap();
    let metrics: SocketAddr = after(&seen, "Prometheus metrics on http://")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap();
    // The start-up report says what each sink does, and what the key log exposes.
    for needle in [
        format!("TLS key log (--keylog): {} (mode 0600)", keys.display()),
        format!("decrypted SIP as pcapng: {}", pcap.display()),
        format!(
            "sending every SIP message as HEP3 to udp:127.0.0.1:{} (capture id 77)",
            sngrep.port
        ),
    ] {
        assert!(text.contains(&needle), "no {needle:?} in:\n{text}");
    }
    assert!(text.contains("it decrypts every connection"), "{text}");

    let capture = Capture::start(
        &d.join("lo.pcap"),
        &["tcp", "port", &edge.port().to_string()],
    );
    let env_keys = d.join("env.keys");
    let (good_exit, good) = call(d, dns, "sip:alice@skype.lab", &[], Some(&env_keys));
    assert_eq!(good_exit, 0, "the good call is connected");
    let (call_keys, call_pcap) = (d.join("call.keys"), d.join("call.pcapng"));
    // The caller's own HEP feed goes to a second collector (two senders to one would interleave).
    let caller_sngrep = Sngrep::start(d, None);
    let caller_hep = format!("udp:127.0.0.1:{}", caller_sngrep.port);
    let (bad_exit, bad) = call(
        d,
        dns,
        "sip:carol@nosrv.lab",
        &[
            "--keylog",
            call_keys.to_str().unwrap(),
            "--pcap",
            call_pcap.to_str().unwrap(),
            "--hep",
            &caller_hep,
        ],
        None,
    );
    assert_eq!(
        bad_exit, 10,
        "the failing call is rejected by the peer Edge"
    );
    let good_ladder: Vec<String> = [
        "INVITE\t\t",
        "\t180\t",
        "\t200\t",
        "ACK\t\t",
        "BYE\t\t",
        "\t200\t",
    ]
    .iter()
    .map(|l| format!("{l}{good}"))
    .collect();
    let bad_ladder: Vec<String> = ["INVITE\t\t", "\t504\t", "ACK\t\t"]
        .iter()
        .map(|l| format!("{l}{bad}"))
        .collect();
    let both: Vec<String> = good_ladder.iter().chain(&bad_ladder).cloned().collect();

    // tshark decrypts the capture with the Edge's key log: both calls, the 504 with its Call-ID.
    let seen = eventually(
        Duration::from_secs(15),
        "tshark never decrypted both calls with the Edge's key log",
        || {
            let lines = decrypted(&capture.file, edge.port(), &keys);
            (lines == both).then_some(lines)
        },
    );
    assert_eq!(seen, both);
    // With the caller's key log: exactly the connection that `call --keylog` made.
    assert_eq!(
        decrypted(&capture.file, edge.port(), &call_keys),
        bad_ladder
    );
    // SSLKEYLOGFILE, honoured by the good call: exactly its connection.
    assert_eq!(
        decrypted(&capture.file, edge.port(), &env_keys),
        good_ladder
    );
    capture.stop();

    // Plain SIP where TLS is expected: the handshake fails, and counts as a TLS error.
    {
        let mut s = std::net::TcpStream::connect(edge).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"OPTIONS sip:bob@fabrikam.lab SIP/2.0\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
    }

    // The metrics, parsed by a Prometheus parser.
    let m = eventually(
        Duration::from_secs(10),
        "the metrics never showed both connections closed",
        || {
            let m = scrape(metrics);
            (value(&m, "edgesim_tls_connections_open", &[]) == 0.0).then_some(m)
        },
    );
    for (name, labels, want) in [
        ("edgesim_tls_handshakes_total", vec![("result", "ok")], 2.0),
        (
            "edgesim_tls_handshakes_total",
            vec![("result", "tls_error")],
            1.0,
        ),
        (
            "edgesim_sip_requests_total",
            vec![("method", "INVITE")],
            2.0,
        ),
        ("edgesim_sip_requests_total", vec![("method", "ACK")], 2.0),
        ("edgesim_sip_requests_total", vec![("method", "BYE")], 1.0),
        (
            "edgesim_sip_responses_total",
            vec![("status", "504"), ("ms_diagnostics", "1008")],
            1.0,
        ),
        (
            "edgesim_sip_responses_total",
            vec![("status", "200"), ("ms_diagnostics", "none")],
            2.0,
        ),
        (
            "edgesim_sip_responses_total",
            vec![("status", "180"), ("ms_diagnostics", "none")],
            1.0,
        ),
        ("edgesim_dns_lookups_total", vec![("result", "ok")], 2.0),
        (
            "edgesim_dns_lookups_total",
            vec![("result", "refused")],
            1.0,
        ),
        ("edgesim_sink_backlog", vec![("sink", "pcap")], 0.0),
    ] {
        assert_eq!(value(&m, name, &labels), want, "{name} {labels:?}");
    }
    // A decision for each INVITE and the BYE.
    assert_eq!(value(&m, "edgesim_sip_decision_latency_seconds", &[]), 3.0);

    // Stopping the Edge writes out its pcapng.
    Command::new("kill")
        .args(["-TERM", &serve.0.id().to_string()])
        .status()
        .unwrap();
    let status = eventually(Duration::from_secs(10), "serve did not stop", || {
        serve.0.try_wait().unwrap()
    });
    assert!(status.success(), "{status}");

    // The pcapng files need no keys: every message, in order, with the real ports.
    assert_eq!(sip_in(&pcap, &[]), both);
    assert_eq!(sip_in(&call_pcap, &[]), bad_ladder);
    let ports = tshark(&[
        "-r",
        pcap.to_str().unwrap(),
        "-Y",
        "sip.Method == \"INVITE\"",
        "-T",
        "fields",
        "-e",
        "tcp.dstport",
    ]);
    assert_eq!(ports, format!("{0}\n{0}\n", edge.port()));
    for f in [&keys, &pcap, &call_keys, &call_pcap, &env_keys] {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }

    // sngrep decoded the HEP: both dialogs, every message with its Call-ID.
    let hep = sngrep.finish(2);
    let from_hep = sip_in(&hep, &[]);
    // UDP datagrams from one socket arrive in order.
    assert_eq!(from_hep, both);
    // `call --hep`: the caller's side of the failing call.
    assert_eq!(sip_in(&caller_sngrep.finish(1), &[]), bad_ladder);
}
