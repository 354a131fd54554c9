//! The facts of a SUBSCRIBE the subscription table needs, as plain data: taken from a parsed [`Message`]
//! ([`SubscribeRequest::from_message`]) or built directly in tests.

use crate::sip::{Contact, HeaderKind, Message, long_name};

use super::refusal::{Refusal, quote};

/// A SUBSCRIBE, reduced to what the presence core reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscribeRequest {
    /// Call-ID.
    pub call_id: String,
    /// The From value as received (the subscriber, with its tag): the To of every NOTIFY.
    pub from: String,
    /// The From tag.
    pub from_tag: String,
    /// The To value as received: with the Edge's tag added, the From of every NOTIFY.
    pub to: String,
    /// The To tag: `Some` for a refresh or unsubscribe inside the dialog.
    pub to_tag: Option<String>,
    /// The Contact URI (the remote target NOTIFYs go to).
    pub contact: Option<String>,
    /// The Record-Route values, in order (the NOTIFYs' Route set).
    pub record_route: Vec<String>,
    /// The Event header value.
    pub event: Option<String>,
    /// Every Accept header value joined with `, `; `None` without any Accept header.
    pub accept: Option<String>,
    /// Every Expires header value.
    pub expires: Vec<String>,
    /// The option tags of every Supported header.
    pub supported: Vec<String>,
    /// The option tags of every Proxy-Require header.
    pub proxy_require: Vec<String>,
}

/// Every value of the headers named `name` (compact forms included), unfolded and trimmed.
fn header_values(m: &Message, name: &str) -> Vec<String> {
    let want = long_name(name.as_bytes());
    m.headers()
        .filter(|h| long_name(h.name).eq_ignore_ascii_case(&want))
        .map(|h| String::from_utf8_lossy(&h.value()).trim().to_owned())
        .collect()
}

