//! A dialog's ladder (one Call-ID): the SIP messages between the peer and the Edge when the Edge reported
//! them, else what its decisions tell (the request's method in, the status out), with each decision as a
//! note. Rendered as plain text and as a Mermaid sequence diagram. Pure: events in, text out.

use std::fmt::Write;
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use super::hub::Stamped;
use super::model::{MessageDirection, UiEvent, Verdict, rfc3339};

/// One line of a ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "row", rename_all = "lowercase")]
pub enum Row {
    /// A message between the two ends.
    Arrow {
        /// When.
        #[serde(serialize_with = "rfc3339")]
        time: OffsetDateTime,
        /// In: peer → Edge; out: Edge → peer.
        direction: MessageDirection,
        /// The start line (or method / status from a decision).
        label: String,
    },
    /// The Edge's decision at that point.
    Note {
        /// When.
        #[serde(serialize_with = "rfc3339")]
        time: OffsetDateTime,
        /// What it decided.
        text: String,
    },
}

/// Where a ladder's arrows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The SIP messages themselves.
    Messages,
    /// The Edge's decisions only (method in, status out).
    Decisions,
}

/// The ladder of one Call-ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ladder {
    /// The Call-ID.
    pub call_id: String,
    /// The peer: certificate name and address.
    pub peer: String,
    /// The Edge's name.
    pub edge: String,
    /// Where the arrows come from.
    pub source: Source,
    /// The rows, in order.
    pub rows: Vec<Row>,
}

/// The note a decision becomes.
fn decision_note(d: &super::model::DecisionView) -> String {
    let verdict = match d.verdict {
        Verdict::Accept => "accept",
        Verdict::Reject => "reject",
        Verdict::Limit => "limit",
    };
    let mut text = verdict.to_owned();
    if let Some(rc) = &d.result_code {
        let _ = write!(text, ": {rc}");
    }
    if let Some(fix) = &d.fix {
        let _ = write!(text, " — fix: {fix}");
    }
    text
}

fn status_label(status: u16, code: Option<u32>) -> String {
    match code {
        Some(c) => format!("{status} (ms-diagnostics {c})"),
        None => status.to_string(),
    }
}

/// The ladder of `call_id` from a dialog's events (see [`super::UiHub::dialog`]); `None` when no event
/// has that Call-ID.
pub fn ladder(call_id: &str, edge: &str, events: &[Arc<Stamped>]) -> Option<Ladder> {
    let mine: Vec<&UiEvent> = events
        .iter()
        .map(|e| &e.event)
        .filter(|e| e.call_id() == Some(call_id))
        .collect();
    if mine.is_empty() {
        return None;
    }
    let has_messages = mine.iter().any(|e| matches!(e, UiEvent::Message(_)));
    let mut rows = Vec::new();
    let mut peer_name = None;
    let mut peer_addr = None;
    for e in &mine {
        match e {
            UiEvent::Message(m) => {
                peer_addr.get_or_insert_with(|| m.remote.to_string());
                rows.push(Row::Arrow {
                    time: m.time,
                    direction: m.direction,
                    label: m.start_line.clone(),
                });
            }
            UiEvent::Decision(d) => {
                peer_addr.get_or_insert_with(|| d.remote.clone());
                if peer_name.is_none() {
                    peer_name.clone_from(&d.peer_cert);
                }
                if !has_messages {
                    rows.push(Row::Arrow {
                        time: d.time,
                        direction: MessageDirection::In,
                        label: d.method.clone().unwrap_or_default(),
                    });
                }
                rows.push(Row::Note {
                    time: d.time,
                    text: decision_note(d),
                });
                if !has_messages && let Some(r) = &d.response {
                    rows.push(Row::Arrow {
                        time: d.time,
                        direction: MessageDirection::Out,
                        label: status_label(r.status, d.ms_diagnostics_code),
                    });
                }
            }
            _ => {}
        }
    }
    // A connection's certificate names the peer when no decision did.
    if peer_name.is_none() {
        peer_name = events.iter().find_map(|e| match &e.event {
            UiEvent::Connection(c) => c
                .client_cert
                .as_ref()
                .map(|x| x.san.first().cloned().unwrap_or_else(|| x.subject.clone())),
            _ => None,
        });
    }
    let addr = peer_addr.unwrap_or_default();
    let peer = match peer_name {
        Some(n) => format!("{n} ({addr})"),
        None => addr,
    };
    Some(Ladder {
        call_id: call_id.to_owned(),
        peer,
        edge: edge.to_owned(),
        source: if has_messages {
            Source::Messages
        } else {
            Source::Decisions
        },
        rows,
    })
}

fn clock(t: &OffsetDateTime) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// One line of text: control characters (a hostile Call-ID's CR/LF) become spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl Ladder {
    /// The ladder as plain text (UTC times).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let from = match self.source {
            Source::Messages => "the SIP messages",
            Source::Decisions => "the Edge's decisions: request method in, first answer out",
        };
        let _ = writeln!(out, "Call-ID {} (from {from})", one_line(&self.call_id));
        let _ = writeln!(out, "  peer = {}", one_line(&self.peer));
        let _ = writeln!(out, "  Edge = {}", one_line(&self.edge));
        out.push('\n');
        for row in &self.rows {
            match row {
                Row::Arrow {
                    time,
                    direction,
                    label,
                } => {
                    let arrow = match direction {
                        MessageDirection::In => "peer --> Edge",
                        MessageDirection::Out => "peer <-- Edge",
                    };
                    let _ = writeln!(out, "{}  {arrow}  {}", clock(time), one_line(label));
                }
                Row::Note { text, .. } => {
                    let _ = writeln!(out, "{:12}  [Edge] {}", "", one_line(text));
                }
            }
        }
        out
    }

    /// The ladder as a Mermaid sequence diagram.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("sequenceDiagram\n");
        let _ = writeln!(out, "    participant P as {}", mermaid_text(&self.peer));
        let _ = writeln!(
            out,
            "    participant E as Edge {}",
            mermaid_text(&self.edge)
        );
        for row in &self.rows {
            match row {
                Row::Arrow {
                    direction, label, ..
                } => {
                    let arrow = match direction {
                        MessageDirection::In => "P->>E",
                        MessageDirection::Out => "E-->>P",
                    };
                    let _ = writeln!(out, "    {arrow}: {}", mermaid_text(label));
                }
                Row::Note { text, .. } => {
                    let _ = writeln!(out, "    Note over E: {}", mermaid_text(text));
                }
            }
        }
        out
    }
}

