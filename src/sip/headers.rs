//! Typed views of the headers the Edge needs: Via, name-addr (From/To/PAI/Contact/Record-Route), CSeq.

use super::text::{
    Param, TopSplit, all_in, class, find_param, is_lws, is_token, is_ws, params_list_ok,
    parse_params, quoted_end, split_top, string, trim,
};
use super::uri::{Uri, split_hostport};

/// One Via hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Protocol name, e.g. `SIP`.
    pub protocol: String,
    /// Protocol version, e.g. `2.0`.
    pub version: String,
    /// Transport, upper-cased, e.g. `TLS`.
    pub transport: String,
    /// Sent-by host as sent (IPv6 keeps brackets).
    pub host_raw: String,
    /// Sent-by port.
    pub port: Option<u16>,
    /// All parameters in order (branch, received, rport, egress-zone, ...).
    pub params: Vec<Param>,
}

impl Via {
    /// Parses one via-parm (`SIP/2.0/TLS host:port;params`), LWS tolerated around `/`.
    pub fn parse(s: &[u8]) -> Option<Via> {
        let segs = split_top(s, b';');
        let first = segs.first()?;
        let mut fields = first.splitn(3, |&b| b == b'/');
        let protocol = trim(fields.next()?);
        let version = trim(fields.next()?);
        let rest = trim(fields.next()?);
        let split = rest.iter().position(|&b| is_lws(b))?;
        let transport = &rest[..split];
        let sent_by = trim(&rest[split..]);
        for t in [protocol, version, transport] {
            if t.is_empty() || !t.iter().all(|&b| is_token(b)) {
                return None;
            }
        }
        let (host, port) = split_hostport(sent_by)?;
        Some(Via {
            protocol: string(protocol),
            version: string(version),
            transport: string(transport).to_ascii_uppercase(),
            host_raw: string(host),
            port,
            params: parse_params(&segs[1..])?,
        })
    }

    /// True exactly when [`Via::parse`] would return `Some`, without building the hop (no
    /// allocation): what `Message::validate` runs on every Via of every request.
    pub(crate) fn check(s: &[u8]) -> bool {
        let Some(first) = TopSplit::new(s, b';').next() else {
            return false;
        };
        let mut fields = first.splitn(3, |&b| b == b'/');
        let (Some(protocol), Some(version), Some(rest)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return false;
        };
        let rest = trim(rest);
        let Some(split) = rest.iter().position(|&b| is_lws(b)) else {
            return false;
        };
        let transport = &rest[..split];
        let sent_by = trim(&rest[split..]);
        [trim(protocol), trim(version), transport]
            .iter()
            .all(|t| !t.is_empty() && all_in(t, class::TOKEN))
            && split_hostport(sent_by).is_some()
            && params_after(s, first)
    }

    /// Sent-by host lower-cased without brackets.
    pub fn host(&self) -> String {
        self.host_raw
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase()
    }

    /// A parameter value (`Some(None)` when present without value).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name).map(|p| p.value.as_deref())
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.param("received").flatten()
    }

    /// `rport`: `None` absent, `Some(None)` valueless, `Some(Some(p))` filled.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport").map(|v| v.and_then(|p| p.parse().ok()))
    }
}

/// A name-addr or addr-spec with header parameters (From, To, Contact, PAI, Route, Record-Route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name: quoted strings without quotes (escapes kept), tokens as sent.
    pub display_name: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters after the URI (tag, expires, q, ...).
    pub params: Vec<Param>,
}

impl NameAddr {
    /// Parses `"Name" <uri>;params`, `Name <uri>;params` or `uri;params`.
    pub fn parse(s: &[u8]) -> Option<NameAddr> {
        let s = trim(s);
        let (display_name, after_display) = if s.first() == Some(&b'"') {
            let end = quoted_end(s)?;
            let rest = trim(&s[end..]);
            if rest.first() != Some(&b'<') {
                return None;
            }
            (Some(string(&s[1..end - 1])), rest)
        } else if let Some(lt) = s.iter().position(|&b| b == b'<') {
            let dn = trim(&s[..lt]);
            if !dn.iter().all(|&b| is_token(b) || is_lws(b)) {
                return None;
            }
            ((!dn.is_empty()).then(|| string(dn)), &s[lt..])
        } else {
            // addr-spec: parameters after the first `;` belong to the header, and the URI may not
            // carry `?headers` or commas (RFC 3261 §20.10).
            let segs = split_top(s, b';');
            let uri_text = trim(segs.first()?);
            if uri_text.iter().any(|&b| b == b'?' || b == b',') {
                return None;
            }
            let uri = Uri::parse(uri_text)?;
            return Some(NameAddr {
                display_name: None,
                uri,
                params: parse_params(&segs[1..])?,
            });
        };
        // after_display starts with '<'
        let close = after_display.iter().position(|&b| b == b'>')?;
        let uri = Uri::parse(&after_display[1..close])?;
        let rest = trim(&after_display[close + 1..]);
        let params = if rest.is_empty() {
            Vec::new()
        } else {
            if rest[0] != b';' {
                return None;
            }
            parse_params(&split_top(&rest[1..], b';'))?
        };
        Some(NameAddr {
            display_name,
            uri,
            params,
        })
    }

