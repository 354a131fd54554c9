//! `edgesim scenario run --pcap --keylog`: the seed lab's cases (several Edges and outbound calls, run at once)
//! write one pcapng that tshark reads without keys, each connection its own clean TCP stream with every
//! message of its case in order, and one 0600 key log.
#![allow(clippy::unwrap_used)]

#[path = "common/wire_tools.rs"]
mod wire_tools;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use wire_tools::tshark;

#[test]
fn scenario_run_writes_every_cases_messages_to_one_pcapng() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, keys) = (dir.path().join("lab.pcapng"), dir.path().join("lab.keys"));
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/seed-lab.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_edgesim"))
        .args(["scenario", "run"])
        .arg(&seed)
        .arg("--pcap")
        .arg(&pcap)
        .arg("--keylog")
        .arg(&keys)
        .env_remove("SSLKEYLOGFILE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("decrypted SIP as pcapng: {}", pcap.display())),
        "{err}"
    );

    // Messages by TCP stream (one per connection), in the order of the file.
    let listed = tshark(&[
        "-r",
        pcap.to_str().unwrap(),
        "-Y",
        "sip",
        "-T",
        "fields",
        "-E",
        "separator=,",
        "-e",
        "tcp.stream",
        "-e",
        "sip.Method",
        "-e",
        "sip.Status-Code",
    ]);
    let mut streams: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in listed.lines() {
        let (stream, what) = line.split_once(',').unwrap();
        streams
            .entry(stream.to_owned())
            .or_default()
            .push(what.trim_matches(',').to_owned());
    }
    let mut ladders: Vec<String> = streams.into_values().map(|v| v.join(" ")).collect();
    ladders.sort();
    // In: two refusals and the corrected call (the emulated Expressway-E closes after the answer); out:
    // the corrected call, answered by the emulated Expressway-E. The outbound refusals are decided before
    // any SIP is sent (Rule 1 before connecting, Rule 2 after the handshake).
    let mut want = vec![
        "INVITE 504".to_owned(),
        "INVITE 504".to_owned(),
        "INVITE 180 200".to_owned(),
        "INVITE 100 180 200 ACK BYE 200".to_owned(),
    ];
    want.sort();
    assert_eq!(ladders, want, "{listed}");

    // The synthetic TCP is clean: no warning or error in tshark's expert analysis.
    let expert = tshark(&["-r", pcap.to_str().unwrap(), "-q", "-z", "expert,warn"]);
    assert!(expert.trim().is_empty(), "{expert}");

    use std::os::unix::fs::PermissionsExt;
    for f in [&pcap, &keys] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    assert!(
        std::fs::read_to_string(&keys).unwrap().lines().count() >= 6,
        "a secret per connection at least"
    );
}
