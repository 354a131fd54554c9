//! `check` and `call` on what DNS says and how it fails, over real DNS and TLS on loopback: an SRV target
//! with a dead address next to a live one, a DNS server that does not answer (named), an SRV target of `.`
//! (RFC 2782), and `--dns` without a port.
#![allow(clippy::unwrap_used)]

#[path = "common/outbound_lab.rs"]
mod lab;

use std::net::Ipv4Addr;

use edgesim::check::{Status, check};
use edgesim::dns::RecordSpec;
use edgesim::lab::peer::server::PeerBehaviour;
use edgesim::outbound::{CallRequest, OutcomeClass, call};
use edgesim::pki::{KeyType, LabCa, LeafSpec};
use lab::{Lab, a, a_at, dns, srv};

const FROM: &str = "sip:alice@skype.lab";
const TARGET: &str = "vcse.acano.steven.lab";

fn ok() -> PeerBehaviour {
    PeerBehaviour::Answer(200, "OK".into())
}

fn lines(r: &edgesim::check::Report, area: &str) -> Vec<(Status, String, Option<String>)> {
    r.area(area)
        .into_iter()
        .map(|l| (l.status, l.detail.clone(), l.fix.clone()))
        .collect()
}

/// The edgesim binary with `args`, its stdout, stderr and exit code.
async fn edgesim(args: &[String]) -> (String, String, Option<i32>) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgesim"))
        .args(args)
        .output()
        .await
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

/// `--ca`, `--cert`, `--key` of the lab's Edge, written to `dir`.
fn edge_flags(lab: &Lab, dir: &std::path::Path) -> Vec<String> {
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

/// Issue 11 item 2: 127.0.0.2 is an A record of the target where nothing listens; 127.0.0.1 answers.
#[tokio::test]
async fn dead_address_next_to_a_live_one_is_a_warn_and_the_domain_federates() {
    let lab = Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new(TARGET));
    let peer = lab.peer(&cert, ok()).await;
    let port = peer.local_addr().port();
    let dns = dns(&[
        srv("acano.steven.lab", TARGET, port),
        a_at(TARGET, Ipv4Addr::new(127, 0, 0, 2)),
        a(TARGET),
    ])
    .await;
    let ctx = lab.ctx(&dns);

    let r = check(&ctx, "acano.steven.lab").await;
    let dead = format!("127.0.0.2:{port}");
    let tcp = lines(&r, "tcp");
    assert_eq!(tcp.len(), 2, "{}", r.render());
    let warn: Vec<_> = tcp.iter().filter(|l| l.0 == Status::Warn).collect();
    assert_eq!(warn.len(), 1, "{}", r.render());
    assert!(
        warn[0].1.starts_with(&format!("{TARGET} {dead}: ")),
        "{}",
        warn[0].1
    );
    assert!(
        warn[0].1.ends_with(&format!(
            "; another address of {TARGET} answers and the Edge connects through 127.0.0.1:{port}, so calls still work"
        )),
        "{}",
        warn[0].1
    );
    assert_eq!(
        warn[0].2.as_deref(),
        Some(format!(
            "remove 127.0.0.2 from the A/AAAA records of {TARGET}, or make it accept SIP TLS on port {port} as well"
        ).as_str())
    );
    assert!(
        tcp.iter().any(|l| l.0 == Status::Pass
            && l.1 == format!("{TARGET} 127.0.0.1:{port} accepts TCP connections")),
        "{}",
        r.render()
    );
    assert!(!r.has_fail(), "{}", r.render());
    assert_eq!(lines(&r, "sip")[0].0, Status::Pass, "{}", r.render());

    // `call` goes through the live address.
    let out = call(
        &ctx,
        &CallRequest::invite("sip:2000@acano.steven.lab", FROM),
    )
    .await;
    assert_eq!(out.class, OutcomeClass::Connected, "{:?}", out.steps);

    // And the exit status of `edgesim check` says the domain federates.
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec![
        "check".into(),
        "acano.steven.lab".into(),
        "--dns".into(),
        dns.local_addr().to_string(),
    ];
    args.extend(edge_flags(&lab, dir.path()));
    let (stdout, stderr, code) = edgesim(&args).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("WARN tcp       {TARGET} {dead}: ")),
        "{stdout}"
    );
    assert!(stdout.ends_with("0 FAIL, 1 WARN\n"), "{stdout}");
}

