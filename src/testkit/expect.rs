//! Expectations on what a [`super::TestEdge`] decided and logged: plain data, matched against the events and
//! records seen, with the words of the failure message. No I/O here, so every message is a unit test.

use std::ops::{RangeFrom, RangeInclusive};

use crate::diagnostics::{DecisionEvent, VerdictKind};

/// What a decision event must carry; every field left unset matches anything.
///
/// `DecisionMatch::method("INVITE").status(504).diagnostics_code(1009)` matches the seed's Rule 1 refusal.
/// An INVITE's event carries the Edge's *first* answer (180 when a user rings, else the final status).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionMatch {
    method: Option<String>,
    status: Option<u16>,
    verdict: Option<VerdictKind>,
    code: Option<u32>,
    domain: Option<String>,
    peer_cert: Option<String>,
    result_code: Option<String>,
}

impl DecisionMatch {
    /// Any decision (e.g. to count all of them).
    pub fn any() -> Self {
        Self::default()
    }

    /// A decision about a request of `method` (`INVITE`, `OPTIONS`, …).
    pub fn method(method: &str) -> Self {
        Self::any().and_method(method)
    }

    /// Also: the request's method is `method`.
    pub fn and_method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Also: the SIP status the Edge sent.
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Also: accept, reject or limit.
    pub fn verdict(mut self, verdict: VerdictKind) -> Self {
        self.verdict = Some(verdict);
        self
    }

    /// Also: the ms-diagnostics code (1009, 1010, …).
    pub fn diagnostics_code(mut self, code: u32) -> Self {
        self.code = Some(code);
        self
    }

    /// Also: the sender domain.
    pub fn domain(mut self, domain: &str) -> Self {
        self.domain = Some(domain.to_ascii_lowercase());
        self
    }

    /// Also: the peer certificate's name.
    pub fn peer_cert(mut self, name: &str) -> Self {
        self.peer_cert = Some(name.to_owned());
        self
    }

    /// Also: the log record's result code contains `text` (`SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH`, `0xc3e93d67`).
    pub fn result_code(mut self, text: &str) -> Self {
        self.result_code = Some(text.to_owned());
        self
    }

    /// Whether `e` carries everything asked for.
    pub fn matches(&self, e: &DecisionEvent) -> bool {
        fn same<T: PartialEq>(want: &Option<T>, got: Option<&T>) -> bool {
            want.as_ref().is_none_or(|w| got == Some(w))
        }
        same(&self.method, e.method.as_ref())
            && same(&self.status, e.status.as_ref())
            && same(&self.verdict, Some(&e.verdict))
            && same(&self.code, e.ms_diagnostics_code.as_ref())
            && self.domain.as_ref().is_none_or(|d| {
                e.domain.as_deref().map(str::to_ascii_lowercase).as_ref() == Some(d)
            })
            && same(&self.peer_cert, e.peer_cert.as_ref())
            && self.result_code.as_ref().is_none_or(|t| {
                e.result_code
                    .as_deref()
                    .is_some_and(|r| r.contains(t.as_str()))
            })
    }

    /// In words: `a decision with method INVITE, status 504, ms-diagnostics 1009`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = &self.method {
            parts.push(format!("method {m}"));
        }
        if let Some(s) = self.status {
            parts.push(format!("status {s}"));
        }
        if let Some(v) = self.verdict {
            parts.push(format!("verdict {}", verdict_word(v)));
        }
        if let Some(c) = self.code {
            parts.push(format!("ms-diagnostics {c}"));
        }
        if let Some(d) = &self.domain {
            parts.push(format!("domain {d}"));
        }
        if let Some(p) = &self.peer_cert {
            parts.push(format!("peer certificate {p}"));
        }
        if let Some(r) = &self.result_code {
            parts.push(format!("result code containing {r}"));
        }
        if parts.is_empty() {
            "any decision".to_owned()
        } else {
            format!("a decision with {}", parts.join(", "))
        }
    }
}

fn verdict_word(v: VerdictKind) -> &'static str {
    match v {
        VerdictKind::Accept => "accept",
        VerdictKind::Reject => "reject",
        VerdictKind::Limit => "limit",
    }
}

/// How many times an expectation must be met: `1` (exactly), `1..=3`, `1..` (at least).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// Exactly this many.
    Exactly(usize),
    /// At least this many.
    AtLeast(usize),
    /// Between the two, both included.
    Between(usize, usize),
}

impl Times {
    /// Whether `n` is allowed.
    pub fn admits(self, n: usize) -> bool {
        match self {
            Times::Exactly(k) => n == k,
            Times::AtLeast(k) => n >= k,
            Times::Between(lo, hi) => (lo..=hi).contains(&n),
        }
    }

