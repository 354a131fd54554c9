//! The Edge configuration (TOML): identity, certificates, trust, federation policy, users, DNS zones, limits.
//!
//! Every field has a default, so an empty file is a working lab Edge (`sip.skype.lab`, partner discovery on).
//! Unknown keys are refused, so a typo is an error that names the file, the line and the key.

use serde::{Deserialize, Serialize};

use crate::dns::{DnsZonesConfig, RecordSpec, ResolverSettings, Zone};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read the configuration: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or a value does not fit the model.
    #[error("{path}:{line}:{column}: {field}{message}\n  hint: {hint}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column of the offending text.
        column: usize,
        /// `field `x.y`: ` when the key could be located, else empty.
        field: String,
        /// toml's message (first line).
        message: String,
        /// What to change.
        hint: String,
    },
    /// The values parse but contradict each other.
    #[error("{path}: `{field}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The offending key.
        field: String,
        /// What is wrong and the fix.
        message: String,
    },
}

/// The whole Edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// Send bare responses to the peer, as a real Edge does (no ms-diagnostics across federation).
    pub faithful: bool,
    /// Edge log file (records in the SfB trace layout); none: stderr only.
    pub log_file: Option<PathBuf>,
    /// JSON-lines decision events file.
    pub events_file: Option<PathBuf>,
    /// Who the Edge is.
    pub edge: Identity,
    /// Certificates and trust.
    pub tls: TlsConfig,
    /// Federation policy.
    pub policy: PolicyConfig,
    /// The emulated Microsoft users.
    pub users: Vec<UserConfig>,
    /// DNS client and embedded server.
    pub dns: DnsConfig,
    /// Resource limits.
    pub limits: Limits,
}

/// The Edge's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Identity {
    /// Edge FQDN, the `source=` of ms-diagnostics.
    pub fqdn: String,
    /// SIP domain served.
    pub domain: String,
    /// `Server:` header.
    pub server_header: String,
    /// Machine name printed in log records (`[sfvedge\sfvedge]`).
    pub log_host: String,
    /// The address peers reach the Edge at, published as `fqdn`'s A/AAAA record by `serve --serve-dns`;
    /// none: the listen address (when it is not 0.0.0.0 / ::), else the `--serve-dns` address.
    pub public_address: Option<std::net::IpAddr>,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            fqdn: "sip.skype.lab".into(),
            domain: "skype.lab".into(),
            server_header: "RTC/6.0".into(),
            log_host: "sfvedge".into(),
            public_address: None,
        }
    }
}

/// Whether the Edge asks for / requires a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClientCertMode {
    /// Required (a real Edge: mutual TLS).
    #[default]
    Required,
    /// Requested; a peer without one is still accepted.
    Optional,
    /// Not requested.
    None,
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2 (SfB 2015/2019).
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 (not spoken by a real SfB Edge; a lab toggle).
    #[serde(rename = "1.3")]
    Tls13,
}

/// Certificates and trust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Edge certificate chain (PEM); none: the lab CA issues one at start.
    pub cert: Option<PathBuf>,
    /// Edge private key (PEM).
    pub key: Option<PathBuf>,
    /// Trust anchor files (PEM).
    pub ca: Vec<PathBuf>,
    /// Also trust the system's public roots.
    pub use_system_roots: bool,
    /// Client certificate mode.
    pub client_cert: ClientCertMode,
    /// Versions offered (default 1.2 and 1.3; a real SfB Edge speaks 1.2 only).
    pub versions: Vec<TlsVersion>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: None,
            key: None,
            ca: Vec::new(),
            use_system_roots: false,
            client_cert: ClientCertMode::Required,
            versions: vec![TlsVersion::Tls12, TlsVersion::Tls13],
        }
    }
}

/// An allowed federated domain, optionally with the partner's Edge FQDN (Allowed Partner Server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedDomain {
    /// The partner's SIP domain.
    pub domain: String,
    /// Fixed partner Edge FQDN: SRV is skipped and this name must be in the peer certificate.
    #[serde(default)]
    pub proxy_fqdn: Option<String>,
}

