//! Instant messages with the users behind the Edge, as a socket-free core: session-mode IM (an INVITE with
//! `m=message … sip null`, the first message embedded in `ms-text-format`), in-dialog MESSAGE and INFO
//! typing, page-mode MESSAGE, and each user's reply behaviour. The Edge (inbound) and `call --im` (outbound)
//! wire it to messages.
//!
//! - [`sdp`]: recognising the IM offer, the answer and the offer SDPs.
//! - [`message`]: decoding the embedded first message, MESSAGE bodies and INFO typing notices (bounded; bad
//!   input is an [`ImError`] answered 400 with a Warning).
//! - [`behaviour`]: `echo`, `silent` or a fixed reply.
//!
//! Wire facts and sources: `shared/notes/presence-im.md` (SIPE `sipe-im.c`, `sipe-incoming.c`; a captured SfB
//! INVITE).

pub mod behaviour;
pub mod message;
pub mod sdp;

pub use behaviour::{Behaviour, Reply};
pub use message::{ImError, ImMessage, Info, Typing};
pub use sdp::MessageMedia;

use crate::sip::Message;

/// The Supported tags of a Skype for Business IM INVITE (notes: a captured SfB INVITE).
pub const INVITE_SUPPORTED: &str = "ms-embedded-first-message, ms-delayed-accept, ms-renders-gif, ms-renders-mime-alternative, ms-dialog-route-set-update";

/// What the Edge answers a page-mode MESSAGE (outside a dialog) with, by `im.page_mode`. RFC 3428 says 200;
/// what a real SfB does is not settled, so it is a switch; the refusal (403 with a Warning) is synthetic.
pub fn page_mode_answer(enabled: bool) -> (u16, &'static str, Option<&'static str>) {
    if enabled {
        (200, "OK", None)
    } else {
        (
            403,
            "Forbidden",
            Some(
                "page-mode MESSAGE is switched off (im.page_mode = false); use a session (INVITE)",
            ),
        )
    }
}

/// A session-mode IM INVITE, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImInvite {
    /// The offer's IM media line.
    pub media: MessageMedia,
    /// The first message (`ms-text-format` with `ms-body`), if any.
    pub first: Option<ImMessage>,
    /// The `ms-im-format` header as sent (a formatted copy of the first message; recorded, not decoded).
    pub im_format: Option<String>,
    /// `Ms-Conversation-ID`, if any.
    pub conversation_id: Option<String>,
}

fn header(m: &Message, name: &str) -> Option<String> {
    m.header_named(name)
        .map(|h| String::from_utf8_lossy(&h.value()).trim().to_owned())
}

impl ImInvite {
    /// The IM session an INVITE opens: `Ok(None)` when its SDP is not an IM offer (a call); an error when the
    /// embedded first message is malformed or over `limit` bytes.
    pub fn from_message(m: &Message, limit: usize) -> Result<Option<Self>, ImError> {
        let Some(media) = sdp::message_media(m.body()) else {
            return Ok(None);
        };
        let first = match header(m, "ms-text-format") {
            Some(v) => message::embedded_first_message(&v, limit)?,
            None => None,
        };
        Ok(Some(ImInvite {
            media,
            first,
            im_format: header(m, "ms-im-format"),
            conversation_id: header(m, "Ms-Conversation-ID"),
        }))
    }

    /// The 200's headers besides the SDP's Content-Type: `Supported: ms-text-format` when the first message
    /// was taken (SIPE: "accepts received message").
    pub fn answer_headers(&self) -> Vec<(&'static str, String)> {
        match self.first {
            Some(_) => vec![("Supported", "ms-text-format".into())],
            None => Vec::new(),
        }
    }
}

/// The headers of an IM INVITE (`call --im`), besides the SDP's Content-Type: Supported, the conversation id,
/// keep-alive, and the first message when there is one.
pub fn invite_headers(first: Option<&str>, conversation_id: &str) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("Supported", INVITE_SUPPORTED.to_owned()),
        ("Ms-Conversation-ID", conversation_id.to_owned()),
        ("ms-keep-alive", "UAC;hop-hop=yes".to_owned()),
    ];
    if let Some(t) = first {
        h.push(("ms-text-format", message::ms_text_format(t)));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn invite(extra: &str, sdp: &str) -> Message {
        Message::parse(Bytes::from(format!(
            "INVITE sip:stejanss@skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\n\
             From: <sip:a@steven.lab>;tag=1\r\nTo: <sip:stejanss@skype.lab>\r\nCall-ID: im1\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:a@h>\r\n{extra}Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )))
        .unwrap()
    }

    #[test]
    fn a_sfb_im_invite_with_its_first_message() {
        let h: String = invite_headers(Some("Hello, Bob"), "42")
            .iter()
            .map(|(n, v)| format!("{n}: {v}\r\n"))
            .collect::<String>()
            + "ms-im-format: text/rtf; charset=UTF-8; ms-body=e1xydGYx\r\n";
        let m = invite(&h, &sdp::offer("10.0.0.1", 5061));
        let i = ImInvite::from_message(&m, 1024).unwrap().unwrap();
        assert_eq!(i.first, Some(ImMessage::plain("Hello, Bob")));
        assert_eq!(
            i.im_format.as_deref(),
            Some("text/rtf; charset=UTF-8; ms-body=e1xydGYx")
        );
        assert_eq!(i.conversation_id.as_deref(), Some("42"));
        assert_eq!(
            i.answer_headers(),
            vec![("Supported", "ms-text-format".to_owned())]
        );
    }

    #[test]
    fn without_a_first_message_nothing_is_said_taken() {
        let m = invite("", &sdp::offer("10.0.0.1", 5061));
        let i = ImInvite::from_message(&m, 1024).unwrap().unwrap();
        assert_eq!(i.first, None);
        assert!(i.answer_headers().is_empty());
    }

    #[test]
    fn a_call_is_not_an_im_and_a_bad_first_message_is_an_error() {
        let call = invite("", "v=0\r\nm=audio 4000 RTP/AVP 0\r\n");
        assert_eq!(ImInvite::from_message(&call, 1024), Ok(None));
        let bad = invite(
            "ms-text-format: text/plain; charset=UTF-8; ms-body=!!!\r\n",
            &sdp::offer("10.0.0.1", 5061),
        );
        assert_eq!(ImInvite::from_message(&bad, 1024), Err(ImError::BadBase64));
    }

    #[test]
    fn page_mode_is_a_switch() {
        assert_eq!(page_mode_answer(true), (200, "OK", None));
        let (code, reason, warning) = page_mode_answer(false);
        assert_eq!((code, reason), (403, "Forbidden"));
        assert!(warning.unwrap().contains("im.page_mode = false"));
    }
}
