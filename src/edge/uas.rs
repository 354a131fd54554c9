//! The emulated Microsoft users behind the Edge: who exists, what each does, and the SDP they answer with.
//!
//! Presence and IM come first (`conversations`): SUBSCRIBE, MESSAGE, an INVITE whose SDP is `m=message … sip`,
//! and INFO/BYE in an IM session never reach the classes below.
//!
//! Methods other than the call ones (documented choice, no Microsoft source says more):
//! - OPTIONS → 200 with Allow/Supported/Accept; INFO, NOTIFY, SERVICE, NEGOTIATE → 200;
//! - BENOTIFY is "best-effort NOTIFY" (MS-SIPRE): by definition never answered, so it is absorbed;
//! - PUBLISH, REFER, UPDATE, PRACK, REGISTER → 405 Method Not Allowed with Allow;
//! - anything else → 501 Not Implemented with Allow.
//!
//! Before a request reaches the users, two RFC 3261 checks (the Edge is both the proxy in front of the users
//! and, in edgesim, the users themselves):
//! - `Max-Forwards: 0` (§16.3 step 3): a request whose Request-URI names a user is one a real Edge would forward
//!   to that user's pool, so it gets `483 Too Many Hops`, before the federation rules. OPTIONS (which §16.3 lets
//!   the proxy answer itself) and requests for the Edge itself (no user part: `sip:skype.lab`,
//!   `sip:sip.skype.lab`) are answered as the final recipient.
//! - `Require` (§8.2.2.3), after the federation rules: an option tag outside `Supported` gets `420 Bad
//!   Extension` with `Unsupported` listing it. Ignored in ACK and CANCEL (as §8.2.2.3 says) and in BENOTIFY
//!   (never answered).
//!
//! Both checks are rules of the rulebook ([`rules::users`]); this module reads their facts from the message.
//!
//! Who answers: the Request-URI must be for the Edge (`Policy::serves_host`: its domain, its FQDN or the
//! address the request arrived on; the federation rules refuse anything else with 404 / 1005). A `[[users]]`
//! entry without `@domain` is that user in the Edge's domain; an entry with `@domain` answers only when that
//! domain is the Edge's. Without any `[[users]]`, every user part answers.

use crate::config::{UserAction, UserConfig};
use crate::rules::{self, Finding, Policy};
use crate::sip::{Message, Uri};

/// How a request method is handled once the federation rules let it through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MethodClass {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    /// Answered 200 (MESSAGE needs a known user).
    Ok200,
    /// Never answered.
    Absorb,
    /// 405 with Allow.
    NotAllowed,
    /// 501 with Allow.
    NotImplemented,
}

/// Classifies a method token.
pub(super) fn classify(method: &str) -> MethodClass {
    match method {
        "INVITE" => MethodClass::Invite,
        "ACK" => MethodClass::Ack,
        "BYE" => MethodClass::Bye,
        "CANCEL" => MethodClass::Cancel,
        "OPTIONS" => MethodClass::Options,
        "MESSAGE" | "INFO" | "NOTIFY" | "SERVICE" | "NEGOTIATE" => MethodClass::Ok200,
        "BENOTIFY" => MethodClass::Absorb,
        "SUBSCRIBE" | "PUBLISH" | "REFER" | "UPDATE" | "PRACK" | "REGISTER" => {
            MethodClass::NotAllowed
        }
        _ => MethodClass::NotImplemented,
    }
}

/// A `[[users]]` entry's user part and domain (`None` without `@domain`), without a `sip:`/`sips:` scheme.
pub(crate) fn user_entry(entry: &str) -> (&str, Option<&str>) {
    let e = entry.trim();
    let e = e
        .strip_prefix("sips:")
        .or_else(|| e.strip_prefix("sip:"))
        .unwrap_or(e);
    match e.split_once('@') {
        Some((u, d)) => (u, Some(d)),
        None => (e, None),
    }
}

