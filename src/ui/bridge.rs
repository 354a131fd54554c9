//! The producers for an Edge without wire taps (see [`super`]): the Edge's decision events
//! ([`crate::edge::Edge::subscribe`]) turned into [`UiEvent::Decision`], and the Edge's DNS lookups observed
//! by wrapping its [`Lookup`] ([`ObservedLookup`], used with taps too). [`decision_view`] is also what the
//! taps start from before they put in the rule-by-rule steps.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::hub::UiHub;
use super::model::{
    DecisionView, DnsQuery, Outcome, ResponseView, Step, UiEvent, Verdict, split_fix,
};
use crate::diagnostics::{DecisionEvent, VerdictKind};
use crate::dns::{DnsFailure, Lookup, LookupFuture, SrvRecord};

/// Decisions waiting in the subscription above which the bridge stops looking up each one's Edge record
/// (a copy of the Edge's kept records per decision is fine for a lab, not under load).
const RECORD_LOOKUP_BACKLOG: usize = 16;

/// The Edge record written for `ev`, from the Edge's rendered records (newest last): the newest with the
/// event's result code and Call-ID (a refused handshake has none: then its peer port).
pub fn find_record(records: &[String], ev: &DecisionEvent) -> Option<String> {
    let rc = ev.result_code.as_deref()?;
    let rc = format!("Result-Code: {rc} ");
    let other = match &ev.call_id {
        Some(c) => format!("SIP-Call-ID: {c} "),
        None => {
            let port = ev.remote.rsplit_once(':').map(|(_, p)| p).unwrap_or("");
            format!(":{port} Data:")
        }
    };
    records
        .iter()
        .rev()
        .find(|r| r.contains(&rc) && r.contains(&other))
        .cloned()
}

/// The one step a decision event tells today: the outcome that decided, named by its result code.
fn summary_step(ev: &DecisionEvent) -> Step {
    let reason = ev
        .ms_diagnostics
        .as_deref()
        .and_then(|d| d.split("reason=\"").nth(1))
        .and_then(|r| r.split('"').next())
        .map(str::to_owned);
    let data = ev
        .log_data
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let symbol = ev
        .result_code
        .as_deref()
        .and_then(|rc| rc.split_once(' ').map(|(_, s)| s.to_owned()));
    match ev.verdict {
        VerdictKind::Accept => Step {
            rule: "federation rules".into(),
            outcome: Outcome::Pass,
            detail: "the request passed the federation rules and reached the Edge's users".into(),
        },
        VerdictKind::Limit => Step {
            rule: "Edge limits".into(),
            outcome: Outcome::Fail,
            detail: "a limit of the Edge refused the request".into(),
        },
        VerdictKind::Reject => Step {
            rule: symbol.unwrap_or_else(|| {
                if ev.method.is_none() {
                    "TLS handshake".into()
                } else {
                    "federation rules".into()
                }
            }),
            outcome: Outcome::Fail,
            detail: match (reason, data.is_empty()) {
                (Some(r), false) => format!("{r} ({data})"),
                (Some(r), true) => r,
                (None, false) => data,
                (None, true) => "refused".into(),
            },
        },
    }
}

/// The view of a decision event, with the Edge record written for it (if found).
pub fn decision_view(ev: &DecisionEvent, record: Option<String>) -> DecisionView {
    let (explanation, fix) = ev
        .explanation
        .as_deref()
        .map(split_fix)
        .unwrap_or((None, None));
    DecisionView {
        time: ev.time,
        conn: None,
        remote: ev.remote.clone(),
        peer_cert: ev.peer_cert.clone(),
        method: ev.method.clone(),
        call_id: ev.call_id.clone(),
        domain: ev.domain.clone(),
        verdict: match ev.verdict {
            VerdictKind::Accept => Verdict::Accept,
            VerdictKind::Reject => Verdict::Reject,
            VerdictKind::Limit => Verdict::Limit,
        },
        steps: vec![summary_step(ev)],
        response: ev.status.map(|status| ResponseView {
            status,
            reason: None,
        }),
        ms_diagnostics: ev.ms_diagnostics.clone(),
        ms_diagnostics_code: ev.ms_diagnostics_code,
        result_code: ev.result_code.clone(),
        log_data: ev.log_data.clone(),
        record,
        explanation,
        fix,
    }
    .bounded()
}

