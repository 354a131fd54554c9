//! An Edge pool from the library (issue 17): members on 127.0.0.2, 127.0.0.3, 127.0.0.4 serving one Edge, the
//! embedded DNS publishing them (SRV priorities, or one name with several A records), each fault mode met over
//! real TCP and TLS, switched at run time with `Pool::set_fault`; the emulated Expressway failing over by SRV
//! priority through the embedded DNS; and `call` trying the next address of one target.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use edgesim::diagnostics::{DecisionEvent, VerdictKind};
use edgesim::edge::pool::{FaultMode, PoolError};
use edgesim::lab::peer::client::{ExpresswayRequest, PeerError, request_with_srv_failover};
use edgesim::outbound::{CallRequest, call};
use tokio::io::AsyncReadExt;

#[path = "common/pool_lab.rs"]
mod pool_lab;
use pool_lab::*;

fn options() -> ExpresswayRequest {
    ExpresswayRequest::new("OPTIONS", "sip:vcse@steven.lab", "sip:stejanss@skype.lab")
}

fn header(m: &edgesim::sip::Message, name: &str) -> Option<String> {
    m.header_named(name)
        .map(|h| String::from_utf8_lossy(&h.value()).into_owned())
}

/// The next event that satisfies `pick` (others are skipped).
async fn event_where(
    rx: &mut tokio::sync::broadcast::Receiver<DecisionEvent>,
    pick: impl Fn(&DecisionEvent) -> bool,
) -> DecisionEvent {
    loop {
        let e = tokio::time::timeout(T, rx.recv()).await.unwrap().unwrap();
        if pick(&e) {
            return e;
        }
    }
}

