//! Building responses from requests, requests from parts, and best-effort 400s from raw heads.

use std::borrow::Cow;

use bytes::Bytes;

use super::message::{HeaderKind, Message};
use super::text::{TopSplit, is_ws, trim, unfold};

/// A list that keeps its first `N` items inline: a builder is made per response, and the few
/// Via parameters and headers the Edge adds should not cost an allocation each time.
#[derive(Debug, Clone)]
struct Small<T, const N: usize> {
    inline: [Option<T>; N],
    len: usize,
    spill: Vec<T>,
}

impl<T, const N: usize> Small<T, N> {
    fn new() -> Self {
        Small {
            inline: [const { None }; N],
            len: 0,
            spill: Vec::new(),
        }
    }

    fn push(&mut self, item: T) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = Some(item),
            None => self.spill.push(item),
        }
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn get(&self, i: usize) -> Option<&T> {
        match self.inline.get(i) {
            Some(slot) => slot.as_ref(),
            None => self.spill.get(i - N),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.inline
            .iter()
            .map_while(Option::as_ref)
            .chain(&self.spill)
    }
}

impl<const N: usize> Small<bool, N> {
    fn set(&mut self, i: usize) {
        let slot = match self.inline.get_mut(i) {
            Some(slot) => slot.as_mut(),
            None => self.spill.get_mut(i - N),
        };
        if let Some(v) = slot {
            *v = true;
        }
    }
}

/// What a response answers: a parsed request, or the raw head of one that did not parse.
#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    Parsed(&'a Message),
    Raw(&'a [u8]),
}

/// Builds a response to a request, copying Via (all), From, To, Call-ID and CSeq. The request is a parsed
/// [`Message`] ([`ResponseBuilder::from_request`]) or the raw bytes of one that failed to parse
/// ([`ResponseBuilder::from_raw`]); both get the same Via parameters, To tag and headers, so a server has one
/// response path for every answer.
#[derive(Debug, Clone)]
pub struct ResponseBuilder<'a> {
    src: Source<'a>,
    code: u16,
    reason: &'a str,
    /// (separator written before it when appended, name, value).
    via_params: Small<(&'static str, &'a str, Option<Cow<'a, str>>), 4>,
    rport: Option<u16>,
    to_tag: Option<&'a str>,
    headers: Small<(&'a str, &'a str), 4>,
    body: &'a [u8],
}

impl<'a> ResponseBuilder<'a> {
    /// Starts a response with this status code and reason phrase.
    pub fn from_request(req: &'a Message, code: u16, reason: &'a str) -> Self {
        Self::new(Source::Parsed(req), code, reason)
    }

    /// Starts a response to a message that did not parse, from its raw bytes: the Via, From, To, Call-ID and
    /// CSeq lines of its head are copied (folded lines joined, compact names expanded). `None` when the head
    /// has no Via line (nowhere to send a response).
    pub fn from_raw(raw: &'a [u8], code: u16, reason: &'a str) -> Option<Self> {
        raw_headers(raw)
            .iter()
            .any(|(k, _)| *k == HeaderKind::Via)
            .then(|| Self::new(Source::Raw(raw), code, reason))
    }

    fn new(src: Source<'a>, code: u16, reason: &'a str) -> Self {
        ResponseBuilder {
            src,
            code,
            reason,
            via_params: Small::new(),
            rport: None,
            to_tag: None,
            headers: Small::new(),
            body: b"",
        }
    }

    /// Sets `name=value` on the top Via (replacing an existing parameter of that name in place).
    /// Takes `&str` or an owned `String` (a formatted port or connection id); borrowed values
    /// are not copied.
    pub fn top_via_param(mut self, name: &'a str, value: impl Into<Cow<'a, str>>) -> Self {
        self.via_params.push((";", name, Some(value.into())));
        self
    }

