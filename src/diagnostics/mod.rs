//! The catalogue of what the Edge says: ms-diagnostics codes with their reasons and parameter layouts (and the
//! parser beside the renderer, [`MsDiagnostic::parse`]), HRESULTs, Winsock failures; the SIPPROXY result codes
//! and the Edge log record are in `record`, the decision events (`--events FILE`) and their schema in `event`.
//! Which outcome carries which of them is the rulebook's ([`crate::rules::Finding`]).
//!
//! Sourced strings come from `FEDERATION.md`, the seed document and `notes/edge-behaviour.md` §1–§2; anything
//! not found there is marked *synthetic* where it is defined.

use serde::Serialize;
use std::fmt;

mod event;
mod record;
mod watch;
pub use event::{DecisionEvent, EVENT_SCHEMA, EventContext, VerdictKind};
pub use record::{LogContext, LogRecord, ResultCode, Severity};
pub use watch::{WatchEntry, WatchEvent, WatchReason};

/// Renders `k="v";k2="v2"`, the compact form shared by ms-diagnostics parameters and log `Data:` (values made
/// safe by escaping `"` and `\`, control characters dropped). [`parse_params`] reads it back.
pub fn render_params(params: &[(String, String)]) -> String {
    let mut out = String::new();
    push_params(&mut out, params);
    out
}

/// [`render_params`], appended to `out` (the log record renders into a reused buffer). A value is made safe
/// inside its quotes: `"` and `\` escaped, control characters dropped (CR/LF would inject headers or log lines;
/// values such as domains and certificate names come from the peer).
pub(crate) fn push_params(out: &mut String, params: &[(String, String)]) {
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_control() => {}
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// Reads `k="v";k2=v2` back into pairs, the inverse of [`render_params`]: `;` inside quotes does not split,
/// `\"` and `\\` inside quotes are one character, unquoted values are trimmed. A part without `=` is skipped.
pub fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ';' {
                break;
            }
            key.push(c);
            chars.next();
        }
        let has_value = chars.next() == Some('=');
        let mut value = String::new();
        if has_value {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
                // Anything between the closing quote and the next `;` is not part of the value.
                for c in chars.by_ref() {
                    if c == ';' {
                        break;
                    }
                }
            } else {
                for c in chars.by_ref() {
                    if c == ';' {
                        break;
                    }
                    value.push(c);
                }
                value = value.trim().to_owned();
            }
        }
        let key = key.trim();
        if has_value && !key.is_empty() {
            out.push((key.to_owned(), value));
        }
        if chars.peek().is_none() {
            return out;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// HRESULTs and Winsock codes
// ---------------------------------------------------------------------------------------------------------------

/// The Schannel HRESULTs a 1010 can carry (notes §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Hresult {
    /// Name mismatch; the only one observed in a real 1010.
    WrongPrincipal,
    /// Chain does not lead to a trusted root.
    UntrustedRoot,
    /// Certificate expired (also used for not-yet-valid).
    CertExpired,
    /// Certificate unusable for another reason.
    CertUnknown,
    /// Handshake failure / decode error.
    IllegalMessage,
    /// Required EKU missing. Value from the Windows SDK `winerror.h`, not from the notes.
    CertWrongUsage,
    /// No certificate to check: the peer presented none. Value from `winerror.h`; that the Edge reports this
    /// HRESULT for a peer without a client certificate is synthetic (a real Edge refuses the handshake).
    NoCredentials,
}

impl Hresult {
    /// The 32-bit value.
    pub fn value(self) -> u32 {
        match self {
            Hresult::WrongPrincipal => 0x8009_0322,
            Hresult::UntrustedRoot => 0x8009_0325,
            Hresult::CertExpired => 0x8009_0328,
            Hresult::CertUnknown => 0x8009_0327,
            Hresult::IllegalMessage => 0x8009_0326,
            Hresult::CertWrongUsage => 0x8009_0349,
            Hresult::NoCredentials => 0x8009_030E,
        }
    }

