//! Issue 11, the inbound Edge: each defect's behaviour over real mutual TLS and DNS on loopback.
//! Item numbers refer to the issue.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;

use edge_lab::*;
use edgesim::config::{ClientCertMode, UserAction};
use edgesim::diagnostics::{DecisionEvent, VerdictKind};
use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIGCODE: &[u8] = include_bytes!("fixtures/rfc4475/bigcode.dat");

async fn acano_lab(tweak: impl FnOnce(&mut edgesim::config::EdgeConfig)) -> Lab {
    lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], tweak).await
}

fn options(to: &str) -> ExpresswayRequest {
    ExpresswayRequest::new("OPTIONS", "sip:2000@acano.steven.lab", to)
}

fn request(method: &str, to: &str) -> ExpresswayRequest {
    ExpresswayRequest::new(method, "sip:2000@acano.steven.lab", to)
}

/// The marks of every Edge response: Server, the top Via's received / ms-received-port / ms-received-cid, a
/// To tag (RFC 3261 §8.2.6.2).
fn assert_edge_marks(r: &edgesim::sip::Message, port: u16) {
    assert_eq!(
        header(r, "Server").as_deref(),
        Some("RTC/6.0"),
        "{}",
        text(r.as_bytes())
    );
    let via = r.top_via().unwrap();
    assert_eq!(via.param("received"), Some(Some("127.0.0.1")));
    assert_eq!(
        via.param("ms-received-port"),
        Some(Some(port.to_string().as_str()))
    );
    assert!(via.param("ms-received-cid").flatten().is_some());
    assert!(r.to().unwrap().tag().is_some(), "{}", text(r.as_bytes()));
}

async fn next_event(rx: &mut tokio::sync::broadcast::Receiver<DecisionEvent>) -> DecisionEvent {
    Lab::event(rx).await
}

// ---- item 1: optional client certificate, none presented ----

