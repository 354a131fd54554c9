//! The scenario file (TOML): the lab (Edge identity, policy, users, DNS, certificates) and its cases.
//!
//! Parsing is strict (`deny_unknown_fields`), and every error names the file, the line, the field and the fix:
//! serde's errors through toml's span, the cross-field checks through [`toml::Spanned`] values.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::config::{Hints, Identity, Limits, PolicyConfig, TomlFault, UserConfig, hint, line_col};
use crate::dns::{FaultKind, RecordSpec};

use super::ScenarioError;

/// A whole scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// One line naming the lab.
    #[serde(default)]
    pub title: Option<String>,
    /// What the lab shows.
    #[serde(default)]
    pub description: Option<String>,
    /// Bare responses to the peer, as a real Edge sends them (`EdgeConfig::faithful`).
    #[serde(default)]
    pub faithful: bool,
    /// The Edge's identity (`[edge]`, as in the Edge configuration).
    #[serde(default)]
    pub edge: Identity,
    /// Name of the `[certs.NAME]` the Edge presents; absent: the lab CA issues one for the Edge FQDN.
    #[serde(default)]
    pub edge_cert: Option<Spanned<String>>,
    /// More CA files (PEM) the Edge trusts besides the scenario's lab CA, relative to the scenario file.
    #[serde(default)]
    pub trust: Vec<PathBuf>,
    /// Federation policy (`[policy]`, as in the Edge configuration).
    #[serde(default)]
    pub policy: PolicyConfig,
    /// The emulated Microsoft users (`[[users]]`, as in the Edge configuration).
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Edge limits (`[limits]`, as in the Edge configuration).
    #[serde(default)]
    pub limits: Limits,
    /// The lab's DNS (`[dns]`).
    #[serde(default)]
    pub dns: ScenarioDns,
    /// Named certificates (`[certs.NAME]`), issued at run time by the scenario's lab CA.
    #[serde(default)]
    pub certs: BTreeMap<String, CertSpec>,
    /// The cases (`[[case]]`).
    #[serde(default, rename = "case")]
    pub cases: Vec<Case>,
}

/// `[dns]`: the base records of every case and the Edge resolver's patience.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioDns {
    /// `[[dns.records]]`, served by the case's embedded DNS server.
    #[serde(default)]
    pub records: Vec<ScenarioRecord>,
    /// The Edge resolver's wait for one answer, ms (a `FAULT kind="drop"` case waits this long).
    #[serde(default = "default_dns_timeout_ms")]
    pub timeout_ms: u64,
}

impl Default for ScenarioDns {
    fn default() -> Self {
        ScenarioDns {
            records: Vec::new(),
            timeout_ms: default_dns_timeout_ms(),
        }
    }
}

fn default_dns_timeout_ms() -> u64 {
    2000
}

/// A DNS record: the dns module's [`RecordSpec`] shape, except that an SRV's `priority`, `weight` and `port`
/// may be omitted (0); SRV port 0 means "this case's port": its peer server (outbound) or 5061 (inbound).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "UPPERCASE", deny_unknown_fields)]
pub enum ScenarioRecord {
    /// `type="SRV"`.
    Srv {
        /// Owner, e.g. `_sipfederationtls._tcp.acano.steven.lab`.
        name: String,
        /// Priority (default 0).
        #[serde(default)]
        priority: u16,
        /// Weight (default 0).
        #[serde(default)]
        weight: u16,
        /// Port; 0 or absent: the case's port.
        #[serde(default)]
        port: u16,
        /// Target host.
        target: String,
        /// TTL, s.
        #[serde(default)]
        ttl: Option<u32>,
    },
    /// `type="A"`.
    A {
        /// Owner.
        name: String,
        /// IPv4 address.
        address: Ipv4Addr,
        /// TTL, s.
        #[serde(default)]
        ttl: Option<u32>,
    },
    /// `type="AAAA"`.
    Aaaa {
        /// Owner.
        name: String,
        /// IPv6 address.
        address: Ipv6Addr,
        /// TTL, s.
        #[serde(default)]
        ttl: Option<u32>,
    },
    /// `type="CNAME"`.
    Cname {
        /// Owner.
        name: String,
        /// Alias target.
        target: String,
        /// TTL, s.
        #[serde(default)]
        ttl: Option<u32>,
    },
    /// `type="TXT"`.
    Txt {
        /// Owner.
        name: String,
        /// Text.
        text: String,
        /// TTL, s.
        #[serde(default)]
        ttl: Option<u32>,
    },
    /// `type="FAULT"`: SERVFAIL, REFUSED or silence for `name` and below.
    Fault {
        /// Owner.
        name: String,
        /// What the server does.
        kind: FaultKind,
    },
}

/// Inbound cases without a peer server give port-0 SRV records this port.
pub const DEFAULT_SIP_TLS_PORT: u16 = 5061;

