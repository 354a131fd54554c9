//! Building responses from requests, requests from parts, and best-effort 400s from raw heads.

use bytes::Bytes;

use super::message::{HeaderKind, Message};
use super::text::{is_ws, split_top, trim, unfold};

/// Builds a response to a parsed request, copying Via (all), From, To, Call-ID and CSeq.
#[derive(Debug, Clone)]
pub struct ResponseBuilder<'a> {
    req: &'a Message,
    code: u16,
    reason: &'a str,
    via_params: Vec<(&'a str, Option<&'a str>)>,
    rport: Option<u16>,
    to_tag: Option<&'a str>,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
}

impl<'a> ResponseBuilder<'a> {
    /// Starts a response with this status code and reason phrase.
    pub fn from_request(req: &'a Message, code: u16, reason: &'a str) -> Self {
        ResponseBuilder {
            req,
            code,
            reason,
            via_params: Vec::new(),
            rport: None,
            to_tag: None,
            headers: Vec::new(),
            body: b"",
        }
    }

    /// Sets `name=value` on the top Via (replacing an existing parameter of that name in place).
    pub fn top_via_param(mut self, name: &'a str, value: &'a str) -> Self {
        self.via_params.push((name, Some(value)));
        self
    }

    /// Sets a valueless parameter on the top Via.
    pub fn top_via_flag(mut self, name: &'a str) -> Self {
        self.via_params.push((name, None));
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
        let mut out = Vec::with_capacity(1024);
        self.build_into(&mut out);
        Bytes::from(out)
    }

    /// Appends the serialized response to `out` (reuse a connection's write buffer).
    pub fn build_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"SIP/2.0 ");
        push_u(out, u64::from(self.code));
        out.push(b' ');
        push_clean(out, self.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        let mut first_via = true;
        for h in self.req.headers() {
            match h.kind {
                HeaderKind::Via => {
                    out.extend_from_slice(b"Via: ");
                    let v = trim(h.raw_value);
                    if first_via {
                        first_via = false;
                        self.write_top_via(out, v);
                    } else {
                        out.extend_from_slice(v);
                    }
                    out.extend_from_slice(b"\r\n");
                }
                HeaderKind::From | HeaderKind::CallId | HeaderKind::CSeq => {
                    out.extend_from_slice(long(h.kind).as_bytes());
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(trim(h.raw_value));
                    out.extend_from_slice(b"\r\n");
                }
                HeaderKind::To => {
                    out.extend_from_slice(b"To: ");
                    let v = trim(h.raw_value);
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
        write_tail(out, &self.headers, self.body);
    }

    fn write_top_via(&self, out: &mut Vec<u8>, v: &[u8]) {
        if self.via_params.is_empty() && self.rport.is_none() {
            out.extend_from_slice(v);
            return;
        }
        // Only the first comma-separated hop is the top Via.
        let hops = split_top(v, b',');
        let top = hops.first().copied().unwrap_or_default();
        let rest = &v[top.len()..];
        let segs = split_top(top, b';');
        let name_of = |seg: &[u8]| -> usize {
            let n = trim(seg.split(|&b| b == b'=').next().unwrap_or_default());
            self.via_params
                .iter()
                .position(|(name, _)| n.eq_ignore_ascii_case(name.as_bytes()))
                .map_or(usize::MAX, |i| i)
        };
        let mut used = vec![false; self.via_params.len()];
        let start = out.len();
        for (i, seg) in segs.iter().enumerate() {
            if i > 0 {
                out.push(b';');
                let idx = name_of(seg);
                if idx != usize::MAX {
                    used[idx] = true;
                    self.push_param(out, idx);
                    continue;
                }
                let n = trim(seg.split(|&b| b == b'=').next().unwrap_or_default());
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
        for (idx, done) in used.iter().enumerate() {
            if !done {
                out.push(b';');
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
        if let Some((name, value)) = self.via_params.get(idx) {
            out.extend_from_slice(name.as_bytes());
            if let Some(v) = value {
                out.push(b'=');
                out.extend_from_slice(v.as_bytes());
            }
        }
    }
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
        write_tail(&mut out, &self.headers, self.body);
        Bytes::from(out)
    }
}

/// Best-effort response for a message that failed parsing: copies the raw Via, From, To, Call-ID
/// and CSeq lines (folds included), adds `extra` headers and `Content-Length: 0`. `None` without Via.
pub fn response_from_raw(
    raw: &[u8],
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
) -> Option<Bytes> {
    let head_end = memchr::memmem::find(raw, b"\r\n\r\n").map_or(raw.len(), |p| p + 2);
    let head = &raw[..head_end];
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"SIP/2.0 ");
    push_u(&mut out, u64::from(code));
    out.push(b' ');
    push_clean(&mut out, reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_via = false;
    let mut copying = false;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first().is_some_and(|&b| is_ws(b)) {
            if copying {
                out.push(b' ');
                out.extend_from_slice(trim(line));
            }
            continue;
        }
        if copying {
            out.extend_from_slice(b"\r\n");
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
            has_via |= kind == HeaderKind::Via;
            copying = true;
            out.extend_from_slice(long(kind).as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(trim(&line[colon + 1..]));
        }
    }
    if copying {
        out.extend_from_slice(b"\r\n");
    }
    if !has_via {
        return None;
    }
    write_tail(&mut out, extra, b"");
    Some(Bytes::from(out))
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
    split_top(after, b';').iter().skip(1).any(|p| {
        let n = p.split(|&b| b == b'=').next().unwrap_or_default();
        trim(n).eq_ignore_ascii_case(b"tag")
    })
}

fn write_tail(out: &mut Vec<u8>, headers: &[(&str, &str)], body: &[u8]) {
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
