//! The message model: raw bytes plus spans, with typed views computed on demand.

use std::borrow::Cow;
use std::ops::Range;

use bytes::Bytes;

use super::error::SipError;
use super::headers::{CSeq, Contact, NameAddr, Via, blank, parse_u32_below};
use super::text::{find_blank_line, find_crlf, is_lws, is_token, is_ws, split_top, trim, unfold};
use super::uri::Uri;

/// Headers the message layer knows by name (long and compact forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    /// `Via` / `v`
    Via,
    /// `From` / `f`
    From,
    /// `To` / `t`
    To,
    /// `Call-ID` / `i`
    CallId,
    /// `CSeq`
    CSeq,
    /// `Max-Forwards`
    MaxForwards,
    /// `Content-Length` / `l`
    ContentLength,
    /// `Content-Type` / `c`
    ContentType,
    /// `Contact` / `m`
    Contact,
    /// `Record-Route`
    RecordRoute,
    /// `Route`
    Route,
    /// `P-Asserted-Identity`
    PAssertedIdentity,
    /// `Date`
    Date,
    /// Any other header, including the compact forms that are not needed here.
    Other,
}

const COMPACT: &[(u8, &str)] = &[
    (b'i', "Call-ID"),
    (b'f', "From"),
    (b't', "To"),
    (b'v', "Via"),
    (b'l', "Content-Length"),
    (b'm', "Contact"),
    (b'c', "Content-Type"),
    (b'k', "Supported"),
    (b's', "Subject"),
    (b'e', "Content-Encoding"),
    (b'o', "Event"),
    (b'u', "Allow-Events"),
    (b'r', "Refer-To"),
    (b'b', "Referred-By"),
    (b'x', "Session-Expires"),
    (b'y', "Identity"),
    (b'a', "Accept-Contact"),
    (b'j', "Reject-Contact"),
    (b'd', "Request-Disposition"),
    (b'n', "Identity-Info"),
];

/// The long name of a header, expanding compact forms (`i` → `Call-ID`); other names unchanged.
pub fn long_name(name: &[u8]) -> Cow<'_, str> {
    if let [c] = name {
        let c = c.to_ascii_lowercase();
        if let Some((_, long)) = COMPACT.iter().find(|(k, _)| *k == c) {
            return Cow::Borrowed(long);
        }
    }
    String::from_utf8_lossy(name)
}

impl HeaderKind {
    /// Classifies a header name, case-insensitively, compact forms included.
    pub fn of(name: &[u8]) -> HeaderKind {
        // Dispatch on length first: this runs for every header line of every message.
        // Names are short: compare every byte without early exit (the compiler vectorizes
        // it), against lower-case targets.
        let is = |lower: &str| {
            name.iter()
                .zip(lower.as_bytes())
                .fold(true, |eq, (&a, &b)| eq & (a.to_ascii_lowercase() == b))
        };
        match name.len() {
            1 => match name[0].to_ascii_lowercase() {
                b'v' => HeaderKind::Via,
                b'f' => HeaderKind::From,
                b't' => HeaderKind::To,
                b'i' => HeaderKind::CallId,
                b'l' => HeaderKind::ContentLength,
                b'c' => HeaderKind::ContentType,
                b'm' => HeaderKind::Contact,
                _ => HeaderKind::Other,
            },
            2 if is("to") => HeaderKind::To,
            3 if is("via") => HeaderKind::Via,
            4 if is("from") => HeaderKind::From,
            4 if is("cseq") => HeaderKind::CSeq,
            4 if is("date") => HeaderKind::Date,
            5 if is("route") => HeaderKind::Route,
            7 if is("call-id") => HeaderKind::CallId,
            7 if is("contact") => HeaderKind::Contact,
            12 if is("max-forwards") => HeaderKind::MaxForwards,
            12 if is("content-type") => HeaderKind::ContentType,
            12 if is("record-route") => HeaderKind::RecordRoute,
            14 if is("content-length") => HeaderKind::ContentLength,
            19 if is("p-asserted-identity") => HeaderKind::PAssertedIdentity,
            _ => HeaderKind::Other,
        }
    }
}

