//! The web view's model: what the page shows, one [`UiEvent`] at a time, each built by a producer and sent
//! to the page as JSON (`kind` names the variant). Text from the network (Call-IDs, names, SIP messages) is
//! carried as it came and is bounded here ([`MAX_RAW`], [`MAX_TEXT`]); the page renders all of it as text.

use std::net::SocketAddr;

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::pki::{CertFacts, ChainStatus};

/// The most bytes of one SIP message kept for the ladder and the exports (the Edge's own message limit is
/// usually lower); a longer message is cut and says so.
pub const MAX_RAW: usize = 64 * 1024;
/// The most bytes of any other text field (names, reasons, records, explanations).
pub const MAX_TEXT: usize = 8 * 1024;

/// Serialises a timestamp as RFC 3339.
pub(crate) fn rfc3339<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::Error;
    let text = t
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(S::Error::custom)?;
    s.serialize_str(&text)
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
pub fn bounded(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" …[cut]");
    }
    text
}

fn bounded_opt(text: Option<String>) -> Option<String> {
    text.map(|t| bounded(t, MAX_TEXT))
}

/// One thing the page shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UiEvent {
    /// A TLS connection was accepted (or refused after the handshake: see its chain verdict).
    Connection(ConnectionView),
    /// A connection ended.
    ConnectionClosed(ConnectionClosed),
    /// A DNS question the Edge asked, with the answer.
    Dns(DnsQuery),
    /// A decision of the Edge about one request or handshake.
    Decision(DecisionView),
    /// A SIP message in or out, decrypted (the ladder and the pcapng export are drawn from these).
    Message(SipMessage),
}

impl UiEvent {
    /// The Call-ID this event belongs to, if any.
    pub fn call_id(&self) -> Option<&str> {
        match self {
            UiEvent::Decision(d) => d.call_id.as_deref(),
            UiEvent::Message(m) => m.call_id.as_deref(),
            _ => None,
        }
    }

    /// Roughly the bytes this event holds (the history's size bound counts these).
    pub fn weight(&self) -> usize {
        let base = 512;
        base + match self {
            UiEvent::Message(m) => m.raw.len(),
            UiEvent::Decision(d) => {
                d.record.as_ref().map_or(0, String::len)
                    + d.explanation.as_ref().map_or(0, String::len)
                    + d.fix.as_ref().map_or(0, String::len)
                    + d.steps.iter().map(|s| s.detail.len()).sum::<usize>()
                    + d.log_data
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>()
            }
            UiEvent::Dns(q) => q.answers.iter().map(String::len).sum(),
            UiEvent::Connection(c) => c
                .client_cert
                .as_ref()
                .map_or(0, |x| x.san.iter().map(String::len).sum()),
            UiEvent::ConnectionClosed(_) => 0,
        }
    }
}

/// The facts of one accepted TLS connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionView {
    /// When the handshake completed.
    #[serde(serialize_with = "rfc3339")]
    pub time: OffsetDateTime,
    /// The Edge's connection id (its `ms-received-cid`), unique while the Edge runs.
    pub conn: u64,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The Edge's address.
    pub local: SocketAddr,
    /// The server name the peer asked for (SNI), if it sent one.
    pub sni: Option<String>,
    /// `TLS 1.3`, `TLS 1.2`.
    pub tls_version: Option<String>,
    /// The negotiated cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: Option<String>,
    /// The client certificate's facts; `None` when the peer presented none.
    pub client_cert: Option<CertView>,
    /// Certificates the peer sent (its own first).
    pub chain_len: usize,
    /// Whether the chain is trusted, in words.
    pub chain: ChainVerdict,
}

/// A certificate as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertView {
    /// Subject distinguished name.
    pub subject: String,
    /// SAN entries: DNS names, then IP addresses (`IP:…`).
    pub san: Vec<String>,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Extended key usages (`serverAuth`, `clientAuth`, `anyExtendedKeyUsage`); `None`: no EKU extension
    /// (any use).
    pub ekus: Option<Vec<String>>,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// Days until it expires (negative: expired), counted as `certs inspect` does.
    pub days_left: i64,
}

