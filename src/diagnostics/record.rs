//! The Edge log record: SIPPROXY result codes and their severities, and the record in the Skype for Business
//! trace layout (`SIPAdminLog::WriteDiagnosticEvent`).

use serde::Serialize;
use time::OffsetDateTime;

use super::render_params;

/// Severity of an Edge diagnostic record; it also picks the trace level and source line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// `TL WARN(TF_DIAG)`, `SIPAdminLog.cpp(830)`.
    Warning,
    /// `TL ERROR(TF_DIAG)`, `SIPAdminLog.cpp(833)`.
    Error,
}

impl Severity {
    /// `warning` / `error`, as in `Severity:`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// `WARN` / `ERROR`, as in the trace level.
    pub fn level(self) -> &'static str {
        match self {
            Severity::Warning => "WARN",
            Severity::Error => "ERROR",
        }
    }

    /// The `SIAdminLog.cpp` line that writes records of this severity (830 / 833 in the seed).
    pub fn source_line(self) -> u32 {
        match self {
            Severity::Warning => 830,
            Severity::Error => 833,
        }
    }
}

/// A SIPPROXY_E_* result code with its log text and severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ResultCode {
    /// The HRESULT-style value (printed lower-case hex).
    pub value: u32,
    /// The `SIPPROXY_E_*` symbol.
    pub symbol: &'static str,
    /// The `Text:` of the record.
    pub text: &'static str,
    /// Severity of records carrying this code.
    pub severity: Severity,
    /// True when edgesim made the code up (no source found).
    pub synthetic: bool,
}

