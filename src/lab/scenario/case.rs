//! A scenario case typed per direction: what an inbound case sends to the Edge, or what the Edge calls in an
//! outbound one, with the keys of the other direction impossible by construction. A [`CaseEntry`] (the table as
//! written) becomes a [`Case`] in [`Case::from_entry`], which says what the types cannot: which keys a direction
//! needs and may have, each error pointing at the key.

use std::ops::Range;

use super::format::{
    Behaviour, CaseEntry, Direction, Expect, HandshakeExpect, ScenarioRecord, merge_records,
};
use crate::dns::{ZoneError, ZoneSet};

/// Request methods an inbound case may send.
pub const INBOUND_METHODS: [&str; 4] = ["INVITE", "OPTIONS", "MESSAGE", "SUBSCRIBE"];

/// One case of a scenario.
#[derive(Debug, Clone)]
pub struct Case {
    /// Unique name, shown in the table.
    pub name: String,
    /// What the case shows.
    pub description: Option<String>,
    /// Records added to the base records, replacing base records of the same name and type.
    pub dns: Vec<ScenarioRecord>,
    /// The expected outcome.
    pub expect: Expect,
    /// What the case does, per direction.
    pub kind: CaseKind,
}

/// What a case does.
#[derive(Debug, Clone)]
pub enum CaseKind {
    /// The emulated Expressway-E sends a request to the Edge.
    Inbound(InboundCase),
    /// The Edge calls the emulated Expressway-E.
    Outbound(OutboundCase),
}

/// An inbound case: the request the emulated Expressway-E sends.
#[derive(Debug, Clone)]
pub struct InboundCase {
    /// Its TLS client certificate (a `[certs.NAME]`); `None`: no client certificate.
    pub cert: Option<String>,
    /// INVITE, OPTIONS or MESSAGE (upper case).
    pub method: String,
    /// The caller's display name, if `from` gives one.
    pub from_display: Option<String>,
    /// The caller URI (the Expressway side).
    pub from: String,
    /// The callee URI (a Skype user).
    pub to: String,
    /// The Request-URI, when it is not `to`.
    pub request_uri: Option<String>,
    /// P-Asserted-Identity URI.
    pub pai: Option<String>,
    /// SUBSCRIBE: what the subscriber asks for.
    pub subscribe: crate::presence::client::SubscribeOptions,
    /// SUBSCRIBE: the Accept header as written, when the case gives one.
    pub accept: Option<String>,
    /// A session-mode IM with this first message (the INVITE carries `m=message`).
    pub im: Option<String>,
    /// SUBSCRIBE: wait for a later NOTIFY (the expectation names its availability).
    pub wait_change: bool,
    /// IM: how many replies to wait for.
    pub replies: usize,
}

/// An outbound case: what the Edge calls, and what the emulated Expressway-E's server does.
#[derive(Debug, Clone)]
pub struct OutboundCase {
    /// The peer server's certificate; `None` only when nothing listens (`refuse`).
    pub cert: Option<String>,
    /// The callee URI, e.g. `sip:space@cms.steven.lab`.
    pub target: String,
    /// The caller URI (the Skype user), default `sip:edgesim@<edge domain>`.
    pub from: String,
    /// What the peer server does.
    pub behaviour: Behaviour,
    /// The `ms-diagnostics` the peer puts on its final response.
    pub peer_ms_diagnostics: Option<String>,
}

/// What is wrong with a case: the key, where it stands, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseProblem {
    /// Where in the file.
    pub span: Range<usize>,
    /// The key, e.g. `case.to`.
    pub field: String,
    /// What is wrong and the fix.
    pub message: String,
}

fn problem(span: Range<usize>, field: &str, message: String) -> CaseProblem {
    CaseProblem {
        span,
        field: field.to_owned(),
        message,
    }
}

/// `"Name" <sip:u@d>;tag=x` → (Some("Name"), "sip:u@d"); a bare URI stays as it is.
pub fn split_name_addr(v: &str) -> (Option<String>, String) {
    let v = v.trim();
    match (v.find('<'), v.rfind('>')) {
        (Some(l), Some(r)) if l < r => {
            let name = v[..l].trim().trim_matches('"').trim();
            (
                (!name.is_empty()).then(|| name.to_owned()),
                v[l + 1..r].trim().to_owned(),
            )
        }
        _ => (None, v.to_owned()),
    }
}

