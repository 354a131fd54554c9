//! The web view's HTTP side over real HTTP on loopback, with events published to its hub as the Edge's
//! producers publish them: the event stream (history, then live, resuming after `Last-Event-ID`), its limit
//! on open pages, a dialog's exports (text and Mermaid ladder, JSON, and pcapng that tshark reads back), the
//! answers to bad requests, the embedded assets, and `serve --ui` on an address in use.
#![allow(clippy::unwrap_used)]

#[path = "common/wire_tools.rs"]
mod wire_tools;

use std::net::SocketAddr;
use std::time::Duration;

use edgesim::ui::{
    ChainVerdict, Closer, ConnectionClosed, ConnectionView, DecisionView, MessageDirection,
    Outcome, ResponseView, SipMessage, Step, UiEvent, UiHub, UiLimits, Verdict,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(5);
const CALL_ID: &str = "c1@vcse/x";
const EDGE: &str = "127.0.0.1:5061";
const PEER: &str = "127.0.0.2:40001";

struct Server {
    addr: SocketAddr,
    hub: UiHub,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start(limits: UiLimits) -> Server {
    let hub = UiHub::new("sip.skype.lab", limits);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let (hub, shutdown) = (hub.clone(), shutdown.clone());
        async move {
            edgesim::ui::http::serve(listener, hub, shutdown)
                .await
                .unwrap()
        }
    });
    Server {
        addr,
        hub,
        shutdown,
        task,
    }
}

impl Server {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(T, self.task).await.unwrap().unwrap();
    }
}

/// Sends `request` and reads the whole answer (the request asks to close): status, head, body bytes.
async fn http(addr: SocketAddr, request: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..at].to_vec()).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, raw[at + 4..].to_vec())
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: ui\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// An open event stream: reads frames as they come.
struct Stream {
    s: TcpStream,
    text: String,
}

impl Stream {
    async fn open(addr: SocketAddr, last_event_id: Option<u64>) -> (u16, Stream) {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let last = last_event_id
            .map(|n| format!("Last-Event-ID: {n}\r\n"))
            .unwrap_or_default();
        s.write_all(format!("GET /events HTTP/1.1\r\nHost: ui\r\n{last}\r\n").as_bytes())
            .await
            .unwrap();
        let mut st = Stream {
            s,
            text: String::new(),
        };
        while !st.text.contains("\r\n\r\n") {
            st.more().await;
        }
        let status = st.text.split(' ').nth(1).unwrap().parse().unwrap();
        (status, st)
    }

    async fn more(&mut self) {
        let mut buf = [0u8; 8192];
        let n = tokio::time::timeout(T, self.s.read(&mut buf))
            .await
            .expect("no more of the event stream in time")
            .unwrap();
        assert!(n > 0, "the event stream ended: {}", self.text);
        self.text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }

    /// The `ui` events received so far: (id, data as JSON).
    fn events(&self) -> Vec<(u64, Value)> {
        let mut out = Vec::new();
        let mut id = None;
        for line in self.text.lines() {
            if let Some(v) = line.strip_prefix("id: ") {
                id = v.trim().parse().ok();
            } else if let Some(d) = line.strip_prefix("data: ") {
                out.push((id.unwrap_or(0), serde_json::from_str(d).unwrap()));
            }
        }
        out
    }

    /// Reads until `n` events arrived.
    async fn until(&mut self, n: usize) -> Vec<(u64, Value)> {
        while self.events().len() < n {
            self.more().await;
        }
        self.events()
    }
}

fn closed(conn: u64) -> UiEvent {
    UiEvent::ConnectionClosed(ConnectionClosed {
        time: time::OffsetDateTime::now_utc(),
        conn,
        remote: PEER.parse().unwrap(),
        by: Closer::Peer,
        reason: "closed by the peer".into(),
    })
}

