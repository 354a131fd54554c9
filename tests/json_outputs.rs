//! The `--json` documents of `check`, `certs inspect`, `call`, `scenario run` and `load`, from the real binary
//! over real TLS and DNS on loopback: each starts with the shared envelope (`schema`, `command`, `status`) and
//! lists `lines` of `status`, `rule`, `detail`, `fix` (docs/json.md).
#![allow(clippy::unwrap_used)]

#[path = "common/outbound_lab.rs"]
mod lab;

#[path = "common/edge_lab.rs"]
mod edge_lab;

use std::path::Path;

use edgesim::lab::peer::server::PeerBehaviour;
use edgesim::pki::{EkuChoice, KeyType, LabCa, LeafSpec};
use serde_json::Value;

/// What the binary printed: the exit code, the document parsed, the document as printed, and stderr.
struct Run {
    code: Option<i32>,
    v: Value,
    text: String,
    err: String,
}

/// Runs the binary with `args`.
async fn edgesim(args: Vec<String>) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgesim"))
        .env_remove("RUST_LOG")
        .args(["--log", "error"])
        .args(&args)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}\n{text}\n{err}"));
    Run {
        code: out.status.code(),
        v,
        text,
        err,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The envelope: its keys first, in this order, as printed, and `lines` last; every line with the four keys.
fn assert_envelope(run: &Run, command: &str, status: &str) {
    let (v, text) = (&run.v, &run.text);
    assert!(
        text.starts_with(&format!(
            "{{\n  \"schema\": 1,\n  \"command\": \"{command}\",\n  \"status\": \"{status}\",\n"
        )),
        "{text}"
    );
    // `lines` is the last key of the document: after it only its own closing bracket.
    let last = text
        .rfind("\n  \"lines\": [")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        !text[last + 1..].contains("\n  \""),
        "a key after lines: {text}"
    );
    assert_eq!(v["schema"], 1);
    assert_eq!(v["command"], command);
    assert_eq!(v["status"], status);
    for line in v["lines"].as_array().unwrap() {
        let keys: Vec<&String> = line.as_object().unwrap().keys().collect();
        for key in ["status", "rule", "detail", "fix"] {
            assert!(keys.iter().any(|k| *k == key), "{key} missing in {line}");
        }
        assert!(
            ["PASS", "WARN", "FAIL"].contains(&line["status"].as_str().unwrap()),
            "{line}"
        );
    }
}

/// The first line whose `rule` is `rule` and whose `status` is `status`.
fn line<'a>(v: &'a Value, rule: &str, status: &str) -> &'a Value {
    v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rule"] == rule && l["status"] == status)
        .unwrap_or_else(|| panic!("no {status} {rule} line in {v:#}"))
}

/// The Edge's certificate, key and the lab CA in `dir`, as `--cert/--key/--ca` arguments.
fn edge_args(lab: &lab::Lab, dir: &Path) -> Vec<String> {
    let [_, chain, key] = lab.edge.write(dir, "edge").unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, lab.ca.chain_pem()).unwrap();
    vec![
        "--ca".into(),
        ca.display().to_string(),
        "--cert".into(),
        chain.display().to_string(),
        "--key".into(),
        key.display().to_string(),
    ]
}

#[tokio::test]
async fn check_json_lists_the_failing_name_rule_with_its_fix() {
    let lab = lab::Lab::new();
    // A real peer over mutual TLS whose certificate does not name the SRV target.
    let cert = lab.peer_cert(&LeafSpec::new("vcse.steven.lab"));
    let peer = lab
        .peer(&cert, PeerBehaviour::Answer(200, "OK".into()))
        .await;
    let dns = lab::dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = strings(&["check", "acano.steven.lab", "--json", "--dns"]);
    args.push(dns.local_addr().to_string());
    args.extend(edge_args(&lab, dir.path()));
    let run = edgesim(args).await;
    let (code, v, err) = (run.code, &run.v, &run.err);
    assert_eq!(code, Some(1), "{err}");
    assert_envelope(&run, "check", "FAIL");
    assert_eq!(v["domain"], "acano.steven.lab");
    assert!(v["notes"].is_array(), "{v:#}");
    assert_eq!(line(v, "dns-srv", "PASS")["fix"], Value::Null);
    let name = line(v, "cert", "FAIL");
    assert!(
        name["detail"]
            .as_str()
            .unwrap()
            .starts_with("vcse.acano.steven.lab is not in the certificate of vcse.steven.lab"),
        "{name}"
    );
    assert_eq!(
        name["fix"],
        "add vcse.acano.steven.lab to the certificate's SAN"
    );
}

