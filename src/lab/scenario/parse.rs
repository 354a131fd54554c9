//! Reading a scenario file: serde's parse, then the checks serde cannot express (references, ranges, what each
//! direction needs) and the cases typed per direction; every error names the file, the line, the field and the
//! fix (serde's through toml's span, the others through [`toml::Spanned`] values).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::ScenarioError;
use super::case::Case;
use super::format::{DEFAULT_SIP_TLS_PORT, EkuName, IssuerName, KeyName, Scenario};
use crate::config::{Hints, TomlFault, hint, line_col};

/// A parsed scenario with where it came from.
#[derive(Debug, Clone)]
pub struct ScenarioFile {
    /// The file, as given (or `scenarios/seed-lab.toml (embedded)`).
    pub path: PathBuf,
    /// Where relative certificate paths start; `None` for embedded scenarios.
    pub base_dir: Option<PathBuf>,
    /// The lab (the `[[case]]` tables are in `cases`, typed).
    pub scenario: Scenario,
    /// The cases, typed per direction, in file order.
    pub cases: Vec<Case>,
    /// The federation settings in force: `[policy]`, joined by the `sfb_config` files.
    pub federation: crate::config::FederationSettings,
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

/// `sfb_config`: the pasted files read as `serve --sfb-config` reads them, joined to `[policy]` (which then
/// holds the lists and discovery in force, as an Edge configuration does).
fn pasted_federation(
    scenario: &mut Scenario,
    path: &Path,
    base_dir: Option<&Path>,
) -> Result<crate::config::FederationSettings, ScenarioError> {
    let mut cfg = crate::config::EdgeConfig {
        federation: crate::config::FederationSettings::from_policy(&scenario.policy),
        policy: scenario.policy.clone(),
        ..crate::config::EdgeConfig::default()
    };
    if scenario.sfb_config.is_empty() {
        return Ok(cfg.federation);
    }
    let files: Vec<PathBuf> = scenario
        .sfb_config
        .iter()
        .map(|f| base_dir.map_or_else(|| f.clone(), |b| b.join(f)))
        .collect();
    cfg.apply_sfb_files(&files, Some(path))
        .map_err(|e| ScenarioError::Lab {
            path: path.to_owned(),
            message: format!("sfb_config: {e}"),
        })?;
    scenario.policy = cfg.policy;
    Ok(cfg.federation)
}

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
        let mut scenario = scenario;
        let cases = validate(&scenario, text, path)?;
        check_files(&scenario, text, path, base_dir)?;
        scenario.entries = Vec::new();
        let federation = pasted_federation(&mut scenario, path, base_dir)?;
        Ok(ScenarioFile {
            path: path.to_owned(),
            base_dir: base_dir.map(Path::to_owned),
            scenario,
            cases,
            federation,
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

/// The checks serde cannot express, each pointing at the offending value, and the cases typed per direction.
fn validate(s: &Scenario, text: &str, path: &Path) -> Result<Vec<Case>, ScenarioError> {
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
    if s.entries.is_empty() {
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
    let mut cases = Vec::with_capacity(s.entries.len());
    for case in &s.entries {
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
        let typed = Case::from_entry(case, &s.dns.records, &s.edge.domain)
            .map_err(|e| invalid(text, path, e.span, &e.field, e.message))?;
        cases.push(typed);
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::scenario::Direction;

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
        assert_eq!(f.cases.len(), 1);
        assert_eq!(f.cases[0].direction(), Direction::Inbound);
        assert_eq!(f.cases[0].expect.status, Some(504));
        assert_eq!(s.certs["vcse"].eku, EkuName::Both);
    }

    #[test]
    fn seed_lab_parses() {
        let f = crate::lab::scenario::seed_lab().unwrap();
        assert_eq!(f.cases.len(), 6);
    }

    #[test]
    fn unknown_key_in_a_case_names_file_line_case_and_field() {
        let text = MINIMAL.replace("status = 504", "status = 504\nresult = \"0x1\"");
        assert_eq!(
            error(&text),
            "lab.toml:13:1: case #1 \"one\": field `case.expect.result`: unknown field `result`, expected one of \
             `status`, `ms_diagnostics`, `result_code`, `log_data`, `handshake`, `explanation`, `expires`, \
             `format`, `availability`, `later_availability`, `im_replies`\n  \
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
}
