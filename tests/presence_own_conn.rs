//! The requests the Edge originates in presence and IM dialogs (NOTIFY, BENOTIFY, the users' MESSAGE replies)
//! leave over the Edge's own mutual-TLS connection to the partner's federation SRV target, as a real Edge
//! sends them (issues 14 and 16): the emulated Expressway-E's server port gets them, with the SRV target as
//! SNI and the Edge certificate as client certificate; the answers it sends there are the ones the Edge's
//! NOTIFY bookkeeping goes by; a peer refusing the Edge's certificate is a decision with its record and event;
//! and a stopping Edge ends each subscription with a final NOTIFY, `terminated;reason=deactivated`.
//! Real TLS, real DNS on 127.0.0.1.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;
#[path = "common/presence_lab.rs"]
mod presence_lab;

use std::time::Duration;

use edge_lab::*;
use edgesim::diagnostics::DecisionEvent;
use edgesim::edge::ONE_WAY;
use edgesim::lab::builder;
use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient};
use edgesim::lab::peer::server::{PeerBehaviour, PeerServer, PeerServerSpec};
use edgesim::pki::{CertFacts, LabCa, LeafSpec, TrustAnchors};
use edgesim::presence::{Availability, PresenceState};
use presence_lab::*;

const PEER: &str = "vcse.acano.steven.lab";
const DOMAIN: &str = "acano.steven.lab";

/// An Edge with the presence users whose `acano.steven.lab` SRV record names the Expressway-E's server port
/// (bound before the Edge starts), the Edge's own connection on (the default).
async fn own_conn_lab() -> (Lab, tokio::net::TcpListener) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let lab = LabBuilder::inbound()
        .records(vec![builder::srv(DOMAIN, PEER, port), builder::a(PEER)])
        .config(presence_users)
        .start()
        .await;
    assert!(!lab.edge.config().edge.reuse_inbound_connection);
    (lab, listener)
}

/// The Expressway-E's server port with a certificate naming `PEER`, answering every request `status` and
/// requiring a client certificate from `trusted`.
fn expressway(
    lab: &Lab,
    listener: tokio::net::TcpListener,
    status: u16,
    reason: &str,
    trusted: TrustAnchors,
) -> PeerServer {
    let cert = lab.cert(LeafSpec::new(PEER).san(&[PEER]));
    let spec = PeerServerSpec::new(cert, PeerBehaviour::Answer(status, reason.into()))
        .trust_clients(trusted);
    PeerServer::start(listener, spec).unwrap()
}

fn lab_anchors(lab: &Lab) -> TrustAnchors {
    TrustAnchors::from_certs(std::slice::from_ref(lab.ca.cert_der()), "lab CA").unwrap()
}

