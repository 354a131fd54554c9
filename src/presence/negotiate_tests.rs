//! Event, Accept, Expires, features and Subscription-State, every branch with exact values.

use super::*;

fn exp(values: &[&str]) -> Result<Expiry, Refusal> {
    let v: Vec<String> = values.iter().map(|s| (*s).to_owned()).collect();
    grant_expiry(&v, &ExpiryBounds::default())
}

#[test]
fn expiry_defaults_raises_lowers_and_unsubscribes() {
    assert_eq!(exp(&[]), Ok(Expiry::Granted(28800)));
    assert_eq!(exp(&["0"]), Ok(Expiry::Unsubscribe));
    assert_eq!(exp(&["1"]), Ok(Expiry::Granted(1200)), "raised, never 423");
    assert_eq!(exp(&["1199"]), Ok(Expiry::Granted(1200)));
    assert_eq!(exp(&["1200"]), Ok(Expiry::Granted(1200)));
    assert_eq!(exp(&["3600"]), Ok(Expiry::Granted(3600)));
    assert_eq!(exp(&["43200"]), Ok(Expiry::Granted(43200)));
    assert_eq!(exp(&["43201"]), Ok(Expiry::Granted(43200)));
    assert_eq!(
        exp(&["99999999999999999999999"]),
        Ok(Expiry::Granted(43200)),
        "saturates, then lowered"
    );
    assert_eq!(exp(&[" 600 "]), Ok(Expiry::Granted(1200)));
    assert_eq!(exp(&["3600", "3600"]), Ok(Expiry::Granted(3600)));
}

#[test]
fn malformed_expires_is_a_400_with_a_warning() {
    for bad in ["soon", "", "-1", "3600s", "1e3", "0x10"] {
        let r = exp(&[bad]).unwrap_err();
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(
            r.warning(),
            Some(format!(
                "malformed Expires: `{}` is not a number of seconds",
                bad.trim()
            ))
        );
    }
    let r = exp(&["3600", "60"]).unwrap_err();
    assert_eq!(
        r.warning().as_deref(),
        Some("malformed Expires: several Expires headers with different values")
    );
}

#[test]
fn configured_bounds_apply() {
    let b = ExpiryBounds {
        default_s: 60,
        min_s: 30,
        max_s: 90,
    };
    let g = |v: &[&str]| {
        let v: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
        grant_expiry(&v, &b)
    };
    assert_eq!(g(&[]), Ok(Expiry::Granted(60)));
    assert_eq!(g(&["10"]), Ok(Expiry::Granted(30)));
    assert_eq!(g(&["1000"]), Ok(Expiry::Granted(90)));
}

#[test]
fn the_presence_event_with_parameters() {
    assert_eq!(
        presence_event(Some("presence")),
        Ok(EventHeader {
            package: "presence".into(),
            id: None
        })
    );
    let e = presence_event(Some("Presence ; id=abc;foo")).unwrap();
    assert_eq!(e.id.as_deref(), Some("abc"));
    assert_eq!(e.notify_value(), "presence;id=abc");
    assert_eq!(
        presence_event(Some("presence")).unwrap().notify_value(),
        "presence"
    );
}

#[test]
fn another_package_is_489_with_allow_events() {
    for other in [
        "dialog",
        "presence.winfo",
        "vnd-microsoft-roaming-self",
        "message-summary",
    ] {
        let r = presence_event(Some(other)).unwrap_err();
        assert_eq!(
            r,
            Refusal::BadEvent {
                package: other.into()
            }
        );
        assert_eq!(r.status(), 489);
        assert_eq!(r.headers(), vec![("Allow-Events", "presence".to_owned())]);
    }
}

#[test]
fn a_missing_or_malformed_event_is_400() {
    let r = presence_event(None).unwrap_err();
    assert_eq!(
        r.warning().as_deref(),
        Some("malformed Event: the header is missing")
    );
    for bad in [
        "",
        "pres ence",
        "presence;=x",
        "presence;id=a b",
        "<presence>",
    ] {
        let r = presence_event(Some(bad)).unwrap_err();
        assert_eq!(r.status(), 400, "{bad}");
    }
    assert_eq!(
        presence_event(Some("presence;id=a b"))
            .unwrap_err()
            .warning()
            .as_deref(),
        Some("malformed Event: `presence;id=a b` has a malformed parameter")
    );
}