    /// The `SEC_E_*` symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Hresult::WrongPrincipal => "SEC_E_WRONG_PRINCIPAL",
            Hresult::UntrustedRoot => "SEC_E_UNTRUSTED_ROOT",
            Hresult::CertExpired => "SEC_E_CERT_EXPIRED",
            Hresult::CertUnknown => "SEC_E_CERT_UNKNOWN",
            Hresult::IllegalMessage => "SEC_E_ILLEGAL_MESSAGE",
            Hresult::CertWrongUsage => "SEC_E_CERT_WRONG_USAGE",
            Hresult::NoCredentials => "SEC_E_NO_CREDENTIALS",
        }
    }

    /// The `ErrorType=` text of a 1010 for this case.
    pub fn error_type(self) -> &'static str {
        match self {
            // Sourced: the seed's 1010.
            Hresult::WrongPrincipal => "The peer certificate does not contain a matching FQDN",
            // Synthetic from here on: no real 1010 with these HRESULTs was found.
            Hresult::UntrustedRoot => {
                "The peer certificate is not issued by a trusted certification authority"
            }
            Hresult::CertExpired => "The peer certificate has expired or is not yet valid",
            Hresult::CertUnknown => "The peer certificate could not be validated",
            Hresult::IllegalMessage => "The TLS negotiation with the peer failed",
            Hresult::CertWrongUsage => {
                "The peer certificate does not have the required enhanced key usage"
            }
            Hresult::NoCredentials => "The peer did not present a certificate",
        }
    }

    /// `0x80090322 (SEC_E_WRONG_PRINCIPAL)`, spaced as FEDERATION.md writes it.
    pub fn render(self) -> String {
        format!("0x{:08X} ({})", self.value(), self.symbol())
    }
}

/// Winsock failures seen when the Edge connects to a peer (1046/1047 parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Winsock {
    /// 10054: the peer reset the connection (during TLS: it did not trust our client certificate).
    ConnReset,
    /// 10061: nothing listening.
    ConnRefused,
    /// 10060: no answer in time.
    TimedOut,
    /// 10065: no route to the host.
    HostUnreachable,
}

impl Winsock {
    /// The Winsock error number.
    pub fn code(self) -> u32 {
        match self {
            Winsock::ConnReset => 10054,
            Winsock::ConnRefused => 10061,
            Winsock::TimedOut => 10060,
            Winsock::HostUnreachable => 10065,
        }
    }

    /// The `WSAE*` symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Winsock::ConnReset => "WSAECONNRESET",
            Winsock::ConnRefused => "WSAECONNREFUSED",
            Winsock::TimedOut => "WSAETIMEDOUT",
            Winsock::HostUnreachable => "WSAEHOSTUNREACH",
        }
    }

    /// `WinsockFailureDescription=`: 10054 is the observed text; the others are the Windows message texts.
    pub fn description(self) -> &'static str {
        match self {
            Winsock::ConnReset => "The peer forced closure of the connection",
            Winsock::ConnRefused => {
                "No connection could be made because the target machine actively refused it"
            }
            Winsock::TimedOut => {
                "A connection attempt failed because the connected party did not properly respond after a period of time, or established connection failed because connected host has failed to respond"
            }
            Winsock::HostUnreachable => "A socket operation was attempted to an unreachable host",
        }
    }

    /// `10054(WSAECONNRESET)`, unspaced as observed.
    pub fn render(self) -> String {
        format!("{}({})", self.code(), self.symbol())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// ms-diagnostics
// ---------------------------------------------------------------------------------------------------------------

/// One `ms-diagnostics` header value: the code and its parameters in wire order (casing differs per code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MsDiagnostic {
    /// The ErrorId, e.g. 1009.
    pub code: u32,
    /// Parameters in order, names with their per-code casing, values unquoted.
    pub params: Vec<(String, String)>,
}

