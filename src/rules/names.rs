//! Rule 2's name check: the only copy of it (the Edge, `check` and `certs inspect` all call [`names_match`]).
//!
//! Exact, case-insensitive match of the FQDN among the SAN dNSNames; the subject CN counts only when the
//! certificate has no SAN extension at all, and then only the most specific (last) CN (RFC 2818 §3.1);
//! wildcards are refused unless `allow_wildcard`.

use super::DomainName;
use super::domain::bare;
use crate::pki::{CertFacts, is_wildcard_name};

/// How a certificate relates to the FQDN the Edge expects.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum NameMatch {
    /// The FQDN is one of the SAN dNSNames.
    San,
    /// No SAN extension, and the (most specific) subject CN is the FQDN.
    CommonName,
    /// Matched only through this wildcard name, and wildcards are allowed.
    Wildcard(String),
    /// Would match only through this wildcard name, which the Edge refuses.
    WildcardRefused(String),
    /// The CN is the FQDN but the certificate has a SAN extension, so the CN is not looked at.
    CommonNameIgnored,
    /// The FQDN is not named by the certificate.
    Absent,
}

impl NameMatch {
    /// True when the Edge would accept the certificate for the FQDN.
    pub fn passes(&self) -> bool {
        matches!(
            self,
            NameMatch::San | NameMatch::CommonName | NameMatch::Wildcard(_)
        )
    }
}

/// `*.d` covers exactly one label in front of `d` (case and trailing dot ignored).
fn wildcard_covers(pattern: &str, fqdn: &DomainName) -> bool {
    let Some(suffix) = bare(pattern).strip_prefix("*.") else {
        return false;
    };
    match fqdn.as_str().split_once('.') {
        Some((label, rest)) => {
            !label.is_empty() && !suffix.contains('*') && rest.eq_ignore_ascii_case(suffix)
        }
        None => false,
    }
}

