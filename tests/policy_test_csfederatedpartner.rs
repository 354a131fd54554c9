//! Issue 15: `check DOMAIN --as-test-csfederatedpartner` over real mutual TLS and real DNS on loopback. The
//! transaction is Test-CsFederatedPartner's: `OPTIONS sip:Options_User@DOMAIN`, routed as the Edge routes the
//! domain, with `Route: <sip:PROXY;transport=tls;lr>;ms-edge-route` when the configuration gives the domain a
//! ProxyFqdn; the result in the cmdlet's terms (Result, Latency, Error, Diagnosis) beside edgesim's lines.
#![allow(clippy::unwrap_used)]

#[path = "common/outbound_lab.rs"]
mod lab;

use std::path::Path;

use edgesim::check;
use edgesim::config::EdgeConfig;
use edgesim::lab::peer::server::PeerBehaviour;
use edgesim::pki::LeafSpec;
use edgesim::rules::Policy;

const FABRIKAM: &str = r#"
[access_edge]
AllowFederatedUsers = true
EnablePartnerDiscovery = true

[[allowed_domains]]
Identity = "fabrikam.lab"
ProxyFqdn = "sip.fabrikam.lab"
"#;

fn header(m: &edgesim::sip::Message, name: &str) -> Option<String> {
    m.header_named(name)
        .map(|h| String::from_utf8_lossy(&h.value()).into_owned())
}

fn is_timespan(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 16
        && b[2] == b':'
        && b[5] == b':'
        && b[8] == b'.'
        && s.chars()
            .enumerate()
            .all(|(i, c)| [2, 5, 8].contains(&i) || c.is_ascii_digit())
}

#[tokio::test]
async fn a_proxy_fqdn_gets_the_ms_edge_route_and_no_srv_lookup() {
    let lab = lab::Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("sip.fabrikam.lab"));
    let peer = lab
        .peer(&cert, PeerBehaviour::Answer(200, "OK".into()))
        .await;
    // fabrikam.lab has no SRV record: only its ProxyFqdn's A record.
    let dns = lab::dns(&[lab::a("sip.fabrikam.lab")]).await;
    let mut ctx = lab.ctx(&dns);
    let cfg = EdgeConfig::from_toml(FABRIKAM, Path::new("edge.toml")).unwrap();
    ctx.policy = Policy::from_config(&cfg).with_dns_server(dns.local_addr().to_string());
    ctx.proxy_port = peer.local_addr().port();

    let r = check::test_cs_federated_partner(&ctx, "fabrikam.lab").await;
    assert_eq!(r.result, "Success", "{r:?}");
    assert_eq!(r.proxy_fqdn.as_deref(), Some("sip.fabrikam.lab"));
    assert!(r.allowed);
    let route = "<sip:sip.fabrikam.lab;transport=tls;lr>;ms-edge-route";
    assert_eq!(r.route.as_deref(), Some(route));
    assert!(is_timespan(&r.latency), "{}", r.latency);
    let got = peer.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        String::from_utf8_lossy(got[0].start_line()),
        "OPTIONS sip:Options_User@fabrikam.lab SIP/2.0"
    );
    assert_eq!(header(&got[0], "Route").as_deref(), Some(route));
    let text = r.render();
    assert!(
        text.starts_with(
            "PS> Test-CsFederatedPartner -TargetFqdn sip.skype.lab -Domain fabrikam.lab -ProxyFqdn sip.fabrikam.lab\n    (edgesim sent OPTIONS sip:Options_User@fabrikam.lab with Route: <sip:sip.fabrikam.lab;transport=tls;lr>;ms-edge-route)\n\nTargetFqdn : sip.skype.lab\nResult     : Success\nLatency    : "
        ),
        "{text}"
    );
    assert!(text.ends_with("\nError      : \nDiagnosis  : \n"), "{text}");
    peer.shutdown().await;
}

