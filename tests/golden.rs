//! Golden outputs: what `scenario run scenarios --json`, `check` (text and `--json`) and `certs inspect --json`
//! print for fixed inputs, kept in `tests/golden/` and compared byte for byte after masking what changes from
//! run to run (times, ports, dates, random identifiers, temporary paths).
//!
//! They pin the behaviour across refactors: a change that alters what a user reads shows up here as a diff.
//! After an intended change of output, regenerate with `UPDATE_GOLDEN=1 cargo test --test golden` and read the
//! diff before committing it.
#![allow(clippy::unwrap_used)]

#[path = "common/outbound_lab.rs"]
mod lab;

use std::path::{Path, PathBuf};
use std::process::Command;

use edgesim::dns::{DnsServer, RecordSpec};
use edgesim::lab::peer::server::PeerBehaviour;
use edgesim::pki::{EkuChoice, IssuedCert, KeyType, LabCa, LeafSpec};
use lab::{Lab, a, a_at, dns, srv};
use regex::Regex;

fn edgesim() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgesim"));
    c.env_remove("RUST_LOG").env("NO_COLOR", "1");
    c
}

/// Replaces what differs between runs with stable placeholders.
fn mask(text: &str, tmp: &[&Path]) -> String {
    let mut s = text.to_owned();
    for t in tmp {
        s = s.replace(&t.display().to_string(), "<tmp>");
    }
    let rules: &[(&str, &str)] = &[
        // RFC 3339 times (events, JSON).
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
            "<time>",
        ),
        // The Edge log record's trace-line context: pid.tid::MM/DD/YYYY-HH:MM:SS.mmm.seq and the record id.
        (
            r"\][0-9A-F]{4}\.[0-9A-F]{4}::\d{2}/\d{2}/\d{4}-\d{2}:\d{2}:\d{2}\.\d{3}\.[0-9A-F]{8}",
            "]<pid>.<tid>::<time>.<seq>",
        ),
        (r"\) \[\d+\] \$\$begin", ") [<id>] $$begin"),
        // Dates and times of day (certificate validity, CA names).
        (r"\d{4}-\d{2}-\d{2}", "<date>"),
        (r"\d{2}:\d{2}:\d{2} UTC", "<hh:mm:ss> UTC"),
        // A lab CA's name ends with its key id.
        (r"lab CA <date> [0-9a-f]{6}", "lab CA <date> <keyid>"),
        // Certificate serials.
        (r"([0-9a-f]{2}:){3,}[0-9a-f]{2}", "<serial>"),
        // Loopback ports.
        (r"(127\.0\.0\.\d+|\[::1\]|localhost):\d{2,5}", "$1:<port>"),
        (r"ms-received-port=\d+", "ms-received-port=<port>"),
        (r"\bport \d{2,5}\b", "port <port>"),
        (
            r#"(transport=tls|sip:[^@"\s;>]+@[^:"\s;>]+):\d{2,5}"#,
            "$1:<port>",
        ),
        // Tags, branches, Call-IDs, epids: runs of hex and UUIDs.
        (
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
            "<uuid>",
        ),
        (r"\b[0-9a-fA-F]{10,}\b", "<hex>"),
        (r"z9hG4bK[0-9A-Za-z]+", "z9hG4bK<branch>"),
        // Durations.
        (
            r#""(\w*_ms|ms|millis|elapsed\w*|duration\w*)": ?\d+(\.\d+)?"#,
            "\"$1\": <n>",
        ),
        (r"\b\d+(\.\d+)? ?ms\b", "<n> ms"),
    ];
    for (re, with) in rules {
        s = Regex::new(re)
            .expect("mask pattern")
            .replace_all(&s, *with)
            .into_owned();
    }
    s
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `got` (masked) with the golden file `name`, or writes it with `UPDATE_GOLDEN=1`.
fn assert_golden(name: &str, got: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).expect("golden dir");
        std::fs::write(&path, got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with UPDATE_GOLDEN=1 cargo test --test golden",
            path.display()
        )
    });
    if want != got {
        let first = want
            .lines()
            .zip(got.lines())
            .position(|(w, g)| w != g)
            .unwrap_or_else(|| want.lines().count().min(got.lines().count()));
        panic!(
            "{} differs from the golden output at line {}:\n  want: {}\n  got:  {}\n(whole output below; regenerate with UPDATE_GOLDEN=1 only for an intended change)\n{got}",
            path.display(),
            first + 1,
            want.lines().nth(first).unwrap_or("<end>"),
            got.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

/// stdout and the exit code of one run, as one text.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run edgesim");
    format!(
        "{}\n[exit {}]\n",
        String::from_utf8_lossy(&out.stdout).trim_end(),
        out.status.code().unwrap_or(-1)
    )
}

#[test]
fn scenario_run_scenarios_json() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let got = run(edgesim()
        .current_dir(root)
        .args(["scenario", "run", "scenarios", "--json"]));
    assert_golden("scenario-run-scenarios.json", &mask(&got, &[root]));
}