impl ResultCode {
    /// Sourced (seed): Rule 1 failed inbound. Data: `domain`, `fqdn1..N`.
    pub const NO_SRV_MATCH: ResultCode = ResultCode {
        value: 0xc3e9_3d6f,
        symbol: "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH",
        text: "The domain of the message resolved by DNS SRV but none of the FQDNs is in the same domain",
        severity: Severity::Warning,
        synthetic: false,
    };
    /// Sourced (seed): Rule 2 failed inbound. Data: `expectedfqdn`, `certName`, `info`.
    pub const CERT_MISMATCH: ResultCode = ResultCode {
        value: 0xc3e9_3d67,
        symbol: "SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH",
        text: "Message cannot be routed because the peer's certificate does not contain a matching FQDN",
        severity: Severity::Error,
        synthetic: false,
    };
    /// Synthetic: inbound sender domain has no usable federation SRV. Data: `domain`, `reason` (failure kind).
    pub const NO_SRV: ResultCode = ResultCode {
        value: 0xc3e9_3e01,
        symbol: "SIPPROXY_E_EPROUTING_MSG_DOMAIN_NO_SRV",
        text: "The domain of the message could not be resolved by DNS SRV",
        severity: Severity::Warning,
        synthetic: true,
    };
    /// Synthetic: inbound sender domain is on the blocked list. Data: `domain`.
    pub const BLOCKED_DOMAIN: ResultCode = ResultCode {
        value: 0xc3e9_3e02,
        symbol: "SIPPROXY_E_EPROUTING_MSG_BLOCKED_DOMAIN",
        text: "The domain of the message is blocked by the federation policy",
        severity: Severity::Warning,
        synthetic: true,
    };
    /// Synthetic: inbound sender domain is not allowed and partner discovery is off. Data: `domain`.
    pub const DOMAIN_NOT_ALLOWED: ResultCode = ResultCode {
        value: 0xc3e9_3e03,
        symbol: "SIPPROXY_E_EPROUTING_MSG_DOMAIN_NOT_ALLOWED",
        text: "The domain of the message is not an allowed federated domain and partner discovery is disabled",
        severity: Severity::Warning,
        synthetic: true,
    };
    /// Synthetic: federation is off (AllowFederatedUsers False). Data: `domain`, `AllowFederatedUsers`.
    pub const FEDERATION_DISABLED: ResultCode = ResultCode {
        value: 0xc3e9_3e06,
        symbol: "SIPPROXY_E_EPROUTING_MSG_FEDERATION_DISABLED",
        text: "The message is from a federated domain and federation is disabled on this Edge",
        severity: Severity::Warning,
        synthetic: true,
    };
    /// Synthetic: a discovered partner sent more than DiscoveredPartnerStandardRate messages in one second.
    /// Data: `domain`, `messagesInSecond`, `DiscoveredPartnerStandardRate`, `msEdgeProxyMessageTrust`.
    pub const PARTNER_THROTTLED: ResultCode = ResultCode {
        value: 0xc3e9_3e07,
        symbol: "SIPPROXY_E_EPROUTING_MSG_DISCOVERED_PARTNER_THROTTLED",
        text: "The discovered partner sent more messages per second than its standard rate and was throttled",
        severity: Severity::Warning,
        synthetic: true,
    };
    /// Synthetic: a discovered partner reached a new user past MaxContactsPerDiscoveredPartner. Data: `domain`,
    /// `user`, `MaxContactsPerDiscoveredPartner`, `DiscoveredPartnerReportPeriodMinutes`,
    /// `msEdgeProxyMessageTrust`.
    pub const PARTNER_CONTACTS_LIMIT: ResultCode = ResultCode {
        value: 0xc3e9_3e08,
        symbol: "SIPPROXY_E_EPROUTING_MSG_DISCOVERED_PARTNER_CONTACTS_LIMIT",
        text: "The discovered partner reached more distinct users in the report period than it may contact",
        severity: Severity::Warning,
        synthetic: true,
    };
    /// Synthetic: an unverified message for a user who does not have the sender in their contacts. Data:
    /// `domain`, `sender`, `user`, `VerificationLevel`, `msEdgeProxyMessageTrust`.
    pub const UNVERIFIED_SENDER: ResultCode = ResultCode {
        value: 0xc3e9_3e09,
        symbol: "SIPPROXY_E_ROUTING_MSG_UNVERIFIED_SENDER",
        text: "The unverified message was not delivered because the user does not have the sender in their contacts",
        severity: Severity::Warning,
        synthetic: true,
    };
    /// Synthetic: the peer's client certificate was refused at the TLS handshake. Data: `reason`, `certName`.
    pub const CLIENT_CERT_REJECTED: ResultCode = ResultCode {
        value: 0xc3e9_3e04,
        symbol: "SIPPROXY_E_TLS_CLIENT_CERT_REJECTED",
        text: "The TLS negotiation was aborted because the peer's client certificate is not acceptable",
        severity: Severity::Error,
        synthetic: true,
    };
    /// Synthetic: the peer certificate has an EKU extension without Client Authentication. Data: `certName`, `info`.
    pub const CERT_NO_CLIENT_AUTH: ResultCode = ResultCode {
        value: 0xc3e9_3e05,
        symbol: "SIPPROXY_E_ROUTING_MSG_CERT_NO_CLIENT_AUTH",
        text: "Message cannot be routed because the peer's certificate does not allow Client Authentication",
        severity: Severity::Error,
        synthetic: true,
    };
    /// Synthetic: the peer presented no client certificate (`tls.client_cert` optional or none), so Rule 2 cannot
    /// be checked. Data: `expectedfqdn`, `info`.
    pub const NO_PEER_CERT: ResultCode = ResultCode {
        value: 0xc3e9_3e10,
        symbol: "SIPPROXY_E_ROUTING_MSG_NO_PEER_CERT",
        text: "Message cannot be routed because the peer did not present a certificate",
        severity: Severity::Error,
        synthetic: true,
    };
    /// Sourced (Microsoft support, "Test-CsFederatedPartner fails"): a Route from a non-trusted source or not
    /// matching the connection. Data (edgesim's): `route`, `reason`.
    pub const ROUTING: ResultCode = ResultCode {
        value: 0xc3e9_3c5e,
        symbol: "SIPPROXY_E_ROUTING",
        text: "Cannot process Route headers from a non-trusted source, or with first Route field in the set not matching the connection on which the request arrived",
        severity: Severity::Error,
        synthetic: false,
    };
    /// Synthetic: the Request-URI is not in a domain this Edge serves. Data: `destinationDomain`, `edgeDomain`.
    pub const FOREIGN_DESTINATION: ResultCode = ResultCode {
        value: 0xc3e9_3e11,
        symbol: "SIPPROXY_E_ROUTING_MSG_FOREIGN_DESTINATION",
        text: "Message cannot be routed because its destination is not in a domain of this Edge",
        severity: Severity::Warning,
        synthetic: true,
    };
    /// Synthetic: the TLS handshake failed because the peer offers no TLS version the Edge accepts. Data:
    /// `reason`, `offered`, `accepted`.
    pub const TLS_VERSION_REFUSED: ResultCode = ResultCode {
        value: 0xc3e9_3e12,
        symbol: "SIPPROXY_E_TLS_PROTOCOL_VERSION_REFUSED",
        text: "The TLS negotiation was aborted because the peer offers no TLS version the Edge accepts",
        severity: Severity::Error,
        synthetic: true,
    };