/// Spans of one header line inside the message bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderSpan {
    pub kind: HeaderKind,
    pub name: Range<usize>,
    /// Everything after the colon up to (not including) the line's final CRLF; may contain folds.
    pub value: Range<usize>,
}

/// A borrowed view of one header line.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    /// Classification of the name.
    pub kind: HeaderKind,
    /// The name exactly as sent.
    pub name: &'a [u8],
    /// The value as sent (after the colon, folds included, untrimmed).
    pub raw_value: &'a [u8],
}

impl<'a> Header<'a> {
    /// The value trimmed and unfolded (borrowed unless it was folded).
    pub fn value(&self) -> Cow<'a, [u8]> {
        unfold(self.raw_value)
    }
}

/// Request line or status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StartLine {
    Request {
        method: Range<usize>,
        uri: Range<usize>,
    },
    Response {
        code: u16,
        reason: Range<usize>,
    },
}

/// A parsed SIP request or response. Holds the bytes; every accessor reads them through spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub(crate) raw: Bytes,
    pub(crate) start: StartLine,
    pub(crate) headers: Vec<HeaderSpan>,
    pub(crate) body: Range<usize>,
}

/// Limits applied when parsing (per message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest header block (start line + headers + blank line) in bytes.
    pub max_head: usize,
    /// Largest body in bytes.
    pub max_body: usize,
    /// Most header lines.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 64 * 1024,
            max_body: 64 * 1024,
            max_headers: 256,
        }
    }
}

impl Message {
    /// Parses one complete message (a datagram or a framed stream message). Bytes after the
    /// body announced by Content-Length are ignored; without Content-Length the rest is the body.
    pub fn parse(raw: Bytes) -> Result<Message, SipError> {
        Message::parse_with(raw, &Limits::default())
    }

    /// [`Message::parse`] with explicit limits.
    pub fn parse_with(raw: Bytes, limits: &Limits) -> Result<Message, SipError> {
        let head_end = match find_blank_line(&raw) {
            Some(p) => p + 4,
            None if raw.len() > limits.max_head => {
                return Err(SipError::HeadTooLarge {
                    limit: limits.max_head,
                });
            }
            // A datagram may end right after the last header line (RFC 4475's baddn does).
            None if raw.ends_with(b"\r\n") && raw.len() > 2 => raw.len(),
            None => return Err(SipError::IncompleteHead),
        };
        if head_end > limits.max_head {
            return Err(SipError::HeadTooLarge {
                limit: limits.max_head,
            });
        }
        let (start, headers) = parse_head(&raw[..head_end], limits)?;
        let avail = raw.len() - head_end;
        let len = match content_length(&raw, &headers)? {
            Some(n) if n > limits.max_body => {
                return Err(SipError::BodyTooLarge {
                    len: n,
                    limit: limits.max_body,
                });
            }
            Some(n) if n > avail => return Err(SipError::TruncatedBody),
            Some(n) => n,
            None if avail > limits.max_body => {
                return Err(SipError::BodyTooLarge {
                    len: avail,
                    limit: limits.max_body,
                });
            }
            None => avail,
        };
        Ok(Message {
            raw,
            start,
            headers,
            body: head_end..head_end + len,
        })
    }

    /// True for requests.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method (`None` for responses).
    pub fn method(&self) -> Option<&[u8]> {
        match &self.start {
            StartLine::Request { method, .. } => Some(&self.raw[method.clone()]),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI text as sent (`None` for responses).
    pub fn request_uri_raw(&self) -> Option<&[u8]> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(&self.raw[uri.clone()]),
            StartLine::Response { .. } => None,
        }
    }

    /// The parsed Request-URI; 416 for schemes other than sip/sips/tel, 400 when malformed.
    pub fn request_uri(&self) -> Result<Uri, SipError> {
        let raw = self.request_uri_raw().ok_or(SipError::BadStartLine)?;
        let uri = Uri::parse(raw).ok_or(SipError::BadRequestUri)?;
        match uri.scheme.as_str() {
            "sip" | "sips" | "tel" => Ok(uri),
            _ => Err(SipError::UnsupportedScheme),
        }
    }