/// Where the emulated user sends its requests in the dialog `invite` opened (UAS side): the first Contact of the
/// INVITE, else its From URI (RFC 3261 §12.1.1).
pub(super) fn remote_target(invite: &Message) -> Option<String> {
    invite
        .contacts()
        .ok()
        .and_then(|c| {
            c.into_iter().find_map(|c| match c {
                crate::sip::Contact::Addr(n) => Some(n.uri.as_str().to_string()),
                crate::sip::Contact::Star => None,
            })
        })
        .or_else(|| invite.from().ok().map(|f| f.uri.as_str().to_string()))
}

/// The user a Request-URI reaches (see the module documentation). An empty user list means "every user of
/// the Edge answers" (first run without configuration); otherwise an unknown user is `None` (404 / 4005).
pub(super) fn find_user(
    users: &[UserConfig],
    uri: &Uri,
    policy: &Policy,
    local_ip: Option<std::net::IpAddr>,
) -> Option<UserConfig> {
    let user = uri.user.as_deref().unwrap_or_default().to_ascii_lowercase();
    if user.is_empty() || !policy.serves_host(&uri.host(), local_ip) {
        return None;
    }
    if users.is_empty() {
        return Some(UserConfig {
            user,
            action: UserAction::Answer,
            ring_ms: 200,
            hangup_after_ms: None,
            presence: Default::default(),
            im: Default::default(),
            contacts: Vec::new(),
        });
    }
    users
        .iter()
        .find(|u| {
            let (wu, wd) = user_entry(&u.user);
            wu.eq_ignore_ascii_case(&user) && wd.is_none_or(|d| policy.serves_host(d, None))
        })
        .cloned()
}

/// RFC 3261 §16.3 step 3 for `m` ([`rules::users::too_many_hops`]): `Max-Forwards: 0` on a request for a user.
pub(super) fn hop_limit(m: &Message, method: &str) -> Option<Finding> {
    let uri = m.request_uri().ok();
    let names_a_user = uri
        .as_ref()
        .is_some_and(|u| u.user.as_deref().is_some_and(|u| !u.is_empty()));
    let max_forwards = m.max_forwards().ok().flatten().map(u32::from);
    let raw = String::from_utf8_lossy(m.request_uri_raw().unwrap_or_default()).into_owned();
    rules::users::too_many_hops(method, max_forwards, &raw, names_a_user)
}

/// RFC 3261 §8.2.2.3 for `m` ([`rules::users::unsupported_extensions`]): the `Require` tags it names.
pub(super) fn extension_refusal(m: &Message, method: &str) -> Option<Finding> {
    let values: Vec<String> = m
        .headers()
        .filter(|h| h.name.eq_ignore_ascii_case(b"Require"))
        .map(|h| String::from_utf8_lossy(&h.value()).into_owned())
        .collect();
    rules::users::unsupported_extensions(method, values.iter().flat_map(|v| v.split(',')))
}