#[tokio::test]
async fn each_fault_mode_is_met_over_real_tls_and_switched_with_the_api() {
    let lab = PoolLab::start(Layout::SrvPriorities, 2).await;
    let mut events = lab.edge.subscribe();
    let member = lab.members[0].to_string();

    // accept: the Edge itself.
    let mut c = lab.connect(0, T).await.unwrap();
    let r = c.request(&options().build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(200));

    // A switch closes the member's open connections and is a decision event.
    lab.set(0, FaultMode::Unavailable);
    assert!(
        matches!(
            c.recv(T).await,
            Ok(None) | Err(PeerError::Closed | PeerError::Reset)
        ),
        "the open connection was not closed by the switch"
    );
    let switch = event_where(&mut events, |e| e.method.is_none()).await;
    assert_eq!(switch.remote, member);
    assert_eq!(switch.verdict, VerdictKind::Reject);
    assert_eq!(
        switch.log_data,
        vec![
            ("member".to_owned(), member.clone()),
            ("fault".to_owned(), "503".to_owned()),
            ("previous".to_owned(), "accept".to_owned()),
            ("via".to_owned(), "api".to_owned()),
        ]
    );
    assert_eq!(
        switch.explanation.as_deref(),
        Some(
            format!("Edge pool member {member} (sip1.skype.lab) switched from accept to 503 (via api): new connections are TLS completed, every request answered 503 Service Unavailable with Retry-After and ms-diagnostics 1090; its open connections were closed.")
                .as_str()
        )
    );

    // 503: TLS completes, every request is answered 503 with Retry-After and 1090, each a decision event.
    let mut c = lab.connect(0, T).await.unwrap();
    for method in ["OPTIONS", "INVITE", "MESSAGE"] {
        let req = ExpresswayRequest::new(method, "sip:vcse@steven.lab", "sip:stejanss@skype.lab");
        let r = c.request(&req.build(), T).await.unwrap();
        assert_eq!(r.status_code(), Some(503), "{method}");
        assert_eq!(header(&r, "Retry-After").as_deref(), Some("30"));
        assert_eq!(
            header(&r, "ms-diagnostics"),
            Some(format!(
                "1090;reason=\"Edge pool member is out of service\";member=\"{member}\";source=\"sip.skype.lab\""
            ))
        );
        assert!(
            header(&r, "Server").is_some(),
            "the Edge's marks are on the 503"
        );
        let e = event_where(&mut events, |e| e.method.as_deref() == Some(method)).await;
        assert_eq!((e.status, e.verdict), (Some(503), VerdictKind::Limit));
        assert_eq!(e.ms_diagnostics_code, Some(1090));
        if method == "INVITE" {
            let ack = req.follow_up(
                "ACK",
                header(&r, "To")
                    .and_then(|t| t.split_once("tag=").map(|(_, tag)| tag.to_owned()))
                    .as_deref(),
            );
            c.send(&ack.build()).await.unwrap();
        }
    }
    // What does not parse or validate gets its error answer, and the connection goes on.
    c.send(b"OPTIONS sip:stejanss@skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bKbad\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let bad = c.final_response(T).await.unwrap();
    assert_eq!(bad.status_code(), Some(400));
    let r = c.request(&options().build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(503));
    c.close().await;
    // The other member is not touched.
    let mut other = lab.connect(1, T).await.unwrap();
    let r = other.request(&options().build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(200));
    other.close().await;

    // refuse-tls: TCP accepted, the handshake refused with an alert.
    lab.set(0, FaultMode::RefuseTls);
    match lab.connect(0, T).await {
        Err(PeerError::Handshake { alert }) => {
            assert_eq!(alert, "received fatal alert: HandshakeFailure")
        }
        other => panic!("refuse-tls: {other:?}"),
    }

    // reset: TCP accepted, then RST.
    lab.set(0, FaultMode::Reset);
    match lab.connect(0, T).await {
        Err(PeerError::Reset) => {}
        other => panic!("reset: {other:?}"),
    }
    // Plain TCP sees the RST too: on the first read, or already on connect when it is that quick.
    let reset = match tokio::net::TcpStream::connect(lab.members[0]).await {
        Ok(mut tcp) => {
            let mut b = [0u8; 16];
            tokio::time::timeout(T, tcp.read(&mut b))
                .await
                .unwrap()
                .map(|_| ())
        }
        Err(e) => Err(e),
    };
    assert_eq!(
        reset.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );

    // silent: TCP accepted, nothing ever answered; the member lets go after limits.handshake_timeout_ms.
    lab.set(0, FaultMode::Silent);
    match lab.connect(0, SILENT_WAIT).await {
        Err(PeerError::Timeout(..)) => {}
        other => panic!("silent: {other:?}"),
    }
    let mut tcp = tokio::net::TcpStream::connect(lab.members[0])
        .await
        .unwrap();
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut sink)).await;
    assert!(
        matches!(closed, Ok(Ok(0))),
        "a silent member must close after its bound and send nothing: {closed:?} {sink:?}"
    );

    // Back to accept.
    lab.set(0, FaultMode::Accept);
    let mut c = lab.connect(0, T).await.unwrap();
    let r = c.request(&options().build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(200));
    c.close().await;

    // The API names members by ip:port or a unique ip, and says which exist.
    assert_eq!(lab.pool.fault("127.0.0.3"), Ok(FaultMode::Accept));
    assert_eq!(
        lab.pool.set_fault(&member, FaultMode::Accept),
        Ok(None),
        "setting the mode a member has is no change"
    );
    let members = format!("{}, {}", lab.members[0], lab.members[1]);
    assert_eq!(
        lab.pool.set_fault("127.0.0.9", FaultMode::Reset),
        Err(PoolError::UnknownMember {
            given: "127.0.0.9".into(),
            members: members.clone(),
        })
    );
    assert_eq!(
        PoolError::UnknownMember {
            given: "127.0.0.9".into(),
            members: members.clone()
        }
        .to_string(),
        format!(
            "`127.0.0.9` is not a member of the pool (members: {members}); name a member by its ip:port, or by its ip when only one member has it"
        )
    );
    lab.stop().await;
}

