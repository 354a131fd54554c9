//! The one response path of the Edge: every answer it sends — its own error answers (400 for a request that does
//! not parse or validate, 413, 513), the rules' refusals, the users' answers — gets the same marks: all Vias
//! copied; on the top one `received`, `ms-received-port` and `ms-received-cid` appended in that order with the
//! seed's spacing (`…;rport; received=10.48.36.47; ms-received-port=25002;ms-received-cid=100`), `rport` left as
//! the sender wrote it (a real Edge reports the port in `ms-received-port`, not in `rport`); a To tag in the
//! Edge's style (32 upper-case hex) when To has none; `Server` (per `[edge] version`); `Content-Length`.
//! A request with `ms-keep-alive: UAC…` gets the Edge's `ms-keep-alive: UAS…` answer (MS-CONMGMT §2.2.1).
//! What the peer gets of the Edge's diagnostics is `[edge] diagnostic_headers`: `ms-diagnostics` and
//! `ms-diagnostics-public` (internal), the public one only (at most one, never `source=`), or none (a real Edge's
//! default). The latest answer to each INVITE is kept, so that a retransmission gets it again byte for byte.
//! Plain data: no socket, time passed in.

use std::net::SocketAddr;

use bytes::Bytes;
use tokio::time::Instant;

use std::sync::Arc;

use super::route_sig::RouteKey;
use super::tx::InviteTransactions;
use crate::config::DiagnosticHeaders;
use crate::rules::Finding;
use crate::sip::{self, Message, ResponseBuilder, ua};