    /// As [`ResponseBuilder::top_via_param`], but appended after `"; "` rather than `";"`: the Edge's own
    /// spacing in the seed's 504 (`rport; received=10.48.36.47; ms-received-port=25002;ms-received-cid=100`).
    pub fn top_via_param_spaced(mut self, name: &'a str, value: impl Into<Cow<'a, str>>) -> Self {
        self.via_params.push(("; ", name, Some(value.into())));
        self
    }

    /// Sets a valueless parameter on the top Via.
    pub fn top_via_flag(mut self, name: &'a str) -> Self {
        self.via_params.push((";", name, None));
        self
    }

    /// Fills `rport=port` if the top Via carries `rport` (RFC 3581); no-op otherwise.
    pub fn fill_rport(mut self, port: u16) -> Self {
        self.rport = Some(port);
        self
    }

    /// Adds `;tag=` to To when it has none (a To that already has a tag is kept).
    pub fn to_tag(mut self, tag: &'a str) -> Self {
        self.to_tag = Some(tag);
        self
    }

    /// Appends a header after the copied ones (CR/LF in the value are replaced by spaces).
    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets the body (Content-Type is the caller's header).
    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// Serializes the response; Content-Length is always the last header.
    pub fn build(&self) -> Bytes {
        // One allocation, sized so the buffer never grows while writing.
        let mut out = Vec::with_capacity(self.size_bound());
        self.build_into(&mut out);
        Bytes::from(out)
    }

    /// An upper bound of the response size for a parsed request: the copied lines come from the request head
    /// (a compact name grows by at most 8 bytes, `i` → `Call-ID`), plus everything added here.
    fn size_bound(&self) -> usize {
        let mut n = match self.src {
            Source::Parsed(req) => req.body.start + 8 * req.headers.len() + 64,
            // Raw heads are error answers, and may be as large as the head limit: start small and grow
            // rather than reserve for lines that are not copied.
            Source::Raw(_) => 512,
        };
        n += self.reason.len() + self.body.len();
        for (sep, name, value) in self.via_params.iter() {
            n += sep.len() + name.len() + value.as_ref().map_or(0, |v| v.len()) + 1;
        }
        n += self.to_tag.map_or(0, str::len) + 8;
        for (name, value) in self.headers.iter() {
            n += name.len() + value.len() + 4;
        }
        n
    }

    /// Appends the serialized response to `out` (reuse a connection's write buffer).
    pub fn build_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"SIP/2.0 ");
        push_u(out, u64::from(self.code));
        out.push(b' ');
        push_clean(out, self.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        let mut first_via = true;
        match self.src {
            Source::Parsed(req) => {
                for h in req.headers() {
                    self.write_copied(out, h.kind, trim(h.raw_value), &mut first_via);
                }
            }
            Source::Raw(raw) => {
                for (kind, v) in raw_headers(raw) {
                    self.write_copied(out, kind, trim(&v), &mut first_via);
                }
            }
        }
        write_tail(out, self.headers.iter().copied(), self.body);
    }

