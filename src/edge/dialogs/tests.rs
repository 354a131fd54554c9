//! The emulated users' calls without a socket: requests and time go in, messages come out.

use super::*;
use crate::config::{Identity, PolicyConfig};

fn users(list: Vec<UserConfig>) -> Arc<Users> {
    Arc::new(Users {
        users: list,
        policy: Policy::new(&Identity::default(), &PolicyConfig::default(), false),
        fqdn: "sip.skype.lab".into(),
        agent: "RTC/6.0".into(),
    })
}

fn user(name: &str, action: UserAction, ring_ms: u64, hangup: Option<u64>) -> UserConfig {
    UserConfig {
        user: name.into(),
        action,
        ring_ms,
        hangup_after_ms: hangup,
        presence: Default::default(),
        im: Default::default(),
        contacts: Vec::new(),
    }
}

fn request(method: &str, to: &str, call_id: &str, extra: &str) -> Message {
    let raw = format!(
        "{method} {to} SIP/2.0\r\nVia: SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bK{call_id}{method}\r\nFrom: <sip:2000@acano.steven.lab>;tag=f1\r\nTo: <{to}>{extra}\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\nContact: <sip:2000@10.48.36.47:5061;transport=tls>\r\nRecord-Route: <sip:vcse.acano.steven.lab;lr>\r\nContent-Length: 0\r\n\r\n"
    );
    Message::parse(Bytes::from(raw)).unwrap()
}

fn setup(list: Vec<UserConfig>) -> (Dialogs, Responder) {
    let local: SocketAddr = "127.0.0.1:5061".parse().unwrap();
    let remote: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    (
        Dialogs::new(users(list), local),
        Responder::new(remote, 0x100, "RTC/6.0", "sip.skype.lab", false),
    )
}

/// Everything queued, parsed.
fn sent(d: &mut Dialogs) -> Vec<Message> {
    std::iter::from_fn(|| d.poll_transmit())
        .map(|b| Message::parse(b).unwrap())
        .collect()
}

fn statuses(d: &mut Dialogs) -> Vec<u16> {
    sent(d).iter().filter_map(Message::status_code).collect()
}

#[test]
fn a_call_rings_is_answered_when_its_timer_fires_and_the_edge_hangs_up() {
    let (mut d, mut out) = setup(vec![user("stejanss", UserAction::Answer, 50, Some(1000))]);
    let t0 = Instant::now();
    let invite = request("INVITE", "sip:stejanss@skype.lab", "c1", "");
    let a = d.handle_request(t0, invite, "INVITE", "c1".into(), &mut out);
    assert_eq!(a, Answer::sent(180));
    let ringing = sent(&mut d);
    assert_eq!(ringing[0].status_code(), Some(180));
    assert_eq!(
        crate::sip::Message::header_named(&ringing[0], "Contact").map(|h| text(&h.value())),
        Some("<sip:stejanss@sip.skype.lab:5061;transport=tls>".to_owned())
    );
    // Nothing before the ring time; the 200 with SDP at it.
    assert_eq!(d.poll_timeout(), Some(t0 + Duration::from_millis(50)));
    d.handle_timeout(t0 + Duration::from_millis(49), &mut out);
    assert!(d.poll_transmit().is_none());
    d.handle_timeout(t0 + Duration::from_millis(50), &mut out);
    let ok = sent(&mut d);
    assert_eq!(ok[0].status_code(), Some(200));
    assert!(text(ok[0].body()).starts_with("v=0\r\n"));
    // The same To tag as the 180.
    assert_eq!(ok[0].to().unwrap().tag(), ringing[0].to().unwrap().tag());
    d.handle_ack("c1");
    // The hang-up timer: a BYE from the user, toward the caller's Contact, routed by the Record-Route.
    assert_eq!(d.poll_timeout(), Some(t0 + Duration::from_millis(1050)));
    d.handle_timeout(t0 + Duration::from_millis(1050), &mut out);
    let bye = sent(&mut d);
    assert_eq!(bye[0].method(), Some(&b"BYE"[..]));
    assert_eq!(
        text(bye[0].request_uri_raw().unwrap()),
        "sip:2000@10.48.36.47:5061;transport=tls"
    );
    assert!(!d.holds("c1"));
    assert_eq!(d.poll_timeout(), None);
    // Its answer is taken, not answered.
    let answer = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch={}\r\nFrom: <sip:stejanss@skype.lab>;tag=x\r\nTo: <sip:2000@acano.steven.lab>;tag=f1\r\nCall-ID: c1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        branch(&bye[0])
    );
    d.handle_response(&Message::parse(Bytes::from(answer)).unwrap());
    assert!(d.byes.is_empty());
    assert!(d.poll_transmit().is_none());
}

