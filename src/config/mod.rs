//! The Edge configuration (TOML): identity, certificates, trust, federation policy, users, DNS zones, limits.
//!
//! Every field has a default, so an empty file is a working lab Edge (`sip.skype.lab`, partner discovery on).
//! Unknown keys are refused, so a typo is an error that names the file, the line and the key; every limit is
//! range-checked ([`validate`]). [`EdgeConfig::load`] resolves every relative path in the file (`tls.cert`,
//! `tls.key`, `tls.ca`, `log_file`, `events_file`, `dns.zone_files`) against the file's directory, so every
//! command that takes `--config` reads the same files; paths given as command-line flags stay relative to the
//! working directory.

pub mod edge_profile;
mod fault;
pub mod federation;
pub mod pool;
pub mod sfb;
pub mod validate;

use serde::{Deserialize, Serialize};

use crate::dns::{DnsZonesConfig, RecordSpec, ResolverSettings, Zone};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use edge_profile::{DiagnosticHeaders, EdgeVersion, LogConfig, TlsVersionsSource};
pub(crate) use fault::{Hints, TomlFault, hint, line_col};
// The presence settings live with the presence core, which reads them without importing `config` (no circle).
pub use crate::presence::settings::{PresenceConfig, PresenceStepConfig, UserPresenceConfig};
pub use federation::{
    AccessEdgeConfig, AllowedDomainEntry, BlockedDomainEntry, FederationSettings, RoutingMethod,
    VerificationLevel,
};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read the configuration: {cause}; check the path given to --config", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error (named `cause`, not `source`: the message includes it, and `anyhow` would print a
        /// `source` a second time).
        cause: std::io::Error,
    },
    /// The TOML is malformed or a value does not fit the model.
    #[error("{}:{line}:{column}: {field}{message}\n  hint: {hint}", path.display())]
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
    #[error("{}: `{field}`: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The offending key.
        field: String,
        /// What is wrong and the fix.
        message: String,
    },
    /// A line of a `--sfb-config` file: malformed, a value of the wrong type or out of range, a conflict.
    #[error("{}:{line}: {message}", path.display())]
    Pasted {
        /// The pasted file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What was expected, naming the property, and the fix.
        message: String,
    },
    /// A `--sfb-config` file as a whole: unreadable, too large, not text.
    #[error("{}: {message}", path.display())]
    PastedFile {
        /// The pasted file.
        path: PathBuf,
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
    /// `[log]`: what the log file holds besides the TF_DIAG records.
    pub log: LogConfig,
    /// Who the Edge is.
    pub edge: Identity,
    /// Certificates and trust.
    pub tls: TlsConfig,
    /// Federation policy: edgesim's switches, and (after loading) the lists and discovery in force, as
    /// `federation` resolves them (the older spelling of the SfB tables below).
    pub policy: PolicyConfig,
    /// `[access_edge]` as written: Set-CsAccessEdgeConfiguration's settings (absent: edgesim's lab defaults).
    pub access_edge: Option<AccessEdgeConfig>,
    /// `[[allowed_domains]]` as written (New-CsAllowedDomain).
    pub allowed_domains: Vec<AllowedDomainEntry>,
    /// `[[blocked_domains]]` as written (New-CsBlockedDomain).
    pub blocked_domains: Vec<BlockedDomainEntry>,
    /// The federation settings in force, from all of the above and `--sfb-config` (computed, not a key).
    #[serde(skip)]
    pub federation: FederationSettings,
    /// The emulated Microsoft users.
    pub users: Vec<UserConfig>,
    /// DNS client and embedded server.
    pub dns: DnsConfig,
    /// Resource limits.
    pub limits: Limits,
    /// Presence subscriptions: caps and expiry bounds.
    pub presence: PresenceConfig,
    /// Instant messages: page mode and the size bound.
    pub im: ImConfig,
    /// `[[pool.members]]`: an Edge pool's members, their DNS publication and initial fault modes.
    pub pool: pool::PoolConfig,
}