/// Federation policy (the Access Edge configuration and the domain lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Domains refused outright.
    pub blocked_domains: Vec<String>,
    /// Allowed partner domains.
    pub allowed_domains: Vec<AllowedDomain>,
    /// Discover partners not on the allowed list through DNS SRV (a real Edge defaults to false; a lab wants true).
    pub partner_discovery: bool,
    /// Accept an SRV target equal to the domain itself.
    pub accept_apex_target: bool,
    /// Accept a wildcard SAN (`*.x`) as naming the target.
    pub allow_wildcard: bool,
    /// Require the Client Authentication EKU on inbound peer certificates that carry an EKU extension.
    pub require_client_auth_eku: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            blocked_domains: Vec::new(),
            allowed_domains: Vec::new(),
            partner_discovery: true,
            accept_apex_target: true,
            allow_wildcard: false,
            require_client_auth_eku: true,
        }
    }
}

/// What an emulated user does with an INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum UserAction {
    /// 180 then 200 with SDP.
    #[default]
    Answer,
    /// 486 Busy Here.
    Busy,
    /// 603 Decline.
    Decline,
    /// 480 Temporarily Unavailable.
    Unavailable,
    /// 180 and never answer.
    RingForever,
}

/// One emulated Microsoft user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// User part or full URI (`stejanss` or `sip:stejanss@skype.lab`).
    #[serde(alias = "uri")]
    pub user: String,
    /// What the user does.
    #[serde(default)]
    pub action: UserAction,
    /// Ringing time before the action, ms.
    #[serde(default = "default_ring_ms")]
    pub ring_ms: u64,
    /// Send BYE this long after answering; none: stay up.
    #[serde(default)]
    pub hangup_after_ms: Option<u64>,
}

fn default_ring_ms() -> u64 {
    1000
}

/// DNS client and embedded server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// How the Edge resolves (`[dns.resolver]`: server, timeout, cache); default: the system resolver.
    pub resolver: ResolverSettings,
    /// Serve the zones below on this address (UDP and TCP), e.g. `127.0.0.1:5353`.
    pub serve: Option<SocketAddr>,
    /// `[[dns.zones]]` with an explicit origin each.
    pub zones: Vec<Zone>,
    /// `[[dns.records]]`; their zones are inferred.
    pub records: Vec<RecordSpec>,
    /// Master files, relative to the configuration file's directory.
    pub zone_files: Vec<PathBuf>,
}

impl DnsConfig {
    /// The zone data to serve, in the dns module's terms.
    pub fn zones_config(&self) -> DnsZonesConfig {
        DnsZonesConfig {
            zones: self.zones.clone(),
            records: self.records.clone(),
            zone_files: self.zone_files.clone(),
        }
    }
}

/// Resource limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Concurrent connections.
    pub max_connections: usize,
    /// Largest SIP message accepted, bytes.
    pub max_message_bytes: usize,
    /// Time to receive a full header block, ms.
    pub header_timeout_ms: u64,
    /// Idle connection lifetime, ms.
    pub idle_timeout_ms: u64,
    /// TLS handshake deadline, ms.
    pub handshake_timeout_ms: u64,
    /// Requests per second on one connection; more get 503 with Retry-After (the Edge's discovered-partner rate is 20).
    pub max_requests_per_sec: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_message_bytes: 64 * 1024,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 300_000,
            handshake_timeout_ms: 10_000,
            max_requests_per_sec: 20,
        }
    }
}

/// A TOML or serde error located in its file's text: the parts of the
/// `file:line:column: field `x.y`: message` + `hint: fix` errors of the configuration and the scenario files.
pub(crate) struct TomlFault {
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column of the offending text.
    pub column: usize,
    /// `field `x.y`: ` when the key could be located, else empty.
    pub field: String,
    /// toml's message (first line).
    pub message: String,
    /// What to change.
    pub hint: String,
}

/// Fixes for toml/serde messages: (text the message contains, fix), the first match wins.
pub(crate) type Hints = [(&'static str, &'static str)];