    /// In words: `exactly 1`, `at least 2`, `between 1 and 3`.
    pub fn describe(self) -> String {
        match self {
            Times::Exactly(k) => format!("exactly {k}"),
            Times::AtLeast(k) => format!("at least {k}"),
            Times::Between(lo, hi) => format!("between {lo} and {hi}"),
        }
    }
}

impl From<usize> for Times {
    fn from(n: usize) -> Self {
        Times::Exactly(n)
    }
}

impl From<RangeInclusive<usize>> for Times {
    fn from(r: RangeInclusive<usize>) -> Self {
        Times::Between(*r.start(), *r.end())
    }
}

impl From<RangeFrom<usize>> for Times {
    fn from(r: RangeFrom<usize>) -> Self {
        Times::AtLeast(r.start)
    }
}

/// What an expectation looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expected {
    /// Decision events matching this.
    Decision(DecisionMatch),
    /// Edge log records containing this text.
    Record(String),
}

/// One expectation and how often it must be met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expectation {
    pub(crate) what: Expected,
    pub(crate) times: Times,
}

impl Expectation {
    /// How many of `events` / `records` meet it.
    fn count(&self, events: &[DecisionEvent], records: &[String]) -> usize {
        match &self.what {
            Expected::Decision(m) => events.iter().filter(|e| m.matches(e)).count(),
            Expected::Record(t) => records.iter().filter(|r| r.contains(t.as_str())).count(),
        }
    }

    fn describe(&self) -> String {
        match &self.what {
            Expected::Decision(m) => m.describe(),
            Expected::Record(t) => format!("an Edge log record containing {t:?}"),
        }
    }
}

/// A decision in one line, for the list of what was seen: `INVITE → 504 reject (ms-diagnostics 1009)`.
pub fn decision_line(e: &DecisionEvent) -> String {
    let method = e.method.as_deref().unwrap_or("(TLS handshake)");
    let status = e
        .status
        .map_or_else(|| "no answer".to_owned(), |s| s.to_string());
    let code = e
        .ms_diagnostics_code
        .map(|c| format!(" (ms-diagnostics {c})"))
        .unwrap_or_default();
    format!("{method} → {status} {}{code}", verdict_word(e.verdict))
}