    /// The status code (`None` for requests).
    pub fn status_code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase as sent (`None` for requests).
    pub fn reason(&self) -> Option<&[u8]> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(&self.raw[reason.clone()]),
            StartLine::Request { .. } => None,
        }
    }

    /// The first line without CRLF.
    pub fn start_line(&self) -> &[u8] {
        let end = find_crlf(&self.raw).unwrap_or(0);
        &self.raw[..end]
    }

    /// All header lines in order, unknown ones included.
    pub fn headers(&self) -> impl Iterator<Item = Header<'_>> {
        self.headers.iter().map(|h| Header {
            kind: h.kind,
            name: &self.raw[h.name.clone()],
            raw_value: &self.raw[h.value.clone()],
        })
    }

    /// The first header of a kind.
    pub fn header(&self, kind: HeaderKind) -> Option<Header<'_>> {
        self.headers().find(|h| h.kind == kind)
    }

    /// The first header with this name (case-insensitive, compact forms expanded).
    pub fn header_named(&self, name: &str) -> Option<Header<'_>> {
        let want = long_name(name.as_bytes());
        self.headers()
            .find(|h| long_name(h.name).eq_ignore_ascii_case(&want))
    }

    /// Every comma-separated value of every header of this kind, trimmed and unfolded, in order.
    pub fn values(&self, kind: HeaderKind) -> Vec<Cow<'_, [u8]>> {
        let mut out = Vec::new();
        for h in self.headers().filter(|h| h.kind == kind) {
            match h.value() {
                Cow::Borrowed(v) => out.extend(
                    split_top(v, b',')
                        .into_iter()
                        .map(|p| Cow::Borrowed(trim(p))),
                ),
                Cow::Owned(v) => out.extend(
                    split_top(&v, b',')
                        .into_iter()
                        .map(|p| Cow::Owned(trim(p).to_vec())),
                ),
            }
        }
        out
    }

    /// The body (exactly Content-Length bytes).
    pub fn body(&self) -> &[u8] {
        &self.raw[self.body.clone()]
    }

    /// The message exactly as received (start line to end of body).
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw[..self.body.end]
    }

    /// The message exactly as received, sharing the buffer.
    pub fn to_bytes(&self) -> Bytes {
        self.raw.slice(..self.body.end)
    }

    /// All Via hops, top first, including comma-joined ones.
    pub fn vias(&self) -> Result<Vec<Via>, SipError> {
        let vals = self.values(HeaderKind::Via);
        if vals.is_empty() {
            return Err(SipError::MissingHeader("Via"));
        }
        vals.iter()
            .map(|v| Via::parse(v).ok_or(SipError::BadHeader("Via")))
            .collect()
    }

    /// The top Via hop.
    pub fn top_via(&self) -> Result<Via, SipError> {
        let v = self.values(HeaderKind::Via);
        let first = v.first().ok_or(SipError::MissingHeader("Via"))?;
        Via::parse(first).ok_or(SipError::BadHeader("Via"))
    }

    fn single(&self, kind: HeaderKind, name: &'static str) -> Result<Cow<'_, [u8]>, SipError> {
        let mut it = self.headers().filter(|h| h.kind == kind);
        let h = it.next().ok_or(SipError::MissingHeader(name))?;
        if it.next().is_some() {
            return Err(SipError::BadHeader(name));
        }
        Ok(h.value())
    }

    /// The From header.
    pub fn from(&self) -> Result<NameAddr, SipError> {
        NameAddr::parse(&self.single(HeaderKind::From, "From")?).ok_or(SipError::BadHeader("From"))
    }

    /// The To header.
    pub fn to(&self) -> Result<NameAddr, SipError> {
        NameAddr::parse(&self.single(HeaderKind::To, "To")?).ok_or(SipError::BadHeader("To"))
    }

    /// The Call-ID (must be non-empty and contain no whitespace).
    pub fn call_id(&self) -> Result<Cow<'_, [u8]>, SipError> {
        let v = self.single(HeaderKind::CallId, "Call-ID")?;
        if v.is_empty() || v.iter().any(|&b| b <= b' ') {
            return Err(SipError::BadHeader("Call-ID"));
        }
        Ok(v)
    }

    /// The CSeq header.
    pub fn cseq(&self) -> Result<CSeq, SipError> {
        CSeq::parse(&self.single(HeaderKind::CSeq, "CSeq")?).ok_or(SipError::BadHeader("CSeq"))
    }

    /// Max-Forwards (0..=255), `None` if absent.
    pub fn max_forwards(&self) -> Result<Option<u8>, SipError> {
        match self.header(HeaderKind::MaxForwards) {
            None => Ok(None),
            Some(h) => parse_u32_below(&h.value(), 256)
                .map(|v| Some(v as u8))
                .ok_or(SipError::BadHeader("Max-Forwards")),
        }
    }

    /// Content-Length, `None` if absent.
    pub fn content_length(&self) -> Result<Option<usize>, SipError> {
        content_length(&self.raw, &self.headers)
    }

    /// Every P-Asserted-Identity value (sip:, sips:, tel:).
    pub fn p_asserted_identities(&self) -> Result<Vec<NameAddr>, SipError> {
        self.name_addrs(HeaderKind::PAssertedIdentity, "P-Asserted-Identity")
    }

    /// Every Record-Route value, top first.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, SipError> {
        self.name_addrs(HeaderKind::RecordRoute, "Record-Route")
    }

    /// Every Contact value.
    pub fn contacts(&self) -> Result<Vec<Contact>, SipError> {
        self.values(HeaderKind::Contact)
            .iter()
            .filter(|v| !blank(v))
            .map(|v| {
                if &v[..] == b"*" {
                    Ok(Contact::Star)
                } else {
                    NameAddr::parse(v)
                        .map(|n| Contact::Addr(Box::new(n)))
                        .ok_or(SipError::BadHeader("Contact"))
                }
            })
            .collect()
    }

    fn name_addrs(&self, kind: HeaderKind, name: &'static str) -> Result<Vec<NameAddr>, SipError> {
        self.values(kind)
            .iter()
            .map(|v| NameAddr::parse(v).ok_or(SipError::BadHeader(name)))
            .collect()
    }
}

