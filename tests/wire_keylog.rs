//! The NSS key log against the real tools: a real Edge on loopback logs its TLS secrets (and only the Edge:
//! the emulated Expressway logs none), tcpdump captures one call on `lo`, and tshark decrypts the capture with
//! the key log and finds the INVITE and the Edge's 504 with their Call-ID, over TLS 1.2 and TLS 1.3. Without
//! the key log the same capture shows no SIP.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;
#[path = "common/wire_tools.rs"]
mod wire_tools;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use edge_lab::{LabBuilder, SRV_ACANO, T, invite, srv};
use edgesim::config::TlsVersion;
use edgesim::wire::keylog::{self, KeyLogWriter};
use wire_tools::{Capture, eventually, tshark};

/// The SIP tshark sees in `pcap` on `port`, decrypted with `keys`: one `method\tstatus\tcall-id` line each.
fn sip_lines(pcap: &Path, port: u16, keys: &Path) -> Vec<String> {
    let decode = format!("tcp.port=={port},tls");
    let keylog = format!("tls.keylog_file:{}", keys.display());
    let sip_on_tls = format!("tls.port=={port},sip");
    tshark(&[
        "-r",
        pcap.to_str().unwrap(),
        "-d",
        &decode,
        "-d",
        &sip_on_tls,
        "-o",
        &keylog,
        "-Y",
        "sip",
        "-T",
        "fields",
        "-e",
        "sip.Method",
        "-e",
        "sip.Status-Code",
        "-e",
        "sip.Call-ID",
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// One call through an Edge that speaks only `version`: its secrets go to `keys` (set for the Edge's
/// configuration, cleared before the peer's), and the capture is decrypted with them.
async fn decrypt_one_call(version: TlsVersion, dir: &Path, keys: &Path) {
    let name = format!("{version:?}");
    keylog::install_process_wide(Arc::new(KeyLogWriter::open(keys).unwrap()));
    let lab = LabBuilder::inbound()
        .records(vec![srv(SRV_ACANO, "vcse.steven.lab")])
        .config(|c| c.tls.versions = Some(vec![version]))
        .start()
        .await;
    // The Edge's configuration is built: the peer's gets no key log, so only the Edge's secrets are there.
    edgesim::pki::tls::set_key_log(None);
    let before = std::fs::read_to_string(keys).unwrap_or_default();

    let port = lab.addr.port();
    let pcap = dir.join(format!("{name}.pcap"));
    let capture = Capture::start(&pcap, &["tcp", "port", &port.to_string()]);
    let mut peer = lab.peer(&["vcse.steven.lab"]).await;
    let req = invite();
    let resp = peer.request(&req.build(), T).await.unwrap();
    assert_eq!(resp.status_code(), Some(504));
    peer.close().await;

    let want = [
        format!("INVITE\t\t{}", req.call_id),
        format!("\t504\t{}", req.call_id),
    ];
    // tcpdump writes each packet as it sees it: wait until the whole exchange is in the file.
    let seen = eventually(
        Duration::from_secs(15),
        &format!(
            "{name}: tshark never decrypted the INVITE and the 504 of Call-ID {}",
            req.call_id
        ),
        || {
            let lines = sip_lines(&pcap, port, keys);
            (lines == want).then_some(lines)
        },
    );
    capture.stop();
    assert_eq!(seen, want);

    // The Edge wrote the secrets of exactly this version.
    let after = std::fs::read_to_string(keys).unwrap();
    let added: Vec<&str> = after[before.len()..]
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    let expected: &[&str] = match version {
        TlsVersion::Tls12 => &["CLIENT_RANDOM"],
        TlsVersion::Tls13 => &[
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            "CLIENT_TRAFFIC_SECRET_0",
            "SERVER_TRAFFIC_SECRET_0",
            "EXPORTER_SECRET",
        ],
    };
    let mut sorted_added = added.clone();
    sorted_added.sort_unstable();
    let mut sorted_expected = expected.to_vec();
    sorted_expected.sort_unstable();
    assert_eq!(sorted_added, sorted_expected, "{name}: {after}");

    // Without the secrets the same capture shows no SIP at all.
    let empty = dir.join("empty.keys");
    std::fs::write(&empty, "").unwrap();
    assert_eq!(sip_lines(&pcap, port, &empty), Vec::<String>::new());
    lab.stop().await;
}

// One test, so that the process-wide key log is never set by two tests at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tshark_decrypts_a_captured_call_with_the_edges_key_log_tls12_and_tls13() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.log");
    decrypt_one_call(TlsVersion::Tls12, dir.path(), &keys).await;
    decrypt_one_call(TlsVersion::Tls13, dir.path(), &keys).await;
    // Both runs appended to the same 0600 file, as SSLKEYLOGFILE is shared.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
