//! The testkit itself, over real TLS on loopback and (in served mode) real DNS queries to the embedded server:
//! start and stop on port 0, both DNS modes, a refused and an accepted call with their typed events, the
//! one-call requests, expectations met, unmet (the drop panics with the exact message) and checked explicitly,
//! and two Edges in one process.
#![allow(clippy::unwrap_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};

use edgesim::testkit::{
    DecisionMatch, DnsMode, FaultKind, LabCa, LeafSpec, TestEdge, TestkitError, TlsIdentity,
    UserAction, VerdictKind,
};

const FROM: &str = "2000@acano.steven.lab";
const GOOD_CERT: &[&str] = &["vcse.acano.steven.lab"];

/// The seed lab: `stejanss` answers, `busy` is busy; acano.steven.lab's SRV points at vcse.acano.steven.lab.
async fn seed_lab(mode: DnsMode) -> TestEdge {
    TestEdge::builder()
        .user("stejanss", UserAction::Answer)
        .user("busy", UserAction::Busy)
        .srv("acano.steven.lab", "vcse.acano.steven.lab")
        .dns(mode)
        .start()
        .await
        .unwrap()
}

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("it did not panic");
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p
            .downcast::<&str>()
            .map(|s| (*s).to_owned())
            .unwrap_or_default(),
    }
}

#[tokio::test]
async fn starts_on_loopback_port_0_and_stops() {
    let edge = seed_lab(DnsMode::Served).await;
    let addr = edge.addr();
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), 0);
    let dns = edge.dns_addr().unwrap();
    assert!(dns.ip().is_loopback() && dns.port() != 0, "{dns}");
    assert_eq!(edge.fqdn(), "sip.skype.lab");
    assert_eq!(edge.domain(), "skype.lab");
    assert!(
        edge.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"),
        "{}",
        edge.ca_pem()
    );
    edge.stop().await.unwrap();
    // Stopped means closed: nothing listens there any more.
    let again = tokio::net::TcpStream::connect(addr).await;
    assert_eq!(
        again.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
}

#[tokio::test]
async fn dropping_the_edge_stops_it() {
    let edge = seed_lab(DnsMode::Served).await;
    let addr = edge.addr();
    let token = edge.shutdown_token().clone();
    drop(edge);
    assert!(token.is_cancelled());
    // `serve` returns once cancelled; the listener closes with it.
    let mut tries = 0;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        tries += 1;
        assert!(tries < 1000, "the Edge still accepts after its drop");
        tokio::task::yield_now().await;
    }
}

/// A good call and a refused one in the given DNS mode, with their typed events and records.
async fn good_and_refused_calls(mode: DnsMode) {
    let edge = seed_lab(mode).await;
    edge.expect_decision(
        DecisionMatch::method("INVITE").verdict(VerdictKind::Accept),
        1,
    );
    edge.expect_decision(
        DecisionMatch::method("INVITE")
            .status(504)
            .diagnostics_code(1010),
        1,
    );
    edge.expect_record("SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH", 1);

    let mut good = edge.peer(FROM, GOOD_CERT).await.unwrap();
    let answer = good.invite("stejanss").await.unwrap();
    assert_eq!(answer.status_code(), Some(200));
    let accepted = edge.decisions();
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0].domain.as_deref(), Some("acano.steven.lab"));
    assert_eq!(
        accepted[0].peer_cert.as_deref(),
        Some("vcse.acano.steven.lab")
    );
    assert_eq!(accepted[0].ms_diagnostics_code, None);

    // Rule 2: the certificate does not name the SRV target.
    let mut wrong = edge.peer(FROM, &["vcse.steven.lab"]).await.unwrap();
    let refused = wrong.invite("stejanss").await.unwrap();
    assert_eq!(refused.status_code(), Some(504));
    let diag = String::from_utf8_lossy(&refused.header_named("ms-diagnostics").unwrap().value())
        .into_owned();
    assert!(
        diag.starts_with(
            "1010;reason=\"Certificate trust with another server could not be established\""
        ),
        "{diag}"
    );
    let all = edge.decisions();
    assert_eq!(all.len(), 2, "{all:?}");
    let e = &all[1];
    assert_eq!(e.verdict, VerdictKind::Reject);
    assert_eq!(e.status, Some(504));
    assert_eq!(
        e.result_code.as_deref(),
        Some("0xc3e93d67 SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH")
    );
    assert_eq!(edge.records().len(), 1);
    // Served: the Edge's resolver asked the embedded server on loopback.
    match mode {
        DnsMode::Served => assert!(edge.dns_queries().unwrap() >= 1, "{:?}", edge.dns_queries()),
        DnsMode::Static => assert_eq!(edge.dns_queries(), None),
    }
    edge.stop().await.unwrap();
}

