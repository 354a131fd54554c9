//! Domain names as the rules compare them: lower-case, without the trailing root dot, built once.

use std::fmt;

/// A DNS domain or host name, normalised once: trailing dots dropped, lower-case. Every
/// comparison the rules make between names (Rule 1, Rule 2, the domain lists, the destination) is between
/// `DomainName`s, so no rule normalises a name of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct DomainName(String);

impl DomainName {
    /// Normalises `name`: `Acano.Steven.Lab.` → `acano.steven.lab`; `.` (RFC 2782's "no service") → empty.
    pub fn new(name: &str) -> Self {
        DomainName(bare(name).to_ascii_lowercase())
    }

    /// Whether `name`, normalised, is this name: the comparison without building a second `DomainName` (it runs
    /// per certificate name and SRV record).
    pub fn is(&self, name: &str) -> bool {
        bare(name).eq_ignore_ascii_case(&self.0)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the empty name (no host, or an SRV target of `.`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first label: `vcse` of `vcse.acano.steven.lab`; `None` for the empty name.
    pub fn first_label(&self) -> Option<&str> {
        self.0.split('.').next().filter(|l| !l.is_empty())
    }

    /// The name without its first label: `acano.steven.lab` of `vcse.acano.steven.lab`.
    pub fn parent(&self) -> Option<&str> {
        self.0
            .split_once('.')
            .and_then(|(first, rest)| (!first.is_empty()).then_some(rest))
    }

    /// Whether this host sits directly in `domain` (exactly one label in front of it): Rule 1's test.
    pub fn is_host_in(&self, domain: &DomainName) -> bool {
        !domain.is_empty() && self.parent() == Some(domain.as_str())
    }

    /// The federation SRV name of this domain: `_sipfederationtls._tcp.<domain>`.
    pub fn srv_name(&self) -> String {
        crate::dns::federation_srv_name(&self.0)
    }
}

/// `name` without its trailing dots, case kept: what [`DomainName::new`] lower-cases.
pub(crate) fn bare(name: &str) -> &str {
    name.trim_end_matches('.')
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DomainName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for DomainName {
    fn from(name: &str) -> Self {
        DomainName::new(name)
    }
}

impl From<String> for DomainName {
    fn from(name: String) -> Self {
        DomainName::new(&name)
    }
}

impl From<&String> for DomainName {
    fn from(name: &String) -> Self {
        DomainName::new(name)
    }
}

impl PartialEq<str> for DomainName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for DomainName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for DomainName {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_once() {
        let d = DomainName::new("Acano.Steven.Lab.");
        assert_eq!(d, "acano.steven.lab");
        assert_eq!(d.to_string(), "acano.steven.lab");
        assert!(DomainName::new(".").is_empty());
        assert_eq!(d.srv_name(), "_sipfederationtls._tcp.acano.steven.lab");
        assert!(d.is("ACANO.steven.lab.."));
        assert!(!d.is("steven.lab"));
    }

    #[test]
    fn labels_and_the_host_in_domain_test() {
        let host = DomainName::new("vcse.acano.steven.lab");
        assert_eq!(host.first_label(), Some("vcse"));
        assert_eq!(host.parent(), Some("acano.steven.lab"));
        assert!(host.is_host_in(&"ACANO.steven.lab.".into()));
        assert!(!host.is_host_in(&"steven.lab".into()));
        assert!(!DomainName::new("steven.lab").is_host_in(&"steven.lab".into()));
        assert!(!DomainName::new(".steven.lab").is_host_in(&"steven.lab".into()));
        assert!(!host.is_host_in(&DomainName::default()));
        assert_eq!(DomainName::default().first_label(), None);
    }
}
