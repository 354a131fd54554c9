//! Robustness of a real `edge::serve` over real TLS on loopback: hostile or broken peers must be answered or
//! dropped within the configured limits, and after each case the Edge still answers a well-formed request on
//! another connection. Limits are short here (700 ms handshake and header timeouts) so the run stays short.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use edge_lab::{T, diag_code};
use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient, PeerError};
use edgesim::pki::LeafSpec;
use edgesim::sip::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a dropped connection may take to be seen closed: the 700 ms limits plus slack for a busy machine.
const DROP_WITHIN: Duration = Duration::from_millis(2500);

fn invite_from(domain: &str) -> ExpresswayRequest {
    ExpresswayRequest::new(
        "INVITE",
        &format!("sip:2000@{domain}"),
        "sip:stejanss@skype.lab",
    )
}

fn options() -> ExpresswayRequest {
    ExpresswayRequest::new("OPTIONS", "sip:vcse@steven.lab", "sip:stejanss@skype.lab")
}

/// Reads a raw TCP stream until the server closes it; returns the bytes it sent and how long that took.
async fn until_closed(tcp: &mut TcpStream, within: Duration) -> (Vec<u8>, Duration) {
    let t0 = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((t0 + within).into(), tcp.read(&mut buf)).await {
            Err(_) => panic!("the Edge kept the connection open for more than {within:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, t0.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The peer sees the connection end (clean close or reset), not a response, within `within`.
async fn assert_dropped(p: &mut PeerClient, within: Duration) {
    match p.recv(within).await {
        Ok(None) | Err(PeerError::Reset | PeerError::Closed) => {}
        Ok(Some(m)) => panic!(
            "expected the connection to be dropped, got {:?}",
            m.start_line()
        ),
        Err(e) => panic!("expected the connection to be dropped, got {e}"),
    }
}

/// Replaces the request's Content-Length header line with `lines` (zero or more header lines).
fn with_content_length(req: &Bytes, lines: &str) -> Vec<u8> {
    let text = String::from_utf8(req.to_vec()).unwrap();
    let start = text.find("Content-Length:").unwrap();
    let end = start + text[start..].find("\r\n").unwrap() + 2;
    format!("{}{}{}", &text[..start], lines, &text[end..]).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_is_dropped_at_the_header_timeout() {
    let lab = edge_lab::short_limits_lab(|_| {}).await;
    let mut p = lab.peer(&["vcse.steven.lab"]).await;
    let req = invite_from("acano.steven.lab").build();
    // Four bytes a second: every byte is activity, but the header must be complete within 700 ms.
    let t0 = Instant::now();
    for &b in req.iter().take(4) {
        if p.send(&[b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_dropped(&mut p, DROP_WITHIN).await;
    assert!(
        t0.elapsed() < DROP_WITHIN,
        "dropped after {:?}",
        t0.elapsed()
    );
    lab.assert_healthy().await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_handshakes_are_dropped_and_do_not_block_others() {
    let lab = edge_lab::short_limits_lab(|_| {}).await;
    // 50 TCP connections that never start TLS, and 50 that stop inside the ClientHello.
    let mut silent = Vec::new();
    let mut partial = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(lab.addr).await.unwrap());
        let mut t = TcpStream::connect(lab.addr).await.unwrap();
        // A handshake record header announcing 512 bytes, then the first bytes of a ClientHello.
        t.write_all(&[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ])
        .await
        .unwrap();
        partial.push(t);
    }
    // While they hang, a real peer gets its answer.
    lab.assert_healthy().await;
    for t in silent.iter_mut().chain(partial.iter_mut()) {
        let (bytes, took) = until_closed(t, DROP_WITHIN).await;
        assert!(took < DROP_WITHIN);
        assert!(
            !bytes.starts_with(b"SIP/2.0"),
            "a SIP answer on a half-open handshake"
        );
    }
    lab.assert_healthy().await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_plain_sip_on_the_tls_port_are_dropped() {
    let lab = edge_lab::short_limits_lab(|_| {}).await;
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let plain = options().build().to_vec();
    for input in [garbage, plain, b"\r\n\r\n".to_vec()] {
        let mut t = TcpStream::connect(lab.addr).await.unwrap();
        t.write_all(&input).await.unwrap();
        let (bytes, _) = until_closed(&mut t, DROP_WITHIN).await;
        // At most a TLS alert (content type 21), never a cleartext SIP answer.
        assert!(
            bytes.is_empty() || bytes[0] == 0x15,
            "unexpected reply {bytes:?}"
        );
    }
    lab.assert_healthy().await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_without_a_client_certificate_gets_no_sip_answer() {
    let lab = edge_lab::short_limits_lab(|_| {}).await;
    let outcome = match PeerClient::connect(lab.addr, "sip.skype.lab", None, T).await {
        // TLS 1.2 refuses in the handshake.
        Err(e) => e.to_string(),
        // TLS 1.3 reports the refusal on the first read.
        Ok(mut p) => match p.request(&options().build(), T).await {
            Ok(m) => panic!(
                "answered without a client certificate: {:?}",
                m.start_line()
            ),
            Err(e) => e.to_string(),
        },
    };
    assert!(
        outcome.contains("CertificateRequired")
            || outcome.contains("reset")
            || outcome.contains("closed"),
        "{outcome}"
    );
    lab.assert_healthy().await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_headers_get_513_and_the_connection_closes() {
    let lab = edge_lab::short_limits_lab(|_| {}).await;
    let mut p = lab.peer(&["vcse.steven.lab"]).await;
    let big = "x".repeat(40 * 1024);
    let req = options().build();
    let req = with_content_length(&req, &format!("X-Huge: {big}\r\nContent-Length: 0\r\n"));
    // The Edge may close while we are still writing: only its answer matters.
    let _ = p.send(&req).await;
    let r = p.recv(T).await.unwrap().expect("a 513 before the close");
    assert_eq!(r.status_code(), Some(513));
    assert_dropped(&mut p, DROP_WITHIN).await;
    lab.assert_healthy().await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_lies() {
    let lab = edge_lab::short_limits_lab(|_| {}).await;
    let req = invite_from("acano.steven.lab").build();

    // Too long: the body never completes, so the header timer drops the connection.
    let mut p = lab.peer(&["vcse.steven.lab"]).await;
    p.send(&with_content_length(&req, "Content-Length: 5000\r\n"))
        .await
        .unwrap();
    let t0 = Instant::now();
    assert_dropped(&mut p, DROP_WITHIN).await;
    assert!(t0.elapsed() < DROP_WITHIN);

    // Too short: the request is judged on its truncated body; the rest is an incomplete message, dropped.
    let mut p = lab.peer(&["vcse.steven.lab"]).await;
    p.send(&with_content_length(&req, "Content-Length: 5\r\n"))
        .await
        .unwrap();
    let r = p.final_response(T).await.unwrap();
    assert_eq!(
        (r.status_code(), diag_code(&r).as_deref()),
        (Some(504), Some("1009"))
    );
    assert_dropped(&mut p, DROP_WITHIN).await;

    // Negative, and two that disagree: 400, then the stream cannot be framed any more: closed.
    for lie in [
        "Content-Length: -1\r\n",
        "Content-Length: 10\r\nContent-Length: 250\r\n",
    ] {
        let mut p = lab.peer(&["vcse.steven.lab"]).await;
        p.send(&with_content_length(&req, lie)).await.unwrap();
        let r = p.recv(T).await.unwrap().expect("a 400 before the close");
        assert_eq!(r.status_code(), Some(400), "{lie:?}");
        assert_dropped(&mut p, DROP_WITHIN).await;
    }
    lab.assert_healthy().await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_all_answered_in_order() {
    let lab = edge_lab::short_limits_lab(|_| {}).await;
    let mut p = lab.peer(&["vcse.steven.lab"]).await;
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for i in 0..30u32 {
        let mut r = if i % 3 == 0 {
            options()
        } else {
            invite_from("acano.steven.lab")
        };
        r.cseq = 100 + i;
        batch.extend_from_slice(&r.build());
        expected.push((100 + i, if i % 3 == 0 { 200 } else { 504 }));
    }
    p.send(&batch).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..expected.len() {
        let m: Message = p.final_response(T).await.unwrap();
        seen.push((m.cseq().unwrap().seq, m.status_code().unwrap()));
    }
    assert_eq!(seen, expected);
    lab.assert_healthy().await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_servfail_is_504_1008() {
    let lab = edge_lab::short_limits_lab(|_| {}).await;
    let mut p = lab.peer(&["vcse.steven.lab"]).await;
    let r = p
        .request(&invite_from("servfail.lab").build(), T)
        .await
        .unwrap();
    assert_eq!(
        (r.status_code(), diag_code(&r).as_deref()),
        (Some(504), Some("1008"))
    );
    lab.assert_healthy().await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_server_down_is_504_1008() {
    // A port that was just free: nothing answers there, over UDP or TCP.
    let closed: SocketAddr = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let lab = edge_lab::LabBuilder::short_limits()
        .resolver(closed)
        .start()
        .await;
    let mut p = lab.peer(&["vcse.steven.lab"]).await;
    let r = p
        .request(&invite_from("acano.steven.lab").build(), T)
        .await
        .unwrap();
    assert_eq!(
        (r.status_code(), diag_code(&r).as_deref()),
        (Some(504), Some("1008"))
    );
    // No DNS means OPTIONS cannot pass either; the Edge must still answer, on a new connection.
    let mut q = lab.peer(&["vcse.steven.lab"]).await;
    let r = q.request(&options().build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_does_not_block_others_and_is_dropped() {
    let lab = edge_lab::short_limits_lab(|_| {}).await;
    let mut stuck = lab.peer(&["vcse.steven.lab"]).await;
    let one = invite_from("acano.steven.lab").build();
    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 200).collect();
    // Write until the Edge stops reading (its answers fill our receive buffer and its send buffer).
    let t0 = Instant::now();
    let mut sent = 0usize;
    loop {
        match tokio::time::timeout(Duration::from_millis(500), stuck.send(&batch)).await {
            Ok(Ok(())) => sent += 200,
            Ok(Err(_)) | Err(_) => break,
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the Edge kept reading from a peer that never reads"
        );
    }
    // Another connection is served meanwhile.
    lab.assert_healthy().await;
    // Still not reading past the Edge's write timeout (5 s): it must give up on this peer.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut answered = 0usize;
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        // A reset ends it too: the Edge closes with our unread requests in its buffer.
        while let Ok(Some(_)) = stuck.recv(Duration::from_secs(5)).await {
            answered += 1;
        }
    })
    .await;
    assert!(drained.is_ok(), "the stuck connection was never closed");
    assert!(
        answered < sent,
        "every request was answered: the Edge never gave up on the peer"
    );
    lab.assert_healthy().await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_refuses_the_extra_one_and_recovers() {
    let lab = edge_lab::short_limits_lab(|c| c.limits.max_connections = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(lab.peer(&["vcse.steven.lab"]).await);
    }
    let id = lab.cert(LeafSpec::new("vcse.steven.lab"));
    let extra = match PeerClient::connect(lab.addr, "sip.skype.lab", Some(&id), T).await {
        Err(e) => Err(e),
        Ok(mut p) => p.request(&options().build(), T).await.map(|_| ()),
    };
    assert!(
        extra.is_err(),
        "a fourth connection was served over max_connections = 3"
    );
    // The held ones still work.
    let r = held[0].request(&options().build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(200));
    // One leaves: a new peer is served again (the slot frees when the Edge sees the close).
    held.pop().unwrap().close().await;
    let t0 = Instant::now();
    loop {
        let mut p = match PeerClient::connect(lab.addr, "sip.skype.lab", Some(&id), T).await {
            Ok(p) => p,
            Err(_) => continue,
        };
        if let Ok(r) = p.request(&options().build(), T).await {
            assert_eq!(r.status_code(), Some(200));
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "the freed slot was never reused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_limit_is_503_with_retry_after() {
    let lab = edge_lab::short_limits_lab(|c| c.limits.max_requests_per_sec = 5).await;
    let mut p = lab.peer(&["vcse.steven.lab"]).await;
    let mut batch = Vec::new();
    for i in 0..10u32 {
        let mut r = options();
        r.cseq = 1 + i;
        batch.extend_from_slice(&r.build());
    }
    p.send(&batch).await.unwrap();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let m = p.final_response(T).await.unwrap();
        if m.status_code() == Some(503) {
            let ra = m
                .header_named("Retry-After")
                .map(|h| String::from_utf8_lossy(&h.value()).into_owned());
            assert!(
                ra.is_some_and(|v| v.trim().parse::<u32>().is_ok()),
                "503 without a Retry-After"
            );
        }
        statuses.push(m.status_code().unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 503).count(),
        5,
        "{statuses:?}"
    );
    lab.assert_healthy().await;
    lab.stop().await;
}