/// Publishes every decision of `rx` to `hub` until `shutdown` (or the Edge is gone). `records` gives the
/// Edge's rendered records (`Edge::log_records`).
pub async fn bridge_decisions(
    mut rx: broadcast::Receiver<DecisionEvent>,
    records: impl Fn() -> Vec<String> + Send,
    hub: UiHub,
    shutdown: CancellationToken,
) {
    loop {
        let ev = tokio::select! {
            () = shutdown.cancelled() => return,
            r = rx.recv() => r,
        };
        match ev {
            Ok(ev) => {
                let record = if ev.result_code.is_some() && rx.len() < RECORD_LOOKUP_BACKLOG {
                    find_record(&records(), &ev)
                } else {
                    None
                };
                hub.publish(UiEvent::Decision(decision_view(&ev, record)));
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "web view: fell behind the Edge's decisions");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// A [`Lookup`] that publishes every question and answer to the web view.
pub struct ObservedLookup {
    inner: Arc<dyn Lookup>,
    hub: UiHub,
}

impl ObservedLookup {
    /// Observes `inner`'s lookups.
    pub fn new(inner: Arc<dyn Lookup>, hub: UiHub) -> Self {
        ObservedLookup { inner, hub }
    }

    fn publish<T>(
        &self,
        question: &str,
        rtype: &str,
        started: Instant,
        r: &Result<Vec<T>, DnsFailure>,
        show: impl Fn(&T) -> String,
    ) {
        let server = self.inner.server();
        let (answers, failure) = match r {
            Ok(v) => (v.iter().take(64).map(show).collect(), None),
            Err(f) => (Vec::new(), Some(f.describe(&server))),
        };
        self.hub.publish(UiEvent::Dns(DnsQuery {
            time: time::OffsetDateTime::now_utc(),
            server,
            question: super::model::bounded(question.to_owned(), 256),
            rtype: rtype.to_owned(),
            answers,
            failure,
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        }));
    }
}

impl Lookup for ObservedLookup {
    fn srv<'a>(&'a self, name: &'a str) -> LookupFuture<'a, Vec<SrvRecord>> {
        Box::pin(async move {
            let started = Instant::now();
            let r = self.inner.srv(name).await;
            self.publish(name, "SRV", started, &r, |s| {
                format!("{} {} {} {}", s.priority, s.weight, s.port, s.target)
            });
            r
        })
    }

    fn addrs<'a>(&'a self, host: &'a str) -> LookupFuture<'a, Vec<IpAddr>> {
        Box::pin(async move {
            let started = Instant::now();
            let r = self.inner.addrs(host).await;
            self.publish(host, "A/AAAA", started, &r, IpAddr::to_string);
            r
        })
    }

    fn server(&self) -> String {
        self.inner.server()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::EventContext;
    use time::macros::datetime;

    fn reject() -> DecisionEvent {
        DecisionEvent {
            status: Some(504),
            ms_diagnostics_code: Some(1009),
            ms_diagnostics: Some(
                "1009;reason=\"No match for domain in DNS SRV results\";source=\"sip.skype.lab\""
                    .into(),
            ),
            result_code: Some(
                "0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH".into(),
            ),
            log_data: vec![("domain".into(), "acano.steven.lab".into())],
            explanation: Some(
                "The SRV record points outside the domain. Fix: publish a target inside it.".into(),
            ),
            ..DecisionEvent::for_request(
                EventContext {
                    time: datetime!(2017-03-02 07:10:46.230 UTC),
                    remote: "127.0.0.1:25002".into(),
                    peer_cert: Some("vcse.steven.lab".into()),
                    method: "INVITE".into(),
                    call_id: "c1".into(),
                    domain: Some("acano.steven.lab".into()),
                },
                VerdictKind::Reject,
            )
        }
    }

    #[test]
    fn a_rejection_becomes_its_step_response_and_fix() {
        let v = decision_view(&reject(), Some("record".into()));
        assert_eq!(v.verdict, Verdict::Reject);
        assert_eq!(v.response.as_ref().map(|r| r.status), Some(504));
        assert_eq!(
            v.steps,
            [Step {
                rule: "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH".into(),
                outcome: Outcome::Fail,
                detail: "No match for domain in DNS SRV results (domain=acano.steven.lab)".into(),
            }]
        );
        assert_eq!(
            v.explanation.as_deref(),
            Some("The SRV record points outside the domain.")
        );
        assert_eq!(v.fix.as_deref(), Some("publish a target inside it."));
        assert_eq!(v.record.as_deref(), Some("record"));
    }

    #[test]
    fn the_record_is_found_by_result_code_and_call_id() {
        let ev = reject();
        let mk = |cid: &str, rc: &str| {
            format!(
                "TL_WARN(TF_DIAG) … $$begin record\nSeverity: warning Text: t Result-Code: {rc} SIP-Start-Line: INVITE sip:x SIP/2.0 SIP-Call-ID: {cid} SIP-CSeq: 1 INVITE Peer: vcse.steven.lab:25002 Data: domain=\"acano.steven.lab\" $$end_record"
            )
        };
        let rc = ev.result_code.clone().unwrap();
        let records = vec![
            mk("c1", &rc),
            mk("c2", &rc),
            mk("c1", "0xc3e93e01 SIPPROXY_E_OTHER"),
        ];
        assert_eq!(find_record(&records, &ev), Some(records[0].clone()));
        let none = DecisionEvent {
            call_id: Some("c3".into()),
            ..ev.clone()
        };
        assert_eq!(find_record(&records, &none), None);
        let handshake = DecisionEvent {
            call_id: None,
            method: None,
            ..ev
        };
        assert_eq!(find_record(&records, &handshake), Some(records[1].clone()));
    }
}
