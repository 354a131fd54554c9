//! The Edge's taps in process: a request that does not parse is in the pcapng as it came, before the Edge's
//! 400 (tshark reads both), and it is not counted as a request; the open-connections gauge follows the
//! connection.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;
#[path = "common/wire_tools.rs"]
mod wire_tools;

use std::sync::Arc;
use std::time::Duration;

use edge_lab::{LabBuilder, SRV_ACANO, T, srv};
use edgesim::wire::metrics::EdgeMetrics;
use edgesim::wire::pcap::{PcapLimits, PcapWriter};
use edgesim::wire::{TapSinks, Taps};
use wire_tools::{eventually, tshark};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_is_captured_before_the_edges_400() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.pcapng");
    let pcap = PcapWriter::open(&file, PcapLimits::default()).unwrap();
    let metrics = Arc::new(EdgeMetrics::new());
    let lab = LabBuilder::inbound()
        .records(vec![srv(SRV_ACANO, "vcse.steven.lab")])
        .start()
        .await;
    let taps = Taps::new(TapSinks {
        pcap: Some(pcap.clone()),
        metrics: Some(metrics.clone()),
        ..TapSinks::default()
    });
    lab.edge.set_taps(taps.clone());

    let mut peer = lab.peer(&["vcse.steven.lab"]).await;
    // A header line without a colon: framed (Content-Length is right), does not parse, refused with 400.
    let bad = b"OPTIONS sip:stejanss@skype.lab SIP/2.0\r\n\
        Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKbad1\r\n\
        From: <sip:2000@acano.steven.lab>;tag=1\r\nTo: <sip:stejanss@skype.lab>\r\n\
        Call-ID: malformed-1\r\nCSeq: 1 OPTIONS\r\nthis line has no colon\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    peer.send(bad).await.unwrap();
    let answer = peer.final_response(T).await.unwrap();
    assert_eq!(answer.status_code(), Some(400));
    let text = metrics.encode();
    assert!(text.contains("edgesim_tls_connections_open 1\n"), "{text}");
    assert!(
        !text.contains("edgesim_sip_requests_total{"),
        "a request that does not parse is not counted: {text}"
    );
    assert!(
        text.contains("edgesim_sip_responses_total{status=\"400\",ms_diagnostics=\"none\"} 1\n"),
        "{text}"
    );
    peer.close().await;
    eventually(
        Duration::from_secs(5),
        "the connection never closed",
        || {
            metrics
                .encode()
                .contains("edgesim_tls_connections_open 0\n")
                .then_some(())
        },
    );
    lab.stop().await;
    taps.shutdown().await.unwrap();

    let seen = tshark(&[
        "-r",
        file.to_str().unwrap(),
        "-Y",
        "sip",
        "-T",
        "fields",
        "-e",
        "sip.Request-Line",
        "-e",
        "sip.Status-Code",
        "-e",
        "sip.Call-ID",
    ]);
    assert_eq!(
        seen,
        "OPTIONS sip:stejanss@skype.lab SIP/2.0\t\tmalformed-1\n\t400\tmalformed-1\n"
    );
}