#[tokio::test]
async fn the_stream_sends_the_history_then_live_events_and_resumes_after_the_last_event_id() {
    let srv = start(UiLimits::default()).await;
    srv.hub.publish(closed(1));
    srv.hub.publish(closed(2));
    let (status, mut st) = Stream::open(srv.addr, None).await;
    assert_eq!(status, 200, "{}", st.text);
    assert!(
        st.text
            .to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{}",
        st.text
    );
    let got = st.until(2).await;
    assert_eq!(got.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(got[0].1["kind"], "connection_closed");
    assert_eq!(got[1].1["conn"], 2);
    srv.hub.publish(closed(3));
    let got = st.until(3).await;
    assert_eq!(got[2].0, 3);
    assert_eq!(got[2].1["seq"], 3);

    // A page that reconnects after event 2 gets event 3 only, then what comes next.
    let (_, mut again) = Stream::open(srv.addr, Some(2)).await;
    srv.hub.publish(closed(4));
    let got = again.until(2).await;
    assert_eq!(got.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [3, 4]);
    drop((st, again));
    srv.stop().await;
}

#[tokio::test]
async fn open_pages_are_limited_and_a_closed_one_frees_its_place() {
    let srv = start(UiLimits {
        max_streams: 1,
        ..UiLimits::default()
    })
    .await;
    let (status, first) = Stream::open(srv.addr, None).await;
    assert_eq!(status, 200);
    let (status, _, body) = get(srv.addr, "/events").await;
    assert_eq!(status, 503);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "too many web view pages are open (1 at most): close one\n"
    );
    drop(first);
    // The server notices the closed page when it next writes to it.
    let deadline = tokio::time::Instant::now() + T;
    loop {
        srv.hub.publish(closed(9));
        let (status, mut st) = Stream::open(srv.addr, None).await;
        if status == 200 {
            assert!(!st.until(1).await.is_empty());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    srv.stop().await;
}

/// A failing call as the Edge's producers publish it: the connection, the INVITE in, the decision, the
/// 504 out, the close.
fn publish_failing_call(hub: &UiHub) {
    let (edge, peer) = (EDGE.parse().unwrap(), PEER.parse().unwrap());
    hub.publish(UiEvent::Connection(ConnectionView {
        time: time::OffsetDateTime::now_utc(),
        conn: 0x100,
        remote: peer,
        local: edge,
        sni: Some("sip.skype.lab".into()),
        tls_version: Some("TLS 1.3".into()),
        cipher_suite: Some("TLS13_AES_256_GCM_SHA384".into()),
        client_cert: None,
        chain_len: 1,
        chain: ChainVerdict {
            trusted: true,
            text: "it chains to a CA the Edge trusts".into(),
        },
    }));
    let invite = format!(
        "INVITE sip:stejanss@skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bK1\r\n\
         From: <sip:2000@acano.steven.lab>;tag=a1\r\nTo: <sip:stejanss@skype.lab>\r\nCall-ID: {CALL_ID}\r\n\
         CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    hub.publish(UiEvent::Message(SipMessage::from_bytes(
        0x100,
        edge,
        peer,
        MessageDirection::In,
        invite.as_bytes(),
    )));
    hub.publish(UiEvent::Decision(DecisionView {
        time: time::OffsetDateTime::now_utc(),
        conn: Some(0x100),
        remote: PEER.into(),
        peer_cert: Some("vcse.steven.lab".into()),
        method: Some("INVITE".into()),
        call_id: Some(CALL_ID.into()),
        domain: Some("acano.steven.lab".into()),
        verdict: Verdict::Reject,
        steps: vec![Step {
            rule: "Rule 1: SRV target in the sender's domain".into(),
            outcome: Outcome::Fail,
            detail: "vcse.steven.lab is not in acano.steven.lab".into(),
        }],
        response: Some(ResponseView {
            status: 504,
            reason: Some("Server time-out".into()),
        }),
        ms_diagnostics: Some("1009;reason=\"No match for domain in DNS SRV results\"".into()),
        ms_diagnostics_code: Some(1009),
        result_code: Some("0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH".into()),
        log_data: vec![("domain".into(), "acano.steven.lab".into())],
        record: None,
        explanation: None,
        fix: Some("publish the SRV record".into()),
    }));
    let answer = format!(
        "SIP/2.0 504 Server time-out\r\nVia: SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bK1\r\n\
         From: <sip:2000@acano.steven.lab>;tag=a1\r\nTo: <sip:stejanss@skype.lab>;tag=b2\r\nCall-ID: {CALL_ID}\r\n\
         CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    hub.publish(UiEvent::Message(SipMessage::from_bytes(
        0x100,
        edge,
        peer,
        MessageDirection::Out,
        answer.as_bytes(),
    )));
    hub.publish(closed(0x100));
}

