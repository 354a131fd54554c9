//! `edgesim serve --sfb-config` (issue 15): a customer's federation settings, pasted from their Edge as the
//! cmdlets' Format-List output (`tests/fixtures/sfb/`), are the policy in force on the wire. Real TLS with
//! certificates issued at run time by the lab CA, real DNS from the Edge's embedded server on loopback.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient};
use edgesim::pki::{LabCa, LeafSpec, TlsIdentity};

/// The lab: a user, and the DNS of the partners. fabrikam.lab has no SRV record at all (its ProxyFqdn is
/// all the Edge needs); acano.steven.lab and contoso.lab have good ones.
const CONFIG: &str = r#"
[limits]
idle_timeout_ms = 3000

[[users]]
user = "stejanss"
ring_ms = 10
# contoso.lab is AlwaysUnverifiable in the pasted allowed list: its messages reach users who list the sender.
contacts = ["sip:alice@contoso.lab"]

[[dns.records]]
type = "SRV"
name = "_sipfederationtls._tcp.acano.steven.lab"
port = 5061
target = "vcse.acano.steven.lab"

[[dns.records]]
type = "SRV"
name = "_sipfederationtls._tcp.contoso.lab"
port = 5061
target = "sip.contoso.lab"
"#;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sfb")
        .join(name)
}

fn serve(dir: &Path, sfb: &[PathBuf]) -> Command {
    std::fs::write(dir.join("edge.toml"), CONFIG).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgesim"));
    c.args(["--log", "warn", "serve", "--listen", "127.0.0.1:0"])
        .args(["--serve-dns", "127.0.0.1:0", "--config", "edge.toml"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .current_dir(dir);
    for f in sfb {
        c.arg("--sfb-config").arg(f);
    }
    c
}

/// Starts serve; its address and start-up report (up to the resolver line).
fn started(mut cmd: Command) -> (Kill, SocketAddr, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .rsplit_once("listening on tls ")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let mut report = vec![first];
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("resolving SRV records with");
        report.push(line);
        if done {
            break;
        }
    }
    (Kill(child), addr, report.join("\n"))
}

/// An INVITE from `from` to stejanss, over mutual TLS with a certificate naming `cert_name`: the status and
/// the ms-diagnostics of the Edge's final answer.
async fn invite(addr: SocketAddr, data: &Path, from: &str, cert_name: &str) -> (u16, String) {
    let ca = LabCa::load_dir(data).unwrap();
    let id = TlsIdentity::from(&ca.issue(&LeafSpec::new(cert_name)).unwrap());
    let t = Duration::from_secs(5);
    let mut peer = PeerClient::connect(addr, "sip.skype.lab", Some(&id), t)
        .await
        .unwrap();
    let req = ExpresswayRequest::new("INVITE", from, "sip:stejanss@skype.lab");
    let r = peer.request(&req.build(), t).await.unwrap();
    let diag = r
        .header_named("ms-diagnostics")
        .map(|h| String::from_utf8_lossy(&h.value()).into_owned())
        .unwrap_or_default();
    (r.status_code().unwrap(), diag)
}

#[tokio::test]
async fn the_pasted_customer_policy_is_the_policy_on_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let files = [
        fixture("access-edge.txt"),
        fixture("allowed.txt"),
        fixture("blocked.txt"),
    ];
    let (_edge, addr, report) = started(serve(dir.path(), &files));
    for line in [
        format!(
            "federation settings: the pasted Get-CsAccessEdgeConfiguration ({}:4; what it leaves out: Microsoft's defaults)",
            files[0].display()
        ),
        "federation: on (AllowFederatedUsers True)".to_owned(),
        "partner discovery: off (EnablePartnerDiscovery False): only the allowed domains federate; any other domain gets 403 with ms-diagnostics 1002".to_owned(),
        format!(
            "allowed domain fabrikam.lab: ProxyFqdn sip.fabrikam.lab (no SRV lookup; the peer certificate must name it), VerificationLevel UseSourceVerification ({}:3)",
            files[1].display()
        ),
        format!(
            "allowed domain contoso.lab: DNS SRV, VerificationLevel AlwaysUnverifiable ({}:12)",
            files[1].display()
        ),
        format!("blocked domain spam.lab ({}:3)", files[2].display()),
    ] {
        assert!(report.lines().any(|l| l == line), "{line}\nnot in:\n{report}");
    }

    // Get-CsBlockedDomain: refused.
    let (status, diag) = invite(addr, &data, "sip:spammer@spam.lab", "sip.spam.lab").await;
    assert_eq!(status, 403, "{diag}");
    assert!(diag.starts_with("1002;"), "{diag}");

    // An allowed domain with a ProxyFqdn: no SRV record exists, the certificate names the ProxyFqdn.
    let (status, diag) = invite(addr, &data, "sip:ken@fabrikam.lab", "sip.fabrikam.lab").await;
    assert_eq!(status, 200, "{diag}");
    // ... and a certificate that does not name it is refused by Rule 2.
    let (status, diag) = invite(addr, &data, "sip:ken@fabrikam.lab", "edge.fabrikam.lab").await;
    assert_eq!(status, 504, "{diag}");
    assert!(diag.starts_with("1010;"), "{diag}");

    // An allowed domain without a ProxyFqdn: found through its SRV record; AlwaysUnverifiable, so it reaches
    // stejanss because stejanss lists the sender ...
    let (status, diag) = invite(addr, &data, "sip:alice@contoso.lab", "sip.contoso.lab").await;
    assert_eq!(status, 200, "{diag}");
    // ... and another sender of the domain is not delivered.
    let (status, diag) = invite(addr, &data, "sip:mallory@contoso.lab", "sip.contoso.lab").await;
    assert_eq!((status, diag.as_str()), (403, ""));

    // EnablePartnerDiscovery False: a domain off the list is refused although its SRV record is good.
    let (status, diag) = invite(
        addr,
        &data,
        "sip:2000@acano.steven.lab",
        "vcse.acano.steven.lab",
    )
    .await;
    assert_eq!(status, 403, "{diag}");
    assert!(diag.starts_with("1002;"), "{diag}");
}

