//! Instant messages through the Edge over real mutual TLS and real DNS on loopback: a session-mode IM (the
//! INVITE with `m=message … sip null` and the first message in `ms-text-format`), the users' echo, fixed and
//! silent behaviours, in-dialog MESSAGE and INFO typing, BYE from either side, page-mode MESSAGE and its
//! switch, and the federation failures on MESSAGE and on the IM INVITE. Each decoded message is in the event.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;
#[path = "common/presence_lab.rs"]
mod presence_lab;

use bytes::Bytes;
use edge_lab::*;
use edgesim::diagnostics::{DecisionEvent, VerdictKind};
use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient};
use edgesim::sip::Message;
use presence_lab::*;

/// The next event of `method`.
async fn event_of(
    rx: &mut tokio::sync::broadcast::Receiver<DecisionEvent>,
    method: &str,
) -> DecisionEvent {
    loop {
        let ev = Lab::event(rx).await;
        if ev.method.as_deref() == Some(method) {
            return ev;
        }
    }
}

/// Opens an IM session to `to` with `first`; returns the INVITE, the 200 and its To tag (after the ACK).
async fn open(
    peer: &mut PeerClient,
    to: &str,
    first: Option<&str>,
) -> (ExpresswayRequest, Message, String) {
    let inv = ExpresswayRequest::im_invite(FROM, to, first);
    let ok = peer.request(&inv.build(), T).await.unwrap();
    assert_eq!(ok.status_code(), Some(200), "{}", text(ok.as_bytes()));
    let tag = ok.to().unwrap().tag().unwrap().to_owned();
    peer.send(&inv.follow_up("ACK", Some(&tag)).build())
        .await
        .unwrap();
    (inv, ok, tag)
}