#[tokio::test]
async fn a_dialog_exports_as_text_mermaid_json_and_a_pcapng_tshark_reads() {
    let srv = start(UiLimits::default()).await;
    publish_failing_call(&srv.hub);
    // An unrelated call on another connection stays out of the exports.
    srv.hub.publish(closed(0x200));
    let q = "call_id=c1%40vcse%2Fx";

    let (status, _, body) = get(srv.addr, &format!("/api/dialog.txt?{q}")).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Call-ID c1@vcse/x (from the SIP messages)");
    assert_eq!(lines[1], "  peer = vcse.steven.lab (127.0.0.2:40001)");
    assert!(
        lines[4].ends_with("  peer --> Edge  INVITE sip:stejanss@skype.lab SIP/2.0"),
        "{text}"
    );
    assert_eq!(
        lines[5].trim_start(),
        "[Edge] reject: 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH — fix: publish the SRV record"
    );
    assert!(
        lines[6].ends_with("  peer <-- Edge  SIP/2.0 504 Server time-out"),
        "{text}"
    );

    let (status, head, body) = get(srv.addr, &format!("/api/dialog.mmd?{q}")).await;
    assert_eq!(status, 200);
    assert!(
        head.contains("content-disposition: attachment; filename=\"dialog-c1_vcse_x.mmd\""),
        "{head}"
    );
    let mmd = String::from_utf8(body).unwrap();
    assert!(mmd.starts_with("sequenceDiagram\n"), "{mmd}");
    assert!(
        mmd.contains("    P->>E: INVITE sip:stejanss@skype.lab SIP/2.0\n"),
        "{mmd}"
    );
    assert!(
        mmd.contains("    E-->>P: SIP/2.0 504 Server time-out\n"),
        "{mmd}"
    );

    let (status, _, body) = get(srv.addr, &format!("/api/dialog.json?{q}")).await;
    assert_eq!(status, 200);
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["format"], "edgesim web view dialog");
    assert_eq!(json["call_id"], CALL_ID);
    let kinds: Vec<&str> = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "connection",
            "message",
            "decision",
            "message",
            "connection_closed"
        ]
    );
    assert_eq!(json["events"][2]["steps"][0]["outcome"], "fail");
    assert_eq!(json["ladder"]["source"], "messages");

    let (status, head, body) = get(srv.addr, &format!("/api/dialog.pcapng?{q}")).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(head.contains("application/vnd.tcpdump.pcap"), "{head}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dialog.pcapng");
    std::fs::write(&file, &body).unwrap();
    let got = wire_tools::tshark(&[
        "-r",
        file.to_str().unwrap(),
        "-Y",
        "sip",
        "-T",
        "fields",
        "-e",
        "ip.src",
        "-e",
        "tcp.srcport",
        "-e",
        "ip.dst",
        "-e",
        "tcp.dstport",
        "-e",
        "sip.Method",
        "-e",
        "sip.Status-Code",
        "-e",
        "sip.Call-ID",
    ]);
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        [
            format!("127.0.0.2\t40001\t127.0.0.1\t5061\tINVITE\t\t{CALL_ID}"),
            format!("127.0.0.1\t5061\t127.0.0.2\t40001\t\t504\t{CALL_ID}"),
        ]
    );
    // The peer's certificate name (from the decision) names its address in the file.
    let names = wire_tools::tshark(&[
        "-r",
        file.to_str().unwrap(),
        "-N",
        "n",
        "-T",
        "fields",
        "-e",
        "ip.src_host",
        "-Y",
        "sip.Method",
    ]);
    assert_eq!(names.trim(), "vcse.steven.lab");
    srv.stop().await;
}

