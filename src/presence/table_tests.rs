//! The subscription table, branch by branch, with time passed in.

use std::time::{Duration, Instant};

use super::*;
use crate::presence::read::read;
use crate::presence::schedule::Step;
use crate::presence::state::Availability;

const BOB: &str = "bob@skype.lab";
const C1: ConnId = ConnId(1);
const C2: ConnId = ConnId(2);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

struct Lab {
    t0: Instant,
    table: Subscriptions,
}

impl Lab {
    fn new(limits: Limits) -> Self {
        let t0 = Instant::now();
        let mut table = Subscriptions::new(limits, t0);
        table.set_user(BOB, Schedule::fixed(PresenceState::of(Availability::Busy)));
        Lab { t0, table }
    }

    fn at(&self, s: u64) -> Instant {
        self.t0 + secs(s)
    }
}

fn lab() -> Lab {
    Lab::new(Limits::default())
}

/// A federated SUBSCRIBE from alice in `call` (no To tag).
fn sub(call: &str) -> SubscribeRequest {
    SubscribeRequest {
        call_id: call.into(),
        from: format!("\"Alice\" <sip:alice@steven.lab>;tag=a-{call}"),
        from_tag: format!("a-{call}"),
        to: "<sip:bob@skype.lab>".into(),
        to_tag: None,
        contact: Some("sip:alice@10.0.0.1:5061;transport=tls".into()),
        record_route: vec!["<sip:vcse.steven.lab:5061;transport=tls;lr>".into()],
        event: Some("presence".into()),
        accept: Some("application/pidf+xml".into()),
        expires: Vec::new(),
        supported: Vec::new(),
        proxy_require: Vec::new(),
    }
}

fn with(mut r: SubscribeRequest, f: impl FnOnce(&mut SubscribeRequest)) -> SubscribeRequest {
    f(&mut r);
    r
}

/// The in-dialog follow-up of `r`, answered with tag `tag`.
fn in_dialog(r: &SubscribeRequest, tag: &str, expires: &str) -> SubscribeRequest {
    with(r.clone(), |r| {
        r.to = format!("{};tag={tag}", r.to);
        r.to_tag = Some(tag.into());
        r.expires = vec![expires.into()];
    })
}

fn piggy(r: SubscribeRequest) -> SubscribeRequest {
    with(r, |r| r.supported.push("ms-piggyback-first-notify".into()))
}

fn benotify(r: SubscribeRequest) -> SubscribeRequest {
    with(r, |r| r.supported.push("ms-benotify".into()))
}

fn response(actions: &[Action]) -> &Response {
    match actions.first() {
        Some(Action::Respond(r)) => r,
        other => panic!("no response first: {other:?}"),
    }
}

fn notifies(actions: &[Action]) -> Vec<&Notify> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn ended(actions: &[Action]) -> Vec<EndCause> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Ended { cause, .. } => Some(*cause),
            _ => None,
        })
        .collect()
}

fn id(call: &str, tag: &str) -> SubscriptionId {
    SubscriptionId {
        call_id: call.into(),
        remote_tag: format!("a-{call}"),
        local_tag: tag.into(),
        event_id: None,
    }
}

fn body_state(n: &Notify) -> PresenceState {
    let b = n.body.as_ref().expect("a body");
    read(b.content_type, b.text.as_bytes()).unwrap()
}

fn header<'a>(h: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
}