impl ScenarioRecord {
    /// Owner name, lower-case without the trailing dot.
    pub fn name(&self) -> String {
        let name = match self {
            ScenarioRecord::Srv { name, .. }
            | ScenarioRecord::A { name, .. }
            | ScenarioRecord::Aaaa { name, .. }
            | ScenarioRecord::Cname { name, .. }
            | ScenarioRecord::Txt { name, .. }
            | ScenarioRecord::Fault { name, .. } => name,
        };
        name.trim().trim_end_matches('.').to_ascii_lowercase()
    }

    /// The `type` as written.
    pub fn rtype(&self) -> &'static str {
        match self {
            ScenarioRecord::Srv { .. } => "SRV",
            ScenarioRecord::A { .. } => "A",
            ScenarioRecord::Aaaa { .. } => "AAAA",
            ScenarioRecord::Cname { .. } => "CNAME",
            ScenarioRecord::Txt { .. } => "TXT",
            ScenarioRecord::Fault { .. } => "FAULT",
        }
    }

    /// The dns module's record, with SRV port 0 replaced by `case_port`.
    pub fn to_spec(&self, case_port: u16) -> RecordSpec {
        let ttl = |t: &Option<u32>| t.unwrap_or(crate::dns::server::DEFAULT_TTL);
        match self {
            ScenarioRecord::Srv {
                name,
                priority,
                weight,
                port,
                target,
                ttl: t,
            } => RecordSpec::Srv {
                name: name.clone(),
                priority: *priority,
                weight: *weight,
                port: if *port == 0 { case_port } else { *port },
                target: target.clone(),
                ttl: ttl(t),
            },
            ScenarioRecord::A {
                name,
                address,
                ttl: t,
            } => RecordSpec::A {
                name: name.clone(),
                address: *address,
                ttl: ttl(t),
            },
            ScenarioRecord::Aaaa {
                name,
                address,
                ttl: t,
            } => RecordSpec::Aaaa {
                name: name.clone(),
                address: *address,
                ttl: ttl(t),
            },
            ScenarioRecord::Cname {
                name,
                target,
                ttl: t,
            } => RecordSpec::Cname {
                name: name.clone(),
                target: target.clone(),
                ttl: ttl(t),
            },
            ScenarioRecord::Txt { name, text, ttl: t } => RecordSpec::Txt {
                name: name.clone(),
                text: text.clone(),
                ttl: ttl(t),
            },
            ScenarioRecord::Fault { name, kind } => RecordSpec::Fault {
                name: name.clone(),
                kind: *kind,
            },
        }
    }
}

/// The records of one case: the base records, minus those a case record replaces (same name and type), plus the
/// case records.
pub fn merge_records(base: &[ScenarioRecord], case: &[ScenarioRecord]) -> Vec<ScenarioRecord> {
    let replaced: BTreeSet<(String, &str)> = case.iter().map(|r| (r.name(), r.rtype())).collect();
    base.iter()
        .filter(|r| !replaced.contains(&(r.name(), r.rtype())))
        .chain(case.iter())
        .cloned()
        .collect()
}

/// Which Extended Key Usages a generated certificate carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EkuName {
    /// serverAuth + clientAuth (what federation needs).
    #[default]
    Both,
    /// serverAuth only (the 2026–2027 public-CA certificates).
    Server,
    /// clientAuth only.
    Client,
    /// No EKU extension.
    None,
}

/// Which CA signs a generated certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IssuerName {
    /// The scenario's lab CA, which the Edge trusts.
    #[default]
    Lab,
    /// A second CA the Edge does not trust.
    Untrusted,
}

/// Key algorithm of a generated certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyName {
    /// ECDSA P-256 (fast).
    #[default]
    Ecdsa,
    /// RSA 2048 (what real Edges use; slower to generate).
    Rsa,
}

/// `[certs.NAME]`: a certificate generated at run time, or loaded from `file` + `key`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertSpec {
    /// Subject CN; absent: empty subject.
    #[serde(default)]
    pub cn: Option<String>,
    /// SAN dNSNames; absent or empty: no SAN extension at all (the CN is then the name).
    #[serde(default)]
    pub san: Option<Vec<String>>,
    /// EKU extension.
    #[serde(default)]
    pub eku: EkuName,
    /// Expired yesterday.
    #[serde(default)]
    pub expired: bool,
    /// Valid from tomorrow.
    #[serde(default)]
    pub not_yet_valid: bool,
    /// Signing CA.
    #[serde(default)]
    pub issuer: IssuerName,
    /// Key algorithm (`key_type`, since `key` is a file).
    #[serde(default)]
    pub key_type: KeyName,
    /// PEM chain file (relative to the scenario file), instead of generating.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// PEM key file for `file`.
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// Which way a case's request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The emulated Expressway-E sends a request to the Edge.
    Inbound,
    /// The Edge calls the emulated Expressway-E.
    Outbound,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        })
    }
}

