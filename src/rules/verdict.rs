//! A decision and everything rendered from it, as one value: the status and reason sent, the ms-diagnostics,
//! the Edge log record, the explanation and the decision event all come from the same [`Finding`].

use super::{DomainName, Finding, RequestLine};
use crate::diagnostics::{DecisionEvent, EventContext, LogRecord, MsDiagnostic, VerdictKind};

/// What the rules decided about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The rules pass; `target` is the SRV target or fixed FQDN the certificate named.
    Accept {
        /// The accepted FQDN.
        target: DomainName,
    },
    /// The rules refuse, for this reason.
    Refuse(Finding),
}

/// A decision rendered for the Edge that made it: the diagnostic with its `source`, and (inbound) the log
/// record about the request. Built once per request; the response, the record and the event are read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The decision.
    pub decision: Decision,
    /// A refusal's diagnostic and record (boxed: most verdicts are acceptances, and a refusal is read once).
    wire: Option<Box<Wire>>,
}

/// What a refusal puts on the wire and in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wire {
    diagnostic: Option<MsDiagnostic>,
    log: Option<LogRecord>,
}

impl Verdict {
    /// Renders `decision` for the Edge `source` (its FQDN, `source=` of the diagnostics); with `request`, the log
    /// record the Edge writes about it (inbound).
    pub fn new(decision: Decision, source: &str, request: Option<&RequestLine<'_>>) -> Self {
        let wire = match &decision {
            Decision::Refuse(f) => Some(Box::new(Wire {
                diagnostic: f.ms_diagnostic(source),
                log: request.and_then(|r| f.log_record(r)),
            })),
            Decision::Accept { .. } => None,
        };
        Verdict { decision, wire }
    }

    /// A refusal `finding` rendered for the Edge `source`, without a log record (outbound: the Edge answers its
    /// own client).
    pub fn refuse(finding: Finding, source: &str) -> Self {
        Verdict::new(Decision::Refuse(finding), source, None)
    }

    /// A refusal at the TLS handshake of the connection from `peer` (`ip:port`): a record, no SIP answer.
    pub fn at_handshake(finding: Finding, peer: &str) -> Self {
        Verdict::new(
            Decision::Refuse(finding),
            "",
            Some(&RequestLine::connection(peer)),
        )
    }

    /// True for an acceptance.
    pub fn is_accept(&self) -> bool {
        matches!(self.decision, Decision::Accept { .. })
    }

    /// The finding of a refusal.
    pub fn finding(&self) -> Option<&Finding> {
        match &self.decision {
            Decision::Refuse(f) => Some(f),
            Decision::Accept { .. } => None,
        }
    }

    /// The status of a refusal the Edge answers.
    pub fn status(&self) -> Option<u16> {
        self.finding().and_then(Finding::sip).map(|(s, _)| s)
    }

    /// The reason phrase of a refusal the Edge answers.
    pub fn reason(&self) -> Option<&str> {
        self.finding().and_then(Finding::sip).map(|(_, r)| r)
    }

    /// The ms-diagnostics of a refusal.
    pub fn diagnostic(&self) -> Option<&MsDiagnostic> {
        self.wire.as_ref().and_then(|w| w.diagnostic.as_ref())
    }

    /// The Edge log record of a refusal, if the Edge writes one.
    pub fn log(&self) -> Option<&LogRecord> {
        self.wire.as_ref().and_then(|w| w.log.as_ref())
    }

    /// The explanation of a refusal.
    pub fn explanation(&self) -> Option<String> {
        self.finding().map(|f| f.explain().to_string())
    }

    /// The `--events` line for this verdict about a request. A refusal's status is the one sent; an acceptance
    /// has none yet (the users answer: the listener fills in the status it sent).
    pub fn to_event(&self, ctx: EventContext) -> DecisionEvent {
        let kind = self
            .finding()
            .map_or(VerdictKind::Accept, Finding::verdict_kind);
        DecisionEvent {
            status: self.status(),
            ms_diagnostics_code: self.diagnostic().map(|d| d.code),
            ms_diagnostics: self.diagnostic().map(MsDiagnostic::render),
            result_code: self.log().map(|l| l.result_code.render()),
            log_data: self.log().map(|l| l.data.clone()).unwrap_or_default(),
            explanation: self.explanation(),
            ..DecisionEvent::for_request(ctx, kind)
        }
    }

    /// The event of a refusal at the handshake: no request was read, so method, Call-ID and status are null.
    pub fn to_handshake_event(
        &self,
        time: time::OffsetDateTime,
        remote: String,
        peer_cert: Option<String>,
    ) -> DecisionEvent {
        let event = self.to_event(EventContext {
            time,
            remote,
            peer_cert,
            method: String::new(),
            call_id: String::new(),
            domain: None,
        });
        DecisionEvent {
            method: None,
            call_id: None,
            ..event
        }
    }
}