#[test]
fn a_new_subscription_gets_200_then_a_notify() {
    let mut l = lab();
    let a = l.table.handle_subscribe(l.t0, C1, BOB, &sub("c1"), "T1");
    assert_eq!(a.len(), 2, "{a:?}");
    let r = response(&a);
    assert_eq!((r.status, r.reason), (200, "OK"));
    assert_eq!(r.to_tag.as_deref(), Some("T1"));
    assert_eq!(r.headers, vec![("Expires", "28800".to_owned())]);
    assert_eq!(r.body, None);
    let n = notifies(&a)[0];
    assert_eq!(n.conn, C1);
    assert_eq!(n.id, id("c1", "T1"));
    assert_eq!(n.method, NotifyMethod::Notify);
    assert_eq!(n.request_uri, "sip:alice@10.0.0.1:5061;transport=tls");
    assert_eq!(n.from, "<sip:bob@skype.lab>;tag=T1");
    assert_eq!(n.to, "\"Alice\" <sip:alice@steven.lab>;tag=a-c1");
    assert_eq!(n.call_id, "c1");
    assert_eq!(n.cseq, 1);
    assert_eq!(n.route, vec!["<sip:vcse.steven.lab:5061;transport=tls;lr>"]);
    assert_eq!(
        n.headers,
        vec![
            ("Event", "presence".to_owned()),
            ("subscription-state", "active;expires=28800".to_owned()),
        ]
    );
    assert_eq!(
        n.body.as_ref().unwrap().content_type,
        "application/pidf+xml"
    );
    assert_eq!(body_state(n).class(), Availability::Busy);
    assert_eq!(n.state, Some(PresenceState::of(Availability::Busy)));
    assert_eq!(l.table.len(), 1);
    let s = l.table.get(&id("c1", "T1")).unwrap();
    assert_eq!(s.format, DocumentFormat::Pidf);
    assert_eq!(s.expires_at, l.at(28800));
}

#[test]
fn the_ms_pres_federated_sample_gets_msrtc_in_the_200_then_benotify() {
    let mut l = lab();
    let r = piggy(benotify(with(sub("c1"), |r| {
        r.accept = Some("application/xpidf+xml, text/xml+msrtc.pidf, application/pidf+xml".into());
        r.proxy_require = vec!["ms-benotify".into()];
    })));
    let a = l.table.handle_subscribe(l.t0, C1, BOB, &r, "B8FCF750");
    assert_eq!(a.len(), 1, "the state rides in the 200: {a:?}");
    let resp = response(&a);
    assert_eq!(
        resp.headers,
        vec![
            ("Expires", "28800".to_owned()),
            ("Event", "presence".to_owned()),
            ("subscription-state", "active;expires=28800".to_owned()),
            ("ms-piggyback-cseq", "1".to_owned()),
            ("Supported", "ms-piggyback-first-notify".to_owned()),
        ]
    );
    let b = resp.body.as_ref().unwrap();
    assert_eq!(b.content_type, "text/xml+msrtc.pidf");
    assert_eq!(
        read(b.content_type, b.text.as_bytes()).unwrap().class(),
        Availability::Busy
    );
    let a = l
        .table
        .presence_changed(BOB, PresenceState::of(Availability::Away), l.at(10));
    let n = notifies(&a);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].method, NotifyMethod::Benotify);
    assert_eq!(n[0].method.as_str(), "BENOTIFY");
    assert_eq!(n[0].cseq, 2, "after ms-piggyback-cseq: 1");
    assert_eq!(
        header(&n[0].headers, "subscription-state"),
        Some("active;expires=28790")
    );
    assert_eq!(body_state(n[0]).class(), Availability::Away);
    // BENOTIFY is never answered: the next change goes at once.
    let a = l
        .table
        .presence_changed(BOB, PresenceState::of(Availability::Available), l.at(11));
    assert_eq!(notifies(&a)[0].cseq, 3);
}

#[test]
fn piggyback_without_benotify_then_plain_notify() {
    let mut l = lab();
    let a = l
        .table
        .handle_subscribe(l.t0, C1, BOB, &piggy(sub("c1")), "T1");
    assert_eq!(
        header(&response(&a).headers, "ms-piggyback-cseq"),
        Some("1")
    );
    let a = l
        .table
        .presence_changed(BOB, PresenceState::of(Availability::Away), l.at(1));
    assert_eq!(notifies(&a)[0].method, NotifyMethod::Notify);
    assert_eq!(notifies(&a)[0].cseq, 2);
}

#[test]
fn the_first_notify_is_notify_even_for_a_benotify_subscriber() {
    let mut l = lab();
    let a = l
        .table
        .handle_subscribe(l.t0, C1, BOB, &benotify(sub("c1")), "T1");
    assert_eq!(notifies(&a)[0].method, NotifyMethod::Notify);
}

