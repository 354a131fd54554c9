//! Every scenario file in `scenarios/` runs end to end (real DNS, real TLS, the real Edge and peer) and passes, so
//! one file both documents and tests a lab; a wrong expectation fails; a bad file is refused with file, line and
//! field; and the CLI prints the table, JSON, and the exit codes.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use edgesim::lab::scenario::report::render_table;
use edgesim::lab::scenario::{ScenarioFile, run_embedded, run_file, run_scenario};

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_file_passes() {
    let files = scenario_files();
    assert!(
        files.iter().any(|f| f.ends_with("seed-lab.toml")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|f| f.ends_with("branches.toml")),
        "{files:?}"
    );
    for file in files {
        let report = run_file(&file).await.unwrap();
        assert!(!report.cases.is_empty(), "{}", file.display());
        assert!(report.passed(), "{}", render_table(&report));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_seed_lab_passes_with_the_seed_documents_diagnostics() {
    let report = run_embedded().await.unwrap();
    assert!(report.passed(), "{}", render_table(&report));
    assert_eq!(report.cases.len(), 6);
    let by_name = |n: &str| report.cases.iter().find(|c| c.name.starts_with(n)).unwrap();
    let rule1 = by_name("in: SRV of acano");
    assert_eq!(
        rule1.observed.log_data.as_deref(),
        Some("domain=\"acano.steven.lab\";fqdn1=\"vcse.steven.lab:5061\"")
    );
    assert_eq!(
        rule1.observed.result_code.as_deref(),
        Some("0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH")
    );
    let out_rule2 = by_name("out: certificate lacks");
    assert!(
        out_rule2
            .observed
            .ms_diagnostics
            .as_deref()
            .unwrap()
            .contains("HRESULT=\"0x80090322 (SEC_E_WRONG_PRINCIPAL)\"")
    );
}

const WRONG: &str = r#"
[certs.vcse]
cn = "vcse.steven.lab"
san = ["vcse.steven.lab"]

[[dns.records]]
name = "_sipfederationtls._tcp.acano.steven.lab"
type = "SRV"
port = 5061
target = "vcse.steven.lab"

[[case]]
name = "rule 1 wrongly expected to pass"
direction = "inbound"
cert = "vcse"
from = "sip:2000@acano.steven.lab"
to = "sip:stejanss@skype.lab"
[case.expect]
status = 200
log_data = 'domain="acano.steven.lab";fqdn1="vcse.acano.steven.lab:5061"'

[[case]]
name = "outbound no SRV wrongly expected as 1009"
direction = "outbound"
target = "sip:space@nosrv.steven.lab"
cert = "vcse"
[case.expect]
status = 504
ms_diagnostics = 1009
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_expectation_fails_with_the_difference_and_the_edges_explanation() {
    let file = ScenarioFile::parse(WRONG, Path::new("wrong.toml"), None).unwrap();
    let report = run_scenario(&file).await.unwrap();
    assert!(!report.passed());
    assert_eq!(report.failures(), 2);
    let inbound = &report.cases[0];
    assert_eq!(inbound.got, "504 · 1009 · 0xc3e93d6f");
    assert_eq!(
        inbound.detail,
        vec![
            "status: expected 200, got 504".to_owned(),
            "log Data: expected\n      domain=\"acano.steven.lab\";fqdn1=\"vcse.acano.steven.lab:5061\"\n    got\n      \
             domain=\"acano.steven.lab\";fqdn1=\"vcse.steven.lab:5061\""
                .to_owned(),
        ]
    );
    assert!(
        inbound
            .explanation
            .as_deref()
            .unwrap()
            .contains("which is not in acano.steven.lab")
    );
    let outbound = &report.cases[1];
    assert_eq!(
        outbound.detail,
        vec![
            "ms-diagnostics: expected code 1009, got 1008;reason=\"Unable to resolve DNS SRV record\";\
             domain=\"nosrv.steven.lab\";source=\"sip.skype.lab\""
                .to_owned()
        ]
    );
    let table = render_table(&report);
    assert!(table.contains("0 of 2 passed (2 FAILED)"), "{table}");
    assert!(
        table.contains(
            "  FAIL rule 1 wrongly expected to pass\n    status: expected 200, got 504\n"
        ),
        "{table}"
    );
}

#[test]
fn a_bad_file_is_refused_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.toml");
    let text = WRONG.replace("status = 504", "stauts = 504");
    std::fs::write(&path, &text).unwrap();
    let err = ScenarioFile::load(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}:28:1: case #2 \"outbound no SRV wrongly expected as 1009\": field `case.expect.stauts`: unknown field \
             `stauts`, expected one of `status`, `ms_diagnostics`, `result_code`, `log_data`, `handshake`, \
             `explanation`, `expires`, `format`, `availability`, `later_availability`, `im_replies`\n  hint: remove \
             the key or correct its spelling; the valid keys are listed above",
            path.display()
        )
    );
    let missing = ScenarioFile::load(&dir.path().join("absent.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        missing.starts_with(&format!(
            "{}: cannot read the scenario: ",
            dir.path().join("absent.toml").display()
        )),
        "{missing}"
    );
}

fn edgesim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_edgesim"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

#[test]
fn cli_runs_the_seed_lab_by_default_and_prints_the_table() {
    let out = edgesim(&["scenario", "run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("scenarios/seed-lab.toml (embedded) — seed lab"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  CASE  ") && stdout.contains("6 of 6 passed"),
        "{stdout}"
    );
}

#[test]
fn cli_json_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.toml");
    std::fs::write(&wrong, WRONG).unwrap();
    let out = edgesim(&["scenario", "run", "--json", wrong.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["command"], "scenario run");
    assert_eq!(json["status"], "FAIL");
    assert_eq!(json["failures"], 2);
    assert_eq!(json["files"][0]["failures"], 2);
    let case = &json["lines"][0];
    assert_eq!(case["status"], "FAIL");
    assert_eq!(case["rule"], "rule 1 wrongly expected to pass");
    assert_eq!(case["observed"]["status"], serde_json::json!(504));
    assert!(
        case["detail"]
            .as_str()
            .unwrap()
            .contains("status: expected 200, got 504"),
        "{case}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, WRONG.replace("\"inbound\"", "\"sideways\"")).unwrap();
    let out = edgesim(&["scenario", "run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:14:13: case #1 \"rule 1 wrongly expected to pass\": field `case.direction`: unknown variant `sideways`",
            bad.display()
        )),
        "{stderr}"
    );
    // Under --json the same error is a JSON document, the exit code still 2.
    let out = edgesim(&["scenario", "run", "--json", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["command"], "scenario run");
    assert_eq!(json["status"], "ERROR");
    assert_eq!(json["lines"], serde_json::json!([]));
    let error = &json["error"];
    assert_eq!(error["file"], bad.display().to_string());
    assert_eq!(
        (error["line"].clone(), error["column"].clone()),
        (14.into(), 13.into())
    );
    assert_eq!(error["field"], "case.direction");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("case #1 \"rule 1 wrongly expected to pass\": field `case.direction`: unknown variant `sideways`"),
        "{error}"
    );
    assert!(
        error["hint"].as_str().is_some_and(|h| !h.is_empty()),
        "{error}"
    );
}