/// Content-Length from header spans: several equal values are tolerated, different ones are not.
pub(crate) fn content_length(
    raw: &[u8],
    headers: &[HeaderSpan],
) -> Result<Option<usize>, SipError> {
    let mut found: Option<usize> = None;
    for h in headers
        .iter()
        .filter(|h| h.kind == HeaderKind::ContentLength)
    {
        let n = parse_content_length(&raw[h.value.clone()])?;
        if found.is_some_and(|f| f != n) {
            return Err(SipError::ConflictingContentLength);
        }
        found = Some(n);
    }
    Ok(found)
}

/// Parses one Content-Length value (LWS and folds around the digits allowed).
pub(crate) fn parse_content_length(v: &[u8]) -> Result<usize, SipError> {
    let v = trim(v);
    if v.first() == Some(&b'-') && v.len() > 1 && v[1..].iter().all(u8::is_ascii_digit) {
        return Err(SipError::NegativeContentLength);
    }
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return Err(SipError::BadContentLength);
    }
    Ok(v.iter()
        .fold(0usize, |acc, &d| acc * 10 + usize::from(d - b'0')))
}

/// Parses the head (start line, headers, blank line). `head` ends with CRLFCRLF.
pub(crate) fn parse_head(
    head: &[u8],
    limits: &Limits,
) -> Result<(StartLine, Vec<HeaderSpan>), SipError> {
    let first_end = find_crlf(head).ok_or(SipError::IncompleteHead)?;
    let start = parse_start_line(&head[..first_end])?;
    // Sized for a typical Expressway or Lync request (18-25 header lines) so the vector is
    // allocated once and never grows.
    let mut headers: Vec<HeaderSpan> = Vec::with_capacity(32);
    let mut pos = first_end + 2;
    let end = head.len() - 2; // position of the final CRLF
    let mut line_no = 1;
    // One searcher for all lines: a memchr call per line costs its setup each time.
    let lines_start = pos;
    let mut lfs = memchr::memchr_iter(b'\n', &head[lines_start..]).map(|e| lines_start + e);
    while pos < end {
        // `head` ends with CRLFCRLF, so a LF is always found before `end + 2`.
        let nl = lfs.next().unwrap_or(end);
        let line_end = if nl > pos && head[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        line_no += 1;
        let line = &head[pos..line_end];
        if line.first().is_some_and(|&b| is_ws(b)) {
            // Folded continuation: extend the previous header's value.
            let last = headers
                .last_mut()
                .ok_or(SipError::BadHeaderLine { line: line_no })?;
            last.value.end = line_end;
        } else {
            let (name, colon) =
                header_name(line).ok_or(SipError::BadHeaderLine { line: line_no })?;
            if headers.len() >= limits.max_headers {
                return Err(SipError::TooManyHeaders);
            }
            headers.push(HeaderSpan {
                kind: HeaderKind::of(&line[name.clone()]),
                name: pos + name.start..pos + name.end,
                value: pos + colon + 1..line_end,
            });
        }
        pos = nl + 1;
    }
    Ok((start, headers))
}

/// The name span and colon position of a header line: `LWS* token+ LWS* ':'`, checked in one
/// pass (exactly the lines that "first colon, trim, all token" accepted, since ':' is neither
/// token nor LWS).
fn header_name(line: &[u8]) -> Option<(Range<usize>, usize)> {
    let start = line.iter().position(|&b| !is_lws(b))?;
    let end = start + line[start..].iter().position(|&b| !is_token(b))?;
    let colon = end + line[end..].iter().position(|&b| !is_lws(b))?;
    (end > start && line[colon] == b':').then_some((start..end, colon))
}

fn parse_start_line(line: &[u8]) -> Result<StartLine, SipError> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let a = parts.next().unwrap_or_default();
    let b = parts.next().ok_or(SipError::BadStartLine)?;
    let c = parts.next().ok_or(SipError::BadStartLine)?;
    if a.len() > 4 && a[..4].eq_ignore_ascii_case(b"SIP/") {
        check_version(a)?;
        if b.len() != 3 || !b.iter().all(u8::is_ascii_digit) || b[0] == b'0' {
            return Err(SipError::BadStartLine);
        }
        let code = b
            .iter()
            .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
        if c.iter().any(|&x| x < b' ' && x != b'\t') {
            return Err(SipError::BadStartLine);
        }
        let off = a.len() + b.len() + 2;
        return Ok(StartLine::Response {
            code,
            reason: off..off + c.len(),
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version, single spaces, nothing after.
    if a.is_empty() || !a.iter().all(|&x| is_token(x)) {
        return Err(SipError::BadStartLine);
    }
    if c.contains(&b' ') || b.is_empty() || b[0] == b'<' || b.iter().any(|&x| x <= b' ') {
        return Err(SipError::BadStartLine);
    }
    check_version(c)?;
    let uri_start = a.len() + 1;
    Ok(StartLine::Request {
        method: 0..a.len(),
        uri: uri_start..uri_start + b.len(),
    })
}

fn check_version(v: &[u8]) -> Result<(), SipError> {
    if v.eq_ignore_ascii_case(b"SIP/2.0") {
        return Ok(());
    }
    let well_formed = v.len() > 4
        && v[..4].eq_ignore_ascii_case(b"SIP/")
        && v[4..].split(|&b| b == b'.').count() == 2
        && v[4..]
            .split(|&b| b == b'.')
            .all(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit));
    Err(if well_formed {
        SipError::UnsupportedVersion
    } else {
        SipError::BadStartLine
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    #[test]
    fn compact_and_case_insensitive_names() {
        assert_eq!(HeaderKind::of(b"V"), HeaderKind::Via);
        assert_eq!(HeaderKind::of(b"i"), HeaderKind::CallId);
        assert_eq!(HeaderKind::of(b"MaX-fOrWaRdS"), HeaderKind::MaxForwards);
        assert_eq!(
            HeaderKind::of(b"p-asserted-identity"),
            HeaderKind::PAssertedIdentity
        );
        assert_eq!(HeaderKind::of(b"k"), HeaderKind::Other);
        assert_eq!(long_name(b"k"), "Supported");
        assert_eq!(long_name(b"X"), "Session-Expires");
        assert_eq!(long_name(b"ms-diagnostics"), "ms-diagnostics");
    }

    /// The former name check: first colon, trim, every byte a token char.
    fn header_name_reference(line: &[u8]) -> Option<(Range<usize>, usize)> {
        let colon = memchr::memchr(b':', line)?;
        let name = trim(&line[..colon]);
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            return None;
        }
        let start = name.as_ptr() as usize - line.as_ptr() as usize;
        Some((start..start + name.len(), colon))
    }

    proptest::proptest! {
        #[test]
        fn header_name_matches_reference(line in proptest::collection::vec(
            proptest::sample::select(b"aZ-~:; \t\r@".to_vec()), 0..16)) {
            proptest::prop_assert_eq!(header_name(&line), header_name_reference(&line));
        }

        #[test]
        fn find_crlf_matches_memmem(s in proptest::collection::vec(
            proptest::sample::select(b"a\r\n".to_vec()), 0..16)) {
            proptest::prop_assert_eq!(find_crlf(&s), memchr::memmem::find(&s, b"\r\n"));
            proptest::prop_assert_eq!(
                find_blank_line(&s),
                memchr::memmem::find(&s, b"\r\n\r\n")
            );
        }
    }

    /// The former `validate`, through the typed views (allocating): the oracle for the
    /// byte-level one.
    fn validate_reference(m: &Message) -> Result<(), SipError> {
        if m.is_request() {
            let uri = m.request_uri()?;
            if uri.headers.is_some() {
                return Err(SipError::BadRequestUri);
            }
        }
        m.vias()?;
        m.from()?;
        m.to()?;
        m.call_id()?;
        let cseq = m.cseq()?;
        if let Some(meth) = m.method()
            && meth != cseq.method.as_bytes()
        {
            return Err(SipError::CSeqMismatch);
        }
        m.max_forwards()?;
        m.contacts()?;
        if let Some(d) = m.header(HeaderKind::Date)
            && !d.value().ends_with(b" GMT")
        {
            return Err(SipError::BadHeader("Date"));
        }
        Ok(())
    }

    /// Every SIP fixture (Expressway, Lync, RFC 4475 torture messages).
    fn fixtures() -> &'static [Vec<u8>] {
        static FIXTURES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
            let mut out = Vec::new();
            for dir in ["sip", "rfc4475"] {
                let mut paths: Vec<_> = std::fs::read_dir(root.join(dir))
                    .expect("fixture directory")
                    .map(|e| e.expect("fixture entry").path())
                    .collect();
                paths.sort();
                out.extend(paths.iter().map(|p| std::fs::read(p).expect("fixture")));
            }
            out
        });
        &FIXTURES
    }

    /// Bytes and snippets that move a SIP parser between states.
    const SNIPPETS: &[&[u8]] = &[
        b" ",
        b"\t",
        b"\r\n ",
        b"\r",
        b";",
        b",",
        b":",
        b"<",
        b">",
        b"\"",
        b"\\",
        b"?",
        b"@",
        b"=",
        b"/",
        b"[",
        b"]",
        b"*",
        b"0",
        b"9",
        b"a",
        b"Z",
        b"%",
        b"\x7f",
        b"\x00",
        b"\xff",
        b"sip:",
        b"sips:",
        b"tel:+1",
        b"http:",
        b";tag=",
        b";branch=z9hG4bK",
        b"SIP/2.0/TLS ",
        b" GMT",
        b"2147483648",
        b"256",
        b"INVITE",
        b"ACK",
        b"<sip:a@b>",
        b"\"x\" ",
        b"[::1]:5061",
        b"\r\nVia: SIP/2.0/TLS h\r\n",
        b"\r\nContact: *\r\n",
        b"\r\nFrom: <sip:a@b>\r\n",
        b"\r\nDate: x\r\n",
        b"\r\nm: \r\n",
        b"\r\nMax-Forwards: 70\r\n",
    ];

    #[derive(Debug, Clone)]
    enum Edit {
        Replace(usize, usize, usize),
        Insert(usize, usize),
        Delete(usize, usize),
    }

    fn edit() -> impl proptest::strategy::Strategy<Value = Edit> {
        use proptest::prelude::*;
        let n = SNIPPETS.len();
        prop_oneof![
            (any::<usize>(), 1..8usize, 0..n).prop_map(|(p, l, s)| Edit::Replace(p, l, s)),
            (any::<usize>(), 0..n).prop_map(|(p, s)| Edit::Insert(p, s)),
            (any::<usize>(), 1..24usize).prop_map(|(p, l)| Edit::Delete(p, l)),
        ]
    }

    fn apply(msg: &mut Vec<u8>, e: &Edit) {
        let at = |p: usize, len: usize| if len == 0 { 0 } else { p % len };
        match *e {
            Edit::Replace(p, l, s) => {
                let p = at(p, msg.len());
                let end = (p + l).min(msg.len());
                msg.splice(p..end, SNIPPETS[s].iter().copied());
            }
            Edit::Insert(p, s) => {
                let p = at(p, msg.len() + 1);
                msg.splice(p..p, SNIPPETS[s].iter().copied());
            }
            Edit::Delete(p, l) => {
                let p = at(p, msg.len());
                let end = (p + l).min(msg.len());
                msg.drain(p..end);
            }
        }
    }

    #[test]
    fn validate_matches_reference_on_fixtures() {
        for f in fixtures() {
            if let Ok(m) = Message::parse(Bytes::from(f.clone())) {
                assert_eq!(m.validate(), validate_reference(&m), "{m:?}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        #[test]
        fn validate_matches_reference(
            which in proptest::prelude::any::<usize>(),
            edits in proptest::collection::vec(edit(), 1..6),
        ) {
            let mut msg = fixtures()[which % fixtures().len()].clone();
            for e in &edits {
                apply(&mut msg, e);
            }
            if let Ok(m) = Message::parse(Bytes::from(msg)) {
                proptest::prop_assert_eq!(m.validate(), validate_reference(&m));
            }
        }
    }

    #[test]
    fn content_length_values() {
        assert_eq!(parse_content_length(b"  150 "), Ok(150));
        assert_eq!(parse_content_length(b"\r\n 0"), Ok(0));
        assert_eq!(
            parse_content_length(b"-999"),
            Err(SipError::NegativeContentLength)
        );
        assert_eq!(
            parse_content_length(b"1 2"),
            Err(SipError::BadContentLength)
        );
        assert_eq!(
            parse_content_length(b"99999999999999999999"),
            Err(SipError::BadContentLength)
        );
    }

    #[test]
    fn start_lines() {
        assert!(matches!(
            parse_start_line(b"SERVICE sip:a@b SIP/2.0"),
            Ok(StartLine::Request { .. })
        ));
        assert_eq!(
            parse_start_line(b"SIP/2.0 504 Server time-out"),
            Ok(StartLine::Response {
                code: 504,
                reason: 12..27
            })
        );
        assert_eq!(
            parse_start_line(b"OPTIONS sip:a SIP/3.0"),
            Err(SipError::UnsupportedVersion)
        );
        assert_eq!(
            parse_start_line(b"OPTIONS sip:a HTTP/1.1"),
            Err(SipError::BadStartLine)
        );
        assert_eq!(
            parse_start_line(b"SIP/2.0 4294967301 x"),
            Err(SipError::BadStartLine)
        );
        assert_eq!(parse_start_line(b"OPTIONS"), Err(SipError::BadStartLine));
    }

    #[test]
    fn error_status_mapping() {
        assert_eq!(
            SipError::HeadTooLarge { limit: 1 }.status(),
            (513, "Message Too Large")
        );
        assert_eq!(SipError::BadHeader("To").status(), (400, "Bad Request"));
        assert_eq!(
            SipError::BadHeader("To").warning("sip.skype.lab"),
            "399 sip.skype.lab \"malformed To header\""
        );
        assert!(!SipError::TruncatedBody.closes_connection());
        assert!(SipError::ConflictingContentLength.closes_connection());
    }
}
