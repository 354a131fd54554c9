//! The one response path of the Edge: every answer it sends — its own error answers (400 for a request that does
//! not parse or validate, 413, 513), the rules' refusals, the users' answers — gets the same marks: all Vias
//! copied, `received`, `ms-received-port` and `ms-received-cid` on the top one (and `rport` filled when present),
//! a To tag when To has none, `Server`, `Content-Length`. The latest answer to each INVITE is kept, so that a
//! retransmission gets it again byte for byte. Plain data: no socket, time passed in.

use std::net::SocketAddr;

use bytes::Bytes;
use tokio::time::Instant;

use super::tx::InviteTransactions;
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
    /// Leave ms-diagnostics out toward the peer, as a real Edge does.
    faithful: bool,
    invites: InviteTransactions,
}

impl Responder {
    /// The response path toward `remote` on the connection `cid`.
    pub(super) fn new(
        remote: SocketAddr,
        cid: u64,
        server: &str,
        fqdn: &str,
        faithful: bool,
    ) -> Self {
        Responder {
            remote,
            cid,
            server: server.to_owned(),
            fqdn: fqdn.to_owned(),
            faithful,
            invites: InviteTransactions::default(),
        }
    }

    /// The marks of every Edge response on `b`.
    fn marks<'a>(
        &self,
        b: ResponseBuilder<'a>,
        tag: Option<&'a str>,
        headers: &[(&'a str, &'a str)],
        body: &'a [u8],
    ) -> Bytes {
        let mut b = b
            .fill_rport(self.remote.port())
            .top_via_param("received", self.remote.ip().to_string())
            .top_via_param("ms-received-port", self.remote.port().to_string())
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

    /// The Edge's answer to `req` for a finding: its status and reason, its headers, and its ms-diagnostics
    /// unless the Edge is faithful; a fresh To tag.
    pub(super) fn refuse(&mut self, now: Instant, req: &Message, f: &Finding) -> Bytes {
        let (status, reason) = f.sip().unwrap_or((500, "Server Internal Error"));
        let extra = f.response_headers();
        let mut headers: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let diagnostic = f.ms_diagnostic(&self.fqdn).map(|d| d.render());
        if let Some(d) = &diagnostic
            && !self.faithful
        {
            headers.push(("ms-diagnostics", d.as_str()));
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
