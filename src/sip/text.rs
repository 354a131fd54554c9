//! Byte-level helpers shared by the parsers: LWS, tokens, unfolding, comma and parameter splitting.

use std::borrow::Cow;
use std::sync::LazyLock;

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
    // A table lookup: this runs for every byte of every header name.
    TOKEN[usize::from(b)]
}

const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

/// Byte classes for the validating scanners: one table lookup per byte instead of a chain of
/// comparisons (validation walks every byte of every Via and name-addr).
pub(crate) mod class {
    /// [`super::is_token`].
    pub(crate) const TOKEN: u8 = 1;
    /// A generic-param value character: token or one of `[]:/@?&=$+`.
    pub(crate) const PARAM_VALUE: u8 = 2;
    /// A host name character: ASCII alphanumeric, `.` or `-`.
    pub(crate) const HOST: u8 = 4;
    /// Allowed anywhere in a URI: not a control, space, DEL, `<` or `>`.
    pub(crate) const URI: u8 = 8;
    /// A URI scheme character: ASCII alphanumeric, `+`, `-` or `.`.
    pub(crate) const SCHEME: u8 = 16;
    /// `token` or LWS (a display name without quotes).
    pub(crate) const TOKEN_LWS: u8 = 32;
}

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if TOKEN[i] {
            c |= class::TOKEN | class::PARAM_VALUE | class::TOKEN_LWS;
        }
        if matches!(
            b,
            b'[' | b']' | b':' | b'/' | b'@' | b'?' | b'&' | b'=' | b'$' | b'+'
        ) {
            c |= class::PARAM_VALUE;
        }
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
            c |= class::HOST;
        }
        if !(b <= b' ' || b == 0x7f || b == b'<' || b == b'>') {
            c |= class::URI;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.') {
            c |= class::SCHEME;
        }
        if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            c |= class::TOKEN_LWS;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// True if every byte of `s` is in `class` (true for an empty `s`). No early exit: the loop is a
/// load and an AND per byte, and the strings checked are short and nearly always valid.
pub(crate) fn all_in(s: &[u8], class: u8) -> bool {
    s.iter().fold(class, |acc, &b| acc & CLASS[usize::from(b)]) != 0
}

/// Position of the first `\r\n\r\n` (the end of a message head). `memmem::find` would build a
/// new searcher on every call, which costs more than the search over a 1-2 KB head; this one is
/// built once.
pub(crate) fn find_blank_line(s: &[u8]) -> Option<usize> {
    static FINDER: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
    FINDER.find(s)
}

/// Position of the first `\r\n` (same result as `memmem::find(s, b"\r\n")`, without building a
/// searcher: the first line is short).
pub(crate) fn find_crlf(s: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', s).find_map(|nl| (nl > 0 && s[nl - 1] == b'\r').then(|| nl - 1))
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
    TopSplit::new(s, sep).collect()
}

/// [`split_top`] without the vector: the response builder walks the top Via and To this way on
/// every response, and an allocation per header costs more than the scan.
#[derive(Debug, Clone)]
pub(crate) struct TopSplit<'a> {
    rest: Option<&'a [u8]>,
    sep: u8,
}

impl<'a> TopSplit<'a> {
    pub(crate) fn new(s: &'a [u8], sep: u8) -> Self {
        TopSplit { rest: Some(s), sep }
    }
}

impl<'a> Iterator for TopSplit<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let s = self.rest?;
        // A separator is only ever found outside quotes and `<...>`, so every segment starts in
        // the plain state. Jump with memchr between the only bytes that change the state.
        let mut i = 0;
        let mut angle = false;
        loop {
            let found = if angle {
                memchr::memchr2(b'"', b'>', &s[i..])
            } else {
                memchr::memchr3(self.sep, b'"', b'<', &s[i..])
            };
            let Some(off) = found else { break };
            let p = i + off;
            match s[p] {
                // Quotes count inside `<...>` too; an unterminated one swallows the rest.
                b'"' => match quoted_end(&s[p..]) {
                    Some(len) => i = p + len,
                    None => break,
                },
                b'<' if !angle => {
                    angle = true;
                    i = p + 1;
                }
                b'>' if angle => {
                    angle = false;
                    i = p + 1;
                }
                _ => {
                    self.rest = Some(&s[p + 1..]);
                    return Some(&s[..p]);
                }
            }
        }
        self.rest = None;
        Some(s)
    }
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
        if value.is_some_and(|v| !param_value_ok(v)) {
            return None;
        }
        out.push(Param {
            name: string(name),
            value: value.map(|v| string(&unfold(v))),
        });
    }
    Some(out)
}

