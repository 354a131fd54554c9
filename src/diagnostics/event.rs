//! Decision events: one JSON object per decision of the inbound Edge, written as one line to `--events FILE`
//! (`events_file`) and sent to [`crate::edge::Edge::subscribe`] receivers.
//!
//! # Schema, version 1
//!
//! Every event carries every key below, in this order; a key without a value is `null` (never absent, never
//! an empty string standing for "none"). `schema` is the version of this layout: a change that renames,
//! removes or re-types a key increments it; adding a key does not.
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `schema` | number | `1` |
//! | `time` | string | when the Edge decided, RFC 3339, UTC |
//! | `remote` | string | the peer's socket address, `ip:port` |
//! | `peer_cert` | string or null | the peer certificate's name (CN, else first SAN); null when none was presented |
//! | `method` | string or null | the SIP method; null for a handshake refusal (no request was read) |
//! | `call_id` | string or null | the Call-ID; null for a handshake refusal |
//! | `domain` | string or null | the sender domain (first `sip:` P-Asserted-Identity host, else From host) |
//! | `verdict` | string | `accept`: the federation rules let the request through to the users; `reject`: the Edge refused it (federation rules, routing checks, or the TLS handshake); `limit`: a limit of the Edge refused it (503 with Retry-After) |
//! | `status` | number or null | the SIP status the Edge sent in answer (504, 403, 180, 200, 486, 404, 420, 503 …; for an INVITE the first answer, usually 180); null when nothing was sent (a refused handshake, an absorbed BENOTIFY) |
//! | `ms_diagnostics_code` | number or null | the ms-diagnostics code of the answer (also when `faithful` withheld the header from the peer) |
//! | `ms_diagnostics` | string or null | the whole ms-diagnostics value |
//! | `result_code` | string or null | `0x… SIPPROXY_E_…` of the Edge log record written for this decision |
//! | `log_data` | object | the log record's `Data:` pairs, in order (`{}` without a record) |
//! | `explanation` | string or null | what happened and the fix, in plain language |
//! | `message_trust` | string or null | the `ms-edge-proxy-message-trust` value the Edge stamps on the request when it passes it inward (`ms-source-type=AutoFederation;ms-ep-fqdn=…;ms-source-verified-user=verified;ms-source-network=federation;ms-remote-fqdn=…`); set once the federation rules passed (also when a partner limit or the verification level then refused the request), null before (nothing goes inward) |
//! | `partner_type` | string or null | `discovered`, `allowed-domain` or `allowed-server`, with `message_trust` |
//! | `event` | string | `decision`; the events file also holds `watch-list` lines ([`super::WatchEvent`]) |

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

/// The version of the event layout, written as `"schema"` in every event.
pub const EVENT_SCHEMA: u32 = 1;

/// Serialises `(k, v)` pairs as a JSON object, keeping their order.
fn pairs_as_map<S: Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

/// Serialises a timestamp as RFC 3339.
pub(super) fn rfc3339<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::Error;
    let text = t
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(S::Error::custom)?;
    s.serialize_str(&text)
}

/// What the Edge decided, as written in an event's `verdict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictKind {
    /// The request passed the federation rules and reached the emulated users.
    Accept,
    /// The Edge refused the request or the connection.
    Reject,
    /// A limit of the Edge (request rate, calls per connection) refused the request with 503.
    Limit,
}

/// One decision; see the module documentation for the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionEvent {
    /// Always [`EVENT_SCHEMA`].
    pub schema: u32,
    /// When the decision was made (RFC 3339).
    #[serde(serialize_with = "rfc3339")]
    pub time: OffsetDateTime,
    /// Remote socket address, `ip:port`.
    pub remote: String,
    /// Display name of the peer certificate, if one was presented.
    pub peer_cert: Option<String>,
    /// SIP method; `None` when no request was read (handshake refusals).
    pub method: Option<String>,
    /// Call-ID; `None` when no request was read.
    pub call_id: Option<String>,
    /// Sender (inbound) or target (outbound) domain.
    pub domain: Option<String>,
    /// Accept, reject or limit.
    pub verdict: VerdictKind,
    /// The SIP status sent in answer; `None` when nothing was sent.
    pub status: Option<u16>,
    /// ms-diagnostics code, if any.
    pub ms_diagnostics_code: Option<u32>,
    /// Full ms-diagnostics header value, if any.
    pub ms_diagnostics: Option<String>,
    /// `0x… SIPPROXY_E_…`, if a log record was written.
    pub result_code: Option<String>,
    /// Log record Data pairs.
    #[serde(serialize_with = "pairs_as_map")]
    pub log_data: Vec<(String, String)>,
    /// Plain-language explanation and fix.
    pub explanation: Option<String>,
    /// The `ms-edge-proxy-message-trust` value stamped inward, once the federation rules passed.
    pub message_trust: Option<String>,
    /// `discovered`, `allowed-domain` or `allowed-server`, with `message_trust`.
    pub partner_type: Option<&'static str>,
    /// Always `decision` (the events file also holds `watch-list` lines).
    pub event: &'static str,
}

