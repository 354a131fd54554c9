//! `[[pool.members]]`: an Edge pool as Skype for Business deploys one — several members (listening addresses)
//! serving the same Edge, published in DNS either as one name with several A records (DNS load balancing) or as
//! several SRV targets with their own priority and weight (site failover) — and the fault mode each member
//! starts in. The faults file (`serve --faults FILE`, re-read on SIGUSR1) switches the modes at run time.
//!
//! Members that share a `target` (by default `edge.fqdn`) are one SRV record with one A record per member, so
//! they must agree on the port, the priority and the weight; members with a target of their own are SRV records
//! of their own. A member on port 0 that shares its target with an earlier member listens on that member's
//! port (one SRV record has one port).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::validate::Problem;
use super::{ConfigError, Hints, TomlFault, hint};

/// What a pool member does with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum FaultMode {
    /// Serve normally.
    #[default]
    #[serde(rename = "accept")]
    Accept,
    /// Accept TCP, then refuse the TLS handshake with a fatal `handshake_failure` alert.
    #[serde(rename = "refuse-tls")]
    RefuseTls,
    /// Accept TCP, then reset it (RST) at once.
    #[serde(rename = "reset")]
    Reset,
    /// Accept TCP and never answer (input read and dropped), until `limits.handshake_timeout_ms`, then close.
    #[serde(rename = "silent")]
    Silent,
    /// Complete TLS and answer every request `503 Service Unavailable` with Retry-After and ms-diagnostics 1090.
    #[serde(rename = "503")]
    Unavailable,
}

impl FaultMode {
    /// Every mode, in the order the documentation lists them.
    pub const ALL: [FaultMode; 5] = [
        FaultMode::Accept,
        FaultMode::RefuseTls,
        FaultMode::Reset,
        FaultMode::Silent,
        FaultMode::Unavailable,
    ];

    /// The mode as written in the configuration and the faults file.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultMode::Accept => "accept",
            FaultMode::RefuseTls => "refuse-tls",
            FaultMode::Reset => "reset",
            FaultMode::Silent => "silent",
            FaultMode::Unavailable => "503",
        }
    }

    /// What a peer meets on a new connection, in words.
    pub fn describe(self) -> &'static str {
        match self {
            FaultMode::Accept => "served normally",
            FaultMode::RefuseTls => {
                "TCP accepted, the TLS handshake refused with a fatal handshake_failure alert"
            }
            FaultMode::Reset => "TCP accepted, then reset (RST)",
            FaultMode::Silent => {
                "TCP accepted, never answered (closed after limits.handshake_timeout_ms)"
            }
            FaultMode::Unavailable => {
                "TLS completed, every request answered 503 Service Unavailable with Retry-After and ms-diagnostics 1090"
            }
        }
    }
}

impl std::fmt::Display for FaultMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FaultMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultMode::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("`{s}` is not a fault mode: use accept, refuse-tls, reset, silent or 503")
            })
    }
}

/// `[pool]`: the members of the Edge pool (none: one Edge on `serve --listen`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// `[[pool.members]]`, in order.
    pub members: Vec<PoolMemberConfig>,
}

/// One `[[pool.members]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolMemberConfig {
    /// Where the member listens (TLS SIP), e.g. `127.0.0.2:5061`; port 0 picks one.
    pub listen: SocketAddr,
    /// The SRV target (and A record name) the member is published under; default `edge.fqdn`.
    #[serde(default)]
    pub target: Option<String>,
    /// SRV priority (lower is tried first).
    #[serde(default)]
    pub priority: u16,
    /// SRV weight among targets of the same priority.
    #[serde(default)]
    pub weight: u16,
    /// The fault mode the member starts in.
    #[serde(default)]
    pub fault: FaultMode,
}

impl PoolMemberConfig {
    /// A member on `listen` under the Edge's FQDN, priority and weight 0, accepting.
    pub fn new(listen: SocketAddr) -> Self {
        PoolMemberConfig {
            listen,
            target: None,
            priority: 0,
            weight: 0,
            fault: FaultMode::Accept,
        }
    }

    /// The member's target: its own, else `fqdn`, lower-case without the final dot.
    pub fn target_or<'a>(&'a self, fqdn: &'a str) -> String {
        self.target
            .as_deref()
            .unwrap_or(fqdn)
            .trim_end_matches('.')
            .to_ascii_lowercase()
    }
}