#[test]
fn cancel_while_ringing_and_bye_of_an_unknown_call() {
    let (mut d, mut out) = setup(vec![user("ringer", UserAction::RingForever, 0, None)]);
    let t0 = Instant::now();
    let invite = request("INVITE", "sip:ringer@skype.lab", "c2", "");
    d.handle_request(t0, invite, "INVITE", "c2".into(), &mut out);
    assert_eq!(statuses(&mut d), [180]);
    // Ringing forever: no timer.
    assert_eq!(d.poll_timeout(), None);
    let cancel = request("CANCEL", "sip:ringer@skype.lab", "c2", "");
    assert_eq!(
        d.handle_request(t0, cancel, "CANCEL", "c2".into(), &mut out),
        Answer::sent(200)
    );
    assert_eq!(statuses(&mut d), [200, 487]);
    d.handle_ack("c2");
    assert!(!d.holds("c2"));
    let bye = request("BYE", "sip:ringer@skype.lab", "c9", ";tag=t");
    assert_eq!(
        d.handle_request(t0, bye, "BYE", "c9".into(), &mut out),
        Answer::sent(481)
    );
    assert_eq!(statuses(&mut d), [481]);
}

#[test]
fn busy_declining_and_unknown_users() {
    let (mut d, mut out) = setup(vec![
        user("busy", UserAction::Busy, 0, None),
        user("no", UserAction::Decline, 10, None),
    ]);
    let t0 = Instant::now();
    let busy = request("INVITE", "sip:busy@skype.lab", "c3", "");
    d.handle_request(t0, busy, "INVITE", "c3".into(), &mut out);
    assert_eq!(statuses(&mut d), [486]);
    assert!(d.holds("c3"));
    d.handle_ack("c3");
    assert!(!d.holds("c3"));
    let no = request("INVITE", "sip:no@skype.lab", "c4", "");
    d.handle_request(t0, no, "INVITE", "c4".into(), &mut out);
    d.handle_timeout(t0 + Duration::from_millis(10), &mut out);
    assert_eq!(statuses(&mut d), [180, 603]);
    let nobody = request("INVITE", "sip:nobody@skype.lab", "c5", "");
    let a = d.handle_request(t0, nobody, "INVITE", "c5".into(), &mut out);
    assert_eq!(a.status, Some(404));
    assert_eq!(a.verdict, VerdictKind::Accept);
    assert_eq!(
        a.explanation.as_deref(),
        Some(
            "sip:nobody@skype.lab is not one of the Edge's users (busy, no): the Edge answered 404 Not Found with ms-diagnostics 4005. Fix: call one of them, or add the user to [[users]] in the Edge configuration."
        )
    );
    let r = sent(&mut d);
    assert_eq!(
        r[0].header_named("ms-diagnostics")
            .map(|h| text(&h.value())),
        Some(
            "4005;reason=\"Destination URI either not enabled for SIP or does not exist\""
                .to_owned()
        )
    );
}

#[test]
fn a_connection_holds_at_most_max_dialogs_calls() {
    let (mut d, mut out) = setup(vec![user("ringer", UserAction::RingForever, 0, None)]);
    let t0 = Instant::now();
    for i in 0..MAX_DIALOGS {
        let id = format!("c{i}");
        let invite = request("INVITE", "sip:ringer@skype.lab", &id, "");
        d.handle_request(t0, invite, "INVITE", id, &mut out);
    }
    while d.poll_transmit().is_some() {}
    let one_more = request("INVITE", "sip:ringer@skype.lab", "last", "");
    let a = d.handle_request(t0, one_more, "INVITE", "last".into(), &mut out);
    assert_eq!(a.status, Some(503));
    assert_eq!(a.verdict, VerdictKind::Limit);
    let r = sent(&mut d);
    assert_eq!(
        r[0].header_named("Retry-After").map(|h| text(&h.value())),
        Some("5".to_owned())
    );
}

#[test]
fn other_methods_and_extensions() {
    let (mut d, mut out) = setup(Vec::new());
    let t0 = Instant::now();
    let options = request("OPTIONS", "sip:x@skype.lab", "o1", "");
    d.handle_request(t0, options, "OPTIONS", "o1".into(), &mut out);
    let r = sent(&mut d);
    assert_eq!(r[0].status_code(), Some(200));
    assert_eq!(
        r[0].header_named("Allow").map(|h| text(&h.value())),
        Some(EDGE_ALLOW.to_owned())
    );
    let subscribe = request("SUBSCRIBE", "sip:x@skype.lab", "s1", "");
    d.handle_request(t0, subscribe, "SUBSCRIBE", "s1".into(), &mut out);
    assert_eq!(statuses(&mut d), [405]);
    let benotify = request("BENOTIFY", "sip:x@skype.lab", "b1", "");
    assert_eq!(
        d.handle_request(t0, benotify, "BENOTIFY", "b1".into(), &mut out),
        Answer::none()
    );
    assert!(d.poll_transmit().is_none());
    let require = request("INFO", "sip:x@skype.lab", "i1", "\r\nRequire: 100rel");
    let a = d.handle_request(t0, require, "INFO", "i1".into(), &mut out);
    assert_eq!(a.status, Some(420));
    let r = sent(&mut d);
    assert_eq!(
        r[0].header_named("Unsupported").map(|h| text(&h.value())),
        Some("100rel".to_owned())
    );
}