#[tokio::test]
async fn served_dns_a_good_and_a_refused_call() {
    good_and_refused_calls(DnsMode::Served).await;
}

#[tokio::test]
async fn static_dns_a_good_and_a_refused_call() {
    good_and_refused_calls(DnsMode::Static).await;
}

#[tokio::test]
async fn static_dns_has_no_server_and_its_faults_reach_the_rules() {
    let edge = TestEdge::builder()
        .user("stejanss", UserAction::Answer)
        .dns_fault("servfail.lab", FaultKind::Servfail)
        .dns(DnsMode::Static)
        .start()
        .await
        .unwrap();
    assert_eq!(edge.dns_addr(), None);
    let mut peer = edge
        .peer("2000@servfail.lab", &["vcse.servfail.lab"])
        .await
        .unwrap();
    let answer = peer.options("stejanss").await.unwrap();
    assert_eq!(answer.status_code(), Some(504));
    let e = edge.decisions().pop().unwrap();
    assert_eq!(e.ms_diagnostics_code, Some(1008));
    assert_eq!(
        e.result_code.as_deref(),
        Some("0xc3e93e01 SIPPROXY_E_EPROUTING_MSG_DOMAIN_NO_SRV")
    );
    assert_eq!(
        e.log_data,
        [
            ("domain".into(), "servfail.lab".into()),
            ("reason".into(), "SERVFAIL".into())
        ]
    );
    // The explanation names where the answer came from.
    let why = e.explanation.unwrap();
    assert!(
        why.starts_with(
            "The SRV lookup of _sipfederationtls._tcp.servfail.lab failed: the DNS server StaticLookup (in-memory records) answered SERVFAIL."
        ),
        "{why}"
    );
}

#[tokio::test]
async fn every_one_call_request_returns_the_answer_its_event_records() {
    let edge = seed_lab(DnsMode::Served).await;
    let mut peer = edge.peer(FROM, GOOD_CERT).await.unwrap();
    let answers = [
        ("INVITE", peer.invite("busy").await.unwrap()),
        ("OPTIONS", peer.options("stejanss").await.unwrap()),
        ("SUBSCRIBE", peer.subscribe("stejanss").await.unwrap()),
        ("MESSAGE", peer.message("stejanss", "hello").await.unwrap()),
    ];
    assert_eq!(answers[0].1.status_code(), Some(486));
    assert_eq!(answers[1].1.status_code(), Some(200));
    let events = edge.decisions();
    assert_eq!(events.len(), 4, "{events:?}");
    for ((method, answer), event) in answers.iter().zip(&events) {
        assert_eq!(event.method.as_deref(), Some(*method));
        // What the peer read is what the Edge says it sent (INVITE: the first answer, here final).
        assert_eq!(answer.status_code(), event.status, "{method}");
        let cseq =
            String::from_utf8_lossy(&answer.header_named("CSeq").unwrap().value()).into_owned();
        assert!(cseq.ends_with(method), "{cseq}");
    }
    edge.expect_decision(DecisionMatch::any(), 4);
    edge.expect_decision(DecisionMatch::any().verdict(VerdictKind::Reject), 0);
    edge.verify();
}

