//! Zone data for the embedded DNS server: records from configuration (TOML) or master files, grouped into
//! zones, with injected faults.
//!
//! Zone inference, when records come without a zone: a record belongs to the longest explicit zone origin
//! (an SOA owner in a zone file, or `Zone::origin`) that contains it; otherwise to the zone named by the last
//! two labels of its name (`_sipfederationtls._tcp.acano.steven.lab` → `steven.lab`). A zone without an
//! SOA gets a synthesized one (`ns.<origin>`, `hostmaster.<origin>`, serial 1, negative TTL 60 s by default).
//! An SRV target may be `.` (RFC 2782: "service decidedly not available").

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::{LexerError, ParseError, Parser};
use serde::Deserialize;

/// TTL of a configured record when the configuration gives none.
pub const DEFAULT_TTL: u32 = 60;

/// Negative TTL (SOA minimum) of a synthesized SOA unless changed with [`ZoneSet::with_negative_ttl`].
pub const DEFAULT_NEGATIVE_TTL: u32 = 60;

fn default_ttl() -> u32 {
    DEFAULT_TTL
}

/// One configured record, as written in TOML: `[[dns.records]] name="…" type="SRV" priority=0 weight=0 port=5061 target="…"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(tag = "type", rename_all = "UPPERCASE", deny_unknown_fields)]
pub enum RecordSpec {
    /// `type="SRV"`: priority, weight (both default 0, as in scenario files), port, target.
    Srv {
        name: String,
        #[serde(default)]
        priority: u16,
        #[serde(default)]
        weight: u16,
        port: u16,
        target: String,
        #[serde(default = "default_ttl")]
        ttl: u32,
    },
    /// `type="A"`: an IPv4 address.
    A {
        name: String,
        address: Ipv4Addr,
        #[serde(default = "default_ttl")]
        ttl: u32,
    },
    /// `type="AAAA"`: an IPv6 address.
    Aaaa {
        name: String,
        address: Ipv6Addr,
        #[serde(default = "default_ttl")]
        ttl: u32,
    },
    /// `type="CNAME"`: an alias to `target`.
    Cname {
        name: String,
        target: String,
        #[serde(default = "default_ttl")]
        ttl: u32,
    },
    /// `type="TXT"`: one character string.
    Txt {
        name: String,
        text: String,
        #[serde(default = "default_ttl")]
        ttl: u32,
    },
    /// `type="FAULT"`: queries for `name` and every name below it get `kind` instead of an answer.
    Fault { name: String, kind: FaultKind },
}

/// What a faulty name does to a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// Answer SERVFAIL.
    Servfail,
    /// Answer REFUSED.
    Refused,
    /// Never answer (the client times out).
    Drop,
}

impl FaultKind {
    /// What the server does, in words.
    pub fn describe(self) -> &'static str {
        match self {
            FaultKind::Servfail => "answered SERVFAIL",
            FaultKind::Refused => "answered REFUSED",
            FaultKind::Drop => "never answered (the client times out)",
        }
    }
}

/// A zone with an explicit origin; its records must lie at or below the origin.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    /// The zone apex, e.g. `acano.steven.lab`.
    pub origin: String,
    /// Records of the zone.
    #[serde(default)]
    pub records: Vec<RecordSpec>,
}

/// The `[dns]` section of a lab configuration: explicit zones, loose records (zones inferred), zone files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsZonesConfig {
    /// `[[dns.zones]]` with an origin each.
    #[serde(default)]
    pub zones: Vec<Zone>,
    /// `[[dns.records]]`; their zones are inferred.
    #[serde(default)]
    pub records: Vec<RecordSpec>,
    /// Master files, relative to the configuration file's directory.
    #[serde(default)]
    pub zone_files: Vec<PathBuf>,
}