    /// `0xc3e93d6f SIPPROXY_E_…`, as after `Result-Code:`.
    pub fn render(&self) -> String {
        format!("0x{:08x} {}", self.value, self.symbol)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Log record
// ---------------------------------------------------------------------------------------------------------------

/// One Edge diagnostic record (`SIPAdminLog::WriteDiagnosticEvent`), without its trace-line context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogRecord {
    /// `warning` or `error`.
    pub severity: Severity,
    /// The SIPPROXY code; its text is the record's `Text:`.
    pub result_code: ResultCode,
    /// The request line, e.g. `INVITE sip:stejanss@skype.lab SIP/2.0`.
    pub start_line: String,
    /// The Call-ID.
    pub call_id: String,
    /// The CSeq value, e.g. `2066245576 INVITE`.
    pub cseq: String,
    /// The peer: certificate name and source port, e.g. `vcse.steven.lab:25002`.
    pub peer: String,
    /// `Data:` pairs, in order.
    pub data: Vec<(String, String)>,
}

/// The trace-line context a record is written with (process, thread, time, sequence, record id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogContext {
    /// The Edge machine name, e.g. `sfvedge` (printed `[sfvedge\sfvedge]`).
    pub edge_host: String,
    /// Process id (4 hex digits in the trace).
    pub pid: u32,
    /// Thread id (4 hex digits in the trace).
    pub tid: u32,
    /// When the record was written; printed as UTC.
    pub timestamp: OffsetDateTime,
    /// Trace sequence number (8 hex digits).
    pub seq: u32,
    /// Record id in brackets.
    pub record_id: u64,
}

impl LogContext {
    /// Appends the trace line's `[host\host]pid.tid::MM/DD/YYYY-hh:mm:ss.mmm.SEQ` stamp (UTC), the part every
    /// record kind of the Edge's trace shares.
    pub fn push_stamp(&self, out: &mut String) {
        use std::fmt::Write;
        let t = self.timestamp.to_offset(time::UtcOffset::UTC);
        out.push('[');
        push_line_safe(out, &self.edge_host);
        out.push('\\');
        push_line_safe(out, &self.edge_host);
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "]{pid:04X}.{tid:04X}::{mo:02}/{d:02}/{y:04}-{h:02}:{mi:02}:{s:02}.{ms:03}.{seq:08X}",
            pid = self.pid,
            tid = self.tid,
            mo = u8::from(t.month()),
            d = t.day(),
            y = t.year(),
            h = t.hour(),
            mi = t.minute(),
            s = t.second(),
            ms = t.millisecond(),
            seq = self.seq,
        );
    }
}