fn value(v: &Option<toml::Spanned<String>>) -> Option<String> {
    v.as_ref().map(|s| s.get_ref().clone())
}

fn uri(v: &Option<toml::Spanned<String>>) -> Option<String> {
    value(v).map(|s| split_name_addr(&s).1)
}

impl Case {
    /// The direction.
    pub fn direction(&self) -> Direction {
        match self.kind {
            CaseKind::Inbound(_) => Direction::Inbound,
            CaseKind::Outbound(_) => Direction::Outbound,
        }
    }

    /// The zone data of the case: `base` merged with its records; SRV port 0 becomes `case_port`.
    pub fn zones(&self, base: &[ScenarioRecord], case_port: u16) -> Result<ZoneSet, ZoneError> {
        zones(base, &self.dns, case_port)
    }

    /// Types `e` for its direction (the name and certificate references are checked by the caller). `edge_domain`
    /// gives an outbound caller's default.
    pub fn from_entry(
        e: &CaseEntry,
        base: &[ScenarioRecord],
        edge_domain: &str,
    ) -> Result<Case, CaseProblem> {
        let who = format!("case \"{}\"", e.name());
        let direction = e.direction();
        fn span_of<T>(v: &Option<toml::Spanned<T>>) -> Option<Range<usize>> {
            v.as_ref().map(toml::Spanned::span)
        }
        let direction_only = [
            (Direction::Inbound, "case.method", span_of(&e.method)),
            (
                Direction::Inbound,
                "case.request_uri",
                span_of(&e.request_uri),
            ),
            (Direction::Inbound, "case.to", span_of(&e.to)),
            (Direction::Inbound, "case.pai", span_of(&e.pai)),
            (Direction::Outbound, "case.target", span_of(&e.target)),
            (Direction::Outbound, "case.behaviour", span_of(&e.behaviour)),
            (
                Direction::Outbound,
                "case.peer_ms_diagnostics",
                span_of(&e.peer_ms_diagnostics),
            ),
        ];
        for (for_dir, field, given) in direction_only {
            if let Some(span) = given
                && direction != for_dir
            {
                return Err(problem(
                    span,
                    field,
                    format!(
                        "{who} is {direction}, but `{}` is only for {for_dir} cases; remove it or set direction = \"{for_dir}\"",
                        field.trim_start_matches("case.")
                    ),
                ));
            }
        }
        if let Some(d) = &e.peer_ms_diagnostics
            && !matches!(e.behaviour(), Behaviour::Answer(_))
        {
            return Err(problem(
                d.span(),
                "case.peer_ms_diagnostics",
                format!(
                    "{who}: the peer can only put ms-diagnostics on an answer; set behaviour = \"answer <status>\" or remove it"
                ),
            ));
        }
        let missing = |field: &str, what: &str| {
            problem(
                e.direction.span(),
                &format!("case.{field}"),
                format!("{who} is {direction} and needs `{field}` ({what}); add it to the case"),
            )
        };
        let kind = match direction {
            Direction::Inbound => {
                let Some(from) = value(&e.from) else {
                    return Err(missing(
                        "from",
                        "the Expressway caller, e.g. \"sip:2000@acano.steven.lab\"",
                    ));
                };
                let Some(to) = uri(&e.to) else {
                    return Err(missing(
                        "to",
                        "the Skype user called, e.g. \"sip:stejanss@skype.lab\"",
                    ));
                };
                let method = match &e.method {
                    Some(m) => {
                        let upper = m.get_ref().to_ascii_uppercase();
                        if !INBOUND_METHODS.contains(&upper.as_str()) {
                            return Err(problem(
                                m.span(),
                                "case.method",
                                format!(
                                    "{who}: method `{}` is not sent by the emulated Expressway-E; use one of {}",
                                    m.get_ref(),
                                    INBOUND_METHODS.join(", ")
                                ),
                            ));
                        }
                        upper
                    }
                    None => "INVITE".to_owned(),
                };
                let (from_display, from) = split_name_addr(&from);
                CaseKind::Inbound(InboundCase {
                    cert: value(&e.cert),
                    method,
                    from_display,
                    from,
                    to,
                    request_uri: uri(&e.request_uri),
                    pai: uri(&e.pai),
                    subscribe: subscribe_options(e),
                    accept: e.accept.clone(),
                    im: e.im.clone(),
                    wait_change: e.expect.later_availability.is_some(),
                    replies: e.expect.im_replies.as_ref().map_or(0, Vec::len),
                })
            }
            Direction::Outbound => {
                let Some(target) = uri(&e.target) else {
                    return Err(missing(
                        "target",
                        "the peer user or space called, e.g. \"sip:space@cms.steven.lab\"",
                    ));
                };
                let behaviour = e.behaviour();
                if e.cert.is_none() && behaviour != Behaviour::Refuse {
                    return Err(missing(
                        "cert",
                        "the certificate the peer server presents, a [certs.NAME]",
                    ));
                }
                CaseKind::Outbound(OutboundCase {
                    cert: value(&e.cert),
                    target,
                    from: uri(&e.from).unwrap_or_else(|| format!("sip:edgesim@{edge_domain}")),
                    behaviour,
                    peer_ms_diagnostics: value(&e.peer_ms_diagnostics),
                })
            }
        };
        if let Err(err) = zones(base, &e.dns, super::format::DEFAULT_SIP_TLS_PORT) {
            return Err(problem(e.name.span(), "case.dns", format!("{who}: {err}")));
        }
        let x = &e.expect;
        let expect_span = e.direction.span();
        if x.status.is_none() && x.handshake != Some(HandshakeExpect::Refused) {
            return Err(problem(
                expect_span,
                "case.expect.status",
                format!(
                    "{who} expects nothing to compare; add `status` (e.g. 504) or `handshake = \"refused\"` to [case.expect]"
                ),
            ));
        }
        if x.status.is_some() && x.handshake == Some(HandshakeExpect::Refused) {
            return Err(problem(
                expect_span,
                "case.expect.handshake",
                format!(
                    "{who} expects both a SIP status and a refused handshake; a refused handshake has no SIP response, so keep one"
                ),
            ));
        }
        if x.handshake == Some(HandshakeExpect::Refused) && direction == Direction::Outbound {
            return Err(problem(
                expect_span,
                "case.expect.handshake",
                format!(
                    "{who} is outbound: the Edge does not refuse its own handshake; expect the status and ms-diagnostics the Skype client gets (e.g. status = 504, ms_diagnostics = 1047)"
                ),
            ));
        }
        Ok(Case {
            name: e.name().to_owned(),
            description: e.description.clone(),
            dns: e.dns.clone(),
            expect: e.expect.clone(),
            kind,
        })
    }
}

