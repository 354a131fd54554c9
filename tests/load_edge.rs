//! `edgesim load` against a real `edge::serve` on loopback with the embedded DNS server: counts and
//! statuses must match the Edge's verdicts. Short runs; speed is for `benches/`, never asserted here.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use edgesim::lab::load::{self, LoadSpec, Progress, RequestTemplate, Stop};
use edgesim::pki;
use rustls_pki_types::ServerName;
use tokio_util::sync::CancellationToken;

fn spec(lab: &edge_lab::Lab, cert: &str, method: &str, from: &str) -> LoadSpec {
    let id = lab.cert(pki::LeafSpec::new(cert));
    LoadSpec::new(
        lab.addr,
        ServerName::try_from("sip.skype.lab").unwrap(),
        pki::client_config(Some(&id)).unwrap(),
        RequestTemplate::new(method, from, "sip:stejanss@skype.lab"),
    )
}

async fn go(spec: LoadSpec) -> load::LoadReport {
    load::run(
        spec,
        Arc::new(Progress::default()),
        CancellationToken::new(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_from_a_misconfigured_domain_is_504_1009_every_time() {
    let lab = edge_lab::short_limits_lab(|_| {}).await;
    let mut s = spec(
        &lab,
        "vcse.steven.lab",
        "INVITE",
        "sip:2000@acano.steven.lab",
    );
    s.connections = 4;
    s.window = 8;
    s.stop = Stop::Requests(400);
    let r = go(s).await;
    assert_eq!(r.errors, Default::default(), "{}", r.render());
    assert_eq!(r.sent, 400);
    assert_eq!(r.answered, 400);
    assert_eq!(r.count("504"), 400, "{}", r.render());
    assert_eq!(r.diagnostics.get("504 1009"), Some(&400), "{}", r.render());
    assert_eq!(r.handshakes, 4);
    lab.assert_healthy().await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_that_pass_the_rules_are_200() {
    let lab = edge_lab::short_limits_lab(|_| {}).await;
    let mut s = spec(&lab, "vcse.steven.lab", "OPTIONS", "sip:vcse@steven.lab");
    s.connections = 2;
    s.window = 1;
    s.stop = Stop::Requests(300);
    let r = go(s).await;
    assert_eq!(r.errors, Default::default(), "{}", r.render());
    assert_eq!((r.sent, r.count("200")), (300, 300), "{}", r.render());
    assert!(r.diagnostics.is_empty(), "{}", r.render());
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_per_request_counts_one_handshake_each() {
    let lab = edge_lab::short_limits_lab(|_| {}).await;
    let mut s = spec(&lab, "vcse.steven.lab", "INVITE", "sip:2000@servfail.lab");
    s.connections = 4;
    s.new_connection_per_request = true;
    s.stop = Stop::Requests(100);
    let r = go(s).await;
    assert_eq!(r.errors, Default::default(), "{}", r.render());
    assert_eq!(r.handshakes, 100);
    assert_eq!(r.diagnostics.get("504 1008"), Some(&100), "{}", r.render());
    lab.assert_healthy().await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_and_a_duration_pace_the_run_and_the_edge_rate_limit_shows_as_503() {
    let lab = edge_lab::short_limits_lab(|c| c.limits.max_requests_per_sec = 20).await;
    let mut s = spec(&lab, "vcse.steven.lab", "OPTIONS", "sip:vcse@steven.lab");
    s.rate = Some(100.0);
    s.stop = Stop::Duration(Duration::from_millis(500));
    let r = go(s).await;
    assert_eq!(r.errors, Default::default(), "{}", r.render());
    // 100/s for 0.5 s is about 50 requests on one connection; the Edge lets 20 a second through.
    assert!((40..=55).contains(&r.sent), "{}", r.render());
    assert_eq!(r.count("200") + r.count("503"), r.sent, "{}", r.render());
    assert!(r.count("503") > 0 && r.count("200") >= 20, "{}", r.render());
    // Each 503 carries the Edge's Retry-After, and the summary says which limit answered it.
    assert_eq!(
        r.retry_after.get("1"),
        Some(&r.count("503")),
        "{}",
        r.render()
    );
    let text = r.render();
    // The note is wrapped at 100 columns, where depends on the count's digits: compare its words.
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(&format!(
            "note 503 ×{} with Retry-After: 1 and no ms-diagnostics: an edgesim Edge answers so past either of two rates",
            r.count("503"),
        )),
        "{text}"
    );
    assert!(text.contains("limits.max_requests_per_sec"), "{text}");
    assert_eq!(r.outcome(), load::Outcome::Complete, "{text}");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_certificate_is_an_error_by_kind_not_a_hang() {
    let lab = edge_lab::short_limits_lab(|_| {}).await;
    let mut s = LoadSpec::new(
        lab.addr,
        ServerName::try_from("sip.skype.lab").unwrap(),
        pki::client_config(None).unwrap(),
        RequestTemplate::new("OPTIONS", "sip:vcse@steven.lab", "sip:stejanss@skype.lab"),
    );
    s.stop = Stop::Requests(5);
    s.window = 1;
    s.timeout = Duration::from_secs(2);
    let r = go(s).await;
    assert_eq!(r.answered, 0);
    assert!(r.error_count() > 0, "{}", r.render());
    lab.assert_healthy().await;
    lab.stop().await;
}

/// An address where nothing listens: a port just bound and released.
fn closed_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A run that would never end fails here instead of hanging the suite; no speed is asserted.
async fn go_bounded(spec: LoadSpec) -> load::LoadReport {
    tokio::time::timeout(Duration::from_secs(60), go(spec))
        .await
        .expect("the load run never ended")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_where_nothing_listens_ends_the_run_and_every_attempt_counts() {
    let target = closed_port();
    for (connections, per_request) in [(1, false), (3, false), (2, true)] {
        let mut s = LoadSpec::new(
            target,
            ServerName::try_from("sip.skype.lab").unwrap(),
            pki::client_config(None).unwrap(),
            RequestTemplate::new("OPTIONS", "sip:vcse@steven.lab", "sip:stejanss@skype.lab"),
        );
        s.connections = connections;
        s.new_connection_per_request = per_request;
        s.stop = Stop::Requests(4);
        let r = go_bounded(s).await;
        let text = r.render();
        assert_eq!((r.attempted, r.sent, r.answered), (4, 0, 0), "{text}");
        assert!(
            r.errors.get("connect: connection refused") >= Some(&4),
            "{text}"
        );
        assert_eq!(r.outcome(), load::Outcome::NothingAnswered, "{text}");
        assert!(
            text.contains(
                "  requests    attempted 4, sent 0, answered 0, provisional 0, unanswered 4\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(&format!("refused: nothing listens on {target}")),
            "{text}"
        );
    }
}

fn edgesim_load(args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_edgesim"))
        .env_remove("RUST_LOG")
        .arg("load")
        .args(args)
        .output()
        .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_ends_with_status_3_when_nothing_listens() {
    let target = closed_port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        edgesim_load(&args(&[
            "--target",
            &target,
            "--requests",
            "3",
            "--lab-cert-cn",
            "vcse.steven.lab",
        ]))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("errors      connect: connection refused ×3"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_explains_the_rate_limit_503s_of_a_real_edge() {
    let lab = edge_lab::short_limits_lab(|c| c.limits.max_requests_per_sec = 5).await;
    let ca_dir = lab.dir.path().join("lab-ca");
    std::fs::create_dir_all(&ca_dir).unwrap();
    lab.ca.save(&ca_dir).unwrap();
    let a = args(&[
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
    ]);
    let out = tokio::task::spawn_blocking(move || edgesim_load(&a))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // 20 requests at once on one connection: the Edge lets 5 a second through and answers the others 503.
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let count = |status: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("  responses   "))
            .and_then(|l| {
                l.split(", ")
                    .find_map(|c| c.strip_prefix(&format!("{status} ×"))?.parse().ok())
            })
            .unwrap_or(0)
    };
    let unavailable = count("503");
    assert_eq!(count("200") + unavailable, 20, "{stdout}");
    assert!(unavailable >= 10, "{stdout}");
    // The note is wrapped at 100 columns, where depends on the count's digits: compare its words.
    let words = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(&format!(
            "note 503 ×{unavailable} with Retry-After: 1 and no ms-diagnostics: an edgesim Edge answers so past either of two rates"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("limits.max_requests_per_sec"), "{stdout}");
    for line in stdout
        .lines()
        .filter(|l| l.starts_with("  note") || l.starts_with("       "))
    {
        assert!(line.chars().count() <= 100, "{line}");
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_client_certificate_the_cli_names_the_flags_to_pass() {
    let lab = edge_lab::short_limits_lab(|_| {}).await;
    let cwd = tempfile::tempdir().unwrap();
    let a = args(&[
        "--target",
        &lab.addr.to_string(),
        "--server-name",
        "sip.skype.lab",
        "--method",
        "OPTIONS",
        "--requests",
        "2",
        "--window",
        "1",
        "--timeout-ms",
        "2000",
    ]);
    let dir = cwd.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_edgesim"))
            .env_remove("RUST_LOG")
            .current_dir(dir)
            .arg("load")
            .args(&a)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "no client certificate: an Edge with tls.client_cert = \"required\" (the default) refuses the \
             handshake; pass --lab-cert-cn NAME (issued from the lab CA in ./edgesim-data) or --cert FILE --key FILE"
        ),
        "{stderr}"
    );
    let joined = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        joined.contains(
            "note no client certificate was presented; an Edge with tls.client_cert = \"required\" (the \
             default) refuses such a handshake: pass --lab-cert-cn NAME (issued from the lab CA in --ca-dir) or \
             --cert FILE --key FILE."
        ),
        "{stdout}"
    );
    lab.assert_healthy().await;
    lab.stop().await;
}
