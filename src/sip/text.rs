//! Byte-level helpers shared by the parsers: LWS, tokens, unfolding, comma and parameter splitting.

use std::borrow::Cow;

/// SP or HTAB.
pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Whitespace including CR and LF (folded values).
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// RFC 3261 `token` character.
pub(crate) fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Trims LWS (including folding CRLFs) from both ends.
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_lws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_lws(b)).map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

/// Replaces each fold (CRLF followed by whitespace) with one space and trims; borrows when unfolded.
pub(crate) fn unfold(s: &[u8]) -> Cow<'_, [u8]> {
    let s = trim(s);
    if memchr::memchr2(b'\r', b'\n', s).is_none() {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b == b'\r' || b == b'\n' {
            while i < s.len() && is_lws(s[i]) {
                i += 1;
            }
            if out.last().is_none_or(|&l| !is_ws(l)) {
                out.push(b' ');
            }
            continue;
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(out)
}

/// Splits on `sep` outside quoted strings and `<...>`.
pub(crate) fn split_top(s: &[u8], sep: u8) -> Vec<&[u8]> {
    if memchr::memchr2(b'"', b'<', s).is_none() {
        return s.split(move |&b| b == sep).collect();
    }
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut esc) = (false, false, false);
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        if quoted {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                quoted = false;
            }
            continue;
        }
        match b {
            b'"' => quoted = true,
            b'<' => angle = true,
            b'>' => angle = false,
            _ if b == sep && !angle => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Lossy UTF-8 conversion to an owned string.
pub(crate) fn string(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

/// One generic parameter `name[=value]`; the value keeps its quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Parameter name as sent.
    pub name: String,
    /// Value, if any (quoted strings keep their quotes).
    pub value: Option<String>,
}

/// Parses `;a=b;c` parameter text (after the first `;`); LWS around `;` and `=` allowed.
pub(crate) fn parse_params(segments: &[&[u8]]) -> Option<Vec<Param>> {
    let mut out = Vec::with_capacity(segments.len());
    for seg in segments {
        let (name, value) = match seg.iter().position(|&b| b == b'=') {
            Some(eq) => (trim(&seg[..eq]), Some(trim(&seg[eq + 1..]))),
            None => (trim(seg), None),
        };
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            return None;
        }
        if let Some(v) = value {
            let ok = if v.first() == Some(&b'"') {
                quoted_end(v) == Some(v.len())
            } else {
                !v.is_empty() && v.iter().all(|&b| is_token(b) || b"[]:/@?&=$+".contains(&b))
            };
            if !ok {
                return None;
            }
        }
        out.push(Param {
            name: string(name),
            value: value.map(|v| string(&unfold(v))),
        });
    }
    Some(out)
}

/// Given text starting with `"`, the index just past the closing quote.
pub(crate) fn quoted_end(s: &[u8]) -> Option<usize> {
    let mut esc = false;
    for (i, &b) in s.iter().enumerate().skip(1) {
        if esc {
            esc = false;
        } else if b == b'\\' {
            esc = true;
        } else if b == b'"' {
            return Some(i + 1);
        }
    }
    None
}

/// Finds a parameter by case-insensitive name.
pub(crate) fn find_param<'a>(params: &'a [Param], name: &str) -> Option<&'a Param> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}
