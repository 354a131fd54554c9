//! The emulated Microsoft users behind the Edge: who exists, what each does, and the SDP they answer with.
//!
//! Methods other than the call ones (documented choice, no Microsoft source says more):
//! - OPTIONS → 200 with Allow/Supported/Accept; MESSAGE, INFO, NOTIFY, SERVICE, NEGOTIATE → 200;
//! - BENOTIFY is "best-effort NOTIFY" (MS-SIPRE): by definition never answered, so it is absorbed;
//! - SUBSCRIBE, PUBLISH, REFER, UPDATE, PRACK, REGISTER → 405 Method Not Allowed with Allow;
//! - anything else → 501 Not Implemented with Allow.
//!
//! Before a request reaches the users, two RFC 3261 checks (the Edge is both the proxy in front of the users
//! and, in edgesim, the users themselves):
//! - `Max-Forwards: 0` (§16.3 step 3): a request whose Request-URI names a user is one a real Edge would forward
//!   to that user's pool, so it gets `483 Too Many Hops`, before the federation rules. OPTIONS (which §16.3 lets
//!   the proxy answer itself) and requests for the Edge itself (no user part: `sip:skype.lab`,
//!   `sip:sip.skype.lab`) are answered as the final recipient.
//! - `Require` (§8.2.2.3), after the federation rules: an option tag outside [`SUPPORTED`] gets `420 Bad
//!   Extension` with `Unsupported` listing it. Ignored in ACK and CANCEL (as §8.2.2.3 says) and in BENOTIFY
//!   (never answered).
//!
//! Who answers: the Request-URI must be for the Edge (`Policy::serves_host`: its domain, its FQDN or the
//! address the request arrived on; the federation rules refuse anything else with 404 / 1005). A `[[users]]`
//! entry without `@domain` is that user in the Edge's domain; an entry with `@domain` answers only when that
//! domain is the Edge's. Without any `[[users]]`, every user part answers.

use crate::config::{UserAction, UserConfig};
use crate::policy::Policy;
use crate::sip::{Message, Uri};

/// What the emulated users support (the `Allow` header).
pub(super) const ALLOW: &str =
    "INVITE, ACK, CANCEL, OPTIONS, BYE, MESSAGE, INFO, NOTIFY, SERVICE, NEGOTIATE, BENOTIFY";
/// The `Supported` header.
pub(super) const SUPPORTED: &str = "timer, ms-sender, ms-early-media, ms-dialog-route-set-update";

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

/// RFC 3261 §16.3 step 3: a request the Edge would forward to a user's pool (see the module documentation)
/// that has no hop left.
pub(super) fn too_many_hops(m: &Message, method: &str) -> bool {
    if method == "OPTIONS" || method == "ACK" || !matches!(m.max_forwards(), Ok(Some(0))) {
        return false;
    }
    m.request_uri()
        .ok()
        .is_some_and(|u| u.user.as_deref().is_some_and(|u| !u.is_empty()))
}