/// All addresses dead is still a FAIL.
#[tokio::test]
async fn every_address_dead_is_a_fail() {
    let lab = Lab::new();
    let port = lab::closed_port().await;
    let dns = dns(&[
        srv("acano.steven.lab", TARGET, port),
        a_at(TARGET, Ipv4Addr::new(127, 0, 0, 2)),
        a(TARGET),
    ])
    .await;
    let r = check(&lab.ctx(&dns), "acano.steven.lab").await;
    let tcp = lines(&r, "tcp");
    assert_eq!(tcp.len(), 2, "{}", r.render());
    assert!(tcp.iter().all(|l| l.0 == Status::Fail), "{}", r.render());
    assert!(
        tcp[0]
            .2
            .as_deref()
            .unwrap()
            .starts_with("check that the Expressway-E listens for SIP TLS on port"),
        "{}",
        r.render()
    );
}

/// Issue 11 items 4 and 9: a DNS server that does not answer is named, and the advice is about it, not about
/// publishing a record.
#[tokio::test]
async fn unreachable_dns_server_is_named_and_not_blamed_on_the_domain() {
    let lab = Lab::new();
    // A UDP and TCP port on 127.0.0.1 where nothing listens.
    let silent = {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.local_addr().unwrap()
    };
    let mut ctx = lab.ctx(&dns(&[]).await);
    let lookup = edgesim::dns::HickoryLookup::new(edgesim::dns::ResolverSettings {
        timeout_ms: 300,
        attempts: 1,
        cache_max_entries: 0,
        ..edgesim::dns::ResolverSettings::server(silent)
    })
    .unwrap();
    ctx.lookup = std::sync::Arc::new(lookup);
    ctx.policy = ctx.policy.clone().with_dns_server(silent.to_string());

    let r = check(&ctx, "acano.steven.lab").await;
    let srv_lines = lines(&r, "dns-srv");
    assert_eq!(srv_lines.len(), 1, "{}", r.render());
    let (status, text, fix) = &srv_lines[0];
    assert_eq!(*status, Status::Fail);
    assert!(
        text.starts_with(&format!(
            "_sipfederationtls._tcp.acano.steven.lab: the DNS server {silent} did not answer in time"
        )) || text.starts_with(&format!(
            "_sipfederationtls._tcp.acano.steven.lab: the lookup with the DNS server {silent} failed: it cannot be reached"
        )),
        "{text}"
    );
    assert!(
        text.ends_with(", so whether acano.steven.lab publishes the record is unknown; an Edge whose DNS server fails like this answers 504 with ms-diagnostics 1008"),
        "{text}"
    );
    assert_eq!(
        fix.as_deref(),
        Some(format!(
            "check that the DNS server {silent} runs and answers DNS on UDP and TCP, or give --dns IP[:PORT] of a DNS server that serves acano.steven.lab"
        ).as_str())
    );
    assert!(!r.render().contains("fix: publish"), "{}", r.render());

    // `call` names the server in its step and its explanation.
    let out = call(&ctx, &CallRequest::invite("sip:x@acano.steven.lab", FROM)).await;
    assert_eq!(out.class, OutcomeClass::NoSrv);
    let srv_step = out.steps.iter().find(|s| s.name == "srv").unwrap();
    assert!(
        srv_step
            .detail
            .contains(&format!("the DNS server {silent}"))
            || srv_step
                .detail
                .contains(&format!("with the DNS server {silent}")),
        "{}",
        srv_step.detail
    );
    assert!(
        out.explanation.ends_with(&format!(
            "Fix: check that {silent} runs and answers DNS (UDP and TCP) and serves the zone of acano.steven.lab, or point the Edge at a DNS server that does."
        )),
        "{}",
        out.explanation
    );
}

/// An NXDOMAIN answer names the server that gave it; the fix stays "publish the record".
#[tokio::test]
async fn nxdomain_names_the_server_that_answered() {
    let lab = Lab::new();
    let dns = dns(&[a("vcse.steven.lab")]).await;
    let r = check(&lab.ctx(&dns), "nosrv.steven.lab").await;
    let (status, text, fix) = lines(&r, "dns-srv").remove(0);
    assert_eq!(status, Status::Fail);
    assert_eq!(
        text,
        format!(
            "_sipfederationtls._tcp.nosrv.steven.lab: the name does not exist (NXDOMAIN from {}); the Edge answers 504 with ms-diagnostics 1008",
            dns.local_addr()
        )
    );
    assert!(
        fix.unwrap()
            .starts_with("publish _sipfederationtls._tcp.nosrv.steven.lab → ")
    );
}