#[test]
fn changes_wait_for_the_unanswered_notify_and_coalesce() {
    let mut l = lab();
    l.table.handle_subscribe(l.t0, C1, BOB, &sub("c1"), "T1");
    let i = id("c1", "T1");
    assert!(
        l.table
            .presence_changed(BOB, PresenceState::of(Availability::Away), l.at(1))
            .is_empty()
    );
    assert!(
        l.table
            .presence_changed(BOB, PresenceState::of(Availability::BeRightBack), l.at(2))
            .is_empty()
    );
    assert!(
        l.table
            .handle_notify_response(l.at(3), &i, 1, 100)
            .is_empty(),
        "provisional"
    );
    assert!(
        l.table
            .handle_notify_response(l.at(3), &i, 7, 200)
            .is_empty(),
        "stale CSeq"
    );
    let a = l.table.handle_notify_response(l.at(3), &i, 1, 200);
    let n = notifies(&a);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].cseq, 2);
    assert_eq!(
        body_state(n[0]).class(),
        Availability::BeRightBack,
        "the latest state"
    );
    assert!(
        l.table
            .handle_notify_response(l.at(4), &i, 2, 200)
            .is_empty()
    );
}

#[test]
fn a_rejected_notify_ends_the_subscription() {
    let mut l = lab();
    l.table.handle_subscribe(l.t0, C1, BOB, &sub("c1"), "T1");
    let a = l
        .table
        .handle_notify_response(l.at(1), &id("c1", "T1"), 1, 481);
    assert_eq!(ended(&a), vec![EndCause::NotifyRejected(481)]);
    assert!(notifies(&a).is_empty());
    assert!(l.table.is_empty());
    assert!(
        l.table
            .handle_notify_response(l.at(2), &id("c1", "T1"), 1, 200)
            .is_empty()
    );
}

#[test]
fn an_unanswered_notify_times_out() {
    let mut l = lab();
    l.table.handle_subscribe(l.t0, C1, BOB, &sub("c1"), "T1");
    assert_eq!(l.table.poll_timeout(), Some(l.t0 + NOTIFY_TIMEOUT));
    assert!(l.table.handle_timeout(l.at(31)).is_empty());
    let a = l.table.handle_timeout(l.at(32));
    assert_eq!(ended(&a), vec![EndCause::NotifyTimedOut]);
    assert!(l.table.is_empty());
    assert_eq!(l.table.poll_timeout(), None);
}

#[test]
fn an_expired_subscription_gets_terminated_timeout() {
    let mut l = lab();
    let r = piggy(with(sub("c1"), |r| r.expires = vec!["1200".into()]));
    l.table.handle_subscribe(l.t0, C1, BOB, &r, "T1");
    assert_eq!(l.table.poll_timeout(), Some(l.at(1200)));
    assert!(l.table.handle_timeout(l.at(1199)).is_empty());
    let a = l.table.handle_timeout(l.at(1200));
    let n = notifies(&a);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].method, NotifyMethod::Notify);
    assert_eq!(n[0].cseq, 2);
    assert_eq!(
        header(&n[0].headers, "subscription-state"),
        Some("terminated;reason=timeout")
    );
    assert_eq!(n[0].body, None);
    assert_eq!(ended(&a), vec![EndCause::Expired]);
    assert!(l.table.is_empty());
    assert_eq!(l.table.poll_timeout(), None);
}

#[test]
fn a_refresh_grants_anew_and_notifies() {
    let mut l = lab();
    let first = sub("c1");
    l.table.handle_subscribe(l.t0, C1, BOB, &first, "T1");
    l.table
        .handle_notify_response(l.at(1), &id("c1", "T1"), 1, 200);
    let a = l.table.handle_subscribe(
        l.at(600),
        C1,
        BOB,
        &in_dialog(&first, "T1", "3600"),
        "unused",
    );
    let r = response(&a);
    assert_eq!(r.to_tag.as_deref(), Some("T1"));
    assert_eq!(r.headers, vec![("Expires", "3600".to_owned())]);
    let n = notifies(&a);
    assert_eq!(n[0].cseq, 2);
    assert_eq!(n[0].method, NotifyMethod::Notify);
    assert_eq!(
        header(&n[0].headers, "subscription-state"),
        Some("active;expires=3600")
    );
    assert_eq!(l.table.get(&id("c1", "T1")).unwrap().expires_at, l.at(4200));
}