/// Text Mermaid shows as it is: `#`, `;`, `<` and `>` as entity codes, control characters as spaces.
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '<' => out.push_str("#60;"),
            '>' => out.push_str("#62;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::model::{DecisionView, ResponseView, SipMessage};
    use time::macros::datetime;

    fn stamped(seq: u64, event: UiEvent) -> Arc<Stamped> {
        Arc::new(Stamped { seq, event })
    }

    fn decision() -> DecisionView {
        DecisionView {
            time: datetime!(2017-03-02 07:10:46.230 UTC),
            conn: None,
            remote: "127.0.0.1:40000".into(),
            peer_cert: Some("vcse.steven.lab".into()),
            method: Some("INVITE".into()),
            call_id: Some("c1;x".into()),
            domain: Some("acano.steven.lab".into()),
            verdict: Verdict::Reject,
            steps: vec![],
            response: Some(ResponseView {
                status: 504,
                reason: None,
            }),
            ms_diagnostics: Some("1009;reason=\"No match\"".into()),
            ms_diagnostics_code: Some(1009),
            result_code: Some(
                "0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH".into(),
            ),
            log_data: vec![],
            record: None,
            explanation: None,
            fix: Some("publish the SRV record".into()),
        }
    }

    #[test]
    fn a_decision_alone_draws_method_in_and_status_out() {
        let events = [stamped(1, UiEvent::Decision(decision()))];
        let l = ladder("c1;x", "sip.skype.lab", &events).unwrap();
        assert_eq!(l.source, Source::Decisions);
        assert_eq!(
            l.to_text(),
            "Call-ID c1;x (from the Edge's decisions: request method in, first answer out)\n\
             \x20 peer = vcse.steven.lab (127.0.0.1:40000)\n\
             \x20 Edge = sip.skype.lab\n\
             \n\
             07:10:46.230  peer --> Edge  INVITE\n\
             \x20             [Edge] reject: 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH — fix: publish the SRV record\n\
             07:10:46.230  peer <-- Edge  504 (ms-diagnostics 1009)\n"
        );
        assert_eq!(
            l.to_mermaid(),
            "sequenceDiagram\n\
             \x20   participant P as vcse.steven.lab (127.0.0.1:40000)\n\
             \x20   participant E as Edge sip.skype.lab\n\
             \x20   P->>E: INVITE\n\
             \x20   Note over E: reject: 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH — fix: publish the SRV record\n\
             \x20   E-->>P: 504 (ms-diagnostics 1009)\n"
        );
        assert!(ladder("other", "e", &events).is_none());
    }

    #[test]
    fn messages_replace_the_decisions_arrows() {
        let a = "127.0.0.1:5061".parse().unwrap();
        let b = "127.0.0.1:40000".parse().unwrap();
        let m_in = SipMessage::from_bytes(
            7,
            a,
            b,
            MessageDirection::In,
            b"INVITE sip:stejanss@skype.lab SIP/2.0\r\nCall-ID: c1;x\r\n\r\n",
        );
        let m_out = SipMessage::from_bytes(
            7,
            a,
            b,
            MessageDirection::Out,
            b"SIP/2.0 504 Server time-out\r\nCall-ID: c1;x\r\n\r\n",
        );
        let events = [
            stamped(1, UiEvent::Message(m_in)),
            stamped(2, UiEvent::Decision(decision())),
            stamped(3, UiEvent::Message(m_out)),
        ];
        let l = ladder("c1;x", "sip.skype.lab", &events).unwrap();
        assert_eq!(l.source, Source::Messages);
        let text = l.to_text();
        let lines: Vec<&str> = text.lines().skip(4).collect();
        assert!(
            lines[0].ends_with("peer --> Edge  INVITE sip:stejanss@skype.lab SIP/2.0"),
            "{text}"
        );
        assert!(
            lines[1]
                .trim_start()
                .starts_with("[Edge] reject: 0xc3e93d6f"),
            "{text}"
        );
        assert!(
            lines[2].ends_with("peer <-- Edge  SIP/2.0 504 Server time-out"),
            "{text}"
        );
        assert_eq!(lines.len(), 3, "{text}");
        let mermaid = l.to_mermaid();
        assert!(
            mermaid.contains("    P->>E: INVITE sip:stejanss@skype.lab SIP/2.0\n"),
            "{mermaid}"
        );
        assert!(
            mermaid.contains("    E-->>P: SIP/2.0 504 Server time-out\n"),
            "{mermaid}"
        );
    }

    #[test]
    fn hostile_text_stays_on_one_line() {
        assert_eq!(mermaid_text("a\nb;c#<d>"), "a b#59;c#35;#60;d#62;");
        assert_eq!(one_line("a\r\nb"), "a  b");
    }
}