#[test]
fn accept_picks_the_edges_order() {
    let n = |a: &str| negotiate(Some(a));
    assert_eq!(
        n("application/pidf+xml, text/xml+msrtc.pidf, application/msrtc-event-categories+xml"),
        Ok(DocumentFormat::Categories)
    );
    assert_eq!(
        n("application/xpidf+xml, text/xml+msrtc.pidf, application/pidf+xml"),
        Ok(DocumentFormat::MsrtcPidf),
        "MS-PRES §4.11's federated subscriber"
    );
    assert_eq!(n("application/pidf+xml"), Ok(DocumentFormat::Pidf));
    assert_eq!(n("Application/PIDF+XML;q=0.5"), Ok(DocumentFormat::Pidf));
    assert_eq!(
        n("application/msrtc-event-categories+xml;q=0.1, application/pidf+xml;q=1"),
        Ok(DocumentFormat::Categories),
        "q does not reorder"
    );
    assert_eq!(
        n("application/msrtc-event-categories+xml;q=0, application/pidf+xml"),
        Ok(DocumentFormat::Pidf),
        "q=0 excludes"
    );
}

#[test]
fn no_accept_is_pidf_and_wildcards_only_reach_pidf() {
    assert_eq!(negotiate(None), Ok(DocumentFormat::Pidf));
    assert_eq!(negotiate(Some("*/*")), Ok(DocumentFormat::Pidf));
    assert_eq!(negotiate(Some("application/*")), Ok(DocumentFormat::Pidf));
    assert!(negotiate(Some("text/*")).is_err());
}

#[test]
fn nothing_acceptable_is_488_with_2165() {
    for accept in [
        "application/xpidf+xml",
        "",
        "application/rlmi+xml, multipart/related",
        "application/pidf+xml;q=0",
    ] {
        let r = negotiate(Some(accept)).unwrap_err();
        assert_eq!(
            r,
            Refusal::NotAcceptable {
                accept: accept.into()
            }
        );
        assert_eq!((r.status(), r.reason()), (488, "Not Acceptable Here"));
        assert_eq!(r.diagnostic().map(|d| d.code), Some(2165));
    }
}

#[test]
fn benotify_and_piggyback_from_the_option_tags() {
    let tags = |t: &[&str]| t.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        SubscriberFeatures::of(&tags(&["ms-benotify", "ms-piggyback-first-notify"]), &[]),
        SubscriberFeatures {
            benotify: true,
            piggyback: true
        }
    );
    assert_eq!(
        SubscriberFeatures::of(&[], &tags(&["MS-BENOTIFY"])),
        SubscriberFeatures {
            benotify: true,
            piggyback: false
        }
    );
    assert_eq!(
        SubscriberFeatures::of(&[], &tags(&["ms-piggyback-first-notify"])),
        SubscriberFeatures::default(),
        "piggyback is only a Supported tag"
    );
    assert_eq!(
        SubscriberFeatures::of(&tags(&["eventlist", "timer"]), &[]),
        SubscriberFeatures::default(),
        "a Cisco subscriber gets plain NOTIFY"
    );
}

#[test]
fn subscription_state_values() {
    assert_eq!(
        SubscriptionState::Active { expires: 3600 }.render(),
        "active;expires=3600"
    );
    assert_eq!(
        SubscriptionState::ended(EndReason::Timeout).render(),
        "terminated;reason=timeout"
    );
    assert_eq!(
        SubscriptionState::ended(EndReason::Noresource).render(),
        "terminated;reason=noresource"
    );
    assert_eq!(
        SubscriptionState::ended(EndReason::Deactivated).render(),
        "terminated;reason=deactivated"
    );
    assert_eq!(
        SubscriptionState::Terminated { reason: None }.render(),
        "terminated"
    );
    assert_eq!(
        SubscriptionState::Pending { expires: 5 }.render(),
        "pending;expires=5"
    );
    for s in [
        SubscriptionState::Active { expires: 29087 },
        SubscriptionState::Pending { expires: 1 },
        SubscriptionState::ended(EndReason::Timeout),
        SubscriptionState::Terminated { reason: None },
    ] {
        assert_eq!(SubscriptionState::parse(&s.render()), Some(s));
    }
    assert_eq!(
        SubscriptionState::parse("Active; expires = 10 ;x=y"),
        Some(SubscriptionState::Active { expires: 10 })
    );
    assert_eq!(SubscriptionState::parse("waiting"), None);
}