#[test]
fn a_refresh_during_an_unanswered_notify_is_notified_after_it() {
    let mut l = lab();
    let first = benotify(sub("c1"));
    l.table.handle_subscribe(l.t0, C1, BOB, &first, "T1");
    let a = l
        .table
        .handle_subscribe(l.at(5), C1, BOB, &in_dialog(&first, "T1", "2000"), "x");
    assert_eq!(a.len(), 1, "only the 200: {a:?}");
    let a = l
        .table
        .handle_notify_response(l.at(6), &id("c1", "T1"), 1, 200);
    let n = notifies(&a);
    assert_eq!(n.len(), 1, "owed even though nothing changed");
    assert_eq!(n[0].method, NotifyMethod::Notify, "SUBSCRIBE-triggered");
    assert_eq!(
        header(&n[0].headers, "subscription-state"),
        Some("active;expires=1999")
    );
}

#[test]
fn a_refresh_keeps_the_format_and_updates_the_target() {
    let mut l = lab();
    let first = with(sub("c1"), |r| {
        r.accept = Some("application/msrtc-event-categories+xml".into())
    });
    l.table.handle_subscribe(l.t0, C1, BOB, &first, "T1");
    l.table
        .handle_notify_response(l.at(1), &id("c1", "T1"), 1, 200);
    let refresh = with(in_dialog(&first, "T1", "1200"), |r| {
        r.accept = Some("application/pidf+xml".into());
        r.contact = Some("sip:alice@10.0.0.9:5061;transport=tls".into());
    });
    let a = l.table.handle_subscribe(l.at(2), C2, BOB, &refresh, "x");
    let n = notifies(&a)[0];
    assert_eq!(
        n.body.as_ref().unwrap().content_type,
        "application/msrtc-event-categories+xml"
    );
    assert_eq!(n.request_uri, "sip:alice@10.0.0.9:5061;transport=tls");
    assert_eq!(
        n.conn, C2,
        "a refresh on another connection moves the subscription"
    );
}

#[test]
fn expires_zero_in_the_dialog_unsubscribes() {
    let mut l = lab();
    let first = sub("c1");
    l.table.handle_subscribe(l.t0, C1, BOB, &first, "T1");
    l.table
        .handle_notify_response(l.at(1), &id("c1", "T1"), 1, 200);
    let a = l
        .table
        .handle_subscribe(l.at(9), C1, BOB, &in_dialog(&first, "T1", "0"), "x");
    assert_eq!(response(&a).headers, vec![("Expires", "0".to_owned())]);
    let n = notifies(&a);
    assert_eq!(
        header(&n[0].headers, "subscription-state"),
        Some("terminated;reason=timeout")
    );
    assert_eq!(
        body_state(n[0]).class(),
        Availability::Busy,
        "with the current state"
    );
    assert_eq!(ended(&a), vec![EndCause::Unsubscribed]);
    assert!(l.table.is_empty());
}

#[test]
fn expires_zero_on_a_new_dialog_is_a_fetch_past_the_caps() {
    let mut l = Lab::new(Limits {
        max_per_connection: 1,
        max_per_user: 1,
        ..Limits::default()
    });
    l.table
        .handle_subscribe(l.t0, C1, BOB, &piggy(sub("c1")), "T1");
    let fetch = with(sub("c2"), |r| r.expires = vec!["0".into()]);
    let a = l.table.handle_subscribe(l.at(1), C1, BOB, &fetch, "T2");
    let r = response(&a);
    assert_eq!((r.status, r.to_tag.as_deref()), (200, Some("T2")));
    assert_eq!(r.headers, vec![("Expires", "0".to_owned())]);
    let n = notifies(&a);
    assert_eq!(n.len(), 1);
    assert_eq!(
        header(&n[0].headers, "subscription-state"),
        Some("terminated;reason=timeout")
    );
    assert!(n[0].body.is_some());
    assert_eq!(ended(&a), vec![EndCause::Unsubscribed]);
    assert_eq!(l.table.len(), 1);
    // With piggyback, the fetch's state rides in the 200 and no NOTIFY follows.
    let a = l.table.handle_subscribe(
        l.at(2),
        C1,
        BOB,
        &piggy(with(sub("c3"), |r| r.expires = vec!["0".into()])),
        "T3",
    );
    assert!(notifies(&a).is_empty());
    assert_eq!(
        header(&response(&a).headers, "subscription-state"),
        Some("terminated;reason=timeout")
    );
}