/// A message the Edge answers: parsed, or raw bytes that did not parse.
#[derive(Clone, Copy)]
pub(super) enum Src<'a> {
    Parsed(&'a Message),
    Raw(&'a [u8]),
}

/// The top Via branch of a message, or empty.
pub(super) fn branch(m: &Message) -> String {
    m.top_via()
        .ok()
        .and_then(|v| v.branch().map(str::to_owned))
        .unwrap_or_default()
}

/// Bytes as text (lossy).
pub(super) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The responses of one connection.
#[derive(Debug)]
pub(super) struct Responder {
    remote: SocketAddr,
    cid: u64,
    /// The `Server` header.
    server: String,
    /// The Edge's FQDN: the `source=` of its diagnostics and the agent of its `Warning`s.
    fqdn: String,
    /// What the peer gets of the diagnostics.
    diagnostics: DiagnosticHeaders,
    /// The `ms-keep-alive` answer to a request that asks for keep-alive (`UAS; …; timeout=<idle s>`).
    keep_alive: String,
    /// The key that signs the Edge's Record-Route and the peer it is signed for; none: no Record-Route.
    record_route: Option<(Arc<RouteKey>, String)>,
    invites: InviteTransactions,
}

/// The Edge's `ms-keep-alive` answer (the layout of MS-CONMGMT's UAS example): whitespace keep-alive on this hop
/// only, the peer to ping within `timeout_s` seconds (the idle timeout, after which the Edge closes).
pub(super) fn keep_alive_answer(timeout_s: u64) -> String {
    format!("UAS; tcp=no; hop-hop=yes; end-end=no; timeout={timeout_s}")
}

/// Whether a request's `ms-keep-alive` asks for keep-alive (`UAC…`).
fn asks_keep_alive(req: &Message) -> bool {
    req.header_named("ms-keep-alive").is_some_and(|h| {
        let v = h.value();
        v.get(..3).is_some_and(|p| p.eq_ignore_ascii_case(b"UAC"))
    })
}

/// The diagnostic headers the peer gets for `diagnostic` under `mode`, in order.
pub(super) fn diagnostic_headers(
    mode: DiagnosticHeaders,
    diagnostic: &crate::diagnostics::MsDiagnostic,
) -> Vec<(&'static str, String)> {
    let public = ("ms-diagnostics-public", diagnostic.public().render());
    match mode {
        DiagnosticHeaders::Internal => vec![("ms-diagnostics", diagnostic.render()), public],
        DiagnosticHeaders::Public => vec![public],
        DiagnosticHeaders::None => Vec::new(),
    }
}

impl Responder {
    /// The response path toward `remote` on the connection `cid`.
    pub(super) fn new(
        remote: SocketAddr,
        cid: u64,
        server: &str,
        fqdn: &str,
        diagnostics: DiagnosticHeaders,
        keep_alive_s: u64,
    ) -> Self {
        Responder {
            remote,
            cid,
            server: server.to_owned(),
            fqdn: fqdn.to_owned(),
            diagnostics,
            keep_alive: keep_alive_answer(keep_alive_s),
            record_route: None,
            invites: InviteTransactions::default(),
        }
    }

    /// Signs a Record-Route with `key` for dialogs with `peer` (its certificate name, else its address) on the
    /// answers that make a dialog.
    pub(super) fn with_record_route(mut self, key: Arc<RouteKey>, peer: String) -> Self {
        self.record_route = Some((key, peer));
        self
    }

    /// The Record-Route lines of an answer to `req` with `code`: on the 101–299 answers to a dialog-creating
    /// request (INVITE, SUBSCRIBE without a To tag), the Edge's signed route on top of the request's own
    /// (RFC 3261 §12.1.1: the UAS copies Record-Route into its answer).
    fn record_routes(&self, req: &Message, code: u16) -> Vec<String> {
        let Some((key, peer)) = &self.record_route else {
            return Vec::new();
        };
        let creates = matches!(req.method(), Some(b"INVITE" | b"SUBSCRIBE"))
            && req.to().ok().is_some_and(|t| t.tag().is_none());
        if !creates || !(101..300).contains(&code) {
            return Vec::new();
        }
        let call_id = req.call_id().map(|c| text(&c)).unwrap_or_default();
        std::iter::once(key.record_route(&self.fqdn, peer, &call_id))
            .chain(
                req.values(sip::HeaderKind::RecordRoute)
                    .iter()
                    .map(|v| text(v)),
            )
            .collect()
    }

    /// The marks of every Edge response on `b`.
    fn marks<'a>(
        &self,
        b: ResponseBuilder<'a>,
        tag: Option<&'a str>,
        headers: &[(&'a str, &'a str)],
        body: &'a [u8],
    ) -> Bytes {
        // The seed's spacing exactly: "; received", "; ms-received-port", ";ms-received-cid".
        let mut b = b
            .top_via_param_spaced("received", self.remote.ip().to_string())
            .top_via_param_spaced("ms-received-port", self.remote.port().to_string())
            .top_via_param("ms-received-cid", format!("{:X}", self.cid));
        if let Some(t) = tag {
            b = b.to_tag(t);
        }
        for (n, v) in headers {
            b = b.header(n, v);
        }
        b.header("Server", &self.server).body(body).build()
    }

    /// A response to `req`; an INVITE's latest answer is kept for its retransmissions.
    #[allow(clippy::too_many_arguments)] // the parts of one response, each call site names them all
    pub(super) fn respond(
        &mut self,
        now: Instant,
        req: &Message,
        code: u16,
        reason: &str,
        tag: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Bytes {
        tracing::debug!(code, reason, "response");
        let keep_alive = [("ms-keep-alive", self.keep_alive.as_str())];
        let routes = self.record_routes(req, code);
        let with_extra: Vec<(&str, &str)>;
        let ka = asks_keep_alive(req);
        let headers = if ka || !routes.is_empty() {
            with_extra = routes
                .iter()
                .map(|r| ("Record-Route", r.as_str()))
                .chain(headers.iter().copied())
                .chain(keep_alive.iter().copied().filter(|_| ka))
                .collect();
            &with_extra[..]
        } else {
            headers
        };
        let r = self.marks(
            ResponseBuilder::from_request(req, code, reason),
            tag,
            headers,
            body,
        );
        if req.method() == Some(b"INVITE") {
            let call_id = req.call_id().map(|c| text(&c)).unwrap_or_default();
            self.invites.record(&branch(req), &call_id, r.clone(), now);
        }
        r
    }

    /// The Edge's answer to `req` for a finding: its status and reason, its headers, and its diagnostics as
    /// `[edge] diagnostic_headers` says; a fresh To tag.
    pub(super) fn refuse(&mut self, now: Instant, req: &Message, f: &Finding) -> Bytes {
        let (status, reason) = f.sip().unwrap_or((500, "Server Internal Error"));
        let extra = f.response_headers();
        let mut headers: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let diagnostics = f
            .ms_diagnostic(&self.fqdn)
            .map(|d| diagnostic_headers(self.diagnostics, &d))
            .unwrap_or_default();
        for (n, v) in &diagnostics {
            headers.push((n, v.as_str()));
        }
        self.respond(
            now,
            req,
            status,
            reason,
            Some(&ua::edge_tag()),
            &headers,
            b"",
        )
    }

    /// The Edge's answer to a request that failed parsing or validation: the error's status and reason with a
    /// `Warning` naming the error; `None` when the bytes carry no Via to answer to.
    pub(super) fn error_answer(&self, src: Src<'_>, error: &sip::SipError) -> Option<Bytes> {
        let (code, reason) = error.status();
        let warning = error.warning(&self.fqdn);
        let b = match src {
            Src::Parsed(m) => ResponseBuilder::from_request(m, code, reason),
            Src::Raw(raw) => ResponseBuilder::from_raw(raw, code, reason)?,
        };
        let tag = ua::edge_tag();
        Some(self.marks(b, Some(&tag), &[("Warning", &warning)], b""))
    }

    /// The answer to send again when the INVITE `m` is a retransmission of one already answered.
    pub(super) fn retransmission(&self, m: &Message, call_id: &str, now: Instant) -> Option<Bytes> {
        self.invites.retransmission(&branch(m), call_id, now)
    }

    /// An ACK for `call_id` arrived: its INVITE transactions are over.
    pub(super) fn acknowledged(&mut self, call_id: &str) {
        self.invites.acknowledged(call_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::MsDiagnostic;

    fn req(extra: &str) -> Message {
        Message::parse(Bytes::from(format!(
            "OPTIONS sip:skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS 10.48.36.47:5061; egress-zone=DNSZone; branch=z9hG4bKx; rport\r\nVia: SIP/2.0/TLS 10.48.36.46:5061;branch=z9hG4bKy;rport=28119\r\nFrom: <sip:a@acano.steven.lab>;tag=1\r\nTo: <sip:skype.lab>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n"
        )))
        .unwrap()
    }

    fn responder(mode: DiagnosticHeaders) -> Responder {
        Responder::new(
            "10.48.36.47:25002".parse().unwrap(),
            0x100,
            "RTC/6.0",
            "sip.skype.lab",
            mode,
            1200,
        )
    }

    #[test]
    fn the_top_via_gets_the_seeds_marks_and_keeps_rport_valueless() {
        let mut r = responder(DiagnosticHeaders::Internal);
        let out = r.respond(
            Instant::now(),
            &req(""),
            200,
            "OK",
            Some("C65A7B0A8766A5F1D386474833D07882"),
            &[],
            b"",
        );
        assert_eq!(
            text(&out),
            "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/TLS 10.48.36.47:5061; egress-zone=DNSZone; branch=z9hG4bKx; rport; received=10.48.36.47; ms-received-port=25002;ms-received-cid=100\r\n\
Via: SIP/2.0/TLS 10.48.36.46:5061;branch=z9hG4bKy;rport=28119\r\n\
From: <sip:a@acano.steven.lab>;tag=1\r\n\
To: <sip:skype.lab>;tag=C65A7B0A8766A5F1D386474833D07882\r\n\
Call-ID: c\r\n\
CSeq: 1 OPTIONS\r\n\
Server: RTC/6.0\r\n\
Content-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn ms_keep_alive_uac_is_answered_with_the_uas_parameters() {
        let mut r = responder(DiagnosticHeaders::Internal);
        let out = text(&r.respond(
            Instant::now(),
            &req("ms-keep-alive: UAC;hop-hop=yes\r\n"),
            200,
            "OK",
            None,
            &[],
            b"",
        ));
        assert!(
            out.contains("\r\nms-keep-alive: UAS; tcp=no; hop-hop=yes; end-end=no; timeout=1200\r\nServer: RTC/6.0\r\n"),
            "{out}"
        );
        // A UAS header (an answer in the request direction) asks for nothing.
        let out = text(&r.respond(
            Instant::now(),
            &req("ms-keep-alive: UAS; timeout=300\r\n"),
            200,
            "OK",
            None,
            &[],
            b"",
        ));
        assert!(!out.contains("ms-keep-alive"), "{out}");
    }

    #[test]
    fn diagnostic_headers_per_mode() {
        let d = MsDiagnostic::e1008("acano.steven.lab", "sip.skype.lab");
        let got = |m| {
            diagnostic_headers(m, &d)
                .into_iter()
                .map(|(n, v)| format!("{n}: {v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            got(DiagnosticHeaders::Internal),
            vec![
                "ms-diagnostics: 1008;reason=\"Unable to resolve DNS SRV record\";domain=\"acano.steven.lab\";source=\"sip.skype.lab\"",
                "ms-diagnostics-public: 1008;reason=\"Unable to resolve DNS SRV record\";domain=\"acano.steven.lab\"",
            ]
        );
        assert_eq!(
            got(DiagnosticHeaders::Public),
            vec![
                "ms-diagnostics-public: 1008;reason=\"Unable to resolve DNS SRV record\";domain=\"acano.steven.lab\""
            ]
        );
        assert!(got(DiagnosticHeaders::None).is_empty());
    }
}
