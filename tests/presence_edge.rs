//! Presence through the Edge over real mutual TLS and real DNS on loopback: a SUBSCRIBE meets the federation
//! rules exactly as an INVITE does (the seed's two failures reproduced for SUBSCRIBE), then the presence core:
//! format from Accept, expiry clamping, piggy-backed first state or a NOTIFY, BENOTIFY only to ms-benotify
//! subscribers, refresh, unsubscribe, schedule and library changes, expiry timeout, limits, bad input. Every
//! document is parsed with a real XML parser (roxmltree) and read back with the subscriber's reader.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;
#[path = "common/presence_lab.rs"]
mod presence_lab;

use edge_lab::*;
use edgesim::config::{PresenceStepConfig, UserPresenceConfig};
use edgesim::diagnostics::VerdictKind;
use edgesim::im::Behaviour;
use edgesim::lab::peer::client::ExpresswayRequest;
use edgesim::presence::{Availability, PresenceState, SubscriptionState};
use presence_lab::*;

fn subscribe(options: &edgesim::presence::client::SubscribeOptions) -> ExpresswayRequest {
    ExpresswayRequest::subscribe(FROM, BOB, options)
}

#[tokio::test]
async fn seed_rule1_on_subscribe_is_the_same_504_and_record() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.steven.lab")], presence_users).await;
    let mut events = lab.edge.subscribe();
    let mut peer = lab.peer(&["vcse.steven.lab"]).await;
    let port = peer.local_addr().port();
    let req = subscribe(&lync());
    let r = peer.request(&req.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    assert_eq!(diag_code(&r).as_deref(), Some("1009"));
    let records = lab.edge.log_records();
    assert_eq!(records.len(), 1);
    let body = records[0].split_once('\n').unwrap().1;
    assert_eq!(
        body,
        format!(
            "Severity: warning Text: The domain of the message resolved by DNS SRV but none of the FQDNs is in the same domain \
Result-Code: 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH SIP-Start-Line: SUBSCRIBE sip:stejanss@skype.lab SIP/2.0 \
SIP-Call-ID: {} SIP-CSeq: 1 SUBSCRIBE Peer: vcse.steven.lab:{port} \
Data: domain=\"acano.steven.lab\";fqdn1=\"vcse.steven.lab:5061\" $$end_record",
            req.call_id
        )
    );
    let ev = Lab::event(&mut events).await;
    assert_eq!(
        (ev.method.as_deref(), ev.status, ev.verdict),
        (Some("SUBSCRIBE"), Some(504), VerdictKind::Reject)
    );
    // No subscription was made: nothing follows the 504 on the connection.
    let opts = ExpresswayRequest::new("OPTIONS", FROM, "sip:skype.lab").build();
    let r = peer.request(&opts, T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    lab.stop().await;
}

#[tokio::test]
async fn seed_rule2_on_subscribe_is_the_same_504_and_record() {
    let lab = presence_lab(|_| {}).await;
    let mut peer = lab.peer(&["vcse.steven.lab"]).await;
    let port = peer.local_addr().port();
    let req = subscribe(&lync());
    let r = peer.request(&req.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    assert_eq!(diag_code(&r).as_deref(), Some("1010"));
    let records = lab.edge.log_records();
    let body = records[0].split_once('\n').unwrap().1;
    assert_eq!(
        body,
        format!(
            "Severity: error Text: Message cannot be routed because the peer's certificate does not contain a matching FQDN \
Result-Code: 0xc3e93d67 SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH SIP-Start-Line: SUBSCRIBE sip:stejanss@skype.lab SIP/2.0 \
SIP-Call-ID: {} SIP-CSeq: 1 SUBSCRIBE Peer: vcse.steven.lab:{port} \
Data: expectedfqdn=\"vcse.acano.steven.lab\";certName=\"vcse.steven.lab\";info=\"The peer certificate does not contain a matching FQDN\" $$end_record",
            req.call_id
        )
    );
    lab.stop().await;
}

#[tokio::test]
async fn no_srv_on_subscribe_is_504_1008() {
    let lab = lab(Vec::new(), presence_users).await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let r = peer.request(&subscribe(&lync()).build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    assert_eq!(diag_code(&r).as_deref(), Some("1008"));
    lab.stop().await;
}

#[tokio::test]
async fn a_lync_subscriber_gets_the_first_state_in_the_200_and_changes_as_benotify() {
    let lab = presence_lab(|_| {}).await;
    let mut events = lab.edge.subscribe();
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let mut opts = lync();
    opts.expires = Some(600);
    let req = subscribe(&opts);
    let ok = peer.request(&req.build(), T).await.unwrap();
    assert_eq!(ok.status_code(), Some(200));
    // 600 s is raised to the minimum, never refused with 423.
    assert_eq!(header(&ok, "Expires").as_deref(), Some("1200"));
    assert_eq!(
        header(&ok, "subscription-state").as_deref(),
        Some("active;expires=1200")
    );
    assert_eq!(header(&ok, "ms-piggyback-cseq").as_deref(), Some("1"));
    assert_eq!(
        header(&ok, "Supported").as_deref(),
        Some("ms-piggyback-first-notify")
    );
    assert_eq!(
        header(&ok, "Content-Type").as_deref(),
        Some("application/msrtc-event-categories+xml")
    );
    assert_eq!(
        xml_root(ok.body()),
        (
            "http://schemas.microsoft.com/2006/09/sip/categories".to_owned(),
            "categories".to_owned()
        )
    );
    let n = notification(&ok);
    let p = n.presence.unwrap();
    assert_eq!(p.availability, 6500);
    assert_eq!(p.activity.as_deref(), Some("in-a-meeting"));
    assert_eq!(p.note.as_deref(), Some("Lab day <&>"));
    assert_eq!(p.display_name.as_deref(), Some("Steven Janssens"));
    let ev = Lab::event(&mut events).await;
    assert_eq!(
        (ev.method.as_deref(), ev.status, ev.verdict),
        (Some("SUBSCRIBE"), Some(200), VerdictKind::Accept)
    );
    assert!(
        ev.explanation.unwrap().contains("Expires: 1200"),
        "the event says what was granted"
    );
    // The library changes the user's presence: a BENOTIFY (ms-benotify), never answered.
    let mut away = PresenceState::of(Availability::Away);
    away.note = Some("gone".into());
    lab.edge.set_presence("stejanss", away);
    let be = peer.next_request(T).await.unwrap();
    assert_eq!(be.method(), Some(&b"BENOTIFY"[..]));
    assert_eq!(header(&be, "Event").as_deref(), Some("presence"));
    let n = notification(&be);
    assert!(matches!(
        n.subscription,
        SubscriptionState::Active { expires } if expires <= 1200 && expires > 1100
    ));
    assert_eq!(n.presence.unwrap().class(), Availability::Away);
    // The dialog: From is the presentity with the Edge's tag from the 200, To the subscriber.
    assert_eq!(be.from().unwrap().tag(), ok.to().unwrap().tag());
    assert_eq!(be.to().unwrap().tag(), Some(req.from_tag.as_str()));
    assert_eq!(be.call_id().unwrap().as_ref(), req.call_id.as_bytes());
    lab.stop().await;
}

#[tokio::test]
async fn a_cisco_subscriber_gets_pidf_in_a_notify_after_the_200_then_refreshes_and_unsubscribes() {
    let lab = presence_lab(|_| {}).await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let req = subscribe(&cisco(Some(50_000)));
    let ok = peer.request(&req.build(), T).await.unwrap();
    assert_eq!(ok.status_code(), Some(200));
    assert_eq!(header(&ok, "Expires").as_deref(), Some("43200"));
    assert!(
        ok.body().is_empty(),
        "no piggy-backed state without the tag"
    );
    let tag = ok.to().unwrap().tag().unwrap().to_owned();
    let notify = peer.next_request(T).await.unwrap();
    assert_eq!(notify.method(), Some(&b"NOTIFY"[..]));
    assert_eq!(
        header(&notify, "Content-Type").as_deref(),
        Some("application/pidf+xml")
    );
    assert_eq!(
        xml_root(notify.body()),
        (
            "urn:ietf:params:xml:ns:pidf".to_owned(),
            "presence".to_owned()
        )
    );
    let doc = std::str::from_utf8(notify.body()).unwrap();
    let doc = roxmltree::Document::parse(doc).unwrap();
    let basic = doc
        .descendants()
        .find(|n| n.has_tag_name(("urn:ietf:params:xml:ns:pidf", "basic")))
        .unwrap();
    assert_eq!(basic.text(), Some("open"));
    assert!(doc.descendants().any(|n| {
        n.has_tag_name(("urn:ietf:params:xml:ns:pidf:cipid", "display-name"))
            && n.text() == Some("Steven Janssens")
    }));
    assert_eq!(
        notification(&notify).presence.unwrap().class(),
        Availability::Busy
    );
    // The NOTIFY goes to the subscriber's Contact, routed by nothing (no Record-Route).
    assert_eq!(
        notify.request_uri().unwrap().as_str(),
        "sip:2000@10.48.36.47:5061;transport=tls"
    );
    peer.answer(&notify, 200).await.unwrap();
    // A refresh in the dialog: 200 and a NOTIFY of the current state.
    let mut refresh = req.follow_up("SUBSCRIBE", Some(&tag));
    refresh.extra_headers = cisco(Some(3600))
        .headers()
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
    let ok = peer.request(&refresh.build(), T).await.unwrap();
    assert_eq!(
        (ok.status_code(), header(&ok, "Expires").as_deref()),
        (Some(200), Some("3600"))
    );
    let notify = peer.next_request(T).await.unwrap();
    assert_eq!(
        header(&notify, "subscription-state").as_deref(),
        Some("active;expires=3600")
    );
    peer.answer(&notify, 200).await.unwrap();
    // Expires: 0 ends it: 200 with Expires: 0, then a final NOTIFY, terminated.
    let mut end = refresh.follow_up("SUBSCRIBE", Some(&tag));
    end.extra_headers = cisco(Some(0))
        .headers()
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
    let ok = peer.request(&end.build(), T).await.unwrap();
    assert_eq!(
        (ok.status_code(), header(&ok, "Expires").as_deref()),
        (Some(200), Some("0"))
    );
    let last = peer.next_request(T).await.unwrap();
    assert_eq!(
        header(&last, "subscription-state").as_deref(),
        Some("terminated;reason=timeout")
    );
    peer.answer(&last, 200).await.unwrap();
    // The subscription is gone: a refresh now is 481.
    let again = end.follow_up("SUBSCRIBE", Some(&tag));
    let r = peer.request(&again.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(481));
    lab.stop().await;
}

#[tokio::test]
async fn a_scheduled_change_is_notified_and_an_unrefreshed_subscription_times_out() {
    let lab = presence_lab(|c| {
        c.users.push(user_with(
            "sched",
            UserPresenceConfig {
                schedule: vec![PresenceStepConfig {
                    after_s: 1,
                    availability: 6500,
                    activity: Some("on-the-phone".into()),
                    note: None,
                }],
                ..UserPresenceConfig::default()
            },
            Behaviour::Echo,
        ));
        c.presence.min_expires_s = 2;
        c.presence.default_expires_s = 2;
    })
    .await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let req = ExpresswayRequest::subscribe(FROM, "sip:sched@skype.lab", &cisco(Some(2)));
    let ok = peer.request(&req.build(), T).await.unwrap();
    assert_eq!(header(&ok, "Expires").as_deref(), Some("2"));
    let first = peer.next_request(T).await.unwrap();
    peer.answer(&first, 200).await.unwrap();
    // A fresh Edge: the first NOTIFY (sent at once) shows the schedule's first state.
    assert_eq!(
        notification(&first).presence.unwrap().class(),
        Availability::Available
    );
    let change = peer.next_request(T).await.unwrap();
    assert_eq!(
        change.method(),
        Some(&b"NOTIFY"[..]),
        "no BENOTIFY for Cisco"
    );
    assert_eq!(
        notification(&change).presence.unwrap().class(),
        Availability::Busy
    );
    peer.answer(&change, 200).await.unwrap();
    let end = peer.next_request(T).await.unwrap();
    assert_eq!(
        header(&end, "subscription-state").as_deref(),
        Some("terminated;reason=timeout")
    );
    assert!(end.body().is_empty());
    lab.stop().await;
}

#[tokio::test]
async fn unknown_user_bad_input_and_formats_are_refused_with_their_answers() {
    let lab = presence_lab(|_| {}).await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let nobody = ExpresswayRequest::subscribe(FROM, "sip:nobody@skype.lab", &lync());
    let r = peer.request(&nobody.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(404));
    assert_eq!(diag_code(&r).as_deref(), Some("4005"));
    let mut bad_expires = subscribe(&lync());
    bad_expires
        .extra_headers
        .push(("Expires".into(), "soon".into()));
    let r = peer.request(&bad_expires.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(400));
    let w = header(&r, "Warning").unwrap();
    assert!(
        w.starts_with("399 sip.skype.lab \"malformed Expires"),
        "{w}"
    );
    let mut bad_event = subscribe(&lync());
    bad_event.extra_headers[0].1 = "presence;;".into();
    let r = peer.request(&bad_event.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(400));
    assert!(header(&r, "Warning").unwrap().contains("malformed Event"));
    let mut dialog = subscribe(&lync());
    dialog.extra_headers[0].1 = "dialog".into();
    let r = peer.request(&dialog.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(489));
    assert_eq!(header(&r, "Allow-Events").as_deref(), Some("presence"));
    let mut xpidf = subscribe(&lync());
    xpidf.extra_headers[1].1 = "application/xpidf+xml".into();
    let r = peer.request(&xpidf.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(488));
    assert_eq!(diag_code(&r).as_deref(), Some("2165"));
    lab.stop().await;
}

#[tokio::test]
async fn limits_per_connection_and_per_user_and_a_lost_connection_frees_its_place() {
    let lab = presence_lab(|c| {
        c.presence.max_subscriptions_per_connection = 2;
        c.presence.max_subscriptions_per_user = 1;
    })
    .await;
    let mut events = lab.edge.subscribe();
    let mut a = lab.peer(&["vcse.acano.steven.lab"]).await;
    let r = a.request(&subscribe(&lync()).build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(200));
    // A second watcher of the same user, on another connection: the per-user cap.
    let mut b = lab.peer(&["vcse.acano.steven.lab"]).await;
    let r = b.request(&subscribe(&lync()).build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(503));
    assert_eq!(diag_code(&r).as_deref(), Some("2171"));
    assert_eq!(header(&r, "Retry-After").as_deref(), Some("60"));
    // Two more users on connection a: the per-connection cap.
    let fixed = ExpresswayRequest::subscribe(FROM, "sip:fixed@skype.lab", &lync());
    assert_eq!(
        a.request(&fixed.build(), T).await.unwrap().status_code(),
        Some(200)
    );
    let quiet = ExpresswayRequest::subscribe(FROM, "sip:quiet@skype.lab", &lync());
    let r = a.request(&quiet.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(503));
    assert_eq!(diag_code(&r).as_deref(), Some("2170"));
    let mut limited = 0;
    while let Ok(Ok(ev)) = tokio::time::timeout(T, events.recv()).await {
        if ev.verdict == VerdictKind::Limit {
            limited += 1;
        }
        if limited == 2 {
            break;
        }
    }
    assert_eq!(limited, 2, "both 503s are limit decisions");
    // Connection a goes: its subscriptions with it, so b may now watch the user.
    a.close().await;
    let mut ok = None;
    for _ in 0..50 {
        let r = b.request(&subscribe(&lync()).build(), T).await.unwrap();
        if r.status_code() == Some(200) {
            ok = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        ok.is_some(),
        "the closed connection's subscription was freed"
    );
    lab.stop().await;
}
