//! `edgesim certs inspect`: a certificate's facts, checked against the Edge rules; text or the `--json`
//! document of the shared vocabulary ([`edgesim::report`]).
//!
//! Each rule is a [`Line`]: PASS or FAIL, and WARN for a wildcard match that only `--allow-wildcard` lets
//! through (a real Edge refuses it). The text output prints each line as `STATUS rule: detail — fix`, as
//! before the JSON vocabulary; without `--ca` there is no `chain` line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use edgesim::pki::{self, CertFacts, ChainProblem, ChainStatus, TrustAnchors, Usage};
use edgesim::report::{Envelope, Line, Status};
use edgesim::rules::NameMatch;
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

/// One rule's outcome: the line of the JSON document, and the text printed for people.
struct Check {
    line: Line,
    text: String,
}

impl Check {
    /// A rule worded "what was found — what to change" (the fix, for WARN and FAIL, after the dash).
    fn worded(status: Status, rule: &str, text: String) -> Self {
        let (detail, fix) = match text.split_once(" — ") {
            Some((detail, fix)) if status != Status::Pass => {
                (detail.to_owned(), Some(fix.to_owned()))
            }
            _ => (text.clone(), None),
        };
        Check {
            line: Line::new(status, rule, detail, fix),
            text,
        }
    }
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

fn date(ts: i64) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| ts.to_string())
}

/// The EKU rule: the same certificate is the Edge-facing TLS server and client certificate.
fn eku_check(f: &CertFacts) -> Check {
    let (pass, detail) = match (f.allows_server_auth(), f.allows_client_auth()) {
        (true, true) if f.eku.is_none() => (true, "no EKU extension: any usage is allowed".to_string()),
        (true, true) => (true, "serverAuth and clientAuth present".to_string()),
        (true, false) => (
            false,
            "serverAuth present but clientAuth missing: the certificate cannot be the TLS client certificate \
             in mutual TLS, so federation breaks in one direction (the Edge resets a peer that connects with it). \
             Public CAs are removing the Client Authentication EKU from server certificates in 2026–2027 \
             (Cisco field notice FN74362 for Expressway) — reissue it with both Server and Client \
             Authentication EKUs (e.g. from a private CA), or on Expressway X15.5+ configure a separate \
             client certificate"
                .to_string(),
        ),
        (false, true) => (
            false,
            "clientAuth present but serverAuth missing: the certificate cannot be a TLS server certificate — \
             reissue it with both Server and Client Authentication EKUs"
                .to_string(),
        ),
        (false, false) => (
            false,
            "neither serverAuth nor clientAuth: the certificate cannot be used for TLS — reissue it with \
             both Server and Client Authentication EKUs"
                .to_string(),
        ),
    };
    Check::worded(Status::pass_if(pass), "eku", detail)
}

fn validity_check(f: &CertFacts, now: i64) -> Check {
    let days = f.days_left(now);
    let (pass, detail) = if now < f.not_before {
        (
            false,
            format!(
                "not valid until {} — check the clock, or reissue with a start date in the past",
                date(f.not_before)
            ),
        )
    } else if now > f.not_after {
        (
            false,
            format!("expired on {} — renew the certificate", date(f.not_after)),
        )
    } else {
        (
            true,
            format!("valid until {} ({days} days left)", date(f.not_after)),
        )
    };
    Check::worded(Status::pass_if(pass), "validity", detail)
}

fn chain_check(status: &ChainStatus, cas: &[PathBuf], issuer: &str) -> Check {
    let cas = cas
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (pass, detail) = match status {
        ChainStatus::Trusted => (true, format!("trusted: leads to {cas}")),
        ChainStatus::Missing => (
            false,
            "no certificate in the file — give the certificate, leaf first, as PEM or DER"
                .to_string(),
        ),
        ChainStatus::UntrustedRoot => (
            false,
            format!(
                "the chain does not lead to {cas} — give the issuing CA with --ca, import that CA into the \
                 Edge's trusted root store, or put the intermediates after the leaf in the file"
            ),
        ),
        ChainStatus::Expired => (
            false,
            "a certificate in the chain is expired — renew it".to_string(),
        ),
        ChainStatus::NotYetValid => (
            false,
            "a certificate in the chain is not valid yet — check the clock".to_string(),
        ),
        ChainStatus::WrongUsage => (
            false,
            "a CA in the chain does not allow TLS use (EKU) — use a CA without that restriction"
                .to_string(),
        ),
        ChainStatus::Invalid(ChainProblem::OtherCaSameName) => (
            false,
            format!(
                "issued by a CA that is not one in {cas}: its issuer {issuer} has the name of a CA given with \
                 --ca, but the signature does not verify with that CA's key, so another CA with the same name \
                 issued it — give the CA that issued it with --ca (and import that one into the Edge's trusted \
                 roots)"
            ),
        ),
        ChainStatus::Invalid(p) => (false, p.to_string()),
    };
    Check::worded(Status::pass_if(pass), "chain", detail)
}

/// The name rule for `fqdn`: [`edgesim::rules::names_match`], the Edge's own check.
fn name_check(facts: &CertFacts, fqdn: &str, allow_wildcard: bool) -> Check {
    let rule = format!("name {fqdn}");
    let m = edgesim::rules::names_match(facts, fqdn, allow_wildcard);
    match &m {
        // Allowed here, refused by every real Edge: worth a warning, not a failure.
        NameMatch::Wildcard(_) => Check::worded(
            Status::Warn,
            &rule,
            format!(
                "{} — a real Edge refuses wildcard matches: name {fqdn} explicitly in the certificate's SAN",
                m.explain(fqdn)
            ),
        ),
        // The whole wording is the fix; the detail says what was found.
        NameMatch::Absent => Check {
            line: Line::new(
                Status::Fail,
                rule,
                format!(
                    "the certificate does not name {fqdn} (in its SAN, or in its CN without a SAN)"
                ),
                Some(m.explain(fqdn)),
            ),
            text: m.explain(fqdn),
        },
        _ => Check::worded(Status::pass_if(m.passes()), &rule, m.explain(fqdn)),
    }
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

    let mut checks = vec![validity_check(&facts, now), eku_check(&facts)];
    if !a.ca.is_empty() {
        let anchors = TrustAnchors::from_files(&a.ca)?;
        // Usage::Any: the EKU rule above already reports the leaf's usages with a plainer message.
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(now).unwrap_or_default(),
        ));
        let status = pki::verify_chain(&chain, &anchors, Usage::Any, at);
        checks.push(chain_check(&status, &a.ca, &facts.issuer));
    }
    for fqdn in &a.fqdn {
        checks.push(name_check(&facts, fqdn, a.allow_wildcard));
    }
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

fn render(r: &Report, checks: &[Check], in_file: usize, no_ca: bool) -> String {
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
            date(f.not_before),
            date(f.not_after),
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