/// True exactly when [`parse_params`] would accept these segments: the reference for
/// [`params_list_ok`].
#[cfg(test)]
pub(crate) fn params_ok<'a>(segments: impl IntoIterator<Item = &'a [u8]>) -> bool {
    segments.into_iter().all(|seg| {
        let (name, value) = match memchr::memchr(b'=', seg) {
            Some(eq) => (trim(&seg[..eq]), Some(trim(&seg[eq + 1..]))),
            None => (trim(seg), None),
        };
        !name.is_empty() && all_in(name, class::TOKEN) && value.is_none_or(param_value_ok)
    })
}

/// `params_ok(TopSplit::new(s, b';'))` in one left-to-right pass, for the text after a first `;`:
/// `LWS* token LWS* [= LWS* (value | quoted-string) LWS*]` separated by `;`. Splitting first
/// is not needed: a `"` or `<` that would make the splitter swallow a `;` is invalid anywhere
/// but inside a quoted value, which is skipped with the same [`quoted_end`].
pub(crate) fn params_list_ok(s: &[u8]) -> bool {
    let skip_lws = |mut i: usize| {
        while i < s.len() && is_lws(s[i]) {
            i += 1;
        }
        i
    };
    let skip_class = |mut i: usize, c: u8| {
        while i < s.len() && CLASS[usize::from(s[i])] & c != 0 {
            i += 1;
        }
        i
    };
    let mut i = 0;
    loop {
        let name = skip_lws(i);
        i = skip_class(name, class::TOKEN);
        if i == name {
            return false;
        }
        i = skip_lws(i);
        if s.get(i) == Some(&b'=') {
            i = skip_lws(i + 1);
            let value = i;
            if s.get(i) == Some(&b'"') {
                match quoted_end(&s[i..]) {
                    Some(len) => i += len,
                    None => return false,
                }
            } else {
                i = skip_class(i, class::PARAM_VALUE);
                if i == value {
                    return false;
                }
            }
            i = skip_lws(i);
        }
        match s.get(i) {
            None => return true,
            Some(b';') => i += 1,
            Some(_) => return false,
        }
    }
}

/// A parameter value as [`parse_params`] accepts it (already trimmed).
fn param_value_ok(v: &[u8]) -> bool {
    if v.first() == Some(&b'"') {
        quoted_end(v) == Some(v.len())
    } else {
        !v.is_empty() && all_in(v, class::PARAM_VALUE)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The byte-at-a-time splitter [`TopSplit`] replaced; kept as the reference.
    fn split_top_reference(s: &[u8], sep: u8) -> Vec<&[u8]> {
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

    #[test]
    fn top_split_examples() {
        let v = br#""a;b" <sip:x;y>;tag=1;q="\";",z"#;
        assert_eq!(
            split_top(v, b';'),
            vec![&br#""a;b" <sip:x;y>"#[..], b"tag=1", br#"q="\";",z"#]
        );
        assert_eq!(split_top(b"", b','), vec![&b""[..]]);
        assert_eq!(
            split_top(b"a,<b,\"c>,\">,d", b','),
            vec![&b"a"[..], b"<b,\"c>,\">", b"d"]
        );
    }

    #[test]
    fn byte_classes_match_their_predicates() {
        for b in 0..=255u8 {
            let one = |s: &[u8], c| all_in(s, c);
            assert_eq!(one(&[b], class::TOKEN), is_token(b));
            assert_eq!(
                one(&[b], class::PARAM_VALUE),
                is_token(b) || b"[]:/@?&=$+".contains(&b)
            );
            assert_eq!(
                one(&[b], class::HOST),
                b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
            );
            assert_eq!(
                one(&[b], class::URI),
                !(b <= b' ' || b == 0x7f || b == b'<' || b == b'>')
            );
            assert_eq!(
                one(&[b], class::SCHEME),
                b.is_ascii_alphanumeric() || b"+-.".contains(&b)
            );
            assert_eq!(one(&[b], class::TOKEN_LWS), is_token(b) || is_lws(b));
            assert!(one(&[b'a', b, b'a'], class::TOKEN) == is_token(b));
        }
        assert!(all_in(b"", class::TOKEN));
    }

    proptest! {
        #[test]
        fn params_list_ok_matches_split_then_check(s in proptest::collection::vec(
            prop::sample::select(b"ab;=\"<>\\ \r\n,:".to_vec()), 0..24)) {
            prop_assert_eq!(params_list_ok(&s), params_ok(TopSplit::new(&s, b';')));
        }

        #[test]
        fn top_split_matches_reference(s in proptest::collection::vec(
            prop::sample::select(b"ab;,\"<>\\ ".to_vec()), 0..40)) {
            for sep in [b';', b','] {
                prop_assert_eq!(split_top(&s, sep), split_top_reference(&s, sep));
            }
        }
    }
}