#[tokio::test]
async fn bad_requests_get_answers_that_say_why() {
    let srv = start(UiLimits::default()).await;
    // A dialog known only from a decision: ladder yes, pcapng no.
    srv.hub.publish(UiEvent::Decision(DecisionView {
        time: time::OffsetDateTime::now_utc(),
        conn: None,
        remote: PEER.into(),
        peer_cert: None,
        method: Some("OPTIONS".into()),
        call_id: Some("d1".into()),
        domain: None,
        verdict: Verdict::Accept,
        steps: vec![],
        response: Some(ResponseView {
            status: 200,
            reason: None,
        }),
        ms_diagnostics: None,
        ms_diagnostics_code: None,
        result_code: None,
        log_data: vec![],
        record: None,
        explanation: None,
        fix: None,
    }));
    let (status, _, body) = get(srv.addr, "/api/dialog.pcapng?call_id=d1").await;
    assert_eq!(status, 404);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "no SIP message of Call-ID \"d1\" in the web view's history: only its decisions (a pcapng needs the messages)\n"
    );
    let (status, _, body) = get(srv.addr, "/api/dialog.txt?call_id=nope").await;
    assert_eq!(status, 404);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "no event of Call-ID \"nope\" in the web view's history (it keeps the last 5000 events)\n"
    );
    let long = "x".repeat(1025);
    let (status, _, body) = get(srv.addr, &format!("/api/dialog.json?call_id={long}")).await;
    assert_eq!(status, 400);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "call_id must be 1 to 1024 bytes\n"
    );
    let (status, _, _) = get(srv.addr, "/api/dialog.txt").await;
    assert_eq!(status, 400);
    let (status, _, body) = get(srv.addr, "/nothing-here").await;
    assert_eq!(status, 404);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "not found: the web view is at /\n"
    );
    let (status, head, _) = http(
        srv.addr,
        "POST /events HTTP/1.1\r\nHost: ui\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    )
    .await;
    assert_eq!(status, 405, "{head}");
    // A request head beyond 16 KiB is refused without being read to its end.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: ui\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let (status, _, _) = http(srv.addr, &big).await;
    assert_eq!(status, 431);
    srv.stop().await;
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary_and_load_nothing_from_elsewhere() {
    let srv = start(UiLimits::default()).await;
    for (path, ctype) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
    ] {
        let (status, head, body) = get(srv.addr, path).await;
        assert_eq!(status, 200, "{path}");
        let head = head.to_ascii_lowercase();
        assert!(head.contains(&format!("content-type: {ctype}")), "{head}");
        assert!(
            head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
            "{head}"
        );
        let body = String::from_utf8(body).unwrap();
        for outside in ["http://", "https://", "src=\"//", "href=\"//", "@import"] {
            assert!(
                !body.contains(outside),
                "{path} refers elsewhere: {outside}"
            );
        }
    }
    let (_, _, page) = get(srv.addr, "/").await;
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("<script src=\"/app.js\" defer></script>"),
        "{page}"
    );
    let (status, _, info) = get(srv.addr, "/api/info").await;
    assert_eq!(status, 200);
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["edge"], "sip.skype.lab");
    srv.stop().await;
}

#[test]
fn serve_with_the_web_view_address_in_use_stops_and_says_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgesim"))
        .args([
            "serve",
            "--serve-dns",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--ui")
        .arg(addr.to_string())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot serve the web view on {addr}: the address is already in use — pick another --ui"
        )),
        "{err}"
    );
}