/// The failure message for `expectations` unmet by `events` and `records`, or `None` when all are met.
/// `edge` names the Edge (its FQDN and address); `lost` counts events the testkit could not read (its queue
/// overflowed), which makes every count doubtful and is reported as a failure of its own.
pub(crate) fn unmet(
    edge: &str,
    expectations: &[Expectation],
    events: &[DecisionEvent],
    records: &[String],
    lost: u64,
) -> Option<String> {
    let mut failures: Vec<String> = expectations
        .iter()
        .filter_map(|x| {
            let n = x.count(events, records);
            (!x.times.admits(n)).then(|| {
                format!(
                    "  - {}: expected {}, got {n}",
                    x.describe(),
                    x.times.describe()
                )
            })
        })
        .collect();
    if lost > 0 {
        failures.push(format!(
            "  - {lost} decision events were lost before the testkit read them; the counts above cannot be trusted"
        ));
    }
    if failures.is_empty() {
        return None;
    }
    let seen = if events.is_empty() {
        "  (none)".to_owned()
    } else {
        events
            .iter()
            .map(|e| format!("  {}", decision_line(e)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Some(format!(
        "the TestEdge {edge} did not meet {} of its {} expectations:\n{}\ndecisions seen:\n{seen}",
        failures.len() - usize::from(lost > 0),
        expectations.len(),
        failures.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(method: &str, status: u16, verdict: VerdictKind, code: Option<u32>) -> DecisionEvent {
        DecisionEvent {
            schema: 1,
            time: time::OffsetDateTime::UNIX_EPOCH,
            remote: "127.0.0.1:1".into(),
            peer_cert: Some("vcse.steven.lab".into()),
            method: Some(method.into()),
            call_id: Some("c".into()),
            domain: Some("acano.steven.lab".into()),
            verdict,
            status: Some(status),
            ms_diagnostics_code: code,
            ms_diagnostics: None,
            result_code: code
                .map(|_| "0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH".into()),
            log_data: Vec::new(),
            explanation: None,
            message_trust: None,
            partner_type: None,
            event: "decision",
        }
    }

    fn refused() -> DecisionEvent {
        event("INVITE", 504, VerdictKind::Reject, Some(1009))
    }

    #[test]
    fn a_match_needs_every_field_given() {
        let e = refused();
        assert!(DecisionMatch::any().matches(&e));
        assert!(DecisionMatch::method("invite").status(504).matches(&e));
        assert!(
            DecisionMatch::any()
                .verdict(VerdictKind::Reject)
                .diagnostics_code(1009)
                .domain("ACANO.steven.lab")
                .peer_cert("vcse.steven.lab")
                .result_code("NO_SRV_MATCH")
                .matches(&e)
        );
        assert!(!DecisionMatch::method("OPTIONS").matches(&e));
        assert!(!DecisionMatch::any().status(200).matches(&e));
        assert!(!DecisionMatch::any().diagnostics_code(1010).matches(&e));
        assert!(
            !DecisionMatch::any()
                .result_code("CERT_MISMATCH")
                .matches(&e)
        );
        let ok = event("OPTIONS", 200, VerdictKind::Accept, None);
        assert!(!DecisionMatch::any().diagnostics_code(1009).matches(&ok));
        assert!(!DecisionMatch::any().result_code("0x").matches(&ok));
    }

    #[test]
    fn matches_and_times_describe_themselves() {
        assert_eq!(DecisionMatch::any().describe(), "any decision");
        assert_eq!(
            DecisionMatch::method("INVITE")
                .status(504)
                .verdict(VerdictKind::Reject)
                .diagnostics_code(1009)
                .domain("acano.steven.lab")
                .peer_cert("vcse.steven.lab")
                .result_code("NO_SRV_MATCH")
                .describe(),
            "a decision with method INVITE, status 504, verdict reject, ms-diagnostics 1009, domain acano.steven.lab, \
             peer certificate vcse.steven.lab, result code containing NO_SRV_MATCH"
        );
        assert_eq!(Times::from(1).describe(), "exactly 1");
        assert_eq!(Times::from(2..).describe(), "at least 2");
        assert_eq!(Times::from(1..=3).describe(), "between 1 and 3");
        assert!(Times::from(1..=3).admits(3) && !Times::from(1..=3).admits(4));
        assert!(Times::from(2..).admits(9) && !Times::from(2..).admits(1));
        assert!(Times::from(0).admits(0) && !Times::from(0).admits(1));
    }

    #[test]
    fn met_expectations_give_no_message() {
        let x = [
            Expectation {
                what: Expected::Decision(DecisionMatch::method("INVITE").status(504)),
                times: Times::Exactly(1),
            },
            Expectation {
                what: Expected::Record("NO_SRV_MATCH".into()),
                times: Times::AtLeast(1),
            },
        ];
        let records = vec!["… SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH …".to_owned()];
        assert_eq!(
            unmet(
                "sip.skype.lab at 127.0.0.1:5061",
                &x,
                &[refused()],
                &records,
                0
            ),
            None
        );
        assert_eq!(unmet("e", &[], &[], &[], 0), None);
    }

    #[test]
    fn unmet_expectations_say_what_was_wanted_and_what_was_seen() {
        let x = [
            Expectation {
                what: Expected::Decision(DecisionMatch::method("INVITE").status(180)),
                times: Times::Exactly(1),
            },
            Expectation {
                what: Expected::Decision(DecisionMatch::any()),
                times: Times::Exactly(2),
            },
            Expectation {
                what: Expected::Record("CERT_MISMATCH".into()),
                times: Times::AtLeast(1),
            },
        ];
        let events = [refused(), event("OPTIONS", 200, VerdictKind::Accept, None)];
        assert_eq!(
            unmet("sip.skype.lab at 127.0.0.1:5061", &x, &events, &[], 0).unwrap(),
            "the TestEdge sip.skype.lab at 127.0.0.1:5061 did not meet 2 of its 3 expectations:\n\
             \x20 - a decision with method INVITE, status 180: expected exactly 1, got 0\n\
             \x20 - an Edge log record containing \"CERT_MISMATCH\": expected at least 1, got 0\n\
             decisions seen:\n\
             \x20 INVITE → 504 reject (ms-diagnostics 1009)\n\
             \x20 OPTIONS → 200 accept"
        );
    }

    #[test]
    fn lost_events_fail_on_their_own() {
        let x = [Expectation {
            what: Expected::Decision(DecisionMatch::any()),
            times: Times::AtLeast(0),
        }];
        assert_eq!(
            unmet("e", &x, &[], &[], 3).unwrap(),
            "the TestEdge e did not meet 0 of its 1 expectations:\n\
             \x20 - 3 decision events were lost before the testkit read them; the counts above cannot be trusted\n\
             decisions seen:\n  (none)"
        );
        let mut handshake = refused();
        handshake.method = None;
        handshake.status = None;
        handshake.ms_diagnostics_code = None;
        assert_eq!(
            decision_line(&handshake),
            "(TLS handshake) → no answer reject"
        );
    }
}
