//! `edgesim certs` end to end: the lab files, then `inspect` against the Edge rules and its exit codes.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn edgesim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_edgesim"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn lab_then_inspect_seed_and_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, _, err) = edgesim(&["certs", "lab", "--out", d, "--key", "ecdsa"]);
    assert_eq!(code, 0, "{err}");
    let ca = format!("{d}/ca.pem");

    let seed = format!("{d}/vcse-seed.pem");
    let (code, out, _) = edgesim(&[
        "certs",
        "inspect",
        &seed,
        "--ca",
        &ca,
        "--fqdn",
        "vcse.acano.steven.lab",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("\nPASS chain: trusted: leads to "), "{out}");
    assert!(
        out.contains("\nFAIL name vcse.acano.steven.lab: add vcse.acano.steven.lab to the certificate's SAN\n"),
        "{out}"
    );

    let fixed = format!("{d}/vcse-fixed.chain.pem");
    let (code, out, _) = edgesim(&[
        "certs",
        "inspect",
        &fixed,
        "--ca",
        &ca,
        "--fqdn",
        "vcse.acano.steven.lab",
        "--fqdn",
        "vcse.cms.steven.lab",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("\nPASS eku: serverAuth and clientAuth present\n"),
        "{out}"
    );
}

#[test]
fn issue_server_only_warns_about_client_auth_removal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert_eq!(edgesim(&["certs", "ca", "--out", d]).0, 0);
    let (code, _, err) = edgesim(&[
        "certs",
        "issue",
        "--ca",
        d,
        "--out",
        d,
        "--name",
        "srv",
        "--cn",
        "vcse.steven.lab",
        "--eku",
        "server",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = edgesim(&["certs", "inspect", &format!("{d}/srv.pem"), "--json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["pass"], false);
    assert_eq!(v["facts"]["san_dns"][0], "vcse.steven.lab");
    let eku = &v["checks"][1];
    assert_eq!(eku["rule"], "eku");
    assert!(eku["detail"].as_str().unwrap().contains("FN74362"));

    let (code, _, err) = edgesim(&["certs", "inspect", "/nonexistent/peer.pem"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "edgesim: cannot read certificate file /nonexistent/peer.pem: No such file or directory (os error 2) — check the path and the file's permissions\n"
    );
}
