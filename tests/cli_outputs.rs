//! What every command prints, as a user sees it from the built binary: help with exit codes, a closed output
//! (`| head -1`) ending quietly, no colour codes when the output is not a terminal, library chatter kept below
//! `info`, a scenario table that fits 100 columns.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Output, Stdio};

use edgesim::dns::{HickoryLookup, Lookup, ResolverSettings};

fn edgesim() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgesim"));
    c.env_remove("RUST_LOG").env_remove("NO_COLOR");
    c
}

fn run(args: &[&str]) -> Output {
    edgesim().args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `args` with a stdout whose reading end is already closed.
fn with_closed_stdout(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    edgesim()
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_command_lists_its_exit_codes_in_its_help() {
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["call"],
        &["check"],
        &["certs"],
        &["certs", "ca"],
        &["certs", "issue"],
        &["certs", "inspect"],
        &["certs", "lab"],
        &["dns"],
        &["dns", "serve"],
        &["dns", "query"],
        &["scenario"],
        &["scenario", "run"],
        &["scenario", "list"],
        &["scenario", "show"],
        &["load"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let out = run(&args);
        assert!(out.status.success(), "{args:?}");
        let help = text(&out.stdout);
        assert!(help.contains("Exit codes: "), "{args:?}:\n{help}");
        assert!(help.contains(" 2 "), "{args:?} does not name 2:\n{help}");
    }
}

#[test]
fn the_log_flag_is_short_and_general_and_the_scenario_default_is_in_the_scenario_help() {
    let want = "Log filter (tracing syntax, e.g. `debug` or `edgesim=debug`); RUST_LOG works too\n";
    for args in [&["--help"][..], &["serve", "--help"], &["load", "--help"]] {
        let help = text(&run(args).stdout);
        let line = help.lines().find(|l| l.contains("--log <FILTER>")).unwrap();
        assert_eq!(
            format!("{}\n", line.split_once("--log <FILTER>").unwrap().1.trim()),
            want,
            "{args:?}"
        );
        assert!(!help.contains("table already shows"), "{args:?}:\n{help}");
    }
    let help = text(&run(&["scenario", "--help"]).stdout);
    assert!(
        help.contains(
            "Logs: only errors unless --log or RUST_LOG say otherwise; the table already shows every Edge \
             record and explanation."
        ),
        "{help}"
    );
}

#[test]
fn a_closed_output_ends_each_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let ca =
        edgesim::pki::LabCa::generate("edgesim test CA", edgesim::pki::KeyType::EcdsaP256).unwrap();
    ca.issue(&edgesim::pki::LeafSpec::new("vcse.steven.lab"))
        .unwrap()
        .write(dir.path(), "vcse")
        .unwrap();
    let cert = dir.path().join("vcse.pem");
    let data = dir.path().join("data");
    // A port where nothing listens: bound by the OS, then let go (no fixed port another test could hold).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let commands: Vec<Vec<String>> = vec![
        vec!["scenario".into(), "run".into()],
        vec!["scenario".into(), "list".into()],
        vec!["scenario".into(), "show".into()],
        vec!["certs".into(), "inspect".into(), cert.display().to_string()],
        vec![
            "load".into(),
            "--target".into(),
            closed.to_string(),
            "--requests".into(),
            "2".into(),
            "--lab-cert-cn".into(),
            "vcse.steven.lab".into(),
        ],
        vec![
            "serve".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            data.display().to_string(),
        ],
    ];
    for args in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = with_closed_stdout(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

#[test]
fn no_colour_codes_when_stderr_is_not_a_terminal() {
    // `--log info` makes the scenario run log a line per Edge decision: plenty of level names to colour; a bare
    // level keeps the DNS server's per-query lines out.
    let out = run(&["--log", "info", "scenario", "run"]);
    let err = text(&out.stderr);
    assert!(err.contains(" INFO "), "{err}");
    assert!(!err.contains("hickory_server"), "{err}");
    assert!(!err.contains('\x1b'), "{err:?}");
    assert!(!text(&out.stdout).contains('\x1b'));
}

#[test]
fn the_scenario_table_fits_100_columns_when_not_a_terminal() {
    let out = run(&["scenario", "run"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let table: Vec<&str> = stdout
        .lines()
        .take_while(|l| !l.contains(" passed in "))
        .collect();
    assert!(table.len() >= 7, "{stdout}");
    for l in &table {
        assert!(
            l.chars().count() <= 100,
            "{} columns: {l}",
            l.chars().count()
        );
    }
    for l in stdout
        .lines()
        .filter(|l| l.starts_with("    Edge: ") || l.starts_with("      "))
    {
        assert!(l.chars().count() <= 100, "{l}");
    }
    assert!(stdout.contains("    Edge: "), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_queries_are_not_logged_per_query_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edge.toml");
    std::fs::write(
        &config,
        "[[dns.records]]\nname = \"_sipfederationtls._tcp.acano.steven.lab\"\ntype = \"SRV\"\nport = 5061\n\
         target = \"vcse.acano.steven.lab\"\n",
    )
    .unwrap();
    let mut child = Kill(
        edgesim()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--serve-dns",
                "127.0.0.1:0",
            ])
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
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
        .unwrap_or_else(|| panic!("no DNS address in {lines:?}"));
    assert!(dns.ip() == Ipv4Addr::LOCALHOST);
    let lookup = HickoryLookup::new(ResolverSettings {
        cache_max_entries: 0,
        ..ResolverSettings::server(dns)
    })
    .unwrap();
    let srv = lookup
        .srv("_sipfederationtls._tcp.acano.steven.lab")
        .await
        .unwrap();
    assert_eq!((srv[0].priority, srv[0].weight), (0, 0));
    assert!(
        lookup
            .srv("_sipfederationtls._tcp.nowhere.lab")
            .await
            .is_err()
    );
    let _ = child.0.kill();
    let stderr = child.0.stderr.take().unwrap();
    let err = tokio::task::spawn_blocking(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    })
    .await
    .unwrap();
    assert!(!err.contains("hickory"), "{err}");
}
