//! "How we will know" (issue 16): an independent SIP stack, SIPp, sends a SUBSCRIBE and a session-mode IM
//! through an Expressway stand-in to the emulated users, and checks what comes back (the granted Expires, the
//! NOTIFYs' Subscription-State and PIDF, the 200's m=message answer and Supported: ms-text-format, the user's
//! echo) with its own parser and regular expressions (`tests/fixtures/sipp/*.xml`).
//!
//! Debian's SIPp (package `sip-tester`, 3.6.1) is built without TLS (`sipp -h` lists no `-t l1`), so SIPp
//! speaks TCP to the stand-in, which carries the bytes unchanged to the Edge over mutual TLS with the
//! Expressway's certificate, as an Expressway-E does between its traversal zone and its DNS zone. `.ci/run`
//! installs `sip-tester`; without it the test fails with the install command.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;
#[path = "common/presence_lab.rs"]
mod presence_lab;
#[path = "common/wire_tools.rs"]
mod wire_tools;

use std::time::Duration;

use edge_lab::*;
use edgesim::diagnostics::VerdictKind;
use presence_lab::*;

/// Runs SIPp's scenario `name` once against `target`; panics with SIPp's output when it fails.
/// A local port the OS has just given out and taken back (TCP on 127.0.0.1), for SIPp's `-p`.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

async fn sipp(name: &str, target: std::net::SocketAddr) {
    let sipp = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("sipp"))
                .find(|c| c.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "sipp is not installed, and this test drives the Edge with it. Install it as .ci/run does: \
                 DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends sip-tester"
            )
        });
    let _ = wire_tools::require;
    let dir = tempfile::tempdir().unwrap();
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sipp")
        .join(name);
    let out = tokio::process::Command::new(sipp)
        .current_dir(dir.path())
        .arg(target.to_string())
        .args(["-sf"])
        .arg(&scenario)
        .args([
            "-t",
            "t1",
            "-i",
            "127.0.0.1",
            // Its own local port: SIPp binds 5060 by default, so two runs at once (the tests of this file run in
            // parallel) would collide and one would exit 254 before sending anything.
            "-p",
            &free_port().to_string(),
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "20s",
            "-timeout_error",
            "-trace_err",
            "-trace_msg",
        ])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    if !out.status.success() {
        let logs: String = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| {
                format!(
                    "--- {}\n{}\n",
                    e.path().display(),
                    std::fs::read_to_string(e.path()).unwrap_or_default()
                )
            })
            .collect();
        panic!(
            "sipp {name} failed ({}):\n{}\n{}\n{logs}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn sipp_subscribes_through_the_stand_in_and_sees_the_configured_presence() {
    let lab = presence_lab(|_| {}).await;
    let mut events = lab.edge.subscribe();
    let stand_in = TlsStandIn::start(&lab, &["vcse.acano.steven.lab"]).await;
    tokio::time::timeout(
        Duration::from_secs(30),
        sipp("subscribe.xml", stand_in.addr),
    )
    .await
    .unwrap();
    let ev = Lab::event(&mut events).await;
    assert_eq!(
        (
            ev.method.as_deref(),
            ev.status,
            ev.verdict,
            ev.peer_cert.as_deref()
        ),
        (
            Some("SUBSCRIBE"),
            Some(200),
            VerdictKind::Accept,
            Some("vcse.acano.steven.lab")
        )
    );
    lab.stop().await;
}

#[tokio::test]
async fn sipp_sends_a_session_mode_im_through_the_stand_in_and_gets_the_echo() {
    let lab = presence_lab(|_| {}).await;
    let mut events = lab.edge.subscribe();
    let stand_in = TlsStandIn::start(&lab, &["vcse.acano.steven.lab"]).await;
    tokio::time::timeout(Duration::from_secs(30), sipp("im.xml", stand_in.addr))
        .await
        .unwrap();
    let ev = Lab::event(&mut events).await;
    assert_eq!(
        (ev.method.as_deref(), ev.status),
        (Some("INVITE"), Some(200))
    );
    assert!(
        ev.explanation
            .unwrap()
            .contains("text/plain \"Hello from SIPp\""),
        "the decoded first message is in the event"
    );
    lab.stop().await;
}
