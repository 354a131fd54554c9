//! Splits a TCP/TLS byte stream into SIP messages by the blank line and Content-Length.

use bytes::{Buf, Bytes, BytesMut};

use super::error::SipError;
use super::message::{HeaderKind, Limits, Message, parse_content_length};
use super::text::{is_ws, trim};

/// One item taken off the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A well-formed message.
    Message(Message),
    /// A double-CRLF keep-alive ping (RFC 5626 §3.5.1); answer with a single CRLF.
    Ping,
    /// A single CRLF keep-alive (a pong); no answer.
    Pong,
    /// A message that was framed but could not be parsed; the stream stays usable.
    Invalid {
        /// Why it was rejected (see [`SipError::status`]).
        error: SipError,
        /// The message bytes, for [`super::bad_request_from_raw`] and logs.
        raw: Bytes,
    },
}

/// Stream framer with limits; feed it the connection's read buffer.
#[derive(Debug, Clone)]
pub struct Framer {
    limits: Limits,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new(Limits::default())
    }
}

impl Framer {
    /// A framer enforcing `limits` on every message.
    pub fn new(limits: Limits) -> Framer {
        Framer { limits }
    }

    /// Takes the next frame off `buf`. `Ok(None)`: need more bytes. `Err`: the stream cannot be
    /// framed any more (see [`SipError::closes_connection`]); answer if possible, then close.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, SipError> {
        if buf.starts_with(b"\r\n") {
            if buf.starts_with(b"\r\n\r\n") {
                buf.advance(4);
                return Ok(Some(Frame::Ping));
            }
            // "\r\n" or "\r\n\r" may still become a ping.
            if buf.len() < 4 && b"\r\n\r\n".starts_with(&buf[..]) {
                return Ok(None);
            }
            buf.advance(2);
            return Ok(Some(Frame::Pong));
        }
        let head_end = match memchr::memmem::find(buf, b"\r\n\r\n") {
            Some(p) => p + 4,
            None if buf.len() >= self.limits.max_head => {
                return Err(SipError::HeadTooLarge {
                    limit: self.limits.max_head,
                });
            }
            None => return Ok(None),
        };
        if head_end > self.limits.max_head {
            return Err(SipError::HeadTooLarge {
                limit: self.limits.max_head,
            });
        }
        let body_len = scan_content_length(&buf[..head_end])?.unwrap_or(0);
        if body_len > self.limits.max_body {
            return Err(SipError::BodyTooLarge {
                len: body_len,
                limit: self.limits.max_body,
            });
        }
        let total = head_end + body_len;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let raw = buf.split_to(total).freeze();
        Ok(Some(match Message::parse_with(raw.clone(), &self.limits) {
            Ok(m) => Frame::Message(m),
            Err(error) => Frame::Invalid { error, raw },
        }))
    }
}

/// Finds Content-Length in a head without needing the rest of it to be valid.
fn scan_content_length(head: &[u8]) -> Result<Option<usize>, SipError> {
    let mut found = None;
    let mut lines = head.split(|&b| b == b'\n').skip(1).peekable();
    while let Some(line) = lines.next() {
        if line.first().is_some_and(|&b| is_ws(b)) {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        if HeaderKind::of(trim(&line[..colon])) != HeaderKind::ContentLength {
            continue;
        }
        let mut value = line[colon + 1..].to_vec();
        while let Some(next) = lines.next_if(|l| l.first().is_some_and(|&b| is_ws(b))) {
            value.extend_from_slice(next);
        }
        let n = parse_content_length(&value)?;
        if found.is_some_and(|f| f != n) {
            return Err(SipError::ConflictingContentLength);
        }
        found = Some(n);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nFrom: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 4\r\n\r\nbody";

    fn drain(f: &mut Framer, buf: &mut BytesMut) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Ok(Some(fr)) = f.decode(buf) {
            out.push(fr);
        }
        out
    }

    #[test]
    fn keepalives() {
        let mut f = Framer::default();
        let mut b = BytesMut::from(&b"\r\n\r\n\r\n"[..]);
        assert_eq!(f.decode(&mut b), Ok(Some(Frame::Ping)));
        assert_eq!(f.decode(&mut b), Ok(None));
        b.extend_from_slice(OPTIONS);
        assert_eq!(f.decode(&mut b), Ok(Some(Frame::Pong)));
        assert!(matches!(f.decode(&mut b), Ok(Some(Frame::Message(m))) if m.body() == b"body"));
        assert!(b.is_empty());
    }

    #[test]
    fn header_too_large_is_fatal() {
        let mut f = Framer::new(Limits {
            max_head: 64,
            ..Limits::default()
        });
        let mut b = BytesMut::from(&[b'a'; 64][..]);
        let e = f.decode(&mut b).unwrap_err();
        assert_eq!(e.status(), (513, "Message Too Large"));
        assert!(e.closes_connection());
    }

    #[test]
    fn bad_message_resyncs() {
        let mut f = Framer::default();
        let mut b = BytesMut::from(&b"INVITE  sip:x SIP/2.0\r\nContent-Length: 3\r\n\r\nabc"[..]);
        b.extend_from_slice(OPTIONS);
        let frames = drain(&mut f, &mut b);
        assert_eq!(frames.len(), 2);
        assert!(
            matches!(&frames[0], Frame::Invalid { error: SipError::BadStartLine, raw } if raw.len() == 47)
        );
        assert!(matches!(&frames[1], Frame::Message(_)));
    }
}