/// One `check` over a loopback lab: the DNS records and the emulated Expressway-E it needs.
struct CheckCase {
    name: &'static str,
    domain: &'static str,
    /// The peer's certificate, from the lab CA unless `foreign`.
    cert: LeafSpec,
    foreign: bool,
    behaviour: PeerBehaviour,
    /// The DNS records, given the peer's port.
    records: fn(u16) -> Vec<RecordSpec>,
}

/// Moves a certificate's validity bounds half a day away from "now ± whole days", so that the days counted from
/// them do not depend on which second the test runs in.
fn mid_day(mut spec: LeafSpec) -> LeafSpec {
    let half = time::Duration::hours(12);
    let now = time::OffsetDateTime::now_utc();
    if spec.not_after < now {
        spec.not_after -= half;
    }
    if spec.not_before > now {
        spec.not_before += half;
    }
    spec
}

fn ok() -> PeerBehaviour {
    PeerBehaviour::Answer(200, "OK".into())
}

fn route(domain: &str, target: &str, port: u16) -> Vec<RecordSpec> {
    vec![srv(domain, target, port), a(target)]
}

fn check_cases() -> Vec<CheckCase> {
    let both = |name: &str| LeafSpec::new(name).eku(EkuChoice::Both);
    vec![
        CheckCase {
            name: "good",
            domain: "acano.steven.lab",
            cert: both("vcse.acano.steven.lab").san(&["vcse.steven.lab", "vcse.acano.steven.lab"]),
            foreign: false,
            behaviour: ok(),
            records: |p| route("acano.steven.lab", "vcse.acano.steven.lab", p),
        },
        CheckCase {
            name: "seed-parent-domain-target",
            domain: "acano.steven.lab",
            cert: both("vcse.steven.lab"),
            foreign: false,
            behaviour: ok(),
            records: |p| route("acano.steven.lab", "vcse.steven.lab", p),
        },
        CheckCase {
            name: "certificate-lacks-target",
            domain: "cms.steven.lab",
            cert: both("vcse.steven.lab"),
            foreign: false,
            behaviour: ok(),
            records: |p| route("cms.steven.lab", "vcse.cms.steven.lab", p),
        },
        CheckCase {
            name: "server-auth-only",
            domain: "acano.steven.lab",
            cert: LeafSpec::new("vcse.acano.steven.lab").eku(EkuChoice::ServerAuth),
            foreign: false,
            behaviour: ok(),
            records: |p| route("acano.steven.lab", "vcse.acano.steven.lab", p),
        },
        CheckCase {
            name: "untrusted-ca",
            domain: "acano.steven.lab",
            cert: both("vcse.acano.steven.lab"),
            foreign: true,
            behaviour: ok(),
            records: |p| route("acano.steven.lab", "vcse.acano.steven.lab", p),
        },
        CheckCase {
            name: "expired",
            domain: "acano.steven.lab",
            cert: mid_day(both("vcse.acano.steven.lab").expired()),
            foreign: false,
            behaviour: ok(),
            records: |p| route("acano.steven.lab", "vcse.acano.steven.lab", p),
        },
        CheckCase {
            name: "no-san-wildcard-cn",
            domain: "acano.steven.lab",
            cert: LeafSpec::new("vcse.acano.steven.lab")
                .san::<&str>(&[])
                .common_name(Some("*.acano.steven.lab")),
            foreign: false,
            behaviour: ok(),
            records: |p| route("acano.steven.lab", "vcse.acano.steven.lab", p),
        },
        CheckCase {
            name: "no-srv",
            domain: "nosrv.steven.lab",
            cert: both("vcse.nosrv.steven.lab"),
            foreign: false,
            behaviour: ok(),
            records: |_| vec![a("vcse.nosrv.steven.lab")],
        },
        CheckCase {
            name: "dead-address-beside-a-live-one",
            domain: "acano.steven.lab",
            cert: both("vcse.acano.steven.lab"),
            foreign: false,
            behaviour: ok(),
            records: |p| {
                vec![
                    srv("acano.steven.lab", "vcse.acano.steven.lab", p),
                    a_at(
                        "vcse.acano.steven.lab",
                        std::net::Ipv4Addr::new(127, 0, 0, 2),
                    ),
                    a("vcse.acano.steven.lab"),
                ]
            },
        },
        CheckCase {
            name: "peer-resets-the-handshake",
            domain: "acano.steven.lab",
            cert: both("vcse.acano.steven.lab"),
            foreign: false,
            behaviour: PeerBehaviour::ResetHandshake,
            records: |p| route("acano.steven.lab", "vcse.acano.steven.lab", p),
        },
        CheckCase {
            name: "peer-answers-404",
            domain: "acano.steven.lab",
            cert: both("vcse.acano.steven.lab"),
            foreign: false,
            behaviour: PeerBehaviour::Answer(404, "Not Found".into()),
            records: |p| route("acano.steven.lab", "vcse.acano.steven.lab", p),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_over_a_loopback_lab() {
    let lab = Lab::new();
    let foreign = LabCa::generate("edgesim other lab CA", KeyType::EcdsaP256).expect("foreign CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, lab.ca.chain_pem()).expect("ca.pem");
    lab.edge.write(dir.path(), "edge").expect("edge cert");
    for case in check_cases() {
        let cert: IssuedCert = if case.foreign {
            foreign.issue(&case.cert).expect("foreign cert")
        } else {
            lab.peer_cert(&case.cert)
        };
        let peer = lab.peer(&cert, case.behaviour.clone()).await;
        let server: DnsServer = dns(&(case.records)(peer.local_addr().port())).await;
        for json in [false, true] {
            let dns_addr = server.local_addr().to_string();
            let mut cmd = edgesim();
            cmd.current_dir(dir.path()).args([
                "check",
                case.domain,
                "--dns",
                &dns_addr,
                "--ca",
                "ca.pem",
                "--cert",
                "edge.chain.pem",
                "--key",
                "edge.key",
            ]);
            if json {
                cmd.arg("--json");
            }
            let got = tokio::task::spawn_blocking(move || run(&mut cmd))
                .await
                .expect("check");
            let name = format!("check-{}.{}", case.name, if json { "json" } else { "txt" });
            assert_golden(&name, &mask(&got, &[dir.path()]));
        }
        server.shutdown().await;
    }
}

#[test]
fn certs_inspect_json() {
    let ca = LabCa::generate_lab(KeyType::EcdsaP256).expect("lab CA");
    let foreign = LabCa::generate_lab(KeyType::EcdsaP256).expect("another lab CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.chain_pem()).expect("ca.pem");
    let fqdn = "vcse.acano.steven.lab";
    let both = LeafSpec::new(fqdn).eku(EkuChoice::Both);
    let cases: Vec<(&str, IssuedCert)> = vec![
        (
            "good",
            ca.issue(&both.clone().san(&["vcse.steven.lab", fqdn]))
                .expect("good"),
        ),
        (
            "server-auth-only",
            ca.issue(&LeafSpec::new(fqdn).eku(EkuChoice::ServerAuth))
                .expect("server only"),
        ),
        (
            "client-auth-only",
            ca.issue(&LeafSpec::new(fqdn).eku(EkuChoice::ClientAuth))
                .expect("client only"),
        ),
        (
            "lacks-the-fqdn",
            ca.issue(&both.clone().san(&["vcse.steven.lab"]))
                .expect("lacks"),
        ),
        (
            "no-san-two-cns",
            ca.issue(
                &LeafSpec::new(fqdn)
                    .san::<&str>(&[])
                    .leading_cn(Some("vcse.steven.lab")),
            )
            .expect("two CNs"),
        ),
        (
            "wildcard",
            ca.issue(&both.clone().san(&["*.acano.steven.lab"]))
                .expect("wildcard"),
        ),
        (
            "ip-only-san",
            ca.issue(&both.clone().san(&["127.0.0.1"]))
                .expect("ip only"),
        ),
        (
            "expired",
            ca.issue(&mid_day(both.clone().expired())).expect("expired"),
        ),
        (
            "not-yet-valid",
            ca.issue(&mid_day(both.clone().not_yet_valid()))
                .expect("not yet valid"),
        ),
        (
            "other-lab-ca",
            foreign.issue(&both.clone()).expect("foreign"),
        ),
    ];
    for (name, cert) in cases {
        cert.write(dir.path(), name).expect("write cert");
        let file = format!("{name}.chain.pem");
        for args in [
            vec![
                "certs", "inspect", &file, "--json", "--fqdn", fqdn, "--ca", "ca.pem",
            ],
            vec!["certs", "inspect", &file, "--fqdn", fqdn, "--ca", "ca.pem"],
        ] {
            let json = args.contains(&"--json");
            let got = run(edgesim().current_dir(dir.path()).args(&args));
            assert_golden(
                &format!("certs-inspect-{name}.{}", if json { "json" } else { "txt" }),
                &mask(&got, &[dir.path()]),
            );
        }
    }
}