/// What the emulated Expressway-E's server does with the Edge's outbound connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Complete TLS and answer the INVITE with this status (200 with SDP).
    Answer(u16),
    /// Reset the TCP connection during the TLS handshake.
    ResetHandshake,
    /// Complete TLS, then close the connection without reading the request.
    CloseAfterHandshake,
    /// Complete TLS and never answer (the Edge's transaction times out).
    Silent,
    /// No listener at all: the connection is refused.
    Refuse,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour::Answer(200)
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Behaviour::Answer(s) => write!(f, "answer {s}"),
            Behaviour::ResetHandshake => f.write_str("reset-handshake"),
            Behaviour::CloseAfterHandshake => f.write_str("close-after-handshake"),
            Behaviour::Silent => f.write_str("silent"),
            Behaviour::Refuse => f.write_str("refuse"),
        }
    }
}

/// The accepted spellings of a behaviour, for error messages.
pub const BEHAVIOURS: &str = "\"answer\" (200), \"answer 404\" (any status 100-699), \"reset-handshake\", \
     \"close-after-handshake\", \"silent\", \"refuse\"";

impl std::str::FromStr for Behaviour {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let words: Vec<&str> = s.split_whitespace().collect();
        match words.as_slice() {
            ["answer"] => Ok(Behaviour::Answer(200)),
            ["answer", code] => match code.parse::<u16>() {
                Ok(c) if (100..700).contains(&c) => Ok(Behaviour::Answer(c)),
                _ => Err(format!("`{code}` is not a SIP status (100-699)")),
            },
            ["reset-handshake"] => Ok(Behaviour::ResetHandshake),
            ["close-after-handshake"] => Ok(Behaviour::CloseAfterHandshake),
            ["silent"] => Ok(Behaviour::Silent),
            ["refuse"] => Ok(Behaviour::Refuse),
            _ => Err(format!("unknown behaviour `{s}`")),
        }
    }
}

impl<'de> Deserialize<'de> for Behaviour {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e: String| de::Error::custom(format!("{e}; expected one of {BEHAVIOURS}")))
    }
}

/// One `[[case]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique name, shown in the table.
    pub name: Spanned<String>,
    /// What the case shows.
    #[serde(default)]
    pub description: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: Spanned<Direction>,
    /// Records added to the base records, replacing base records of the same name and type.
    #[serde(default)]
    pub dns: Vec<ScenarioRecord>,
    /// The emulated Expressway-E's certificate (`[certs.NAME]`): TLS client (inbound) or server (outbound).
    /// Absent inbound: no client certificate.
    #[serde(default)]
    pub cert: Option<Spanned<String>>,
    /// Inbound: the request method (INVITE, OPTIONS, MESSAGE); default INVITE.
    #[serde(default)]
    pub method: Option<Spanned<String>>,
    /// Inbound: Request-URI; default the `to` URI.
    #[serde(default)]
    pub request_uri: Option<Spanned<String>>,
    /// The caller: the Expressway side (inbound) or the Skype user (outbound, default `sip:edgesim@<edge domain>`).
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    /// Inbound: the callee (a Skype user).
    #[serde(default)]
    pub to: Option<Spanned<String>>,
    /// Inbound: P-Asserted-Identity.
    #[serde(default)]
    pub pai: Option<Spanned<String>>,
    /// Outbound: the callee, e.g. `sip:space@cms.steven.lab`.
    #[serde(default)]
    pub target: Option<Spanned<String>>,
    /// Outbound: what the peer server does; default `answer` (200).
    #[serde(default)]
    pub behaviour: Option<Spanned<Behaviour>>,
    /// Outbound: the `ms-diagnostics` the peer puts on its final response (the Edge then passes it through).
    #[serde(default)]
    pub peer_ms_diagnostics: Option<Spanned<String>>,
    /// The expected outcome.
    pub expect: Expect,
}

impl Case {
    /// The case name.
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }

    /// The direction.
    pub fn direction(&self) -> Direction {
        *self.direction.get_ref()
    }

    /// The outbound behaviour (default answer 200).
    pub fn behaviour(&self) -> Behaviour {
        self.behaviour
            .as_ref()
            .map(|b| *b.get_ref())
            .unwrap_or_default()
    }
}

/// What a TLS handshake is expected to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HandshakeExpect {
    /// The Edge refuses the TLS handshake (no SIP response).
    Refused,
    /// The handshake completes.
    Completed,
}

/// `[case.expect]`: every key given is compared; absent keys are not.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Final SIP status.
    #[serde(default)]
    pub status: Option<u16>,
    /// ms-diagnostics: a code, the exact header value, `"none"`, or `{ code, params = { k = "v" } }`.
    #[serde(default)]
    pub ms_diagnostics: Option<MsDiagExpect>,
    /// The Edge log record's Result-Code, `0xc3e93d6f` (optionally followed by its `SIPPROXY_E_…` name).
    #[serde(default)]
    pub result_code: Option<String>,
    /// The Edge log record's exact Data string.
    #[serde(default)]
    pub log_data: Option<String>,
    /// TLS handshake outcome.
    #[serde(default)]
    pub handshake: Option<HandshakeExpect>,
    /// Text the Edge's explanation must contain.
    #[serde(default)]
    pub explanation: Option<String>,
}