/// Reason strings, exactly as observed on the wire (notes §1.3), or as FEDERATION.md writes them.
pub mod reason {
    /// 1002 (spec text, trailing dot dropped like the other observed forms).
    pub const FEDERATION_NOT_AUTHORIZED: &str =
        "From URI not authorized to communicate with federated partners";
    /// 1005 (spec text, trailing dot dropped).
    pub const CANNOT_ROUTE_TO_DOMAIN: &str = "Cannot route to destination domain";
    /// 1008.
    pub const NO_SRV: &str = "Unable to resolve DNS SRV record";
    /// 1009.
    pub const NO_SRV_MATCH: &str = "No match for domain in DNS SRV results";
    /// 1010.
    pub const CERT_TRUST: &str = "Certificate trust with another server could not be established";
    /// 1014. Synthetic: the spec table lists it; no field trace was found.
    pub const NO_A_RECORD: &str = "Unable to resolve DNS A record";
    /// 1027.
    pub const REQUEST_TYPE_NOT_FEDERATED: &str =
        "Cannot route this type of SIP request to or from federated partners";
    /// 1034.
    pub const PEER_NO_DIAGNOSTIC: &str =
        "Previous hop federated peer did not report diagnostic information";
    /// 1046. Synthetic: not in the notes' sources; the wording is the one Lync admins quote for connect failures.
    pub const CONNECT_FAILED: &str = "Failed to connect to a federated peer server";
    /// 1047.
    pub const TLS_NEGOTIATION_FAILED: &str =
        "Failed to complete TLS negotiation with a federated peer server";
    /// 4005 (FEDERATION.md form, no trailing dot).
    pub const USER_NOT_FOUND: &str = "Destination URI either not enabled for SIP or does not exist";
    /// 1090 (synthetic): a member of an emulated Edge pool is out of service (fault mode `503`).
    pub const POOL_MEMBER_OUT_OF_SERVICE: &str = "Edge pool member is out of service";
}