fn dot_srv(domain: &str) -> RecordSpec {
    RecordSpec::Srv {
        name: format!("_sipfederationtls._tcp.{domain}"),
        priority: 0,
        weight: 0,
        port: 1,
        target: ".".into(),
        ttl: 60,
    }
}

/// Issue 11 item 24, outbound: a target of `.` is "no usable SRV" (1008), not a Rule 1 failure.
#[tokio::test]
async fn srv_target_dot_is_no_usable_srv_in_check_and_call() {
    let lab = Lab::new();
    let dns = dns(&[dot_srv("dot.lab")]).await;
    let ctx = lab.ctx(&dns);
    let r = check(&ctx, "dot.lab").await;
    assert!(lines(&r, "rule1").is_empty(), "{}", r.render());
    let srv_lines = lines(&r, "dns-srv");
    assert_eq!(srv_lines.len(), 1, "{}", r.render());
    assert_eq!(srv_lines[0].0, Status::Fail);
    assert_eq!(
        srv_lines[0].1,
        "_sipfederationtls._tcp.dot.lab priority 0 weight 0 port 1 → .: a target of \".\" means \"service decidedly not available\" (RFC 2782), so dot.lab says it does not federate; the Edge answers 504 with ms-diagnostics 1008 (no usable SRV record), both directions"
    );
    assert_eq!(
        srv_lines[0].2.as_deref(),
        Some(
            "if dot.lab should federate, replace this record: publish _sipfederationtls._tcp.dot.lab → <host>.dot.lab:5061 (a host directly in dot.lab, e.g. sip.dot.lab) with an A record for it"
        )
    );
    assert!(!r.render().contains("fqdn1"), "{}", r.render());

    let out = call(&ctx, &CallRequest::invite("sip:bob@dot.lab", FROM)).await;
    assert_eq!(out.class, OutcomeClass::NoSrv, "{:?}", out.steps);
    assert_eq!(out.class.exit_code(), 11);
    assert_eq!(
        out.ms_diagnostics.as_deref(),
        Some(
            r#"1008;reason="Unable to resolve DNS SRV record";domain="dot.lab";source="sip.skype.lab""#
        )
    );
    assert!(
        out.explanation.starts_with("_sipfederationtls._tcp.dot.lab has no usable SRV record: its target is \".\", which RFC 2782 defines as \"service decidedly not available\" at dot.lab"),
        "{}",
        out.explanation
    );
    assert!(
        !out.explanation.contains("points to"),
        "{}",
        out.explanation
    );
}

/// A `.` record next to a usable one is a WARN, and Rule 1 looks at the other.
#[tokio::test]
async fn srv_target_dot_next_to_a_real_record_is_ignored() {
    let lab = Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new(TARGET));
    let peer = lab.peer(&cert, ok()).await;
    let dns = dns(&[
        dot_srv("acano.steven.lab"),
        srv("acano.steven.lab", TARGET, peer.local_addr().port()),
        a(TARGET),
    ])
    .await;
    let ctx = lab.ctx(&dns);
    let r = check(&ctx, "acano.steven.lab").await;
    assert!(!r.has_fail(), "{}", r.render());
    let warns: Vec<_> = lines(&r, "dns-srv")
        .into_iter()
        .filter(|l| l.0 == Status::Warn)
        .collect();
    assert_eq!(warns.len(), 1, "{}", r.render());
    assert!(
        warns[0]
            .1
            .ends_with("next to other records; the Edge ignores it"),
        "{}",
        warns[0].1
    );
    assert_eq!(lines(&r, "rule1").len(), 1, "{}", r.render());
    let out = call(
        &ctx,
        &CallRequest::invite("sip:2000@acano.steven.lab", FROM),
    )
    .await;
    assert_eq!(out.class, OutcomeClass::Connected, "{:?}", out.steps);
}