#[test]
fn an_unknown_dialog_is_481() {
    let mut l = lab();
    let a = l
        .table
        .handle_subscribe(l.t0, C1, BOB, &in_dialog(&sub("c9"), "NOPE", "600"), "x");
    let r = response(&a);
    assert_eq!(
        (r.status, r.reason),
        (481, "Call/Transaction Does Not Exist")
    );
    assert_eq!(r.to_tag.as_deref(), Some("NOPE"));
    assert!(
        r.explanation
            .as_deref()
            .unwrap()
            .contains("send a new SUBSCRIBE")
    );
    let first = with(sub("c1"), |r| r.event = Some("presence;id=1".into()));
    l.table.handle_subscribe(l.t0, C1, BOB, &first, "T1");
    let other_id = with(in_dialog(&first, "T1", "600"), |r| {
        r.event = Some("presence;id=2".into())
    });
    assert_eq!(
        response(&l.table.handle_subscribe(l.at(1), C1, BOB, &other_id, "x")).status,
        481
    );
}

#[test]
fn refusals_answer_and_create_nothing() {
    let mut l = lab();
    let cases = [
        (with(sub("e"), |r| r.event = Some("dialog".into())), 489),
        (
            with(sub("a"), |r| {
                r.accept = Some("application/xpidf+xml".into())
            }),
            488,
        ),
        (with(sub("x"), |r| r.expires = vec!["never".into()]), 400),
        (with(sub("k"), |r| r.contact = None), 400),
        (with(sub("m"), |r| r.event = None), 400),
    ];
    for (r, status) in cases {
        let a = l.table.handle_subscribe(l.t0, C1, BOB, &r, "T");
        assert_eq!(a.len(), 1);
        assert_eq!(response(&a).status, status, "{r:?}");
    }
    assert!(l.table.is_empty());
    let a = l.table.handle_subscribe(
        l.t0,
        C1,
        BOB,
        &with(sub("e"), |r| r.event = Some("dialog".into())),
        "T",
    );
    assert_eq!(
        response(&a).headers,
        vec![("Allow-Events", "presence".to_owned())]
    );
    let a = l.table.handle_subscribe(
        l.t0,
        C1,
        BOB,
        &with(sub("a"), |r| r.accept = Some("text/html".into())),
        "T",
    );
    let r = response(&a);
    assert_eq!(r.reason, "Not Acceptable Here");
    assert_eq!(r.diagnostic.as_ref().map(|d| d.code), Some(2165));
    assert!(r.explanation.as_deref().unwrap().contains("`text/html`"));
    let a = l.table.handle_subscribe(
        l.t0,
        C1,
        BOB,
        &with(sub("x"), |r| r.expires = vec!["never".into()]),
        "T",
    );
    assert_eq!(
        response(&a).warning.as_deref(),
        Some("malformed Expires: `never` is not a number of seconds")
    );
}

#[test]
fn the_per_connection_cap_is_503_with_diagnostics() {
    let mut l = Lab::new(Limits {
        max_per_connection: 2,
        ..Limits::default()
    });
    for c in ["c1", "c2"] {
        assert_eq!(
            response(&l.table.handle_subscribe(l.t0, C1, BOB, &sub(c), c)).status,
            200
        );
    }
    let a = l.table.handle_subscribe(l.t0, C1, BOB, &sub("c3"), "c3");
    let r = response(&a);
    assert_eq!((r.status, r.reason), (503, "Service Unavailable"));
    assert_eq!(r.headers, vec![("Retry-After", "60".to_owned())]);
    assert_eq!(r.diagnostic.as_ref().map(|d| d.code), Some(2170));
    assert_eq!(l.table.len(), 2);
    assert_eq!(
        response(&l.table.handle_subscribe(l.t0, C2, BOB, &sub("c4"), "c4")).status,
        200
    );
}