#[tokio::test]
async fn a_session_mode_im_is_answered_echoed_and_ended_by_the_peer() {
    let lab = presence_lab(|_| {}).await;
    let mut events = lab.edge.subscribe();
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let (inv, ok, tag) = open(&mut peer, BOB, Some("Hello, Steven")).await;
    assert_eq!(header(&ok, "Supported").as_deref(), Some("ms-text-format"));
    assert_eq!(
        header(&ok, "Content-Type").as_deref(),
        Some("application/sdp")
    );
    let sdp = edgesim::im::sdp::message_media(ok.body()).unwrap();
    assert_eq!(
        (sdp.media.as_str(), sdp.target.as_str()),
        ("message", "sip:stejanss@skype.lab")
    );
    let ev = event_of(&mut events, "INVITE").await;
    assert_eq!((ev.status, ev.verdict), (Some(200), VerdictKind::Accept));
    let x = ev.explanation.unwrap();
    assert!(x.contains("text/plain \"Hello, Steven\""), "{x}");
    // After the ACK, the echo of the first message, in the dialog.
    let echo = peer.next_request(T).await.unwrap();
    assert_eq!(echo.method(), Some(&b"MESSAGE"[..]));
    assert_eq!(echo.body(), b"Hello, Steven");
    assert_eq!(
        header(&echo, "Content-Type").as_deref(),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(echo.from().unwrap().tag(), Some(tag.as_str()));
    assert_eq!(echo.to().unwrap().tag(), Some(inv.from_tag.as_str()));
    peer.answer(&echo, 200).await.unwrap();
    // An in-dialog MESSAGE: 200, then its echo.
    let msg = inv.im_message(&tag, "second: ünïcode");
    let r = peer.request(&msg.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(200));
    let ev = event_of(&mut events, "MESSAGE").await;
    assert!(
        ev.explanation.unwrap().contains("\"second: ünïcode\""),
        "the decoded text is in the event"
    );
    let echo = peer.next_request(T).await.unwrap();
    assert_eq!(std::str::from_utf8(echo.body()).unwrap(), "second: ünïcode");
    peer.answer(&echo, 200).await.unwrap();
    // Typing.
    let mut info = msg.follow_up("INFO", Some(&tag));
    info.body = Some(Bytes::from(edgesim::im::message::typing_body(true)));
    info.content_type = Some("application/xml".into());
    assert_eq!(
        peer.request(&info.build(), T).await.unwrap().status_code(),
        Some(200)
    );
    let ev = event_of(&mut events, "INFO").await;
    assert!(ev.explanation.unwrap().contains("typing notice: Typing"));
    // The peer ends the conversation.
    let bye = info.follow_up("BYE", Some(&tag));
    assert_eq!(
        peer.request(&bye.build(), T).await.unwrap().status_code(),
        Some(200)
    );
    // The session is gone: a MESSAGE in it is now page-mode to the user (200), no echo follows; the next
    // message on the connection is the OPTIONS answer.
    let late = bye.im_message(&tag, "after bye");
    assert_eq!(
        peer.request(&late.build(), T).await.unwrap().status_code(),
        Some(200)
    );
    let opts = ExpresswayRequest::new("OPTIONS", FROM, "sip:skype.lab").build();
    peer.send(&opts).await.unwrap();
    let next = peer.recv(T).await.unwrap().unwrap();
    assert_eq!(next.cseq().unwrap().method, "OPTIONS");
    lab.stop().await;
}

#[tokio::test]
async fn fixed_and_silent_users_and_a_user_busy_for_im() {
    let lab = presence_lab(|_| {}).await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let (inv, _, tag) = open(&mut peer, "sip:fixed@skype.lab", Some("are you there?")).await;
    let reply = peer.next_request(T).await.unwrap();
    assert_eq!(reply.body(), b"Out of office");
    peer.answer(&reply, 200).await.unwrap();
    let bye = inv.follow_up("BYE", Some(&tag));
    assert_eq!(
        peer.request(&bye.build(), T).await.unwrap().status_code(),
        Some(200)
    );
    // Silent: the MESSAGE is answered, and the next thing on the connection is the BYE's 200, not a reply.
    let (inv, _, tag) = open(&mut peer, "sip:quiet@skype.lab", Some("hello?")).await;
    let msg = inv.im_message(&tag, "anyone?");
    assert_eq!(
        peer.request(&msg.build(), T).await.unwrap().status_code(),
        Some(200)
    );
    peer.send(&msg.follow_up("BYE", Some(&tag)).build())
        .await
        .unwrap();
    let next = peer.recv(T).await.unwrap().unwrap();
    assert_eq!(
        (next.status_code(), next.cseq().unwrap().method.as_str()),
        (Some(200), "BYE")
    );
    let busy = ExpresswayRequest::im_invite(FROM, "sip:busy@skype.lab", Some("x"));
    assert_eq!(
        peer.request(&busy.build(), T).await.unwrap().status_code(),
        Some(486)
    );
    lab.stop().await;
}

#[tokio::test]
async fn the_user_ends_the_conversation_with_bye_after_hangup_after_ms() {
    let lab = presence_lab(|c| c.users[0].hangup_after_ms = Some(100)).await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let (inv, _, tag) = open(&mut peer, BOB, None).await;
    let bye = peer.next_request(T).await.unwrap();
    assert_eq!(bye.method(), Some(&b"BYE"[..]));
    assert_eq!(bye.call_id().unwrap().as_ref(), inv.call_id.as_bytes());
    assert_eq!(bye.from().unwrap().tag(), Some(tag.as_str()));
    peer.answer(&bye, 200).await.unwrap();
    lab.stop().await;
}

#[tokio::test]
async fn page_mode_message_unknown_user_bad_body_and_the_switch() {
    let lab = presence_lab(|_| {}).await;
    let mut events = lab.edge.subscribe();
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let mut page = ExpresswayRequest::new("MESSAGE", FROM, BOB);
    page.body = Some(Bytes::from_static(b"page mode hello"));
    page.content_type = Some("text/plain; charset=UTF-8".into());
    assert_eq!(
        peer.request(&page.build(), T).await.unwrap().status_code(),
        Some(200)
    );
    let ev = event_of(&mut events, "MESSAGE").await;
    let x = ev.explanation.unwrap();
    assert!(
        x.contains("page-mode IM") && x.contains("\"page mode hello\""),
        "{x}"
    );
    let mut nobody = ExpresswayRequest::new("MESSAGE", FROM, "sip:nobody@skype.lab");
    nobody.body = page.body.clone();
    nobody.content_type = page.content_type.clone();
    let r = peer.request(&nobody.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(404));
    assert_eq!(diag_code(&r).as_deref(), Some("4005"));
    let mut latin = page.clone();
    latin.call_id = "latin1".into();
    latin.content_type = Some("text/plain; charset=ISO-8859-1".into());
    let r = peer.request(&latin.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(400));
    assert!(header(&r, "Warning").unwrap().contains("ISO-8859-1"));
    let mut bad_first = ExpresswayRequest::im_invite(FROM, BOB, None);
    bad_first.extra_headers.push((
        "ms-text-format".into(),
        "text/plain; charset=UTF-8; ms-body=!!!".into(),
    ));
    let r = peer.request(&bad_first.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(400));
    assert!(header(&r, "Warning").unwrap().contains("base64"));
    lab.stop().await;

    let lab = presence_lab(|c| c.im.page_mode = false).await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let r = peer.request(&page.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(403));
    assert!(
        header(&r, "Warning")
            .unwrap()
            .contains("im.page_mode = false")
    );
    lab.stop().await;
}

#[tokio::test]
async fn federation_failures_on_message_and_on_the_im_invite() {
    // The seed's Rule 1 failure: the SRV target is outside the domain.
    let lab = lab(vec![srv(SRV_ACANO, "vcse.steven.lab")], presence_users).await;
    let mut peer = lab.peer(&["vcse.steven.lab"]).await;
    let mut page = ExpresswayRequest::new("MESSAGE", FROM, BOB);
    page.body = Some(Bytes::from_static(b"hi"));
    page.content_type = Some("text/plain".into());
    let r = peer.request(&page.build(), T).await.unwrap();
    assert_eq!(
        (r.status_code(), diag_code(&r).as_deref()),
        (Some(504), Some("1009"))
    );
    let inv = ExpresswayRequest::im_invite(FROM, BOB, Some("hi"));
    let r = peer.request(&inv.build(), T).await.unwrap();
    assert_eq!(
        (r.status_code(), diag_code(&r).as_deref()),
        (Some(504), Some("1009"))
    );
    let records = lab.edge.log_records();
    assert_eq!(records.len(), 2);
    assert!(records[0].contains("SIP-Start-Line: MESSAGE sip:stejanss@skype.lab SIP/2.0"));
    assert!(records[1].contains("Result-Code: 0xc3e93d6f"));
    lab.stop().await;
    // The seed's Rule 2 failure: the certificate lacks the SRV target.
    let lab = presence_lab(|_| {}).await;
    let mut peer = lab.peer(&["vcse.steven.lab"]).await;
    let r = peer.request(&page.build(), T).await.unwrap();
    assert_eq!(
        (r.status_code(), diag_code(&r).as_deref()),
        (Some(504), Some("1010"))
    );
    assert!(lab.edge.log_records()[0].contains("Result-Code: 0xc3e93d67"));
    lab.stop().await;
}

#[tokio::test]
async fn malformed_typing_xml_in_a_session_is_400_with_a_warning() {
    let lab = presence_lab(|_| {}).await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let (inv, _, tag) = open(&mut peer, "sip:quiet@skype.lab", None).await;
    let mut info = inv.follow_up("INFO", Some(&tag));
    info.body = Some(Bytes::from_static(b"<KeyboardActivity><status"));
    info.content_type = Some("application/xml".into());
    let r = peer.request(&info.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(400));
    let w = header(&r, "Warning").unwrap();
    assert!(
        w.starts_with("399 sip.skype.lab \"the XML body is not well-formed"),
        "{w}"
    );
    // The session survives bad input: a MESSAGE in it is still answered.
    let msg = info.im_message(&tag, "still here");
    assert_eq!(
        peer.request(&msg.build(), T).await.unwrap().status_code(),
        Some(200)
    );
    lab.stop().await;
}