/// The expected ms-diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MsDiagExpect {
    /// No ms-diagnostics at all.
    Absent,
    /// The code, and the given parameters (others may be present).
    Code {
        /// The code, e.g. 1009.
        code: u32,
        /// Parameters that must be present with these exact values.
        params: BTreeMap<String, String>,
    },
    /// The exact header value.
    Exact(String),
}

impl MsDiagExpect {
    /// The expected code.
    pub fn code(&self) -> Option<u32> {
        match self {
            MsDiagExpect::Absent => None,
            MsDiagExpect::Code { code, .. } => Some(*code),
            MsDiagExpect::Exact(v) => crate::diagnostics::MsDiagnostic::code_of(v),
        }
    }
}

impl<'de> Deserialize<'de> for MsDiagExpect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const EXPECTING: &str = "a code (1009), the exact header value (\"1009;reason=…\"), \"none\", \
             or a table { code = 1009, params = { domain = \"…\" } }";
        impl<'de> Visitor<'de> for V {
            type Value = MsDiagExpect;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTING)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u32::try_from(v)
                    .map(|code| MsDiagExpect::Code {
                        code,
                        params: BTreeMap::new(),
                    })
                    .map_err(|_| E::custom(format!("{v} is not an ms-diagnostics code")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(-1))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v.eq_ignore_ascii_case("none") {
                    return Ok(MsDiagExpect::Absent);
                }
                if crate::diagnostics::MsDiagnostic::code_of(v).is_none() {
                    return Err(E::custom(format!(
                        "`{v}` does not start with an ms-diagnostics code; expected {EXPECTING}"
                    )));
                }
                Ok(MsDiagExpect::Exact(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut code = None;
                let mut params = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "code" => code = Some(map.next_value::<u32>()?),
                        "params" => params = map.next_value::<BTreeMap<String, String>>()?,
                        other => {
                            return Err(de::Error::unknown_field(other, &["code", "params"]));
                        }
                    }
                }
                let code = code.ok_or_else(|| de::Error::missing_field("code"))?;
                Ok(MsDiagExpect::Code { code, params })
            }
        }
        d.deserialize_any(V)
    }
}

/// A parsed scenario with where it came from.
#[derive(Debug, Clone)]
pub struct ScenarioFile {
    /// The file, as given (or `scenarios/seed-lab.toml (embedded)`).
    pub path: PathBuf,
    /// Where relative certificate paths start; `None` for embedded scenarios.
    pub base_dir: Option<PathBuf>,
    /// The content.
    pub scenario: Scenario,
}

/// Whether `line` opens an inline table (`{ k = v }` in an array): such a line names no key of its own.
fn opens_inline_table(text: &str, line: usize) -> bool {
    line.checked_sub(1)
        .and_then(|i| text.lines().nth(i))
        .is_some_and(|l| l.trim().starts_with('{'))
}

/// `case #N "name"` for a line inside the N-th `[[case]]` block.
fn case_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().take(line).collect();
    let start = lines.iter().rposition(|l| l.trim() == "[[case]]")?;
    let index = lines[..=start]
        .iter()
        .filter(|l| l.trim() == "[[case]]")
        .count();
    let name = text
        .lines()
        .skip(start + 1)
        .take_while(|l| l.trim() != "[[case]]")
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == "name")
        .map(|(_, v)| v.trim().trim_matches('"').to_owned());
    Some(match name {
        Some(n) => format!("case #{index} \"{n}\""),
        None => format!("case #{index}"),
    })
}

/// The scenario format's fixes for toml/serde messages.
const HINTS: &Hints = &[
    hint::UNKNOWN_FIELD,
    hint::UNKNOWN_VARIANT,
    (
        "missing field",
        "add the key named above (scenarios/README.md lists every key)",
    ),
    hint::INVALID_TYPE,
    hint::DUPLICATE,
];

/// Builds a file/line/field error at `span`.
fn invalid(
    text: &str,
    path: &Path,
    span: std::ops::Range<usize>,
    field: &str,
    message: String,
) -> ScenarioError {
    let (line, column) = line_col(text, span.start);
    ScenarioError::Invalid {
        path: path.to_owned(),
        line,
        column,
        field: field.to_owned(),
        message,
    }
}

/// The line of `[certs.NAME]` (or the first mention of `certs.NAME`), for errors about a certificate.
fn cert_span(text: &str, name: &str) -> std::ops::Range<usize> {
    let needles = [format!("[certs.{name}]"), format!("certs.{name}")];
    needles
        .iter()
        .find_map(|n| text.find(n.as_str()))
        .map_or(0..0, |i| i..i)
}

/// Request methods an inbound case may send.
pub const INBOUND_METHODS: [&str; 3] = ["INVITE", "OPTIONS", "MESSAGE"];