#[tokio::test]
async fn no_client_certificate_is_explained_as_such() {
    let lab = acano_lab(|c| c.tls.client_cert = ClientCertMode::Optional).await;
    let mut events = lab.edge.subscribe();
    let mut peer = lab.peer_with(None).await;
    let port = peer.local_addr().port();
    let r = peer.request(&invite().build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    assert_eq!(
        header(&r, "ms-diagnostics").as_deref(),
        Some(
            "1010;reason=\"Certificate trust with another server could not be established\";ErrorType=\"The peer did not present a certificate\";tls-target=\"vcse.acano.steven.lab\";PeerServer=\"\";HRESULT=\"0x8009030E (SEC_E_NO_CREDENTIALS)\";source=\"sip.skype.lab\""
        )
    );
    let record = &lab.edge.log_records()[0];
    assert!(
        record.contains(
            "Result-Code: 0xc3e93e10 SIPPROXY_E_ROUTING_MSG_NO_PEER_CERT SIP-Start-Line: INVITE sip:stejanss@skype.lab SIP/2.0"
        ),
        "{record}"
    );
    assert!(
        record.ends_with(&format!(
            "Peer: 127.0.0.1:{port} Data: expectedfqdn=\"vcse.acano.steven.lab\";info=\"The peer did not present a TLS client certificate\" $$end_record"
        )),
        "{record}"
    );
    let ev = next_event(&mut events).await;
    assert_eq!(ev.peer_cert, None);
    assert_eq!(ev.status, Some(504));
    assert_eq!(
        ev.result_code.as_deref(),
        Some("0xc3e93e10 SIPPROXY_E_ROUTING_MSG_NO_PEER_CERT")
    );
    let x = ev.explanation.unwrap();
    assert!(
        x.starts_with("The peer presented no TLS client certificate, so the Edge cannot check that it is vcse.acano.steven.lab"),
        "{x}"
    );
    assert!(
        x.contains("tls.client_cert = \"optional\"") && x.contains("on the peer (Expressway-E)")
    );
    assert!(!x.contains("SAN extension and its CN"), "{x}");
    lab.stop().await;
}

// ---- item 26: the Edge answers only for its own domain ----

#[tokio::test]
async fn a_user_of_another_domain_is_not_answered_by_a_configured_user() {
    let lab = acano_lab(|_| {}).await;
    let mut events = lab.edge.subscribe();
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let r = peer
        .request(&request("INVITE", "sip:stejanss@evil.lab").build(), T)
        .await
        .unwrap();
    assert_eq!(r.status_code(), Some(404));
    assert_eq!(
        header(&r, "ms-diagnostics").as_deref(),
        Some("1005;reason=\"Cannot route to destination domain\";source=\"sip.skype.lab\"")
    );
    let ev = next_event(&mut events).await;
    assert_eq!((ev.verdict, ev.status), (VerdictKind::Reject, Some(404)));
    assert_eq!(
        ev.result_code.as_deref(),
        Some("0xc3e93e11 SIPPROXY_E_ROUTING_MSG_FOREIGN_DESTINATION")
    );
    assert!(
        ev.explanation
            .unwrap()
            .contains("this Edge answers only for skype.lab")
    );
    // MESSAGE is routed the same way; the Edge's own names still reach the user.
    let mut msg = request("MESSAGE", "sip:stejanss@evil.lab");
    msg.body = Some(bytes::Bytes::from_static(b"hi"));
    msg.content_type = Some("text/plain".into());
    assert_eq!(
        peer.request(&msg.build(), T).await.unwrap().status_code(),
        Some(404)
    );
    let r = peer
        .request(&request("INVITE", "sip:stejanss@sip.skype.lab").build(), T)
        .await
        .unwrap();
    assert_eq!(r.status_code(), Some(200));
    assert_eq!(
        peer.request(&options("sip:sip.skype.lab").build(), T)
            .await
            .unwrap()
            .status_code(),
        Some(200)
    );
    lab.stop().await;
}

#[tokio::test]
async fn without_users_the_host_is_checked_too() {
    let lab = acano_lab(|c| c.users.clear()).await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let r = peer
        .request(&request("INVITE", "sip:anyone@evil.lab").build(), T)
        .await
        .unwrap();
    assert_eq!(r.status_code(), Some(404));
    assert_eq!(diag_code(&r).as_deref(), Some("1005"));
    let r = peer
        .request(&request("INVITE", "sip:anyone@skype.lab").build(), T)
        .await
        .unwrap();
    assert_eq!(r.status_code(), Some(200));
    lab.stop().await;
}

// ---- item 27: the Edge's own error answers carry what every Edge response carries ----

#[tokio::test]
async fn error_answers_carry_server_via_marks_and_to_tag() {
    let lab = acano_lab(|c| c.limits.max_message_bytes = 8192).await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let port = peer.local_addr().port();
    // A bad CSeq: parsed, invalid.
    let bad_cseq = text(&invite().build()).replacen("CSeq: 1 INVITE", "CSeq: one INVITE", 1);
    let r = peer.request(bad_cseq.as_bytes(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(400));
    assert!(
        header(&r, "Warning")
            .unwrap()
            .contains("malformed CSeq header")
    );
    assert_edge_marks(&r, port);
    // Too many header lines: the message does not parse at all.
    let many = text(&options("sip:skype.lab").build()).replacen(
        "Max-Forwards: 70\r\n",
        &"X-Filler: 1\r\n".repeat(300),
        1,
    );
    let r = peer.request(many.as_bytes(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(400));
    assert!(
        header(&r, "Warning")
            .unwrap()
            .contains("too many header lines")
    );
    assert_edge_marks(&r, port);
    // A head over the limit: 513, then the Edge closes.
    let mut huge = text(&options("sip:skype.lab").build());
    huge.truncate(huge.find("\r\n\r\n").unwrap() + 2);
    huge.push_str(&format!("X-Big: {}\r\n", "a".repeat(10_000)));
    peer.send(huge.as_bytes()).await.unwrap();
    let r = peer.recv(T).await.unwrap().unwrap();
    assert_eq!(r.status_code(), Some(513));
    assert_edge_marks(&r, port);
    lab.stop().await;
}

// ---- item 28: responses from the peer are never answered ----

#[tokio::test]
async fn responses_from_the_peer_are_dropped_never_answered() {
    let lab = acano_lab(|_| {}).await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    // RFC 4475 bigcode, a malformed response, then a well-formed one matching no transaction: the next thing
    // the Edge sends is the answer to the OPTIONS after them.
    peer.send(BIGCODE).await.unwrap();
    peer.send(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKstray\r\nFrom: <sip:a@skype.lab>;tag=1\r\nTo: <sip:b@acano.steven.lab>;tag=2\r\nCall-ID: stray\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let req = options("sip:skype.lab");
    peer.send(&req.build()).await.unwrap();
    let r = peer.recv(T).await.unwrap().unwrap();
    assert_eq!(r.status_code(), Some(200));
    assert_eq!(text(&r.call_id().unwrap()), req.call_id);
    lab.stop().await;
}

// ---- item 31: Require, INVITE retransmissions, Max-Forwards ----

#[tokio::test]
async fn unsupported_require_gets_420_with_unsupported() {
    let lab = acano_lab(|_| {}).await;
    let mut events = lab.edge.subscribe();
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let mut req = invite();
    req.extra_headers
        .push(("Require".into(), "timer, 100rel".into()));
    let r = peer.request(&req.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(420));
    assert_eq!(header(&r, "Unsupported").as_deref(), Some("100rel"));
    let ev = next_event(&mut events).await;
    assert_eq!(ev.status, Some(420));
    assert!(
        ev.explanation
            .unwrap()
            .contains("requires 100rel (Require)")
    );
    // An extension the Edge supports is fine.
    let mut req = invite();
    req.extra_headers.push(("Require".into(), "timer".into()));
    assert_eq!(
        peer.request(&req.build(), T).await.unwrap().status_code(),
        Some(200)
    );
    lab.stop().await;
}

#[tokio::test]
async fn invite_retransmission_gets_the_same_response_and_no_new_decision() {
    let lab = acano_lab(|_| {}).await;
    let mut events = lab.edge.subscribe();
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let req = request("INVITE", "sip:ringer@skype.lab");
    let bytes = req.build();
    peer.send(&bytes).await.unwrap();
    let first = peer.recv(T).await.unwrap().unwrap();
    assert_eq!(first.status_code(), Some(180));
    peer.send(&bytes).await.unwrap();
    let again = peer.recv(T).await.unwrap().unwrap();
    assert_eq!(
        text(again.as_bytes()),
        text(first.as_bytes()),
        "same 180, same To tag"
    );
    // A rejected INVITE retransmitted: the same 504, one record.
    let lab_records = lab.edge.log_records().len();
    let other = ExpresswayRequest::new("INVITE", "sip:2000@nosrv.lab", "sip:stejanss@skype.lab");
    let b2 = other.build();
    let r1 = peer.request(&b2, T).await.unwrap();
    let r2 = peer.request(&b2, T).await.unwrap();
    assert_eq!(r1.status_code(), Some(504));
    assert_eq!(text(r1.as_bytes()), text(r2.as_bytes()));
    assert_eq!(lab.edge.log_records().len(), lab_records + 1);
    let ev = next_event(&mut events).await;
    assert_eq!(
        (ev.call_id.as_deref(), ev.status),
        (Some(req.call_id.as_str()), Some(180))
    );
    let ev = next_event(&mut events).await;
    assert_eq!(ev.call_id.as_deref(), Some(other.call_id.as_str()));
    // The call still ends normally.
    let cancel = req.follow_up("CANCEL", None);
    assert_eq!(
        peer.request(&cancel.build(), T)
            .await
            .unwrap()
            .status_code(),
        Some(200)
    );
    let ev = next_event(&mut events).await;
    assert_eq!(
        ev.method.as_deref(),
        Some("CANCEL"),
        "no decision for the retransmissions"
    );
    lab.stop().await;
}

#[tokio::test]
async fn max_forwards_zero_is_483_unless_the_edge_is_the_recipient() {
    let lab = acano_lab(|_| {}).await;
    let mut events = lab.edge.subscribe();
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let zero =
        |r: ExpresswayRequest| text(&r.build()).replacen("Max-Forwards: 70", "Max-Forwards: 0", 1);
    let r = peer.request(zero(invite()).as_bytes(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(483));
    assert_eq!(r.reason(), Some(&b"Too Many Hops"[..]));
    let ev = next_event(&mut events).await;
    assert_eq!((ev.verdict, ev.status), (VerdictKind::Reject, Some(483)));
    assert!(ev.explanation.unwrap().contains("Max-Forwards: 0"));
    let r = peer
        .request(zero(options("sip:stejanss@skype.lab")).as_bytes(), T)
        .await
        .unwrap();
    assert_eq!(
        r.status_code(),
        Some(200),
        "OPTIONS: the Edge answers itself"
    );
    let mut msg = request("MESSAGE", "sip:skype.lab");
    msg.body = Some(bytes::Bytes::from_static(b"hi"));
    msg.content_type = Some("text/plain".into());
    let r = peer.request(zero(msg).as_bytes(), T).await.unwrap();
    // For the Edge itself: answered as the final recipient (404: a MESSAGE needs a user).
    assert_eq!(r.status_code(), Some(404));
    lab.stop().await;
}

// ---- item 33: TLS 1.0 / 1.1 clients ----

/// A minimal ClientHello of a client that speaks `version` at most (no extensions, as old stacks send).
fn legacy_client_hello(version: u16) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend([0x42u8; 32]);
    body.push(0);
    body.extend([0, 4, 0x00, 0x2f, 0x00, 0x35]);
    body.extend([1, 0]);
    let mut hs = vec![1, 0];
    hs.extend((body.len() as u16).to_be_bytes());
    hs.extend(body);
    let mut rec = vec![22, 3, 1];
    rec.extend((hs.len() as u16).to_be_bytes());
    rec.extend(hs);
    rec
}

#[tokio::test]
async fn tls10_and_tls11_clients_are_told_which_versions_the_edge_accepts() {
    let lab = acano_lab(|_| {}).await;
    let mut events = lab.edge.subscribe();
    for (version, name) in [(0x0301u16, "TLS 1.0"), (0x0302, "TLS 1.1")] {
        let mut tcp = tokio::net::TcpStream::connect(lab.addr).await.unwrap();
        tcp.write_all(&legacy_client_hello(version)).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        let _ = tokio::time::timeout(T, async {
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        // rustls refuses the hello with a fatal handshake_failure alert (40); the record says why.
        assert_eq!(got.first(), Some(&21), "a TLS alert record: {got:?}");
        assert_eq!(
            got.get(5..7),
            Some(&[2u8, 40][..]),
            "fatal handshake_failure: {got:?}"
        );
        let ev = next_event(&mut events).await;
        assert_eq!((ev.verdict, ev.status), (VerdictKind::Reject, None));
        assert_eq!((ev.method, ev.call_id), (None, None));
        assert_eq!(
            ev.result_code.as_deref(),
            Some("0xc3e93e12 SIPPROXY_E_TLS_PROTOCOL_VERSION_REFUSED")
        );
        assert_eq!(
            ev.log_data,
            vec![
                ("reason".to_string(), "TLS version".to_string()),
                ("offered".to_string(), format!("{name} at most")),
                // The default profile (sfb2015): TLS 1.2 only.
                ("accepted".to_string(), "TLS 1.2".to_string()),
            ]
        );
        let x = ev.explanation.unwrap();
        assert!(
            x.starts_with(&format!("The peer offered only {name} at most in its TLS ClientHello, and this Edge accepts TLS 1.2 (tls.versions)")),
            "{x}"
        );
    }
    let records = lab.edge.log_records();
    assert_eq!(records.len(), 2);
    assert!(
        records[1].contains("Data: reason=\"TLS version\";offered=\"TLS 1.1 at most\""),
        "{}",
        records[1]
    );
    lab.stop().await;
}

// ---- item 15: events carry the status sent and the schema ----

#[tokio::test]
async fn accepted_requests_carry_the_status_sent() {
    let lab = acano_lab(|_| {}).await;
    let mut events = lab.edge.subscribe();
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let cases: Vec<(ExpresswayRequest, u16)> = vec![
        (request("INVITE", "sip:stejanss@skype.lab"), 180),
        (request("INVITE", "sip:busy@skype.lab"), 486),
        (request("INVITE", "sip:nobody@skype.lab"), 404),
        (options("sip:skype.lab"), 200),
        // Presence (issue 16): a SUBSCRIBE without Event reaches the presence core, which answers 400.
        (request("SUBSCRIBE", "sip:stejanss@skype.lab"), 400),
    ];
    for (req, status) in &cases {
        peer.request(&req.build(), T).await.unwrap();
        let ev = next_event(&mut events).await;
        assert_eq!(ev.schema, 1);
        assert_eq!(
            (ev.verdict, ev.status, ev.method.as_deref()),
            (
                VerdictKind::Accept,
                Some(*status),
                Some(req.method.as_str())
            )
        );
        if *status == 404 {
            assert!(
                ev.explanation
                    .unwrap()
                    .contains("is not one of the Edge's users")
            );
        }
    }
    // BENOTIFY is never answered: no status.
    let benotify = request("BENOTIFY", "sip:stejanss@skype.lab");
    peer.send(&benotify.build()).await.unwrap();
    let ev = next_event(&mut events).await;
    assert_eq!((ev.method.as_deref(), ev.status), (Some("BENOTIFY"), None));
    // The events file says the same, one line per decision, with the schema version (once the background writer
    // has flushed).
    lab.edge.flush();
    let file = std::fs::read_to_string(lab.dir.path().join("events.jsonl")).unwrap();
    let lines: Vec<&str> = file.lines().collect();
    assert_eq!(lines.len(), cases.len() + 1);
    assert!(lines[0].starts_with("{\"schema\":1,"), "{}", lines[0]);
    assert!(
        lines[0].contains("\"verdict\":\"accept\",\"status\":180,"),
        "{}",
        lines[0]
    );
    assert!(lines[5].contains("\"status\":null"), "{}", lines[5]);
    lab.stop().await;
}

// ---- item 12: 503s are decisions; what counts toward the rate ----

#[tokio::test]
async fn rate_limit_503_is_a_decision_and_ack_bye_of_a_held_call_do_not_count() {
    // The window is one second: a run that took longer than that (a stalled machine) proves nothing, so it is
    // run again on a fresh connection; the verdict is taken from the first run that fit in the window.
    let lab = acano_lab(|c| {
        c.limits.max_requests_per_sec = 3;
        c.users.push(user("quick", UserAction::Answer));
        c.users.last_mut().unwrap().ring_ms = 0;
    })
    .await;
    let mut events = lab.edge.subscribe();
    for attempt in 0..3 {
        let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
        let start = std::time::Instant::now();
        let inv = request("INVITE", "sip:quick@skype.lab");
        let ok = peer.request(&inv.build(), T).await.unwrap();
        assert_eq!(ok.status_code(), Some(200));
        let tag = ok.to().unwrap().tag().unwrap().to_string();
        peer.send(&inv.follow_up("ACK", Some(&tag)).build())
            .await
            .unwrap();
        let bye = peer
            .request(&inv.follow_up("BYE", Some(&tag)).build(), T)
            .await
            .unwrap();
        let mut codes = vec![bye.status_code().unwrap()];
        for _ in 0..3 {
            let r = peer
                .request(&options("sip:skype.lab").build(), T)
                .await
                .unwrap();
            codes.push(r.status_code().unwrap());
        }
        let limited = peer
            .request(&options("sip:skype.lab").build(), T)
            .await
            .unwrap();
        if start.elapsed() >= std::time::Duration::from_millis(900) && attempt < 2 {
            while events.try_recv().is_ok() {}
            continue;
        }
        // INVITE + 2 OPTIONS fill the window of 3; ACK and the BYE of the held call did not count.
        assert_eq!(codes, vec![200, 200, 200, 503]);
        assert_eq!(limited.status_code(), Some(503));
        assert_eq!(header(&limited, "Retry-After").as_deref(), Some("1"));
        let mut limit = None;
        while let Ok(ev) = events.try_recv() {
            if ev.verdict == VerdictKind::Limit {
                limit.get_or_insert(ev);
            }
        }
        let ev = limit.expect("a limit decision");
        assert_eq!(ev.status, Some(503));
        let x = ev.explanation.unwrap();
        assert!(
            x.contains("limits.max_requests_per_sec = 3") && x.contains("Retry-After: 1"),
            "{x}"
        );
        break;
    }
    lab.stop().await;
}

#[tokio::test]
async fn calls_per_connection_cap_is_a_decision() {
    let lab = acano_lab(|c| {
        c.limits.max_requests_per_sec = 1_000_000;
        c.limits.idle_timeout_ms = 30_000;
    })
    .await;
    let mut events = lab.edge.subscribe();
    let id = lab.cert(edgesim::pki::LeafSpec::new("vcse.acano.steven.lab"));
    let mut peer = PeerClient::connect(lab.addr, "sip.skype.lab", Some(&id), T)
        .await
        .unwrap();
    // 1024 ringing calls fill the connection; the next INVITE is refused with 503.
    let mut all = Vec::new();
    for _ in 0..1025 {
        all.extend_from_slice(&request("INVITE", "sip:ringer@skype.lab").build());
    }
    peer.send(&all).await.unwrap();
    let mut last = None;
    for _ in 0..1025 {
        last = Some(peer.recv(T).await.unwrap().unwrap());
    }
    let last = last.unwrap();
    assert_eq!(last.status_code(), Some(503));
    assert_eq!(header(&last, "Retry-After").as_deref(), Some("5"));
    let ev = loop {
        match tokio::time::timeout(T, events.recv()).await.unwrap() {
            Ok(ev) if ev.verdict == VerdictKind::Limit => break ev,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(ev.status, Some(503));
    assert!(ev.explanation.unwrap().contains("already holds 1024 calls"));
    lab.stop().await;
}