#[tokio::test]
async fn call_json_has_a_line_per_step_and_the_result_with_its_fix() {
    let lab = lab::Lab::new();
    let good = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab"));
    let peer = lab
        .peer(&good, PeerBehaviour::Answer(200, "OK".into()))
        .await;
    let dns = lab::dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let call = |target: &str, dns: std::net::SocketAddr| {
        let mut args = strings(&["call", target, "--options", "--json", "--dns"]);
        args.push(dns.to_string());
        args.extend(edge_args(&lab, dir.path()));
        args
    };

    let run = edgesim(call("sip:space@acano.steven.lab", dns.local_addr())).await;
    let (code, v, err) = (run.code, &run.v, &run.err);
    assert_eq!(code, Some(0), "{err}");
    assert_envelope(&run, "call", "PASS");
    assert_eq!(v["class"], "connected");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["final_status"], 200);
    assert_eq!(v["fix"], Value::Null);
    assert_eq!(v["srv_target"], "vcse.acano.steven.lab");
    let rule1 = line(v, "rule1", "PASS");
    assert_eq!(
        rule1["detail"],
        "vcse.acano.steven.lab is in acano.steven.lab"
    );
    assert_eq!(
        v["lines"].as_array().unwrap().last().unwrap()["rule"],
        "result"
    );

    // The peer's certificate does not name the SRV target: 504 + 1010, exit 13, the fix on the result line.
    let bad = lab.peer_cert(&LeafSpec::new("vcse.steven.lab"));
    let peer = lab
        .peer(&bad, PeerBehaviour::Answer(200, "OK".into()))
        .await;
    let dns = lab::dns_route(
        "cms.steven.lab",
        "vcse.cms.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let run = edgesim(call("sip:space@cms.steven.lab", dns.local_addr())).await;
    let (code, v, err) = (run.code, &run.v, &run.err);
    assert_eq!(code, Some(13), "{err}");
    assert_envelope(&run, "call", "FAIL");
    assert_eq!(v["class"], "cert-mismatch");
    assert_eq!(v["exit_code"], 13);
    assert_eq!(v["final_status"], 504);
    assert!(
        v["ms_diagnostics"].as_str().unwrap().starts_with("1010;"),
        "{v:#}"
    );
    let result = line(v, "result", "FAIL");
    assert!(
        result["detail"]
            .as_str()
            .unwrap()
            .starts_with("504 Server time-out: "),
        "{result}"
    );
    assert!(
        !result["detail"].as_str().unwrap().contains("Fix:"),
        "{result}"
    );
    assert!(
        result["fix"]
            .as_str()
            .unwrap()
            .starts_with("add vcse.cms.steven.lab to the certificate's SAN"),
        "{result}"
    );
    assert_eq!(result["fix"], v["fix"]);
    assert_eq!(
        line(v, "cert", "FAIL")["detail"],
        "vcse.steven.lab: does not name vcse.cms.steven.lab (its chain is trusted)"
    );
}

#[tokio::test]
async fn certs_inspect_json_splits_the_eku_fix_and_errors_are_documents_too() {
    let dir = tempfile::tempdir().unwrap();
    let ca = LabCa::generate_lab(KeyType::EcdsaP256).unwrap();
    let leaf = ca
        .issue(
            &LeafSpec::new("vcse.steven.lab")
                .eku(EkuChoice::ServerAuth)
                .key(KeyType::EcdsaP256),
        )
        .unwrap();
    let file = dir.path().join("vcse.pem");
    std::fs::write(&file, &leaf.cert_pem).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.chain_pem()).unwrap();
    let path = file.display().to_string();
    let run = edgesim(strings(&[
        "certs",
        "inspect",
        &path,
        "--ca",
        &ca_file.display().to_string(),
        "--fqdn",
        "vcse.steven.lab",
        "--json",
    ]))
    .await;
    let (code, v, err) = (run.code, &run.v, &run.err);
    assert_eq!(code, Some(1), "{err}");
    assert_envelope(&run, "certs inspect", "FAIL");
    assert_eq!(v["file"], path);
    assert_eq!(v["facts"]["subject"], "CN=vcse.steven.lab");
    let eku = line(v, "eku", "FAIL");
    assert!(
        eku["detail"]
            .as_str()
            .unwrap()
            .starts_with("serverAuth present but clientAuth missing"),
        "{eku}"
    );
    assert!(!eku["detail"].as_str().unwrap().contains(" — "), "{eku}");
    assert!(
        eku["fix"]
            .as_str()
            .unwrap()
            .starts_with("reissue it with both Server and Client Authentication EKUs"),
        "{eku}"
    );
    assert_eq!(line(v, "chain", "PASS")["fix"], Value::Null);
    assert_eq!(
        line(v, "name vcse.steven.lab", "PASS")["detail"],
        "vcse.steven.lab is in the certificate's SAN"
    );

    // A wildcard match only --allow-wildcard accepts: a WARN (a real Edge refuses it), exit 0.
    let wild = ca
        .issue(&LeafSpec::new("*.steven.lab").key(KeyType::EcdsaP256))
        .unwrap();
    let wild_file = dir.path().join("wild.pem");
    std::fs::write(&wild_file, &wild.cert_pem).unwrap();
    let run = edgesim(strings(&[
        "certs",
        "inspect",
        &wild_file.display().to_string(),
        "--fqdn",
        "vcse.steven.lab",
        "--allow-wildcard",
        "--json",
    ]))
    .await;
    assert_eq!(run.code, Some(0), "{}", run.err);
    assert_envelope(&run, "certs inspect", "WARN");
    let name = line(&run.v, "name vcse.steven.lab", "WARN");
    assert_eq!(
        name["detail"],
        "vcse.steven.lab matches the wildcard *.steven.lab (wildcards allowed by configuration)"
    );
    assert_eq!(
        name["fix"],
        "a real Edge refuses wildcard matches: name vcse.steven.lab explicitly in the certificate's SAN"
    );

    // A file that is not there: an ERROR document, exit 2, the message also on stderr.
    let absent = dir.path().join("absent.pem").display().to_string();
    let run = edgesim(strings(&["certs", "inspect", &absent, "--json"])).await;
    let (code, v, err) = (run.code, &run.v, &run.err);
    assert_eq!(code, Some(2));
    assert_eq!(v["schema"], 1);
    assert_eq!(v["command"], "certs inspect");
    assert_eq!(v["status"], "ERROR");
    assert_eq!(v["lines"], serde_json::json!([]));
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("cannot read certificate file {absent}: ")),
        "{message}"
    );
    assert!(err.contains(message), "{err}");
}

