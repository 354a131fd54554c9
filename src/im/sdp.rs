//! The SDP of session-mode IM (SIPE `sipe-im.c`, `sipe-incoming.c`; a captured SfB INVITE): the offer
//! `m=message <port> sip null` with `a=accept-types:…`, the answer `m=message <port> sip sip:<user@domain>`.
//!
//! An INVITE is an IM session when its first media line is `message` (or OCS 2005's `x-ms-message`) with the
//! `sip` protocol (edgesim's reading; an audio or video INVITE is a call). Lines may end in CRLF or LF.

/// The accept-types a Skype for Business client offers (notes: presence-im.md).
pub const OFFER_ACCEPT_TYPES: &str = "text/plain multipart/alternative image/gif text/rtf application/x-ms-ink application/ms-imdn+xml text/x-msmsgsinvite";
/// The accept-types the emulated users answer with: plain text only.
pub const ANSWER_ACCEPT_TYPES: &str = "text/plain";

/// The IM media line of an offer or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMedia {
    /// `message` or `x-ms-message`.
    pub media: String,
    /// The port.
    pub port: u16,
    /// The target after `sip` (`null` in an offer, the answerer's URI in an answer).
    pub target: String,
    /// The `a=accept-types` list that applies (the media's, else the session's).
    pub accept_types: Vec<String>,
}

fn lines(sdp: &[u8]) -> impl Iterator<Item = &str> {
    sdp.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter_map(|l| std::str::from_utf8(l).ok())
}

/// The IM media of an SDP whose first media line is `message`/`x-ms-message` over `sip`; `None` otherwise
/// (a call, no SDP, or garbage).
pub fn message_media(sdp: &[u8]) -> Option<MessageMedia> {
    let mut session_types = Vec::new();
    let mut found: Option<MessageMedia> = None;
    for line in lines(sdp) {
        if let Some(m) = line.strip_prefix("m=") {
            if found.is_some() {
                break;
            }
            let f: Vec<&str> = m.split_ascii_whitespace().collect();
            let [media, port, proto, target, ..] = f[..] else {
                return None;
            };
            let media_ok =
                media.eq_ignore_ascii_case("message") || media.eq_ignore_ascii_case("x-ms-message");
            if !media_ok || !proto.eq_ignore_ascii_case("sip") {
                return None;
            }
            found = Some(MessageMedia {
                media: media.to_ascii_lowercase(),
                port: port.parse().ok()?,
                target: target.to_owned(),
                accept_types: Vec::new(),
            });
        } else if let Some(types) = line.strip_prefix("a=accept-types:") {
            let list = types.split_ascii_whitespace().map(str::to_owned).collect();
            match &mut found {
                Some(m) => m.accept_types = list,
                None => session_types = list,
            }
        }
    }
    let mut m = found?;
    if m.accept_types.is_empty() {
        m.accept_types = session_types;
    }
    Some(m)
}

/// The address type of `ip` (`IP6` for an IPv6 address).
fn addr_type(ip: &str) -> &'static str {
    if ip.contains(':') { "IP6" } else { "IP4" }
}

/// The 200's SDP: the user at `aor` (`user@domain`) takes plain text on `ip`:`port`.
pub fn answer(ip: &str, port: u16, aor: &str) -> String {
    let t = addr_type(ip);
    format!(
        "v=0\r\no=- 0 0 IN {t} {ip}\r\ns=session\r\nc=IN {t} {ip}\r\nt=0 0\r\n\
         m=message {port} sip sip:{aor}\r\na=accept-types:{ANSWER_ACCEPT_TYPES}\r\n"
    )
}

/// An INVITE's SDP offering an IM session on `ip`:`port`, as a Skype for Business client does.
pub fn offer(ip: &str, port: u16) -> String {
    let t = addr_type(ip);
    format!(
        "v=0\r\no=- 0 0 IN {t} {ip}\r\ns=session\r\nc=IN {t} {ip}\r\nt=0 0\r\n\
         m=message {port} sip null\r\na=accept-types:{OFFER_ACCEPT_TYPES}\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sfb_offer_is_an_im_session() {
        let m = message_media(offer("10.0.0.5", 5061).as_bytes()).unwrap();
        assert_eq!(m.media, "message");
        assert_eq!(m.port, 5061);
        assert_eq!(m.target, "null");
        assert_eq!(m.accept_types.len(), 7);
        assert_eq!(m.accept_types[0], "text/plain");
    }

    #[test]
    fn the_answer_names_the_user_and_plain_text() {
        let a = answer("127.0.0.1", 5061, "stejanss@skype.lab");
        assert_eq!(
            a,
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=session\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=message 5061 sip sip:stejanss@skype.lab\r\na=accept-types:text/plain\r\n"
        );
        let m = message_media(a.as_bytes()).unwrap();
        assert_eq!(m.target, "sip:stejanss@skype.lab");
        assert_eq!(m.accept_types, vec!["text/plain"]);
        assert!(answer("::1", 5061, "a@b").contains("c=IN IP6 ::1\r\n"));
    }

    #[test]
    fn ocs2005_media_lf_lines_and_session_accept_types() {
        let sdp = b"v=0\no=- 0 0 IN IP4 h\na=accept-types:text/plain text/rtf\nm=x-ms-message 5060 sip null\n";
        let m = message_media(sdp).unwrap();
        assert_eq!(m.media, "x-ms-message");
        assert_eq!(m.accept_types, vec!["text/plain", "text/rtf"]);
    }

    #[test]
    fn calls_and_garbage_are_not_im() {
        assert_eq!(
            message_media(b"v=0\r\nm=audio 50000 RTP/AVP 0\r\nm=message 1 sip null\r\n"),
            None
        );
        assert_eq!(message_media(b"m=message 99999 sip null\r\n"), None);
        assert_eq!(message_media(b"m=message 5060 tcp null\r\n"), None);
        assert_eq!(message_media(b"m=message 5060\r\n"), None);
        assert_eq!(message_media(b""), None);
        assert_eq!(message_media(&[0xff, 0xfe, b'\n']), None);
    }
}
