//! The SIP the Edge sends to the peer (INVITE / OPTIONS / ACK / BYE, headers as a Skype for Business Edge
//! relays them) and the response the internal Skype client would see.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::sip::{Frame, Framer, Message, RequestBuilder, ResponseBuilder, ua};

/// The Skype for Business client's User-Agent as the Edge relays it.
pub const USER_AGENT: &str = "UCCAPI/16.0.5431.1000 OC/16.0.5431.1000 (Skype for Business)";
/// The Edge's own Server header (SfB Server 2015).
pub const EDGE_SERVER: &str = "RTC/6.0";
const SUPPORTED: &str =
    "ms-dialog-route-set-update, timer, histinfo, ms-safe-transfer, ms-sender, ms-early-media";
const ALLOW: &str = "INVITE, BYE, ACK, CANCEL, INFO, UPDATE, REFER, NOTIFY, BENOTIFY, OPTIONS";

/// The identifiers of one dialog attempt.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// Request-URI and To, e.g. `sip:user@domain`.
    pub target: String,
    /// From URI, e.g. `sip:alice@skype.lab`.
    pub from: String,
    /// Method of the initial request (`INVITE` or `OPTIONS`).
    pub method: &'static str,
    /// Call-ID.
    pub call_id: String,
    /// From tag.
    pub from_tag: String,
    /// Endpoint id of the Skype client.
    pub epid: String,
    /// The internal client's Via (what its response keeps).
    pub client_via: String,
    /// The Edge's Via branch of the initial request.
    pub branch: String,
    /// The Edge FQDN (Record-Route).
    pub edge_fqdn: String,
    /// A `Route` header value for the initial request, if any.
    pub route: Option<String>,
    /// An IM session: the first message embedded in the INVITE (`None`: a call, or no IM).
    pub im: Option<String>,
}

impl Dialog {
    /// New identifiers for a call from `from` to `target` through the Edge `edge_fqdn`.
    pub fn new(target: &str, from: &str, method: &'static str, edge_fqdn: &str) -> Self {
        let port = 50_000 + (rand::random::<u16>() % 10_000);
        Dialog {
            target: target.to_string(),
            from: from.to_string(),
            method,
            call_id: ua::client_call_id(),
            from_tag: ua::client_tag(),
            epid: ua::epid(),
            client_via: format!(
                "SIP/2.0/TLS 127.0.0.1:{port};branch={};ms-received-port={port};ms-received-cid={:X}",
                ua::branch(),
                rand::random::<u16>()
            ),
            branch: ua::branch(),
            edge_fqdn: edge_fqdn.to_string(),
            route: None,
            im: None,
        }
    }

    /// The same dialog with a `Route` header on its initial request.
    pub fn with_route(mut self, route: Option<String>) -> Self {
        self.route = route;
        self
    }

    /// The dialog of `req`: an IM carries its first message.
    pub fn for_request(mut self, req: &super::CallRequest) -> Self {
        if req.method == super::CallMethod::Im {
            self.im = Some(req.im_text.clone().unwrap_or_default());
        }
        self
    }

    fn caller_hdr(&self) -> String {
        format!("<{}>;tag={};epid={}", self.from, self.from_tag, self.epid)
    }

    fn to_header(&self) -> String {
        format!("<{}>", self.target)
    }

    /// The initial request as the internal client sent it (one Via): what the client-side response copies.
    pub fn client_request(&self) -> Option<Message> {
        let cseq = format!("1 {}", self.method);
        let (from, to) = (self.caller_hdr(), self.to_header());
        let raw = RequestBuilder::new(self.method, &self.target)
            .header("Via", &self.client_via)
            .header("From", &from)
            .header("To", &to)
            .header("Call-ID", &self.call_id)
            .header("CSeq", &cseq)
            .build();
        Message::parse(raw).ok()
    }