fn unix_rfc3339(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

impl CertView {
    /// The view of `facts` at `now` (Unix seconds).
    pub fn from_facts(facts: &CertFacts, now: i64) -> Self {
        let mut san: Vec<String> = facts.san_dns.clone().unwrap_or_default();
        san.extend(facts.san_ip.iter().map(|ip| format!("IP:{ip}")));
        let ekus = facts.eku.map(|e| {
            let mut v = Vec::new();
            if e.server_auth {
                v.push("serverAuth".to_owned());
            }
            if e.client_auth {
                v.push("clientAuth".to_owned());
            }
            if e.any {
                v.push("anyExtendedKeyUsage".to_owned());
            }
            v
        });
        CertView {
            subject: bounded(facts.subject.clone(), MAX_TEXT),
            san: san.into_iter().take(64).map(|s| bounded(s, 256)).collect(),
            issuer: bounded(facts.issuer.clone(), MAX_TEXT),
            ekus,
            not_before: unix_rfc3339(facts.not_before),
            not_after: unix_rfc3339(facts.not_after),
            days_left: facts.days_left(now),
        }
    }
}

/// The chain verdict of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainVerdict {
    /// The chain was checked and is trusted.
    pub trusted: bool,
    /// What was found, and the fix when it is not trusted.
    pub text: String,
}

impl ChainVerdict {
    /// From the Edge's chain check; `None` when it did not check (no certificate and none required).
    pub fn from_status(status: Option<&ChainStatus>) -> Self {
        match status {
            Some(s) => ChainVerdict {
                trusted: *s == ChainStatus::Trusted,
                text: crate::rules::chain_phrase(s),
            },
            None => ChainVerdict {
                trusted: false,
                text: "not checked: the peer presented no certificate and the Edge does not require one"
                    .to_owned(),
            },
        }
    }
}

impl ConnectionView {
    /// The facts of an accepted rustls server connection: SNI, version, suite and the peer's certificate
    /// (the first of `chain`), with the Edge's chain verdict (`None`: not checked).
    pub fn from_tls(
        conn: u64,
        local: SocketAddr,
        remote: SocketAddr,
        tls: &rustls::ServerConnection,
        chain_status: Option<&ChainStatus>,
    ) -> Self {
        let chain = crate::pki::peer_chain(tls);
        let now = OffsetDateTime::now_utc();
        let client_cert = chain
            .first()
            .and_then(|c| CertFacts::from_der(c.as_ref()).ok())
            .map(|f| CertView::from_facts(&f, now.unix_timestamp()));
        ConnectionView {
            time: now,
            conn,
            remote,
            local,
            sni: tls.server_name().map(|s| bounded(s.to_owned(), 256)),
            tls_version: tls.protocol_version().map(version_name),
            cipher_suite: tls
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite())),
            client_cert,
            chain_len: chain.len(),
            chain: ChainVerdict::from_status(chain_status),
        }
    }
}

/// `TLS 1.3` for rustls' version values.
fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_owned(),
        other => format!("{other:?}"),
    }
}

/// Which end closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Closer {
    /// The peer closed or reset it.
    Peer,
    /// The Edge closed it (timeout, limit, refused certificate, shutdown).
    Edge,
}

/// The end of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionClosed {
    /// When.
    #[serde(serialize_with = "rfc3339")]
    pub time: OffsetDateTime,
    /// The connection id of its [`ConnectionView`].
    pub conn: u64,
    /// The peer's address.
    pub remote: SocketAddr,
    /// Who closed it.
    pub by: Closer,
    /// Why, in words.
    pub reason: String,
}

/// One DNS question and its answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsQuery {
    /// When the answer came.
    #[serde(serialize_with = "rfc3339")]
    pub time: OffsetDateTime,
    /// The server asked, as the Edge names it.
    pub server: String,
    /// The name asked about.
    pub question: String,
    /// `SRV` or `A/AAAA`.
    pub rtype: String,
    /// The records, e.g. `10 10 5061 vcse.steven.lab` or `127.0.0.1`.
    pub answers: Vec<String>,
    /// Why there is no usable answer, naming the server; `None` when records came back.
    pub failure: Option<String>,
    /// How long the lookup took, in milliseconds.
    pub elapsed_ms: f64,
}