    /// True exactly when [`NameAddr::parse`] would return `Some`, without building it (no
    /// allocation): what `Message::validate` runs on From, To and every Contact.
    pub(crate) fn check(s: &[u8]) -> bool {
        let s = trim(s);
        let after_display = if s.first() == Some(&b'"') {
            let Some(end) = quoted_end(s) else {
                return false;
            };
            let rest = trim(&s[end..]);
            if rest.first() != Some(&b'<') {
                return false;
            }
            rest
        } else if let Some(lt) = memchr::memchr(b'<', s) {
            if !all_in(trim(&s[..lt]), class::TOKEN_LWS) {
                return false;
            }
            &s[lt..]
        } else {
            let Some(first) = TopSplit::new(s, b';').next() else {
                return false;
            };
            let uri_text = trim(first);
            return memchr::memchr2(b'?', b',', uri_text).is_none()
                && Uri::check(uri_text).is_some()
                && params_after(s, first);
        };
        let Some(close) = memchr::memchr(b'>', after_display) else {
            return false;
        };
        if Uri::check(&after_display[1..close]).is_none() {
            return false;
        }
        match trim(&after_display[close + 1..]) {
            [] => true,
            [b';', params @ ..] => params_list_ok(params),
            _ => false,
        }
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        find_param(&self.params, "tag").and_then(|p| p.value.as_deref())
    }

    /// A header parameter (`Some(None)` when valueless).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name).map(|p| p.value.as_deref())
    }
}

/// CSeq: sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (< 2^31).
    pub seq: u32,
    /// Method token.
    pub method: String,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`; the number must be below 2^31 (RFC 3261 §8.1.1.5).
    pub fn parse(s: &[u8]) -> Option<CSeq> {
        let s = trim(s);
        let split = s.iter().position(|&b| is_lws(b))?;
        let seq = parse_u32_below(&s[..split], 1 << 31)?;
        let method = trim(&s[split..]);
        if method.is_empty() || !method.iter().all(|&b| is_token(b)) {
            return None;
        }
        Some(CSeq {
            seq,
            method: string(method),
        })
    }
}

/// The parameters after `first`, the first `;`-segment of `s` (a prefix of it), are valid:
/// none, or a `;` and a valid list.
fn params_after(s: &[u8], first: &[u8]) -> bool {
    s.len() == first.len() || params_list_ok(&s[first.len() + 1..])
}

/// The method of a CSeq value if [`CSeq::parse`] would accept it (no allocation).
pub(crate) fn cseq_method(s: &[u8]) -> Option<&[u8]> {
    let s = trim(s);
    let split = s.iter().position(|&b| is_lws(b))?;
    parse_u32_below(&s[..split], 1 << 31)?;
    let method = trim(&s[split..]);
    (!method.is_empty() && all_in(method, class::TOKEN)).then_some(method)
}

/// A decimal number strictly below `limit`.
pub(crate) fn parse_u32_below(s: &[u8], limit: u64) -> Option<u32> {
    if s.is_empty() || s.len() > 12 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = s
        .iter()
        .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
    (v < limit).then_some(v as u32)
}

/// One Contact value: `*` or a name-addr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    /// `Contact: *` (REGISTER removal).
    Star,
    /// A contact address.
    Addr(Box<NameAddr>),
}

/// True if `s` holds only whitespace (used to tolerate `Header:` with no value).
pub(crate) fn blank(s: &[u8]) -> bool {
    s.iter().all(|&b| is_ws(b) || b == b'\r' || b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws_and_ipv6() {
        let v = Via::parse(b"SIP  /   2.0\r\n /UDP\r\n    [2001:db8::1]:5061 ; branch = z9hG4bK1;rport;received=1.2.3.4").unwrap();
        assert_eq!(
            (
                v.protocol.as_str(),
                v.version.as_str(),
                v.transport.as_str()
            ),
            ("SIP", "2.0", "UDP")
        );
        assert_eq!(v.host(), "2001:db8::1");
        assert_eq!(v.port, Some(5061));
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("1.2.3.4"));
    }

    #[test]
    fn via_rejects_empty_params() {
        assert!(Via::parse(b"SIP/2.0/UDP 192.0.2.15;;").is_none());
        assert!(Via::parse(b"SIP/2.0/UDP").is_none());
    }

    #[test]
    fn name_addr_forms() {
        let n =
            NameAddr::parse(br#""J Rosenberg \\\""   <sip:jdrosen@example.com> ; tag = 98asjd8"#)
                .unwrap();
        assert_eq!(n.display_name.as_deref(), Some(r#"J Rosenberg \\\""#));
        assert_eq!(n.tag(), Some("98asjd8"));
        let a = NameAddr::parse(b"sip:user@example.com;tag=1;x").unwrap();
        assert_eq!(a.uri.as_str(), "sip:user@example.com");
        assert_eq!(a.tag(), Some("1"));
        assert_eq!(a.param("x"), Some(None));
        let t = NameAddr::parse(b"caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(t.display_name.as_deref(), Some("caller"));
        assert!(NameAddr::parse(b"\"unbalanced <sip:a@b>").is_none());
        assert!(NameAddr::parse(b"Bell, Alexander <sip:a@b>").is_none());
        assert!(NameAddr::parse(b"< sip:a@b >").is_none());
        assert!(NameAddr::parse(b"sip:user@example.com?Route=%3Csip:x%3E").is_none());
    }

    #[test]
    fn cseq_limits() {
        assert_eq!(
            CSeq::parse(b"0009\r\n  INVITE"),
            Some(CSeq {
                seq: 9,
                method: "INVITE".into()
            })
        );
        assert_eq!(
            CSeq::parse(b"2147483647 ACK").map(|c| c.seq),
            Some(2147483647)
        );
        assert!(CSeq::parse(b"2147483648 ACK").is_none());
        assert!(CSeq::parse(b"36893488147419103232 REGISTER").is_none());
        assert!(CSeq::parse(b"INVITE").is_none());
    }
}