#[tokio::test]
async fn a_discovered_domain_is_tested_through_its_srv_without_a_route() {
    let lab = lab::Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("vcse.acano.steven.lab"));
    let peer = lab
        .peer(&cert, PeerBehaviour::Answer(200, "OK".into()))
        .await;
    let dns = lab::dns_route(
        "acano.steven.lab",
        "vcse.acano.steven.lab",
        peer.local_addr().port(),
    )
    .await;
    let ctx = lab.ctx(&dns);
    let r = check::test_cs_federated_partner(&ctx, "acano.steven.lab").await;
    assert_eq!((r.result, r.route.as_deref()), ("Success", None));
    assert!(!r.allowed);
    assert!(r.render().contains(
        "(note: acano.steven.lab is not on the allowed domain list, which the real cmdlet requires)"
    ));
    assert_eq!(header(&peer.received()[0], "Route"), None);
    peer.shutdown().await;

    // No SRV: Failure, with the Edge's 504 and its diagnostic in the cmdlet's layout.
    let r = check::test_cs_federated_partner(&ctx, "nosrv.steven.lab").await;
    assert_eq!(r.result, "Failure");
    assert_eq!(r.error.as_deref(), Some("504, Server time-out"));
    assert_eq!(
        r.diagnosis.as_deref(),
        Some("ErrorCode=1008,Source=sip.skype.lab,Reason=Unable to resolve DNS SRV record")
    );
}

#[tokio::test]
async fn the_cli_prints_the_cmdlet_beside_edgesims_lines_and_in_json() {
    let lab = lab::Lab::new();
    let cert = lab.peer_cert(&LeafSpec::new("sip.fabrikam.lab"));
    let peer = lab
        .peer(&cert, PeerBehaviour::Answer(200, "OK".into()))
        .await;
    let dns = lab::dns_route("fabrikam.lab", "sip.fabrikam.lab", peer.local_addr().port()).await;
    let dir = tempfile::tempdir().unwrap();
    let [_, chain, key] = lab.edge.write(dir.path(), "edge").unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, lab.ca.chain_pem()).unwrap();
    let dns_addr = dns.local_addr().to_string();
    let run = async |json: bool| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgesim"));
        c.env_remove("RUST_LOG")
            .args([
                "--log",
                "error",
                "check",
                "fabrikam.lab",
                "--as-test-csfederatedpartner",
            ])
            .arg("--dns")
            .arg(&dns_addr)
            .arg("--ca")
            .arg(&ca)
            .arg("--cert")
            .arg(&chain)
            .arg("--key")
            .arg(&key);
        if json {
            c.arg("--json");
        }
        c.output().await.unwrap()
    };
    // No --config: the domain is found through its SRV record, as edgesim's own check does.
    let text_out = run(false).await;
    let json_out = run(true).await;
    let text = String::from_utf8_lossy(&text_out.stdout);
    assert_eq!(text_out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("PASS sip       "),
        "edgesim's own lines: {text}"
    );
    assert!(
        text.contains("PASS test-csfederatedpartner Result Success: OPTIONS sip:Options_User@fabrikam.lab was answered by the peer."),
        "{text}"
    );
    assert!(
        text.contains("\nTargetFqdn : sip.skype.lab\nResult     : Success\nLatency    : "),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(v["command"], "check");
    let t = &v["test_csfederatedpartner"];
    assert_eq!(t["target_fqdn"], "sip.skype.lab");
    assert_eq!(t["result"], "Success");
    assert_eq!(t["request_uri"], "sip:Options_User@fabrikam.lab");
    assert_eq!(t["route"], serde_json::Value::Null);
    assert!(is_timespan(t["latency"].as_str().unwrap()), "{t}");
    let lines = v["lines"].as_array().unwrap();
    assert_eq!(lines.last().unwrap()["rule"], "test-csfederatedpartner");
    assert!(lines.iter().any(|l| l["rule"] == "sip"), "{v:#}");
    peer.shutdown().await;
}