/// How a rule came out for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The rule holds.
    Pass,
    /// The rule fails: the request is refused here.
    Fail,
    /// The rule does not apply to this request.
    Skip,
}

/// One rule's outcome in a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The rule, e.g. `Rule 1: SRV target in the sender's domain`.
    pub rule: String,
    /// How it came out.
    pub outcome: Outcome,
    /// What the rule saw.
    pub detail: String,
}

/// What the Edge decided, as in `DecisionEvent::verdict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The request passed the federation rules.
    Accept,
    /// The Edge refused the request or the connection.
    Reject,
    /// A limit of the Edge refused it (503).
    Limit,
}

/// The response that ended a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseView {
    /// The SIP status.
    pub status: u16,
    /// The reason phrase as sent, when the producer knows it.
    pub reason: Option<String>,
}

/// One decision, rule by rule, ending in the response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionView {
    /// When the Edge decided.
    #[serde(serialize_with = "rfc3339")]
    pub time: OffsetDateTime,
    /// The connection id, when the producer knows it.
    pub conn: Option<u64>,
    /// The peer's address, `ip:port`.
    pub remote: String,
    /// The peer certificate's name.
    pub peer_cert: Option<String>,
    /// The SIP method; `None` for a refused handshake.
    pub method: Option<String>,
    /// The Call-ID; `None` for a refused handshake.
    pub call_id: Option<String>,
    /// The sender domain.
    pub domain: Option<String>,
    /// Accept, reject or limit.
    pub verdict: Verdict,
    /// The rules in the order the Edge applied them.
    pub steps: Vec<Step>,
    /// The answer sent; `None` when nothing was sent (a reset, an absorbed request).
    pub response: Option<ResponseView>,
    /// The ms-diagnostics value.
    pub ms_diagnostics: Option<String>,
    /// Its code.
    pub ms_diagnostics_code: Option<u32>,
    /// `0x… SIPPROXY_E_…` of the Edge record.
    pub result_code: Option<String>,
    /// The record's `Data:` pairs, in order.
    pub log_data: Vec<(String, String)>,
    /// The Edge record as written to the log (the SfB trace layout).
    pub record: Option<String>,
    /// What happened, in plain language (without the fix).
    pub explanation: Option<String>,
    /// The fix.
    pub fix: Option<String>,
}

/// Splits an explanation at its `Fix:` into (what happened, the fix).
pub fn split_fix(text: &str) -> (Option<String>, Option<String>) {
    let text = text.trim();
    if text.is_empty() {
        return (None, None);
    }
    match text.find("Fix: ") {
        Some(at) => {
            let what = text[..at].trim();
            let fix = text[at + "Fix: ".len()..].trim();
            (
                (!what.is_empty()).then(|| what.to_owned()),
                (!fix.is_empty()).then(|| fix.to_owned()),
            )
        }
        None => (Some(text.to_owned()), None),
    }
}

impl DecisionView {
    /// Bounds every text field (producers may hand in anything).
    pub fn bounded(mut self) -> Self {
        self.remote = bounded(self.remote, 256);
        self.peer_cert = self.peer_cert.map(|t| bounded(t, 256));
        self.method = self.method.map(|t| bounded(t, 64));
        self.call_id = self.call_id.map(|t| bounded(t, 256));
        self.domain = self.domain.map(|t| bounded(t, 256));
        self.ms_diagnostics = bounded_opt(self.ms_diagnostics);
        self.result_code = bounded_opt(self.result_code);
        self.record = bounded_opt(self.record);
        self.explanation = bounded_opt(self.explanation);
        self.fix = bounded_opt(self.fix);
        self.steps.truncate(64);
        for s in &mut self.steps {
            s.detail = bounded(std::mem::take(&mut s.detail), MAX_TEXT);
        }
        self.log_data.truncate(64);
        self
    }
}

/// Which way a SIP message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageDirection {
    /// From the peer to the Edge.
    In,
    /// From the Edge to the peer.
    Out,
}

