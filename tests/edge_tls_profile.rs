//! The TLS versions an Edge offers follow its version profile (`[edge] version`) unless `[tls] versions` says
//! otherwise (issue 14, first point), over real TLS on loopback: a `lync2013` Edge (TLS 1.2 only: a real one also
//! offers 1.1 and 1.0, which rustls lacks) refuses a TLS-1.3-only client with the version-mismatch record and
//! explanation; an explicit `[tls] versions` overrides the profile; `serve` says which applies and where it came
//! from, and refuses an empty list naming the file, the field and the fix.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use edge_lab::*;
use edgesim::config::{EdgeConfig, EdgeVersion, TlsVersion};
use edgesim::diagnostics::VerdictKind;
use edgesim::lab::peer::client::ExpresswayRequest;
use edgesim::pki::{LeafSpec, TlsIdentity};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

/// The peer's certificate: `vcse.acano.steven.lab`, the SRV target of its domain.
fn peer_id(lab: &Lab) -> TlsIdentity {
    lab.cert(LeafSpec::new("vcse.acano.steven.lab").san(&["vcse.acano.steven.lab"]))
}

/// A mutual-TLS handshake with the Edge by a client that offers TLS 1.3 only.
async fn tls13_only_client(
    lab: &Lab,
    id: &TlsIdentity,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let config =
        edgesim::pki::tls::client_config_with_versions(Some(id), &[&rustls::version::TLS13])
            .unwrap();
    let tcp = tokio::net::TcpStream::connect(lab.addr).await?;
    let name = ServerName::try_from("sip.skype.lab").unwrap();
    tokio::time::timeout(T, TlsConnector::from(config).connect(name, tcp))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_lync2013_edge_refuses_a_tls13_only_client_and_says_why() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |c| {
        c.edge.version = EdgeVersion::Lync2013;
    })
    .await;
    assert_eq!(lab.edge.config().tls_versions(), [TlsVersion::Tls12]);
    let mut events = lab.edge.subscribe();
    let id = peer_id(&lab);

    let e = tls13_only_client(&lab, &id).await.unwrap_err();
    // rustls answers a ClientHello with no common version with the fatal protocol_version alert.
    assert!(e.to_string().contains("ProtocolVersion"), "{e}");

    let ev = Lab::event(&mut events).await;
    assert_eq!((ev.verdict, ev.status), (VerdictKind::Reject, None));
    assert_eq!(
        ev.result_code.as_deref(),
        Some("0xc3e93e12 SIPPROXY_E_TLS_PROTOCOL_VERSION_REFUSED")
    );
    assert_eq!(
        ev.log_data,
        vec![
            ("reason".to_string(), "TLS version".to_string()),
            ("offered".to_string(), "TLS 1.3".to_string()),
            ("accepted".to_string(), "TLS 1.2".to_string()),
        ]
    );
    assert_eq!(
        ev.explanation.as_deref(),
        Some(
            "The peer offered only TLS 1.3 in its TLS ClientHello, and this Edge accepts TLS 1.2 (tls.versions): the handshake was refused. Fix: add \"1.3\" to tls.versions in the Edge configuration, or enable TLS 1.2 on the peer."
        )
    );
    let records = lab.edge.log_records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(
        records[0]
            .contains("Data: reason=\"TLS version\";offered=\"TLS 1.3\";accepted=\"TLS 1.2\""),
        "{}",
        records[0]
    );
    lab.stop().await;
}

#[tokio::test]
async fn an_explicit_tls_versions_overrides_the_profile() {
    // The same Edge, told in its configuration file to offer TLS 1.3 as well.
    let parsed = EdgeConfig::from_toml(
        "[edge]\nversion = \"lync2013\"\n[tls]\nversions = [\"1.2\", \"1.3\"]\n",
        std::path::Path::new("edge.toml"),
    )
    .unwrap();
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |c| {
        c.edge.version = parsed.edge.version;
        c.tls.versions = parsed.tls.versions.clone();
    })
    .await;
    let id = peer_id(&lab);

    let mut tls = tls13_only_client(&lab, &id).await.unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let req = ExpresswayRequest::new("OPTIONS", "sip:2000@acano.steven.lab", "sip:skype.lab");
    tls.write_all(&req.build()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(T, tls.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before an answer: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("SIP/2.0 200 OK\r\n"), "{text}");
    // Still a Lync 2013 Edge otherwise.
    assert!(text.contains("\r\nServer: RTC/5.0\r\n"), "{text}");
    lab.stop().await;
}

/// `edgesim serve` with `config` in a temp dir: its command, run in that dir.
fn serve(dir: &std::path::Path, config: &str) -> Command {
    std::fs::write(dir.join("edge.toml"), config).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgesim"));
    c.args(["--log", "info", "serve", "--serve-dns", "127.0.0.1:0"])
        .args(["--listen", "127.0.0.1:0", "--config", "edge.toml"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .current_dir(dir);
    c
}

#[test]
fn serve_names_the_profile_the_versions_it_offers_and_where_they_came_from() {
    let cases = [
        (
            "[edge]\nversion = \"lync2013\"\n[tls]\nversions = [\"1.2\", \"1.3\"]\n",
            "profile: lync2013 (Lync Server 2013): Server: RTC/5.0; a real one offers TLS 1.2, 1.1, 1.0 (inferred); edgesim offers TLS 1.2, 1.3 (from tls.versions, which overrides the profile; rustls has no TLS 1.0/1.1)",
        ),
        (
            "[edge]\nversion = \"sfb2019\"\n",
            "profile: sfb2019 (Skype for Business Server 2019): Server: RTC/7.0 (inferred); a real one offers TLS 1.3, 1.2; edgesim offers TLS 1.2, 1.3 (from the profile; rustls has no TLS 1.0/1.1)",
        ),
    ];
    for (config, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut child = serve(dir.path(), config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut report = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            let done = line.starts_with("resolving SRV records with");
            report.push(line);
            if done {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            report[0].starts_with("edgesim Edge sip.skype.lab listening on tls "),
            "{report:?}"
        );
        assert!(report.iter().any(|l| l == want), "{config}: {report:#?}");
    }
}

#[test]
fn serve_refuses_an_empty_tls_versions_naming_the_file_the_field_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = serve(
        dir.path(),
        "[edge]\nversion = \"lync2013\"\n[tls]\nversions = []\n",
    )
    .stdin(Stdio::null())
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "edge.toml: `tls.versions`: no TLS version left to offer; write versions = [\"1.2\"] or [\"1.2\", \"1.3\"], or remove the key to offer the profile's ([edge] version = \"lync2013\": TLS 1.2)"
        ),
        "{stderr}"
    );
}