    /// The initial request the Edge sends to the peer: its own Via on top of the client's.
    pub fn initial_request(&self, local: &str) -> Bytes {
        let edge_via = format!("SIP/2.0/TLS {local};branch={}", self.branch);
        let cseq = format!("1 {}", self.method);
        let (from, to) = (self.caller_hdr(), self.to_header());
        let contact = format!("<{};opaque=user:epid:{};gruu>", self.from, self.epid);
        let record_route = format!("<sip:{}:5061;transport=tls;lr>", self.edge_fqdn);
        let pai = format!("<{}>", self.from);
        let mut b = RequestBuilder::new(self.method, &self.target)
            .header("Via", &edge_via)
            .header("Via", &self.client_via)
            .header("Max-Forwards", "69");
        if let Some(route) = &self.route {
            b = b.header("Route", route);
        }
        b = b
            .header("From", &from)
            .header("To", &to)
            .header("Call-ID", &self.call_id)
            .header("CSeq", &cseq)
            .header("Record-Route", &record_route)
            .header("Contact", &contact)
            .header("User-Agent", USER_AGENT)
            .header("P-Asserted-Identity", &pai)
            .header("Supported", SUPPORTED)
            .header("Allow", ALLOW);
        let im_headers;
        let im_sdp;
        let presence = crate::presence::client::SubscribeOptions::default().headers();
        if let Some(first) = &self.im {
            // Session-mode IM as a Skype for Business client sends it (crate::im).
            let first = (!first.is_empty()).then_some(first.as_str());
            im_headers = crate::im::invite_headers(first, &ua::uuid());
            for (n, v) in &im_headers {
                b = b.header(n, v);
            }
            let host = local.rsplit_once(':').map_or(local, |(h, _)| h);
            im_sdp = crate::im::sdp::offer(host, 5061);
            b = b
                .header("Content-Type", "application/sdp")
                .body(im_sdp.as_bytes());
        } else if self.method == "INVITE" {
            b = b
                .header("ms-keep-alive", "UAC;hop-hop=yes")
                .header("Content-Type", "application/sdp")
                .body(ua::CLIENT_SDP_OFFER.as_bytes());
        } else if self.method == "SUBSCRIBE" {
            // What a Lync client asks a federated contact for (MS-PRES §4.11).
            for (n, v) in &presence {
                b = b.header(n, v);
            }
        }
        b.build()
    }

    /// An in-dialog request (ACK or BYE) after a final response with `to_tag`. A non-2xx ACK reuses the
    /// INVITE's branch (same transaction); a 2xx ACK and BYE get new ones.
    pub fn in_dialog(
        &self,
        method: &str,
        seq: u32,
        to_tag: Option<&str>,
        local: &str,
        same_txn: bool,
        uri: Option<&str>,
    ) -> Bytes {
        let branch = if same_txn {
            self.branch.clone()
        } else {
            ua::branch()
        };
        let via = format!("SIP/2.0/TLS {local};branch={branch}");
        let to = match to_tag {
            Some(t) => format!("{};tag={t}", self.to_header()),
            None => self.to_header(),
        };
        let from = self.caller_hdr();
        let cseq = format!("{seq} {method}");
        RequestBuilder::new(method, uri.unwrap_or(&self.target))
            .header("Via", &via)
            .header("Max-Forwards", "70")
            .header("From", &from)
            .header("To", &to)
            .header("Call-ID", &self.call_id)
            .header("CSeq", &cseq)
            .header("User-Agent", USER_AGENT)
            .build()
    }

    /// The final response as the Skype client's log shows it: status line, the client's Via, From, To (with
    /// the answering side's tag), Call-ID, CSeq, ms-diagnostics, Server, Content-Length: 0.
    pub fn client_view(
        &self,
        status: u16,
        reason: &str,
        to_tag: &str,
        diagnostics: Option<&str>,
        server: &str,
    ) -> String {
        let Some(req) = self.client_request() else {
            return format!("SIP/2.0 {status} {reason}\r\n");
        };
        let mut b = ResponseBuilder::from_request(&req, status, reason).to_tag(to_tag);
        if let Some(d) = diagnostics {
            b = b.header("ms-diagnostics", d);
        }
        String::from_utf8_lossy(&b.header("Server", server).build()).into_owned()
    }
}