/// The request-side facts of a decision event; the verdict fills in the rest (`rules::Verdict::to_event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventContext {
    /// When the decision was made.
    pub time: OffsetDateTime,
    /// Remote socket address, `ip:port`.
    pub remote: String,
    /// Display name of the peer certificate.
    pub peer_cert: Option<String>,
    /// SIP method.
    pub method: String,
    /// Call-ID.
    pub call_id: String,
    /// Sender (inbound) or target (outbound) domain.
    pub domain: Option<String>,
}

impl DecisionEvent {
    /// An event about the request of `ctx` with nothing decided yet: `verdict`, no status, no diagnostics, no
    /// record, no explanation (fill in what applies).
    pub fn for_request(ctx: EventContext, verdict: VerdictKind) -> Self {
        DecisionEvent {
            schema: EVENT_SCHEMA,
            time: ctx.time,
            remote: ctx.remote,
            peer_cert: ctx.peer_cert,
            method: Some(ctx.method),
            call_id: Some(ctx.call_id),
            domain: ctx.domain,
            verdict,
            status: None,
            ms_diagnostics_code: None,
            ms_diagnostics: None,
            result_code: None,
            log_data: Vec::new(),
            explanation: None,
            message_trust: None,
            partner_type: None,
            event: "decision",
        }
    }

    /// The event as one JSON line (no trailing newline).
    pub fn to_json_line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::ResultCode;
    use time::macros::datetime;

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn event_json_line() {
        let ev = DecisionEvent {
            ms_diagnostics_code: Some(1009),
            ms_diagnostics: Some("1009;…".into()),
            result_code: Some(ResultCode::NO_SRV_MATCH.render()),
            log_data: vec![
                kv("domain", "acano.steven.lab"),
                kv("fqdn1", "vcse.steven.lab:5061"),
            ],
            status: Some(504),
            ..DecisionEvent::for_request(
                EventContext {
                    time: datetime!(2017-03-02 07:10:46.230 UTC),
                    remote: "10.48.36.47:25002".into(),
                    peer_cert: Some("vcse.steven.lab".into()),
                    method: "INVITE".into(),
                    call_id: "c1".into(),
                    domain: Some("acano.steven.lab".into()),
                },
                VerdictKind::Reject,
            )
        };
        let line = ev.to_json_line().unwrap();
        assert_eq!(
            line,
            "{\"schema\":1,\"time\":\"2017-03-02T07:10:46.23Z\",\"remote\":\"10.48.36.47:25002\",\
             \"peer_cert\":\"vcse.steven.lab\",\"method\":\"INVITE\",\"call_id\":\"c1\",\
             \"domain\":\"acano.steven.lab\",\"verdict\":\"reject\",\"status\":504,\"ms_diagnostics_code\":1009,\
             \"ms_diagnostics\":\"1009;…\",\"result_code\":\"0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH\",\
             \"log_data\":{\"domain\":\"acano.steven.lab\",\"fqdn1\":\"vcse.steven.lab:5061\"},\"explanation\":null,\
             \"message_trust\":null,\"partner_type\":null,\"event\":\"decision\"}"
        );
    }

    #[test]
    fn absent_values_are_null_and_limit_is_a_verdict() {
        let ev = DecisionEvent {
            method: None,
            call_id: None,
            ..DecisionEvent::for_request(
                EventContext {
                    time: datetime!(2017-03-02 07:10:46 UTC),
                    remote: "127.0.0.1:1".into(),
                    peer_cert: None,
                    method: String::new(),
                    call_id: String::new(),
                    domain: None,
                },
                VerdictKind::Limit,
            )
        };
        let line = ev.to_json_line().unwrap();
        assert!(
            line.contains(
                "\"peer_cert\":null,\"method\":null,\"call_id\":null,\"domain\":null,\"verdict\":\"limit\",\"status\":null"
            ),
            "{line}"
        );
        assert!(
            line.contains("\"log_data\":{},\"explanation\":null,\"message_trust\":null,\"partner_type\":null,\"event\":\"decision\"}"),
            "{line}"
        );
    }
}