impl LogRecord {
    /// A record for `result_code`, taking its severity from the code.
    pub fn new(
        result_code: ResultCode,
        start_line: &str,
        call_id: &str,
        cseq: &str,
        peer: &str,
        data: Vec<(String, String)>,
    ) -> Self {
        LogRecord {
            severity: result_code.severity,
            result_code,
            start_line: start_line.to_owned(),
            call_id: call_id.to_owned(),
            cseq: cseq.to_owned(),
            peer: peer.to_owned(),
            data,
        }
    }

    /// The value of a `Data:` key.
    pub fn data_value(&self, key: &str) -> Option<&str> {
        self.data
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The `Data:` value, `k="v";k2="v2"`.
    pub fn render_data(&self) -> String {
        render_params(&self.data)
    }

    /// The two lines of the record (header, body) joined by `\n`, no trailing newline; layout of FEDERATION.md.
    pub fn render(&self, ctx: &LogContext) -> String {
        let mut out = String::with_capacity(640);
        self.render_into(ctx, &mut out);
        out
    }

    /// [`LogRecord::render`], appended to `out`: the Edge renders each record once, into a buffer it reuses,
    /// without the intermediate strings of the peer-supplied values made line-safe.
    pub fn render_into(&self, ctx: &LogContext, out: &mut String) {
        use std::fmt::Write;
        out.push_str("TL ");
        out.push_str(self.severity.level());
        out.push_str("(TF_DIAG) ");
        ctx.push_stamp(out);
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            " (SIPStack,SIPAdminLog::WriteDiagnosticEvent:SIPAdminLog.cpp({line})) [{id}] $$begin record\n\
             Severity: {sev} Text: {text} Result-Code: 0x{rc:08x} {sym} SIP-Start-Line: ",
            line = self.severity.source_line(),
            id = ctx.record_id,
            sev = self.severity.as_str(),
            text = self.result_code.text,
            rc = self.result_code.value,
            sym = self.result_code.symbol,
        );
        push_line_safe(out, &self.start_line);
        out.push_str(" SIP-Call-ID: ");
        push_line_safe(out, &self.call_id);
        out.push_str(" SIP-CSeq: ");
        push_line_safe(out, &self.cseq);
        out.push_str(" Peer: ");
        push_line_safe(out, &self.peer);
        out.push_str(" Data: ");
        super::push_params(out, &self.data);
        out.push_str(" $$end_record");
    }
}