impl MsDiagnostic {
    /// A diagnostic from a code and `(name, value)` pairs.
    pub fn new(code: u32, params: &[(&str, &str)]) -> Self {
        MsDiagnostic {
            code,
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// The header value in compact form: `1009;reason="…";domain="…";source="…"`.
    pub fn render(&self) -> String {
        if self.params.is_empty() {
            self.code.to_string()
        } else {
            format!("{};{}", self.code, render_params(&self.params))
        }
    }

    /// Reads a header value back (`1009;reason="…";domain="…"`), the inverse of [`MsDiagnostic::render`]:
    /// escaped quotes and backslashes inside quoted values are unescaped. `None` when it does not start with a
    /// code.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let (head, rest) = value.split_once(';').unwrap_or((value, ""));
        let code = head.trim().parse().ok()?;
        Some(MsDiagnostic {
            code,
            params: parse_params(rest),
        })
    }

    /// The code at the start of a header value (`1009;reason=…` → 1009), without reading the parameters.
    pub fn code_of(value: &str) -> Option<u32> {
        value.split(';').next()?.trim().parse().ok()
    }

    /// The value of a parameter, by exact name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `reason` parameter.
    pub fn reason(&self) -> Option<&str> {
        self.param("reason")
    }

    /// 1002: the sender (or destination) is not allowed to federate (403). Parameters beyond reason/source: none.
    pub fn e1002(source: &str) -> Self {
        Self::new(
            1002,
            &[
                ("reason", reason::FEDERATION_NOT_AUTHORIZED),
                ("source", source),
            ],
        )
    }

    /// 1005: the Request-URI is not in a domain this Edge serves (404). The spec gives the reason only; the
    /// status and the parameters beyond reason/source are edgesim's choice (none added).
    pub fn e1005(source: &str) -> Self {
        Self::new(
            1005,
            &[
                ("reason", reason::CANNOT_ROUTE_TO_DOMAIN),
                ("source", source),
            ],
        )
    }

    /// 1008: no federation SRV record for `domain`.
    pub fn e1008(domain: &str, source: &str) -> Self {
        Self::new(
            1008,
            &[
                ("reason", reason::NO_SRV),
                ("domain", domain),
                ("source", source),
            ],
        )
    }

    /// 1009: no SRV target is in `domain`; `fqdns` are the `"T:port"` targets, numbered fqdn1..N.
    pub fn e1009(domain: &str, fqdns: &[String], source: &str) -> Self {
        let mut params = vec![
            ("reason".to_owned(), reason::NO_SRV_MATCH.to_owned()),
            ("domain".to_owned(), domain.to_owned()),
        ];
        for (i, f) in fqdns.iter().enumerate() {
            params.push((format!("fqdn{}", i + 1), f.clone()));
        }
        params.push(("source".to_owned(), source.to_owned()));
        MsDiagnostic { code: 1009, params }
    }

    /// 1010: TLS trust with the peer failed; `tls_target` is the SRV target, `peer_server` the certificate name.
    pub fn e1010(hresult: Hresult, tls_target: &str, peer_server: &str, source: &str) -> Self {
        Self::new(
            1010,
            &[
                ("reason", reason::CERT_TRUST),
                ("ErrorType", hresult.error_type()),
                ("tls-target", tls_target),
                ("PeerServer", peer_server),
                ("HRESULT", &hresult.render()),
                ("source", source),
            ],
        )
    }

    /// 1014 (synthetic: no field trace was found): the SRV target `fqdn` has no A/AAAA record.
    pub fn e1014(fqdn: &str, source: &str) -> Self {
        Self::new(
            1014,
            &[
                ("reason", reason::NO_A_RECORD),
                ("fqdn", fqdn),
                ("source", source),
            ],
        )
    }

    /// 1027: this request type may not cross federation.
    pub fn e1027(source: &str) -> Self {
        Self::new(
            1027,
            &[
                ("reason", reason::REQUEST_TYPE_NOT_FEDERATED),
                ("source", source),
            ],
        )
    }

    /// 1034: the federated peer answered an error without its own ms-diagnostics (note the capitalised keys).
    pub fn e1034(domain: &str, peer_server: &str, source: &str) -> Self {
        Self::new(
            1034,
            &[
                ("reason", reason::PEER_NO_DIAGNOSTIC),
                ("Domain", domain),
                ("PeerServer", peer_server),
                ("source", source),
            ],
        )
    }

    /// 1046 (synthetic code choice): the TCP connection to the peer could not be made.
    pub fn e1046(winsock: Winsock, source: &str) -> Self {
        Self::winsock_failure(1046, reason::CONNECT_FAILED, winsock, source)
    }

    /// 1047: the TLS handshake with the peer failed at the socket level (typically 10054, reset by the peer).
    pub fn e1047(winsock: Winsock, source: &str) -> Self {
        Self::winsock_failure(1047, reason::TLS_NEGOTIATION_FAILED, winsock, source)
    }

    /// The socket-failure diagnostics (1046, 1047): reason, the Winsock code and its description, source.
    fn winsock_failure(code: u32, reason: &str, winsock: Winsock, source: &str) -> Self {
        Self::new(
            code,
            &[
                ("reason", reason),
                ("WinsockFailureCode", &winsock.render()),
                ("WinsockFailureDescription", winsock.description()),
                ("source", source),
            ],
        )
    }

    /// 1090 (synthetic: no field trace was found; edgesim's code for its pool fault mode `503`): the pool member
    /// `member` (its `ip:port`) is out of service and answers every request 503.
    pub fn e1090(member: &str, source: &str) -> Self {
        Self::new(
            1090,
            &[
                ("reason", reason::POOL_MEMBER_OUT_OF_SERVICE),
                ("member", member),
                ("source", source),
            ],
        )
    }

    /// 4005: unknown local user (404), exactly as FEDERATION.md writes it (reason only).
    pub fn e4005() -> Self {
        Self::new(4005, &[("reason", reason::USER_NOT_FOUND)])
    }
}

impl fmt::Display for MsDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn seed_1009_header() {
        let d = MsDiagnostic::e1009(
            "cms.steven.lab",
            &["vcse.sub.cms.steven.lab:5061".to_owned()],
            "sip.skype.lab",
        );
        assert_eq!(
            d.render(),
            "1009;reason=\"No match for domain in DNS SRV results\";domain=\"cms.steven.lab\";fqdn1=\"vcse.sub.cms.steven.lab:5061\";source=\"sip.skype.lab\""
        );
    }

    #[test]
    fn seed_1010_header() {
        let d = MsDiagnostic::e1010(
            Hresult::WrongPrincipal,
            "vcse.cms.steven.lab",
            "vcse.steven.lab",
            "sip.skype.lab",
        );
        assert_eq!(
            d.render(),
            "1010;reason=\"Certificate trust with another server could not be established\";ErrorType=\"The peer certificate does not contain a matching FQDN\";tls-target=\"vcse.cms.steven.lab\";PeerServer=\"vcse.steven.lab\";HRESULT=\"0x80090322 (SEC_E_WRONG_PRINCIPAL)\";source=\"sip.skype.lab\""
        );
    }

