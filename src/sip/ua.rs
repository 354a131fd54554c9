//! User-agent helpers, the one place for them: random identifiers in each side's style (tags, branches, Call-IDs,
//! epids), the SDP offers and answers of the emulated parties, and reason phrases by status.
//!
//! Styles, as the seed traces show them: the Edge's To tags are 32 upper-case hex digits
//! (`C65A7B0A8766A5F1D386474833D07882`), an Expressway's tags 16 lower-case hex digits (`9fea3e7d70afd884`), its
//! Call-IDs UUIDs; a Skype client's tags and epids 10 lower-case hex digits. Every branch is `z9hG4bK` followed by
//! 32 hex digits.

/// Random lower-case hex of `bytes` bytes (twice as many digits).
pub fn hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// A To tag in the Edge's style: 32 upper-case hex digits.
pub fn edge_tag() -> String {
    hex(16).to_ascii_uppercase()
}

/// A tag in an Expressway's style: 16 lower-case hex digits.
pub fn expressway_tag() -> String {
    hex(8)
}

/// A tag in a Skype for Business client's style: 10 lower-case hex digits.
pub fn client_tag() -> String {
    hex(5)
}

/// A Skype for Business endpoint id (`epid=`): 10 lower-case hex digits.
pub fn epid() -> String {
    hex(5)
}

/// The random part of a Via branch, without the `z9hG4bK` magic cookie: 32 hex digits.
pub fn branch_id() -> String {
    hex(16)
}

/// A Via branch: the RFC 3261 magic cookie `z9hG4bK` and [`branch_id`].
pub fn branch() -> String {
    format!("z9hG4bK{}", branch_id())
}

/// A UUID-shaped identifier (8-4-4-4-12 hex digits): an Expressway's Call-ID and `proxy-call-id`.
pub fn uuid() -> String {
    let h = hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A Skype for Business client's Call-ID: 32 lower-case hex digits.
pub fn client_call_id() -> String {
    hex(16)
}

/// What the emulated Microsoft users behind the Edge support (the `Allow` header).
pub const EDGE_ALLOW: &str = "INVITE, ACK, CANCEL, OPTIONS, BYE, MESSAGE, INFO, NOTIFY, SERVICE, NEGOTIATE, BENOTIFY, SUBSCRIBE";
/// The option tags the Edge and its users support (the `Supported` header).
pub const EDGE_SUPPORTED: &str = "timer, ms-sender, ms-early-media, ms-dialog-route-set-update";

/// The Skype for Business client's audio offer, as the Edge relays it.
pub const CLIENT_SDP_OFFER: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=session\r\nc=IN IP4 127.0.0.1\r\nb=CT:99980\r\nt=0 0\r\nm=audio 50100 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n";

/// An Expressway's audio offer from `host` (SRTP, as in the seed trace).
pub fn expressway_sdp_offer(host: &str) -> String {
    format!(
        "v=0\r\no=tandberg 0 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nb=AS:6000\r\nt=0 0\r\n\
         m=audio 52700 RTP/SAVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:3P8Jd8wQ0SG8Q1BzP7qN3Q8JmZ3X0s3Ld2hWzq0b\r\na=sendrecv\r\n"
    )
}

/// A minimal SDP answer from the emulated Expressway (audio, PCMU), enough for the Edge to see a session.
pub const EXPRESSWAY_SDP_ANSWER: &str = "v=0\r\no=tandberg 0 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 50000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

/// 30 random bytes as 40 base64 characters: an SDES inline key+salt for AES_CM_128.
fn sdes_key() -> String {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..40)
        .map(|_| char::from(B64[usize::from(rand::random::<u8>() & 63)]))
        .collect()
}

/// The emulated Microsoft user's SDP answer to `offer` from `ip`: every offered m-line answered with its first
/// codec (plus telephone-event when offered), same transport, a fresh SRTP key when the offer carries crypto,
/// port 0 kept for refused streams. Without a usable offer, an audio offer of its own (RFC 3264 allows it in 200).
pub fn user_sdp_answer(offer: &[u8], ip: &str) -> String {
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

/// The standard reason phrase for a status code (RFC 3261 §21), for answers that give none; `Unknown` for a code
/// without one.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call Leg/Transaction Does Not Exist",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        _ => "Unknown",
    }
}

/// The reason phrase a Skype for Business Edge writes for `status`: RFC 3261's, except 504, which the Edge spells
/// `Server time-out` (the seed trace).
pub fn edge_reason_phrase(status: u16) -> &'static str {
    match status {
        504 => "Server time-out",
        other => reason_phrase(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_in_each_style() {
        let tag = edge_tag();
        assert_eq!(tag.len(), 32);
        assert!(
            tag.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        );
        assert_eq!(expressway_tag().len(), 16);
        assert_eq!(client_tag().len(), 10);
        assert_eq!(epid().len(), 10);
        assert!(branch().starts_with("z9hG4bK"));
        assert_eq!(branch().len(), 7 + 32);
        let u = uuid();
        assert_eq!(
            u.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert_eq!(client_call_id().len(), 32);
    }

    #[test]
    fn reason_phrases() {
        assert_eq!(reason_phrase(504), "Server Time-out");
        assert_eq!(edge_reason_phrase(504), "Server time-out");
        assert_eq!(edge_reason_phrase(403), "Forbidden");
        assert_eq!(reason_phrase(299), "Unknown");
    }

    #[test]
    fn answer_picks_first_codec_and_dtmf() {
        let offer = b"v=0\r\no=tandberg 0 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 52700 RTP/SAVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc\r\nm=video 0 RTP/SAVP 96\r\n";
        let a = user_sdp_answer(offer, "127.0.0.1");
        assert!(a.contains("m=audio 50000 RTP/SAVP 8 101\r\n"), "{a}");
        assert!(a.contains("a=rtpmap:101 telephone-event/8000"));
        assert!(a.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        assert!(a.contains("m=video 0 RTP/SAVP 96\r\n"));
    }
}
