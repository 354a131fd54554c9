//! The emulated Microsoft users behind the Edge: who exists, what each does, and the SDP they answer with.
//!
//! Methods other than the call ones (documented choice, no Microsoft source says more):
//! - OPTIONS → 200 with Allow/Supported/Accept; MESSAGE, INFO, NOTIFY, SERVICE, NEGOTIATE → 200;
//! - BENOTIFY is "best-effort NOTIFY" (MS-SIPRE): by definition never answered, so it is absorbed;
//! - SUBSCRIBE, PUBLISH, REFER, UPDATE, PRACK, REGISTER → 405 Method Not Allowed with Allow;
//! - anything else → 501 Not Implemented with Allow.

use crate::config::{UserAction, UserConfig};
use crate::sip::Uri;

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

/// The user a Request-URI reaches. An empty user list means "everyone in the Edge domain answers"
/// (first run without configuration); otherwise an unknown user is `None` (404 / 4005).
pub(super) fn find_user(users: &[UserConfig], uri: &Uri, edge_domain: &str) -> Option<UserConfig> {
    let user = uri.user.as_deref().unwrap_or_default().to_ascii_lowercase();
    let host = uri.host();
    if users.is_empty() {
        return (host.eq_ignore_ascii_case(edge_domain) && !user.is_empty()).then(|| UserConfig {
            user: user.clone(),
            action: UserAction::Answer,
            ring_ms: 200,
            hangup_after_ms: None,
        });
    }
    users
        .iter()
        .find(|u| {
            let want = u.user.trim();
            let want = want
                .strip_prefix("sips:")
                .or_else(|| want.strip_prefix("sip:"))
                .unwrap_or(want);
            match want.split_once('@') {
                Some((wu, wh)) => wu.eq_ignore_ascii_case(&user) && wh.eq_ignore_ascii_case(&host),
                None => want.eq_ignore_ascii_case(&user),
            }
        })
        .cloned()
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
            },
            UserConfig {
                user: "sip:busy@skype.lab".into(),
                action: UserAction::Busy,
                ring_ms: 0,
                hangup_after_ms: None,
            },
        ];
        let u = |s: &str| Uri::parse(s.as_bytes()).unwrap();
        assert!(find_user(&users, &u("sip:SteJanss@skype.lab"), "skype.lab").is_some());
        assert_eq!(
            find_user(&users, &u("sip:busy@skype.lab"), "skype.lab").map(|u| u.action),
            Some(UserAction::Busy)
        );
        assert!(find_user(&users, &u("sip:busy@other.lab"), "skype.lab").is_none());
        assert!(find_user(&[], &u("sip:x@skype.lab"), "skype.lab").is_some());
        assert_eq!(classify("BENOTIFY"), MethodClass::Absorb);
        assert_eq!(classify("FOO"), MethodClass::NotImplemented);
    }
}