/// Appends a free-text log field (start line, Call-ID, peer) without its control characters, copying runs
/// rather than characters.
fn push_line_safe(out: &mut String, value: &str) {
    let mut rest = value;
    while let Some(at) = rest.find(char::is_control) {
        out.push_str(&rest[..at]);
        let c = rest[at..].chars().next().map_or(1, char::len_utf8);
        rest = &rest[at + c..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn ctx(pid: u32, tid: u32, ts: OffsetDateTime, seq: u32, id: u64) -> LogContext {
        LogContext {
            edge_host: "sfvedge".into(),
            pid,
            tid,
            timestamp: ts,
            seq,
            record_id: id,
        }
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn seed_record_no_srv_match() {
        let rec = LogRecord::new(
            ResultCode::NO_SRV_MATCH,
            "INVITE sip:stejanss@skype.lab SIP/2.0",
            "f1b3ad5d-183b-4632-b210-c2f9bec71960",
            "2066245576 INVITE",
            "vcse.steven.lab:25002",
            vec![
                kv("domain", "acano.steven.lab"),
                kv("fqdn1", "vcse.steven.lab:5061"),
            ],
        );
        let got = rec.render(&ctx(
            0x0584,
            0x0A44,
            datetime!(2017-03-02 07:10:46.230 UTC),
            0x773E,
            156659184,
        ));
        let want = "TL WARN(TF_DIAG) [sfvedge\\sfvedge]0584.0A44::03/02/2017-07:10:46.230.0000773E (SIPStack,SIPAdminLog::WriteDiagnosticEvent:SIPAdminLog.cpp(830)) [156659184] $$begin record\n\
Severity: warning Text: The domain of the message resolved by DNS SRV but none of the FQDNs is in the same domain Result-Code: 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH SIP-Start-Line: INVITE sip:stejanss@skype.lab SIP/2.0 SIP-Call-ID: f1b3ad5d-183b-4632-b210-c2f9bec71960 SIP-CSeq: 2066245576 INVITE Peer: vcse.steven.lab:25002 Data: domain=\"acano.steven.lab\";fqdn1=\"vcse.steven.lab:5061\" $$end_record";
        assert_eq!(got, want);
    }

    #[test]
    fn seed_record_cert_mismatch() {
        let rec = LogRecord::new(
            ResultCode::CERT_MISMATCH,
            "INVITE sip:stejanss@skype.lab SIP/2.0",
            "e144704c-1dd0-4ea7-929f-77e7e071c24c",
            "1567605805 INVITE",
            "vcse.steven.lab:25001",
            vec![
                kv("expectedfqdn", "vcse.acano.steven.lab"),
                kv("certName", "vcse.steven.lab"),
                kv(
                    "info",
                    "The peer certificate does not contain a matching FQDN",
                ),
            ],
        );
        let got = rec.render(&ctx(
            0x0B60,
            0x0D6C,
            datetime!(2017-03-02 06:30:40.025 UTC),
            0x5602,
            3634190282,
        ));
        let want = "TL ERROR(TF_DIAG) [sfvedge\\sfvedge]0B60.0D6C::03/02/2017-06:30:40.025.00005602 (SIPStack,SIPAdminLog::WriteDiagnosticEvent:SIPAdminLog.cpp(833)) [3634190282] $$begin record\n\
Severity: error Text: Message cannot be routed because the peer's certificate does not contain a matching FQDN Result-Code: 0xc3e93d67 SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH SIP-Start-Line: INVITE sip:stejanss@skype.lab SIP/2.0 SIP-Call-ID: e144704c-1dd0-4ea7-929f-77e7e071c24c SIP-CSeq: 1567605805 INVITE Peer: vcse.steven.lab:25001 Data: expectedfqdn=\"vcse.acano.steven.lab\";certName=\"vcse.steven.lab\";info=\"The peer certificate does not contain a matching FQDN\" $$end_record";
        assert_eq!(got, want);
    }

    #[test]
    fn peer_values_lose_their_control_characters_as_line_safe_says() {
        for v in ["plain", "a\r\nb", "\u{7f}x\u{85}y\t", "\n", "", "é\u{0}ü"] {
            let mut out = String::from(">");
            push_line_safe(&mut out, v);
            let safe: String = v.chars().filter(|c| !c.is_control()).collect();
            assert_eq!(out, format!(">{safe}"), "{v:?}");
        }
        let rec = LogRecord::new(
            ResultCode::NO_SRV,
            "OPTIONS sip:x SIP/2.0\r\nX: injected",
            "c\n",
            "1 OPTIONS",
            "p:1",
            vec![kv("domain", "a\"b\r\n")],
        );
        let got = rec.render(&ctx(1, 2, datetime!(2017-03-02 08:10:46.230 UTC), 3, 4));
        assert_eq!(got.lines().count(), 2, "{got}");
        assert!(
            got.contains(
                "SIP-Start-Line: OPTIONS sip:x SIP/2.0X: injected SIP-Call-ID: c SIP-CSeq:"
            ),
            "{got}"
        );
        assert!(
            got.ends_with("Data: domain=\"a\\\"b\" $$end_record"),
            "{got}"
        );
    }

    #[test]
    fn record_time_is_printed_in_utc() {
        let rec = LogRecord::new(
            ResultCode::NO_SRV,
            "OPTIONS sip:x SIP/2.0",
            "c",
            "1 OPTIONS",
            "p:1",
            vec![],
        );
        let got = rec.render(&ctx(1, 2, datetime!(2017-03-02 08:10:46.230 +01:00), 3, 4));
        assert!(got.contains("::03/02/2017-07:10:46.230.00000003 "), "{got}");
        assert!(got.contains(" Data:  $$end_record"), "{got}");
    }
}