/// The 404 / 4005 for a Request-URI none of `users` answers.
pub(super) fn unknown_user(request_uri: &str, users: &[UserConfig]) -> Finding {
    let known = users
        .iter()
        .map(|u| user_entry(&u.user).0.to_owned())
        .collect();
    rules::users::unknown_user(request_uri, known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_match_by_user_part_or_full_uri() {
        let users = vec![
            UserConfig {
                user: "stejanss".into(),
                action: UserAction::Answer,
                ring_ms: 0,
                hangup_after_ms: None,
                presence: Default::default(),
                im: Default::default(),
                contacts: Vec::new(),
            },
            UserConfig {
                user: "sip:busy@skype.lab".into(),
                action: UserAction::Busy,
                ring_ms: 0,
                hangup_after_ms: None,
                presence: Default::default(),
                im: Default::default(),
                contacts: Vec::new(),
            },
        ];
        let u = |s: &str| Uri::parse(s.as_bytes()).unwrap();
        let p = Policy::new(
            &crate::config::Identity::default(),
            &crate::config::PolicyConfig::default(),
            false,
        );
        let find = |users: &[UserConfig], uri: &str| find_user(users, &u(uri), &p, None);
        assert!(find(&users, "sip:SteJanss@skype.lab").is_some());
        assert_eq!(
            find(&users, "sip:busy@skype.lab").map(|u| u.action),
            Some(UserAction::Busy)
        );
        assert!(find(&users, "sip:busy@other.lab").is_none());
        assert!(find(&[], "sip:x@skype.lab").is_some());
        // Another domain never reaches a user, with or without a user list (issue 11 item 26).
        assert!(find(&users, "sip:stejanss@evil.lab").is_none());
        assert!(find(&[], "sip:x@evil.lab").is_none());
        // The Edge's FQDN (its Contact) is the Edge too; a user without a user part is nobody.
        assert!(find(&users, "sip:stejanss@sip.skype.lab").is_some());
        assert!(find(&users, "sip:busy@sip.skype.lab").is_some());
        assert!(find(&[], "sip:skype.lab").is_none());
        assert_eq!(classify("BENOTIFY"), MethodClass::Absorb);
        assert_eq!(classify("FOO"), MethodClass::NotImplemented);
        assert_eq!(
            user_entry(" sip:busy@skype.lab"),
            ("busy", Some("skype.lab"))
        );
        assert_eq!(user_entry("stejanss"), ("stejanss", None));
    }

    fn msg(extra: &str) -> Message {
        let raw = format!(
            "INVITE sip:stejanss@skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:stejanss@skype.lab>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        Message::parse(bytes::Bytes::from(raw)).unwrap()
    }

    #[test]
    fn require_and_max_forwards() {
        let m = msg("Require: timer, 100rel\r\nRequire: Foo\r\n");
        let tags = |m: &Message, method: &str| match extension_refusal(m, method) {
            Some(Finding::BadExtension { tags }) => tags,
            _ => Vec::new(),
        };
        assert_eq!(tags(&m, "INVITE"), vec!["100rel", "Foo"]);
        assert!(tags(&m, "CANCEL").is_empty());
        assert!(tags(&msg("Require: ms-sender\r\n"), "INVITE").is_empty());
        assert_eq!(
            rules::users::unsupported_extensions("INVITE", ["100rel"])
                .unwrap()
                .explain()
                .to_string(),
            "The request requires 100rel (Require), which the Edge does not support (Supported: timer, ms-sender, ms-early-media, ms-dialog-route-set-update): the Edge answered 420 Bad Extension with Unsupported: 100rel. Fix: on the peer, stop requiring 100rel toward Microsoft federation."
        );
        let too_many_hops = |m: &Message, method: &str| hop_limit(m, method).is_some();
        assert!(too_many_hops(&msg("Max-Forwards: 0\r\n"), "INVITE"));
        assert!(!too_many_hops(&msg("Max-Forwards: 0\r\n"), "OPTIONS"));
        assert!(!too_many_hops(&msg("Max-Forwards: 1\r\n"), "INVITE"));
        assert!(!too_many_hops(&msg(""), "INVITE"));
        let to_edge = Message::parse(bytes::Bytes::from_static(
            b"MESSAGE sip:skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:skype.lab>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 0\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap();
        assert!(!too_many_hops(&to_edge, "MESSAGE"));
        assert_eq!(
            hop_limit(&msg("Max-Forwards: 0\r\n"), "INVITE")
                .unwrap()
                .explain()
                .to_string(),
            "The request for sip:stejanss@skype.lab arrived with Max-Forwards: 0, so the Edge may not forward it to the user: the Edge answered 483 Too Many Hops. Fix: look for a routing loop between the peer and the hops before it (search rules, zones), or a hop that lowers Max-Forwards too far."
        );
    }
}