/// The `[[pool.members]]` checks: no two members on one address, a target a DNS name of two labels or more,
/// and members of one target agreeing on port, priority and weight (they are one SRV record).
pub fn check(pool: &PoolConfig, fqdn: &str) -> Result<(), Problem> {
    let problem = |i: usize, key: &str, message: String| Problem {
        field: format!("pool.members[{i}].{key}"),
        message,
    };
    let mut first_of: BTreeMap<String, usize> = BTreeMap::new();
    for (i, m) in pool.members.iter().enumerate() {
        if let Some(j) = pool.members[..i]
            .iter()
            .position(|o| o.listen == m.listen && m.listen.port() != 0)
        {
            return Err(problem(
                i,
                "listen",
                format!(
                    "{} is also pool.members[{j}].listen: give each member its own address (127.0.0.2, 127.0.0.3, … work on Linux loopback without set-up)",
                    m.listen
                ),
            ));
        }
        let target = m.target_or(fqdn);
        if target.split('.').filter(|l| !l.is_empty()).count() < 2 {
            return Err(problem(
                i,
                "target",
                format!(
                    "`{target}` is not a DNS name of two labels or more: write the member's full name, e.g. `sip2.skype.lab`"
                ),
            ));
        }
        let Some(&j) = first_of.get(&target) else {
            first_of.insert(target, i);
            continue;
        };
        let first = &pool.members[j];
        let same_port = m.listen.port() == 0 || m.listen.port() == first.listen.port();
        let mismatch = if !same_port {
            Some(("listen", format!("port {}", first.listen.port())))
        } else if m.priority != first.priority {
            Some(("priority", format!("priority {}", first.priority)))
        } else if m.weight != first.weight {
            Some(("weight", format!("weight {}", first.weight)))
        } else {
            None
        };
        if let Some((key, wanted)) = mismatch {
            return Err(problem(
                i,
                key,
                format!(
                    "this member shares the target {target} with pool.members[{j}], which has {wanted}: members of one target are one SRV record (one A record each), so give it the same {key}, or a target of its own (e.g. target = \"sip{}.{}\") for an SRV record of its own",
                    i + 1,
                    target.split_once('.').map_or(target.as_str(), |(_, d)| d)
                ),
            ));
        }
    }
    Ok(())
}

/// Most bytes read from a faults file: it names a few members.
const MAX_FAULTS_BYTES: u64 = 64 * 1024;

/// The faults file's fixes.
const FAULT_HINTS: &Hints = &[
    hint::UNKNOWN_VARIANT,
    hint::INVALID_TYPE,
    hint::DUPLICATE,
    (
        "expected",
        "write one line per member: \"127.0.0.2:5061\" = \"503\"",
    ),
];

/// Reads a faults file: one `"<member>" = "<mode>"` line per member (the member as its `ip:port` or its `ip`),
/// in file order. Members it does not name are back in their configured mode.
pub fn read_faults(path: &Path) -> Result<Vec<(String, FaultMode)>, ConfigError> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FAULTS_BYTES + 1).read_to_string(&mut text))
        .map_err(|cause| ConfigError::Io {
            path: path.to_owned(),
            cause,
        })?;
    if text.len() as u64 > MAX_FAULTS_BYTES {
        return Err(ConfigError::Invalid {
            path: path.to_owned(),
            field: "(file)".into(),
            message: format!(
                "larger than {MAX_FAULTS_BYTES} bytes: a faults file names a few members, one line each"
            ),
        });
    }
    parse_faults(&text, path)
}

/// Parses a faults file's text; `path` labels errors.
pub fn parse_faults(text: &str, path: &Path) -> Result<Vec<(String, FaultMode)>, ConfigError> {
    let table: toml::Table = parse(text, path)?;
    let mut out = Vec::new();
    for (member, value) in table {
        let (member, value) = match flatten(&member, &value) {
            Some((dotted, leaf)) if value.is_table() => {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    field: dotted.clone(),
                    message: format!(
                        "the member is not quoted, so TOML reads its dots as nested keys: write \"{dotted}\" = {leaf}"
                    ),
                });
            }
            _ => (member, value),
        };
        let mode = value
            .as_str()
            .ok_or_else(|| format!("`{value}` is not a quoted mode"))
            .and_then(|s| s.parse::<FaultMode>())
            .map_err(|message| ConfigError::Invalid {
                path: path.to_owned(),
                field: member.clone(),
                message: format!("{message}; write e.g. \"{member}\" = \"503\""),
            })?;
        out.push((member, mode));
    }
    Ok(out)
}

/// `a = { b = { c = v } }` (what TOML makes of an unquoted `a.b.c = v`) as `("a.b.c", v)`; `None` when a table
/// holds more than one key.
fn flatten(key: &str, value: &toml::Value) -> Option<(String, toml::Value)> {
    match value {
        toml::Value::Table(t) if t.len() == 1 => {
            let (k, v) = t.iter().next()?;
            flatten(&format!("{key}.{k}"), v)
        }
        toml::Value::Table(_) => None,
        leaf => Some((key.to_owned(), leaf.clone())),
    }
}

fn parse<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let fault = TomlFault::new(
            text,
            &e,
            FAULT_HINTS,
            "write one line per member: \"127.0.0.2:5061\" = \"503\"",
        );
        ConfigError::Parse {
            path: path.to_owned(),
            line: fault.line,
            column: fault.column,
            field: fault.field,
            message: fault.message,
            hint: fault.hint,
        }
    })
}