/// The zone data of records `case` over `base`; SRV port 0 becomes `case_port`.
fn zones(
    base: &[ScenarioRecord],
    case: &[ScenarioRecord],
    case_port: u16,
) -> Result<ZoneSet, ZoneError> {
    let specs: Vec<_> = merge_records(base, case)
        .iter()
        .map(|r| r.to_spec(case_port))
        .collect();
    Ok(ZoneSet::from_records(&specs)?.with_negative_ttl(1))
}

/// The SUBSCRIBE a case's `accept`, `expires` and `microsoft` keys describe.
fn subscribe_options(e: &CaseEntry) -> crate::presence::client::SubscribeOptions {
    use crate::presence::client::SubscribeOptions;
    let ms = e.microsoft.unwrap_or(true);
    let mut o = SubscribeOptions {
        benotify: ms,
        piggyback: ms,
        expires: e.expires,
        ..SubscribeOptions::default()
    };
    if e.accept.is_some() {
        // Written as given (unknown types too: the Edge's answer to them is what a case may test).
        o.formats = Vec::new();
    }
    o
}

#[cfg(test)]
mod tests {
    use super::split_name_addr;

    #[test]
    fn name_addr_values_split_into_display_and_uri() {
        assert_eq!(
            split_name_addr("\"DX70 Steven\" <sip:2000@acano.steven.lab>;tag=1"),
            (
                Some("DX70 Steven".to_owned()),
                "sip:2000@acano.steven.lab".to_owned()
            )
        );
        assert_eq!(
            split_name_addr("<sip:2000@cms.steven.lab>"),
            (None, "sip:2000@cms.steven.lab".to_owned())
        );
        assert_eq!(
            split_name_addr(" sip:stejanss@skype.lab "),
            (None, "sip:stejanss@skype.lab".to_owned())
        );
    }
}
