//! The requests a load run sends, and the ACK/BYE that close an INVITE.

use crate::sip::{HeaderKind, Message, RequestBuilder, ua};

/// What every request of a run looks like; Via branch, tags, Call-ID and CSeq differ per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTemplate {
    /// `INVITE`, `OPTIONS`, or any other method token.
    pub method: String,
    /// From URI, e.g. `sip:2000@acano.steven.lab` (its domain is what the Edge looks up).
    pub from: String,
    /// To URI and Request-URI, e.g. `sip:stejanss@skype.lab`.
    pub to: String,
    /// Body and its Content-Type; an INVITE gets a small SDP offer by default.
    pub body: Option<(String, Vec<u8>)>,
}

impl RequestTemplate {
    /// `method` from `from` to `to`; an INVITE carries an SDP offer like an Expressway's.
    pub fn new(method: &str, from: &str, to: &str) -> Self {
        let method = method.to_ascii_uppercase();
        let body = (method == "INVITE").then(|| {
            (
                "application/sdp".to_owned(),
                ua::expressway_sdp_offer("127.0.0.1").into(),
            )
        });
        RequestTemplate {
            method,
            from: from.to_owned(),
            to: to.to_owned(),
            body,
        }
    }

    /// The request with sequence `cseq` on connection `conn`, written to `out`.
    pub(crate) fn write(&self, out: &mut Vec<u8>, ids: &Ids<'_>, cseq: u32) {
        let via = ids.via(cseq);
        let from = format!("<{}>;tag={}", self.from, ids.tag(cseq));
        let to = format!("<{}>", self.to);
        let call_id = ids.call_id(cseq);
        let cseq_v = format!("{cseq} {}", self.method);
        let contact = format!("<sip:load@{};transport=tls>", ids.host);
        let mut b = RequestBuilder::new(&self.method, &self.to)
            .header("Via", &via)
            .header("Max-Forwards", "70")
            .header("From", &from)
            .header("To", &to)
            .header("Call-ID", &call_id)
            .header("CSeq", &cseq_v)
            .header("Contact", &contact)
            .header("User-Agent", "edgesim-load");
        if let Some((ctype, body)) = &self.body {
            b = b.header("Content-Type", ctype).body(body);
        }
        out.extend_from_slice(&b.build());
    }

    /// What closes an INVITE transaction that got the final response `resp`: an ACK (same branch after a
    /// non-2xx, a new one after a 2xx), and a BYE after a 2xx. Nothing for other methods.
    pub(crate) fn write_close(&self, out: &mut Vec<u8>, ids: &Ids<'_>, cseq: u32, resp: &Message) {
        if self.method != "INVITE" {
            return;
        }
        let status = resp.status_code().unwrap_or(0);
        let to = resp
            .header(HeaderKind::To)
            .map(|h| String::from_utf8_lossy(&h.value()).trim().to_owned())
            .unwrap_or_else(|| format!("<{}>", self.to));
        let from = format!("<{}>;tag={}", self.from, ids.tag(cseq));
        let call_id = ids.call_id(cseq);
        let success = (200..300).contains(&status);
        // RFC 3261 §17.1.1.3: the ACK for a non-2xx shares the INVITE's branch; a 2xx ACK is a new transaction.
        let via = if success {
            format!("{}a", ids.via(cseq))
        } else {
            ids.via(cseq)
        };
        let ack_cseq = format!("{cseq} ACK");
        out.extend_from_slice(
            &RequestBuilder::new("ACK", &self.to)
                .header("Via", &via)
                .header("Max-Forwards", "70")
                .header("From", &from)
                .header("To", &to)
                .header("Call-ID", &call_id)
                .header("CSeq", &ack_cseq)
                .build(),
        );
        if success {
            let bye_via = format!("{}b", ids.via(cseq));
            let bye_cseq = format!("{} BYE", cseq + 1);
            out.extend_from_slice(
                &RequestBuilder::new("BYE", &self.to)
                    .header("Via", &bye_via)
                    .header("Max-Forwards", "70")
                    .header("From", &from)
                    .header("To", &to)
                    .header("Call-ID", &call_id)
                    .header("CSeq", &bye_cseq)
                    .build(),
            );
        }
    }
}

/// Per-connection identifiers: run id, connection number, local address for Via and Contact.
#[derive(Debug)]
pub(crate) struct Ids<'a> {
    pub run: &'a str,
    pub conn: u64,
    pub host: String,
}

impl Ids<'_> {
    fn via(&self, cseq: u32) -> String {
        format!(
            "SIP/2.0/TLS {};branch=z9hG4bK{}c{}s{};rport",
            self.host, self.run, self.conn, cseq
        )
    }
    fn tag(&self, cseq: u32) -> String {
        format!("{}c{}s{}", self.run, self.conn, cseq)
    }
    fn call_id(&self, cseq: u32) -> String {
        format!("{}-{}-{}@edgesim-load", self.run, self.conn, cseq)
    }
}

/// A short random id so two runs never share Call-IDs or branches.
pub(crate) fn run_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn invite_parses_and_acks_on_the_same_branch() {
        let t = RequestTemplate::new(
            "invite",
            "sip:2000@acano.steven.lab",
            "sip:stejanss@skype.lab",
        );
        let ids = Ids {
            run: "abc",
            conn: 3,
            host: "127.0.0.1:40000".into(),
        };
        let mut out = Vec::new();
        t.write(&mut out, &ids, 7);
        let m = Message::parse(Bytes::from(out)).unwrap();
        assert_eq!(m.method(), Some(&b"INVITE"[..]));
        assert_eq!(m.cseq().unwrap().seq, 7);
        assert!(m.body().starts_with(b"v=0"));
        let branch = m.top_via().unwrap().branch().unwrap().to_owned();

        let resp = Message::parse(
            crate::sip::ResponseBuilder::from_request(&m, 504, "Server time-out")
                .to_tag("x")
                .build(),
        )
        .unwrap();
        let mut ack = Vec::new();
        t.write_close(&mut ack, &ids, 7, &resp);
        let ack = Message::parse(Bytes::from(ack)).unwrap();
        assert_eq!(ack.method(), Some(&b"ACK"[..]));
        assert_eq!(ack.top_via().unwrap().branch(), Some(branch.as_str()));
        assert_eq!(ack.to().unwrap().tag(), Some("x"));
    }

    #[test]
    fn options_has_no_body_and_no_ack() {
        let t = RequestTemplate::new("OPTIONS", "sip:a@b", "sip:c@d");
        let ids = Ids {
            run: "r",
            conn: 0,
            host: "h".into(),
        };
        let mut out = Vec::new();
        t.write(&mut out, &ids, 1);
        let m = Message::parse(Bytes::from(out)).unwrap();
        assert!(m.body().is_empty());
        let resp = Message::parse(crate::sip::ResponseBuilder::from_request(&m, 200, "OK").build())
            .unwrap();
        let mut close = Vec::new();
        t.write_close(&mut close, &ids, 1, &resp);
        assert!(close.is_empty());
    }
}