/// The Edge's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Identity {
    /// Edge FQDN, the `source=` of ms-diagnostics.
    pub fqdn: String,
    /// SIP domain served.
    pub domain: String,
    /// The product version the Edge plays (`Server` header, the TLS it would offer).
    pub version: EdgeVersion,
    /// `Server:` header; none: the version's ([`EdgeVersion::server_header`]).
    pub server_header: Option<String>,
    /// What the peer gets of the Edge's diagnostics; none: `internal`, or `none` with `faithful`.
    pub diagnostic_headers: Option<DiagnosticHeaders>,
    /// Send the requests the Edge originates (BYE, NOTIFY, IM replies) back on the peer's inbound connection
    /// instead of the Edge's own connection to the peer's SRV target (false: what a real Edge does).
    pub reuse_inbound_connection: bool,
    /// Machine name printed in log records (`[sfvedge\sfvedge]`).
    pub log_host: String,
    /// The address peers reach the Edge at, published as `fqdn`'s A/AAAA record by `serve --serve-dns`;
    /// none: the listen address (when it is not 0.0.0.0 / ::), else the `--serve-dns` address.
    pub public_address: Option<std::net::IpAddr>,
}

impl Identity {
    /// The `Server` header the Edge sends: `server_header`, else its version's.
    pub fn server(&self) -> &str {
        self.server_header
            .as_deref()
            .unwrap_or(self.version.server_header())
    }
}

impl EdgeConfig {
    /// What the peer gets of the Edge's diagnostics: `[edge] diagnostic_headers`, else `none` when
    /// `faithful` (a real Edge's default), else `internal` (edgesim's default: the tool exists to explain).
    pub fn diagnostic_headers(&self) -> DiagnosticHeaders {
        match (self.edge.diagnostic_headers, self.faithful) {
            (Some(d), _) => d,
            (None, true) => DiagnosticHeaders::None,
            (None, false) => DiagnosticHeaders::Internal,
        }
    }

    /// The TLS versions the Edge offers: `[tls] versions`, else its version profile's.
    pub fn tls_versions(&self) -> &[TlsVersion] {
        match &self.tls.versions {
            Some(v) => v,
            None => self.edge.version.tls_versions(),
        }
    }

    /// Where [`EdgeConfig::tls_versions`] came from.
    pub fn tls_versions_source(&self) -> TlsVersionsSource {
        match self.tls.versions {
            Some(_) => TlsVersionsSource::Config,
            None => TlsVersionsSource::Profile,
        }
    }
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            fqdn: "sip.skype.lab".into(),
            domain: "skype.lab".into(),
            version: EdgeVersion::default(),
            server_header: None,
            diagnostic_headers: None,
            reuse_inbound_connection: false,
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
    /// TLS 1.2 (every version's; the only one of Lync 2013 / SfB 2015 that rustls implements).
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 (SfB 2019 and Subscription Edition).
    #[serde(rename = "1.3")]
    Tls13,
}

impl TlsVersion {
    /// The configuration spelling (`1.2`).
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }

    /// `1.2, 1.3`: the versions' spellings, in the order given.
    pub fn list(versions: &[TlsVersion]) -> String {
        let names: Vec<&str> = versions.iter().map(|v| v.name()).collect();
        names.join(", ")
    }
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
    /// Versions offered; none: `[edge] version`'s ([`EdgeVersion::tls_versions`]: 1.2 for `sfb2015`).
    /// Read it through [`EdgeConfig::tls_versions`].
    pub versions: Option<Vec<TlsVersion>>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: None,
            key: None,
            ca: Vec::new(),
            use_system_roots: false,
            client_cert: ClientCertMode::Required,
            versions: None,
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
    /// What a presence subscriber sees (default: Available).
    #[serde(default)]
    pub presence: UserPresenceConfig,
    /// What the user does with instant messages (default: echo).
    #[serde(default)]
    pub im: crate::im::Behaviour,
    /// The user's contacts, `sip:user@domain` (scheme optional): an unverified sender (VerificationLevel
    /// AlwaysUnverifiable) reaches this user only when listed here.
    #[serde(default)]
    pub contacts: Vec<String>,
}

/// `[im]`: instant messages to the users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImConfig {
    /// Answer a MESSAGE outside a dialog (page mode) with 200 and deliver it; false: 403.
    pub page_mode: bool,
    /// The largest message text accepted (decoded), bytes; more gets 400.
    pub max_text_bytes: usize,
}

impl Default for ImConfig {
    fn default() -> Self {
        ImConfig {
            page_mode: true,
            max_text_bytes: crate::im::message::DEFAULT_MAX_TEXT_BYTES,
        }
    }
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
    /// Serve the zones below on this address (UDP and TCP): `IP` (port 53) or `IP:PORT`, e.g. `127.0.0.1:5353`.
    #[serde(deserialize_with = "crate::dns::server_opt")]
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
    /// Largest SIP header block accepted, bytes (a longer one gets 513).
    pub max_message_bytes: usize,
    /// Largest SIP body accepted, KB (1024 bytes): the Edge's `MaxServerMessageBodySizeKb` (default 5000); a
    /// larger one gets 413 and the connection is closed.
    pub max_server_message_body_size_kb: usize,
    /// Time to receive a full header block, ms.
    pub header_timeout_ms: u64,
    /// Idle connection lifetime, ms: the keep-alive interval a peer must ping within (the `timeout=` of the
    /// Edge's `ms-keep-alive: UAS` answer); default the Edge's `MaxKeepAliveInterval`, 20 minutes.
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
            max_server_message_body_size_kb: 5000,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 1_200_000,
            handshake_timeout_ms: 10_000,
            max_requests_per_sec: 20,
        }
    }
}