#[tokio::test]
async fn scenario_run_json_has_a_line_per_case() {
    let run = edgesim(strings(&[
        "scenario",
        "run",
        "--json",
        "--case",
        "corrected",
    ]))
    .await;
    let (code, v, err) = (run.code, &run.v, &run.err);
    assert_eq!(code, Some(0), "{err}");
    assert_envelope(&run, "scenario run", "PASS");
    assert_eq!(v["cases"], 2);
    assert_eq!(v["failures"], 0);
    assert_eq!(v["files"][0]["path"], "scenarios/seed-lab.toml (embedded)");
    let inbound = line(v, "in: corrected (SRV in domain, name in SAN)", "PASS");
    assert_eq!(inbound["direction"], "inbound");
    assert_eq!(inbound["detail"], "200, as expected");
    assert_eq!(inbound["observed"]["status"], 200);
    assert_eq!(inbound["differences"], serde_json::json!([]));
    assert_eq!(inbound["file"], "scenarios/seed-lab.toml (embedded)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_json_puts_the_rate_limit_note_in_a_warn_line() {
    let lab = edge_lab::short_limits_lab(|c| c.limits.max_requests_per_sec = 5).await;
    let ca_dir = lab.dir.path().join("lab-ca");
    std::fs::create_dir_all(&ca_dir).unwrap();
    lab.ca.save(&ca_dir).unwrap();
    let run = edgesim(strings(&[
        "load",
        "--target",
        &lab.addr.to_string(),
        "--server-name",
        "sip.skype.lab",
        "--method",
        "OPTIONS",
        "--from",
        "sip:vcse@steven.lab",
        "--requests",
        "20",
        "--window",
        "20",
        "--lab-cert-cn",
        "vcse.steven.lab",
        "--ca-dir",
        &ca_dir.display().to_string(),
        "--json",
    ]))
    .await;
    let (code, v, err) = (run.code, &run.v, &run.err);
    // 20 requests at once on one connection: the Edge lets 5 a second through and answers the others 503.
    assert_eq!(code, Some(0), "{err}");
    assert_envelope(&run, "load", "WARN");
    assert_eq!(v["attempted"], 20);
    assert_eq!(v["answered"], 20);
    assert_eq!(
        line(v, "requests", "PASS")["detail"],
        "attempted 20, answered 20, unanswered 0, errors: none"
    );
    let unavailable = v["responses"]["503"].as_u64().unwrap();
    assert!(unavailable >= 10, "{v:#}");
    let note = line(v, "rate-limit", "WARN");
    assert!(
        note["detail"].as_str().unwrap().starts_with(&format!(
            "503 ×{unavailable} with Retry-After: 1 and no ms-diagnostics: an edgesim Edge answers so past either of two rates"
        )),
        "{note}"
    );
    assert!(
        note["fix"].as_str().unwrap().starts_with(
            "lower --rate; more --connections help only against limits.max_requests_per_sec"
        ),
        "{note}"
    );
    lab.stop().await;
}
