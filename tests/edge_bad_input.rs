//! Bad input on the Edge's port: each case is answered or closed, and another connection still gets an answer.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;

use std::time::{Duration, Instant};

use edge_lab::*;
use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient, PeerError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn options() -> bytes::Bytes {
    ExpresswayRequest::new("OPTIONS", "sip:2000@acano.steven.lab", "sip:skype.lab").build()
}

async fn still_serving(lab: &Lab) {
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let r = peer.request(&options(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(200));
}

async fn lab_() -> Lab {
    lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |c| {
        c.limits.max_message_bytes = 4096;
        c.limits.max_server_message_body_size_kb = 4;
        c.limits.idle_timeout_ms = 300;
    })
    .await
}

#[tokio::test]
async fn garbage_on_tls_gets_400_with_warning_and_the_connection_stays_usable() {
    let lab = lab_().await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let garbage = b"INVITE  sip:x SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKbad\r\nCall-ID: junk\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let r = peer.request(garbage, T).await.unwrap();
    assert_eq!(r.status_code(), Some(400));
    let w = header(&r, "Warning").unwrap();
    assert!(w.starts_with("399 sip.skype.lab \""), "{w}");
    // A request with a missing To is framed and parsed but invalid: 400 too.
    let no_to = b"OPTIONS sip:skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKnoto\r\nFrom: <sip:a@acano.steven.lab>;tag=1\r\nCall-ID: noto\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let r = peer.request(no_to, T).await.unwrap();
    assert_eq!(r.status_code(), Some(400));
    assert!(header(&r, "Warning").unwrap().contains("missing To header"));
    let r = peer.request(&options(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(200));
    lab.stop().await;
}

#[tokio::test]
async fn oversized_message_gets_413_then_close() {
    let lab = lab_().await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let big = b"MESSAGE sip:stejanss@skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKbig\r\nFrom: <sip:a@acano.steven.lab>;tag=1\r\nTo: <sip:stejanss@skype.lab>\r\nCall-ID: big\r\nCSeq: 1 MESSAGE\r\nContent-Length: 100000\r\n\r\n";
    peer.send(big).await.unwrap();
    let r = peer.recv(T).await.unwrap().unwrap();
    assert_eq!(r.status_code(), Some(413));
    assert!(
        peer.recv(T).await.unwrap().is_none(),
        "the Edge closes after 413"
    );
    // A header block that never ends is cut at the limit too.
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let mut head =
        b"OPTIONS sip:skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKhuge\r\n"
            .to_vec();
    head.extend(std::iter::repeat_n(b'a', 8192));
    peer.send(&head).await.unwrap();
    let r = peer.recv(T).await;
    match r {
        Ok(Some(m)) => assert_eq!(m.status_code(), Some(513)),
        Ok(None) | Err(PeerError::Reset | PeerError::Closed) => {}
        Err(e) => panic!("{e}"),
    }
    still_serving(&lab).await;
    lab.stop().await;
}

#[tokio::test]
async fn plain_tcp_bytes_are_closed() {
    let lab = lab_().await;
    let mut tcp = tokio::net::TcpStream::connect(lab.addr).await.unwrap();
    tcp.write_all(&options()).await.unwrap();
    let mut buf = [0u8; 512];
    // A TLS alert at most, then the close; never a SIP answer.
    let mut got = Vec::new();
    let closed = tokio::time::timeout(T, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the Edge must close a non-TLS connection");
    assert!(!got.starts_with(b"SIP/2.0"));
    still_serving(&lab).await;
    lab.stop().await;
}

#[tokio::test]
async fn idle_and_slow_peers_are_dropped() {
    let lab = lab_().await;
    let mut idle = lab.peer(&["vcse.acano.steven.lab"]).await;
    let start = Instant::now();
    assert!(idle.recv(T).await.unwrap().is_none());
    assert!(start.elapsed() < Duration::from_secs(2));
    // Half a header block and then nothing: dropped after header_timeout_ms (500 ms).
    let mut slow = lab.peer(&["vcse.acano.steven.lab"]).await;
    slow.send(b"OPTIONS sip:skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.1")
        .await
        .unwrap();
    let start = Instant::now();
    assert!(slow.recv(T).await.unwrap().is_none());
    assert!(start.elapsed() < Duration::from_secs(2));
    // A silent TCP client that never starts TLS: dropped after handshake_timeout_ms.
    let mut tcp = tokio::net::TcpStream::connect(lab.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(T, tcp.read(&mut buf)).await.unwrap();
    assert!(matches!(n, Ok(0) | Err(_)));
    still_serving(&lab).await;
    lab.stop().await;
}

#[tokio::test]
async fn request_rate_limit_answers_503_with_retry_after() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |c| {
        c.limits.max_requests_per_sec = 3;
    })
    .await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(
            peer.request(&options(), T)
                .await
                .unwrap()
                .status_code()
                .unwrap(),
        );
    }
    assert_eq!(codes, vec![200, 200, 200, 503]);
    lab.stop().await;
}

#[tokio::test]
async fn connection_limit_closes_extra_connections() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |c| {
        c.limits.max_connections = 1;
    })
    .await;
    let mut first = lab.peer(&["vcse.acano.steven.lab"]).await;
    let id = lab.cert(edgesim::pki::LeafSpec::new("vcse.acano.steven.lab"));
    let second = match PeerClient::connect(lab.addr, "sip.skype.lab", Some(&id), T).await {
        Err(_) => true,
        Ok(mut p) => p.request(&options(), T).await.is_err(),
    };
    assert!(second, "the second connection must be closed");
    assert_eq!(
        first.request(&options(), T).await.unwrap().status_code(),
        Some(200)
    );
    lab.stop().await;
}