    /// Writes one request header the response copies (Via, From, To, Call-ID, CSeq); skips the others.
    fn write_copied(&self, out: &mut Vec<u8>, kind: HeaderKind, v: &[u8], first_via: &mut bool) {
        match kind {
            HeaderKind::Via => {
                out.extend_from_slice(b"Via: ");
                if *first_via {
                    *first_via = false;
                    self.write_top_via(out, v);
                } else {
                    out.extend_from_slice(v);
                }
                out.extend_from_slice(b"\r\n");
            }
            HeaderKind::From | HeaderKind::CallId | HeaderKind::CSeq => {
                out.extend_from_slice(long(kind).as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(v);
                out.extend_from_slice(b"\r\n");
            }
            HeaderKind::To => {
                out.extend_from_slice(b"To: ");
                out.extend_from_slice(v);
                if let Some(tag) = self.to_tag
                    && !has_tag(&unfold(v))
                {
                    out.extend_from_slice(b";tag=");
                    push_clean(out, tag.as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
            _ => {}
        }
    }

    fn write_top_via(&self, out: &mut Vec<u8>, v: &[u8]) {
        if self.via_params.is_empty() && self.rport.is_none() {
            out.extend_from_slice(v);
            return;
        }
        // Only the first comma-separated hop is the top Via; its parameters are rewritten
        // straight from the request bytes, segment by segment, without parsing them.
        let top = TopSplit::new(v, b',').next().unwrap_or_default();
        let rest = &v[top.len()..];
        // Which of our parameters replaced one in place (the others are appended).
        let mut used: Small<bool, 8> = Small::new();
        for _ in 0..self.via_params.len() {
            used.push(false);
        }
        let start = out.len();
        for (i, seg) in TopSplit::new(top, b';').enumerate() {
            if i > 0 {
                out.push(b';');
                let n = param_name(seg);
                if let Some(idx) = self
                    .via_params
                    .iter()
                    .position(|(_, name, _)| n.eq_ignore_ascii_case(name.as_bytes()))
                {
                    used.set(idx);
                    self.push_param(out, idx);
                    continue;
                }
                if let Some(port) = self.rport
                    && n.eq_ignore_ascii_case(b"rport")
                {
                    out.extend_from_slice(b"rport=");
                    push_u(out, u64::from(port));
                    continue;
                }
            }
            out.extend_from_slice(seg);
        }
        for idx in 0..self.via_params.len() {
            if used.get(idx) == Some(&false) {
                let sep = self.via_params.get(idx).map_or(";", |(sep, _, _)| *sep);
                out.extend_from_slice(sep.as_bytes());
                self.push_param(out, idx);
            }
        }
        // Untrusted values must not break the line.
        if memchr::memchr2(b'\r', b'\n', &out[start..]).is_some() {
            for b in &mut out[start..] {
                if *b == b'\r' || *b == b'\n' {
                    *b = b' ';
                }
            }
        }
        out.extend_from_slice(rest);
    }

    fn push_param(&self, out: &mut Vec<u8>, idx: usize) {
        if let Some((_, name, value)) = self.via_params.get(idx) {
            out.extend_from_slice(name.as_bytes());
            if let Some(v) = value {
                out.push(b'=');
                out.extend_from_slice(v.as_bytes());
            }
        }
    }
}

/// The trimmed name of a `name[=value]` parameter segment.
fn param_name(seg: &[u8]) -> &[u8] {
    trim(seg.split(|&b| b == b'=').next().unwrap_or_default())
}

/// Builds a request: start line, headers in order, Content-Length last, body.
#[derive(Debug, Clone)]
pub struct RequestBuilder<'a> {
    method: &'a str,
    uri: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
}

impl<'a> RequestBuilder<'a> {
    /// Starts `METHOD uri SIP/2.0`.
    pub fn new(method: &'a str, uri: &'a str) -> Self {
        RequestBuilder {
            method,
            uri,
            headers: Vec::new(),
            body: b"",
        }
    }

    /// Appends a header (CR/LF in the value are replaced by spaces).
    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets the body (Content-Type is the caller's header).
    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// Serializes the request.
    pub fn build(&self) -> Bytes {
        let mut out = Vec::with_capacity(256 + self.body.len());
        push_clean(&mut out, self.method.as_bytes());
        out.push(b' ');
        push_clean(&mut out, self.uri.as_bytes());
        out.extend_from_slice(b" SIP/2.0\r\n");
        write_tail(&mut out, self.headers.iter().copied(), self.body);
        Bytes::from(out)
    }
}

/// Best-effort response for a message that failed parsing: copies the raw Via, From, To, Call-ID and CSeq
/// lines (folds included), adds `extra` headers and `Content-Length: 0`. `None` without Via. The same as
/// [`ResponseBuilder::from_raw`] with the `extra` headers and nothing else.
pub fn response_from_raw(
    raw: &[u8],
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
) -> Option<Bytes> {
    let mut b = ResponseBuilder::from_raw(raw, code, reason)?;
    for (n, v) in extra {
        b = b.header(n, v);
    }
    Some(b.build())
}

/// The Via, From, To, Call-ID and CSeq header lines of a raw head, in order, each with its folded
/// continuation lines joined by a space (the start line and every other line are skipped).
fn raw_headers(raw: &[u8]) -> Vec<(HeaderKind, Vec<u8>)> {
    let head_end = memchr::memmem::find(raw, b"\r\n\r\n").map_or(raw.len(), |p| p + 2);
    let mut out: Vec<(HeaderKind, Vec<u8>)> = Vec::new();
    let mut copying = false;
    for line in raw[..head_end].split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first().is_some_and(|&b| is_ws(b)) {
            if copying && let Some((_, v)) = out.last_mut() {
                v.push(b' ');
                v.extend_from_slice(trim(line));
            }
            continue;
        }
        copying = false;
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let kind = HeaderKind::of(trim(&line[..colon]));
        if matches!(
            kind,
            HeaderKind::Via
                | HeaderKind::From
                | HeaderKind::To
                | HeaderKind::CallId
                | HeaderKind::CSeq
        ) {
            copying = true;
            out.push((kind, trim(&line[colon + 1..]).to_vec()));
        }
    }
    out
}

fn long(kind: HeaderKind) -> &'static str {
    match kind {
        HeaderKind::Via => "Via",
        HeaderKind::From => "From",
        HeaderKind::To => "To",
        HeaderKind::CallId => "Call-ID",
        _ => "CSeq",
    }
}

fn has_tag(to: &[u8]) -> bool {
    let after = match memchr::memrchr(b'>', to) {
        Some(p) => &to[p + 1..],
        None => to,
    };
    TopSplit::new(after, b';')
        .skip(1)
        .any(|p| param_name(p).eq_ignore_ascii_case(b"tag"))
}

fn write_tail<'h>(
    out: &mut Vec<u8>,
    headers: impl Iterator<Item = (&'h str, &'h str)>,
    body: &[u8],
) {
    for (name, value) in headers {
        push_clean(out, name.as_bytes());
        out.extend_from_slice(b": ");
        push_clean(out, value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    push_u(out, body.len() as u64);
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// Copies text, replacing CR and LF so a value can never start a new header line.
fn push_clean(out: &mut Vec<u8>, s: &[u8]) {
    // Values almost never hold CR/LF: copy in one go unless they do.
    if memchr::memchr2(b'\r', b'\n', s).is_none() {
        out.extend_from_slice(s);
        return;
    }
    out.extend(
        s.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

fn push_u(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_heads_get_the_same_via_params_tag_and_headers_as_parsed_requests() {
        let raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.1:5061;rport\r\n ;branch=z9hG4bK9\r\nVia: SIP/2.0/TLS 10.0.0.2\r\nt: <sip:a@b>\r\nf: <sip:x@y>;tag=1\r\nCSeq: x OPTIONS\r\ni: abc\r\nX-Other: dropped\r\n\r\n";
        let out = ResponseBuilder::from_raw(raw, 400, "Bad Request")
            .unwrap()
            .fill_rport(40000)
            .top_via_param("received", "127.0.0.1")
            .to_tag("T1")
            .header("Server", "RTC/6.0")
            .build();
        assert_eq!(
            String::from_utf8_lossy(&out),
            "SIP/2.0 400 Bad Request\r\nVia: SIP/2.0/TLS 10.0.0.1:5061;rport=40000;branch=z9hG4bK9;received=127.0.0.1\r\nVia: SIP/2.0/TLS 10.0.0.2\r\nTo: <sip:a@b>;tag=T1\r\nFrom: <sip:x@y>;tag=1\r\nCSeq: x OPTIONS\r\nCall-ID: abc\r\nServer: RTC/6.0\r\nContent-Length: 0\r\n\r\n"
        );
        assert!(
            ResponseBuilder::from_raw(
                b"OPTIONS sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n",
                400,
                "Bad"
            )
            .is_none()
        );
    }
}