/// The fixes both file formats give.
pub(crate) mod hint {
    pub(crate) const UNKNOWN_FIELD: (&str, &str) = (
        "unknown field",
        "remove the key or correct its spelling; the valid keys are listed above",
    );
    pub(crate) const UNKNOWN_VARIANT: (&str, &str) =
        ("unknown variant", "use one of the values listed above");
    pub(crate) const INVALID_TYPE: (&str, &str) = (
        "invalid type",
        "give the value the type shown (quote strings, no quotes around numbers and booleans)",
    );
    pub(crate) const DUPLICATE: (&str, &str) = ("duplicate", "keep only one definition of the key");
}

/// The configuration's fixes.
const HINTS: &Hints = &[
    hint::UNKNOWN_FIELD,
    hint::UNKNOWN_VARIANT,
    hint::INVALID_TYPE,
    hint::DUPLICATE,
];

impl TomlFault {
    /// Locates `e` in `text`; the hint is the first of `hints` that matches the message, else `fallback`.
    pub(crate) fn new(text: &str, e: &toml::de::Error, hints: &Hints, fallback: &str) -> Self {
        let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
        let message = e.message().lines().next().unwrap_or_default().to_owned();
        let field = field_at(text, line)
            .map(|f| format!("field `{f}`: "))
            .unwrap_or_default();
        let hint = hints
            .iter()
            .find(|(pattern, _)| message.contains(pattern))
            .map_or(fallback, |(_, fix)| fix)
            .to_owned();
        TomlFault {
            line,
            column,
            field,
            message,
            hint,
        }
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |i| offset - i - 1) + 1;
    (line, col)
}

/// The dotted key at a line: the last `[table]` header above it plus the `key =` on it.
fn field_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?;
    let key = here.split_once('=')?.0.trim();
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let table = lines[..line - 1]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_owned(),
    })
}

