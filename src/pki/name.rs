//! Which names may go into a certificate: the Edge reads SAN dNSNames (and the CN without SAN) as host names,
//! so a name with a space, an empty label or a stray `*` can never match and is refused when issuing.

use std::net::IpAddr;

/// Why a name is not a DNS name (RFC 1035 §2.3.1 host names, as RFC 5280 §4.2.1.6 requires of dNSName).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("it is empty")]
    Empty,
    #[error("it starts or ends with a space (several names are comma separated: a.lab,b.lab)")]
    OuterSpace,
    #[error("it contains a space (several names are comma separated: a.lab,b.lab)")]
    Space,
    #[error(
        "it contains '{}': a DNS name has only letters, digits, '-' and '.' (internationalised names in their xn-- form)",
        .0.escape_default()
    )]
    BadChar(char),
    #[error("it ends with a dot: write it without the trailing dot")]
    TrailingDot,
    #[error("it has an empty label (a leading dot, or two dots in a row)")]
    EmptyLabel,
    #[error("its label \"{0}\" is longer than 63 characters")]
    LabelTooLong(String),
    #[error("its label \"{0}\" starts or ends with '-'")]
    HyphenAtEdge(String),
    #[error("it is longer than 253 characters")]
    TooLong,
    #[error("'*' may only be the whole leftmost label, as in *.steven.lab")]
    BadWildcard,
}

/// Checks a name for a certificate's SAN or CN: a DNS name (a leftmost `*` label allowed), or an IP literal.
pub fn check_cert_name(name: &str) -> Result<(), NameError> {
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    check_dns_name(name)
}

/// Checks a DNS host name; a leftmost `*` label (a wildcard) is allowed, as certificates may carry one.
pub fn check_dns_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.trim() != name {
        return Err(NameError::OuterSpace);
    }
    if name.ends_with('.') {
        return Err(NameError::TrailingDot);
    }
    if name.len() > 253 {
        return Err(NameError::TooLong);
    }
    for (i, label) in name.split('.').enumerate() {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label == "*" && i == 0 {
            continue;
        }
        if label.contains('*') {
            return Err(NameError::BadWildcard);
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(if c.is_whitespace() {
                NameError::Space
            } else {
                NameError::BadChar(c)
            });
        }
        if label.len() > 63 {
            return Err(NameError::LabelTooLong(label.to_string()));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NameError::HyphenAtEdge(label.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_names_wildcards_and_ip_literals() {
        for ok in [
            "vcse.steven.lab",
            "VCSE.Acano.Steven.Lab",
            "localhost",
            "a-b.c1.lab",
            "*.steven.lab",
            "192.0.2.1",
            "2001:db8::1",
        ] {
            assert_eq!(check_cert_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_with_the_reason() {
        let cases = [
            ("", "it is empty"),
            (
                " b.lab",
                "it starts or ends with a space (several names are comma separated: a.lab,b.lab)",
            ),
            (
                "bad name",
                "it contains a space (several names are comma separated: a.lab,b.lab)",
            ),
            (
                "sip_tls.lab",
                "it contains '_': a DNS name has only letters, digits, '-' and '.' (internationalised names in their xn-- form)",
            ),
            (
                "tab\tname",
                "it contains a space (several names are comma separated: a.lab,b.lab)",
            ),
            (
                "bell\u{7}.lab",
                "it contains '\\u{7}': a DNS name has only letters, digits, '-' and '.' (internationalised names in their xn-- form)",
            ),
            (
                "vcse.steven.lab.",
                "it ends with a dot: write it without the trailing dot",
            ),
            (
                "a..lab",
                "it has an empty label (a leading dot, or two dots in a row)",
            ),
            (
                ".lab",
                "it has an empty label (a leading dot, or two dots in a row)",
            ),
            ("-a.lab", "its label \"-a\" starts or ends with '-'"),
            (
                "vcse.*.lab",
                "'*' may only be the whole leftmost label, as in *.steven.lab",
            ),
            (
                "f*.lab",
                "'*' may only be the whole leftmost label, as in *.steven.lab",
            ),
        ];
        for (name, reason) in cases {
            assert_eq!(
                check_cert_name(name).map_err(|e| e.to_string()),
                Err(reason.to_string()),
                "{name:?}"
            );
        }
        let long_label = "a".repeat(64);
        assert_eq!(
            check_dns_name(&format!("{long_label}.lab")),
            Err(NameError::LabelTooLong(long_label))
        );
        let long = vec!["abcdefghi"; 26].join(".");
        assert_eq!(long.len(), 259);
        assert_eq!(check_dns_name(&long), Err(NameError::TooLong));
    }
}