    #[test]
    fn hresult_renderings() {
        assert_eq!(
            Hresult::UntrustedRoot.render(),
            "0x80090325 (SEC_E_UNTRUSTED_ROOT)"
        );
        assert_eq!(
            Hresult::CertExpired.render(),
            "0x80090328 (SEC_E_CERT_EXPIRED)"
        );
        assert_eq!(
            Hresult::CertUnknown.render(),
            "0x80090327 (SEC_E_CERT_UNKNOWN)"
        );
        assert_eq!(
            Hresult::IllegalMessage.render(),
            "0x80090326 (SEC_E_ILLEGAL_MESSAGE)"
        );
        assert_eq!(
            Hresult::CertWrongUsage.render(),
            "0x80090349 (SEC_E_CERT_WRONG_USAGE)"
        );
        assert_eq!(
            Hresult::NoCredentials.render(),
            "0x8009030E (SEC_E_NO_CREDENTIALS)"
        );
    }

    #[test]
    fn other_headers() {
        assert_eq!(
            MsDiagnostic::e1008("acano.steven.lab", "sip.skype.lab").render(),
            "1008;reason=\"Unable to resolve DNS SRV record\";domain=\"acano.steven.lab\";source=\"sip.skype.lab\""
        );
        assert_eq!(
            MsDiagnostic::e1047(Winsock::ConnReset, "sip.skype.lab").render(),
            "1047;reason=\"Failed to complete TLS negotiation with a federated peer server\";WinsockFailureCode=\"10054(WSAECONNRESET)\";WinsockFailureDescription=\"The peer forced closure of the connection\";source=\"sip.skype.lab\""
        );
        assert_eq!(
            MsDiagnostic::e1046(Winsock::ConnRefused, "sip.skype.lab").render(),
            "1046;reason=\"Failed to connect to a federated peer server\";WinsockFailureCode=\"10061(WSAECONNREFUSED)\";WinsockFailureDescription=\"No connection could be made because the target machine actively refused it\";source=\"sip.skype.lab\""
        );
        assert_eq!(
            MsDiagnostic::e1034("steven.lab", "vcse.steven.lab", "sip.skype.lab").render(),
            "1034;reason=\"Previous hop federated peer did not report diagnostic information\";Domain=\"steven.lab\";PeerServer=\"vcse.steven.lab\";source=\"sip.skype.lab\""
        );
        assert_eq!(
            MsDiagnostic::e4005().render(),
            "4005;reason=\"Destination URI either not enabled for SIP or does not exist\""
        );
        assert_eq!(
            MsDiagnostic::e1002("sip.skype.lab").render(),
            "1002;reason=\"From URI not authorized to communicate with federated partners\";source=\"sip.skype.lab\""
        );
        assert_eq!(
            MsDiagnostic::e1005("sip.skype.lab").render(),
            "1005;reason=\"Cannot route to destination domain\";source=\"sip.skype.lab\""
        );
        assert_eq!(
            MsDiagnostic::e1027("sip.skype.lab").render(),
            "1027;reason=\"Cannot route this type of SIP request to or from federated partners\";source=\"sip.skype.lab\""
        );
    }

    #[test]
    fn parse_reads_back_what_render_wrote() {
        let d = MsDiagnostic::e1010(
            Hresult::WrongPrincipal,
            "vcse.cms.steven.lab",
            "odd \"name\\ ; here",
            "sip.skype.lab",
        );
        let text = d.render();
        assert!(
            text.contains(r#"PeerServer="odd \"name\\ ; here""#),
            "{text}"
        );
        assert_eq!(MsDiagnostic::parse(&text), Some(d));
        assert_eq!(MsDiagnostic::code_of(&text), Some(1010));
        let bare = MsDiagnostic::parse(" 4005 ").unwrap();
        assert_eq!((bare.code, bare.params.len()), (4005, 0));
        assert_eq!(MsDiagnostic::parse("reason=\"x\""), None);
        assert_eq!(
            parse_params(r#"a="1;2";b = plain ;c;d="""#),
            vec![
                ("a".to_owned(), "1;2".to_owned()),
                ("b".to_owned(), "plain".to_owned()),
                ("d".to_owned(), String::new())
            ]
        );
        let data = vec![kv("certName", "a\"b"), kv("info", "x")];
        assert_eq!(parse_params(&render_params(&data)), data);
    }

    #[test]
    fn peer_values_cannot_break_out_of_quotes_or_lines() {
        let d = MsDiagnostic::new(1008, &[("domain", "evil\"\r\nX-Injected: 1\\")]);
        assert_eq!(d.render(), "1008;domain=\"evil\\\"X-Injected: 1\\\\\"");
    }
}
