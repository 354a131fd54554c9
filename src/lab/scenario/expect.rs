//! Comparing what a case observed with what it expects: pure functions, so a wrong expectation is a unit test.

use serde::Serialize;

use super::format::{Expect, HandshakeExpect, MsDiagExpect};
use crate::diagnostics::MsDiagnostic;

/// What one case run produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// The TLS handshake was refused (no SIP response).
    pub handshake_refused: bool,
    /// Final SIP status.
    pub status: Option<u16>,
    /// Its reason phrase.
    pub reason: Option<String>,
    /// ms-diagnostics value of the final response (inbound: what the peer received; outbound: what the Skype client got).
    pub ms_diagnostics: Option<String>,
    /// The Edge log record's `0x… SIPPROXY_E_…`.
    pub result_code: Option<String>,
    /// The Edge log record's Data string.
    pub log_data: Option<String>,
    /// The Edge's plain-language explanation.
    pub explanation: Option<String>,
    /// The run itself went wrong (a timeout, a socket error): never a pass.
    pub error: Option<String>,
    /// What a subscriber or IM sender saw after the 2xx (left out of the JSON when nothing).
    #[serde(skip_serializing_if = "PresenceSeen::is_empty")]
    pub presence: PresenceSeen,
}

/// What the emulated Expressway-E saw after a 2xx to a SUBSCRIBE or an IM INVITE.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PresenceSeen {
    /// The 200's Expires.
    pub expires: Option<u32>,
    /// The first document's Content-Type.
    pub format: Option<String>,
    /// The first state's availability class.
    pub availability: Option<String>,
    /// The next notification's availability class.
    pub later_availability: Option<String>,
    /// The IM replies, in order.
    pub im_replies: Option<Vec<String>>,
}

impl PresenceSeen {
    /// Nothing seen (not a SUBSCRIBE or IM case, or no 2xx).
    pub fn is_empty(&self) -> bool {
        *self == PresenceSeen::default()
    }
}