/// The faults file `serve` re-reads on SIGUSR1, with a comment that says how to write it.
pub fn faults_file_help(path: &Path, members: &[SocketAddr]) -> String {
    let example = members
        .first()
        .map_or("127.0.0.2:5061".to_owned(), ToString::to_string);
    format!(
        "pool faults: edit {} (one line per member, e.g. \"{example}\" = \"503\"; modes accept, refuse-tls, reset, silent, 503) and send SIGUSR1 (kill -USR1 {}) to apply it",
        path.display(),
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(text: &str) -> Result<PoolConfig, String> {
        #[derive(Deserialize)]
        struct W {
            pool: PoolConfig,
        }
        let w: W = toml::from_str(text).map_err(|e| e.to_string())?;
        check(&w.pool, "sip.skype.lab").map_err(|p| format!("`{}`: {}", p.field, p.message))?;
        Ok(w.pool)
    }

    #[test]
    fn modes_read_and_print_as_written() {
        for m in FaultMode::ALL {
            assert_eq!(m.as_str().parse::<FaultMode>(), Ok(m));
        }
        assert_eq!(
            " REFUSE-TLS ".parse::<FaultMode>(),
            Ok(FaultMode::RefuseTls)
        );
        assert_eq!(
            "down".parse::<FaultMode>().unwrap_err(),
            "`down` is not a fault mode: use accept, refuse-tls, reset, silent or 503"
        );
    }

    #[test]
    fn members_of_one_target_must_agree() {
        let p = pool(
            "[[pool.members]]\nlisten = \"127.0.0.2:5061\"\n[[pool.members]]\nlisten = \"127.0.0.3:5061\"\nfault = \"503\"\n",
        )
        .unwrap();
        assert_eq!(p.members[1].fault, FaultMode::Unavailable);
        assert_eq!(p.members[0].target_or("SIP.skype.lab."), "sip.skype.lab");
        assert_eq!(
            pool("[[pool.members]]\nlisten = \"127.0.0.2:5061\"\n[[pool.members]]\nlisten = \"127.0.0.3:5061\"\npriority = 10\n").unwrap_err(),
            "`pool.members[1].priority`: this member shares the target sip.skype.lab with pool.members[0], which has priority 0: members of one target are one SRV record (one A record each), so give it the same priority, or a target of its own (e.g. target = \"sip2.skype.lab\") for an SRV record of its own"
        );
        assert_eq!(
            pool("[[pool.members]]\nlisten = \"127.0.0.2:5061\"\n[[pool.members]]\nlisten = \"127.0.0.3:5062\"\n").unwrap_err(),
            "`pool.members[1].listen`: this member shares the target sip.skype.lab with pool.members[0], which has port 5061: members of one target are one SRV record (one A record each), so give it the same listen, or a target of its own (e.g. target = \"sip2.skype.lab\") for an SRV record of its own"
        );
        assert_eq!(
            pool("[[pool.members]]\nlisten = \"127.0.0.2:5061\"\n[[pool.members]]\nlisten = \"127.0.0.2:5061\"\ntarget = \"sip2.skype.lab\"\n").unwrap_err(),
            "`pool.members[1].listen`: 127.0.0.2:5061 is also pool.members[0].listen: give each member its own address (127.0.0.2, 127.0.0.3, … work on Linux loopback without set-up)"
        );
        assert_eq!(
            pool("[[pool.members]]\nlisten = \"127.0.0.2:5061\"\ntarget = \"sip2\"\n").unwrap_err(),
            "`pool.members[0].target`: `sip2` is not a DNS name of two labels or more: write the member's full name, e.g. `sip2.skype.lab`"
        );
        // Own targets: own priorities, own ports.
        pool("[[pool.members]]\nlisten = \"127.0.0.2:5061\"\ntarget = \"sip1.skype.lab\"\n[[pool.members]]\nlisten = \"127.0.0.3:5062\"\ntarget = \"sip2.skype.lab\"\npriority = 20\n").unwrap();
    }

    #[test]
    fn faults_files_name_line_and_fix() {
        let path = Path::new("faults.toml");
        assert_eq!(
            parse_faults("\"127.0.0.2:5061\" = \"503\"\n127 = \"accept\"\n", path).unwrap(),
            vec![
                ("127".to_owned(), FaultMode::Accept),
                ("127.0.0.2:5061".to_owned(), FaultMode::Unavailable),
            ]
        );
        assert_eq!(
            parse_faults("\"127.0.0.2:5061\" = \"down\"\n", path)
                .unwrap_err()
                .to_string(),
            "faults.toml: `127.0.0.2:5061`: `down` is not a fault mode: use accept, refuse-tls, reset, silent or 503; write e.g. \"127.0.0.2:5061\" = \"503\""
        );
        assert_eq!(
            parse_faults("127.0.0.2 = \"503\"\n", path)
                .unwrap_err()
                .to_string(),
            "faults.toml: `127.0.0.2`: the member is not quoted, so TOML reads its dots as nested keys: write \"127.0.0.2\" = \"503\""
        );
        let e = parse_faults("127.0.0.2:5061 = 503\n", path)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("faults.toml:1:"), "{e}");
        assert!(e.contains("hint: "), "{e}");
    }
}