#[tokio::test]
async fn a_refused_handshake_is_an_error_and_a_typed_event() {
    let edge = seed_lab(DnsMode::Served).await;
    let stranger =
        LabCa::generate("someone else's CA", edgesim::testkit::KeyType::EcdsaP256).unwrap();
    let id = TlsIdentity::from(
        &stranger
            .issue(&LeafSpec::new("vcse.acano.steven.lab"))
            .unwrap(),
    );
    let result = match edge.peer_with(FROM, Some(&id)).await {
        Ok(mut p) => p.options("stejanss").await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(matches!(result, Err(TestkitError::Peer(_))), "{result:?}");
    let e = edge.decisions().pop().unwrap();
    assert_eq!(e.method, None);
    assert_eq!(e.verdict, VerdictKind::Reject);
    assert_eq!(e.status, None);
    // The issuer signs what the Edge trusts.
    let trusted = TlsIdentity::from(
        &edge
            .issuer()
            .issue(&LeafSpec::new("vcse.acano.steven.lab"))
            .unwrap(),
    );
    let mut p = edge.peer_with(FROM, Some(&trusted)).await.unwrap();
    assert_eq!(
        p.options("stejanss").await.unwrap().status_code(),
        Some(200)
    );
}

const UNMET: &str = "the TestEdge sip.skype.lab at ADDR did not meet 1 of its 2 expectations:\n  \
- a decision with method INVITE, status 504, ms-diagnostics 1009: expected exactly 1, got 0\n\
decisions seen:\n  OPTIONS → 200 accept";

#[tokio::test]
async fn an_unmet_expectation_panics_on_drop_with_what_was_seen() {
    let edge = seed_lab(DnsMode::Served).await;
    let addr = edge.addr();
    edge.expect_decision(DecisionMatch::method("OPTIONS").status(200), 1);
    edge.expect_decision(
        DecisionMatch::method("INVITE")
            .status(504)
            .diagnostics_code(1009),
        1,
    );
    let mut p = edge.peer(FROM, GOOD_CERT).await.unwrap();
    p.options("stejanss").await.unwrap();
    let expected = UNMET.replace("ADDR", &addr.to_string());
    // check() reports without panicking …
    match edge.check() {
        Err(TestkitError::Unmet(m)) => assert_eq!(m, expected),
        other => panic!("{other:?}"),
    }
    // … and the drop panics with the same words.
    assert_eq!(panic_message(move || drop(edge)), expected);
}

#[tokio::test]
#[should_panic(expected = "did not meet 1 of its 1 expectations:\n  \
- an Edge log record containing \"SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH\": expected at least 1, got 0\n\
decisions seen:\n  (none)")]
async fn an_unmet_record_expectation_fails_the_test() {
    let edge = seed_lab(DnsMode::Static).await;
    edge.expect_record("SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH", 1..);
}

#[tokio::test]
async fn a_test_that_already_panics_keeps_its_own_message() {
    let edge = seed_lab(DnsMode::Served).await;
    edge.expect_decision(DecisionMatch::any(), 1);
    let message = panic_message(move || {
        let _edge = edge;
        panic!("the test's own failure");
    });
    assert_eq!(message, "the test's own failure");
}

#[tokio::test]
async fn stop_reports_unmet_expectations_as_an_error_and_the_drop_stays_quiet() {
    let edge = seed_lab(DnsMode::Served).await;
    edge.expect_decision(DecisionMatch::any(), 1..=2);
    let err = edge.stop().await.unwrap_err().to_string();
    assert!(
        err.ends_with(
            "did not meet 1 of its 1 expectations:\n  - any decision: expected between 1 and 2, got 0\n\
             decisions seen:\n  (none)"
        ),
        "{err}"
    );
    // A cleared expectation is not checked at drop.
    let edge = seed_lab(DnsMode::Served).await;
    edge.expect_decision(DecisionMatch::any(), 1);
    assert!(edge.check().is_err());
    edge.clear_expectations();
    drop(edge);
}

#[tokio::test]
async fn two_edges_in_one_process_keep_their_own_decisions() {
    let a = seed_lab(DnsMode::Served).await;
    let b = TestEdge::builder()
        .domain("contoso.lab")
        .fqdn("sip.contoso.lab")
        .user("alice", UserAction::Decline)
        .srv("acano.steven.lab", "vcse.acano.steven.lab")
        .start()
        .await
        .unwrap();
    assert_ne!(a.addr(), b.addr());
    assert_ne!(a.dns_addr(), b.dns_addr());
    assert_ne!(a.ca_pem(), b.ca_pem());
    let mut pa = a.peer(FROM, GOOD_CERT).await.unwrap();
    let mut pb = b.peer(FROM, GOOD_CERT).await.unwrap();
    assert_eq!(pb.invite("alice").await.unwrap().status_code(), Some(603));
    assert_eq!(pa.invite("busy").await.unwrap().status_code(), Some(486));
    assert_eq!(pb.options("alice").await.unwrap().status_code(), Some(200));
    a.expect_decision(DecisionMatch::any(), 1);
    b.expect_decision(
        DecisionMatch::method("INVITE").domain("acano.steven.lab"),
        1,
    );
    // A's peer certificate is not trusted by B: each Edge has its own CA.
    let from_a = a.peer_identity(GOOD_CERT).unwrap();
    let crossed = match b.peer_with(FROM, Some(&from_a)).await {
        Ok(mut p) => p.options("alice").await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(crossed.is_err());
    b.expect_decision(DecisionMatch::any().verdict(VerdictKind::Reject), 1);
    b.expect_decision(DecisionMatch::any(), 3);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