#[tokio::test]
async fn the_expressway_fails_over_by_srv_priority_through_the_embedded_dns() {
    let lab = PoolLab::start(Layout::SrvPriorities, 3).await;
    let lookup = lab.dns.lookup(300, 0).unwrap();
    let id = lab.expressway();
    let req = options();
    let walk =
        |_: ()| request_with_srv_failover(&lookup, "skype.lab", Some(&id), &req, SILENT_WAIT);

    // All up: the lowest priority answers, nothing else is tried.
    let f = walk(()).await.unwrap();
    let tried: Vec<(String, Option<u16>)> = f
        .attempts
        .iter()
        .map(|a| (a.target.clone(), a.status))
        .collect();
    assert_eq!(tried, vec![("sip1.skype.lab".to_owned(), Some(200))]);
    assert_eq!(f.attempts[0].addr, lab.members[0]);

    for mode in [
        FaultMode::RefuseTls,
        FaultMode::Reset,
        FaultMode::Silent,
        FaultMode::Unavailable,
    ] {
        lab.set(0, mode);
        let f = walk(()).await.unwrap();
        let (conn, answer) = f.answered.expect("the second priority answers");
        assert_eq!(answer.status_code(), Some(200), "{mode}");
        assert_eq!(conn.peer_addr(), lab.members[1], "{mode}");
        conn.close().await;
        let tried: Vec<&str> = f.attempts.iter().map(|a| a.target.as_str()).collect();
        assert_eq!(tried, vec!["sip1.skype.lab", "sip2.skype.lab"], "{mode}");
        let first = &f.attempts[0];
        let expected = match mode {
            FaultMode::RefuseTls => "TLS handshake refused: received fatal alert: HandshakeFailure",
            FaultMode::Reset => "connection reset by the Edge",
            FaultMode::Silent => "timed out after 400ms waiting for TCP connect and TLS handshake",
            _ => "503 Service Unavailable",
        };
        assert_eq!(first.outcome, expected, "{mode}");
    }

    // The first two down: the third priority answers; all down: nothing does, and all three were tried.
    lab.set(1, FaultMode::Reset);
    let f = walk(()).await.unwrap();
    assert_eq!(
        f.answered.as_ref().map(|(c, _)| c.peer_addr()),
        Some(lab.members[2])
    );
    lab.set(2, FaultMode::RefuseTls);
    let f = walk(()).await.unwrap();
    assert!(f.answered.is_none());
    let tried: Vec<&str> = f.attempts.iter().map(|a| a.target.as_str()).collect();
    assert_eq!(
        tried,
        vec!["sip1.skype.lab", "sip2.skype.lab", "sip3.skype.lab"]
    );
    lab.stop().await;
}

#[tokio::test]
async fn call_tries_the_next_address_of_one_target() {
    let lab = PoolLab::start(Layout::DnsLoadBalancing, 2).await;
    let ctx = caller(&lab);
    let req = CallRequest::options("sip:stejanss@skype.lab", "sip:alice@fabrikam.lab");
    let first = lab.members[0];
    let second = lab.members[1];

    let out = call(&ctx, &req).await;
    assert_eq!(out.final_status, 200, "{:#?}", out.steps);
    let dns_a: Vec<&str> = out
        .steps
        .iter()
        .filter(|s| s.name == "dns-a")
        .map(|s| s.detail.as_str())
        .collect();
    assert_eq!(dns_a, vec!["sip.skype.lab → 127.0.0.2, 127.0.0.3"]);

    // A reset can reach the caller before its connect() completes: then it is the TCP step that fails.
    for (mode, failure) in [
        (FaultMode::Reset, ["tcp", "tls"]),
        (FaultMode::RefuseTls, ["tls", "tls"]),
        (FaultMode::Silent, ["tls", "tls"]),
    ] {
        lab.set(0, mode);
        let out = call(&ctx, &req).await;
        assert_eq!(out.final_status, 200, "{mode}: {:#?}", out.steps);
        let steps: Vec<(&str, bool)> = out.steps.iter().map(|s| (s.name.as_str(), s.ok)).collect();
        assert!(
            failure.contains(&steps[4].0) && !steps[4].1,
            "{mode}: {:#?}",
            out.steps
        );
        assert_eq!(
            steps[5..7],
            [("tcp", true), ("tls", true)],
            "{mode}: {:#?}",
            out.steps
        );
        assert!(
            out.steps[4].detail.starts_with(&format!("{first}: ")),
            "{mode}: {}",
            out.steps[4].detail
        );
        assert!(out.steps[4].detail.ends_with("; trying the next address"));
        assert_eq!(out.steps[5].detail, format!("connected to {second}"));
    }

    // Both members down: the last address's failure is what the Skype client gets (1047, reset in TLS).
    lab.set(1, FaultMode::Reset);
    lab.set(0, FaultMode::Reset);
    let out = call(&ctx, &req).await;
    assert_eq!(out.final_status, 504, "{:#?}", out.steps);
    assert!(
        out.ms_diagnostics
            .as_deref()
            .unwrap_or_default()
            .starts_with("1047;"),
        "{:?}",
        out.ms_diagnostics
    );
    lab.stop().await;
}