/// The comma-separated option tags of the headers named `name`.
fn tags(m: &Message, name: &str) -> Vec<String> {
    header_values(m, name)
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

fn bad(header: &'static str, problem: &str) -> Refusal {
    Refusal::BadRequest {
        header,
        problem: problem.to_owned(),
    }
}

impl SubscribeRequest {
    /// The facts of a parsed SUBSCRIBE. From, To, Call-ID and Contact must parse, and From must carry a tag
    /// (400 otherwise); the Event, Accept and Expires values are kept as written (judged by the table).
    pub fn from_message(m: &Message) -> Result<Self, Refusal> {
        let call_id = m
            .call_id()
            .map_err(|_| bad("Call-ID", "missing or malformed"))?;
        let from = m.from().map_err(|_| bad("From", "missing or malformed"))?;
        let to = m.to().map_err(|_| bad("To", "missing or malformed"))?;
        let from_tag = from
            .tag()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad("From", "the header has no tag"))?
            .to_owned();
        let raw = |kind| {
            m.header(kind)
                .map(|h| String::from_utf8_lossy(&h.value()).trim().to_owned())
                .unwrap_or_default()
        };
        let contact = match m.contacts() {
            Ok(list) => list.into_iter().find_map(|c| match c {
                Contact::Addr(a) => Some(a.uri.as_str().to_owned()),
                Contact::Star => None,
            }),
            Err(_) => return Err(bad("Contact", "malformed")),
        };
        let record_route = m
            .values(HeaderKind::RecordRoute)
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        let accept = header_values(m, "Accept");
        Ok(SubscribeRequest {
            call_id: String::from_utf8_lossy(&call_id).into_owned(),
            from: raw(HeaderKind::From),
            from_tag,
            to: raw(HeaderKind::To),
            to_tag: to.tag().filter(|t| !t.is_empty()).map(str::to_owned),
            contact,
            record_route,
            event: header_values(m, "Event").into_iter().next(),
            accept: (!accept.is_empty()).then(|| accept.join(", ")),
            expires: header_values(m, "Expires"),
            supported: tags(m, "Supported"),
            proxy_require: tags(m, "Proxy-Require"),
        })
    }

    /// The Contact, required on a SUBSCRIBE that creates a dialog (RFC 6665 §4.1.2.1).
    pub(crate) fn remote_target(&self) -> Result<&str, Refusal> {
        self.contact.as_deref().ok_or_else(|| Refusal::BadRequest {
            header: "Contact",
            problem: format!(
                "a SUBSCRIBE from {} creating a subscription has none",
                quote(&self.from)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn parse(head: &str) -> Message {
        Message::parse(Bytes::from(format!("{head}Content-Length: 0\r\n\r\n"))).unwrap()
    }

    const BASE: &str = "SUBSCRIBE sip:bob@skype.lab SIP/2.0\r\n\
        Via: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bK1\r\n\
        From: \"Alice\" <sip:alice@steven.lab>;tag=a1;epid=e1\r\n\
        To: <sip:bob@skype.lab>\r\n\
        Call-ID: c1\r\nCSeq: 1 SUBSCRIBE\r\nMax-Forwards: 70\r\n";

    #[test]
    fn the_facts_of_a_federated_subscribe() {
        let m = parse(&format!(
            "{BASE}Contact: <sip:alice@10.0.0.1:5061;transport=tls>\r\n\
             Record-Route: <sip:vcse.steven.lab:5061;transport=tls;lr>, <sip:vcsc.steven.lab;lr>\r\n\
             o: presence;id=7\r\n\
             Accept: application/xpidf+xml, text/xml+msrtc.pidf\r\nAccept: application/pidf+xml\r\n\
             Supported: ms-benotify\r\nk: ms-piggyback-first-notify, eventlist\r\n\
             Proxy-Require: ms-benotify\r\nExpires: 3600\r\n"
        ));
        let r = SubscribeRequest::from_message(&m).unwrap();
        assert_eq!(r.call_id, "c1");
        assert_eq!(r.from, "\"Alice\" <sip:alice@steven.lab>;tag=a1;epid=e1");
        assert_eq!(r.from_tag, "a1");
        assert_eq!(r.to, "<sip:bob@skype.lab>");
        assert_eq!(r.to_tag, None);
        assert_eq!(
            r.contact.as_deref(),
            Some("sip:alice@10.0.0.1:5061;transport=tls")
        );
        assert_eq!(
            r.record_route,
            vec![
                "<sip:vcse.steven.lab:5061;transport=tls;lr>",
                "<sip:vcsc.steven.lab;lr>"
            ]
        );
        assert_eq!(r.event.as_deref(), Some("presence;id=7"));
        assert_eq!(
            r.accept.as_deref(),
            Some("application/xpidf+xml, text/xml+msrtc.pidf, application/pidf+xml")
        );
        assert_eq!(r.expires, vec!["3600"]);
        assert_eq!(
            r.supported,
            vec!["ms-benotify", "ms-piggyback-first-notify", "eventlist"]
        );
        assert_eq!(r.proxy_require, vec!["ms-benotify"]);
    }

    #[test]
    fn no_accept_header_is_none_and_a_refresh_has_a_to_tag() {
        let m = parse(
            "SUBSCRIBE sip:bob@skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK2\r\n\
             From: <sip:a@b>;tag=x\r\nTo: <sip:bob@skype.lab>;tag=EDGE\r\nCall-ID: c2\r\nCSeq: 2 SUBSCRIBE\r\n",
        );
        let r = SubscribeRequest::from_message(&m).unwrap();
        assert_eq!(r.accept, None);
        assert_eq!(r.to_tag.as_deref(), Some("EDGE"));
        assert_eq!(r.contact, None);
        assert!(matches!(
            r.remote_target(),
            Err(Refusal::BadRequest {
                header: "Contact",
                ..
            })
        ));
    }

    #[test]
    fn a_from_without_tag_is_a_bad_request() {
        let m = parse(
            "SUBSCRIBE sip:bob@skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK3\r\n\
             From: <sip:a@b>\r\nTo: <sip:bob@skype.lab>\r\nCall-ID: c3\r\nCSeq: 1 SUBSCRIBE\r\n",
        );
        let e = SubscribeRequest::from_message(&m).unwrap_err();
        assert_eq!(
            e.warning().as_deref(),
            Some("malformed From: the header has no tag")
        );
    }
}