/// Applies the Edge name rule to `facts` for `fqdn` (trailing dot and case ignored).
pub fn names_match(facts: &CertFacts, fqdn: &str, allow_wildcard: bool) -> NameMatch {
    let want = DomainName::new(fqdn);
    let judge = |names: &[String], exact: NameMatch| -> Option<NameMatch> {
        if names.iter().any(|n| !is_wildcard_name(n) && want.is(n)) {
            return Some(exact);
        }
        let w = DomainName::new(names.iter().find(|n| wildcard_covers(n, &want))?).to_string();
        Some(if allow_wildcard {
            NameMatch::Wildcard(w)
        } else {
            NameMatch::WildcardRefused(w)
        })
    };
    match &facts.san_dns {
        Some(san) => judge(san, NameMatch::San).unwrap_or_else(|| {
            if facts.common_names.iter().any(|cn| want.is(cn)) {
                NameMatch::CommonNameIgnored
            } else {
                NameMatch::Absent
            }
        }),
        // Only the most specific (last) CN counts (RFC 2818 §3.1), as in `CertFacts::common_name`.
        None => judge(
            facts
                .common_names
                .split_last()
                .map_or(&[], |(last, _)| std::slice::from_ref(last)),
            NameMatch::CommonName,
        )
        .unwrap_or(NameMatch::Absent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::finding::name_match_text;

    fn facts(cn: &[&str], san: Option<&[&str]>) -> CertFacts {
        CertFacts {
            common_names: cn.iter().map(|s| s.to_string()).collect(),
            san_dns: san.map(|s| s.iter().map(|s| s.to_string()).collect()),
            ..CertFacts::default()
        }
    }

    #[test]
    fn san_exact_match_case_insensitive_and_trailing_dot() {
        let f = facts(
            &["vcse.steven.lab"],
            Some(&["vcse.steven.lab", "VCSE.Acano.Steven.Lab"]),
        );
        assert_eq!(
            names_match(&f, "vcse.acano.steven.lab", false),
            NameMatch::San
        );
        assert_eq!(
            names_match(&f, "vcse.acano.steven.lab.", false),
            NameMatch::San
        );
        assert_eq!(names_match(&f, "VCSE.STEVEN.LAB", false), NameMatch::San);
    }

    #[test]
    fn seed_certificate_lacks_the_acano_target() {
        let f = facts(&["vcse.steven.lab"], Some(&["vcse.steven.lab"]));
        let m = names_match(&f, "vcse.acano.steven.lab", false);
        assert_eq!(m, NameMatch::Absent);
        assert!(!m.passes());
        assert_eq!(
            name_match_text(&m, &"vcse.acano.steven.lab".into()),
            "add vcse.acano.steven.lab to the certificate's SAN"
        );
    }

    #[test]
    fn domain_alone_does_not_match_host() {
        let f = facts(&[], Some(&["acano.steven.lab"]));
        assert_eq!(
            names_match(&f, "vcse.acano.steven.lab", false),
            NameMatch::Absent
        );
    }

    #[test]
    fn cn_used_only_without_san_extension() {
        let no_san = facts(&["sip.skype.lab"], None);
        assert_eq!(
            names_match(&no_san, "sip.skype.lab", false),
            NameMatch::CommonName
        );
        let with_san = facts(&["sip.skype.lab"], Some(&["other.skype.lab"]));
        let m = names_match(&with_san, "sip.skype.lab", false);
        assert_eq!(m, NameMatch::CommonNameIgnored);
        assert_eq!(
            name_match_text(&m, &"sip.skype.lab".into()),
            "sip.skype.lab is only the subject CN, which is ignored because the certificate has a SAN extension — add sip.skype.lab to the certificate's SAN"
        );
        // A SAN extension with no dNSName at all still hides the CN.
        let empty_san = facts(&["sip.skype.lab"], Some(&[]));
        assert_eq!(
            names_match(&empty_san, "sip.skype.lab", false),
            NameMatch::CommonNameIgnored
        );
    }

    #[test]
    fn wildcard_refused_by_default_allowed_by_switch() {
        let f = facts(&["*.steven.lab"], Some(&["*.steven.lab"]));
        let m = names_match(&f, "vcse.steven.lab", false);
        assert_eq!(m, NameMatch::WildcardRefused("*.steven.lab".to_string()));
        assert_eq!(
            name_match_text(&m, &"vcse.steven.lab".into()),
            "vcse.steven.lab matches only the wildcard *.steven.lab, and the Edge does not accept wildcards — add vcse.steven.lab to the certificate's SAN"
        );
        assert_eq!(
            names_match(&f, "vcse.steven.lab", true),
            NameMatch::Wildcard("*.steven.lab".to_string())
        );
        // One label only: *.steven.lab does not cover a deeper name nor the apex.
        assert_eq!(
            names_match(&f, "vcse.acano.steven.lab", true),
            NameMatch::Absent
        );
        assert_eq!(names_match(&f, "steven.lab", true), NameMatch::Absent);
    }

    #[test]
    fn exact_wins_over_wildcard() {
        let f = facts(&[], Some(&["*.steven.lab", "vcse.steven.lab"]));
        assert_eq!(names_match(&f, "vcse.steven.lab", false), NameMatch::San);
    }

    #[test]
    fn without_san_only_the_last_cn_counts() {
        let f = facts(&["vcse.acano.steven.lab", "vcse.steven.lab"], None);
        assert_eq!(
            names_match(&f, "vcse.steven.lab", false),
            NameMatch::CommonName
        );
        assert_eq!(
            names_match(&f, "vcse.acano.steven.lab", false),
            NameMatch::Absent
        );
        assert_eq!(
            names_match(&facts(&[], None), "a.lab", false),
            NameMatch::Absent
        );
    }

    #[test]
    fn wildcard_cn_without_san_is_refused() {
        let f = facts(&["*.skype.lab"], None);
        assert_eq!(
            names_match(&f, "sip.skype.lab", false),
            NameMatch::WildcardRefused("*.skype.lab".to_string())
        );
    }
}
