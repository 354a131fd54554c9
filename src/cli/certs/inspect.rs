//! `edgesim certs inspect`: a certificate's facts, checked against the Edge rules; text or the `--json`
//! document of the shared vocabulary ([`edgesim::report`]).
//!
//! The certificate is judged by the rulebook ([`edgesim::rules::judge_certificate`], as a default Edge applies
//! the rules), and every finding it returns is a line ([`Finding::inspect_line`]): PASS, FAIL, and WARN for what
//! a real Edge lets through but should not be relied on (a wildcard match only `--allow-wildcard` accepts, no
//! SAN extension, a wildcard name, fewer than 30 days left). The text output prints each line as
//! `STATUS rule: detail — fix`; without `--ca` there is no `chain` line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use edgesim::config::{Identity, PolicyConfig};
use edgesim::pki::{self, CertFacts, TrustAnchors, Usage};
use edgesim::report::{Envelope, Status};
use edgesim::rules::{
    CertJudgement, DomainName, Finding, Inspected, Policy, datetime, judge_certificate,
};
use rustls_pki_types::UnixTime;

/// The `command` of its `--json` document.
const COMMAND: &str = "certs inspect";

#[derive(clap::Args)]
pub struct InspectArgs {
    /// Certificate file, PEM or DER; a PEM chain is read leaf first.
    file: PathBuf,
    /// FQDN the Edge expects the certificate to name (repeatable).
    #[arg(long)]
    fqdn: Vec<String>,
    /// CA certificate file(s) the Edge trusts; checks the chain.
    #[arg(long, num_args = 1..)]
    ca: Vec<PathBuf>,
    /// Accept a wildcard name match (a real Edge does not).
    #[arg(long)]
    allow_wildcard: bool,
    /// Print one JSON document instead of text (the shared layout of docs/json.md).
    #[arg(long)]
    json: bool,
}

/// The fields of `certs inspect --json` between the envelope's `status` and its `lines`.
#[derive(serde::Serialize)]
struct Report {
    /// The file inspected.
    file: String,
    /// The leaf certificate's facts.
    facts: CertFacts,
    /// Whether it carries a wildcard name.
    wildcard: bool,
    /// Days of validity left (a started day counts), negative once expired.
    days_left: i64,
}

/// Runs `edgesim certs inspect`; with `--json`, a certificate that cannot be read is an `ERROR` document.
pub fn inspect(a: InspectArgs) -> anyhow::Result<ExitCode> {
    let json = a.json;
    super::super::call::json_errors(COMMAND, json, run(a))
}

fn run(a: InspectArgs) -> anyhow::Result<ExitCode> {
    let chain = pki::load_pem_chain(&a.file)?;
    let Some(leaf) = chain.first() else {
        bail!(
            "{}: no certificate found — give a PEM or DER certificate",
            a.file.display()
        );
    };
    let facts = CertFacts::from_der_named(leaf, &a.file.display().to_string())?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    // The Edge's rules as a default Edge applies them, wildcards as asked.
    let mut policy = Policy::new(&Identity::default(), &PolicyConfig::default(), false);
    policy.allow_wildcard = a.allow_wildcard;
    let targets: Vec<DomainName> = a.fqdn.iter().map(|f| DomainName::new(f)).collect();
    let cas =
        a.ca.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
    let status = if a.ca.is_empty() {
        None
    } else {
        let anchors = TrustAnchors::from_files(&a.ca)?;
        // Usage::Any: the EKU rule reports the leaf's usages with a plainer message.
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(now).unwrap_or_default(),
        ));
        Some(pki::verify_chain(&chain, &anchors, Usage::Any, at))
    };
    let CertJudgement {
        names,
        san,
        wildcard,
        eku,
        validity,
        chain: chain_finding,
    } = judge_certificate(
        &policy,
        &targets,
        &facts,
        status.as_ref().map(|s| (s, Some(cas.as_str()))),
        now,
    );
    let checks: Vec<Inspected> = [validity, eku]
        .iter()
        .chain(&chain_finding)
        .chain(&names)
        .chain(&san)
        .chain(&wildcard)
        .filter_map(Finding::inspect_line)
        .collect();
    let pass = checks.iter().all(|c| c.line.status != Status::Fail);
    let report = Report {
        file: a.file.display().to_string(),
        wildcard: facts.has_wildcard(),
        days_left: facts.days_left(now),
        facts,
    };
    if a.json {
        let lines = checks.into_iter().map(|c| c.line).collect();
        println!("{}", Envelope::new(COMMAND, report, lines).to_json()?);
    } else {
        print!("{}", render(&report, &checks, chain.len(), a.ca.is_empty()));
    }
    Ok(if pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn render(r: &Report, checks: &[Inspected], in_file: usize, no_ca: bool) -> String {
    let f = &r.facts;
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<13}{v}\n"));
    let extra = if in_file > 1 {
        format!(" (leaf; {} more certificate(s) in the file)", in_file - 1)
    } else {
        String::new()
    };
    line("certificate", format!("{}{extra}", r.file));
    line("subject", f.subject.clone());
    line("issuer", f.issuer.clone());
    line("serial", f.serial.clone());
    line(
        "SAN dNSNames",
        match &f.san_dns {
            None => "none: no SAN extension, so the Edge reads the subject CN".to_string(),
            Some(s) if s.is_empty() => {
                "none (a SAN extension without dNSNames: the CN is ignored)".to_string()
            }
            Some(s) => format!(
                "{} (the CN is ignored when a SAN extension exists)",
                s.join(", ")
            ),
        },
    );
    line(
        "CN",
        if f.common_names.is_empty() {
            "none".to_string()
        } else {
            f.common_names.join(", ")
        },
    );
    line(
        "wildcard",
        if r.wildcard {
            "yes — the Edge does not accept wildcard certificates".to_string()
        } else {
            "no".to_string()
        },
    );
    line(
        "EKU",
        match f.eku {
            None => "no EKU extension (any usage)".to_string(),
            Some(e) => {
                let mut v = Vec::new();
                if e.server_auth {
                    v.push("serverAuth");
                }
                if e.client_auth {
                    v.push("clientAuth");
                }
                if e.any {
                    v.push("anyExtendedKeyUsage");
                }
                if v.is_empty() {
                    "neither serverAuth nor clientAuth".to_string()
                } else {
                    v.join(", ")
                }
            }
        },
    );
    line(
        "CA",
        if f.is_ca {
            "yes (a CA certificate, not a server certificate)"
        } else {
            "no"
        }
        .to_string(),
    );
    line(
        "valid",
        format!(
            "{} → {} ({})",
            datetime(f.not_before),
            datetime(f.not_after),
            if r.days_left < 0 {
                "expired".to_string()
            } else {
                format!("{} days left", r.days_left)
            }
        ),
    );
    out.push('\n');
    for c in checks {
        out.push_str(&format!("{} {}: {}\n", c.line.status, c.line.rule, c.text));
    }
    if no_ca {
        out.push_str("---- chain: not checked — give --ca CAFILE to check trust\n");
    }
    out
}
