//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), with IPv6 references and escapes.

use std::fmt;

use super::text::{Param, all_in, class, find_param, string};

/// A parsed URI; fields keep their escapes as sent (use [`unescape`] to decode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// Scheme, lower-cased (`sip`, `sips`, `tel`, or another scheme kept opaque).
    pub scheme: String,
    /// User part (for `tel:` the telephone-subscriber number).
    pub user: Option<String>,
    /// Password after `user:`.
    pub password: Option<String>,
    /// Host as sent; IPv6 references keep their brackets. Empty for `tel:` and opaque URIs.
    pub host_raw: String,
    /// Port, if present.
    pub port: Option<u16>,
    /// URI parameters (`;lr`, `;transport=tls`, tel `;phone-context=`).
    pub params: Vec<Param>,
    /// Header part after `?`, as sent.
    pub headers: Option<String>,
    raw: String,
}

/// The outcome of [`Uri::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UriShape {
    /// `sip`, `sips` or `tel` (any case).
    pub known_scheme: bool,
    /// A `?headers` part is present (sip/sips only, like [`Uri::headers`]).
    pub headers: bool,
}

impl Uri {
    /// Parses a URI; `None` if it does not follow the grammar.
    pub fn parse(s: &[u8]) -> Option<Uri> {
        if s.is_empty()
            || s.iter()
                .any(|&b| b <= b' ' || b == 0x7f || b == b'<' || b == b'>')
        {
            return None;
        }
        let colon = s.iter().position(|&b| b == b':')?;
        let scheme = &s[..colon];
        if scheme.is_empty()
            || !scheme[0].is_ascii_alphabetic()
            || !scheme
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return None;
        }
        let scheme_l = string(scheme).to_ascii_lowercase();
        let rest = &s[colon + 1..];
        let mut uri = Uri {
            scheme: scheme_l,
            user: None,
            password: None,
            host_raw: String::new(),
            port: None,
            params: Vec::new(),
            headers: None,
            raw: string(s),
        };
        match uri.scheme.as_str() {
            "sip" | "sips" => uri.parse_sip(rest)?,
            "tel" => {
                let (num, params) = split_params(rest)?;
                if num.is_empty() {
                    return None;
                }
                uri.user = Some(string(num));
                uri.params = params;
            }
            _ => {
                if rest.is_empty() {
                    return None;
                }
            }
        }
        Some(uri)
    }

    /// What [`Uri::parse`] would conclude, without building the URI: `None` exactly when
    /// `parse` returns `None`, otherwise the scheme class and whether a `?headers` part is present.
    pub(crate) fn check(s: &[u8]) -> Option<UriShape> {
        if s.is_empty() || !all_in(s, class::URI) {
            return None;
        }
        let colon = memchr::memchr(b':', s)?;
        let scheme = &s[..colon];
        if scheme.is_empty() || !scheme[0].is_ascii_alphabetic() || !all_in(scheme, class::SCHEME) {
            return None;
        }
        let rest = &s[colon + 1..];
        if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
            let hostpart = match memchr::memchr(b'@', rest) {
                Some(at) => {
                    let ui = &rest[..at];
                    let user = memchr::memchr(b':', ui).map_or(ui, |c| &ui[..c]);
                    if user.is_empty() {
                        return None;
                    }
                    &rest[at + 1..]
                }
                None => rest,
            };
            let (hostpart, headers) = match memchr::memchr(b'?', hostpart) {
                Some(q) => (&hostpart[..q], true),
                None => (hostpart, false),
            };
            split_hostport(check_params(hostpart)?)?;
            Some(UriShape {
                known_scheme: true,
                headers,
            })
        } else if scheme.eq_ignore_ascii_case(b"tel") {
            if check_params(rest)?.is_empty() {
                return None;
            }
            Some(UriShape {
                known_scheme: true,
                headers: false,
            })
        } else if rest.is_empty() {
            None
        } else {
            Some(UriShape {
                known_scheme: false,
                headers: false,
            })
        }
    }

    fn parse_sip(&mut self, rest: &[u8]) -> Option<()> {
        let (userinfo, hostpart) = match rest.iter().position(|&b| b == b'@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        if let Some(ui) = userinfo {
            let (user, pass) = match ui.iter().position(|&b| b == b':') {
                Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                None => (ui, None),
            };
            if user.is_empty() {
                return None;
            }
            self.user = Some(string(user));
            self.password = pass.map(string);
        }
        let (hostpart, headers) = match hostpart.iter().position(|&b| b == b'?') {
            Some(q) => (&hostpart[..q], Some(&hostpart[q + 1..])),
            None => (hostpart, None),
        };
        self.headers = headers.map(string);
        let (hostport, params) = split_params(hostpart)?;
        let (host, port) = split_hostport(hostport)?;
        self.host_raw = string(host);
        self.port = port;
        self.params = params;
        Some(())
    }

    /// Host lower-cased without IPv6 brackets, for domain comparisons.
    pub fn host(&self) -> String {
        self.host_raw
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase()
    }

    /// The value of a URI parameter (`Some(None)` if valueless).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name).map(|p| p.value.as_deref())
    }

    /// The URI as sent.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Splits `host[:port]` (host may be a bracketed IPv6 reference).