/// RFC 3261 §8.2.2.3: the option tags of `Require` that the Edge does not support, in order, as written.
pub(super) fn unsupported_extensions(m: &Message, method: &str) -> Vec<String> {
    if matches!(method, "ACK" | "CANCEL" | "BENOTIFY") {
        return Vec::new();
    }
    let supported: Vec<&str> = SUPPORTED.split(',').map(str::trim).collect();
    m.headers()
        .filter(|h| h.name.eq_ignore_ascii_case(b"Require"))
        .flat_map(|h| {
            String::from_utf8_lossy(&h.value())
                .split(',')
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|t| !supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
        .collect()
}

/// The explanation of a 420.
pub(super) fn bad_extension_explanation(tags: &[String]) -> String {
    let list = tags.join(", ");
    format!(
        "The request requires {list} (Require), which the Edge does not support (Supported: {SUPPORTED}): the Edge answered 420 Bad Extension with Unsupported: {list}. Fix: on the peer, stop requiring {list} toward Microsoft federation."
    )
}

/// The explanation of a 483.
pub(super) fn too_many_hops_explanation(request_uri: &str) -> String {
    format!(
        "The request for {request_uri} arrived with Max-Forwards: 0, so the Edge may not forward it to the user: the Edge answered 483 Too Many Hops. Fix: look for a routing loop between the peer and the hops before it (search rules, zones), or a hop that lowers Max-Forwards too far."
    )
}

/// The explanation of a 404 for a user the Edge does not have.
pub(super) fn unknown_user_explanation(request_uri: &str, users: &[UserConfig]) -> String {
    if users.is_empty() {
        return format!(
            "{request_uri} names no user: the Edge answered 404 Not Found with ms-diagnostics 4005. Fix: address a user (sip:user@<the Edge's domain>)."
        );
    }
    let known: Vec<&str> = users.iter().map(|u| user_entry(&u.user).0).collect();
    format!(
        "{request_uri} is not one of the Edge's users ({}): the Edge answered 404 Not Found with ms-diagnostics 4005. Fix: call one of them, or add the user to [[users]] in the Edge configuration.",
        known.join(", ")
    )
}

/// Random lower-case hex of `n` bytes.
pub(super) fn hex(n: usize) -> String {
    (0..n)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// A To tag in the Edge's style (32 upper-case hex digits).
pub(super) fn to_tag() -> String {
    hex(16).to_ascii_uppercase()
}

/// 30 random bytes as 40 base64 characters: an SDES inline key+salt for AES_CM_128.
fn sdes_key() -> String {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..40)
        .map(|_| char::from(B64[usize::from(rand::random::<u8>() & 63)]))
        .collect()
}

/// An SDP answer to `offer` from `ip`: every offered m-line answered with its first codec (plus
/// telephone-event when offered), same transport, a fresh SRTP key when the offer carries crypto, port 0
/// kept for refused streams. Without a usable offer, an audio offer of our own (RFC 3264 allows it in 200).
pub(super) fn sdp_answer(offer: &[u8], ip: &str) -> String {
    let offer = String::from_utf8_lossy(offer);
    let mut out = format!(
        "v=0\r\no=- 0 1 IN IP4 {ip}\r\ns=session\r\nc=IN IP4 {ip}\r\nb=CT:99980\r\nt=0 0\r\n"
    );
    let mut media = 0u16;
    // Split the offer into media sections: lines after each m=.
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in offer.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            sections.push((m.to_string(), Vec::new()));
        } else if let Some((_, attrs)) = sections.last_mut() {
            attrs.push(line.to_string());
        }
    }
    for (m, attrs) in sections.iter().take(8) {
        let fields: Vec<&str> = m.split_whitespace().collect();
        let [kind, port, proto, formats @ ..] = fields.as_slice() else {
            continue;
        };
        if *port == "0" || formats.is_empty() {
            out.push_str(&format!("m={kind} 0 {proto} {}\r\n", formats.join(" ")));
            continue;
        }
        let rtpmap = |pt: &str| {
            attrs
                .iter()
                .find(|a| a.starts_with(&format!("a=rtpmap:{pt} ")))
                .cloned()
        };
        let mut chosen = vec![formats[0].to_string()];
        let dtmf = formats.iter().find(|pt| {
            rtpmap(pt).is_some_and(|a| a.to_ascii_lowercase().contains("telephone-event"))
        });
        if let Some(d) = dtmf
            && *d != formats[0]
        {
            chosen.push((*d).to_string());
        }
        out.push_str(&format!(
            "m={kind} {} {proto} {}\r\n",
            50000 + media * 2,
            chosen.join(" ")
        ));
        for pt in &chosen {
            if let Some(a) = rtpmap(pt) {
                out.push_str(&a);
                out.push_str("\r\n");
            }
        }
        if let Some(crypto) = attrs.iter().find(|a| a.starts_with("a=crypto:")) {
            let mut parts = crypto.split_whitespace();
            let tag = parts.next().unwrap_or("a=crypto:1");
            let suite = parts.next().unwrap_or("AES_CM_128_HMAC_SHA1_80");
            out.push_str(&format!("{tag} {suite} inline:{}\r\n", sdes_key()));
        }
        out.push_str("a=sendrecv\r\n");
        media += 1;
    }
    if media == 0 && sections.is_empty() {
        out.push_str("m=audio 50000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_picks_first_codec_and_dtmf() {
        let offer = b"v=0\r\no=tandberg 0 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 52700 RTP/SAVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc\r\nm=video 0 RTP/SAVP 96\r\n";
        let a = sdp_answer(offer, "127.0.0.1");
        assert!(a.contains("m=audio 50000 RTP/SAVP 8 101\r\n"), "{a}");
        assert!(a.contains("a=rtpmap:101 telephone-event/8000"));
        assert!(a.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        assert!(a.contains("m=video 0 RTP/SAVP 96\r\n"));
    }

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
            },
            UserConfig {
                user: "sip:busy@skype.lab".into(),
                action: UserAction::Busy,
                ring_ms: 0,
                hangup_after_ms: None,
                presence: Default::default(),
                im: Default::default(),
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
        assert_eq!(unsupported_extensions(&m, "INVITE"), vec!["100rel", "Foo"]);
        assert!(unsupported_extensions(&m, "CANCEL").is_empty());
        assert!(unsupported_extensions(&msg("Require: ms-sender\r\n"), "INVITE").is_empty());
        assert_eq!(
            bad_extension_explanation(&["100rel".into()]),
            "The request requires 100rel (Require), which the Edge does not support (Supported: timer, ms-sender, ms-early-media, ms-dialog-route-set-update): the Edge answered 420 Bad Extension with Unsupported: 100rel. Fix: on the peer, stop requiring 100rel toward Microsoft federation."
        );
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
            too_many_hops_explanation("sip:stejanss@skype.lab"),
            "The request for sip:stejanss@skype.lab arrived with Max-Forwards: 0, so the Edge may not forward it to the user: the Edge answered 483 Too Many Hops. Fix: look for a routing loop between the peer and the hops before it (search rules, zones), or a hop that lowers Max-Forwards too far."
        );
    }
}
