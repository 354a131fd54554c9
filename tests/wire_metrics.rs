//! The metrics endpoint over real HTTP on loopback: two Edges' registries in one process, each scraped from
//! its own listener and parsed with a Prometheus text parser (`prometheus-parse`); wrong paths and methods,
//! oversized headers, and shutdown.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edgesim::wire::metrics::{CONTENT_TYPE, DnsResult, EdgeMetrics, HandshakeResult, Sink, serve};
use prometheus_parse::{Scrape, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(5);

struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start(metrics: Arc<EdgeMetrics>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { serve(listener, metrics, shutdown).await.unwrap() }
    });
    Server {
        addr,
        shutdown,
        task,
    }
}

/// Sends `request` and reads the whole answer (the request asks to close): status code, head, body.
async fn http(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

async fn scrape(addr: SocketAddr) -> (String, Scrape) {
    let (status, head, body) = http(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-type: {CONTENT_TYPE}")),
        "{head}"
    );
    let parsed = Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap();
    (body, parsed)
}

/// The value of the sample `name` whose labels include all of `labels`.
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{name}: not a single value: {other:?}"),
        })
}

#[tokio::test]
async fn two_edges_in_one_process_serve_their_own_parsed_metrics() {
    let a = Arc::new(EdgeMetrics::new());
    let b = Arc::new(EdgeMetrics::new());
    // Edge A: two connections (one still open), an INVITE refused with 504/1009, an OPTIONS answered.
    a.conn_opened();
    a.conn_opened();
    a.conn_closed();
    a.handshake(HandshakeResult::Ok);
    a.handshake(HandshakeResult::CertificateRefused);
    a.request("INVITE");
    a.request("INVITE");
    a.request("OPTIONS");
    a.response(504, Some(1009));
    a.response(504, Some(1009));
    a.response(200, None);
    a.decision_latency(Duration::from_micros(800));
    a.decision_latency(Duration::from_millis(30));
    a.dns(DnsResult::Ok);
    a.dns(DnsResult::ServFail);
    a.backlog(Sink::Pcap, 3);
    // Edge B: one DNS timeout only.
    b.dns(DnsResult::Timeout);

    let sa = start(a.clone()).await;
    let sb = start(b.clone()).await;
    let (text, pa) = scrape(sa.addr).await;
    let (_, pb) = scrape(sb.addr).await;

    assert_eq!(value(&pa, "edgesim_tls_connections_open", &[]), Some(1.0));
    assert_eq!(
        value(&pa, "edgesim_tls_handshakes_total", &[("result", "ok")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &pa,
            "edgesim_tls_handshakes_total",
            &[("result", "certificate_refused")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&pa, "edgesim_sip_requests_total", &[("method", "INVITE")]),
        Some(2.0)
    );
    assert_eq!(
        value(&pa, "edgesim_sip_requests_total", &[("method", "OPTIONS")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &pa,
            "edgesim_sip_responses_total",
            &[("status", "504"), ("ms_diagnostics", "1009")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &pa,
            "edgesim_sip_responses_total",
            &[("status", "200"), ("ms_diagnostics", "none")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&pa, "edgesim_dns_lookups_total", &[("result", "servfail")]),
        Some(1.0)
    );
    assert_eq!(
        value(&pa, "edgesim_sink_backlog", &[("sink", "pcap")]),
        Some(3.0)
    );
    assert_eq!(
        value(&pa, "edgesim_sip_decision_latency_seconds_count", &[]),
        Some(2.0)
    );
    let sum = value(&pa, "edgesim_sip_decision_latency_seconds_sum", &[]).unwrap();
    assert!((sum - 0.0308).abs() < 1e-9, "{sum}");
    let hist = pa
        .samples
        .iter()
        .find(|s| s.metric == "edgesim_sip_decision_latency_seconds")
        .unwrap();
    let Value::Histogram(buckets) = &hist.value else {
        panic!("{:?}", hist.value)
    };
    let count_le = |le: f64| {
        buckets
            .iter()
            .find(|b| {
                b.less_than == le || (le.is_finite() && (b.less_than - le).abs() <= 1e-9 * le)
            })
            .unwrap()
            .count
    };
    assert_eq!(count_le(0.0005), 0.0);
    assert_eq!(count_le(0.001), 1.0);
    assert_eq!(count_le(0.016), 1.0);
    assert_eq!(count_le(0.032), 2.0);
    assert_eq!(count_le(f64::INFINITY), 2.0);
    // Every metric has its help text.
    for name in [
        "edgesim_tls_handshakes",
        "edgesim_tls_connections_open",
        "edgesim_sip_requests",
        "edgesim_sip_responses",
        "edgesim_sip_decision_latency_seconds",
        "edgesim_dns_lookups",
        "edgesim_sink_backlog",
    ] {
        assert!(pa.docs.contains_key(name), "no HELP for {name}: {text}");
    }

    // Edge B's registry holds only what B counted.
    assert_eq!(
        value(&pb, "edgesim_dns_lookups_total", &[("result", "timeout")]),
        Some(1.0)
    );
    assert_eq!(
        value(&pb, "edgesim_dns_lookups_total", &[("result", "servfail")]),
        None
    );
    assert_eq!(
        value(&pb, "edgesim_sip_requests_total", &[("method", "INVITE")]),
        None
    );
    assert_eq!(value(&pb, "edgesim_tls_connections_open", &[]), Some(0.0));

    // A later scrape sees later counts.
    a.request("INVITE");
    let (_, again) = scrape(sa.addr).await;
    assert_eq!(
        value(
            &again,
            "edgesim_sip_requests_total",
            &[("method", "INVITE")]
        ),
        Some(3.0)
    );

    for s in [sa, sb] {
        s.shutdown.cancel();
        tokio::time::timeout(T, s.task).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn other_paths_methods_and_oversized_headers_are_refused_and_serving_goes_on() {
    let s = start(Arc::new(EdgeMetrics::new())).await;
    let (status, _, body) = http(
        s.addr,
        b"GET / HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body, "not found: the metrics are at /metrics\n");
    let (status, head, _) = http(
        s.addr,
        b"POST /metrics HTTP/1.1\r\nHost: edge\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 405);
    assert!(head.to_ascii_lowercase().contains("allow: get"), "{head}");

    // 64 KiB of header: refused (431) within the 8 KiB bound, not buffered.
    let mut big = b"GET /metrics HTTP/1.1\r\nHost: edge\r\nX-Pad: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 64 * 1024));
    big.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    // The server may close before reading it all; what it answers first is what counts.
    let _ = c.write_all(&big).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(T, c.read_to_end(&mut raw))
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&raw);
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "expected 431, got {answer:?}"
    );

    // Still serving.
    let (_, parsed) = scrape(s.addr).await;
    assert_eq!(
        value(&parsed, "edgesim_tls_connections_open", &[]),
        Some(0.0)
    );

    // Shutdown ends serve() even with a scraper connected and idle.
    let _idle = TcpStream::connect(s.addr).await.unwrap();
    s.shutdown.cancel();
    tokio::time::timeout(T, s.task).await.unwrap().unwrap();
}