/// One SIP message, as framed and decrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SipMessage {
    /// When it was read or written.
    #[serde(serialize_with = "rfc3339")]
    pub time: OffsetDateTime,
    /// The connection id.
    pub conn: u64,
    /// The Edge's address on that connection.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// In or out.
    pub direction: MessageDirection,
    /// The Call-ID, if the message has one.
    pub call_id: Option<String>,
    /// The request or status line.
    pub start_line: String,
    /// The whole message (cut at [`MAX_RAW`]).
    pub raw: String,
}

impl SipMessage {
    /// A message from its bytes: the start line and Call-ID are read from them (tolerantly: a message that
    /// does not parse keeps its first line and no Call-ID).
    pub fn from_bytes(
        conn: u64,
        local: SocketAddr,
        remote: SocketAddr,
        direction: MessageDirection,
        bytes: &[u8],
    ) -> Self {
        let parsed = crate::sip::Message::parse(bytes::Bytes::copy_from_slice(bytes)).ok();
        let start_line = match &parsed {
            Some(m) => String::from_utf8_lossy(m.start_line()).into_owned(),
            None => {
                let end = memchr::memchr(b'\n', bytes).unwrap_or(bytes.len());
                String::from_utf8_lossy(&bytes[..end]).trim_end().to_owned()
            }
        };
        let call_id = parsed
            .as_ref()
            .and_then(|m| m.call_id().ok())
            .map(|c| bounded(String::from_utf8_lossy(&c).into_owned(), 256));
        let raw = &bytes[..bytes.len().min(MAX_RAW)];
        let mut raw = String::from_utf8_lossy(raw).into_owned();
        if bytes.len() > MAX_RAW {
            raw.push_str("\n…[cut]");
        }
        SipMessage {
            time: OffsetDateTime::now_utc(),
            conn,
            local,
            remote,
            direction,
            call_id,
            start_line: bounded(start_line, 1024),
            raw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fix_is_split_from_the_explanation() {
        assert_eq!(
            split_fix(
                "x.lab is on the Edge's blocked domain list. Fix: remove it from policy.blocked_domains."
            ),
            (
                Some("x.lab is on the Edge's blocked domain list.".to_owned()),
                Some("remove it from policy.blocked_domains.".to_owned())
            )
        );
        assert_eq!(split_fix("no fix here"), (Some("no fix here".into()), None));
        assert_eq!(split_fix("  "), (None, None));
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        assert_eq!(bounded("ééé".into(), 3), "é …[cut]");
        assert_eq!(bounded("abc".into(), 3), "abc");
    }

    #[test]
    fn a_message_keeps_its_start_line_and_call_id() {
        let a: SocketAddr = "127.0.0.1:5061".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let m = SipMessage::from_bytes(
            1,
            a,
            b,
            MessageDirection::In,
            b"OPTIONS sip:x@skype.lab SIP/2.0\r\nCall-ID: c1@h\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(m.start_line, "OPTIONS sip:x@skype.lab SIP/2.0");
        assert_eq!(m.call_id.as_deref(), Some("c1@h"));
        let junk = SipMessage::from_bytes(1, a, b, MessageDirection::In, b"\xffjunk line\r\nmore");
        assert_eq!(junk.start_line, "\u{fffd}junk line");
        assert_eq!(junk.call_id, None);
    }

    #[test]
    fn events_serialise_with_their_kind() {
        let ev = UiEvent::ConnectionClosed(ConnectionClosed {
            time: time::macros::datetime!(2017-03-02 07:10:46.230 UTC),
            conn: 0x100,
            remote: "127.0.0.1:40000".parse().unwrap(),
            by: Closer::Peer,
            reason: "closed by the peer".into(),
        });
        assert_eq!(
            serde_json::to_string(&ev).unwrap(),
            "{\"kind\":\"connection_closed\",\"time\":\"2017-03-02T07:10:46.23Z\",\"conn\":256,\
             \"remote\":\"127.0.0.1:40000\",\"by\":\"peer\",\"reason\":\"closed by the peer\"}"
        );
    }
}