/// Why zone data could not be built; each message names where and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    /// The zone file could not be read.
    #[error("cannot read zone file {path}: {cause}; check the path and its permissions")]
    Io {
        path: PathBuf,
        // Not `source`: the message includes it, and anyhow would print it a second time.
        cause: std::io::Error,
    },
    /// A line of a zone file does not parse.
    #[error(
        "{path}:{line}: {message}; fix that line (master-file syntax: `NAME [TTL] [IN] TYPE DATA`, e.g. `vcse 60 IN A 127.0.0.1`)"
    )]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A name is not a valid domain name.
    #[error(
        "{context}: `{name}` is not a valid domain name ({reason}); write it like `vcse.acano.steven.lab`"
    )]
    BadName {
        context: String,
        name: String,
        reason: String,
    },
    /// A record name has a single label, so no zone can be inferred for it.
    #[error(
        "{context}: `{name}` has a single label, so no zone can be inferred for it; write the full name, e.g. `{name}.steven.lab`, or put it in a `[[dns.zones]]` with an origin"
    )]
    SingleLabel { context: String, name: String },
    /// A record of an explicit zone lies outside that zone.
    #[error(
        "dns.zones (origin `{origin}`): record `{name}` is not inside the zone; move it to `[[dns.records]]` or a zone whose origin it ends with"
    )]
    OutsideZone { origin: String, name: String },
    /// A record type the Edge's zones do not carry.
    #[error(
        "{context}: record type {rtype} of `{name}` is not supported; use SOA, NS, A, AAAA, SRV, CNAME or TXT"
    )]
    UnsupportedType {
        context: String,
        name: String,
        rtype: String,
    },
}

/// Zone data ready to serve: records grouped into zones when the server starts, plus injected faults.
#[derive(Debug, Clone)]
pub struct ZoneSet {
    explicit_origins: Vec<Name>,
    records: Vec<Record>,
    faults: Vec<(Name, FaultKind)>,
    negative_ttl: u32,
}

impl Default for ZoneSet {
    fn default() -> Self {
        Self::new()
    }
}

/// One zone as it will be served.
#[derive(Debug, Clone)]
pub struct BuiltZone {
    /// The apex.
    pub origin: Name,
    /// All records, SOA first.
    pub records: Vec<Record>,
}

pub(super) fn parse_name(context: &str, name: &str) -> Result<Name, ZoneError> {
    let trimmed = name.trim().trim_end_matches('.');
    let mut parsed = Name::from_str(trimmed).map_err(|e| ZoneError::BadName {
        context: context.to_string(),
        name: name.to_string(),
        reason: e.to_string(),
    })?;
    if trimmed.is_empty() {
        return Err(ZoneError::BadName {
            context: context.to_string(),
            name: name.to_string(),
            reason: "empty".to_string(),
        });
    }
    parsed.set_fqdn(true);
    Ok(parsed.to_lowercase())
}

/// An SRV target: a name, or `.` (RFC 2782: the service is decidedly not available at this domain).
fn srv_target(context: &str, target: &str) -> Result<Name, ZoneError> {
    if target.trim() == "." {
        return Ok(Name::root());
    }
    parse_name(context, target)
}