#[test]
fn the_per_user_cap_is_503_with_diagnostics() {
    let mut l = Lab::new(Limits {
        max_per_user: 1,
        ..Limits::default()
    });
    l.table.set_user("carol@skype.lab", Schedule::default());
    assert_eq!(
        response(&l.table.handle_subscribe(l.t0, C1, BOB, &sub("c1"), "c1")).status,
        200
    );
    let a = l
        .table
        .handle_subscribe(l.t0, C2, "BOB@skype.lab", &sub("c2"), "c2");
    let r = response(&a);
    assert_eq!(r.status, 503);
    assert_eq!(r.diagnostic.as_ref().map(|d| d.code), Some(2171));
    assert!(
        r.explanation
            .as_deref()
            .unwrap()
            .starts_with("BOB@skype.lab already has 1")
    );
    assert_eq!(
        response(
            &l.table
                .handle_subscribe(l.t0, C2, "carol@skype.lab", &sub("c3"), "c3")
        )
        .status,
        200
    );
}

#[test]
fn a_closed_connection_forgets_its_subscriptions_only() {
    let mut l = lab();
    l.table.handle_subscribe(l.t0, C1, BOB, &sub("c1"), "T1");
    l.table.handle_subscribe(l.t0, C1, BOB, &sub("c2"), "T2");
    l.table.handle_subscribe(l.t0, C2, BOB, &sub("c3"), "T3");
    let a = l.table.connection_lost(C1);
    assert_eq!(
        ended(&a),
        vec![EndCause::ConnectionLost, EndCause::ConnectionLost]
    );
    assert!(notifies(&a).is_empty());
    assert_eq!(l.table.len(), 1);
    assert!(l.table.get(&id("c3", "T3")).is_some());
    assert!(l.table.connection_lost(C1).is_empty());
}

fn scheduled_lab() -> Lab {
    let mut l = lab();
    let sch = Schedule::new(
        PresenceState::of(Availability::Available),
        vec![
            Step {
                after: secs(30),
                state: PresenceState::of(Availability::Busy),
            },
            Step {
                after: secs(90),
                state: PresenceState::of(Availability::Away),
            },
        ],
    )
    .unwrap();
    l.table.set_user(BOB, sch);
    l
}

#[test]
fn a_schedule_notifies_each_change_when_due() {
    let mut l = scheduled_lab();
    let a = l
        .table
        .handle_subscribe(l.t0, C1, BOB, &piggy(benotify(sub("c1"))), "T1");
    let b = response(&a).body.as_ref().unwrap();
    assert_eq!(
        read(b.content_type, b.text.as_bytes()).unwrap().class(),
        Availability::Available
    );
    assert_eq!(l.table.poll_timeout(), Some(l.at(30)));
    assert!(
        l.table
            .handle_timeout(l.t0 + Duration::from_millis(29_990))
            .is_empty(),
        "a timer firing early"
    );
    assert_eq!(l.table.poll_timeout(), Some(l.at(30)));
    let a = l.table.handle_timeout(l.at(30));
    let n = notifies(&a);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].method, NotifyMethod::Benotify);
    assert_eq!(body_state(n[0]).class(), Availability::Busy);
    assert_eq!(l.table.poll_timeout(), Some(l.at(90)));
    let a = l.table.handle_timeout(l.at(95));
    assert_eq!(body_state(notifies(&a)[0]).class(), Availability::Away);
    assert_eq!(
        l.table.poll_timeout(),
        Some(l.at(28800)),
        "only the expiry is left"
    );
    assert!(l.table.handle_timeout(l.at(100)).is_empty());
}

