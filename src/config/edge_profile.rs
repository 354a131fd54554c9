//! What a real Edge of each Skype for Business / Lync version puts on the wire (`[edge] version`: its `Server`
//! header, and the TLS versions it offers, which are the default of `[tls] versions`), what the peer gets of the
//! Edge's diagnostics (`[edge] diagnostic_headers`), and the `[log]` table.
//!
//! Sources: `shared/notes/edge-realism.md`. A value marked *inferred* there is marked so here and in the docs.

use serde::{Deserialize, Serialize};

use super::TlsVersion;

/// The Edge's product version (`[edge] version`): its `Server` header and the TLS versions a real one offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EdgeVersion {
    /// Lync Server 2013.
    Lync2013,
    /// Skype for Business Server 2015 (the seed's lab).
    #[default]
    Sfb2015,
    /// Skype for Business Server 2019.
    Sfb2019,
    /// Skype for Business Server Subscription Edition.
    Sfbse,
}

/// All versions, in release order (for help texts and tests).
pub const EDGE_VERSIONS: [EdgeVersion; 4] = [
    EdgeVersion::Lync2013,
    EdgeVersion::Sfb2015,
    EdgeVersion::Sfb2019,
    EdgeVersion::Sfbse,
];

impl EdgeVersion {
    /// The configuration spelling (`sfb2015`).
    pub fn name(self) -> &'static str {
        match self {
            EdgeVersion::Lync2013 => "lync2013",
            EdgeVersion::Sfb2015 => "sfb2015",
            EdgeVersion::Sfb2019 => "sfb2019",
            EdgeVersion::Sfbse => "sfbse",
        }
    }

    /// The product name.
    pub fn product(self) -> &'static str {
        match self {
            EdgeVersion::Lync2013 => "Lync Server 2013",
            EdgeVersion::Sfb2015 => "Skype for Business Server 2015",
            EdgeVersion::Sfb2019 => "Skype for Business Server 2019",
            EdgeVersion::Sfbse => "Skype for Business Server Subscription Edition",
        }
    }

    /// The `Server` header a real Edge of this version sends.
    pub fn server_header(self) -> &'static str {
        match self {
            // Confirmed: MS-PRES sample.
            EdgeVersion::Lync2013 => "RTC/5.0",
            // Confirmed: the seed's 504.
            EdgeVersion::Sfb2015 => "RTC/6.0",
            // INFERRED: builds 7.0.2046.x, as SfB Online's confirmed RTC/7.0; no trace of these versions seen.
            EdgeVersion::Sfb2019 | EdgeVersion::Sfbse => "RTC/7.0",
        }
    }

    /// Whether [`EdgeVersion::server_header`] is inferred rather than seen in a trace.
    pub fn server_header_inferred(self) -> bool {
        matches!(self, EdgeVersion::Sfb2019 | EdgeVersion::Sfbse)
    }

    /// The TLS versions a real Edge of this version offers, as written in Microsoft's planning pages.
    pub fn real_tls(self) -> &'static str {
        match self {
            // SfB 2015 (with the TLS 1.2 updates): 1.2, and still 1.1 and 1.0 (confirmed). Lync 2013 is INFERRED
            // to match: the same TLS 1.2 updates, no planning page of its own in the notes.
            EdgeVersion::Lync2013 | EdgeVersion::Sfb2015 => "TLS 1.2, 1.1, 1.0",
            // SfB 2019: TLS 1.3 (with Windows Server 2022) and 1.2 (confirmed). SE is INFERRED to match 2019.
            EdgeVersion::Sfb2019 | EdgeVersion::Sfbse => "TLS 1.3, 1.2",
        }
    }

    /// Whether [`EdgeVersion::real_tls`] is inferred rather than stated by a source.
    pub fn real_tls_inferred(self) -> bool {
        matches!(self, EdgeVersion::Lync2013 | EdgeVersion::Sfbse)
    }

    /// What edgesim offers of [`EdgeVersion::real_tls`] when `[tls] versions` is not set: rustls implements
    /// neither TLS 1.0 nor 1.1, so a Lync 2013 / SfB 2015 Edge offers TLS 1.2 only.
    pub fn tls_versions(self) -> &'static [TlsVersion] {
        match self {
            EdgeVersion::Lync2013 | EdgeVersion::Sfb2015 => &[TlsVersion::Tls12],
            EdgeVersion::Sfb2019 | EdgeVersion::Sfbse => &[TlsVersion::Tls12, TlsVersion::Tls13],
        }
    }

    /// The line `serve` prints at start: the profile, its `Server` header, the TLS versions a real one offers,
    /// those edgesim offers and where they came from.
    pub fn describe(
        self,
        server: &str,
        offered: &[TlsVersion],
        source: TlsVersionsSource,
    ) -> String {
        let inferred = if self.server_header_inferred() && server == self.server_header() {
            " (inferred)"
        } else {
            ""
        };
        let real_inferred = if self.real_tls_inferred() {
            " (inferred)"
        } else {
            ""
        };
        format!(
            "profile: {} ({}): Server: {server}{inferred}; a real one offers {}{real_inferred}; edgesim offers TLS {} ({}; rustls has no TLS 1.0/1.1)",
            self.name(),
            self.product(),
            self.real_tls(),
            TlsVersion::list(offered),
            source.describe(),
        )
    }
}