impl EdgeConfig {
    /// Parses TOML text; `path` only labels errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: EdgeConfig = toml::from_str(text).map_err(|e| {
            let fault = TomlFault::new(
                text,
                &e,
                HINTS,
                "see the example configuration in the README",
            );
            ConfigError::Parse {
                path: path.to_owned(),
                line: fault.line,
                column: fault.column,
                field: fault.field,
                message: fault.message,
                hint: fault.hint,
            }
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Cross-field checks serde cannot express.
    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let norm = |d: &str| d.trim_end_matches('.').to_ascii_lowercase();
        for a in &self.policy.allowed_domains {
            if self
                .policy
                .blocked_domains
                .iter()
                .any(|b| norm(b) == norm(&a.domain))
            {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    field: "policy.blocked_domains".into(),
                    message: format!(
                        "{} is both blocked and allowed; a domain can be on only one list (as on a real Edge). Remove it from one of them.",
                        a.domain
                    ),
                });
            }
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                field: "tls.key".into(),
                message: "set both tls.cert and tls.key, or neither (the lab CA then issues the Edge certificate)".into(),
            });
        }
        if self.tls.versions.is_empty() {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                field: "tls.versions".into(),
                message: "no TLS version left to offer; write versions = [\"1.2\"] (a real SfB Edge) or [\"1.2\", \"1.3\"]".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EdgeConfig, ConfigError> {
        EdgeConfig::from_toml(text, Path::new("edge.toml"))
    }

    #[test]
    fn empty_file_is_a_lab_edge() {
        let c = parse("").unwrap();
        assert_eq!(c, EdgeConfig::default());
        assert_eq!(c.edge.fqdn, "sip.skype.lab");
        assert_eq!(c.edge.domain, "skype.lab");
        assert_eq!(c.edge.server_header, "RTC/6.0");
        assert_eq!(c.edge.log_host, "sfvedge");
        assert!(c.policy.partner_discovery);
        assert!(c.policy.accept_apex_target);
        assert!(!c.policy.allow_wildcard);
        assert!(c.policy.require_client_auth_eku);
        assert_eq!(c.tls.client_cert, ClientCertMode::Required);
        assert_eq!(c.tls.versions, vec![TlsVersion::Tls12, TlsVersion::Tls13]);
        assert!(!c.faithful);
        assert_eq!(c.limits.max_requests_per_sec, 20);
    }

    #[test]
    fn full_example() {
        let c = parse(
            r#"
faithful = true
log_file = "edge.log"
events_file = "events.jsonl"

[edge]
fqdn = "sip.contoso.lab"
domain = "contoso.lab"
server_header = "RTC/7.0"
log_host = "edge01"

[tls]
cert = "certs/edge.pem"
key = "certs/edge.key"
ca = ["certs/lab-ca.pem"]
use_system_roots = true
client_cert = "optional"
versions = ["1.2", "1.3"]

[policy]
blocked_domains = ["spam.lab"]
allowed_domains = [
  { domain = "steven.lab", proxy_fqdn = "vcse.steven.lab" },
  { domain = "acano.steven.lab" },
]
partner_discovery = false
accept_apex_target = false
allow_wildcard = true
require_client_auth_eku = false

[[users]]
uri = "sip:stejanss@skype.lab"
action = "ring-forever"

[[users]]
user = "bob"
action = "busy"
ring_ms = 0
hangup_after_ms = 5000

[dns]
serve = "127.0.0.1:5353"
resolver = { server = "127.0.0.1:5353", timeout_ms = 500 }
records = [{ name = "_sipfederationtls._tcp.acano.steven.lab", type = "SRV", priority = 0, weight = 0, port = 5061, target = "vcse.acano.steven.lab" }]

[limits]
max_connections = 10
max_message_bytes = 4096
header_timeout_ms = 1
idle_timeout_ms = 2
handshake_timeout_ms = 3
max_requests_per_sec = 4
"#,
        )
        .unwrap();
        assert!(c.faithful);
        assert_eq!(c.edge.log_host, "edge01");
        assert_eq!(c.tls.client_cert, ClientCertMode::Optional);
        assert_eq!(c.tls.versions, vec![TlsVersion::Tls12, TlsVersion::Tls13]);
        assert_eq!(
            c.policy.allowed_domains[0].proxy_fqdn.as_deref(),
            Some("vcse.steven.lab")
        );
        assert!(!c.policy.partner_discovery);
        assert_eq!(c.users[0].user, "sip:stejanss@skype.lab");
        assert_eq!(c.users[0].action, UserAction::RingForever);
        assert_eq!(c.users[0].ring_ms, 1000);
        assert_eq!(c.users[1].hangup_after_ms, Some(5000));
        assert_eq!(c.dns.records.len(), 1);
        assert_eq!(c.limits.max_requests_per_sec, 4);
    }

    #[test]
    fn unknown_key_names_file_line_and_field() {
        let err = parse("[policy]\nblocked_domains = []\npartner_discovry = true\n").unwrap_err();
        let text = err.to_string();
        assert_eq!(
            text,
            "edge.toml:3:1: field `policy.partner_discovry`: unknown field `partner_discovry`, expected one of \
             `blocked_domains`, `allowed_domains`, `partner_discovery`, `accept_apex_target`, `allow_wildcard`, \
             `require_client_auth_eku`\n  hint: remove the key or correct its spelling; the valid keys are listed above"
        );
        assert!(
            text.starts_with(
                "edge.toml:3:1: field `policy.partner_discovry`: unknown field `partner_discovry`"
            ),
            "{text}"
        );
        assert!(text.contains("`partner_discovery`"), "{text}");
        assert!(
            text.contains("hint: remove the key or correct its spelling"),
            "{text}"
        );
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse("[limits]\nmax_connections = \"many\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("edge.toml:2:"), "{text}");
        assert!(text.contains("field `limits.max_connections`"), "{text}");
        assert!(
            text.contains("hint: give the value the type shown"),
            "{text}"
        );
    }

    #[test]
    fn bad_variant_lists_choices() {
        let err = parse("[tls]\nclient_cert = \"sometimes\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("field `tls.client_cert`"), "{text}");
        assert!(text.contains("required"), "{text}");
    }

    #[test]
    fn blocked_and_allowed_is_refused() {
        let err = parse(
            "[policy]\nblocked_domains = [\"Steven.lab.\"]\nallowed_domains = [{ domain = \"steven.lab\" }]\n",
        )
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::Invalid { ref field, .. } if field == "policy.blocked_domains")
        );
    }

    #[test]
    fn missing_file_names_it() {
        let err = EdgeConfig::load(Path::new("/nonexistent/edge.toml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/edge.toml: cannot read")
        );
    }
}