#[test]
fn a_late_subscriber_does_not_hide_a_change_from_an_earlier_one() {
    let mut l = scheduled_lab();
    l.table
        .handle_subscribe(l.t0, C1, BOB, &piggy(sub("c1")), "T1");
    // The second subscribes after the change is due but before the timer ran: it sees Busy at once.
    let a = l
        .table
        .handle_subscribe(l.at(31), C1, BOB, &piggy(sub("c2")), "T2");
    let b = response(&a).body.as_ref().unwrap();
    assert_eq!(
        read(b.content_type, b.text.as_bytes()).unwrap().class(),
        Availability::Busy
    );
    let a = l.table.handle_timeout(l.at(31));
    let n = notifies(&a);
    assert_eq!(n.len(), 1, "only the first needs the change: {a:?}");
    assert_eq!(n[0].id, id("c1", "T1"));
}

#[test]
fn a_change_during_an_unanswered_notify_goes_with_its_answer() {
    let mut l = scheduled_lab();
    l.table.handle_subscribe(l.t0, C1, BOB, &sub("c1"), "T1");
    // Pending NOTIFY 1: the schedule's change is not a wake-up of its own.
    assert_eq!(l.table.poll_timeout(), Some(l.t0 + NOTIFY_TIMEOUT));
    assert!(l.table.handle_timeout(l.at(30)).is_empty());
    let a = l
        .table
        .handle_notify_response(l.at(31), &id("c1", "T1"), 1, 200);
    let n = notifies(&a);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].cseq, 2);
    assert_eq!(body_state(n[0]).class(), Availability::Busy);
}

#[test]
fn a_state_set_by_the_library_replaces_the_schedule() {
    let mut l = scheduled_lab();
    l.table
        .handle_subscribe(l.t0, C1, BOB, &piggy(sub("c1")), "T1");
    let mut dnd = PresenceState::of(Availability::DoNotDisturb);
    dnd.note = Some("presenting".into());
    let a = l.table.presence_changed(BOB, dnd.clone(), l.at(5));
    assert_eq!(notifies(&a)[0].state.as_ref(), Some(&dnd));
    assert_eq!(l.table.state_of(BOB, l.at(100)), dnd);
    l.table
        .handle_notify_response(l.at(6), &id("c1", "T1"), 2, 200);
    assert_eq!(l.table.poll_timeout(), Some(l.at(28800)));
    assert!(l.table.handle_timeout(l.at(95)).is_empty());
}

#[test]
fn users_default_to_available_and_match_case_insensitively() {
    let l = lab();
    assert_eq!(
        l.table.state_of("nobody@skype.lab", l.t0),
        PresenceState::default()
    );
    assert_eq!(
        l.table.state_of("Bob@Skype.Lab", l.t0).class(),
        Availability::Busy
    );
}

#[test]
fn removing_a_user_and_shutting_down_terminate_with_their_reasons() {
    let mut l = lab();
    l.table.set_user("carol@skype.lab", Schedule::default());
    l.table
        .handle_subscribe(l.t0, C1, BOB, &piggy(sub("c1")), "T1");
    l.table
        .handle_subscribe(l.t0, C1, "carol@skype.lab", &piggy(sub("c2")), "T2");
    let a = l.table.remove_user(BOB, l.at(1));
    let n = notifies(&a);
    assert_eq!(n.len(), 1);
    assert_eq!(
        header(&n[0].headers, "subscription-state"),
        Some("terminated;reason=noresource")
    );
    assert_eq!(ended(&a), vec![EndCause::UserRemoved]);
    let a = l.table.shutdown(l.at(2));
    assert_eq!(
        header(&notifies(&a)[0].headers, "subscription-state"),
        Some("terminated;reason=deactivated")
    );
    assert_eq!(ended(&a), vec![EndCause::Deactivated]);
    assert!(l.table.is_empty());
}

#[test]
fn the_event_id_is_echoed() {
    let mut l = lab();
    let a = l.table.handle_subscribe(
        l.t0,
        C1,
        BOB,
        &with(sub("c1"), |r| r.event = Some("presence;id=42".into())),
        "T1",
    );
    assert_eq!(
        header(&notifies(&a)[0].headers, "Event"),
        Some("presence;id=42")
    );
    assert_eq!(notifies(&a)[0].id.event_id.as_deref(), Some("42"));
}