/// Splits text into DNS character-strings (at most 255 bytes each, on character boundaries).
fn txt_strings(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for c in text.chars() {
        if out.last().is_some_and(|s| s.len() + c.len_utf8() > 255) {
            out.push(String::new());
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

/// The zone inferred for a name: its last two labels.
fn inferred_origin(name: &Name) -> Name {
    name.trim_to(2)
}

impl ZoneSet {
    /// An empty zone set.
    pub fn new() -> Self {
        Self {
            explicit_origins: Vec::new(),
            records: Vec::new(),
            faults: Vec::new(),
            negative_ttl: DEFAULT_NEGATIVE_TTL,
        }
    }

    /// Sets the negative TTL (SOA minimum and TTL) of synthesized SOAs; tests use 1 s.
    pub fn with_negative_ttl(mut self, secs: u32) -> Self {
        self.negative_ttl = secs;
        self
    }

    /// Zones inferred from loose records (see the module docs for the rule).
    pub fn from_records(records: &[RecordSpec]) -> Result<Self, ZoneError> {
        let mut set = Self::new();
        set.add_records("dns.records", None, records)?;
        Ok(set)
    }

    /// Explicit zones.
    pub fn from_zones(zones: &[Zone]) -> Result<Self, ZoneError> {
        let mut set = Self::new();
        for zone in zones {
            set.add_zone(zone)?;
        }
        Ok(set)
    }

    /// Everything in a `[dns]` section; relative zone file paths are taken from `base_dir`.
    pub fn from_config(
        config: &DnsZonesConfig,
        base_dir: Option<&Path>,
    ) -> Result<Self, ZoneError> {
        let mut set = Self::from_zones(&config.zones)?;
        set.add_records("dns.records", None, &config.records)?;
        for file in &config.zone_files {
            let path = match base_dir {
                Some(dir) if file.is_relative() => dir.join(file),
                _ => file.clone(),
            };
            set.merge(Self::from_zone_file(&path)?);
        }
        Ok(set)
    }

    /// Reads a master file ($ORIGIN, $TTL, SOA, NS, A, AAAA, SRV, CNAME, TXT, comments, parentheses). A file may
    /// hold several zones (one SOA each) and records of zones without an SOA (zones inferred).
    pub fn from_zone_file(path: impl AsRef<Path>) -> Result<Self, ZoneError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|cause| ZoneError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::from_zone_text(&text, path)
    }

    /// Parses master-file text; `path` names the file in errors.
    pub fn from_zone_text(text: &str, path: &Path) -> Result<Self, ZoneError> {
        let parsed = parse_master(text, path)?;
        let context = path.display().to_string();
        let mut set = Self::new();
        for rrset in parsed.values() {
            for record in rrset.records_without_rrsigs() {
                match record.record_type() {
                    RecordType::SOA => set.explicit_origins.push(record.name.to_lowercase()),
                    RecordType::NS
                    | RecordType::A
                    | RecordType::AAAA
                    | RecordType::SRV
                    | RecordType::CNAME
                    | RecordType::TXT => {}
                    other => {
                        return Err(ZoneError::UnsupportedType {
                            context,
                            name: record.name.to_string(),
                            rtype: other.to_string(),
                        });
                    }
                }
                let min_labels = if record.record_type() == RecordType::SOA {
                    1
                } else {
                    2
                };
                if record.name.num_labels() < min_labels {
                    return Err(ZoneError::SingleLabel {
                        context,
                        name: record.name.to_string(),
                    });
                }
                let mut record = record.clone();
                record.name = record.name.to_lowercase();
                set.records.push(record);
            }
        }
        Ok(set)
    }

    /// Adds everything of `other` (its negative TTL is ignored).
    pub fn merge(&mut self, other: ZoneSet) {
        self.explicit_origins.extend(other.explicit_origins);
        self.records.extend(other.records);
        self.faults.extend(other.faults);
    }

    /// Adds an explicit zone.
    pub fn add_zone(&mut self, zone: &Zone) -> Result<(), ZoneError> {
        let context = format!("dns.zones (origin `{}`)", zone.origin);
        let origin = parse_name(&context, &zone.origin)?;
        self.explicit_origins.push(origin.clone());
        self.add_records(&context, Some(&origin), &zone.records)
    }

    /// Adds one record; `context` names where it came from in errors.
    pub fn add_record(&mut self, context: &str, spec: &RecordSpec) -> Result<(), ZoneError> {
        self.add_records(context, None, std::slice::from_ref(spec))
    }

    fn add_records(
        &mut self,
        context: &str,
        origin: Option<&Name>,
        specs: &[RecordSpec],
    ) -> Result<(), ZoneError> {
        for spec in specs {
            let (name, ttl, rdata) = match spec {
                RecordSpec::Srv {
                    name,
                    priority,
                    weight,
                    port,
                    target,
                    ttl,
                } => (
                    name,
                    *ttl,
                    RData::SRV(SRV::new(
                        *priority,
                        *weight,
                        *port,
                        srv_target(context, target)?,
                    )),
                ),
                RecordSpec::A { name, address, ttl } => (name, *ttl, RData::A(A(*address))),
                RecordSpec::Aaaa { name, address, ttl } => {
                    (name, *ttl, RData::AAAA(AAAA(*address)))
                }
                RecordSpec::Cname { name, target, ttl } => (
                    name,
                    *ttl,
                    RData::CNAME(CNAME(parse_name(context, target)?)),
                ),
                RecordSpec::Txt { name, text, ttl } => {
                    (name, *ttl, RData::TXT(TXT::new(txt_strings(text))))
                }
                RecordSpec::Fault { name, kind } => {
                    let parsed = parse_name(context, name)?;
                    self.faults.push((parsed, *kind));
                    continue;
                }
            };
            let owner = parse_name(context, name)?;
            if let Some(origin) = origin {
                if !origin.zone_of(&owner) {
                    return Err(ZoneError::OutsideZone {
                        origin: origin.to_string(),
                        name: name.clone(),
                    });
                }
            } else if owner.num_labels() < 2 {
                return Err(ZoneError::SingleLabel {
                    context: context.to_string(),
                    name: name.clone(),
                });
            }
            self.records.push(Record::from_rdata(owner, ttl, rdata));
        }
        Ok(())
    }

    /// Adds one built record (the Edge's own records).
    pub(super) fn push_record(&mut self, record: Record) {
        self.records.push(record);
    }

    /// True when a record of `name` with one of `types` is in the set.
    pub(super) fn defines(&self, name: &Name, types: &[RecordType]) -> bool {
        self.records
            .iter()
            .any(|r| r.name == *name && types.contains(&r.record_type()))
    }

    /// Every record served, one line each (`NAME TTL IN TYPE DATA`), zone by zone with the zone's SOA first,
    /// then the faults; empty when nothing is served.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for zone in self.zones() {
            lines.push(format!("zone {}", zone.origin));
            lines.extend(zone.records.iter().map(|r| format!("  {r}")));
        }
        for (name, kind) in &self.faults {
            lines.push(format!("fault {name}: {}", kind.describe()));
        }
        lines
    }

    /// The zone origins served, in canonical order.
    pub fn origins(&self) -> Vec<Name> {
        self.zones().into_iter().map(|z| z.origin).collect()
    }

    /// Injects a fault for `name` and every name below it.
    pub fn add_fault(&mut self, name: &str, kind: FaultKind) -> Result<(), ZoneError> {
        let parsed = parse_name("fault", name)?;
        self.faults.push((parsed, kind));
        Ok(())
    }

    /// The injected faults.
    pub fn faults(&self) -> &[(Name, FaultKind)] {
        &self.faults
    }

    /// The zones as they will be served, in DNS canonical order (a subzone after its parent), each with an SOA first.
    pub fn zones(&self) -> Vec<BuiltZone> {
        let mut origins: Vec<Name> = self.explicit_origins.clone();
        for record in &self.records {
            if !origins.iter().any(|o| o.zone_of(&record.name)) {
                origins.push(inferred_origin(&record.name));
            }
        }
        origins.sort();
        origins.dedup();
        let mut zones: BTreeMap<Name, Vec<Record>> =
            origins.iter().map(|o| (o.clone(), Vec::new())).collect();
        for record in &self.records {
            let home = origins
                .iter()
                .filter(|o| {
                    if record.record_type() == RecordType::SOA {
                        **o == record.name
                    } else {
                        o.zone_of(&record.name)
                    }
                })
                .max_by_key(|o| o.num_labels());
            if let Some(list) = home.and_then(|o| zones.get_mut(o)) {
                list.push(record.clone());
            }
        }
        zones
            .into_iter()
            .map(|(origin, mut records)| {
                // The last SOA given wins; without one, synthesize.
                let soa = records
                    .iter()
                    .rev()
                    .find(|r| r.record_type() == RecordType::SOA)
                    .cloned()
                    .unwrap_or_else(|| self.synthesized_soa(&origin));
                records.retain(|r| r.record_type() != RecordType::SOA);
                records.insert(0, soa);
                BuiltZone { origin, records }
            })
            .collect()
    }

    fn synthesized_soa(&self, origin: &Name) -> Record {
        let label = |l: &str| Name::from_str(l).and_then(|n| n.append_domain(origin));
        let mname = label("ns").unwrap_or_else(|_| origin.clone());
        let rname = label("hostmaster").unwrap_or_else(|_| origin.clone());
        let soa = SOA::new(mname, rname, 1, 3600, 600, 86400, self.negative_ttl);
        Record::from_rdata(origin.clone(), self.negative_ttl, RData::SOA(soa))
    }
}

