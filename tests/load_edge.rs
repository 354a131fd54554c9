//! `edgesim load` against a real `edge::serve` on loopback with the embedded DNS server: counts and
//! statuses must match the Edge's verdicts. Short runs; speed is for `benches/`, never asserted here.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;

use std::sync::Arc;
use std::time::Duration;

use edgesim::load::{self, LoadSpec, Progress, RequestTemplate, Stop};
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
