//! The "seeing the wire" flags refuse bad values before anything runs, with a message naming the flag (or
//! `SSLKEYLOGFILE`) and the fix, and exit 2; the help says what a key log exposes.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use edgesim::pki::{KeyType, LabCa, LeafSpec};

fn edgesim(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgesim"));
    c.args(args).env_remove("SSLKEYLOGFILE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn refused(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for n in needles {
        assert!(err.contains(n), "no {n:?} in: {err}");
    }
    // Nothing was announced: the Edge never started.
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening on"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// An Edge configuration with its certificate on disk (ECDSA: no RSA key to generate on each run).
fn config(dir: &Path) -> String {
    let ca = LabCa::generate("see flags CA", KeyType::EcdsaP256).unwrap();
    ca.issue(&LeafSpec::new("sip.skype.lab"))
        .unwrap()
        .write(dir, "edge")
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.chain_pem()).unwrap();
    let path = dir.join("edge.toml");
    std::fs::write(
        &path,
        "[tls]\ncert = \"edge.chain.pem\"\nkey = \"edge.key\"\nca = [\"ca.pem\"]\n",
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

fn serve(cfg: &str, extra: &[&str]) -> Output {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--config", cfg];
    args.extend_from_slice(extra);
    edgesim(&args, &[])
}

#[test]
fn a_bad_hep_collector_names_the_flag_and_the_form() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    refused(
        &serve(&cfg, &["--hep", "homer:9060"]),
        &[
            "--hep",
            "unknown transport \"homer\"",
            "write udp:HOST:PORT or tcp:HOST:PORT (e.g. udp:127.0.0.1:9060)",
        ],
    );
    refused(
        &serve(&cfg, &["--hep", "udp:127.0.0.1:0"]),
        &["--hep", "the port 0 is not a collector's port"],
    );
    refused(
        &edgesim(
            &["call", "sip:bob@fabrikam.lab", "--hep", "udp:[::1:9060"],
            &[],
        ),
        &["--hep", "no closing ]"],
    );
}

#[test]
fn unwritable_files_and_bad_bounds_name_the_flag_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let missing = dir.path().join("no-such-dir").join("x");
    let missing = missing.to_str().unwrap();
    refused(
        &serve(&cfg, &["--pcap", missing]),
        &[
            "--pcap: pcap ",
            "no-such-dir",
            "check that its directory exists",
        ],
    );
    refused(
        &serve(&cfg, &["--keylog", missing]),
        &["--keylog: key log ", "check that its directory exists"],
    );
    let target = dir.path().join("real.keys");
    std::fs::write(&target, "").unwrap();
    let link = dir.path().join("link.keys");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    refused(
        &serve(&cfg, &["--keylog", link.to_str().unwrap()]),
        &[
            "--keylog: key log ",
            "is a symbolic link; name the file itself",
        ],
    );
    let pcap = dir.path().join("x.pcapng");
    refused(
        &serve(
            &cfg,
            &["--pcap", pcap.to_str().unwrap(), "--pcap-max-mb", "0"],
        ),
        &["--pcap-max-mb 0", "1 or more"],
    );
    // A bound without the file it bounds.
    refused(&serve(&cfg, &["--pcap-keep", "2"]), &["--pcap"]);
}

#[test]
fn sslkeylogfile_is_honoured_and_named_when_it_cannot_be_used() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("k");
    let out = edgesim(
        &["check", "fabrikam.lab", "--dns", "127.0.0.1:9"],
        &[("SSLKEYLOGFILE", missing.to_str().unwrap())],
    );
    refused(
        &out,
        &[
            "SSLKEYLOGFILE: key log ",
            "unset SSLKEYLOGFILE to run without a key log",
        ],
    );
    // --keylog wins over the variable (its file is the one opened, and the variable's bad path is not).
    let keys = dir.path().join("flag.keys");
    let out = edgesim(
        &[
            "check",
            "fabrikam.lab",
            "--dns",
            "127.0.0.1:9",
            "--keylog",
            keys.to_str().unwrap(),
        ],
        &[("SSLKEYLOGFILE", missing.to_str().unwrap())],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS key log (--keylog)"), "{err}");
    assert!(keys.is_file(), "{err}");
}

#[test]
fn a_metrics_address_in_use_says_pick_another() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    refused(
        &serve(&cfg, &["--metrics", &addr]),
        &[
            &format!("--metrics {addr}: the address is already in use"),
            "pick another --metrics",
        ],
    );
}

#[test]
fn the_help_says_what_a_key_log_exposes_for_every_command() {
    for cmd in [
        &["serve"][..],
        &["call"],
        &["check"],
        &["load"],
        &["scenario", "run"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let out = edgesim(&args, &[]);
        let help = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for n in [
            "--keylog <FILE>",
            "SSLKEYLOGFILE",
            "can decrypt every captured connection",
            "0600",
        ] {
            assert!(help.contains(n), "{cmd:?}: no {n:?} in {help}");
        }
    }
    for cmd in [&["serve"][..], &["call"]] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let help = String::from_utf8_lossy(&edgesim(&args, &[]).stdout).into_owned();
        for n in [
            "--pcap <FILE>",
            "--pcap-max-mb",
            "--pcap-keep",
            "--hep",
            "--hep-capture-id",
        ] {
            assert!(help.contains(n), "{cmd:?}: no {n:?} in {help}");
        }
    }
    let help =
        String::from_utf8_lossy(&edgesim(&["scenario", "run", "--help"], &[]).stdout).into_owned();
    for n in ["--pcap <FILE>", "--pcap-max-mb", "--pcap-keep"] {
        assert!(help.contains(n), "scenario run: no {n:?} in {help}");
    }
    let help = String::from_utf8_lossy(&edgesim(&["serve", "--help"], &[]).stdout).into_owned();
    assert!(help.contains("--metrics <ADDR>"), "{help}");
}
