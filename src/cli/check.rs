//! `edgesim check <domain>`: federation readiness of a domain with a Skype for Business Edge, both directions.
//! Exit code 0 when no line is FAIL, 1 when any is, 2 for usage or configuration errors.

use std::process::ExitCode;
use std::time::Duration;

use edgesim::check;
use edgesim::report::Envelope;

use super::call::{EdgeArgs, build_context, print_notes};

/// Arguments of `edgesim check`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Each line is PASS, WARN or FAIL with the fix. Exit codes: 0 no FAIL; 1 at least one FAIL; 2 usage or configuration error."
)]
pub struct CheckArgs {
    /// The SIP domain to check, e.g. acano.steven.lab.
    pub domain: String,
    /// Also run Test-CsFederatedPartner's transaction: OPTIONS sip:Options_User@DOMAIN routed as the Edge
    /// routes the domain (with Route: <sip:PROXY;transport=tls;lr>;ms-edge-route when --config gives it a
    /// ProxyFqdn), reported in the cmdlet's terms (TargetFqdn, Result, Latency, Error, Diagnosis).
    #[arg(long = "as-test-csfederatedpartner")]
    pub as_test_csfederatedpartner: bool,
    #[command(flatten)]
    pub edge: EdgeArgs,
}

/// The `command` of its `--json` document.
const COMMAND: &str = "check";

/// The fields of `check --json` between the envelope's `status` and its `lines`.
#[derive(serde::Serialize)]
struct CheckJson<'a> {
    /// The domain checked.
    domain: &'a str,
    /// How the check ran (the DNS server asked, the certificates used), as printed on stderr without --json.
    notes: &'a [String],
    /// With --as-test-csfederatedpartner: the cmdlet's result.
    #[serde(skip_serializing_if = "Option::is_none")]
    test_csfederatedpartner: Option<&'a check::CmdletReport>,
}

/// Runs `edgesim check`; with `--json`, a failure to start is an `ERROR` document too.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let json = args.edge.json;
    super::call::json_errors(COMMAND, json, run_check(args))
}

fn run_check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let domain = args.domain.trim().trim_end_matches('.');
    if domain.is_empty() || domain.contains(['@', ':', '/', ' ']) {
        anyhow::bail!(
            "{}: give a bare SIP domain such as acano.steven.lab",
            args.domain
        );
    }
    let (ctx, notes) = build_context(&args.edge, Duration::from_secs(5))?;
    if !args.edge.json {
        print_notes(&notes);
    }
    let rt = super::runtime()?;
    let mut report = rt.block_on(check::check(&ctx, domain));
    let cmdlet = args
        .as_test_csfederatedpartner
        .then(|| rt.block_on(check::test_cs_federated_partner(&ctx, domain)));
    if let Some(c) = &cmdlet {
        report.lines.push(c.line.clone());
    }
    if args.edge.json {
        let body = CheckJson {
            domain: &report.domain,
            notes: &notes,
            test_csfederatedpartner: cmdlet.as_ref(),
        };
        println!(
            "{}",
            Envelope::new(COMMAND, body, report.lines.clone()).to_json()?
        );
    } else {
        print!("{}", report.render());
        if let Some(c) = &cmdlet {
            print!("\n{}", c.render());
        }
    }
    Ok(ExitCode::from(u8::from(report.has_fail())))
}