impl ScenarioFile {
    /// Parses and checks scenario text; `path` labels errors and anchors relative certificate paths.
    pub fn parse(text: &str, path: &Path, base_dir: Option<&Path>) -> Result<Self, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let fault = TomlFault::new(text, &e, HINTS, "see scenarios/README.md for the format");
            let mut field = if opens_inline_table(text, fault.line) {
                String::new()
            } else {
                fault.field
            };
            if let Some(case) = case_at(text, fault.line) {
                field = format!("{case}: {field}");
            }
            ScenarioError::Parse {
                path: path.to_owned(),
                line: fault.line,
                column: fault.column,
                field,
                message: fault.message,
                hint: fault.hint,
            }
        })?;
        validate(&scenario, text, path)?;
        check_files(&scenario, text, path, base_dir)?;
        Ok(ScenarioFile {
            path: path.to_owned(),
            base_dir: base_dir.map(Path::to_owned),
            scenario,
        })
    }

    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ScenarioError::Io {
            path: path.to_owned(),
            cause,
        })?;
        let base = path.parent().map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        });
        Self::parse(&text, path, base)
    }
}

/// Certificate and trust files must exist (relative to the scenario file), so a typo is a parse error with a line.
fn check_files(
    s: &Scenario,
    text: &str,
    path: &Path,
    base_dir: Option<&Path>,
) -> Result<(), ScenarioError> {
    let base = base_dir.unwrap_or(Path::new("."));
    let missing = |file: &Path, span: std::ops::Range<usize>, field: &str| {
        let full = base.join(file);
        if full.is_file() {
            Ok(())
        } else {
            Err(invalid(
                text,
                path,
                span,
                field,
                format!(
                    "{} does not exist; give a path relative to the scenario file's directory ({})",
                    full.display(),
                    base.display()
                ),
            ))
        }
    };
    for file in &s.trust {
        let span = text.find("\ntrust").map_or(0..0, |i| i + 1..i + 1);
        missing(file, span, "trust")?;
    }
    for (name, c) in &s.certs {
        for (file, key) in [(&c.file, "file"), (&c.key, "key")] {
            if let Some(f) = file {
                missing(f, cert_span(text, name), &format!("certs.{name}.{key}"))?;
            }
        }
    }
    Ok(())
}