/// Where the TLS versions the Edge offers came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersionsSource {
    /// `[edge] version`'s ([`EdgeVersion::tls_versions`]): `[tls] versions` is not set.
    Profile,
    /// `[tls] versions`, which overrides the profile.
    Config,
}

impl TlsVersionsSource {
    /// `from the profile` / `from tls.versions`, for the start line.
    pub fn describe(self) -> &'static str {
        match self {
            TlsVersionsSource::Profile => "from the profile",
            TlsVersionsSource::Config => "from tls.versions, which overrides the profile",
        }
    }
}

/// What the Edge's answers to the peer carry of its diagnostics (`[edge] diagnostic_headers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiagnosticHeaders {
    /// `ms-diagnostics` (with `source=`, as the Edge shows it internally) and `ms-diagnostics-public`: edgesim's
    /// default, because the tool exists to explain.
    Internal,
    /// `ms-diagnostics-public` only (at most one, never `source=`), as MS-OCER allows toward external networks.
    Public,
    /// Neither: a real Edge's default (`Set-CsDiagnosticHeaderConfiguration` `SendToExternalNetworks` False).
    None,
}

impl DiagnosticHeaders {
    /// The configuration spelling.
    pub fn name(self) -> &'static str {
        match self {
            DiagnosticHeaders::Internal => "internal",
            DiagnosticHeaders::Public => "public",
            DiagnosticHeaders::None => "none",
        }
    }
}

/// `[log]`: what the Edge log file holds besides the `TF_DIAG` records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Every SIP message in and out as a `TL_INFO(TF_PROTOCOL)` record (off by default: a busy Edge's log
    /// grows by the size of its traffic).
    pub protocol: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_version_has_its_server_header() {
        let got: Vec<(&str, &str, bool)> = EDGE_VERSIONS
            .iter()
            .map(|v| (v.name(), v.server_header(), v.server_header_inferred()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("lync2013", "RTC/5.0", false),
                ("sfb2015", "RTC/6.0", false),
                ("sfb2019", "RTC/7.0", true),
                ("sfbse", "RTC/7.0", true),
            ]
        );
        assert_eq!(EdgeVersion::default(), EdgeVersion::Sfb2015);
    }

    #[test]
    fn each_version_implies_its_tls_versions() {
        use TlsVersion::{Tls12, Tls13};
        let got: Vec<(&str, &str, bool, &[TlsVersion])> = EDGE_VERSIONS
            .iter()
            .map(|v| {
                (
                    v.name(),
                    v.real_tls(),
                    v.real_tls_inferred(),
                    v.tls_versions(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("lync2013", "TLS 1.2, 1.1, 1.0", true, &[Tls12][..]),
                ("sfb2015", "TLS 1.2, 1.1, 1.0", false, &[Tls12][..]),
                ("sfb2019", "TLS 1.3, 1.2", false, &[Tls12, Tls13][..]),
                ("sfbse", "TLS 1.3, 1.2", true, &[Tls12, Tls13][..]),
            ]
        );
    }

    #[test]
    fn the_start_line_names_the_profile_the_versions_and_their_source() {
        assert_eq!(
            EdgeVersion::Sfb2015.describe(
                "RTC/6.0",
                &[TlsVersion::Tls12],
                TlsVersionsSource::Profile
            ),
            "profile: sfb2015 (Skype for Business Server 2015): Server: RTC/6.0; a real one offers TLS 1.2, 1.1, 1.0; edgesim offers TLS 1.2 (from the profile; rustls has no TLS 1.0/1.1)"
        );
        assert_eq!(
            EdgeVersion::Lync2013.describe(
                "RTC/5.0",
                &[TlsVersion::Tls12, TlsVersion::Tls13],
                TlsVersionsSource::Config
            ),
            "profile: lync2013 (Lync Server 2013): Server: RTC/5.0; a real one offers TLS 1.2, 1.1, 1.0 (inferred); edgesim offers TLS 1.2, 1.3 (from tls.versions, which overrides the profile; rustls has no TLS 1.0/1.1)"
        );
        assert_eq!(
            EdgeVersion::Sfbse.describe("RTC/7.0", &[TlsVersion::Tls12], TlsVersionsSource::Config),
            "profile: sfbse (Skype for Business Server Subscription Edition): Server: RTC/7.0 (inferred); a real one offers TLS 1.3, 1.2 (inferred); edgesim offers TLS 1.2 (from tls.versions, which overrides the profile; rustls has no TLS 1.0/1.1)"
        );
    }
}
