//! The checks a server makes on a request before processing it (RFC 3261 §8.2 and §16.3), in one pass over the
//! header lines.

use std::borrow::Cow;

use super::error::SipError;
use super::headers::{NameAddr, Via, blank, cseq_method, parse_u32_below};
use super::message::{Header, HeaderKind, Message};
use super::text::{TopSplit, trim, unfold};
use super::uri::Uri;

impl Message {
    /// Checks what a server must check before processing a request (RFC 3261 §8.2 and §16.3):
    /// Request-URI, Via, From, To, Call-ID, CSeq (and its method), Max-Forwards, Contact, Date.
    ///
    /// Same decisions and errors as running the typed views ([`Message::request_uri`],
    /// [`Message::vias`], [`Message::from`], ...) in that order, but the Edge runs this on every
    /// request, so it walks the bytes in one pass over the header lines and allocates nothing
    /// (except to unfold a folded value).
    pub fn validate(&self) -> Result<(), SipError> {
        if let Some(raw) = self.request_uri_raw() {
            let uri = Uri::check(raw).ok_or(SipError::BadRequestUri)?;
            if !uri.known_scheme {
                return Err(SipError::UnsupportedScheme);
            }
            if uri.headers {
                return Err(SipError::BadRequestUri);
            }
        }
        // One pass: remember the single-valued headers, check the list-valued ones on the way.
        let (mut vias, mut vias_ok, mut contacts_ok) = (0usize, true, true);
        let (mut from, mut to, mut call_id, mut cseq) = (Seen::No, Seen::No, Seen::No, Seen::No);
        let (mut max_forwards, mut date) = (None, None);
        for h in self.headers() {
            match h.kind {
                HeaderKind::Via => {
                    vias += 1;
                    vias_ok = vias_ok && every_value(&h, Via::check);
                }
                HeaderKind::Contact => {
                    contacts_ok = contacts_ok
                        && every_value(&h, |v| blank(v) || v == b"*" || NameAddr::check(v));
                }
                HeaderKind::From => from.see(h.raw_value),
                HeaderKind::To => to.see(h.raw_value),
                HeaderKind::CallId => call_id.see(h.raw_value),
                HeaderKind::CSeq => cseq.see(h.raw_value),
                HeaderKind::MaxForwards => {
                    max_forwards.get_or_insert(h.raw_value);
                }
                HeaderKind::Date => {
                    date.get_or_insert(h.raw_value);
                }
                _ => {}
            }
        }
        if vias == 0 {
            return Err(SipError::MissingHeader("Via"));
        }
        if !vias_ok {
            return Err(SipError::BadHeader("Via"));
        }
        for (seen, name) in [(from, "From"), (to, "To")] {
            if !NameAddr::check(&seen.value(name)?) {
                return Err(SipError::BadHeader(name));
            }
        }
        let v = call_id.value("Call-ID")?;
        if v.is_empty() || v.iter().any(|&b| b <= b' ') {
            return Err(SipError::BadHeader("Call-ID"));
        }
        let v = cseq.value("CSeq")?;
        let method = cseq_method(&v).ok_or(SipError::BadHeader("CSeq"))?;
        if let Some(m) = self.method()
            && m != method
        {
            return Err(SipError::CSeqMismatch);
        }
        if let Some(raw) = max_forwards
            && parse_u32_below(&unfold(raw), 256).is_none()
        {
            return Err(SipError::BadHeader("Max-Forwards"));
        }
        if !contacts_ok {
            return Err(SipError::BadHeader("Contact"));
        }
        if let Some(raw) = date
            && !unfold(raw).ends_with(b" GMT")
        {
            return Err(SipError::BadHeader("Date"));
        }
        Ok(())
    }
}

/// How often a single-valued header was seen (for [`Message::validate`]).
#[derive(Debug, Clone, Copy)]
enum Seen<'a> {
    No,
    Once(&'a [u8]),
    Twice,
}

impl<'a> Seen<'a> {
    fn see(&mut self, raw_value: &'a [u8]) {
        *self = match self {
            Seen::No => Seen::Once(raw_value),
            _ => Seen::Twice,
        };
    }

    /// The unfolded value, with the errors of [`Message::from`] & co: missing, or repeated.
    fn value(self, name: &'static str) -> Result<Cow<'a, [u8]>, SipError> {
        match self {
            Seen::No => Err(SipError::MissingHeader(name)),
            Seen::Once(v) => Ok(unfold(v)),
            Seen::Twice => Err(SipError::BadHeader(name)),
        }
    }
}

/// True if `ok` holds for every comma-separated value of the header, each trimmed (the values
/// [`Message::values`] yields, without collecting them).
fn every_value(h: &Header<'_>, ok: impl Fn(&[u8]) -> bool) -> bool {
    let v = h.value();
    TopSplit::new(&v, b',').all(|p| ok(trim(p)))
}