/// Cross-field checks serde cannot express, each pointing at the offending value.
fn validate(s: &Scenario, text: &str, path: &Path) -> Result<(), ScenarioError> {
    let known = || {
        if s.certs.is_empty() {
            "none are defined".to_owned()
        } else {
            format!(
                "defined: {}",
                s.certs.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        }
    };
    let check_cert = |r: &Spanned<String>, field: &str, who: &str| {
        if s.certs.contains_key(r.get_ref()) {
            Ok(())
        } else {
            Err(invalid(
                text,
                path,
                r.span(),
                field,
                format!(
                    "{who} uses certificate `{}`, which is not defined ({}); add a [certs.{}] table or use a defined name",
                    r.get_ref(),
                    known(),
                    r.get_ref()
                ),
            ))
        }
    };
    if let Some(r) = &s.edge_cert {
        check_cert(r, "edge_cert", "the Edge")?;
    }
    if let Err(p) = crate::config::validate::limits(&s.limits) {
        // The same ranges as the Edge configuration's [limits].
        let at = text.find("[limits]").map_or(0..0, |i| i..i);
        return Err(invalid(text, path, at, &p.field, p.message));
    }
    for (name, c) in &s.certs {
        let field = format!("certs.{name}");
        let bad = |message: String| invalid(text, path, cert_span(text, name), &field, message);
        if c.file.is_some() != c.key.is_some() {
            return Err(bad(
                "set both `file` (PEM chain) and `key` (PEM key), or neither (the lab CA then issues the certificate)".into(),
            ));
        }
        if c.file.is_some()
            && (c.cn.is_some()
                || c.san.is_some()
                || c.expired
                || c.not_yet_valid
                || c.eku != EkuName::Both
                || c.issuer != IssuerName::Lab
                || c.key_type != KeyName::Ecdsa)
        {
            return Err(bad(
                "a certificate loaded from `file` cannot also set cn, san, eku, expired, not_yet_valid, issuer or key_type; remove those keys or remove `file` and `key`".into(),
            ));
        }
        if c.file.is_none() && c.cn.is_none() && c.san.as_ref().is_none_or(Vec::is_empty) {
            return Err(bad(
                "the certificate names nothing: give it a `cn`, a `san` list, or both".into(),
            ));
        }
        if c.expired && c.not_yet_valid {
            return Err(bad(
                "`expired` and `not_yet_valid` cannot both be true; keep one".into(),
            ));
        }
    }
    if let Err(e) = crate::dns::ZoneSet::from_records(
        &s.dns
            .records
            .iter()
            .map(|r| r.to_spec(DEFAULT_SIP_TLS_PORT))
            .collect::<Vec<_>>(),
    ) {
        let span = text
            .find("[[dns.records]]")
            .or_else(|| text.find("[dns]"))
            .map_or(0..0, |i| i..i);
        return Err(invalid(text, path, span, "dns.records", e.to_string()));
    }
    if s.cases.is_empty() {
        return Err(invalid(
            text,
            path,
            text.len()..text.len(),
            "case",
            "the scenario has no [[case]]; add at least one (scenarios/README.md shows the keys)"
                .into(),
        ));
    }
    let mut names = BTreeSet::new();
    for case in &s.cases {
        let who = format!("case \"{}\"", case.name());
        if case.name().trim().is_empty() {
            return Err(invalid(
                text,
                path,
                case.name.span(),
                "case.name",
                "the case name is empty; give every case a short unique name".into(),
            ));
        }
        if !names.insert(case.name().to_owned()) {
            return Err(invalid(
                text,
                path,
                case.name.span(),
                "case.name",
                format!(
                    "two cases are named \"{}\"; give every case a unique name",
                    case.name()
                ),
            ));
        }
        if let Some(c) = &case.cert {
            check_cert(c, "case.cert", &who)?;
        }
        let direction = case.direction();
        fn span_of<T>(v: &Option<Spanned<T>>) -> Option<std::ops::Range<usize>> {
            v.as_ref().map(Spanned::span)
        }
        let direction_only = [
            (Direction::Inbound, "case.method", span_of(&case.method)),
            (
                Direction::Inbound,
                "case.request_uri",
                span_of(&case.request_uri),
            ),
            (Direction::Inbound, "case.to", span_of(&case.to)),
            (Direction::Inbound, "case.pai", span_of(&case.pai)),
            (Direction::Outbound, "case.target", span_of(&case.target)),
            (
                Direction::Outbound,
                "case.behaviour",
                span_of(&case.behaviour),
            ),
            (
                Direction::Outbound,
                "case.peer_ms_diagnostics",
                span_of(&case.peer_ms_diagnostics),
            ),
        ];
        for (for_dir, field, given) in direction_only {
            if let Some(span) = given
                && direction != for_dir
            {
                return Err(invalid(
                    text,
                    path,
                    span,
                    field,
                    format!(
                        "{who} is {direction}, but `{}` is only for {for_dir} cases; remove it or set direction = \"{for_dir}\"",
                        field.trim_start_matches("case.")
                    ),
                ));
            }
        }
        if let Some(d) = &case.peer_ms_diagnostics
            && !matches!(case.behaviour(), Behaviour::Answer(_))
        {
            return Err(invalid(
                text,
                path,
                d.span(),
                "case.peer_ms_diagnostics",
                format!(
                    "{who}: the peer can only put ms-diagnostics on an answer; set behaviour = \"answer <status>\" or remove it"
                ),
            ));
        }
        let missing = |field: &str, what: &str| {
            invalid(
                text,
                path,
                case.direction.span(),
                &format!("case.{field}"),
                format!("{who} is {direction} and needs `{field}` ({what}); add it to the case"),
            )
        };
        match direction {
            Direction::Inbound => {
                if case.from.is_none() {
                    return Err(missing(
                        "from",
                        "the Expressway caller, e.g. \"sip:2000@acano.steven.lab\"",
                    ));
                }
                if case.to.is_none() {
                    return Err(missing(
                        "to",
                        "the Skype user called, e.g. \"sip:stejanss@skype.lab\"",
                    ));
                }
                if let Some(m) = &case.method {
                    let upper = m.get_ref().to_ascii_uppercase();
                    if !INBOUND_METHODS.contains(&upper.as_str()) {
                        return Err(invalid(
                            text,
                            path,
                            m.span(),
                            "case.method",
                            format!(
                                "{who}: method `{}` is not sent by the emulated Expressway-E; use one of {}",
                                m.get_ref(),
                                INBOUND_METHODS.join(", ")
                            ),
                        ));
                    }
                }
            }
            Direction::Outbound => {
                if case.target.is_none() {
                    return Err(missing(
                        "target",
                        "the peer user or space called, e.g. \"sip:space@cms.steven.lab\"",
                    ));
                }
                if case.cert.is_none() && case.behaviour() != Behaviour::Refuse {
                    return Err(missing(
                        "cert",
                        "the certificate the peer server presents, a [certs.NAME]",
                    ));
                }
            }
        }
        if let Err(e) = super::lab::case_zones(&s.dns.records, case, DEFAULT_SIP_TLS_PORT) {
            return Err(invalid(
                text,
                path,
                case.name.span(),
                "case.dns",
                format!("{who}: {e}"),
            ));
        }
        let e = &case.expect;
        let expect_span = case.direction.span();
        if e.status.is_none() && e.handshake != Some(HandshakeExpect::Refused) {
            return Err(invalid(
                text,
                path,
                expect_span,
                "case.expect.status",
                format!(
                    "{who} expects nothing to compare; add `status` (e.g. 504) or `handshake = \"refused\"` to [case.expect]"
                ),
            ));
        }
        if e.status.is_some() && e.handshake == Some(HandshakeExpect::Refused) {
            return Err(invalid(
                text,
                path,
                expect_span,
                "case.expect.handshake",
                format!(
                    "{who} expects both a SIP status and a refused handshake; a refused handshake has no SIP response, so keep one"
                ),
            ));
        }
        if e.handshake == Some(HandshakeExpect::Refused) && direction == Direction::Outbound {
            return Err(invalid(
                text,
                path,
                expect_span,
                "case.expect.handshake",
                format!(
                    "{who} is outbound: the Edge does not refuse its own handshake; expect the status and ms-diagnostics the Skype client gets (e.g. status = 504, ms_diagnostics = 1047)"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[certs.vcse]
cn = "vcse.steven.lab"

[[case]]
name = "one"
direction = "inbound"
cert = "vcse"
from = "sip:2000@acano.steven.lab"
to = "sip:stejanss@skype.lab"
[case.expect]
status = 504
"#;

    fn parse(text: &str) -> Result<ScenarioFile, ScenarioError> {
        ScenarioFile::parse(text, Path::new("lab.toml"), None)
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("parsed"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn minimal_scenario_parses_with_defaults() {
        let f = parse(MINIMAL).unwrap();
        let s = &f.scenario;
        assert_eq!(s.edge.fqdn, "sip.skype.lab");
        assert!(s.policy.partner_discovery);
        assert_eq!(s.dns.timeout_ms, 2000);
        assert_eq!(s.cases.len(), 1);
        assert_eq!(s.cases[0].direction(), Direction::Inbound);
        assert_eq!(s.cases[0].expect.status, Some(504));
        assert_eq!(s.certs["vcse"].eku, EkuName::Both);
    }

    #[test]
    fn seed_lab_parses() {
        let f = crate::lab::scenario::seed_lab().unwrap();
        assert_eq!(f.scenario.cases.len(), 6);
    }

    #[test]
    fn unknown_key_in_a_case_names_file_line_case_and_field() {
        let text = MINIMAL.replace("status = 504", "status = 504\nresult = \"0x1\"");
        assert_eq!(
            error(&text),
            "lab.toml:13:1: case #1 \"one\": field `case.expect.result`: unknown field `result`, expected one of \
             `status`, `ms_diagnostics`, `result_code`, `log_data`, `handshake`, `explanation`\n  \
             hint: remove the key or correct its spelling; the valid keys are listed above"
        );
    }

    #[test]
    fn bad_direction_lists_the_choices() {
        let text = MINIMAL.replace("\"inbound\"", "\"in\"");
        assert_eq!(
            error(&text),
            "lab.toml:7:13: case #1 \"one\": field `case.direction`: unknown variant `in`, expected `inbound` or \
             `outbound`\n  hint: use one of the values listed above"
        );
    }

    #[test]
    fn undefined_certificate_points_at_the_reference() {
        let text = MINIMAL.replace("cert = \"vcse\"", "cert = \"vcse-fixed\"");
        assert_eq!(
            error(&text),
            "lab.toml:8:8: field `case.cert`: case \"one\" uses certificate `vcse-fixed`, which is not defined \
             (defined: vcse); add a [certs.vcse-fixed] table or use a defined name"
        );
    }

    #[test]
    fn outbound_field_in_an_inbound_case_is_refused() {
        let text = MINIMAL.replace("to = ", "behaviour = \"answer 404\"\nto = ");
        assert_eq!(
            error(&text),
            "lab.toml:10:13: field `case.behaviour`: case \"one\" is inbound, but `behaviour` is only for outbound \
             cases; remove it or set direction = \"outbound\""
        );
    }

    #[test]
    fn bad_behaviour_says_the_spellings() {
        let text = MINIMAL.replace("\"inbound\"", "\"outbound\"").replace(
            "to = \"sip:stejanss@skype.lab\"",
            "target = \"sip:space@cms.steven.lab\"\nbehaviour = \"hang up\"",
        );
        assert_eq!(
            error(&text),
            "lab.toml:11:13: case #1 \"one\": field `case.behaviour`: unknown behaviour `hang up`; expected one of \
             \"answer\" (200), \"answer 404\" (any status 100-699), \"reset-handshake\", \"close-after-handshake\", \
             \"silent\", \"refuse\"\n  hint: see scenarios/README.md for the format"
        );
    }

    #[test]
    fn missing_required_field_names_it() {
        let text = MINIMAL.replace("to = \"sip:stejanss@skype.lab\"\n", "");
        assert_eq!(
            error(&text),
            "lab.toml:7:13: field `case.to`: case \"one\" is inbound and needs `to` (the Skype user called, e.g. \
             \"sip:stejanss@skype.lab\"); add it to the case"
        );
    }

    #[test]
    fn expectation_is_required() {
        let text = MINIMAL.replace("status = 504", "");
        assert_eq!(
            error(&text),
            "lab.toml:7:13: field `case.expect.status`: case \"one\" expects nothing to compare; add `status` (e.g. \
             504) or `handshake = \"refused\"` to [case.expect]"
        );
    }

    #[test]
    fn duplicate_case_names_are_refused() {
        let second = &MINIMAL[MINIMAL.find("[[case]]").unwrap()..];
        let text = format!("{MINIMAL}{second}");
        assert_eq!(
            error(&text),
            "lab.toml:14:8: field `case.name`: two cases are named \"one\"; give every case a unique name"
        );
    }

    #[test]
    fn bad_dns_record_names_the_case() {
        let text = MINIMAL.replace(
            "[case.expect]",
            "dns = [{ name = \"vcse\", type = \"A\", address = \"127.0.0.1\" }]\n[case.expect]",
        );
        assert_eq!(
            error(&text),
            "lab.toml:6:8: field `case.dns`: case \"one\": dns.records: `vcse` has a single label, so no zone can \
             be inferred for it; write the full name, e.g. `vcse.steven.lab`, or put it in a `[[dns.zones]]` with \
             an origin"
        );
    }

    #[test]
    fn a_limit_out_of_range_is_refused_as_in_the_edge_configuration() {
        let text = format!("{MINIMAL}\n[limits]\nmax_connections = 0\n");
        let err = error(&text);
        assert!(
            err.ends_with(
                ": field `limits.max_connections`: 0 is out of range (0 does not mean \"off\"): give a number \
                 of concurrent connections from 1 to 1000000"
            ),
            "{err}"
        );
    }

    #[test]
    fn wrong_record_field_type() {
        let text = MINIMAL.replace(
            "[case.expect]",
            "dns = [{ name = \"vcse.steven.lab\", type = \"A\", address = \"localhost\" }]\n[case.expect]",
        );
        assert_eq!(
            error(&text),
            "lab.toml:11:48: case #1 \"one\": field `case.dns.address`: invalid IPv4 address syntax\n  \
             hint: see scenarios/README.md for the format"
        );
    }

    #[test]
    fn certificate_with_file_and_generated_fields_is_refused() {
        let text = MINIMAL.replace(
            "cn = \"vcse.steven.lab\"",
            "cn = \"vcse.steven.lab\"\nfile = \"vcse.pem\"\nkey = \"vcse.key\"",
        );
        assert_eq!(
            error(&text),
            "lab.toml:2:1: field `certs.vcse`: a certificate loaded from `file` cannot also set cn, san, eku, \
             expired, not_yet_valid, issuer or key_type; remove those keys or remove `file` and `key`"
        );
    }

    #[test]
    fn a_scenario_without_cases_is_refused() {
        assert_eq!(
            error("[edge]\nfqdn = \"sip.skype.lab\"\n"),
            "lab.toml:3:1: field `case`: the scenario has no [[case]]; add at least one (scenarios/README.md shows \
             the keys)"
        );
    }

    #[test]
    fn missing_certificate_file_names_the_table_and_key() {
        let text = MINIMAL.replace(
            "cn = \"vcse.steven.lab\"",
            "file = \"vcse.pem\"\nkey = \"vcse.key\"",
        );
        assert_eq!(
            ScenarioFile::parse(
                &text,
                Path::new("lab.toml"),
                Some(Path::new("/nonexistent"))
            )
            .unwrap_err()
            .to_string(),
            "lab.toml:2:1: field `certs.vcse.file`: /nonexistent/vcse.pem does not exist; give a path relative to \
             the scenario file's directory (/nonexistent)"
        );
    }

    #[test]
    fn port_zero_srv_takes_the_case_port_and_case_records_replace_base() {
        let base = vec![ScenarioRecord::Srv {
            name: "_sipfederationtls._tcp.cms.steven.lab".into(),
            priority: 0,
            weight: 0,
            port: 5061,
            target: "vcse.sub.cms.steven.lab".into(),
            ttl: None,
        }];
        let case = vec![ScenarioRecord::Srv {
            name: "_SIPFEDERATIONTLS._tcp.cms.steven.lab.".into(),
            priority: 0,
            weight: 0,
            port: 0,
            target: "vcse.cms.steven.lab".into(),
            ttl: None,
        }];
        let merged = merge_records(&base, &case);
        assert_eq!(merged.len(), 1);
        match merged[0].to_spec(40123) {
            RecordSpec::Srv { port, target, .. } => {
                assert_eq!(port, 40123);
                assert_eq!(target, "vcse.cms.steven.lab");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ms_diagnostics_expectation_forms() {
        let parse_expect = |v: &str| -> Expect {
            toml::from_str(&format!("status = 504\nms_diagnostics = {v}")).unwrap()
        };
        assert_eq!(
            parse_expect("1009").ms_diagnostics,
            Some(MsDiagExpect::Code {
                code: 1009,
                params: BTreeMap::new()
            })
        );
        assert_eq!(
            parse_expect("\"none\"").ms_diagnostics,
            Some(MsDiagExpect::Absent)
        );
        assert_eq!(
            parse_expect("'4005;reason=\"x\"'").ms_diagnostics,
            Some(MsDiagExpect::Exact("4005;reason=\"x\"".into()))
        );
        let table = parse_expect(
            "{ code = 1010, params = { HRESULT = \"0x80090325 (SEC_E_UNTRUSTED_ROOT)\" } }",
        );
        assert_eq!(table.ms_diagnostics.and_then(|d| d.code()), Some(1010));
    }
}