pub(crate) fn split_hostport(s: &[u8]) -> Option<(&[u8], Option<u16>)> {
    let (host, port) = if s.first() == Some(&b'[') {
        let close = s.iter().position(|&b| b == b']')?;
        let inner = &s[1..close];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        match &s[close + 1..] {
            [] => (&s[..=close], None),
            [b':', p @ ..] => (&s[..=close], Some(p)),
            _ => return None,
        }
    } else {
        match s.iter().position(|&b| b == b':') {
            Some(c) => (&s[..c], Some(&s[c + 1..])),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    if host[0] != b'[' && !all_in(host, class::HOST) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => Some(parse_u16(p)?),
    };
    Some((host, port))
}

fn parse_u16(p: &[u8]) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(p).ok()?.parse().ok()
}

/// [`split_params`] without the vector: the part before the first `;`, if every parameter
/// name is non-empty.
fn check_params(s: &[u8]) -> Option<&[u8]> {
    let mut parts = s.split(|&b| b == b';');
    let first = parts.next().unwrap_or_default();
    for p in parts {
        if p.is_empty() || p[0] == b'=' {
            return None;
        }
    }
    Some(first)
}

fn split_params(s: &[u8]) -> Option<(&[u8], Vec<Param>)> {
    let mut parts = s.split(|&b| b == b';');
    let first = parts.next().unwrap_or_default();
    let mut params = Vec::new();
    for p in parts {
        let (name, value) = match p.iter().position(|&b| b == b'=') {
            Some(eq) => (&p[..eq], Some(&p[eq + 1..])),
            None => (p, None),
        };
        if name.is_empty() {
            return None;
        }
        params.push(Param {
            name: string(name),
            value: value.map(string),
        });
    }
    Some((first, params))
}

/// Decodes `%xx` escapes; invalid escapes are kept as sent.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_host_and_port() {
        let u = Uri::parse(b"sip:alice@[2001:DB8::1]:5061;transport=tls").unwrap();
        assert_eq!(u.host_raw, "[2001:DB8::1]");
        assert_eq!(u.host(), "2001:db8::1");
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.param("transport"), Some(Some("tls")));
    }

    #[test]
    fn user_password_params_headers() {
        let u = Uri::parse(b"sips:bob:secret@Example.COM;lr?subject=hi&x=%20").unwrap();
        assert_eq!(u.scheme, "sips");
        assert_eq!(u.user.as_deref(), Some("bob"));
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert_eq!(u.host(), "example.com");
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.headers.as_deref(), Some("subject=hi&x=%20"));
    }

    #[test]
    fn tel_uri() {
        let u = Uri::parse(b"tel:+15551234;phone-context=example.com").unwrap();
        assert_eq!(u.scheme, "tel");
        assert_eq!(u.user.as_deref(), Some("+15551234"));
        assert_eq!(u.host(), "");
        assert_eq!(u.param("phone-context"), Some(Some("example.com")));
    }

    #[test]
    fn escapes_decode() {
        assert_eq!(
            unescape("sips%3Auser%40example.com"),
            b"sips:user@example.com"
        );
        assert_eq!(unescape("null-%00-null"), b"null-\0-null");
        assert_eq!(unescape("bad%Zz%4"), b"bad%Zz%4");
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in [
            &b"sip:"[..],
            b"<sip:a@b>",
            b"sip:a@b c",
            b"sip:a@[::1",
            b"sip:a@b:99999",
            b"1sip:x",
            b"sip:@host",
        ] {
            assert!(
                Uri::parse(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