#[tokio::test]
async fn without_the_pasted_settings_the_lab_defaults_federate_with_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_edge, addr, report) = started(serve(dir.path(), &[]));
    assert!(
        report.contains("\nfederation settings: edgesim's lab defaults (no [access_edge]: AllowFederatedUsers True, where a real Edge ships with False)\n"),
        "{report}"
    );
    let (status, diag) = invite(
        addr,
        &data,
        "sip:2000@acano.steven.lab",
        "vcse.acano.steven.lab",
    )
    .await;
    assert_eq!(status, 200, "{diag}");
    // fabrikam.lab is not allowed here: discovered, and it has no SRV record.
    let (status, diag) = invite(addr, &data, "sip:ken@fabrikam.lab", "sip.fabrikam.lab").await;
    assert_eq!(status, 504, "{diag}");
    assert!(diag.starts_with("1008;"), "{diag}");
}

fn failed(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening"),
        "{out:?}"
    );
    out
}

#[test]
fn a_malformed_pasted_file_stops_the_start_naming_the_file_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("edge.txt");
    std::fs::write(
        &bad,
        "Identity            : Global\r\nAllowFederatedUsers : Yes\r\n",
    )
    .unwrap();
    let out = failed(&mut serve(dir.path(), std::slice::from_ref(&bad)));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:2: `AllowFederatedUsers`: expected True or False, found \"Yes\"",
            bad.display()
        )),
        "{err}"
    );
}

#[test]
fn unknown_properties_are_warned_about_in_the_start_up_report() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.txt");
    std::fs::write(
        &file,
        "Identity               : Global\nAllowFederatedUsers    : True\nEnablePartnerDiscovery : True\nEnableQuantumRouting   : True\n",
    )
    .unwrap();
    let (_edge, _addr, report) = started(serve(dir.path(), std::slice::from_ref(&file)));
    assert!(
        report.contains(&format!(
            "\n{}:4: warning: unknown property `EnableQuantumRouting` in Get-CsAccessEdgeConfiguration output, ignored (a newer Skype for Business version? edgesim does not know it)\n",
            file.display()
        )),
        "{report}"
    );
    assert!(
        report.contains(
            "\npartner discovery: on (EnablePartnerDiscovery True, RoutingMethod UseDnsSrvRouting)"
        ),
        "{report}"
    );
}