/// `edgesim call` exits with the no-SRV code for a `.` target; `--dns IP` without a port asks port 53.
#[tokio::test]
async fn cli_dot_target_exit_code_and_dns_without_port() {
    let lab = Lab::new();
    let dns = dns(&[dot_srv("dot.lab")]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec![
        "call".into(),
        "sip:bob@dot.lab".into(),
        "--dns".into(),
        dns.local_addr().to_string(),
    ];
    args.extend(edge_flags(&lab, dir.path()));
    let (stdout, stderr, code) = edgesim(&args).await;
    assert_eq!(code, Some(11), "{stdout}\n{stderr}");
    assert!(stdout.contains("RFC 2782"), "{stdout}");

    // 127.0.0.1 alone is 127.0.0.1:53 (whatever answers there, or nothing: the step names that server).
    let mut args: Vec<String> = vec![
        "call".into(),
        "sip:bob@dot.lab".into(),
        "-v".into(),
        "--dns".into(),
        "127.0.0.1".into(),
    ];
    args.extend(edge_flags(&lab, dir.path()));
    let (stdout, stderr, _) = edgesim(&args).await;
    let srv_step = stdout
        .lines()
        .find(|l| l.contains(" srv "))
        .unwrap_or_else(|| panic!("no srv step in\n{stdout}\n{stderr}"));
    assert!(srv_step.contains("127.0.0.1:53"), "{srv_step}");
    let (_, stderr, code) = edgesim(&[
        "call".into(),
        "sip:bob@dot.lab".into(),
        "--dns".into(),
        "dns.lab".into(),
    ])
    .await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("write e.g. 127.0.0.1 (port 53)"),
        "{stderr}"
    );
}

/// The `cert` step of `call` is worded for a person, not a Debug dump.
#[tokio::test]
async fn call_cert_step_is_worded() {
    let lab = Lab::new();
    let stranger = LabCa::generate("some other CA", KeyType::EcdsaP256)
        .unwrap()
        .issue(&LeafSpec::new(TARGET))
        .unwrap();
    let peer = lab.peer(&stranger, ok()).await;
    let dns = dns(&[
        srv("acano.steven.lab", TARGET, peer.local_addr().port()),
        a(TARGET),
    ])
    .await;
    let out = call(
        &lab.ctx(&dns),
        &CallRequest::invite("sip:x@acano.steven.lab", FROM),
    )
    .await;
    assert_eq!(out.class, OutcomeClass::CertUntrusted);
    let step = out.steps.iter().find(|s| s.name == "cert").unwrap();
    assert_eq!(
        step.detail,
        format!("{TARGET}: it was issued by a CA the Edge does not trust")
    );
    let tls = out.steps.iter().find(|s| s.name == "tls").unwrap();
    assert!(
        tls.detail.starts_with("TLS 1.3 with SNI") || tls.detail.starts_with("TLS 1.2 with SNI"),
        "{}",
        tls.detail
    );
}

/// An A/AAAA lookup the DNS server does not answer is blamed on that server, by name, in both commands.
#[tokio::test]
async fn silent_address_lookup_names_the_dns_server() {
    let lab = Lab::new();
    let dns = dns(&[
        srv("acano.steven.lab", TARGET, 5061),
        RecordSpec::Fault {
            name: TARGET.into(),
            kind: edgesim::dns::FaultKind::Drop,
        },
    ])
    .await;
    let server = dns.local_addr();
    let ctx = lab.ctx(&dns);
    let r = check(&ctx, "acano.steven.lab").await;
    let a_lines = lines(&r, "dns-a");
    assert_eq!(a_lines.len(), 1, "{}", r.render());
    assert_eq!(
        a_lines[0].1,
        format!("{TARGET}: the DNS server {server} did not answer in time")
    );
    assert_eq!(
        a_lines[0].2.as_deref(),
        Some(format!("check that the DNS server {server} runs and answers DNS on UDP and TCP, or give --dns IP[:PORT] of a DNS server that serves {TARGET}").as_str())
    );
    let out = call(&ctx, &CallRequest::invite("sip:x@acano.steven.lab", FROM)).await;
    assert_eq!(out.class, OutcomeClass::NoAddress);
    assert_eq!(
        out.explanation,
        format!(
            "The A/AAAA lookup of {TARGET}, the SRV target of acano.steven.lab, failed: the DNS server {server} did not answer in time. Fix: check that the DNS server {server} runs and answers DNS (UDP and TCP) and serves the zone of {TARGET}."
        )
    );
}
