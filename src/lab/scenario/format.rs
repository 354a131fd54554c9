//! The scenario file format (TOML, serde): the lab (Edge identity, policy, users, DNS, certificates) and its
//! `[[case]]` tables as written. Parsing is strict (`deny_unknown_fields`); [`super::parse`] turns the tables into
//! cases typed per direction ([`super::case`]) and reports every error with the file, line, field and fix.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::config::{Identity, Limits, PolicyConfig, UserConfig};
use crate::dns::{FaultKind, RecordSpec};

/// Which way a case's request goes: the rulebook's direction.
pub use crate::rules::Direction;

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
    /// A customer's federation settings as pasted `Get-CsAccessEdgeConfiguration` / `Get-CsAllowedDomain` /
    /// `Get-CsBlockedDomain` `Format-List` output (`serve --sfb-config`), relative to the scenario file.
    #[serde(default)]
    pub sfb_config: Vec<PathBuf>,
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
    /// The `[[case]]` tables as written; [`super::parse`] types them ([`super::ScenarioFile::cases`]).
    #[serde(default, rename = "case")]
    pub(super) entries: Vec<CaseEntry>,
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

/// One `[[case]]` table as written: the keys of both directions, each with where it stands in the file (which
/// key belongs to which direction is checked when it becomes a [`super::Case`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseEntry {
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
    /// Inbound SUBSCRIBE: the Accept header (comma-separated types); default what a Lync client sends.
    #[serde(default)]
    pub accept: Option<String>,
    /// Inbound SUBSCRIBE: the Expires asked for; default none (the Edge's default).
    #[serde(default)]
    pub expires: Option<u32>,
    /// Inbound SUBSCRIBE: advertise `ms-benotify` and `ms-piggyback-first-notify` (a Lync subscriber);
    /// default true. False: a Cisco IM and Presence subscriber.
    #[serde(default)]
    pub microsoft: Option<bool>,
    /// Inbound: send a session-mode IM with this first message (an INVITE with `m=message … sip null`).
    #[serde(default)]
    pub im: Option<String>,
    /// The expected outcome.
    pub expect: Expect,
}

impl CaseEntry {
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
    /// SUBSCRIBE: the granted `Expires` of the 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u32>,
    /// SUBSCRIBE: the first document's Content-Type (`application/pidf+xml`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// SUBSCRIBE: the availability the first state shows (`Available`, `Busy`, `Away`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<String>,
    /// SUBSCRIBE: the availability of the next NOTIFY/BENOTIFY (a scheduled change), waited for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub later_availability: Option<String>,
    /// IM: the replies the user sends, in order (`[]`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub im_replies: Option<Vec<String>>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
