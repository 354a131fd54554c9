//! The Edge's per-message trace record, `TL_INFO(TF_PROTOCOL)` (`SIPAdminLog::TraceProtocolRecord`), as CLS /
//! OCSLogger write it for every SIP message in and out: `Direction`, `Peer`, `Message-Type`, `Start-Line`, then
//! the message's header lines and its body.
//!
//! Direction: the Access Edge's federation side is its "external edge", so a message from the peer is
//! `incoming;source="external edge";destination="internal edge"` and one to the peer
//! `outgoing;source="internal edge";destination="external edge"` (the notes give the pair; which side is which
//! for federation traffic is edgesim's reading).

use super::LogContext;

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the peer.
    Incoming,
    /// To the peer.
    Outgoing,
}

impl Direction {
    /// The `Direction:` value.
    pub fn render(self) -> &'static str {
        match self {
            Direction::Incoming => {
                "incoming;source=\"external edge\";destination=\"internal edge\""
            }
            Direction::Outgoing => {
                "outgoing;source=\"internal edge\";destination=\"external edge\""
            }
        }
    }
}

/// One message as the protocol record shows it.
#[derive(Debug, Clone, Copy)]
pub struct ProtocolRecord<'a> {
    /// In or out.
    pub direction: Direction,
    /// The peer: certificate name (or address) and port, as in the TF_DIAG records.
    pub peer: &'a str,
    /// The message's bytes as sent or received.
    pub message: &'a [u8],
}

impl ProtocolRecord<'_> {
    /// The record, lines joined by `\n`, no trailing newline. The message's own lines follow `Start-Line`
    /// (headers), then `Message-Body:`; a `$$` in the message is written `$ $` so that no message can end or
    /// open a record.
    pub fn render(&self, ctx: &LogContext) -> String {
        let text = String::from_utf8_lossy(self.message).replace("$$", "$ $");
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.split("\r\n");
        let start = lines.next().unwrap_or_default();
        let kind = if start.starts_with("SIP/") {
            "response"
        } else {
            "request"
        };
        let mut out = String::from("TL_INFO(TF_PROTOCOL) ");
        ctx.push_stamp(&mut out);
        out += &format!(
            " (SIPStack,SIPAdminLog::TraceProtocolRecord:SIPAdminLog.cpp(125))$$begin_record\n\
             Trace-Correlation-Id: {id}\n\
             Instance-Id: {seq:X}\n\
             Direction: {dir}\n\
             Peer: {peer}\n\
             Message-Type: {kind}\n\
             Start-Line: {start}\n",
            seq = ctx.seq,
            id = ctx.record_id,
            dir = self.direction.render(),
            peer = super::line_safe(self.peer),
        );
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
        out.push_str("Message-Body: ");
        out.push_str(if body.is_empty() { "–" } else { body });
        out.push_str("\n$$end_record");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> LogContext {
        LogContext {
            edge_host: "sfvedge".into(),
            pid: 0x0584,
            tid: 0x0A44,
            timestamp: time::macros::datetime!(2017-03-02 07:10:46.230 UTC),
            seq: 0x773F,
            record_id: 156659185,
        }
    }

    #[test]
    fn a_request_in_and_a_response_out() {
        let inv = b"INVITE sip:stejanss@skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bKa\r\nCall-ID: c1\r\nContent-Length: 0\r\n\r\n";
        let r = ProtocolRecord {
            direction: Direction::Incoming,
            peer: "vcse.steven.lab:25002",
            message: inv,
        };
        assert_eq!(
            r.render(&ctx()),
            "TL_INFO(TF_PROTOCOL) [sfvedge\\sfvedge]0584.0A44::03/02/2017-07:10:46.230.0000773F (SIPStack,SIPAdminLog::TraceProtocolRecord:SIPAdminLog.cpp(125))$$begin_record\n\
Trace-Correlation-Id: 156659185\n\
Instance-Id: 773F\n\
Direction: incoming;source=\"external edge\";destination=\"internal edge\"\n\
Peer: vcse.steven.lab:25002\n\
Message-Type: request\n\
Start-Line: INVITE sip:stejanss@skype.lab SIP/2.0\n\
Via: SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bKa\n\
Call-ID: c1\n\
Content-Length: 0\n\
Message-Body: –\n\
$$end_record"
        );
        let ok = b"SIP/2.0 200 OK\r\nContent-Length: 8\r\n\r\nv=0$$x\r\n";
        let r = ProtocolRecord {
            direction: Direction::Outgoing,
            peer: "vcse.steven.lab:25002",
            message: ok,
        };
        let text = r.render(&ctx());
        assert!(text.contains("\nDirection: outgoing;source=\"internal edge\";destination=\"external edge\"\nPeer: vcse.steven.lab:25002\nMessage-Type: response\nStart-Line: SIP/2.0 200 OK\nContent-Length: 8\nMessage-Body: v=0$ $x\r\n\n$$end_record"), "{text}");
        assert_eq!(text.matches("$$").count(), 2);
    }
}
