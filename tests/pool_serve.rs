//! `edgesim serve` as an Edge pool (issue 17), the real binary: members from repeated `--listen` (one name, an A
//! record each) or from `[[pool.members]]` (SRV priorities, initial fault modes), published by `--serve-dns`,
//! and switched from a shell by editing the `--faults` file and sending SIGUSR1 (with the real `kill`).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use edgesim::dns::{HickoryLookup, Lookup, ResolverSettings, SrvRecord};
use edgesim::lab::peer::client::{
    ExpresswayRequest, PeerClient, PeerError, request_with_srv_failover,
};
use edgesim::pki::{LabCa, LeafSpec, TlsIdentity};

const T: Duration = Duration::from_secs(3);

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

/// The configuration both tests share: steven.lab's SRV for the Edge's check of the Expressway, short timeouts.
const BASE: &str = r#"
[limits]
handshake_timeout_ms = 700

[[dns.records]]
name = "_sipfederationtls._tcp.steven.lab"
type = "SRV"
port = 5061
target = "vcse.steven.lab"
"#;

struct Served {
    child: Kill,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    startup: Vec<String>,
    dns: SocketAddr,
}

fn serve(dir: &Path, config: &str, args: &[&str]) -> Served {
    let file = dir.join("edge.toml");
    std::fs::write(&file, config).unwrap();
    let mut child = Kill(
        Command::new(env!("CARGO_BIN_EXE_edgesim"))
            .args([
                "--log",
                "warn",
                "serve",
                "--serve-dns",
                "127.0.0.1:0",
                "--config",
            ])
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--events")
            .arg(dir.join("events.jsonl"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = lines_of(child.0.stdout.take().unwrap());
    let stderr = lines_of(child.0.stderr.take().unwrap());
    let startup = wait_for(&stdout, "resolving SRV records with");
    let dns = after(&startup, "serving DNS on udp+tcp ").parse().unwrap();
    Served {
        child,
        stdout,
        stderr,
        startup,
        dns,
    }
}

/// The members the start-up report lists: `pool member <addr> listening on tls (SRV target <t>): <mode>`.
fn members(startup: &[String]) -> Vec<(SocketAddr, String, String)> {
    startup
        .iter()
        .filter_map(|l| l.strip_prefix("pool member "))
        .filter_map(|rest| {
            let (addr, rest) = rest.split_once(" listening on tls (SRV target ")?;
            let (target, mode) = rest.split_once("): ")?;
            Some((addr.parse().ok()?, target.to_owned(), mode.to_owned()))
        })
        .collect()
}

fn lookup(dns: SocketAddr) -> HickoryLookup {
    HickoryLookup::new(ResolverSettings {
        timeout_ms: 1000,
        attempts: 1,
        cache_max_entries: 0,
        ..ResolverSettings::server(dns)
    })
    .unwrap()
}

fn expressway(dir: &Path) -> TlsIdentity {
    let ca = LabCa::load_dir(&dir.join("data")).unwrap();
    TlsIdentity::from(&ca.issue(&LeafSpec::new("vcse.steven.lab")).unwrap())
}

fn options() -> ExpresswayRequest {
    ExpresswayRequest::new("OPTIONS", "sip:vcse@steven.lab", "sip:stejanss@skype.lab")
}

fn usr1(child: &Child) {
    let status = Command::new("kill")
        .args(["-USR1", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn repeated_listen_is_one_name_with_an_a_record_each_switched_by_sigusr1() {
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("faults.toml");
    let faults_arg = faults.to_str().unwrap();
    let mut s = serve(
        dir.path(),
        BASE,
        &[
            "--listen",
            "127.0.0.2:0",
            "--listen",
            "127.0.0.3:0",
            "--faults",
            faults_arg,
        ],
    );
    let text = s.startup.join("\n");
    let ms = members(&s.startup);
    assert_eq!(ms.len(), 2, "{text}");
    let (m1, m2) = (ms[0].0, ms[1].0);
    // DNS load balancing: one target, one port, an A record per member.
    assert_eq!(
        (m1.ip().to_string(), m2.ip().to_string()),
        ("127.0.0.2".into(), "127.0.0.3".into())
    );
    assert_eq!(m1.port(), m2.port(), "members of one target share its port");
    for (_, target, mode) in &ms {
        assert_eq!(
            (target.as_str(), mode.as_str()),
            ("sip.skype.lab", "accept")
        );
    }
    assert!(
        s.startup[0].starts_with(&format!("edgesim Edge sip.skype.lab listening on tls {m1}")),
        "{text}"
    );
    assert!(
        s.startup.contains(&"Edge pool: 2 members".to_owned()),
        "{text}"
    );
    assert!(
        s.startup.iter().any(|l| l.starts_with(&format!(
            "pool faults: edit {faults_arg} (one line per member"
        ))),
        "{text}"
    );
    let dns = lookup(s.dns);
    assert_eq!(
        dns.srv("_sipfederationtls._tcp.skype.lab").await.unwrap(),
        vec![SrvRecord {
            priority: 0,
            weight: 0,
            port: m1.port(),
            target: "sip.skype.lab".into()
        }]
    );
    let mut addrs = dns.addrs("sip.skype.lab").await.unwrap();
    addrs.sort();
    assert_eq!(addrs, vec![m1.ip(), m2.ip()]);

    let id = expressway(dir.path());
    let req = options();
    let walk = || request_with_srv_failover(&dns, "skype.lab", Some(&id), &req, T);

    // The first member to 503 from a shell: edit the file, send SIGUSR1.
    std::fs::write(&faults, "\"127.0.0.2\" = \"503\"\n").unwrap();
    usr1(&s.child.0);
    wait_for(
        &s.stdout,
        &format!("pool member {m1}: accept -> 503 (faults file {faults_arg}, SIGUSR1)"),
    );
    let f = walk().await.unwrap();
    let (c, answer) = f.answered.expect("the second member answers");
    assert_eq!((answer.status_code(), c.peer_addr()), (Some(200), m2));
    c.close().await;
    let statuses: Vec<(SocketAddr, Option<u16>)> =
        f.attempts.iter().map(|a| (a.addr, a.status)).collect();
    // DNS may give the addresses in either order; when the 503 member comes first it is tried first.
    if statuses[0].0 == m1 {
        assert_eq!(statuses, vec![(m1, Some(503)), (m2, Some(200))]);
    } else {
        assert_eq!(statuses, vec![(m2, Some(200))]);
    }

    // Both members switched in one edit: reset and refuse-tls.
    std::fs::write(
        &faults,
        "\"127.0.0.2\" = \"reset\"\n\"127.0.0.3\" = \"refuse-tls\"\n",
    )
    .unwrap();
    usr1(&s.child.0);
    wait_for(
        &s.stdout,
        &format!("pool member {m2}: accept -> refuse-tls"),
    );
    assert!(matches!(
        PeerClient::connect(m1, "sip.skype.lab", Some(&id), T).await,
        Err(PeerError::Reset)
    ));
    match PeerClient::connect(m2, "sip.skype.lab", Some(&id), T).await {
        Err(PeerError::Handshake { alert }) => {
            assert_eq!(alert, "received fatal alert: HandshakeFailure")
        }
        other => panic!("{other:?}"),
    }
    let f = walk().await.unwrap();
    assert!(f.answered.is_none(), "{:?}", f.attempts);
    assert_eq!(f.attempts.len(), 2);

    // A bad file changes nothing and says why on stderr.
    std::fs::write(&faults, "\"127.0.0.9\" = \"503\"\n").unwrap();
    usr1(&s.child.0);
    let err = wait_for(&s.stderr, "the pool keeps its fault modes");
    let line = err.last().unwrap();
    assert!(
        line.contains(&format!(
            "SIGUSR1: {faults_arg}: `127.0.0.9` is not a member of the pool (members: {m1}, {m2})"
        )),
        "{line}"
    );
    assert!(matches!(
        PeerClient::connect(m1, "sip.skype.lab", Some(&id), T).await,
        Err(PeerError::Reset)
    ));

    // An empty file puts every member back in its configured mode.
    std::fs::write(&faults, "").unwrap();
    usr1(&s.child.0);
    wait_for(
        &s.stdout,
        &format!("pool member {m2}: refuse-tls -> accept"),
    );
    let mut c = PeerClient::connect(m1, "sip.skype.lab", Some(&id), T)
        .await
        .unwrap();
    assert_eq!(
        c.request(&req.build(), T).await.unwrap().status_code(),
        Some(200)
    );
    c.close().await;

    // Every switch is in the events file.
    let status = Command::new("kill")
        .args(["-TERM", &s.child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = s.child.0.wait();
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let switches: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["log_data"]["fault"].is_string())
        .collect();
    let seen: Vec<String> = switches
        .iter()
        .map(|e| {
            format!(
                "{} {}->{}",
                e["remote"].as_str().unwrap(),
                e["log_data"]["previous"].as_str().unwrap(),
                e["log_data"]["fault"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            format!("{m1} accept->503"),
            format!("{m1} 503->reset"),
            format!("{m2} accept->refuse-tls"),
            format!("{m1} reset->accept"),
            format!("{m2} refuse-tls->accept"),
        ]
    );
    assert_eq!(
        switches[0]["log_data"]["via"],
        format!("faults file {faults_arg}, SIGUSR1")
    );
}

#[tokio::test]
async fn pool_members_table_publishes_srv_priorities_and_initial_faults() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{BASE}
[[pool.members]]
listen = \"127.0.0.2:0\"
target = \"sip1.skype.lab\"
priority = 10
weight = 5
fault = \"silent\"

[[pool.members]]
listen = \"127.0.0.3:0\"
target = \"sip2.skype.lab\"
priority = 20
"
    );
    let s = serve(dir.path(), &config, &[]);
    let text = s.startup.join("\n");
    let ms = members(&s.startup);
    assert_eq!(
        ms.iter()
            .map(|(_, t, m)| format!("{t} {m}"))
            .collect::<Vec<_>>(),
        vec!["sip1.skype.lab silent", "sip2.skype.lab accept"],
        "{text}"
    );
    let (m1, m2) = (ms[0].0, ms[1].0);
    assert!(
        s.startup.contains(&format!("note: pool member {m1} starts in fault mode silent: TCP accepted, never answered (closed after limits.handshake_timeout_ms)")),
        "{text}"
    );
    let dns = lookup(s.dns);
    assert_eq!(
        dns.srv("_sipfederationtls._tcp.skype.lab").await.unwrap(),
        vec![
            SrvRecord {
                priority: 10,
                weight: 5,
                port: m1.port(),
                target: "sip1.skype.lab".into()
            },
            SrvRecord {
                priority: 20,
                weight: 0,
                port: m2.port(),
                target: "sip2.skype.lab".into()
            },
        ]
    );
    // The Expressway tries the silent first priority, gives up on it, and reaches the second.
    let id = expressway(dir.path());
    let req = options();
    let f = request_with_srv_failover(
        &dns,
        "skype.lab",
        Some(&id),
        &req,
        Duration::from_millis(400),
    )
    .await
    .unwrap();
    let tried: Vec<(SocketAddr, Option<u16>)> =
        f.attempts.iter().map(|a| (a.addr, a.status)).collect();
    assert_eq!(tried, vec![(m1, None), (m2, Some(200))]);
    drop(s.stderr);
}

#[test]
fn pool_configuration_errors_name_the_file_the_field_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let run = |config: &str, args: &[&str]| {
        let file = dir.path().join("edge.toml");
        std::fs::write(&file, config).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_edgesim"))
            .args(["serve", "--config"])
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(
            out.stdout.is_empty(),
            "nothing on stdout before everything loaded"
        );
        (file, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (file, err) = run(
        "[[pool.members]]\nlisten = \"127.0.0.2:0\"\n[[pool.members]]\nlisten = \"127.0.0.3:0\"\nweight = 3\n",
        &[],
    );
    assert!(
        err.contains(&format!("{}: `pool.members[1].weight`: this member shares the target sip.skype.lab with pool.members[0], which has weight 0", file.display())),
        "{err}"
    );
    let (_, err) = run(
        "[[pool.members]]\nlisten = \"127.0.0.2:0\"\nfault = \"down\"\n",
        &[],
    );
    assert!(
        err.contains("edge.toml:3:9: field `pool.members.fault`"),
        "{err}"
    );
    assert!(err.contains("unknown variant `down`"), "{err}");
    let (file, err) = run(
        "[[pool.members]]\nlisten = \"127.0.0.2:0\"\n",
        &["--listen", "127.0.0.3:0"],
    );
    assert!(
        err.contains(&format!(
            "--listen and [[pool.members]] in {} both name where the Edge listens",
            file.display()
        )),
        "{err}"
    );
    let (_, err) = run(
        "",
        &["--listen", "127.0.0.2:5071", "--listen", "127.0.0.2:5071"],
    );
    assert!(
        err.contains("--listen 127.0.0.2:5071 is given twice"),
        "{err}"
    );
    let faults = dir.path().join("faults.toml");
    std::fs::write(&faults, "\"127.0.0.2:0\" = \"sometimes\"\n").unwrap();
    let (_, err) = run(
        "",
        &[
            "--listen",
            "127.0.0.2:0",
            "--faults",
            faults.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("faults.toml: `127.0.0.2:0`: `sometimes` is not a fault mode: use accept, refuse-tls, reset, silent or 503"),
        "{err}"
    );
}

#[tokio::test]
async fn edgesim_call_tries_the_next_address_of_the_pool_target() {
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("faults.toml");
    // Applied at start: the first member resets every connection.
    std::fs::write(&faults, "\"127.0.0.2\" = \"reset\"\n").unwrap();
    let s = serve(
        dir.path(),
        BASE,
        &[
            "--listen",
            "127.0.0.2:0",
            "--listen",
            "127.0.0.3:0",
            "--faults",
            faults.to_str().unwrap(),
        ],
    );
    let text = s.startup.join("\n");
    let ms = members(&s.startup);
    let (m1, m2) = (ms[0].0, ms[1].0);
    assert!(
        s.startup.contains(&format!(
            "pool member {m1}: accept -> reset (faults file {}, at start)",
            faults.display()
        )),
        "{text}"
    );
    // The Edge of skype.lab calls its own pool (its certificate from the data directory names sip.skype.lab).
    let out = Command::new(env!("CARGO_BIN_EXE_edgesim"))
        .args([
            "call",
            "sip:stejanss@skype.lab",
            "--options",
            "--verbose",
            "--dns",
        ])
        .arg(s.dns.to_string())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let dns_a = lines
        .iter()
        .position(|l| l.starts_with("[ ok ] dns-a "))
        .unwrap();
    let mut addrs = [m1.ip().to_string(), m2.ip().to_string()];
    // The addresses in the order DNS gave them; the reset member is only tried when it comes first.
    let listed = lines[dns_a].rsplit(" → ").next().unwrap().to_owned();
    if listed == format!("{}, {}", addrs[0], addrs[1]) {
        assert!(
            lines[dns_a + 1].starts_with("[FAIL] ")
                && lines[dns_a + 1].contains(&format!(" {m1}: "))
                && lines[dns_a + 1].ends_with("; trying the next address"),
            "{stdout}"
        );
        assert_eq!(
            lines[dns_a + 2],
            format!("[ ok ] tcp    connected to {m2}"),
            "{stdout}"
        );
    } else {
        addrs.reverse();
        assert_eq!(listed, format!("{}, {}", addrs[0], addrs[1]), "{stdout}");
        assert_eq!(
            lines[dns_a + 1],
            format!("[ ok ] tcp    connected to {m2}"),
            "{stdout}"
        );
    }
    assert!(stdout.contains("SIP/2.0 200 OK"), "{stdout}");
    drop(s.stderr);
    drop(s.stdout);
}
