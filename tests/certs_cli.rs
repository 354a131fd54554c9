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
    assert_eq!(v["status"], "FAIL");
    assert_eq!(v["facts"]["san_dns"][0], "vcse.steven.lab");
    let eku = &v["lines"][1];
    assert_eq!(eku["rule"], "eku");
    assert_eq!(eku["status"], "FAIL");
    assert!(eku["detail"].as_str().unwrap().contains("FN74362"));
    assert!(
        eku["fix"]
            .as_str()
            .unwrap()
            .starts_with("reissue it with both Server and Client Authentication EKUs")
    );

    let (code, _, err) = edgesim(&["certs", "inspect", "/nonexistent/peer.pem"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "edgesim: cannot read certificate file /nonexistent/peer.pem: No such file or directory (os error 2) — check the path and the file's permissions\n"
    );
}

fn issue(ca: &str, out: &str, name: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "certs", "issue", "--ca", ca, "--out", out, "--name", name, "--key", "ecdsa",
    ];
    args.extend_from_slice(extra);
    edgesim(&args)
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap()
}

#[test]
fn ca_refuses_to_replace_a_ca_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = edgesim(&["certs", "ca", "--out", d, "--key", "ecdsa"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(CN=edgesim lab CA "), "{out}");
    let ca_pem = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    assert_eq!(issue(d, d, "vcse", &["--cn", "vcse.steven.lab"]).0, 0);
    let subject = {
        let (_, out, _) = edgesim(&["certs", "inspect", &format!("{d}/ca.pem"), "--json"]);
        json(&out)["facts"]["subject"].as_str().unwrap().to_string()
    };

    let (code, out, err) = edgesim(&["certs", "ca", "--out", d, "--key", "ecdsa"]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(
        err,
        format!(
            "edgesim: certs ca: {d} already holds a CA ({subject}) ({d}/ca.pem and {d}/ca.key); a new CA would \
             replace it, and the certificates it issued would no longer chain to the CA in that directory, nor \
             to the new CA that peers then import — choose another --out, or pass --force to replace it\n"
        )
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ca.pem")).unwrap(),
        ca_pem,
        "the CA was replaced"
    );

    // --force replaces it, and then the certificate it issued no longer chains: what the refusal warned of.
    let (code, _, err) = edgesim(&["certs", "ca", "--out", d, "--key", "ecdsa", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert_ne!(
        std::fs::read_to_string(dir.path().join("ca.pem")).unwrap(),
        ca_pem
    );
    let (code, out, _) = edgesim(&[
        "certs",
        "inspect",
        &format!("{d}/vcse.pem"),
        "--ca",
        &format!("{d}/ca.pem"),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("\nFAIL chain: the chain does not lead to "),
        "{out}"
    );
}

#[test]
fn every_lab_ca_has_its_own_name() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut names = Vec::new();
    for dir in [&a, &b] {
        let d = dir.path().to_str().unwrap();
        assert_eq!(edgesim(&["certs", "ca", "--out", d, "--key", "ecdsa"]).0, 0);
        let (_, out, _) = edgesim(&["certs", "inspect", &format!("{d}/ca.pem"), "--json"]);
        names.push(json(&out)["facts"]["subject"].as_str().unwrap().to_string());
    }
    assert_ne!(names[0], names[1]);
    for n in &names {
        assert!(n.starts_with("CN=edgesim lab CA 20"), "{n}");
    }
    // A leaf of one, inspected against the other: not trusted, in words (their names differ).
    let (da, db) = (a.path().to_str().unwrap(), b.path().to_str().unwrap());
    assert_eq!(issue(db, db, "vcse", &["--cn", "vcse.steven.lab"]).0, 0);
    let (code, out, _) = edgesim(&[
        "certs",
        "inspect",
        &format!("{db}/vcse.pem"),
        "--ca",
        &format!("{da}/ca.pem"),
    ]);
    assert_eq!(code, 1);
    assert!(
        out.contains("\nFAIL chain: the chain does not lead to "),
        "{out}"
    );
    assert!(out.contains(&format!("issuer       {}", names[1])), "{out}");
}

#[test]
fn inspect_explains_a_same_named_ca_without_a_debug_dump() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (da, db) = (a.path().to_str().unwrap(), b.path().to_str().unwrap());
    // Two CAs named alike, as every lab CA was before: one RSA, one ECDSA (webpki's
    // UnsupportedSignatureAlgorithmForPublicKeyContext case).
    let same = ["--cn", "edgesim lab CA"];
    assert_eq!(
        edgesim(&[&["certs", "ca", "--out", da, "--key", "rsa"][..], &same].concat()).0,
        0
    );
    assert_eq!(
        edgesim(&[&["certs", "ca", "--out", db, "--key", "ecdsa"][..], &same].concat()).0,
        0
    );
    assert_eq!(issue(db, db, "vcse", &["--cn", "vcse.steven.lab"]).0, 0);
    let leaf = format!("{db}/vcse.chain.pem");
    let ca = format!("{da}/ca.pem");
    let (code, out, _) = edgesim(&["certs", "inspect", &leaf, "--ca", &ca]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!(
            "\nFAIL chain: issued by a CA that is not one in {ca}: its issuer CN=edgesim lab CA has the name of \
             a CA given with --ca, but the signature does not verify with that CA's key, so another CA with the \
             same name issued it — give the CA that issued it with --ca (and import that one into the Edge's \
             trusted roots)\n"
        )),
        "{out}"
    );
    let (_, out, _) = edgesim(&["certs", "inspect", &leaf, "--ca", &ca, "--json"]);
    for debug in [
        "InvalidSignature",
        "Unsupported",
        "signature_algorithm_id",
        "Context",
    ] {
        assert!(!out.contains(debug), "{out}");
    }
}

#[test]
fn issue_trims_names_and_refuses_what_is_not_a_dns_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert_eq!(edgesim(&["certs", "ca", "--out", d, "--key", "ecdsa"]).0, 0);
    let (code, _, err) = issue(d, d, "two", &["--san", "a.lab, b.lab", "--cn", " a.lab "]);
    assert_eq!(code, 0, "{err}");
    let pem = format!("{d}/two.pem");
    let (code, out, _) = edgesim(&["certs", "inspect", &pem, "--fqdn", "b.lab", "--json"]);
    assert_eq!(code, 0, "{out}");
    let v = json(&out);
    assert_eq!(v["facts"]["san_dns"], serde_json::json!(["a.lab", "b.lab"]));
    assert_eq!(v["facts"]["common_names"], serde_json::json!(["a.lab"]));

    for (args, message) in [
        (
            vec!["--san", "bad name"],
            "edgesim: SAN entry \"bad name\" is not a DNS name: it contains a space (several names are comma \
             separated: a.lab,b.lab) — give host names such as vcse.steven.lab\n",
        ),
        (
            vec!["--san", "a.lab,,b.lab"],
            "edgesim: SAN entry \"\" is not a DNS name: it is empty — give host names such as vcse.steven.lab\n",
        ),
        (
            vec!["--san", "vcse_1.lab"],
            "edgesim: SAN entry \"vcse_1.lab\" is not a DNS name: it contains '_': a DNS name has only letters, \
             digits, '-' and '.' (internationalised names in their xn-- form) — give host names such as \
             vcse.steven.lab\n",
        ),
        (
            vec!["--cn", "bad name", "--no-san"],
            "edgesim: subject CN \"bad name\" is not a DNS name: it contains a space (several names are comma \
             separated: a.lab,b.lab) — give host names such as vcse.steven.lab\n",
        ),
        (
            // Without --san, the CN is also the SAN.
            vec!["--cn", "vcse.steven.lab."],
            "edgesim: SAN entry \"vcse.steven.lab.\" is not a DNS name: it ends with a dot: write it without the \
             trailing dot — give host names such as vcse.steven.lab\n",
        ),
    ] {
        let (code, _, err) = issue(d, d, "bad", &args);
        assert_eq!((code, err.as_str()), (2, message), "{args:?}");
    }
    assert!(!dir.path().join("bad.pem").exists());
    // With a SAN, the CN is only a label.
    let (code, _, err) = issue(
        d,
        d,
        "label",
        &["--san", "vcse.steven.lab", "--cn", "Lab Expressway"],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn one_default_key_type_stated_in_the_help() {
    for cmd in ["ca", "issue", "lab"] {
        let (code, out, _) = edgesim(&["certs", cmd, "--help"]);
        assert_eq!(code, 0);
        assert!(
            out.contains(
                "Key algorithm. RSA-2048 (the default) is what Skype for Business Edges use and what every \
                 Expressway version imports; ECDSA P-256 needs Expressway X14.3 or later"
            ),
            "certs {cmd}: {out}"
        );
        assert!(out.contains("[default: rsa]"), "certs {cmd}: {out}");
    }
    // And the CA written without --key is RSA.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert_eq!(edgesim(&["certs", "ca", "--out", d]).0, 0);
    let der = edgesim::pki::load_pem_chain(&dir.path().join("ca.pem")).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der[0]).unwrap();
    assert_eq!(
        cert.public_key().algorithm.algorithm.to_id_string(),
        "1.2.840.113549.1.1.1",
        "rsaEncryption"
    );
}