/// The hex part of a Result-Code (`0xC3E93D6F SIPPROXY_…` → `0xc3e93d6f`).
fn result_hex(s: &str) -> String {
    s.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Every difference between `expect` and `got`, one line each; empty means PASS.
pub fn compare(expect: &Expect, got: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &got.error {
        // The other comparisons would only repeat "got nothing".
        return vec![format!("the case did not run to the end: {e}")];
    }
    match expect.handshake {
        Some(HandshakeExpect::Refused) if !got.handshake_refused => out.push(format!(
            "handshake: expected refused, got completed{}",
            got.status
                .map(|s| format!(" and a {s} response"))
                .unwrap_or_default()
        )),
        Some(HandshakeExpect::Completed) if got.handshake_refused => {
            out.push("handshake: expected completed, got refused".into())
        }
        _ => {}
    }
    if let Some(s) = expect.status {
        match (got.handshake_refused, got.status) {
            (true, _) => out.push(format!(
                "status: expected {s}, got no response (the handshake was refused)"
            )),
            (false, None) => out.push(format!("status: expected {s}, got no response")),
            (false, Some(g)) if g != s => out.push(format!("status: expected {s}, got {g}")),
            _ => {}
        }
    }
    if let Some(d) = &expect.ms_diagnostics {
        let g = got.ms_diagnostics.as_deref();
        match (d, g) {
            (MsDiagExpect::Absent, Some(g)) => {
                out.push(format!("ms-diagnostics: expected none, got {g}"))
            }
            (MsDiagExpect::Absent, None) => {}
            (MsDiagExpect::Exact(e), Some(g)) if e.trim() == g.trim() => {}
            (MsDiagExpect::Exact(e), g) => out.push(format!(
                "ms-diagnostics: expected\n      {e}\n    got\n      {}",
                g.unwrap_or("none")
            )),
            (MsDiagExpect::Code { code, .. }, None) => {
                out.push(format!("ms-diagnostics: expected {code}, got none"))
            }
            (MsDiagExpect::Code { code, params }, Some(g)) => {
                let have = MsDiagnostic::parse(g).filter(|d| d.code == *code);
                if let Some(have) = have {
                    let have = have.params;
                    for (k, v) in params {
                        match have.iter().find(|(hk, _)| hk.eq_ignore_ascii_case(k)) {
                            Some((_, hv)) if hv == v => {}
                            Some((_, hv)) => out.push(format!(
                                "ms-diagnostics {k}: expected \"{v}\", got \"{hv}\""
                            )),
                            None => out.push(format!(
                                "ms-diagnostics {k}: expected \"{v}\", absent from {g}"
                            )),
                        }
                    }
                } else {
                    out.push(format!("ms-diagnostics: expected code {code}, got {g}"));
                }
            }
        }
    }
    if let Some(rc) = &expect.result_code {
        match &got.result_code {
            None => out.push(format!("result code: expected {rc}, got no log record")),
            Some(g) => {
                let matches = if rc.trim().contains(' ') {
                    rc.trim().eq_ignore_ascii_case(g.trim())
                } else {
                    result_hex(rc) == result_hex(g)
                };
                if !matches {
                    out.push(format!("result code: expected {rc}, got {g}"));
                }
            }
        }
    }
    if let Some(data) = &expect.log_data {
        match &got.log_data {
            Some(g) if g == data => {}
            Some(g) => out.push(format!(
                "log Data: expected\n      {data}\n    got\n      {g}"
            )),
            None => out.push(format!("log Data: expected {data}, got no log record")),
        }
    }
    let p = &got.presence;
    if let Some(e) = expect.expires
        && p.expires != Some(e)
    {
        let got = p
            .expires
            .map_or_else(|| "none".to_owned(), |g| g.to_string());
        out.push(format!("expires: expected {e}, got {got}"));
    }
    let same = |want: &Option<String>, got: &Option<String>| match (want, got) {
        (Some(w), Some(g)) => w.eq_ignore_ascii_case(g),
        (Some(_), None) => false,
        (None, _) => true,
    };
    for (key, want, got) in [
        ("format", &expect.format, &p.format),
        ("availability", &expect.availability, &p.availability),
        (
            "later_availability",
            &expect.later_availability,
            &p.later_availability,
        ),
    ] {
        if !same(want, got) {
            out.push(format!(
                "{key}: expected {}, got {}",
                want.as_deref().unwrap_or_default(),
                got.as_deref().unwrap_or("nothing")
            ));
        }
    }
    if let Some(want) = &expect.im_replies
        && p.im_replies.as_ref() != Some(want)
    {
        out.push(format!(
            "im_replies: expected {want:?}, got {:?}",
            p.im_replies.as_deref().unwrap_or_default()
        ));
    }
    if let Some(text) = &expect.explanation {
        let has = got
            .explanation
            .as_deref()
            .is_some_and(|x| x.to_lowercase().contains(&text.to_lowercase()));
        if !has {
            out.push(format!(
                "explanation: expected it to mention \"{text}\", got {}",
                got.explanation
                    .as_deref()
                    .map_or("none".to_owned(), |x| format!("\"{x}\""))
            ));
        }
    }
    out
}

/// One-cell summary of an expectation: `504 · 1009 · 0xc3e93d6f`, or `handshake refused`.
pub fn summarize_expect(e: &Expect) -> String {
    let mut parts = Vec::new();
    if e.handshake == Some(HandshakeExpect::Refused) {
        parts.push("handshake refused".to_owned());
    }
    if let Some(s) = e.status {
        parts.push(s.to_string());
    }
    match &e.ms_diagnostics {
        Some(MsDiagExpect::Absent) => parts.push("no ms-diag".into()),
        Some(d) => {
            if let Some(c) = d.code() {
                parts.push(c.to_string());
            }
        }
        None => {}
    }
    if let Some(rc) = &e.result_code {
        parts.push(result_hex(rc));
    }
    parts.join(" · ")
}

/// One-cell summary of an observation, in the same shape as [`summarize_expect`].
pub fn summarize_observed(o: &Observed) -> String {
    let mut parts = Vec::new();
    if o.handshake_refused {
        parts.push("handshake refused".to_owned());
    }
    if let Some(s) = o.status {
        parts.push(s.to_string());
    }
    if let Some(c) = o.ms_diagnostics.as_deref().and_then(MsDiagnostic::code_of) {
        parts.push(c.to_string());
    }
    if let Some(rc) = &o.result_code {
        parts.push(result_hex(rc));
    }
    if parts.is_empty() {
        parts.push(
            if o.error.is_some() {
                "error"
            } else {
                "nothing"
            }
            .to_owned(),
        );
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const E1009: &str = "1009;reason=\"No match for domain in DNS SRV results\";domain=\"cms.steven.lab\";fqdn1=\"vcse.sub.cms.steven.lab:5061\";source=\"sip.skype.lab\"";

    fn observed_1009() -> Observed {
        Observed {
            status: Some(504),
            reason: Some("Server time-out".into()),
            ms_diagnostics: Some(E1009.into()),
            ..Observed::default()
        }
    }

    #[test]
    fn params_split_outside_quotes_only() {
        let p = MsDiagnostic::parse(
            "1010;reason=\"a;b\";HRESULT=\"0x80090322 (SEC_E_WRONG_PRINCIPAL)\"",
        )
        .unwrap()
        .params;
        assert_eq!(
            p,
            vec![
                ("reason".to_owned(), "a;b".to_owned()),
                (
                    "HRESULT".to_owned(),
                    "0x80090322 (SEC_E_WRONG_PRINCIPAL)".to_owned()
                )
            ]
        );
        assert_eq!(MsDiagnostic::code_of(E1009), Some(1009));
        assert_eq!(MsDiagnostic::code_of("x;y"), None);
    }

    #[test]
    fn matching_expectation_passes() {
        let mut params = BTreeMap::new();
        params.insert("domain".to_owned(), "cms.steven.lab".to_owned());
        params.insert(
            "fqdn1".to_owned(),
            "vcse.sub.cms.steven.lab:5061".to_owned(),
        );
        let e = Expect {
            status: Some(504),
            ms_diagnostics: Some(MsDiagExpect::Code { code: 1009, params }),
            ..Expect::default()
        };
        assert_eq!(compare(&e, &observed_1009()), Vec::<String>::new());
        let exact = Expect {
            ms_diagnostics: Some(MsDiagExpect::Exact(E1009.into())),
            ..e
        };
        assert!(compare(&exact, &observed_1009()).is_empty());
    }

    #[test]
    fn wrong_expectation_fails_with_a_readable_diff() {
        let mut params = BTreeMap::new();
        params.insert("fqdn1".to_owned(), "vcse.cms.steven.lab:5061".to_owned());
        let e = Expect {
            status: Some(200),
            ms_diagnostics: Some(MsDiagExpect::Code { code: 1009, params }),
            result_code: Some("0xc3e93d6f".into()),
            ..Expect::default()
        };
        assert_eq!(
            compare(&e, &observed_1009()),
            vec![
                "status: expected 200, got 504".to_owned(),
                "ms-diagnostics fqdn1: expected \"vcse.cms.steven.lab:5061\", got \"vcse.sub.cms.steven.lab:5061\"".to_owned(),
                "result code: expected 0xc3e93d6f, got no log record".to_owned(),
            ]
        );
    }

    #[test]
    fn handshake_refusal_is_compared() {
        let e = Expect {
            handshake: Some(HandshakeExpect::Refused),
            ..Expect::default()
        };
        assert_eq!(
            compare(&e, &observed_1009()),
            vec!["handshake: expected refused, got completed and a 504 response".to_owned()]
        );
        let refused = Observed {
            handshake_refused: true,
            ..Observed::default()
        };
        assert!(compare(&e, &refused).is_empty());
        let status = Expect {
            status: Some(200),
            ..Expect::default()
        };
        assert_eq!(
            compare(&status, &refused),
            vec!["status: expected 200, got no response (the handshake was refused)".to_owned()]
        );
    }

    #[test]
    fn result_code_matches_on_hex_or_full_text() {
        let got = Observed {
            status: Some(504),
            result_code: Some(
                "0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH".into(),
            ),
            log_data: Some("domain=\"acano.steven.lab\";fqdn1=\"vcse.steven.lab:5061\"".into()),
            ..Observed::default()
        };
        let e = Expect {
            result_code: Some("0xC3E93D6F".into()),
            log_data: Some("domain=\"acano.steven.lab\";fqdn1=\"vcse.steven.lab:5061\"".into()),
            ..Expect::default()
        };
        assert!(compare(&e, &got).is_empty());
        let wrong = Expect {
            result_code: Some("0xc3e93d6f SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH".into()),
            ..Expect::default()
        };
        assert_eq!(compare(&wrong, &got).len(), 1);
    }

    #[test]
    fn escaped_values_compare_as_the_edge_renders_them() {
        // A certificate name with a quote: the Edge's record escapes it, and so does the observation.
        let name = "vcse \"lab\"";
        let pairs = vec![("certName".to_owned(), name.to_owned())];
        let got = Observed {
            status: Some(504),
            ms_diagnostics: Some(MsDiagnostic::new(1010, &[("PeerServer", name)]).render()),
            log_data: Some(crate::diagnostics::render_params(&pairs)),
            ..Observed::default()
        };
        let mut params = BTreeMap::new();
        params.insert("PeerServer".to_owned(), name.to_owned());
        let e = Expect {
            status: Some(504),
            ms_diagnostics: Some(MsDiagExpect::Code { code: 1010, params }),
            log_data: Some("certName=\"vcse \\\"lab\\\"\"".to_owned()),
            ..Expect::default()
        };
        assert_eq!(compare(&e, &got), Vec::<String>::new());
    }

    #[test]
    fn an_error_never_passes() {
        let got = Observed {
            error: Some("no response within 5 s".into()),
            ..Observed::default()
        };
        assert_eq!(
            compare(&Expect::default(), &got),
            vec!["the case did not run to the end: no response within 5 s".to_owned()]
        );
        assert_eq!(summarize_observed(&got), "error");
    }

    #[test]
    fn summaries_line_up() {
        let e = Expect {
            status: Some(504),
            ms_diagnostics: Some(MsDiagExpect::Exact(E1009.into())),
            result_code: Some("0xC3E93D6F SIPPROXY_E_X".into()),
            ..Expect::default()
        };
        assert_eq!(summarize_expect(&e), "504 · 1009 · 0xc3e93d6f");
        assert_eq!(summarize_observed(&observed_1009()), "504 · 1009");
    }
}