/// The `n`-th request with `method` the server got, waiting up to `T`.
async fn nth(server: &PeerServer, method: &str, n: usize) -> edgesim::sip::Message {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let got: Vec<_> = server
            .received()
            .into_iter()
            .filter(|m| m.method() == Some(method.as_bytes()))
            .collect();
        if let Some(m) = got.into_iter().nth(n) {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {method} #{n} at the Expressway-E's server port; got {:?}",
            server.received_methods()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next decision event about a NOTIFY (the Edge's own request that did not reach the peer).
async fn notify_event(
    events: &mut tokio::sync::broadcast::Receiver<DecisionEvent>,
) -> DecisionEvent {
    loop {
        let ev = Lab::event(events).await;
        if ev.method.as_deref() == Some("NOTIFY") {
            return ev;
        }
    }
}

/// A Cisco subscriber's SUBSCRIBE to stejanss, answered 200; the request and the Edge's To tag.
async fn subscribed(peer: &mut PeerClient) -> (ExpresswayRequest, String) {
    let req = ExpresswayRequest::subscribe(FROM, BOB, &cisco(Some(3600)));
    let ok = peer.request(&req.build(), T).await.unwrap();
    assert_eq!(ok.status_code(), Some(200));
    let tag = ok.to().unwrap().tag().unwrap().to_owned();
    (req, tag)
}

/// A refresh of the subscription in its dialog; its status.
async fn refresh(peer: &mut PeerClient, req: &ExpresswayRequest, tag: &str) -> Option<u16> {
    let mut again = req.follow_up("SUBSCRIBE", Some(tag));
    again.extra_headers = cisco(Some(3600))
        .headers()
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
    peer.request(&again.build(), T).await.unwrap().status_code()
}

/// Nothing the Edge originated came back on the inbound connection: the next message there answers an OPTIONS.
async fn inbound_is_quiet(peer: &mut PeerClient) {
    let opts = ExpresswayRequest::new("OPTIONS", FROM, "sip:skype.lab").build();
    peer.send(&opts).await.unwrap();
    let next = peer.recv(T).await.unwrap().unwrap();
    assert_eq!(next.cseq().unwrap().method, "OPTIONS");
}

#[tokio::test]
async fn a_notify_goes_over_the_edges_own_connection_and_its_200_keeps_the_subscription() {
    let (lab, listener) = own_conn_lab().await;
    let server = expressway(&lab, listener, 200, "OK", lab_anchors(&lab));
    let mut peer = lab.peer(&[PEER]).await;
    let (req, tag) = subscribed(&mut peer).await;
    let notify = nth(&server, "NOTIFY", 0).await;
    assert_eq!(
        notification(&notify).presence.unwrap().class(),
        Availability::Busy
    );
    assert_eq!(
        header(&notify, "subscription-state").as_deref(),
        Some("active;expires=3600")
    );
    // The Edge connected as a client: SNI the SRV target, the Edge certificate as client certificate.
    let conns = server.connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].sni.as_deref(), Some(PEER));
    let client = CertFacts::from_der(&conns[0].client_chain[0]).unwrap();
    assert_eq!(client.display_name(), "sip.skype.lab");
    inbound_is_quiet(&mut peer).await;
    // A change of state: the next NOTIFY on the same connection.
    lab.edge
        .set_presence("stejanss", PresenceState::of(Availability::Away));
    let change = nth(&server, "NOTIFY", 1).await;
    assert_eq!(
        notification(&change).presence.unwrap().class(),
        Availability::Away
    );
    assert_eq!(server.connections().len(), 1, "one connection, reused");
    // The 200s the Expressway sent on the Edge's connection were matched: the subscription lives on.
    assert_eq!(refresh(&mut peer, &req, &tag).await, Some(200));
    assert!(lab.edge.outbound_failures().is_empty());
    server.shutdown().await;
    lab.stop().await;
}

#[tokio::test]
async fn a_notify_answered_481_on_the_edges_own_connection_ends_the_subscription() {
    let (lab, listener) = own_conn_lab().await;
    let server = expressway(
        &lab,
        listener,
        481,
        "Call Leg/Transaction Does Not Exist",
        lab_anchors(&lab),
    );
    let mut peer = lab.peer(&[PEER]).await;
    let (req, tag) = subscribed(&mut peer).await;
    nth(&server, "NOTIFY", 0).await;
    // The 481 came back over the Edge's own connection and ended the subscription there.
    let deadline = tokio::time::Instant::now() + T;
    loop {
        match refresh(&mut peer, &req, &tag).await {
            Some(481) => break,
            other => assert_eq!(other, Some(200), "a refresh before the 481 was read"),
        }
        assert!(tokio::time::Instant::now() < deadline, "still subscribed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
    lab.stop().await;
}

#[tokio::test]
async fn the_users_echo_of_an_im_goes_over_the_edges_own_connection() {
    let (lab, listener) = own_conn_lab().await;
    let server = expressway(&lab, listener, 200, "OK", lab_anchors(&lab));
    let mut peer = lab.peer(&[PEER]).await;
    let inv = ExpresswayRequest::im_invite(FROM, BOB, Some("Hello over there"));
    let ok = peer.request(&inv.build(), T).await.unwrap();
    assert_eq!(ok.status_code(), Some(200));
    let tag = ok.to().unwrap().tag().unwrap().to_owned();
    peer.send(&inv.follow_up("ACK", Some(&tag)).build())
        .await
        .unwrap();
    let echo = nth(&server, "MESSAGE", 0).await;
    assert_eq!(echo.body(), b"Hello over there");
    assert_eq!(echo.from().unwrap().tag(), Some(tag.as_str()));
    assert_eq!(echo.to().unwrap().tag(), Some(inv.from_tag.as_str()));
    inbound_is_quiet(&mut peer).await;
    server.shutdown().await;
    lab.stop().await;
}

#[tokio::test]
async fn an_expressway_refusing_the_edge_certificate_is_a_decision_with_record_and_event() {
    let (lab, listener) = own_conn_lab().await;
    // The Expressway-E trusts another CA only: it refuses the Edge's client certificate.
    let other = LabCa::generate("another CA", edgesim::pki::KeyType::EcdsaP256).unwrap();
    let other =
        TrustAnchors::from_certs(std::slice::from_ref(other.cert_der()), "another CA").unwrap();
    let server = expressway(&lab, listener, 200, "OK", other);
    let mut events = lab.edge.subscribe();
    let mut peer = lab.peer(&[PEER]).await;
    // The SUBSCRIBE from the peer works...
    subscribed(&mut peer).await;
    // ...the Edge's NOTIFY does not reach it: a decision about the Edge's own request.
    let ev = notify_event(&mut events).await;
    assert_eq!(ev.domain.as_deref(), Some(DOMAIN));
    assert_eq!(
        ev.status, None,
        "nothing was answered: the request was the Edge's"
    );
    assert_eq!(ev.ms_diagnostics_code, Some(1047));
    let x = ev.explanation.unwrap();
    assert!(x.ends_with(ONE_WAY), "{x}");
    let f = &lab.edge.outbound_failures()[0];
    assert_eq!((f.domain.as_str(), f.method.as_str()), (DOMAIN, "NOTIFY"));
    assert_eq!(f.ms_diagnostics, ev.ms_diagnostics);
    // `call`'s 1047 has no catalogued Edge record: none is made up.
    assert_eq!(ev.result_code, None);
    assert!(server.received().is_empty());
    server.shutdown().await;
    lab.stop().await;
}

#[tokio::test]
async fn an_expressway_whose_certificate_lacks_the_srv_target_is_1010_with_its_edge_record() {
    let (lab, listener) = own_conn_lab().await;
    // The server certificate names the old FQDN only: Rule 2 fails toward it.
    let cert = lab.cert(LeafSpec::new("vcse.steven.lab").san(&["vcse.steven.lab"]));
    let spec = PeerServerSpec::new(cert, PeerBehaviour::Answer(200, "OK".into()))
        .trust_clients(lab_anchors(&lab));
    let server = PeerServer::start(listener, spec).unwrap();
    let mut events = lab.edge.subscribe();
    let mut peer = lab.peer(&[PEER]).await;
    subscribed(&mut peer).await;
    let ev = notify_event(&mut events).await;
    assert_eq!(
        ev.ms_diagnostics.as_deref(),
        Some(
            "1010;reason=\"Certificate trust with another server could not be established\";ErrorType=\"The peer certificate does not contain a matching FQDN\";tls-target=\"vcse.acano.steven.lab\";PeerServer=\"vcse.steven.lab\";HRESULT=\"0x80090322 (SEC_E_WRONG_PRINCIPAL)\";source=\"sip.skype.lab\""
        )
    );
    assert_eq!(
        ev.result_code.as_deref(),
        Some("0xc3e93d67 SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH")
    );
    // The record is in the log the Edge keeps, and in its log file after the stop.
    let record = lab
        .edge
        .log_records()
        .into_iter()
        .find(|r| r.contains("0xc3e93d67"))
        .expect("the 1010's Edge record");
    assert!(
        record.contains(r#"expectedfqdn="vcse.acano.steven.lab";certName="vcse.steven.lab""#),
        "{record}"
    );
    assert!(
        server.received().is_empty(),
        "nothing sent to an untrusted peer"
    );
    // And in the log file, once the sinks wrote what they hold.
    lab.edge.flush();
    let file = std::fs::read_to_string(lab.dir.path().join("edge.log")).unwrap();
    assert!(file.contains("0xc3e93d67 SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH"));
    server.shutdown().await;
    lab.stop().await;
}

#[tokio::test]
async fn a_stopping_edge_sends_each_subscription_its_final_deactivated_notify() {
    let (lab, listener) = own_conn_lab().await;
    let server = expressway(&lab, listener, 200, "OK", lab_anchors(&lab));
    let mut peer = lab.peer(&[PEER]).await;
    subscribed(&mut peer).await;
    nth(&server, "NOTIFY", 0).await;
    lab.stop().await;
    // Sent before the Edge returned from its stop: no waiting here.
    let last: Vec<_> = server
        .received()
        .into_iter()
        .filter(|m| m.method() == Some(&b"NOTIFY"[..]))
        .collect();
    assert_eq!(last.len(), 2, "the first state and the final NOTIFY");
    assert_eq!(
        header(&last[1], "subscription-state").as_deref(),
        Some("terminated;reason=deactivated")
    );
    assert_eq!(last[1].call_id().unwrap(), last[0].call_id().unwrap());
    server.shutdown().await;
}

#[tokio::test]
async fn reusing_the_inbound_connection_a_stopping_edge_sends_the_final_notify_there() {
    let lab = presence_lab(|_| {}).await;
    assert!(lab.edge.config().edge.reuse_inbound_connection);
    let mut peer = lab.peer(&[PEER]).await;
    subscribed(&mut peer).await;
    let first = peer.next_request(T).await.unwrap();
    peer.answer(&first, 200).await.unwrap();
    let stop = tokio::spawn(lab.stop());
    let last = peer.next_request(T).await.unwrap();
    assert_eq!(last.method(), Some(&b"NOTIFY"[..]));
    assert_eq!(
        header(&last, "subscription-state").as_deref(),
        Some("terminated;reason=deactivated")
    );
    stop.await.unwrap();
}