/// The configuration's fixes.
const HINTS: &Hints = &[
    hint::UNKNOWN_FIELD,
    // Before the general one: a real Lync 2013 / SfB 2015 Edge offers these, so they are what people write.
    (
        "unknown variant `1.0`",
        "rustls implements neither TLS 1.0 nor 1.1, so edgesim cannot offer them; write \"1.2\" and/or \"1.3\"",
    ),
    (
        "unknown variant `1.1`",
        "rustls implements neither TLS 1.0 nor 1.1, so edgesim cannot offer them; write \"1.2\" and/or \"1.3\"",
    ),
    hint::UNKNOWN_VARIANT,
    hint::INVALID_TYPE,
    hint::DUPLICATE,
];

impl EdgeConfig {
    /// Parses TOML text and checks it; `path` only labels errors (relative paths stay as written).
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: EdgeConfig = toml::from_str(text).map_err(|e| {
            let fault = TomlFault::new(
                text,
                &e,
                HINTS,
                "edge.example.toml lists every key with its default and its range",
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
        config.federation = federation::resolve(&config, federation::Written::of(text), path)?;
        config.federation.apply_to(&mut config.policy);
        config.validate(path)?;
        Ok(config)
    }

    /// `serve --sfb-config`: reads each file (Format-List output, UTF-8 or UTF-16), joins what they hold to
    /// the federation settings ([`FederationSettings::merge_pasted`]) and updates `policy`. Returns the
    /// warnings and notes for the start-up report; `config` (the `--config` file) labels messages.
    pub fn apply_sfb_files(
        &mut self,
        files: &[PathBuf],
        config: Option<&Path>,
    ) -> Result<Vec<String>, ConfigError> {
        let mut pasted = federation::Pasted::default();
        for file in files {
            let bytes = read_bounded(file, sfb::MAX_FILE_BYTES)?;
            let text = sfb::decode(&bytes, file)?;
            pasted.combine(sfb::parse(&text, file)?)?;
        }
        let notes = self.federation.merge_pasted(pasted, config)?;
        self.federation.apply_to(&mut self.policy);
        Ok(notes)
    }

    /// Reads, parses and checks a configuration file, and resolves its relative paths against the file's
    /// directory ([`EdgeConfig::resolve_paths`]).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Io {
            path: path.to_owned(),
            cause,
        })?;
        let mut config = Self::from_toml(&text, path)?;
        config.resolve_paths(&config_dir(path));
        Ok(config)
    }

    /// Makes every relative path of the configuration relative to `dir` (absolute paths stay as they are):
    /// `log_file`, `events_file`, `tls.cert`, `tls.key`, `tls.ca`, `dns.zone_files`.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        let EdgeConfig {
            log_file,
            events_file,
            tls,
            dns,
            ..
        } = self;
        log_file
            .iter_mut()
            .chain(events_file.iter_mut())
            .chain(tls.cert.iter_mut())
            .chain(tls.key.iter_mut())
            .chain(tls.ca.iter_mut())
            .chain(dns.zone_files.iter_mut())
            .for_each(rebase);
    }

    /// Cross-field and range checks serde cannot express.
    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        validate::check(self)
            .and_then(|()| pool::check(&self.pool, &self.edge.fqdn))
            .map_err(|p| ConfigError::Invalid {
                path: path.to_owned(),
                field: p.field,
                message: p.message,
            })
    }
}

/// A `--sfb-config` file's bytes, at most `max` (one more byte read tells `decode` it is too large).
fn read_bounded(path: &Path, max: usize) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(wide(max) + 1).read_to_end(&mut bytes))
        .map_err(|e| ConfigError::PastedFile {
            path: path.to_owned(),
            message: format!("cannot read it: {e}; check the path given to --sfb-config"),
        })?;
    Ok(bytes)
}

fn wide(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The directory a configuration file's relative paths start from, made absolute (so that messages show
/// exactly which file was tried, and a later `join` onto it changes nothing).
fn config_dir(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

#[cfg(test)]
mod tests;