/// Finds the line of a parse error by parsing ever longer prefixes: the first prefix that fails with
/// something other than "input ended early" ends at the bad line. Zone files are small, so this is cheap.
fn parse_master(
    text: &str,
    path: &Path,
) -> Result<BTreeMap<hickory_proto::rr::RrKey, hickory_proto::rr::RecordSet>, ZoneError> {
    // Root as the starting origin, so files of absolute names need no $ORIGIN; relative names before any
    // $ORIGIN then come out as single labels, which `from_zone_text` rejects with a hint.
    let parse = |input: &str| {
        Parser::new(
            input.to_string(),
            Some(path.to_path_buf()),
            Some(Name::root()),
        )
        .parse()
    };
    let full_error = match parse(text) {
        Ok((_, records)) => return Ok(records),
        Err(e) => e,
    };
    let incomplete = |e: &ParseError| {
        matches!(
            e,
            ParseError::Lexer(LexerError::EOF)
                | ParseError::Lexer(LexerError::UnclosedList)
                | ParseError::Lexer(LexerError::UnclosedQuotedString)
        )
    };
    let line_ends: Vec<usize> = text
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .chain(std::iter::once(text.len()))
        .collect();
    let mut line = line_ends.len();
    for (index, end) in line_ends.iter().enumerate() {
        if let Err(e) = parse(&text[..*end])
            && !incomplete(&e)
        {
            line = index + 1;
            break;
        }
    }
    Err(ZoneError::Parse {
        path: path.to_path_buf(),
        line,
        message: full_error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_txt_is_split_into_character_strings() {
        let text = "é".repeat(200);
        let parts = txt_strings(&text);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.len() <= 255));
        assert_eq!(parts.concat(), text);
        assert_eq!(txt_strings(""), vec![String::new()]);
    }

    #[test]
    fn describe_lists_every_record_or_nothing() {
        assert!(ZoneSet::new().describe().is_empty());
        let mut set = ZoneSet::from_records(&[RecordSpec::Srv {
            name: "_sipfederationtls._tcp.dot.lab".into(),
            priority: 0,
            weight: 0,
            port: 0,
            target: ".".into(),
            ttl: 60,
        }])
        .unwrap();
        set.add_fault("drop.lab", FaultKind::Drop).unwrap();
        let lines = set.describe();
        assert_eq!(lines[0], "zone dot.lab.");
        assert!(
            lines[1].starts_with("  dot.lab. 60 IN SOA ns.dot.lab."),
            "{lines:?}"
        );
        assert_eq!(
            lines[2],
            "  _sipfederationtls._tcp.dot.lab. 60 IN SRV 0 0 0 ."
        );
        assert_eq!(
            lines[3],
            "fault drop.lab.: never answered (the client times out)"
        );
    }

    #[test]
    fn inferred_origin_is_the_last_two_labels() {
        let name = Name::from_str("_sipfederationtls._tcp.acano.steven.lab.").unwrap();
        assert_eq!(inferred_origin(&name).to_string(), "steven.lab.");
    }
}