/// Reads the next SIP response for `method` from the stream (requests from the peer are ignored).
/// `Ok(None)`: no response within `timeout`. `Err`: the connection failed or closed.
pub async fn read_response<S: AsyncRead + Unpin>(
    stream: &mut S,
    framer: &mut Framer,
    buf: &mut BytesMut,
    method: &str,
    timeout: Duration,
) -> Result<Option<Message>, std::io::Error> {
    let deadline = tokio::time::Instant::now() + timeout;
    while let Some(m) = read_message(stream, framer, buf, deadline).await? {
        let ours = !m.is_request()
            && m.cseq()
                .map(|c| c.method.eq_ignore_ascii_case(method))
                .unwrap_or(false);
        if ours {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

/// The next SIP message of any kind before `deadline` (keep-alives skipped); `Ok(None)` at the deadline.
/// `Err`: the stream is not SIP, failed or closed.
pub(super) async fn read_message<S: AsyncRead + Unpin>(
    stream: &mut S,
    framer: &mut Framer,
    buf: &mut BytesMut,
    deadline: tokio::time::Instant,
) -> std::io::Result<Option<Message>> {
    loop {
        match framer.decode(buf) {
            Ok(Some(Frame::Message(m))) => return Ok(Some(m)),
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    e.to_string(),
                ));
            }
        }
        match tokio::time::timeout_at(deadline, stream.read_buf(buf)).await {
            Err(_) => return Ok(None),
            Ok(Ok(0)) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection",
                ));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// Writes a whole message.
pub async fn send<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// A header's unfolded value as text.
pub fn header_text(m: &Message, name: &str) -> Option<String> {
    m.header_named(name)
        .map(|h| String::from_utf8_lossy(&h.value()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_view_has_the_skype_log_layout() {
        let d = Dialog::new(
            "sip:space@cms.steven.lab",
            "sip:alice@skype.lab",
            "INVITE",
            "sip.skype.lab",
        );
        let text = d.client_view(
            504,
            "Server time-out",
            "ABC",
            Some("1008;x=\"y\""),
            "RTC/6.0",
        );
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "SIP/2.0 504 Server time-out");
        assert!(lines[1].starts_with("Via: SIP/2.0/TLS 127.0.0.1:"));
        assert!(lines[1].contains(";ms-received-port=") && lines[1].contains(";ms-received-cid="));
        assert!(lines[2].starts_with("From: <sip:alice@skype.lab>;tag="));
        assert!(lines[2].contains(";epid="));
        assert_eq!(lines[3], "To: <sip:space@cms.steven.lab>;tag=ABC");
        assert!(lines[4].starts_with("Call-ID: "));
        assert_eq!(lines[5], "CSeq: 1 INVITE");
        assert_eq!(lines[6], "ms-diagnostics: 1008;x=\"y\"");
        assert_eq!(lines[7], "Server: RTC/6.0");
        assert_eq!(lines[8], "Content-Length: 0");
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn initial_invite_parses_with_two_vias_and_sdp() {
        let d = Dialog::new(
            "sip:x@acano.steven.lab",
            "sip:alice@skype.lab",
            "INVITE",
            "sip.skype.lab",
        );
        let m = Message::parse(d.initial_request("127.0.0.1:40000")).unwrap();
        assert_eq!(m.vias().unwrap().len(), 2);
        assert_eq!(m.cseq().unwrap().method, "INVITE");
        assert_eq!(m.body(), ua::CLIENT_SDP_OFFER.as_bytes());
        let ack = Message::parse(d.in_dialog("ACK", 1, Some("t"), "127.0.0.1:40000", true, None))
            .unwrap();
        assert_eq!(ack.top_via().unwrap().branch(), Some(d.branch.as_str()));
        assert_eq!(ack.to().unwrap().tag(), Some("t"));
    }
}
